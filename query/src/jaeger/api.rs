//! The Jaeger query HTTP API, under `/jaeger` on the HTTP port (Grafana's Jaeger data source URL
//! is `http://<host>:4318/jaeger`):
//!
//! | route | `data` |
//! |---|---|
//! | `GET /jaeger/api/services` | service names (Grafana's Save & test) |
//! | `GET /jaeger/api/services/<service>/operations` | the service's span names |
//! | `GET /jaeger/api/operations?service=&spanKind=` | `{name, spanKind}` pairs |
//! | `GET /jaeger/api/traces?service=&operation=&tags=&start=&end=&minDuration=&maxDuration=&limit=` | whole traces, newest first |
//! | `GET /jaeger/api/traces/<id>` | `[trace]`, 404 when unknown |
//! | `GET /jaeger/api/dependencies?endTs=&lookback=` | `{parent, child, callCount}` service pairs (from the derived service graph, else from parent/child spans) |
//!
//! Every answer has Jaeger's envelope `{"data", "total", "limit", "offset", "errors"}`; a failure
//! has `data: null` and `errors: [{code, msg}]` with that HTTP status. Times in parameters are
//! microseconds (`start`, `end`) or milliseconds (`endTs`, `lookback`), as Jaeger takes them; the
//! trace-by-id window also takes milliseconds, which Grafana's backend sends there.
//!
//! A search is one aggregate scan over the time range: the spans of the service (and operation,
//! tags, duration bounds) grouped by trace, the newest `limit` traces kept; then one id-pruned
//! scan reads those traces whole.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::jaeger_trace;
use lumen_storage::schema::SPAN_METRICS_SCOPE;

use crate::error::QueryError;
use crate::sql::session::QueryEngine;
use crate::traceql::ast::{AttributeScope, CompareOp, Field, FieldExpr, Intrinsic, Literal};
use crate::traceql::sql::{condition, quote};
use crate::traces::{
    TraceId, TraceWindow, fetch_traces, now_ns, parse_go_duration, parse_trace_id,
};

/// Traces a search returns unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` taken (Jaeger's UI offers at most 1500).
pub const MAX_LIMIT: usize = 1_500;
/// The window searched when `start` is absent: the hour before `end`.
pub const DEFAULT_SEARCH_WINDOW_US: i64 = 3_600 * 1_000_000;
/// The longest window one search may cover.
pub const MAX_SEARCH_WINDOW_US: i64 = 31 * 86_400 * 1_000_000;
/// The dependency window when `lookback` is absent: a day.
pub const DEFAULT_LOOKBACK_MS: i64 = 86_400 * 1_000;

/// The Jaeger API routes, nested under `/jaeger`, ready to be merged into the server's router.
pub fn jaeger_router(engine: Arc<QueryEngine>) -> Router {
    let api = Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{id}", get(trace))
        .route("/api/dependencies", get(dependencies))
        .with_state(engine);
    Router::new().nest("/jaeger", api)
}

/// Jaeger's envelope around an answer.
fn ok(data: Value) -> Response {
    let total = data.as_array().map_or(0, Vec::len);
    axum::Json(json!({
        "data": data,
        "total": total,
        "limit": 0,
        "offset": 0,
        "errors": null,
    }))
    .into_response()
}

/// Jaeger's envelope around a failure.
fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({
            "data": null,
            "total": 0,
            "limit": 0,
            "offset": 0,
            "errors": [{"code": status.as_u16(), "msg": message.into()}],
        })),
    )
        .into_response()
}

fn query_error(err: &QueryError) -> Response {
    fail(err.status(), err.to_string())
}

/// The values of one text column of a SQL answer.
async fn strings(engine: &QueryEngine, sql: &str, column: &str) -> Result<Vec<String>, QueryError> {
    let output = engine.sql(sql).await?;
    let mut out = Vec::new();
    for batch in &output.batches {
        let array = batch
            .column_by_name(column)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| QueryError::Internal(format!("no text column {column}")))?;
        out.extend(
            (0..array.len())
                .filter(|i| !array.is_null(*i))
                .map(|i| array.value(i).to_owned()),
        );
    }
    Ok(out)
}

async fn services(State(engine): State<Arc<QueryEngine>>) -> Response {
    let sql = "SELECT DISTINCT service_name FROM spans WHERE service_name IS NOT NULL \
               ORDER BY service_name";
    match strings(&engine, sql, "service_name").await {
        Ok(names) => ok(json!(names)),
        Err(err) => query_error(&err),
    }
}

