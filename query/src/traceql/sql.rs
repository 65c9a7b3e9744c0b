//! TraceQL conditions as SQL over the `spans` table.
//!
//! Every span-set filter `{ … }` becomes one boolean SQL expression; the search reads, in one
//! scan, the spans that match any of them (with one boolean column per filter), so the time range,
//! `trace_id` (from `trace:id`) and the other predicates prune segments, row groups and pages as
//! in any SQL query. Trace-level intrinsics (`trace:duration`, `trace:rootName`,
//! `trace:rootService`) read a per-trace summary joined in as `tr` only when the query uses them.
//!
//! Comparisons follow the stored text forms (docs/schema.md): strings and booleans compare as text,
//! numbers cast the attribute's text to a double (an attribute that is not a number does not
//! match), regexes match the whole value.

use super::ast::{AttributeScope, CompareOp, Field, FieldExpr, Intrinsic, Literal, SpansetExpr};

/// A SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// True when `expr` reads a trace-level intrinsic (and so needs the `tr` summary).
pub fn uses_trace_summary(expr: &FieldExpr) -> bool {
    match expr {
        FieldExpr::And(a, b) | FieldExpr::Or(a, b) => {
            uses_trace_summary(a) || uses_trace_summary(b)
        }
        FieldExpr::Compare(field, _, _) | FieldExpr::Exists(field) => is_trace_level(field),
        FieldExpr::Constant(_) => false,
    }
}

/// True for the trace-level intrinsics the `tr` summary holds (`trace:id` is every span's own).
pub fn is_trace_level(field: &Field) -> bool {
    matches!(field, Field::Intrinsic(i) if i.is_trace_level() && *i != Intrinsic::TraceId)
}

/// The span-set filters of `expr`, left to right (`{}` as `None`).
pub fn filters(expr: &SpansetExpr) -> Vec<Option<&FieldExpr>> {
    let mut out = Vec::new();
    collect(expr, &mut out);
    out
}

fn collect<'a>(expr: &'a SpansetExpr, out: &mut Vec<Option<&'a FieldExpr>>) {
    match expr {
        SpansetExpr::Filter(condition) => out.push(condition.as_ref()),
        SpansetExpr::Binary(left, _, right) => {
            collect(left, out);
            collect(right, out);
        }
    }
}

/// The SQL of one filter (`TRUE` for `{}`), over `spans` aliased `s` and the summary `tr`.
pub fn condition(expr: Option<&FieldExpr>) -> String {
    match expr {
        None => "TRUE".into(),
        Some(expr) => field_expr(expr),
    }
}

fn field_expr(expr: &FieldExpr) -> String {
    match expr {
        FieldExpr::And(a, b) => format!("({} AND {})", field_expr(a), field_expr(b)),
        FieldExpr::Or(a, b) => format!("({} OR {})", field_expr(a), field_expr(b)),
        FieldExpr::Constant(value) => if *value { "TRUE" } else { "FALSE" }.into(),
        // Roots are -1 and every other span at least 1, so against a number n <= 0 (the parser
        // allows no other) the comparison holds for all roots or none, and for all other spans
        // or none: a test of the parent's absence, which the scan reads without the ids.
        FieldExpr::Compare(Field::Intrinsic(Intrinsic::NestedSetParent), op, Literal::Int(n)) => {
            let holds = |value: i64| match op {
                CompareOp::Eq => value == *n,
                CompareOp::Ne => value != *n,
                CompareOp::Gt => value > *n,
                CompareOp::Ge => value >= *n,
                CompareOp::Lt => value < *n,
                CompareOp::Le => value <= *n,
                CompareOp::Regex | CompareOp::NotRegex => false,
            };
            match (holds(-1), holds(1)) {
                (true, true) => "TRUE".into(),
                (true, false) => "(s.parent_span_id IS NULL)".into(),
                (false, true) => "(s.parent_span_id IS NOT NULL)".into(),
                (false, false) => "FALSE".into(),
            }
        }
        FieldExpr::Exists(field) => match value_sql(field) {
            Values::One(sql) | Values::Number(sql) => format!("({sql} IS NOT NULL)"),
            Values::Either(a, b) => format!("({a} IS NOT NULL OR {b} IS NOT NULL)"),
        },
        FieldExpr::Compare(field, op, literal) => match value_sql(field) {
            Values::One(sql) => compare(&sql, *op, literal),
            Values::Number(sql) => compare_number(&sql, *op, literal),
            Values::Either(a, b) => {
                format!(
                    "({} OR {})",
                    compare(&a, *op, literal),
                    compare(&b, *op, literal)
                )
            }
        },
    }
}

/// Where a field's value is, in SQL.
enum Values {
    /// One text expression.
    One(String),
    /// A number (ns for durations).
    Number(String),
    /// `.x`: the span's attribute, or the resource's.
    Either(String, String),
}

fn attribute(map: &str, name: &str) -> String {
    format!("s.{map}[{}]", quote(name))
}

