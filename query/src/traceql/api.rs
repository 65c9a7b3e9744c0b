//! The Tempo HTTP API on the HTTP port, beside the Prometheus API's `/api/v1/…`:
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/echo` | `echo` (Grafana's Save & test) |
//! | `GET /api/status/buildinfo` | a bare buildinfo object naming the Tempo API version served |
//! | `GET /api/v2/traces/<id>` | protobuf `TraceByIDResponse` (`Accept: application/protobuf`), else `{"trace": …}` OTLP/JSON |
//! | `GET /api/traces/<id>` | the bare protobuf trace (OTLP `TracesData` layout), else `{"batches": […]}` |
//! | `GET /api/search` | traces matching `q` (TraceQL) or `tags` (logfmt), newest first |
//! | `GET /api/search/tags`, `GET /api/v2/search/tags` | attribute keys (v2: by scope, with the intrinsics) |
//! | `GET /api/search/tag/<tag>/values`, `GET /api/v2/search/tag/<tag>/values` | distinct values (v2: typed; `q` narrows them) |
//! | `GET /api/metrics/query_range` | a TraceQL metrics query (`{…} \| rate() by (…)`) as series of samples per step |
//! | `GET /api/metrics/query` | the same over the whole range, one value per series |
//!
//! Ids are 1–32 hex digits (shorter ids are left-padded, as Tempo takes 64-bit ids); a malformed
//! id is a 400, an unknown one a 404. `start` and `end` (Unix seconds) narrow the lookup to the
//! spans overlapping that window; without them every partition is looked in, the `trace_id` bloom
//! filters skipping the segments that cannot hold the trace.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;
use serde_json::json;

use super::ast::{
    AttributeScope, CompareOp, Field, FieldExpr, Intrinsic, Literal, Pipeline, Query as TraceQuery,
    SpansetExpr,
};
use super::metrics::{MAX_STEPS, MetricsRange, MetricsSeries, query_range};
use super::parser::parse;
use super::search::{SearchRequest, SpanSetMatch, TraceMatch, search as run_search};
use super::tags::{TagScope, TagValue, TagsRequest, tag_names, tag_values};
use crate::error::QueryError;
use crate::sql::session::QueryEngine;
use crate::traces::{TraceWindow, fetch_trace, now_ns, parse_go_duration, parse_trace_id};

/// The Tempo API version whose behaviour these routes follow (reported by buildinfo, which
/// Grafana reads to pick the features it uses).
pub const TEMPO_API_VERSION: &str = "2.8.0";

/// The Tempo API routes, ready to be merged into the server's router.
pub fn tempo_router(engine: Arc<QueryEngine>) -> Router {
    Router::new()
        .route("/api/echo", get(echo))
        .route("/api/status/buildinfo", get(buildinfo))
        .route("/api/traces/{id}", get(trace_v1))
        .route("/api/v2/traces/{id}", get(trace_v2))
        .route("/api/search", get(search))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{tag}/values", get(tag_values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(tag_values_v2))
        .route("/api/metrics/query_range", get(metrics_query_range))
        .route("/api/metrics/query", get(metrics_query_instant))
        .with_state(engine)
}

async fn echo() -> &'static str {
    "echo"
}

async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": TEMPO_API_VERSION,
        "revision": concat!("lumen-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}

/// Which of the two trace-by-id routes answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

async fn trace_v1(
    State(engine): State<Arc<QueryEngine>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    trace_by_id(&engine, &id, &params, &headers, Version::V1).await
}

async fn trace_v2(
    State(engine): State<Arc<QueryEngine>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    trace_by_id(&engine, &id, &params, &headers, Version::V2).await
}

async fn trace_by_id(
    engine: &QueryEngine,
    id: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    version: Version,
) -> Response {
    let Some(trace_id) = parse_trace_id(id) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("invalid trace id {id:?}: expected 1 to 32 hex digits, not all zeros"),
        );
    };
    let window = match window(params) {
        Ok(window) => window,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let trace = match fetch_trace(engine, &trace_id, window).await {
        Ok(Some(trace)) => trace,
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("trace not found: {}", hex::encode(trace_id)),
            );
        }
        Err(err) => return query_error(&err),
    };
    if wants_protobuf(headers) {
        let body = match version {
            Version::V1 => trace.encode_to_vec(),
            Version::V2 => trace_by_id_response(&trace),
        };
        return (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/protobuf"),
            )],
            body,
        )
            .into_response();
    }
    let body = match version {
        Version::V1 => serde_json::to_vec(&json!({ "batches": trace.resource_spans })),
        Version::V2 => serde_json::to_vec(&json!({ "trace": trace })),
    };
    match body {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the trace as JSON: {err}"),
        ),
    }
}

/// Tempo's `TraceByIDResponse { Trace trace = 1; … }`, whose `Trace` has the wire layout of
/// OTLP `TracesData`: the encoded trace as field 1.
fn trace_by_id_response(trace: &TracesData) -> Vec<u8> {
    let inner = trace.encode_to_vec();
    let mut out = Vec::with_capacity(inner.len() + 11);
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(&inner);
    out
}

/// True when the client asks for protobuf (Grafana sends `Accept: application/protobuf`).
fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .any(|v| {
            v.eq_ignore_ascii_case("application/protobuf")
                || v.eq_ignore_ascii_case("application/x-protobuf")
        })
}

/// The optional `start` / `end` parameters (Unix seconds) as a lookup window.
fn window(params: &HashMap<String, String>) -> Result<TraceWindow, String> {
    let seconds = |name: &str| -> Result<Option<i64>, String> {
        match params.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(value) => {
                let parsed: i64 = value.parse().map_err(|_| {
                    format!("invalid {name} {value:?}: expected Unix seconds, like 1700000000")
                })?;
                // Zero is what clients send for "no bound".
                if parsed == 0 {
                    return Ok(None);
                }
                parsed
                    .checked_mul(1_000_000_000)
                    .filter(|ns| *ns > 0)
                    .map(Some)
                    .ok_or_else(|| format!("{name} {value} is out of range"))
            }
        }
    };
    let window = TraceWindow {
        start_ns: seconds("start")?,
        end_ns: seconds("end")?,
    };
    if let (Some(start), Some(end)) = (window.start_ns, window.end_ns)
        && end < start
    {
        return Err("end is before start".into());
    }
    Ok(window)
}

/// Traces returned by a search unless `limit` says otherwise (Tempo's default).
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` taken.
pub const MAX_LIMIT: usize = 10_000;
/// Spans per span set unless `spss` says otherwise (Tempo's default).
pub const DEFAULT_SPANS_PER_SET: usize = 3;
/// The largest `spss` taken.
pub const MAX_SPANS_PER_SET: usize = 1_000;
/// The window searched when `start` / `end` are absent: the last hour.
pub const DEFAULT_SEARCH_WINDOW_NS: i64 = 3_600 * 1_000_000_000;
/// The longest window one search may cover.
pub const MAX_SEARCH_WINDOW_NS: i64 = 31 * 86_400 * 1_000_000_000;