async fn service_operations(
    State(engine): State<Arc<QueryEngine>>,
    Path(service): Path<String>,
) -> Response {
    let sql = format!(
        "SELECT DISTINCT name FROM spans WHERE service_name = {} ORDER BY name",
        quote(&service)
    );
    match strings(&engine, &sql, "name").await {
        Ok(names) => ok(json!(names)),
        Err(err) => query_error(&err),
    }
}

/// The span kinds Jaeger names, as `spans.kind` stores them.
const SPAN_KINDS: [&str; 5] = ["server", "client", "producer", "consumer", "internal"];

async fn operations(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(service) = params.get("service").filter(|s| !s.is_empty()) else {
        return fail(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    let mut sql = format!(
        "SELECT DISTINCT name, kind FROM spans WHERE service_name = {}",
        quote(service)
    );
    match params.get("spanKind").map(|k| k.to_ascii_lowercase()) {
        None => {}
        Some(kind) if kind.is_empty() => {}
        Some(kind) if SPAN_KINDS.contains(&kind.as_str()) => {
            sql.push_str(&format!(" AND kind = {}", quote(&kind)));
        }
        Some(kind) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown spanKind {kind:?}: expected one of {}",
                    SPAN_KINDS.join(", ")
                ),
            );
        }
    }
    sql.push_str(" ORDER BY name, kind");
    let output = match engine.sql(&sql).await {
        Ok(output) => output,
        Err(err) => return query_error(&err),
    };
    let mut answer = Vec::new();
    for batch in &output.batches {
        let (Some(names), Some(kinds)) = (
            batch
                .column_by_name("name")
                .and_then(|c| c.as_string_opt::<i32>()),
            batch
                .column_by_name("kind")
                .and_then(|c| c.as_string_opt::<i32>()),
        ) else {
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "operations have no name or kind",
            );
        };
        for i in 0..batch.num_rows() {
            let kind = match kinds.is_null(i) {
                true => "",
                false if kinds.value(i) == "unspecified" => "",
                false => kinds.value(i),
            };
            answer.push(json!({"name": names.value(i), "spanKind": kind}));
        }
    }
    ok(Value::Array(answer))
}

/// A checked `/api/traces` search.
#[derive(Debug, PartialEq)]
struct SearchRequest {
    /// What the spans must be: service, operation, tags and duration bounds, as one TraceQL
    /// condition.
    condition: FieldExpr,
    start_us: i64,
    end_us: i64,
    limit: usize,
}

/// The parameters of `/api/traces` (a search), checked. `params` keeps repeated keys (`tag`).
fn search_request(params: &[(String, String)], now_us: i64) -> Result<SearchRequest, String> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    };
    let service = get("service").ok_or("parameter 'service' is required")?;
    let mut condition = FieldExpr::Compare(
        Field::Attribute(AttributeScope::Resource, "service.name".into()),
        CompareOp::Eq,
        Literal::String(service.into()),
    );
    let mut and = |expr: FieldExpr| {
        let previous = std::mem::replace(
            &mut condition,
            FieldExpr::Exists(Field::Intrinsic(Intrinsic::Name)),
        );
        condition = FieldExpr::And(Box::new(previous), Box::new(expr));
    };
    if let Some(operation) = get("operation") {
        and(FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Name),
            CompareOp::Eq,
            Literal::String(operation.into()),
        ));
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    if let Some(json) = get("tags") {
        let map: serde_json::Map<String, Value> = serde_json::from_str(json).map_err(|e| {
            format!("invalid tags {json:?}: expected a JSON object of key to value ({e})")
        })?;
        for (key, value) in map {
            let value = match value {
                Value::String(s) => s,
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => {
                    return Err(format!(
                        "invalid tags: the value of {key:?} is not a string"
                    ));
                }
            };
            tags.push((key, value));
        }
    }
    for (_, pair) in params.iter().filter(|(k, _)| k == "tag") {
        let (key, value) = pair
            .split_once(':')
            .ok_or_else(|| format!("invalid tag {pair:?}: expected key:value"))?;
        tags.push((key.to_owned(), value.to_owned()));
    }
    for (key, value) in tags {
        and(tag_condition(&key, &value)?);
    }
    let duration = |name: &str| -> Result<Option<i64>, String> {
        get(name)
            .map(|v| parse_go_duration(v).map_err(|m| format!("invalid {name}: {m}")))
            .transpose()
    };
    if let Some(min) = duration("minDuration")? {
        and(FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Duration),
            CompareOp::Ge,
            Literal::Duration(min),
        ));
    }
    if let Some(max) = duration("maxDuration")? {
        and(FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Duration),
            CompareOp::Le,
            Literal::Duration(max),
        ));
    }
    let micros = |name: &str| -> Result<Option<i64>, String> {
        get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("invalid {name} {v:?}: expected Unix microseconds"))
            })
            .transpose()
    };
    let end_us = micros("end")?.unwrap_or(now_us);
    let start_us = micros("start")?.unwrap_or(end_us - DEFAULT_SEARCH_WINDOW_US);
    if end_us < start_us {
        return Err("end is before start".into());
    }
    if end_us - start_us > MAX_SEARCH_WINDOW_US {
        return Err(format!(
            "the time range from start to end is longer than {} days: search a shorter range",
            MAX_SEARCH_WINDOW_US / 86_400_000_000
        ));
    }
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(value) => match value.parse::<usize>() {
            Ok(0) => DEFAULT_LIMIT,
            Ok(n) if n <= MAX_LIMIT => n,
            Ok(n) => {
                return Err(format!(
                    "limit {n} is more than the most allowed, {MAX_LIMIT}"
                ));
            }
            Err(_) => return Err(format!("invalid limit {value:?}: expected a whole number")),
        },
    };
    Ok(SearchRequest {
        condition,
        start_us,
        end_us,
        limit,
    })
}

