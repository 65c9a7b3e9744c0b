//! The TraceQL syntax tree: what [`super::parser::parse`] produces and the evaluator consumes.

use std::fmt;

/// A whole TraceQL query.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    /// A span-set query (`/api/search`): `{ … } | stage | …`.
    Spans(Pipeline),
    /// A metrics query (`/api/metrics/query_range`): `{ … } | rate() by (…)`.
    Metrics(MetricsQuery),
}

/// Span sets and the stages they go through.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    /// The span sets, combined.
    pub spans: SpansetExpr,
    /// `| select(…)`, `| count() > n`, `| avg(duration) > 1s`, `| by(…)`, in order.
    pub stages: Vec<Stage>,
}

/// Span sets combined by trace-level and structural operators.
#[derive(Clone, Debug, PartialEq)]
pub enum SpansetExpr {
    /// `{ condition }`; `{}` (no condition) matches every span.
    Filter(Option<FieldExpr>),
    /// Two span sets combined.
    Binary(Box<SpansetExpr>, SpansetOp, Box<SpansetExpr>),
}

/// Operators between span sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpansetOp {
    /// `&&`: traces holding spans of both sides (the spans of both are returned).
    And,
    /// `||`: spans of either side.
    Or,
    /// `>`: right-hand spans whose parent is a left-hand span.
    Child,
    /// `>>`: right-hand spans with a left-hand ancestor.
    Descendant,
    /// `<`: right-hand spans that are the parent of a left-hand span.
    Parent,
    /// `<<`: right-hand spans that are an ancestor of a left-hand span.
    Ancestor,
    /// `~`: right-hand spans sharing a parent with a left-hand span (not itself).
    Sibling,
}