async fn search(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (pipeline, request) = match search_request(&params, now_ns()) {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    match run_search(&engine, &pipeline, &request).await {
        Ok(traces) => axum::Json(search_answer(&traces)).into_response(),
        Err(err) => query_error(&err),
    }
}

/// The parameters of `/api/search`, checked.
fn search_request(
    params: &HashMap<String, String>,
    now_ns: i64,
) -> Result<(Pipeline, SearchRequest), String> {
    let get = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let pipeline = match (get("q"), get("tags")) {
        (Some(q), _) => match parse(q).map_err(|e| e.to_string())? {
            TraceQuery::Spans(pipeline) => pipeline,
            TraceQuery::Metrics(_) => {
                return Err(
                    "a TraceQL metrics query goes to /api/metrics/query_range, not /api/search"
                        .into(),
                );
            }
        },
        (None, Some(tags)) => tags_pipeline(tags)?,
        (None, None) => Pipeline {
            spans: SpansetExpr::Filter(None),
            stages: Vec::new(),
        },
    };
    let count = |name: &str, default: usize, max: usize| -> Result<usize, String> {
        match get(name) {
            None => Ok(default),
            Some(value) => match value.parse::<usize>() {
                Ok(0) => Ok(default),
                Ok(n) if n <= max => Ok(n),
                Ok(n) => Err(format!("{name} {n} is more than the most allowed, {max}")),
                Err(_) => Err(format!("invalid {name} {value:?}: expected a whole number")),
            },
        }
    };
    let limit = count("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let spans_per_set = count("spss", DEFAULT_SPANS_PER_SET, MAX_SPANS_PER_SET)?;
    let window = window(params)?;
    let end_ns = window.end_ns.unwrap_or(now_ns).saturating_add(1);
    let start_ns = window
        .start_ns
        .unwrap_or(end_ns.saturating_sub(DEFAULT_SEARCH_WINDOW_NS));
    if end_ns.saturating_sub(start_ns) > MAX_SEARCH_WINDOW_NS {
        return Err(format!(
            "the time range from start to end is longer than {} days: search a shorter range",
            MAX_SEARCH_WINDOW_NS / 86_400_000_000_000
        ));
    }
    let duration = |name: &str| -> Result<Option<i64>, String> {
        get(name)
            .map(|v| parse_go_duration(v).map_err(|m| format!("invalid {name}: {m}")))
            .transpose()
    };
    let request = SearchRequest {
        start_ns,
        end_ns,
        limit,
        spans_per_set,
        min_duration_ns: duration("minDuration")?,
        max_duration_ns: duration("maxDuration")?,
    };
    Ok((pipeline, request))
}

/// The legacy `tags` parameter (logfmt `key=value` pairs, values optionally quoted) as one
/// span set: every pair must hold, on the span or its resource.
fn tags_pipeline(tags: &str) -> Result<Pipeline, String> {
    let mut condition: Option<FieldExpr> = None;
    let mut rest = tags.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("invalid tags {tags:?}: expected key=value pairs"))?;
        let key = key.trim();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("invalid tags {tags:?}: a quoted value is not closed"))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("invalid tags {tags:?}: expected key=value pairs"));
        }
        let field = match key {
            "name" | "status" | "kind" => {
                return Err(format!(
                    "the tag {key} is an intrinsic: search it with TraceQL, e.g. q={{ {key} = … }}"
                ));
            }
            _ => Field::Attribute(AttributeScope::Any, key.to_string()),
        };
        let compare = FieldExpr::Compare(field, CompareOp::Eq, Literal::String(value.to_string()));
        condition = Some(match condition {
            None => compare,
            Some(previous) => FieldExpr::And(Box::new(previous), Box::new(compare)),
        });
        rest = after.trim_start();
    }
    Ok(Pipeline {
        spans: SpansetExpr::Filter(condition),
        stages: Vec::new(),
    })
}