/// One Jaeger tag filter as a condition. The tags Jaeger derives (`error`, `span.kind`,
/// `otel.status_code`, `otel.status_description`) match the span's status and kind; any other
/// key matches the span's attribute or its resource's, compared as text.
fn tag_condition(key: &str, value: &str) -> Result<FieldExpr, String> {
    let intrinsic =
        |intrinsic, op, literal| FieldExpr::Compare(Field::Intrinsic(intrinsic), op, literal);
    Ok(match key {
        "error" => match value {
            "true" => intrinsic(
                Intrinsic::Status,
                CompareOp::Eq,
                Literal::String("error".into()),
            ),
            "false" => intrinsic(
                Intrinsic::Status,
                CompareOp::Ne,
                Literal::String("error".into()),
            ),
            _ => {
                return Err(format!(
                    "invalid tag error={value:?}: expected true or false"
                ));
            }
        },
        "span.kind" => intrinsic(
            Intrinsic::Kind,
            CompareOp::Eq,
            Literal::String(value.to_ascii_lowercase()),
        ),
        "otel.status_code" => intrinsic(
            Intrinsic::Status,
            CompareOp::Eq,
            Literal::String(value.to_ascii_lowercase()),
        ),
        "otel.status_description" => intrinsic(
            Intrinsic::StatusMessage,
            CompareOp::Eq,
            Literal::String(value.into()),
        ),
        _ => FieldExpr::Compare(
            Field::Attribute(AttributeScope::Any, key.into()),
            CompareOp::Eq,
            Literal::String(value.into()),
        ),
    })
}

async fn search(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let request = match search_request(&params, now_ns() / 1_000) {
        Ok(request) => request,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    let ids = match matching_traces(&engine, &request).await {
        Ok(ids) => ids,
        Err(err) => return query_error(&err),
    };
    match fetch_traces(&engine, &ids, TraceWindow::default()).await {
        Ok(traces) => ok(Value::Array(
            traces
                .iter()
                .map(|(id, trace)| jaeger_trace(id, trace))
                .collect(),
        )),
        Err(err) => query_error(&err),
    }
}

/// The ids of the newest `limit` traces with a span matching the request.
async fn matching_traces(
    engine: &QueryEngine,
    request: &SearchRequest,
) -> Result<Vec<TraceId>, QueryError> {
    // The condition's SQL quotes every user-typed text; the bounds are integers.
    let sql = format!(
        "SELECT s.trace_id, arrow_cast(max(s.time), 'Int64') AS newest FROM spans s \
         WHERE s.time >= to_timestamp_nanos({}) AND s.time <= to_timestamp_nanos({}) AND {} \
         GROUP BY s.trace_id ORDER BY newest DESC, s.trace_id LIMIT {}",
        request.start_us.saturating_mul(1_000),
        request.end_us.saturating_mul(1_000),
        condition(Some(&request.condition)),
        request.limit
    );
    Ok(strings(engine, &sql, "trace_id")
        .await?
        .iter()
        .filter_map(|id| parse_trace_id(id))
        .collect())
}

async fn trace(
    State(engine): State<Arc<QueryEngine>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(trace_id) = parse_trace_id(&id) else {
        return fail(
            StatusCode::BAD_REQUEST,
            format!("invalid trace id {id:?}: expected 1 to 32 hex digits, not all zeros"),
        );
    };
    // Grafana's browser sends microseconds, its backend milliseconds: a value below 10^14 (in
    // µs, 1973) is taken as milliseconds.
    let micros = |name: &str| -> Result<Option<i64>, String> {
        match params.get(name).map(|v| v.trim()) {
            None | Some("") | Some("0") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|t| match t < 100_000_000_000_000 {
                    true => Some(t.saturating_mul(1_000_000)),
                    false => Some(t.saturating_mul(1_000)),
                })
                .map_err(|_| format!("invalid {name} {v:?}: expected Unix microseconds")),
        }
    };
    let window = match (micros("start"), micros("end")) {
        (Ok(start_ns), Ok(end_ns)) => TraceWindow { start_ns, end_ns },
        (Err(message), _) | (_, Err(message)) => return fail(StatusCode::BAD_REQUEST, message),
    };
    match fetch_traces(&engine, &[trace_id], window).await {
        Ok(traces) => match traces.first() {
            Some((id, trace)) => ok(json!([jaeger_trace(id, trace)])),
            None => fail(StatusCode::NOT_FOUND, "trace not found"),
        },
        Err(err) => query_error(&err),
    }
}

