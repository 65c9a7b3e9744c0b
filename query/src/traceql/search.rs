//! TraceQL search: span sets per trace, newest traces first.
//!
//! 1. One scan of `spans` over the time range reads the spans matching any filter of the query,
//!    with a boolean column per filter ([`super::sql`]). Only what choosing the traces needs is
//!    read: for a query without structural operators, aggregates or `by`, the trace id, the start
//!    and the match flags — the scan then decodes three columns for the few rows that match.
//! 2. Per trace, the span-set expression is evaluated on those rows: `&&` and `||` between span
//!    sets, and the structural operators through the spans' parent ids (`>>` and `<<` read the
//!    parent links of the candidate traces in a second, id-pruned scan).
//! 3. Stages run on each trace's span sets in order: `by(…)` splits them by the fields' values,
//!    `coalesce()` merges them back into one, `count()`, `avg(duration)` … keep or drop each, and a
//!    trace with no span set left is dropped.
//! 4. The kept traces are ordered by their newest matched span; the newest `limit` are read whole
//!    in one id-pruned scan (more rounds only when `minDuration`/`maxDuration` drop some), which
//!    gives their summaries (root service and name, start, duration) and, evaluated again, their
//!    span sets with every field the answer shows. The answer is sorted by trace start, newest
//!    first, and cut at `limit`.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;

use super::ast::{
    AggregateFn, CompareOp, Field, FieldExpr, Literal, Pipeline, SpansetExpr, SpansetOp, Stage,
};
use super::sql::{
    condition, field_sql, filters, is_trace_level, normalise_ids, quote, uses_trace_summary,
};
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
    /// Its span sets: one, unless `by(…)` split them.
    pub span_sets: Vec<SpanSetMatch>,
}

/// One span set of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanSetMatch {
    /// The matched spans, newest first, at most `spans_per_set`.
    pub spans: Vec<SpanMatch>,
    /// How many spans the set holds in all.
    pub matched: usize,
    /// What `by(…)` grouped it by: the stage as written (`by(resource.service.name)`) and the
    /// value; a span without the field groups under no value.
    pub by: Vec<(String, Option<String>)>,
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
    /// The values of the `by(…)` fields ([`grouping_fields`]), as text.
    groups: Vec<Option<String>>,
    span: SpanMatch,
}

/// A span set while the stages run: indices into a trace's rows, and what it was grouped by.
#[derive(Clone, Debug, Default)]
struct SpanSet {
    spans: Vec<usize>,
    by: Vec<(String, Option<String>)>,
}

/// The SQL of a search's scans.
struct Plan {
    /// One condition per span-set filter, left to right.
    conditions: Vec<String>,
    /// The attribute fields shown (key, SQL).
    shown: Vec<(String, String)>,
    /// The `by(…)` fields.
    grouping: Vec<Field>,
    /// The conditions read the per-trace summary `tr`.
    needs_summary: bool,
    /// Deciding which traces are kept needs more than which spans matched and when: span ids
    /// and parents (structural operators), durations and attributes (aggregates), grouping
    /// values (`by`). Without that, the first scan reads only the trace id, the start and the
    /// match flags — a fraction of the columns — and the kept traces' spans are read whole by id.
    detailed: bool,
    time: String,
}

impl Plan {
    fn new(pipeline: &Pipeline, request: &SearchRequest) -> Plan {
        let conditions: Vec<String> = filters(&pipeline.spans)
            .into_iter()
            .map(condition)
            .collect();
        let grouping = grouping_fields(&pipeline.stages);
        let needs_summary = filters(&pipeline.spans)
            .into_iter()
            .flatten()
            .any(uses_trace_summary)
            || grouping.iter().any(is_trace_level);
        let detailed = has_structure(&pipeline.spans)
            || pipeline
                .stages
                .iter()
                .any(|stage| matches!(stage, Stage::Aggregate(..) | Stage::By(_)));
        Plan {
            conditions,
            shown: shown_fields(pipeline),
            grouping,
            needs_summary,
            detailed,
            time: format!(
                "s.time >= to_timestamp_nanos({}) AND s.time < to_timestamp_nanos({})",
                request.start_ns, request.end_ns
            ),
        }
    }