/// A search answer as Tempo writes it.
fn search_answer(traces: &[TraceMatch]) -> serde_json::Value {
    let traces: Vec<serde_json::Value> = traces
        .iter()
        .map(|trace| {
            let sets: Vec<serde_json::Value> = trace.span_sets.iter().map(span_set_json).collect();
            json!({
                "traceID": trace.trace_id,
                "rootServiceName": if trace.root_service.is_empty() { "<root span not yet received>" } else { trace.root_service.as_str() },
                "rootTraceName": trace.root_name,
                "startTimeUnixNano": trace.start_ns.to_string(),
                "durationMs": trace.duration_ns / 1_000_000,
                // `spanSet` is the older clients' field: the first set.
                "spanSet": sets.first().cloned().unwrap_or_else(|| json!({"spans": [], "matched": 0})),
                "spanSets": sets,
            })
        })
        .collect();
    json!({
        "traces": traces,
        "metrics": {"inspectedTraces": traces.len(), "completedJobs": 1, "totalJobs": 1},
    })
}

/// One span set: its spans with the attributes the query names, how many matched, and (after
/// `by(…)`) the values it was grouped by as its own attributes.
fn span_set_json(set: &SpanSetMatch) -> serde_json::Value {
    let spans: Vec<serde_json::Value> = set
        .spans
        .iter()
        .map(|span| {
            let mut attributes = vec![json!({
                "key": "service.name",
                "value": {"stringValue": span.service},
            })];
            attributes.extend(
                span.attributes
                    .iter()
                    .filter(|(k, _)| k != "service.name")
                    .map(|(key, value)| json!({"key": key, "value": {"stringValue": value}})),
            );
            json!({
                "spanID": span.span_id,
                "name": span.name,
                "startTimeUnixNano": span.start_ns.to_string(),
                "durationNanos": span.duration_ns.to_string(),
                "attributes": attributes,
            })
        })
        .collect();
    let mut out = json!({"spans": spans, "matched": set.matched});
    let by: Vec<serde_json::Value> = set
        .by
        .iter()
        .filter_map(|(key, value)| {
            value
                .as_ref()
                .map(|value| json!({"key": key, "value": {"stringValue": value}}))
        })
        .collect();
    if !by.is_empty() {
        out["attributes"] = serde_json::Value::Array(by);
    }
    out
}

