//! PromQL: parsed by the `promql-parser` crate, evaluated here with Prometheus 3 semantics.
//!
//! The evaluator is independent of storage: it reads series through the [`SeriesSource`] trait
//! (an in-memory [`MemorySource`] for tests and scripts, [`reader::MetricsTableSource`] for Lumen's
//! `metrics` table). [`api`] serves it as the Prometheus HTTP API (Grafana's data source).
//!
//! ```text
//! Engine::instant / Engine::range      parse (bad_data), limits (11,000 points), steps
//!   └─► eval::Evaluator::eval(expr, t)  one evaluation timestamp at a time
//!         ├─► selectors                 lookback 5m, staleness markers, offset, @, fetch cache
//!         ├─► subqueries                inner steps aligned to multiples of the step
//!         ├─► functions / range_functions / histogram
//!         ├─► aggregate                 sum … quantile, by / without
//!         └─► binary                    arithmetic, comparison, set ops, vector matching
//! ```
//!
//! ```
//! use lumen_query::promql::{Engine, EngineConfig, Labels, MemorySource, Series, Value};
//!
//! let mut source = MemorySource::default();
//! source.add(Series {
//!     labels: Labels::new(vec![("__name__".into(), "up".into()), ("job".into(), "node".into())]),
//!     samples: vec![(0, 1.0), (15_000, 1.0)],
//! });
//! let engine = Engine::new(EngineConfig::default());
//! let result = engine.instant("sum by (job) (up)", 20_000, &source).unwrap();
//! match result.value {
//!     Value::Vector(v) => assert_eq!(v[0].value, 1.0),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

mod accumulator;
mod aggregate;
pub mod api;
mod binary;
mod columns;
pub mod error;
mod eval;
mod functions;
mod histogram;
mod index_select;
mod naming;
mod otlp_convert;
mod parquet_cache;
mod range_functions;
pub mod reader;
pub mod sample_cache;
pub mod service;
#[cfg(test)]
mod tests;
pub mod value;

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::label::Matchers;
use promql_parser::parser::{self, Expr};

pub use accumulator::{Exemplar, SeriesExemplars};
pub use error::PromqlError;
pub use service::{PromqlConfig, PromqlService, QueryOptions};
pub use value::{Annotations, Labels, LabelsMap, Sample, Series, Value, is_stale_nan, stale_nan};

use eval::{Evaluator, check_unique};

/// Where the evaluator reads series from.
pub trait SeriesSource {
    /// All series matching `matchers` (the metric name is one of them, as `__name__`), with
    /// their samples in `[start_ms, end_ms]` in time order. Returning more samples is allowed.
    fn select(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromqlError>;

    /// When the query reading this source must stop (the evaluator stops at the earlier of this
    /// and [`EngineConfig::deadline`]).
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
}

/// Evaluation limits and defaults.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold at once: what one evaluation step loads (selectors,
    /// subquery steps) plus the points of the range-query result built so far.
    pub max_samples: usize,
    /// Most points a range query may return per series (Prometheus's API: 11,000).
    pub max_points_per_series: i64,
    /// Step of subqueries without an explicit step (`[5m:]`) in instant queries.
    pub default_subquery_step_ms: i64,
    /// When set, evaluation stops with a `timeout` error once this instant has passed (so a
    /// timed-out query frees its thread instead of running on unobserved).
    pub deadline: Option<std::time::Instant>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            max_points_per_series: 11_000,
            default_subquery_step_ms: 60_000,
            deadline: None,
        }
    }
}

/// Query texts parsed lately: dashboards and rules ask the same texts again and again, and
/// parsing one costs tens of microseconds, as much as answering a selective query.
struct ParseCache {
    entries: HashMap<String, (Arc<Expr>, u64)>,
    tick: u64,
}

/// Texts [`parse_cached`] keeps (the least recently used goes first).
const PARSE_CACHE_ENTRIES: usize = 512;
/// Longer texts are parsed every time.
const PARSE_CACHE_MAX_TEXT: usize = 4096;

static PARSE_CACHE: std::sync::LazyLock<std::sync::Mutex<ParseCache>> =
    std::sync::LazyLock::new(|| {
        std::sync::Mutex::new(ParseCache {
            entries: HashMap::new(),
            tick: 0,
        })
    });

