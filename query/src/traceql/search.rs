//! TraceQL search: span sets per trace, newest traces first.
//!
//! 1. One scan of `spans` over the time range reads the spans matching any filter of the query,
//!    with a boolean column per filter ([`super::sql`]); only the columns the answer needs.
//! 2. Per trace, the span-set expression is evaluated on those rows: `&&` and `||` between span
//!    sets, and the structural operators through the spans' parent ids (`>>` and `<<` read the
//!    parent links of the candidate traces in a second, id-pruned scan).
//! 3. Stages (`count()`, `avg(duration)` …) keep or drop each trace's span set.
//! 4. The kept traces are ordered by their newest matched span; a summary (root service and name,
//!    start, duration) of the newest `limit` comes from one id-pruned scan (more rounds only when
//!    `minDuration`/`maxDuration` drop some), and the answer is sorted by trace start, newest
//!    first, and cut at `limit`.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};

use super::ast::{
    AggregateFn, CompareOp, Field, FieldExpr, Literal, Pipeline, SpansetExpr, SpansetOp, Stage,
};
use super::sql::{condition, field_sql, filters, normalise_ids, quote, uses_trace_summary};
use crate::error::QueryError;
use crate::sql::session::QueryEngine;

/// What a search asks for, besides the query.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// Spans starting at or after this time (Unix ns).
    pub start_ns: i64,
    /// Spans starting before this time (Unix ns).
    pub end_ns: i64,
    /// Traces returned at most.
    pub limit: usize,
    /// Spans returned per span set at most.
    pub spans_per_set: usize,
    /// Only traces at least this long (ns).
    pub min_duration_ns: Option<i64>,
    /// Only traces at most this long (ns).
    pub max_duration_ns: Option<i64>,
}

/// One trace of a search answer.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceMatch {
    /// Lowercase hex.
    pub trace_id: String,
    /// The root span's service (empty when the root is not stored).
    pub root_service: String,
    /// The root span's name.
    pub root_name: String,
    /// The first span's start (Unix ns).
    pub start_ns: i64,
    /// From the first span's start to the last span's end.
    pub duration_ns: i64,
    /// The matched spans, newest first, at most `spans_per_set`.
    pub spans: Vec<SpanMatch>,
    /// How many spans matched in all.
    pub matched: usize,
}

/// One matched span.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanMatch {
    /// Lowercase hex.
    pub span_id: String,
    /// The span's name.
    pub name: String,
    /// Its service.
    pub service: String,
    /// Its start (Unix ns).
    pub start_ns: i64,
    /// Its duration (ns).
    pub duration_ns: i64,
    /// The attributes the query names or selects, as stored text.
    pub attributes: Vec<(String, String)>,
}

/// The most span rows one search reads before it refuses (say so rather than answer wrongly).
const MAX_ROWS: usize = 2_000_000;

/// A matched row, before grouping into traces.
#[derive(Clone, Debug)]
struct Row {
    span_id: String,
    parent: Option<String>,
    matches: Vec<bool>,
    span: SpanMatch,
}