    /// The columns a scan reads: all of a row ([`Columns::All`]) or the few the first scan
    /// needs to choose traces.
    fn select(&self, columns: Columns) -> String {
        let mut select = vec!["s.trace_id".to_string()];
        if columns == Columns::All {
            select.extend([
                "s.span_id".into(),
                "s.parent_span_id".into(),
                "s.name".into(),
                "s.service_name".into(),
                "s.duration_ns".into(),
            ]);
        }
        select.push("arrow_cast(s.time, 'Int64') AS start_ns".into());
        for (i, sql) in self.conditions.iter().enumerate() {
            select.push(format!("coalesce({sql}, FALSE) AS m{i}"));
        }
        if columns == Columns::All {
            for (i, (_, sql)) in self.shown.iter().enumerate() {
                select.push(format!("arrow_cast({sql}, 'Utf8') AS f{i}"));
            }
            for (i, field) in self.grouping.iter().enumerate() {
                select.push(format!("arrow_cast({}, 'Utf8') AS g{i}", field_sql(field)));
            }
        }
        select.join(", ")
    }

    /// `spans s`, joined to the per-trace summary `tr` of the time range when the conditions
    /// read it (`ids`: only those traces').
    fn from(&self, ids: Option<&str>) -> String {
        if !self.needs_summary {
            return "spans s".into();
        }
        let ids = ids
            .map(|ids| format!(" AND s.trace_id IN ({ids})"))
            .unwrap_or_default();
        format!(
            "spans s JOIN (SELECT trace_id, \
               arrow_cast(max(end_time), 'Int64') - arrow_cast(min(time), 'Int64') AS duration_ns, \
               max(CASE WHEN parent_span_id IS NULL THEN name END) AS root_name, \
               max(CASE WHEN parent_span_id IS NULL THEN service_name END) AS root_service \
             FROM spans s WHERE {}{ids} GROUP BY trace_id) tr ON s.trace_id = tr.trace_id",
            self.time
        )
    }

    /// The first scan: the spans in the time range matching any filter.
    fn candidates(&self) -> String {
        // Bare in the WHERE clause (a NULL fails there as FALSE does), so DataFusion splits a
        // filter's `AND`s into conjuncts the scan evaluates one after the other, cheapest first.
        let any = self
            .conditions
            .iter()
            .map(|c| format!("({c})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let columns = if self.detailed {
            Columns::All
        } else {
            Columns::Choice
        };
        format!(
            "SELECT {} FROM {} WHERE {} AND ({any}) LIMIT {}",
            self.select(columns),
            self.from(None),
            self.time,
            MAX_ROWS + 1
        )
    }

    /// Every span of some traces up to the end of the range (the trace's summary counts them
    /// all; only those inside the range can match).
    fn whole_traces(&self, ids: &str, end_ns: i64) -> String {
        format!(
            "SELECT {} FROM {} WHERE s.trace_id IN ({ids}) AND s.time < to_timestamp_nanos({end_ns})",
            self.select(Columns::All),
            self.from(Some(ids)),
        )
    }
}

/// Which columns a scan of [`Plan::select`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Columns {
    All,
    Choice,
}