/// [`Engine::parse`] through [`ParseCache`] (errors are not cached).
fn parse_cached(query: &str) -> Result<Arc<Expr>, PromqlError> {
    if query.len() > PARSE_CACHE_MAX_TEXT {
        return Engine::parse(query).map(Arc::new);
    }
    if let Ok(mut cache) = PARSE_CACHE.lock() {
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((expr, used)) = cache.entries.get_mut(query) {
            *used = tick;
            return Ok(expr.clone());
        }
    }
    let expr = Arc::new(Engine::parse(query)?);
    if let Ok(mut cache) = PARSE_CACHE.lock() {
        if cache.entries.len() >= PARSE_CACHE_ENTRIES
            && let Some(oldest) = cache
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            cache.entries.remove(&oldest);
        }
        let tick = cache.tick;
        cache
            .entries
            .insert(query.to_string(), (expr.clone(), tick));
    }
    Ok(expr)
}

/// A query's value and the annotations raised while computing it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// Scalar, string, vector (instant queries) or matrix (range queries, range selectors).
    pub value: Value,
    /// Warnings and infos.
    pub annotations: Annotations,
}

/// The PromQL engine.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    config: EngineConfig,
}

impl Engine {
    /// An engine with the given limits.
    pub fn new(config: EngineConfig) -> Self {
        Engine { config }
    }

    /// Parses a query; syntax and type errors are `bad_data`, and so are queries nested deeper
    /// than [`MAX_NESTING`] (evaluation is recursive, so depth is bounded up front).
    pub fn parse(query: &str) -> Result<Expr, PromqlError> {
        if text_nesting(query) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        let expr = parser::parse(query).map_err(PromqlError::BadData)?;
        if ast_depth(&expr) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        Ok(expr)
    }

    /// Evaluates `query` at `time_ms`.
    pub fn instant(
        &self,
        query: &str,
        time_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        let expr = parse_cached(query)?;
        self.instant_expr(&expr, time_ms, source)
    }