/// Runs a span-set query.
pub async fn search(
    engine: &QueryEngine,
    pipeline: &Pipeline,
    request: &SearchRequest,
) -> Result<Vec<TraceMatch>, QueryError> {
    let mut pipeline = pipeline.clone();
    normalise(&mut pipeline.spans);
    let conditions: Vec<String> = filters(&pipeline.spans)
        .into_iter()
        .map(condition)
        .collect();
    let needs_summary = filters(&pipeline.spans)
        .into_iter()
        .flatten()
        .any(uses_trace_summary);
    for stage in &pipeline.stages {
        if matches!(stage, Stage::By(_) | Stage::Coalesce) {
            return Err(QueryError::BadQuery(
                "the TraceQL stages by() and coalesce() are not supported yet".into(),
            ));
        }
    }
    let shown = shown_fields(&pipeline);

    let time = format!(
        "s.time >= to_timestamp_nanos({}) AND s.time < to_timestamp_nanos({})",
        request.start_ns, request.end_ns
    );
    let mut select = vec![
        "s.trace_id".to_string(),
        "s.span_id".into(),
        "s.parent_span_id".into(),
        "s.name".into(),
        "s.service_name".into(),
        "arrow_cast(s.time, 'Int64') AS start_ns".into(),
        "s.duration_ns".into(),
    ];
    for (i, sql) in conditions.iter().enumerate() {
        select.push(format!("coalesce({sql}, FALSE) AS m{i}"));
    }
    for (i, (_, sql)) in shown.iter().enumerate() {
        select.push(format!("arrow_cast({sql}, 'Utf8') AS f{i}"));
    }
    let any = conditions
        .iter()
        .map(|c| format!("coalesce({c}, FALSE)"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let from = if needs_summary {
        format!(
            "spans s JOIN (SELECT trace_id, \
               arrow_cast(max(end_time), 'Int64') - arrow_cast(min(time), 'Int64') AS duration_ns, \
               max(CASE WHEN parent_span_id IS NULL THEN name END) AS root_name, \
               max(CASE WHEN parent_span_id IS NULL THEN service_name END) AS root_service \
             FROM spans s WHERE {time} GROUP BY trace_id) tr ON s.trace_id = tr.trace_id"
        )
    } else {
        "spans s".into()
    };
    let sql = format!(
        "SELECT {} FROM {from} WHERE {time} AND ({any}) LIMIT {}",
        select.join(", "),
        MAX_ROWS + 1
    );
    let output = engine.sql(&sql).await?;
    if output.num_rows() > MAX_ROWS {
        return Err(QueryError::BadQuery(format!(
            "the search matched more than {MAX_ROWS} spans: narrow the time range or the query"
        )));
    }

    let mut traces: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for batch in &output.batches {
        read_rows(batch, conditions.len(), &shown, &mut traces)?;
    }

    let parents = if has_ancestry(&pipeline.spans) {
        parent_links(engine, traces.keys(), request).await?
    } else {
        HashMap::new()
    };

    let mut kept: Vec<(String, Vec<usize>)> = Vec::new();
    for (trace_id, rows) in &traces {
        let spans = eval(&pipeline.spans, rows, &mut 0, parents.get(trace_id));
        if spans.is_empty() || !stages_keep(&pipeline.stages, rows, &spans) {
            continue;
        }
        kept.push((trace_id.clone(), spans));
    }
    if kept.is_empty() {
        return Ok(Vec::new());
    }

    // Newest first by their newest matched span, and summaries (one id-pruned scan) only for as
    // many traces as the answer needs: `limit` at a time, more rounds only when the duration
    // bounds drop some.
    let newest = |spans: &[usize], rows: &[Row]| {
        spans
            .iter()
            .map(|i| rows[*i].span.start_ns)
            .max()
            .unwrap_or(i64::MIN)
    };
    kept.sort_by_cached_key(|(id, spans)| std::cmp::Reverse(newest(spans, &traces[id])));
    let mut answer: Vec<TraceMatch> = Vec::new();
    for round in kept.chunks(request.limit.max(1)) {
        let summaries = summaries(engine, round.iter().map(|(id, _)| id), request).await?;
        for (trace_id, spans) in round {
            let Some(summary) = summaries.get(trace_id) else {
                continue;
            };
            if request
                .min_duration_ns
                .is_some_and(|min| summary.duration_ns < min)
                || request
                    .max_duration_ns
                    .is_some_and(|max| summary.duration_ns > max)
            {
                continue;
            }
            let rows = &traces[trace_id];
            let mut matched: Vec<SpanMatch> = spans.iter().map(|i| rows[*i].span.clone()).collect();
            matched.sort_by_key(|b| std::cmp::Reverse(b.start_ns));
            let count = matched.len();
            matched.truncate(request.spans_per_set);
            answer.push(TraceMatch {
                trace_id: trace_id.clone(),
                root_service: summary.root_service.clone(),
                root_name: summary.root_name.clone(),
                start_ns: summary.start_ns,
                duration_ns: summary.duration_ns,
                spans: matched,
                matched: count,
            });
        }
        if answer.len() >= request.limit {
            break;
        }
    }
    answer.sort_by(|a, b| {
        b.start_ns
            .cmp(&a.start_ns)
            .then(a.trace_id.cmp(&b.trace_id))
    });
    answer.truncate(request.limit);
    Ok(answer)
}

fn normalise(expr: &mut SpansetExpr) {
    match expr {
        SpansetExpr::Filter(Some(condition)) => normalise_ids(condition),
        SpansetExpr::Filter(None) => {}
        SpansetExpr::Binary(left, _, right) => {
            normalise(left);
            normalise(right);
        }
    }
}

/// The attribute fields an answer shows for its spans: those the conditions name, and the
/// selected ones; with the SQL reading each.
fn shown_fields(pipeline: &Pipeline) -> Vec<(String, String)> {
    let mut fields: Vec<Field> = Vec::new();
    fn named(expr: &FieldExpr, out: &mut Vec<Field>) {
        match expr {
            FieldExpr::And(a, b) | FieldExpr::Or(a, b) => {
                named(a, out);
                named(b, out);
            }
            FieldExpr::Compare(field, _, _) | FieldExpr::Exists(field) => out.push(field.clone()),
        }
    }
    for condition in filters(&pipeline.spans).into_iter().flatten() {
        named(condition, &mut fields);
    }
    for stage in &pipeline.stages {
        match stage {
            Stage::Select(selected) => fields.extend(selected.iter().cloned()),
            Stage::Aggregate(_, field, _, _) => fields.push(field.clone()),
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    fields
        .into_iter()
        .filter(|field| matches!(field, Field::Attribute(..)))
        .filter(|field| seen.insert(field.clone()))
        .map(|field| {
            let key = match &field {
                Field::Attribute(_, name) => name.clone(),
                Field::Intrinsic(i) => i.as_str().to_string(),
            };
            (key, field_sql(&field))
        })
        .collect()
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, QueryError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| QueryError::Internal(format!("search rows have no text column {name}")))
}

fn opt(array: &StringArray, row: usize) -> Option<String> {
    (!array.is_null(row)).then(|| array.value(row).to_owned())
}

fn read_rows(
    batch: &RecordBatch,
    filters: usize,
    shown: &[(String, String)],
    traces: &mut BTreeMap<String, Vec<Row>>,
) -> Result<(), QueryError> {
    let trace_id = strings(batch, "trace_id")?;
    let span_id = strings(batch, "span_id")?;
    let parent = strings(batch, "parent_span_id")?;
    let name = strings(batch, "name")?;
    let service = strings(batch, "service_name")?;
    let start = batch
        .column_by_name("start_ns")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| QueryError::Internal("search rows have no start_ns".into()))?;
    let duration = batch
        .column_by_name("duration_ns")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| QueryError::Internal("search rows have no duration_ns".into()))?;
    let matches: Vec<&BooleanArray> = (0..filters)
        .map(|i| {
            batch
                .column_by_name(&format!("m{i}"))
                .and_then(|c| c.as_boolean_opt())
                .ok_or_else(|| QueryError::Internal(format!("search rows have no m{i}")))
        })
        .collect::<Result<_, _>>()?;
    let values: Vec<&StringArray> = (0..shown.len())
        .map(|i| strings(batch, &format!("f{i}")))
        .collect::<Result<_, _>>()?;
    for row in 0..batch.num_rows() {
        let attributes = shown
            .iter()
            .zip(&values)
            .filter_map(|((key, _), array)| opt(array, row).map(|v| (key.clone(), v)))
            .collect();
        traces
            .entry(trace_id.value(row).to_owned())
            .or_default()
            .push(Row {
                span_id: span_id.value(row).to_owned(),
                parent: opt(parent, row),
                matches: matches.iter().map(|m| m.value(row)).collect(),
                span: SpanMatch {
                    span_id: span_id.value(row).to_owned(),
                    name: opt(name, row).unwrap_or_default(),
                    service: opt(service, row).unwrap_or_default(),
                    start_ns: start.value(row),
                    duration_ns: duration.value(row),
                    attributes,
                },
            });
    }
    Ok(())
}

fn has_ancestry(expr: &SpansetExpr) -> bool {
    match expr {
        SpansetExpr::Filter(_) => false,
        SpansetExpr::Binary(left, op, right) => {
            matches!(op, SpansetOp::Descendant | SpansetOp::Ancestor)
                || has_ancestry(left)
                || has_ancestry(right)
        }
    }
}

/// Span id → parent span id for every span of the candidate traces.
async fn parent_links<'a>(
    engine: &QueryEngine,
    trace_ids: impl Iterator<Item = &'a String>,
    request: &SearchRequest,
) -> Result<HashMap<String, HashMap<String, String>>, QueryError> {
    let ids: Vec<String> = trace_ids.map(|id| quote(id)).collect();
    let mut links: HashMap<String, HashMap<String, String>> = HashMap::new();
    for chunk in ids.chunks(1000) {
        let sql = format!(
            "SELECT trace_id, span_id, parent_span_id FROM spans \
             WHERE trace_id IN ({}) AND parent_span_id IS NOT NULL AND time < to_timestamp_nanos({})",
            chunk.join(", "),
            request.end_ns
        );
        let output = engine.sql(&sql).await?;
        for batch in &output.batches {
            let trace = strings(batch, "trace_id")?;
            let span = strings(batch, "span_id")?;
            let parent = strings(batch, "parent_span_id")?;
            for row in 0..batch.num_rows() {
                links
                    .entry(trace.value(row).to_owned())
                    .or_default()
                    .insert(span.value(row).to_owned(), parent.value(row).to_owned());
            }
        }
    }
    Ok(links)
}