/// The checked window of `/api/dependencies`, in Unix milliseconds.
fn dependencies_window(
    params: &HashMap<String, String>,
    now_ms: i64,
) -> Result<(i64, i64), String> {
    let millis = |name: &str| -> Result<Option<i64>, String> {
        match params.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("invalid {name} {v:?}: expected milliseconds")),
        }
    };
    let end = millis("endTs")?.unwrap_or(now_ms);
    let lookback = millis("lookback")?.unwrap_or(DEFAULT_LOOKBACK_MS);
    if lookback <= 0 {
        return Err(format!(
            "invalid lookback {lookback}: expected a positive number of milliseconds"
        ));
    }
    if lookback > MAX_SEARCH_WINDOW_US / 1_000 {
        return Err(format!(
            "lookback {lookback} ms is longer than {} days: ask for a shorter range",
            MAX_SEARCH_WINDOW_US / 86_400_000_000
        ));
    }
    Ok((end - lookback, end))
}

async fn dependencies(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (start_ms, end_ms) = match dependencies_window(&params, now_ns() / 1_000_000) {
        Ok(window) => window,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    // The service graph Lumen derives at ingest has the calls already paired and counted: a sum
    // over the window's delta points, cheap at any scale. Without it (span metrics off, or no
    // paired call in the window), a call is a span whose parent span belongs to another service:
    // a self-join of the window's spans.
    let graph = format!(
        "SELECT attributes['client'] AS parent, attributes['server'] AS child, \
           arrow_cast(sum(coalesce(arrow_cast(value_int, 'Float64'), value)), 'Int64') AS calls \
         FROM metrics \
         WHERE metric_name = 'traces_service_graph_request_total' AND scope_name = '{SPAN_METRICS_SCOPE}' \
           AND time >= to_timestamp_millis({start_ms}) AND time <= to_timestamp_millis({end_ms}) \
           AND coalesce(attributes['connection_type'], '') <> 'database' \
           AND attributes['client'] <> attributes['server'] \
         GROUP BY 1, 2 ORDER BY parent, child"
    );
    let window = |alias: &str| {
        format!(
            "{alias}.time >= to_timestamp_millis({start_ms}) AND {alias}.time <= to_timestamp_millis({end_ms})"
        )
    };
    let spans = format!(
        "SELECT p.service_name AS parent, c.service_name AS child, count(*) AS calls \
         FROM spans c JOIN spans p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id \
         WHERE {} AND {} AND p.service_name <> c.service_name \
         GROUP BY p.service_name, c.service_name ORDER BY parent, child",
        window("c"),
        window("p")
    );
    let mut answer = Vec::new();
    for sql in [graph, spans] {
        let output = match engine.sql(&sql).await {
            Ok(output) => output,
            Err(err) => return query_error(&err),
        };
        for batch in &output.batches {
            let (Some(parents), Some(children), Some(calls)) = (
                batch
                    .column_by_name("parent")
                    .and_then(|c| c.as_string_opt::<i32>()),
                batch
                    .column_by_name("child")
                    .and_then(|c| c.as_string_opt::<i32>()),
                batch
                    .column_by_name("calls")
                    .and_then(|c| c.as_primitive_opt::<Int64Type>()),
            ) else {
                return fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "dependencies have no parent, child or calls",
                );
            };
            for i in 0..batch.num_rows() {
                if parents.is_null(i) || children.is_null(i) {
                    continue;
                }
                answer.push(json!({
                    "parent": parents.value(i),
                    "child": children.value(i),
                    "callCount": calls.value(i),
                }));
            }
        }
        if !answer.is_empty() {
            break;
        }
    }
    ok(Value::Array(answer))
}

#[cfg(test)]
mod tests;