    /// Evaluates a parsed expression at `time_ms`.
    pub fn instant_expr(
        &self,
        expr: &Expr,
        time_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        if ast_depth(expr) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        let ev = Evaluator::new(&self.config, source, expr, time_ms, time_ms, false);
        let value = ev.eval(expr, time_ms)?;
        if let Value::Vector(v) = &value {
            check_unique(v)?;
        }
        Ok(QueryResult {
            value,
            annotations: ev.annotations.into_inner(),
        })
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms`; the result is a matrix.
    pub fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        let expr = parse_cached(query)?;
        self.range_expr(&expr, start_ms, end_ms, step_ms, source)
    }

    /// Evaluates a parsed expression as a range query.
    pub fn range_expr(
        &self,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        source: &dyn SeriesSource,
    ) -> Result<QueryResult, PromqlError> {
        if ast_depth(expr) > MAX_NESTING {
            return error::bad_data(format!(
                "query is nested more than {MAX_NESTING} levels deep"
            ));
        }
        if end_ms < start_ms {
            return error::bad_data("end timestamp must not be before start time");
        }
        if step_ms <= 0 {
            return error::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            );
        }
        let points = end_ms
            .checked_sub(start_ms)
            .map_or(i64::MAX, |span| span / step_ms + 1);
        if points > self.config.max_points_per_series {
            return error::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            );
        }
        match expr_type_name(expr) {
            "scalar" | "instant vector" => {}
            other => {
                return error::bad_data(format!(
                    "invalid expression type \"{other}\" for range query, must be Scalar or instant Vector"
                ));
            }
        }
        let mut ev = Evaluator::new(&self.config, source, expr, start_ms, end_ms, true);
        ev.query_step = step_ms;
        // A plain selector (the most common panel query) is answered series by series.
        let mut plain = expr;
        while let Expr::Paren(p) = plain {
            plain = &p.expr;
        }
        if let Expr::VectorSelector(vs) = plain {
            let mut out = ev.selector_matrix(vs)?;
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(QueryResult {
                value: Value::Matrix(out),
                annotations: ev.annotations.into_inner(),
            });
        }
        let mut index: value::LabelsMap<usize> = value::LabelsMap::default();
        let mut out: Vec<Series> = Vec::new();
        let mut t = start_ms;
        let mut output_points = 0usize;
        let mut last_slots: Vec<usize> = Vec::new();
        while t <= end_ms {
            // The sample limit applies to what one step loads plus the result built so far.
            ev.reset_samples(output_points);
            let samples: Vec<Sample> = match ev.eval(expr, t)? {
                Value::Scalar(v) => vec![Sample {
                    labels: Labels::empty(),
                    value: v,
                }],
                Value::Vector(v) => v,
                other => {
                    return error::bad_data(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        other.type_name()
                    ));
                }
            };
            // Steps mostly return the same series in the same order: try where the sample at
            // this position went at the previous step before looking its labels up.
            let steps_left = ((end_ms - t) / step_ms + 1) as usize;
            for (pos, s) in samples.into_iter().enumerate() {
                let guess = last_slots
                    .get(pos)
                    .copied()
                    .filter(|&g| out[g].labels.same_set(&s.labels));
                let i = match guess {
                    Some(g) => g,
                    None => *index.entry(s.labels.clone()).or_insert_with(|| {
                        out.push(Series {
                            labels: s.labels.clone(),
                            samples: Vec::with_capacity(steps_left.min(1024)),
                        });
                        out.len() - 1
                    }),
                };
                if pos < last_slots.len() {
                    last_slots[pos] = i;
                } else {
                    last_slots.push(i);
                }
                if out[i].samples.last().is_some_and(|(last, _)| *last == t) {
                    return error::exec_err("vector cannot contain metrics with the same labelset");
                }
                out[i].samples.push((t, s.value));
                output_points += 1;
            }
            t = match t.checked_add(step_ms) {
                Some(n) => n,
                None => break,
            };
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryResult {
            value: Value::Matrix(out),
            annotations: ev.annotations.into_inner(),
        })
    }
}

/// Deepest expression nesting accepted (parentheses, operands, arguments).
pub const MAX_NESTING: usize = 100;

/// Deepest nesting of brackets in the query text, ignoring quoted strings (checked before parsing
/// so absurd inputs never reach the parser).
fn text_nesting(query: &str) -> usize {
    let (mut depth, mut max, mut quote) = (0usize, 0usize, None::<char>);
    let mut escaped = false;
    for c in query.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Depth of the expression tree, computed without recursion (stops counting past the limit).
fn ast_depth(expr: &Expr) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Expr, usize)> = vec![(expr, 1)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        if d > MAX_NESTING {
            break;
        }
        match e {
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d + 1));
                if let Some(p) = &a.param {
                    stack.push((p, d + 1));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, d + 1)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, d + 1));
                stack.push((&b.rhs, d + 1));
            }
            Expr::Paren(p) => stack.push((&p.expr, d + 1)),
            Expr::Subquery(s) => stack.push((&s.expr, d + 1)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d + 1))),
            _ => {}
        }
    }
    max
}

/// The static PromQL type of an expression, as named in error messages.
pub(crate) fn expr_type_name(expr: &Expr) -> &'static str {
    use promql_parser::parser::value::ValueType;
    match expr.value_type() {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}

/// Series held in memory, e.g. loaded by a test script.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    series: Vec<Series>,
    index: HashMap<Labels, usize>,
}

impl MemorySource {
    /// Adds samples to the series with these labels (creating it); keeps samples time-ordered,
    /// a later sample at the same timestamp replaces the earlier one.
    pub fn add(&mut self, series: Series) {
        let i = *self.index.entry(series.labels.clone()).or_insert_with(|| {
            self.series.push(Series {
                labels: series.labels.clone(),
                samples: Vec::new(),
            });
            self.series.len() - 1
        });
        let target = &mut self.series[i].samples;
        target.extend(series.samples);
        target.sort_by_key(|(t, _)| *t);
        target.reverse();
        target.dedup_by_key(|(t, _)| *t);
        target.reverse();
    }

    /// Removes every series.
    pub fn clear(&mut self) {
        self.series.clear();
        self.index.clear();
    }

    /// All series, in insertion order.
    pub fn series(&self) -> &[Series] {
        &self.series
    }
}

impl SeriesSource for MemorySource {
    fn select(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromqlError> {
        let mut out: Vec<Series> = self
            .series
            .iter()
            .filter(|s| s.labels.matches(matchers))
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= start_ms && *t <= end_ms)
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}