/// The spans (indices into `rows`) a span-set expression yields for one trace. `next` numbers
/// the filters left to right, as [`filters`] lists them.
fn eval(
    expr: &SpansetExpr,
    rows: &[Row],
    next: &mut usize,
    parents: Option<&HashMap<String, String>>,
) -> Vec<usize> {
    match expr {
        SpansetExpr::Filter(_) => {
            let i = *next;
            *next += 1;
            (0..rows.len()).filter(|r| rows[*r].matches[i]).collect()
        }
        SpansetExpr::Binary(left, op, right) => {
            let l = eval(left, rows, next, parents);
            let r = eval(right, rows, next, parents);
            match op {
                SpansetOp::And if l.is_empty() || r.is_empty() => Vec::new(),
                SpansetOp::And | SpansetOp::Or => union(l, r),
                SpansetOp::Child => {
                    let ids: HashSet<&str> = l.iter().map(|i| rows[*i].span_id.as_str()).collect();
                    r.into_iter()
                        .filter(|i| rows[*i].parent.as_deref().is_some_and(|p| ids.contains(p)))
                        .collect()
                }
                SpansetOp::Parent => {
                    let ids: HashSet<&str> = l
                        .iter()
                        .filter_map(|i| rows[*i].parent.as_deref())
                        .collect();
                    r.into_iter()
                        .filter(|i| ids.contains(rows[*i].span_id.as_str()))
                        .collect()
                }
                SpansetOp::Sibling => r
                    .into_iter()
                    .filter(|i| {
                        let row = &rows[*i];
                        l.iter().any(|j| {
                            rows[*j].span_id != row.span_id
                                && rows[*j].parent.is_some()
                                && rows[*j].parent == row.parent
                        })
                    })
                    .collect(),
                SpansetOp::Descendant => {
                    let ids: HashSet<&str> = l.iter().map(|i| rows[*i].span_id.as_str()).collect();
                    r.into_iter()
                        .filter(|i| ancestors(&rows[*i].span_id, parents).any(|a| ids.contains(a)))
                        .collect()
                }
                SpansetOp::Ancestor => {
                    let targets: HashSet<&str> = l
                        .iter()
                        .flat_map(|i| ancestors(&rows[*i].span_id, parents))
                        .collect();
                    r.into_iter()
                        .filter(|i| targets.contains(rows[*i].span_id.as_str()))
                        .collect()
                }
            }
        }
    }
}