/// Names or values a tags request returns unless `limit` says otherwise.
pub const DEFAULT_TAGS_LIMIT: usize = 5_000;
/// The largest `limit` a tags request takes.
pub const MAX_TAGS_LIMIT: usize = 100_000;

/// The time range and cap of a tags request (the last hour by default, as searches).
fn tags_request(params: &HashMap<String, String>, now_ns: i64) -> Result<TagsRequest, String> {
    let window = window(params)?;
    let end_ns = window.end_ns.unwrap_or(now_ns).saturating_add(1);
    let start_ns = window
        .start_ns
        .unwrap_or(end_ns.saturating_sub(DEFAULT_SEARCH_WINDOW_NS));
    if end_ns.saturating_sub(start_ns) > MAX_SEARCH_WINDOW_NS {
        return Err(format!(
            "the time range from start to end is longer than {} days",
            MAX_SEARCH_WINDOW_NS / 86_400_000_000_000
        ));
    }
    let limit = match params
        .get("limit")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => DEFAULT_TAGS_LIMIT,
        Some(value) => match value.parse::<usize>() {
            Ok(0) => DEFAULT_TAGS_LIMIT,
            Ok(n) if n <= MAX_TAGS_LIMIT => n,
            _ => {
                return Err(format!(
                    "invalid limit {value:?}: expected a whole number up to {MAX_TAGS_LIMIT}"
                ));
            }
        },
    };
    Ok(TagsRequest {
        start_ns,
        end_ns,
        limit,
    })
}

/// The scopes a tags request asks for (`scope=span|resource|intrinsic`, all by default).
fn scopes(params: &HashMap<String, String>) -> Result<(Vec<TagScope>, bool), String> {
    match params.get("scope").map(|v| v.trim()) {
        None | Some("") | Some("all") => Ok((vec![TagScope::Resource, TagScope::Span], true)),
        Some("span") => Ok((vec![TagScope::Span], false)),
        Some("resource") => Ok((vec![TagScope::Resource], false)),
        Some("intrinsic") => Ok((Vec::new(), true)),
        Some(other) => Err(format!(
            "unknown scope {other:?}: use span, resource, intrinsic or all"
        )),
    }
}

async fn tags_v1(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (request, (scopes, _)) =
        match tags_request(&params, now_ns()).and_then(|r| Ok((r, scopes(&params)?))) {
            Ok(parsed) => parsed,
            Err(message) => return text(StatusCode::BAD_REQUEST, message),
        };
    let mut names = std::collections::BTreeSet::new();
    for scope in scopes {
        match tag_names(&engine, scope, &request).await {
            Ok(found) => names.extend(found),
            Err(err) => return query_error(&err),
        }
    }
    axum::Json(json!({ "tagNames": names.into_iter().take(request.limit).collect::<Vec<_>>() }))
        .into_response()
}

async fn tags_v2(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (request, (scopes, intrinsic)) =
        match tags_request(&params, now_ns()).and_then(|r| Ok((r, scopes(&params)?))) {
            Ok(parsed) => parsed,
            Err(message) => return text(StatusCode::BAD_REQUEST, message),
        };
    let mut answer = Vec::new();
    for scope in scopes {
        match tag_names(&engine, scope, &request).await {
            Ok(names) => answer.push(json!({"name": scope.as_str(), "tags": names})),
            Err(err) => return query_error(&err),
        }
    }
    if intrinsic {
        let names: Vec<&str> = Intrinsic::ALL.iter().map(|i| i.as_str()).collect();
        answer.push(json!({"name": "intrinsic", "tags": names}));
    }
    axum::Json(json!({ "scopes": answer })).into_response()
}