/// Runs a span-set query.
pub async fn search(
    engine: &QueryEngine,
    pipeline: &Pipeline,
    request: &SearchRequest,
) -> Result<Vec<TraceMatch>, QueryError> {
    let mut pipeline = pipeline.clone();
    normalise(&mut pipeline.spans);
    let plan = Plan::new(&pipeline, request);
    let output = engine.sql(&plan.candidates()).await?;
    if output.num_rows() > MAX_ROWS {
        return Err(QueryError::BadQuery(format!(
            "the search matched more than {MAX_ROWS} spans: narrow the time range or the query"
        )));
    }
    let mut traces: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for batch in &output.batches {
        read_rows(batch, &plan, &mut traces)?;
    }
    let ancestry = has_ancestry(&pipeline.spans);
    let parents = if ancestry {
        parent_links(engine, traces.keys(), request).await?
    } else {
        HashMap::new()
    };

    // Which traces are kept, newest first by their newest matched span.
    let mut kept: Vec<(String, i64)> = Vec::new();
    for (trace_id, rows) in &traces {
        let sets = span_sets(&pipeline, &plan.grouping, rows, parents.get(trace_id));
        let newest = sets
            .iter()
            .flat_map(|set| &set.spans)
            .map(|i| rows[*i].span.start_ns)
            .max();
        if let Some(newest) = newest {
            kept.push((trace_id.clone(), newest));
        }
    }
    drop(traces);
    kept.sort_by_key(|(id, newest)| (std::cmp::Reverse(*newest), id.clone()));

    // The answer's traces read whole, by id (the bloom filters and the page index find them),
    // only as many as it needs: `limit` at a time, more rounds only when the duration bounds
    // drop some. Their span sets are evaluated again on the whole rows, which the first scan's
    // choice does not change: the same spans match.
    let mut answer: Vec<TraceMatch> = Vec::new();
    for round in kept.chunks(request.limit.max(1)) {
        let ids: Vec<String> = round.iter().map(|(id, _)| quote(id)).collect();
        let output = engine
            .sql(&plan.whole_traces(&ids.join(", "), request.end_ns))
            .await?;
        let mut whole: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for batch in &output.batches {
            read_rows(batch, &plan, &mut whole)?;
        }
        for (trace_id, _) in round {
            let Some(rows) = whole.get_mut(trace_id) else {
                continue;
            };
            let summary = summarise(rows);
            if request
                .min_duration_ns
                .is_some_and(|min| summary.duration_ns < min)
                || request
                    .max_duration_ns
                    .is_some_and(|max| summary.duration_ns > max)
            {
                continue;
            }
            for row in rows.iter_mut() {
                if row.span.start_ns < request.start_ns {
                    row.matches.iter_mut().for_each(|m| *m = false);
                }
            }
            let links = ancestry.then(|| links_of(rows));
            let sets = span_sets(&pipeline, &plan.grouping, rows, links.as_ref());
            if sets.is_empty() {
                continue;
            }
            let span_sets = sets
                .iter()
                .map(|set| {
                    let mut spans: Vec<SpanMatch> =
                        set.spans.iter().map(|i| rows[*i].span.clone()).collect();
                    spans.sort_by_key(|b| std::cmp::Reverse(b.start_ns));
                    let matched = spans.len();
                    spans.truncate(request.spans_per_set);
                    SpanSetMatch {
                        spans,
                        matched,
                        by: set.by.clone(),
                    }
                })
                .collect();
            answer.push(TraceMatch {
                trace_id: trace_id.clone(),
                root_service: summary.root_service,
                root_name: summary.root_name,
                start_ns: summary.start_ns,
                duration_ns: summary.duration_ns,
                span_sets,
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

/// A trace's span sets: the span-set expression, then the stages.
fn span_sets(
    pipeline: &Pipeline,
    grouping: &[Field],
    rows: &[Row],
    parents: Option<&HashMap<String, String>>,
) -> Vec<SpanSet> {
    let spans = eval(&pipeline.spans, rows, &mut 0, parents);
    if spans.is_empty() {
        return Vec::new();
    }
    run_stages(&pipeline.stages, grouping, rows, spans)
}

/// Span id → parent span id within one whole trace.
fn links_of(rows: &[Row]) -> HashMap<String, String> {
    rows.iter()
        .filter_map(|row| Some((row.span_id.clone(), row.parent.clone()?)))
        .collect()
}

/// A trace's root service and name, start and duration, from all its spans.
fn summarise(rows: &[Row]) -> Summary {
    let roots = rows.iter().filter(|row| row.parent.is_none());
    let start_ns = rows.iter().map(|r| r.span.start_ns).min().unwrap_or(0);
    let end_ns = rows
        .iter()
        .map(|r| r.span.start_ns.saturating_add(r.span.duration_ns))
        .max()
        .unwrap_or(start_ns);
    Summary {
        root_service: roots
            .clone()
            .map(|r| r.span.service.as_str())
            .max()
            .unwrap_or_default()
            .to_owned(),
        root_name: roots
            .map(|r| r.span.name.as_str())
            .max()
            .unwrap_or_default()
            .to_owned(),
        start_ns,
        duration_ns: end_ns - start_ns,
    }
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
            FieldExpr::Constant(_) => {}
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

/// The fields the `by(…)` stages group by, each once, in the order they are named.
fn grouping_fields(stages: &[Stage]) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for stage in stages {
        if let Stage::By(by) = stage {
            for field in by {
                if !fields.contains(field) {
                    fields.push(field.clone());
                }
            }
        }
    }
    fields
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

/// Rows of a scan of [`Plan::select`] (either column set) into `traces`; the columns a
/// [`Columns::Choice`] scan leaves out read as empty.
fn read_rows(
    batch: &RecordBatch,
    plan: &Plan,
    traces: &mut BTreeMap<String, Vec<Row>>,
) -> Result<(), QueryError> {
    let trace_id = strings(batch, "trace_id")?;
    let optional = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
    };
    let span_id = optional("span_id");
    let parent = optional("parent_span_id");
    let name = optional("name");
    let service = optional("service_name");
    let start = batch
        .column_by_name("start_ns")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| QueryError::Internal("search rows have no start_ns".into()))?;
    let duration = batch
        .column_by_name("duration_ns")
        .and_then(|c| c.as_primitive_opt::<Int64Type>());
    let matches: Vec<&BooleanArray> = (0..plan.conditions.len())
        .map(|i| {
            batch
                .column_by_name(&format!("m{i}"))
                .and_then(|c| c.as_boolean_opt())
                .ok_or_else(|| QueryError::Internal(format!("search rows have no m{i}")))
        })
        .collect::<Result<_, _>>()?;
    let values: Vec<(&String, &StringArray)> = plan
        .shown
        .iter()
        .enumerate()
        .filter_map(|(i, (key, _))| optional(&format!("f{i}")).map(|array| (key, array)))
        .collect();
    let groups: Vec<Option<&StringArray>> = (0..plan.grouping.len())
        .map(|i| optional(&format!("g{i}")))
        .collect();
    let text = |array: Option<&StringArray>, row: usize| array.and_then(|a| opt(a, row));
    for row in 0..batch.num_rows() {
        let attributes = values
            .iter()
            .filter_map(|(key, array)| opt(array, row).map(|v| ((*key).clone(), v)))
            .collect();
        let span_id = text(span_id, row).unwrap_or_default();
        traces
            .entry(trace_id.value(row).to_owned())
            .or_default()
            .push(Row {
                span_id: span_id.clone(),
                parent: text(parent, row),
                matches: matches.iter().map(|m| m.value(row)).collect(),
                groups: groups.iter().map(|g| text(*g, row)).collect(),
                span: SpanMatch {
                    span_id,
                    name: text(name, row).unwrap_or_default(),
                    service: text(service, row).unwrap_or_default(),
                    start_ns: start.value(row),
                    duration_ns: duration.map_or(0, |d| d.value(row)),
                    attributes,
                },
            });
    }
    Ok(())
}

/// True when the span-set expression relates spans to each other (`>`, `>>`, `~` …), which
/// needs their ids and parents.
fn has_structure(expr: &SpansetExpr) -> bool {
    match expr {
        SpansetExpr::Filter(_) => false,
        SpansetExpr::Binary(left, op, right) => {
            !matches!(op, SpansetOp::And | SpansetOp::Or)
                || has_structure(left)
                || has_structure(right)
        }
    }
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

/// A trace's span sets after the stages, starting from the one set the span-set expression
/// yielded; empty when the stages dropped them all.
fn run_stages(
    stages: &[Stage],
    grouping: &[Field],
    rows: &[Row],
    spans: Vec<usize>,
) -> Vec<SpanSet> {
    let mut sets = vec![SpanSet {
        spans,
        by: Vec::new(),
    }];
    for stage in stages {
        sets = match stage {
            Stage::By(fields) => sets
                .into_iter()
                .flat_map(|set| split(set, fields, grouping, rows))
                .collect(),
            Stage::Coalesce => {
                let mut spans: Vec<usize> = sets.into_iter().flat_map(|set| set.spans).collect();
                spans.sort_unstable();
                spans.dedup();
                if spans.is_empty() {
                    Vec::new()
                } else {
                    vec![SpanSet {
                        spans,
                        by: Vec::new(),
                    }]
                }
            }
            Stage::Select(_) => sets,
            Stage::Count(..) | Stage::Aggregate(..) => sets
                .into_iter()
                .filter(|set| keeps(stage, rows, &set.spans))
                .collect(),
        };
        if sets.is_empty() {
            break;
        }
    }
    sets
}

/// One span set split by the values of `fields` (their positions in `grouping` say which of a
/// row's group values to read), in the order of the values.
fn split(set: SpanSet, fields: &[Field], grouping: &[Field], rows: &[Row]) -> Vec<SpanSet> {
    let positions: Vec<usize> = fields
        .iter()
        .filter_map(|field| grouping.iter().position(|g| g == field))
        .collect();
    let mut groups: BTreeMap<Vec<Option<&str>>, Vec<usize>> = BTreeMap::new();
    for i in set.spans {
        let key = positions
            .iter()
            .map(|p| rows[i].groups[*p].as_deref())
            .collect();
        groups.entry(key).or_default().push(i);
    }
    groups
        .into_iter()
        .map(|(values, spans)| {
            let mut by = set.by.clone();
            by.extend(
                fields
                    .iter()
                    .zip(values)
                    .map(|(field, value)| (format!("by({field})"), value.map(str::to_owned))),
            );
            SpanSet { spans, by }
        })
        .collect()
}

/// Whether a filtering stage keeps a span set.
fn keeps(stage: &Stage, rows: &[Row], spans: &[usize]) -> bool {
    match stage {
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
    }
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

/// Root service and name, start and duration of a trace.
struct Summary {
    root_service: String,
    root_name: String,
    start_ns: i64,
    duration_ns: i64,
}