/// The ancestors of a span, nearest first (bounded, so a cycle in bad data cannot hang).
fn ancestors<'a>(
    span: &'a str,
    parents: Option<&'a HashMap<String, String>>,
) -> impl Iterator<Item = &'a str> + 'a {
    let mut current = span;
    (0..10_000).map_while(move |_| {
        let parent = parents?.get(current)?;
        current = parent.as_str();
        Some(current)
    })
}

fn union(mut a: Vec<usize>, b: Vec<usize>) -> Vec<usize> {
    a.extend(b);
    a.sort_unstable();
    a.dedup();
    a
}

fn stages_keep(stages: &[Stage], rows: &[Row], spans: &[usize]) -> bool {
    stages.iter().all(|stage| match stage {
        Stage::Count(op, n) => holds(spans.len() as f64, *op, *n),
        Stage::Aggregate(function, field, op, literal) => {
            let Some(want) = number(literal) else {
                return false;
            };
            let values: Vec<f64> = spans
                .iter()
                .filter_map(|i| value_of(&rows[*i].span, field))
                .collect();
            if values.is_empty() {
                return false;
            }
            let got = match function {
                AggregateFn::Avg => values.iter().sum::<f64>() / values.len() as f64,
                AggregateFn::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
                AggregateFn::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                AggregateFn::Sum => values.iter().sum(),
            };
            holds(got, *op, want)
        }
        Stage::Select(_) | Stage::By(_) | Stage::Coalesce => true,
    })
}