/// Percent-decodes a path segment once more: Grafana encodes the tag of the v2 values route
/// twice (`%252F` for `/`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A scoped tag (`resource.service.name`, `span.http.route`, `.x`, `name`, `status` …) as a field.
fn scoped_tag(tag: &str) -> Result<Field, String> {
    let parsed = parse(&format!("{{ {tag} }}")).map_err(|_| {
        format!(
            "invalid tag {tag:?}: expected an attribute such as resource.service.name or              span.http.route, or an intrinsic such as name or status"
        )
    })?;
    match parsed {
        TraceQuery::Spans(Pipeline {
            spans: SpansetExpr::Filter(Some(FieldExpr::Exists(field))),
            ..
        }) => Ok(field),
        _ => Err(format!("invalid tag {tag:?}")),
    }
}

/// The span sets of `q`, when a tag values request narrows by one.
fn narrowing_query(params: &HashMap<String, String>) -> Result<Option<SpansetExpr>, String> {
    match params.get("q").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(q) => match parse(q).map_err(|e| e.to_string())? {
            TraceQuery::Spans(pipeline) => Ok(Some(pipeline.spans)),
            TraceQuery::Metrics(_) => Err("q must be a span-set query, not a metrics query".into()),
        },
    }
}

async fn values_of(
    engine: &QueryEngine,
    field: &Field,
    spans: Option<&SpansetExpr>,
    request: &TagsRequest,
) -> Result<Vec<TagValue>, QueryError> {
    match field {
        // An unscoped attribute is looked up on spans and resources.
        Field::Attribute(AttributeScope::Any, name) if name != "service.name" => {
            let mut values = tag_values(
                engine,
                &Field::Attribute(AttributeScope::Span, name.clone()),
                spans,
                request,
            )
            .await?;
            values.extend(
                tag_values(
                    engine,
                    &Field::Attribute(AttributeScope::Resource, name.clone()),
                    spans,
                    request,
                )
                .await?,
            );
            values.sort();
            values.dedup();
            values.truncate(request.limit);
            Ok(values)
        }
        Field::Attribute(AttributeScope::Any, name) => {
            let field = Field::Attribute(AttributeScope::Resource, name.clone());
            tag_values(engine, &field, spans, request).await
        }
        field => tag_values(engine, field, spans, request).await,
    }
}

async fn tag_values_v1(
    State(engine): State<Arc<QueryEngine>>,
    Path(tag): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let request = match tags_request(&params, now_ns()) {
        Ok(request) => request,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    // v1 tags are bare attribute names (or an intrinsic's name).
    let field = match Intrinsic::from_word(&tag) {
        Some(intrinsic) => Field::Intrinsic(intrinsic),
        None => Field::Attribute(AttributeScope::Any, tag),
    };
    match values_of(&engine, &field, None, &request).await {
        Ok(values) => {
            let mut texts: Vec<String> = values.into_iter().map(|v| v.value).collect();
            texts.dedup();
            axum::Json(json!({ "tagValues": texts })).into_response()
        }
        Err(err) => query_error(&err),
    }
}

async fn tag_values_v2(
    State(engine): State<Arc<QueryEngine>>,
    Path(tag): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let tag = percent_decode(&tag);
    let parsed = tags_request(&params, now_ns())
        .and_then(|request| Ok((request, scoped_tag(&tag)?, narrowing_query(&params)?)));
    let (request, field, spans) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    match values_of(&engine, &field, spans.as_ref(), &request).await {
        Ok(values) => {
            let values: Vec<serde_json::Value> = values
                .into_iter()
                .map(|v| json!({"type": v.kind, "value": v.value}))
                .collect();
            axum::Json(json!({ "tagValues": values })).into_response()
        }
        Err(err) => query_error(&err),
    }
}

/// A metrics request's range: `start` / `end` in Unix seconds (fractions taken) or
/// nanoseconds, the last hour by default; `step` a duration (`30s`) or seconds, by default about
/// 100 steps. `instant` makes the whole range one step.
fn metrics_range(
    params: &HashMap<String, String>,
    now_ns: i64,
    instant: bool,
) -> Result<MetricsRange, String> {
    let get = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let time = |name: &str| -> Result<Option<i64>, String> {
        let Some(text) = get(name) else {
            return Ok(None);
        };
        let value: f64 = text.parse().map_err(|_| {
            format!("invalid {name} {text:?}: expected Unix seconds (or nanoseconds)")
        })?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("invalid {name} {text:?}: expected Unix seconds"));
        }
        // Values this large are nanoseconds; anything else is seconds.
        let ns = if value >= 1e15 { value } else { value * 1e9 };
        if ns > 9.2e18 {
            return Err(format!("{name} {text:?} is out of range"));
        }
        Ok(Some(ns as i64))
    };
    let end_ns = time("end")?.unwrap_or(now_ns);
    let start_ns = time("start")?.unwrap_or(end_ns.saturating_sub(DEFAULT_SEARCH_WINDOW_NS));
    if end_ns <= start_ns {
        return Err("end must be after start".into());
    }
    if end_ns - start_ns > MAX_SEARCH_WINDOW_NS {
        return Err(format!(
            "the time range from start to end is longer than {} days: ask for a shorter range",
            MAX_SEARCH_WINDOW_NS / 86_400_000_000_000
        ));
    }
    if instant {
        return Ok(MetricsRange {
            start_ns,
            end_ns,
            step_ns: end_ns - start_ns,
        });
    }
    let step_ns = match get("step") {
        None => ((end_ns - start_ns) / 100).max(1_000_000_000),
        Some(text) => {
            let ns = match text.parse::<f64>() {
                Ok(seconds) if seconds.is_finite() => (seconds * 1e9) as i64,
                _ => parse_go_duration(text).map_err(|m| format!("invalid step: {m}"))?,
            };
            if ns <= 0 {
                return Err(format!("invalid step {text:?}: it must be positive"));
            }
            ns
        }
    };
    // Steps start at multiples of the step, as Tempo aligns them.
    let start_ns = start_ns - start_ns.rem_euclid(step_ns);
    if (end_ns - start_ns) / step_ns > MAX_STEPS {
        return Err(format!(
            "the step is too small for the range: more than {MAX_STEPS} steps; ask for a longer step"
        ));
    }
    Ok(MetricsRange {
        start_ns,
        end_ns,
        step_ns,
    })
}