/// The SQL expression for a field's value. Readable columns of the table, never user text
/// unquoted.
pub fn field_sql(field: &Field) -> String {
    match value_sql(field) {
        Values::One(sql) | Values::Number(sql) => sql,
        Values::Either(a, b) => format!("coalesce({a}, {b})"),
    }
}

fn value_sql(field: &Field) -> Values {
    match field {
        Field::Attribute(AttributeScope::Span, name) => Values::One(attribute("attributes", name)),
        Field::Attribute(AttributeScope::Resource, name) if name == "service.name" => {
            Values::One("s.service_name".into())
        }
        Field::Attribute(AttributeScope::Resource, name) => {
            Values::One(attribute("resource_attributes", name))
        }
        Field::Attribute(AttributeScope::Any, name) => Values::Either(
            attribute("attributes", name),
            if name == "service.name" {
                "s.service_name".into()
            } else {
                attribute("resource_attributes", name)
            },
        ),
        Field::Intrinsic(intrinsic) => match intrinsic {
            Intrinsic::Name => Values::One("s.name".into()),
            Intrinsic::Status => Values::One("s.status_code".into()),
            Intrinsic::StatusMessage => Values::One("s.status_message".into()),
            Intrinsic::Kind => Values::One("s.kind".into()),
            Intrinsic::Duration => Values::Number("s.duration_ns".into()),
            Intrinsic::SpanId => Values::One("s.span_id".into()),
            Intrinsic::ParentId => Values::One("s.parent_span_id".into()),
            Intrinsic::TraceId => Values::One("s.trace_id".into()),
            // Shown (`select`, `by`) as root or not: -1 or 1.
            Intrinsic::NestedSetParent => {
                Values::Number("(CASE WHEN s.parent_span_id IS NULL THEN -1 ELSE 1 END)".into())
            }
            Intrinsic::TraceDuration => Values::Number("tr.duration_ns".into()),
            Intrinsic::TraceRootName => Values::One("tr.root_name".into()),
            Intrinsic::TraceRootService => Values::One("tr.root_service".into()),
        },
    }
}

/// The SQL operator of a comparison; `None` for the regex operators, which only a quoted pattern
/// may follow (the parser refuses the rest; anything else matches nothing).
fn sql_op(op: CompareOp) -> Option<&'static str> {
    match op {
        CompareOp::Eq => Some("="),
        CompareOp::Ne => Some("<>"),
        CompareOp::Gt => Some(">"),
        CompareOp::Ge => Some(">="),
        CompareOp::Lt => Some("<"),
        CompareOp::Le => Some("<="),
        CompareOp::Regex | CompareOp::NotRegex => None,
    }
}

/// A text value compared with a literal.
fn compare(sql: &str, op: CompareOp, literal: &Literal) -> String {
    match (op, literal) {
        (CompareOp::Regex, Literal::String(pattern)) => {
            format!("regexp_like({sql}, {})", quote(&anchored(pattern)))
        }
        (CompareOp::NotRegex, Literal::String(pattern)) => {
            format!("NOT regexp_like({sql}, {})", quote(&anchored(pattern)))
        }
        (_, Literal::Int(_) | Literal::Float(_) | Literal::Duration(_)) => {
            compare_number(&format!("try_cast({sql} AS DOUBLE)"), op, literal)
        }
        (_, literal) => match sql_op(op) {
            Some(op) => format!("({sql} {op} {})", quote(&text(literal))),
            None => "FALSE".into(),
        },
    }
}

/// A numeric value compared with a literal.
fn compare_number(sql: &str, op: CompareOp, literal: &Literal) -> String {
    let number = match literal {
        Literal::Int(n) | Literal::Duration(n) => n.to_string(),
        Literal::Float(f) => format!("{f:?}"),
        // The parser lets only numbers reach numeric fields; anything else matches nothing.
        _ => return "FALSE".into(),
    };
    match sql_op(op) {
        Some(op) => format!("({sql} {op} {number})"),
        None => "FALSE".into(),
    }
}

/// The text a literal is compared as (ids in lowercase, as stored).
fn text(literal: &Literal) -> String {
    match literal {
        Literal::String(s) => s.clone(),
        Literal::Int(n) | Literal::Duration(n) => n.to_string(),
        Literal::Float(f) => f.to_string(),
        Literal::Bool(b) => b.to_string(),
        Literal::Status(status) => status.as_str().into(),
        Literal::Kind(kind) => kind.as_str().into(),
    }
}

/// A TraceQL regex matches the whole value.
fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// The ids in `trace:id = "…"` and `span:id = "…"` conditions are hex: lowercase them so they
/// equal the stored text (and the `trace_id` bloom filters apply).
pub fn normalise_ids(expr: &mut FieldExpr) {
    match expr {
        FieldExpr::And(a, b) | FieldExpr::Or(a, b) => {
            normalise_ids(a);
            normalise_ids(b);
        }
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::TraceId | Intrinsic::SpanId | Intrinsic::ParentId),
            CompareOp::Eq | CompareOp::Ne,
            Literal::String(id),
        ) => *id = id.to_ascii_lowercase(),
        _ => {}
    }
}
