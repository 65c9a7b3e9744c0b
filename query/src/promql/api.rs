//! The Prometheus HTTP API (what Grafana's Prometheus data source calls), over the `metrics` table.
//!
//! | Path | Methods |
//! |---|---|
//! | `/api/v1/query`, `/api/v1/query_range` | GET, POST form |
//! | `/api/v1/series`, `/api/v1/labels` | GET, POST form |
//! | `/api/v1/label/{name}/values` (`U__`-escaped names too) | GET |
//! | `/api/v1/metadata` | GET |
//! | `/api/v1/query_exemplars` (the exemplars stored with the selected series' points) | GET, POST form |
//! | `/api/v1/format_query` | GET, POST form |
//! | `/api/v1/status/buildinfo` | GET |
//!
//! Answers use Prometheus's envelope: `{"status":"success","data":…}` (plus `warnings` / `infos`
//! when there are any) or `{"status":"error","errorType":"bad_data","error":"…"}` with the status
//! code of the error type (400 `bad_data`, 422 `execution`, 503 `timeout`, 500 `internal`).
//!
//! The handlers only translate: they parse the parameters ([`params`]), call the
//! [`PromqlService`] (which owns concurrency, deadlines and panic containment), and encode its
//! answer or error in the envelope.
//!
//! `series`, `labels`, `label/…/values` and `metadata` default to all data when `start`/`end`
//! are absent, as Prometheus does.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use promql_parser::label::Matchers;
use promql_parser::parser::Expr;
use serde_json::{Map, Value as Json, json};

use super::engine::Engine;
use super::eval::selector_matchers;
use super::service::PromqlService;
use super::value::format_go_float;
use super::value::{Annotations, Labels, Value};

mod error;
mod params;
pub use error::ApiError;
use error::json_response;
pub use params::MAX_QUERY_LENGTH;
#[cfg(test)]
use params::percent_decode;
use params::{MAX_TIME_MS, MIN_TIME_MS, Params};
pub use params::{parse_duration, parse_time, parse_urlencoded, unescape_label_name};

type Shared = Arc<PromqlService>;

/// The Prometheus API routes, answered by `service`.
pub fn prometheus_router(service: Arc<PromqlService>) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/query_exemplars", get(exemplars).post(exemplars))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .with_state(service)
}

// ---------------------------------------------------------------------------------------------
// The envelope