fn number(literal: &Literal) -> Option<f64> {
    match literal {
        Literal::Int(n) | Literal::Duration(n) => Some(*n as f64),
        Literal::Float(f) => Some(*f),
        _ => None,
    }
}

fn value_of(span: &SpanMatch, field: &Field) -> Option<f64> {
    match field {
        Field::Intrinsic(super::ast::Intrinsic::Duration) => Some(span.duration_ns as f64),
        Field::Attribute(_, name) => span
            .attributes
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok()),
        Field::Intrinsic(_) => None,
    }
}

fn holds(got: f64, op: CompareOp, want: f64) -> bool {
    match op {
        CompareOp::Eq => got == want,
        CompareOp::Ne => got != want,
        CompareOp::Gt => got > want,
        CompareOp::Ge => got >= want,
        CompareOp::Lt => got < want,
        CompareOp::Le => got <= want,
        CompareOp::Regex | CompareOp::NotRegex => false,
    }
}

/// Root service and name, start and duration of each trace.
struct Summary {
    root_service: String,
    root_name: String,
    start_ns: i64,
    duration_ns: i64,
}

async fn summaries<'a>(
    engine: &QueryEngine,
    trace_ids: impl Iterator<Item = &'a String>,
    request: &SearchRequest,
) -> Result<HashMap<String, Summary>, QueryError> {
    let ids: Vec<String> = trace_ids.map(|id| quote(id)).collect();
    let mut out = HashMap::new();
    for chunk in ids.chunks(1000) {
        let sql = format!(
            "SELECT trace_id, \
               max(CASE WHEN parent_span_id IS NULL THEN service_name END) AS root_service, \
               max(CASE WHEN parent_span_id IS NULL THEN name END) AS root_name, \
               min(time) AS start, \
               arrow_cast(max(end_time), 'Int64') - arrow_cast(min(time), 'Int64') AS duration_ns \
             FROM spans WHERE trace_id IN ({}) AND time < to_timestamp_nanos({}) GROUP BY trace_id",
            chunk.join(", "),
            request.end_ns
        );
        let output = engine.sql(&sql).await?;
        for batch in &output.batches {
            let trace = strings(batch, "trace_id")?;
            let service = strings(batch, "root_service")?;
            let name = strings(batch, "root_name")?;
            let start = batch
                .column_by_name("start")
                .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
                .ok_or_else(|| QueryError::Internal("trace summary has no start".into()))?;
            let duration = batch
                .column_by_name("duration_ns")
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| QueryError::Internal("trace summary has no duration".into()))?;
            for row in 0..batch.num_rows() {
                out.insert(
                    trace.value(row).to_owned(),
                    Summary {
                        root_service: opt(service, row).unwrap_or_default(),
                        root_name: opt(name, row).unwrap_or_default(),
                        start_ns: start.value(row),
                        duration_ns: duration.value(row),
                    },
                );
            }
        }
    }
    Ok(out)
}