/// The metrics query in `q`, parsed.
fn metrics_query(params: &HashMap<String, String>) -> Result<super::ast::MetricsQuery, String> {
    let q = params
        .get("q")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or("q is required: a TraceQL metrics query such as { } | rate()")?;
    match parse(q).map_err(|e| e.to_string())? {
        TraceQuery::Metrics(query) => Ok(query),
        TraceQuery::Spans(_) => Err(
            "q is a span-set query: end it with a metrics function such as | rate(), \
             | count_over_time() or | quantile_over_time(duration, .9) (searches go to /api/search)"
                .into(),
        ),
    }
}

fn series_labels(series: &MetricsSeries) -> (Vec<serde_json::Value>, String) {
    let labels = series
        .labels
        .iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect();
    let prom = series
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    (labels, format!("{{{prom}}}"))
}

async fn metrics_query_range(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (query, range) = match metrics_query(&params)
        .and_then(|q| Ok((q, metrics_range(&params, now_ns(), false)?)))
    {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    match query_range(&engine, &query, range).await {
        Ok(series) => {
            let series: Vec<serde_json::Value> = series
                .iter()
                .map(|s| {
                    let (labels, prom) = series_labels(s);
                    let samples: Vec<serde_json::Value> = s
                        .samples
                        .iter()
                        .map(|(t, v)| json!({"timestampMs": t.to_string(), "value": v}))
                        .collect();
                    json!({"labels": labels, "samples": samples, "promLabels": prom})
                })
                .collect();
            axum::Json(json!({"series": series, "metrics": {"completedJobs": 1, "totalJobs": 1}}))
                .into_response()
        }
        Err(err) => query_error(&err),
    }
}

async fn metrics_query_instant(
    State(engine): State<Arc<QueryEngine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (query, range) = match metrics_query(&params)
        .and_then(|q| Ok((q, metrics_range(&params, now_ns(), true)?)))
    {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    match query_range(&engine, &query, range).await {
        Ok(series) => {
            let series: Vec<serde_json::Value> = series
                .iter()
                .filter_map(|s| {
                    let (labels, prom) = series_labels(s);
                    let value = s.samples.first()?.1;
                    Some(json!({"labels": labels, "value": value, "promLabels": prom}))
                })
                .collect();
            axum::Json(json!({"series": series})).into_response()
        }
        Err(err) => query_error(&err),
    }
}

fn text(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

fn query_error(err: &QueryError) -> Response {
    text(err.status(), err.to_string())
}

#[cfg(test)]
mod tests;