fn success(data: Json, annotations: Option<&Annotations>) -> Response {
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert("data".into(), data);
    if let Some(a) = annotations {
        if !a.warnings.is_empty() {
            body.insert("warnings".into(), json!(a.warnings));
        }
        if !a.infos.is_empty() {
            body.insert("infos".into(), json!(a.infos));
        }
    }
    json_response(StatusCode::OK, &Json::Object(body))
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

// ---------------------------------------------------------------------------------------------
// JSON encoding of values

fn ts_json(ms: i64) -> Json {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

fn value_string(v: f64) -> String {
    format_go_float(v)
}

fn labels_json(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}

/// A query answer written straight to JSON text: the same document as [`success`] with a
/// `{resultType, result}` value built from JSON values, without building a `serde_json::Value` per point (a range query can return
/// hundreds of thousands of points).
fn success_result(value: &Value, time_ms: i64, annotations: &Annotations) -> Response {
    let mut out: Vec<u8> = Vec::with_capacity(256 + result_size_hint(value));
    out.extend_from_slice(br#"{"status":"success","data":"#);
    write_result(&mut out, value, time_ms);
    for (key, list) in [
        ("warnings", &annotations.warnings),
        ("infos", &annotations.infos),
    ] {
        if !list.is_empty() {
            out.extend_from_slice(format!(r#","{key}":"#).as_bytes());
            write_json(&mut out, list);
        }
    }
    out.push(b'}');
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

/// Roughly how many bytes a value's JSON takes (to size the buffer once).
fn result_size_hint(value: &Value) -> usize {
    match value {
        Value::Vector(v) => v.len() * 128,
        Value::Matrix(m) => m.iter().map(|s| 128 + s.samples.len() * 24).sum(),
        _ => 64,
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing to a Vec cannot fail, and strings, numbers and lists of strings always serialise.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn write_ts(out: &mut Vec<u8>, ms: i64) {
    if ms % 1000 == 0 {
        out.extend_from_slice(itoa::Buffer::new().format(ms / 1000).as_bytes());
    } else {
        write_json(out, &(ms as f64 / 1000.0));
    }
}

fn write_point(out: &mut Vec<u8>, ms: i64, v: f64) {
    out.push(b'[');
    write_ts(out, ms);
    // Go-formatted floats, NaN and ±Inf need no escaping.
    out.extend_from_slice(b",\"");
    super::value::write_go_float(out, v);
    out.extend_from_slice(b"\"]");
}

fn write_labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(out, k);
        out.push(b':');
        write_json(out, v);
    }
    out.push(b'}');
}

/// The `data` of a query answer, `{resultType, result}`, as JSON text.
fn write_result(out: &mut Vec<u8>, value: &Value, time_ms: i64) {
    match value {
        Value::Scalar(v) => {
            out.extend_from_slice(br#"{"resultType":"scalar","result":"#);
            write_point(out, time_ms, *v);
        }
        Value::String(s) => {
            out.extend_from_slice(br#"{"resultType":"string","result":["#);
            write_ts(out, time_ms);
            out.push(b',');
            write_json(out, s);
            out.push(b']');
        }
        Value::Vector(samples) => {
            out.extend_from_slice(br#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                write_labels(out, &s.labels);
                out.extend_from_slice(br#","value":"#);
                write_point(out, time_ms, s.value);
                out.push(b'}');
            }
            out.push(b']');
        }
        Value::Matrix(series) => {
            out.extend_from_slice(br#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                write_labels(out, &s.labels);
                out.extend_from_slice(br#","values":["#);
                for (j, (t, v)) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_point(out, *t, *v);
                }
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Truncates a vector or matrix result to `limit` series, with a warning.
fn apply_limit(value: &mut Value, annotations: &mut Annotations, limit: Option<usize>) {
    let Some(limit) = limit else { return };
    let truncated = match value {
        Value::Vector(v) if v.len() > limit => {
            v.truncate(limit);
            true
        }
        Value::Matrix(m) if m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if truncated {
        annotations
            .warnings
            .push("results truncated due to limit".into());
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn query(State(api): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    respond(
        async {
            let params = Params::from_request(&uri, &headers, &body)?;
            let query = params.query()?.to_string();
            let time = params.time("time", now_ms())?;
            let limit = params.limit()?;
            let options = params.options()?;
            let mut result = api.instant(&query, time, options).await?;
            apply_limit(&mut result.value, &mut result.annotations, limit);
            Ok(success_result(&result.value, time, &result.annotations))
        }
        .await,
    )
}

async fn query_range(
    State(api): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let params = Params::from_request(&uri, &headers, &body)?;
            let query = params.query()?.to_string();
            let required = |name: &str| -> Result<i64, ApiError> {
                match params.get(name) {
                    None | Some("") => Err(ApiError::bad_data(format!("invalid parameter \"{name}\": missing"))),
                    Some(_) => params.time(name, 0),
                }
            };
            let start = required("start")?;
            let end = required("end")?;
            if end < start {
                return Err(ApiError::bad_data("invalid parameter \"end\": end timestamp must not be before start time"));
            }
            let step = params
                .duration("step")?
                .ok_or_else(|| ApiError::bad_data("invalid parameter \"step\": missing"))?;
            if step <= 0 {
                return Err(ApiError::bad_data(
                    "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
                ));
            }
            if (end - start) / step >= api.config().engine.max_points_per_series {
                return Err(ApiError::bad_data(
                    "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
                ));
            }
            let limit = params.limit()?;
            let options = params.options()?;
            let mut result = api.range(&query, start, end, step, options).await?;
            apply_limit(&mut result.value, &mut result.annotations, limit);
            Ok(success_result(&result.value, end, &result.annotations))
        }
        .await,
    )
}

/// Matchers of each `match[]` selector (bad_data when one is not a plain series selector).
fn match_params(params: &Params) -> Result<Vec<Matchers>, ApiError> {
    params
        .all("match[]")
        .into_iter()
        .map(|m| {
            if m.len() > MAX_QUERY_LENGTH {
                return Err(ApiError::bad_data(
                    "invalid parameter \"match[]\": selector too long",
                ));
            }
            match Engine::parse(m) {
                Ok(Expr::VectorSelector(vs)) => Ok(selector_matchers(&vs)),
                Ok(_) => Err(ApiError::bad_data(format!(
                    "invalid parameter \"match[]\": {m:?} is not a series selector"
                ))),
                Err(e) => Err(ApiError::bad_data(format!(
                    "invalid parameter \"match[]\": {e}"
                ))),
            }
        })
        .collect()
}

fn window(params: &Params) -> Result<(i64, i64), ApiError> {
    Ok((
        params.time("start", MIN_TIME_MS)?,
        params.time("end", MAX_TIME_MS)?,
    ))
}

fn truncate_list(mut items: Vec<Json>, limit: Option<usize>) -> (Json, Annotations) {
    let mut ann = Annotations::default();
    if let Some(l) = limit
        && items.len() > l
    {
        items.truncate(l);
        ann.warnings.push("results truncated due to limit".into());
    }
    (Json::Array(items), ann)
}

async fn series(State(api): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    respond(
        async {
            let params = Params::from_request(&uri, &headers, &body)?;
            let matchers = match_params(&params)?;
            if matchers.is_empty() {
                return Err(ApiError::bad_data("no match[] parameter provided"));
            }
            let (start, end) = window(&params)?;
            let limit = params.limit()?;
            let sets = api
                .label_sets(matchers, start, end, params.timeout()?)
                .await?;
            let (data, ann) = truncate_list(sets.iter().map(labels_json).collect(), limit);
            Ok(success(data, Some(&ann)))
        }
        .await,
    )
}

async fn labels(State(api): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    respond(
        async {
            let params = Params::from_request(&uri, &headers, &body)?;
            let matchers = match_params(&params)?;
            let (start, end) = window(&params)?;
            let limit = params.limit()?;
            let sets = api
                .label_sets(matchers, start, end, params.timeout()?)
                .await?;
            let names: BTreeSet<&str> =
                sets.iter().flat_map(|l| l.iter().map(|(k, _)| k)).collect();
            let (data, ann) = truncate_list(names.into_iter().map(|n| json!(n)).collect(), limit);
            Ok(success(data, Some(&ann)))
        }
        .await,
    )
}

async fn label_values(
    State(api): State<Shared>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let params = Params::from_request(&uri, &headers, &[])?;
            let name = unescape_label_name(&name);
            let matchers = match_params(&params)?;
            let (start, end) = window(&params)?;
            let limit = params.limit()?;
            let sets = api
                .label_sets(matchers, start, end, params.timeout()?)
                .await?;
            let values: BTreeSet<&str> = sets
                .iter()
                .filter_map(|l| l.get(&name))
                .filter(|v| !v.is_empty())
                .collect();
            let (data, ann) = truncate_list(values.into_iter().map(|v| json!(v)).collect(), limit);
            Ok(success(data, Some(&ann)))
        }
        .await,
    )
}

async fn metadata(State(api): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    respond(
        async {
            let params = Params::from_request(&uri, &headers, &[])?;
            let metric = params
                .get("metric")
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            let limit = params.limit()?;
            let limit_per_metric = match params.get("limit_per_metric") {
                Some(text) if !text.is_empty() => Some(text.parse::<usize>().map_err(|_| {
                    ApiError::bad_data(format!(
                        "invalid limit_per_metric {text:?}: a non-negative integer"
                    ))
                })?),
                _ => None,
            };
            let families = api
                .metadata(MIN_TIME_MS, MAX_TIME_MS, params.timeout()?)
                .await?;
            let mut data = Map::new();
            for (name, entries) in families {
                if metric.as_deref().is_some_and(|m| m != name) {
                    continue;
                }
                if limit.is_some_and(|l| l > 0 && data.len() >= l) {
                    break;
                }
                let entries: Vec<Json> = entries
                    .iter()
                    .take(limit_per_metric.filter(|l| *l > 0).unwrap_or(usize::MAX))
                    .map(|m| json!({"type": m.kind, "help": m.help, "unit": m.unit}))
                    .collect();
                data.insert(name, Json::Array(entries));
            }
            Ok(success(Json::Object(data), None))
        }
        .await,
    )
}

async fn exemplars(
    State(api): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let params = Params::from_request(&uri, &headers, &body)?;
            let expr = Engine::parse(params.query()?)?;
            let (start, end) = window(&params)?;
            if end < start {
                return Err(ApiError::bad_data(
                    "end timestamp must not be before start timestamp",
                ));
            }
            let found = api.exemplars(&expr, start, end, params.timeout()?).await?;
            let data: Vec<Json> = found
                .into_iter()
                .map(|(labels, exemplars)| {
                    let exemplars: Vec<Json> = exemplars
                        .iter()
                        .map(|e| {
                            json!({
                                "labels": labels_json(&e.labels),
                                "value": value_string(e.value),
                                "timestamp": ts_json(e.time_ms),
                            })
                        })
                        .collect();
                    json!({"seriesLabels": labels_json(&labels), "exemplars": exemplars})
                })
                .collect();
            Ok(success(Json::Array(data), None))
        }
        .await,
    )
}

async fn format_query(uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    respond((|| {
        let params = Params::from_request(&uri, &headers, &body)?;
        let expr = Engine::parse(params.query()?)?;
        Ok(success(json!(expr.prettify()), None))
    })())
}

async fn buildinfo() -> Response {
    success(
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }),
        None,
    )
}

#[cfg(test)]
mod tests;