/// A condition on one span.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldExpr {
    /// Both hold.
    And(Box<FieldExpr>, Box<FieldExpr>),
    /// Either holds.
    Or(Box<FieldExpr>, Box<FieldExpr>),
    /// `field op literal`.
    Compare(Field, CompareOp, Literal),
    /// A bare field: true when it is present (`{ span.cache.hit }` is true for `true` values too,
    /// see the evaluator).
    Exists(Field),
    /// `true` or `false` on its own (`{ true }`, Grafana's `{ nestedSetParent<0 && true }`).
    Constant(bool),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=~` (the regex matches the whole value)
    Regex,
    /// `!~`
    NotRegex,
}

impl CompareOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Regex => "=~",
            CompareOp::NotRegex => "!~",
        }
    }
}

/// What a condition or stage reads from a span.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// An attribute: `span.x`, `resource.x`, or `.x` (either).
    Attribute(AttributeScope, String),
    /// An intrinsic such as `duration` or `trace:rootService`.
    Intrinsic(Intrinsic),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute(AttributeScope::Span, name) => write!(f, "span.{name}"),
            Field::Attribute(AttributeScope::Resource, name) => write!(f, "resource.{name}"),
            Field::Attribute(AttributeScope::Any, name) => write!(f, ".{name}"),
            Field::Intrinsic(intrinsic) => f.write_str(intrinsic.as_str()),
        }
    }
}

/// Where an attribute is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeScope {
    /// `span.`: the span's own attributes.
    Span,
    /// `resource.`: the attributes of the span's resource.
    Resource,
    /// `.`: the span's attributes, then the resource's.
    Any,
}

/// TraceQL's intrinsic fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// `name` / `span:name`
    Name,
    /// `status` / `span:status`: `error`, `ok`, `unset`
    Status,
    /// `statusMessage` / `span:statusMessage`
    StatusMessage,
    /// `kind` / `span:kind`
    Kind,
    /// `duration` / `span:duration`
    Duration,
    /// `span:id`
    SpanId,
    /// `span:parentID`
    ParentId,
    /// `trace:duration`: from the first span's start to the last span's end
    TraceDuration,
    /// `trace:rootName`
    TraceRootName,
    /// `trace:rootService`
    TraceRootService,
    /// `trace:id`
    TraceId,
    /// `nestedSetParent`: the parent's place in Tempo's nested-set numbering of a trace, -1 for a
    /// root span. Lumen keeps no numbering, so it is only compared with a number at most 0 —
    /// `nestedSetParent < 0`, Grafana's "root spans" — where the answer depends only on whether
    /// the span is a root (every other span's value is at least 1).
    NestedSetParent,
}

impl Intrinsic {
    /// Every intrinsic the tags API lists, in its order (not `nestedSetParent`, which is only
    /// compared with 0 or -1).
    pub const ALL: [Intrinsic; 11] = [
        Intrinsic::Duration,
        Intrinsic::Kind,
        Intrinsic::Name,
        Intrinsic::Status,
        Intrinsic::StatusMessage,
        Intrinsic::SpanId,
        Intrinsic::ParentId,
        Intrinsic::TraceDuration,
        Intrinsic::TraceRootName,
        Intrinsic::TraceRootService,
        Intrinsic::TraceId,
    ];

    /// The intrinsic's canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Duration => "duration",
            Intrinsic::SpanId => "span:id",
            Intrinsic::ParentId => "span:parentID",
            Intrinsic::TraceDuration => "trace:duration",
            Intrinsic::TraceRootName => "trace:rootName",
            Intrinsic::TraceRootService => "trace:rootService",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::NestedSetParent => "nestedSetParent",
        }
    }

    /// The intrinsic a word names (`span:` spellings included).
    pub fn from_word(word: &str) -> Option<Intrinsic> {
        Some(match word {
            "name" | "span:name" => Intrinsic::Name,
            "status" | "span:status" => Intrinsic::Status,
            "statusMessage" | "span:statusMessage" => Intrinsic::StatusMessage,
            "kind" | "span:kind" => Intrinsic::Kind,
            "duration" | "span:duration" => Intrinsic::Duration,
            "span:id" => Intrinsic::SpanId,
            "span:parentID" => Intrinsic::ParentId,
            "trace:duration" => Intrinsic::TraceDuration,
            "trace:rootName" => Intrinsic::TraceRootName,
            "trace:rootService" => Intrinsic::TraceRootService,
            "trace:id" => Intrinsic::TraceId,
            "nestedSetParent" | "span:nestedSetParent" => Intrinsic::NestedSetParent,
            _ => return None,
        })
    }

    /// True for the intrinsics of the whole trace rather than of one span.
    pub fn is_trace_level(self) -> bool {
        matches!(
            self,
            Intrinsic::TraceDuration
                | Intrinsic::TraceRootName
                | Intrinsic::TraceRootService
                | Intrinsic::TraceId
        )
    }
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `"text"` or `` `text` ``
    String(String),
    /// `200`
    Int(i64),
    /// `0.5`
    Float(f64),
    /// `100ms`, `1.5s`: nanoseconds
    Duration(i64),
    /// `true` / `false`
    Bool(bool),
    /// `error`, `ok`, `unset`
    Status(StatusValue),
    /// `server`, `client`, …
    Kind(KindValue),
}

/// The status keywords, as the `spans.status_code` column spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusValue {
    /// `error`
    Error,
    /// `ok`
    Ok,
    /// `unset`
    Unset,
}

impl StatusValue {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusValue::Error => "error",
            StatusValue::Ok => "ok",
            StatusValue::Unset => "unset",
        }
    }
}

/// The span kind keywords, as the `spans.kind` column spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindValue {
    /// `unspecified`
    Unspecified,
    /// `internal`
    Internal,
    /// `server`
    Server,
    /// `client`
    Client,
    /// `producer`
    Producer,
    /// `consumer`
    Consumer,
}

impl KindValue {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KindValue::Unspecified => "unspecified",
            KindValue::Internal => "internal",
            KindValue::Server => "server",
            KindValue::Client => "client",
            KindValue::Producer => "producer",
            KindValue::Consumer => "consumer",
        }
    }
}

/// A pipeline stage after the span sets.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// `select(field, …)`: also return these fields of the matched spans.
    Select(Vec<Field>),
    /// `count() op n`: keep span sets with that many spans.
    Count(CompareOp, f64),
    /// `avg(field) op value` (and `min`, `max`, `sum`) over a span set's spans.
    Aggregate(AggregateFn, Field, CompareOp, Literal),
    /// `by(field)`: split span sets by the field's value.
    By(Vec<Field>),
    /// `coalesce()`: merge the span sets of a trace back into one.
    Coalesce,
}

/// Span-set aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateFn {
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `sum`
    Sum,
}

/// `pipeline | function by (fields)`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsQuery {
    /// The spans counted.
    pub pipeline: Pipeline,
    /// What is computed per step.
    pub function: MetricsFn,
    /// The series are split by these fields.
    pub by: Vec<Field>,
}

/// TraceQL metrics functions.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricsFn {
    /// `rate()`: matching spans per second.
    Rate,
    /// `count_over_time()`: matching spans per step.
    CountOverTime,
    /// `quantile_over_time(field, q, …)`: one series per quantile.
    QuantileOverTime(Field, Vec<f64>),
    /// `histogram_over_time(field)`: a bucketed histogram per step.
    HistogramOverTime(Field),
    /// `min_over_time(field)`, `max_over_time`, `avg_over_time`, `sum_over_time`.
    OverTime(AggregateFn, Field),
}
