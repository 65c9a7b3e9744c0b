//! The Jaeger query API's model over the `spans` table, for Grafana's stock Jaeger data source
//! (routes in [`api`], mounted under `/jaeger`).
//!
//! Traces come out of storage as OTLP ([`crate::traces::fetch_traces`]) and are written the way
//! Jaeger's own OTLP translator writes them:
//!
//! | OTLP | Jaeger |
//! |---|---|
//! | resource (`service.name` + the other attributes) | a process (`p1`, `p2` … in the order met): `serviceName`, `tags` |
//! | span attributes | `tags`, typed (`string`, `bool`, `int64`, `float64`, `binary`; arrays and maps as their JSON text) |
//! | kind | tag `span.kind` (`server`, `client`, `producer`, `consumer`, `internal`; none when unspecified) |
//! | status | tags `otel.status_code` (`OK`, `ERROR`), `error` = true on errors, `otel.status_description` |
//! | scope | tags `otel.scope.name`, `otel.scope.version` |
//! | trace state | tag `w3c.tracestate` |
//! | parent span | reference `CHILD_OF` |
//! | links | references `FOLLOWS_FROM` |
//! | events | `logs`: `timestamp` and the `event` name with the event's attributes as `fields` |
//!
//! Times and durations are microseconds. Ids are lowercase hex; a trace id whose high 64 bits are
//! zero is written with 16 digits, as Jaeger writes 64-bit ids.

pub mod api;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData, status};
use serde_json::{Value, json};

/// Jaeger's text for a trace id: 16 hex digits when the high half is zero, else 32.
pub fn trace_id_text(id: &[u8]) -> String {
    if id.len() == 16 && id[..8].iter().all(|b| *b == 0) {
        hex::encode(&id[8..])
    } else {
        hex::encode(id)
    }
}

/// One trace as a Jaeger JSON trace object.
pub fn jaeger_trace(trace_id: &[u8], trace: &TracesData) -> Value {
    let mut processes: Vec<(Value, String)> = Vec::new();
    let mut spans = Vec::new();
    for resource_spans in &trace.resource_spans {
        let process = process(resource_spans.resource.as_ref());
        let process_id = match processes.iter().find(|(p, _)| *p == process) {
            Some((_, id)) => id.clone(),
            None => {
                let id = format!("p{}", processes.len() + 1);
                processes.push((process, id.clone()));
                id
            }
        };
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref();
            for span in &scope_spans.spans {
                let mut tags: Vec<Value> = span.attributes.iter().map(tag).collect();
                if let Some(scope) = scope {
                    if !scope.name.is_empty() {
                        tags.push(string_tag("otel.scope.name", &scope.name));
                    }
                    if !scope.version.is_empty() {
                        tags.push(string_tag("otel.scope.version", &scope.version));
                    }
                }
                tags.extend(intrinsic_tags(span));
                spans.push(json!({
                    "traceID": trace_id_text(trace_id),
                    "spanID": hex::encode(&span.span_id),
                    "operationName": span.name,
                    "references": references(trace_id, span),
                    "startTime": span.start_time_unix_nano / 1_000,
                    "duration": span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1_000,
                    "tags": tags,
                    "logs": logs(span),
                    "processID": process_id,
                    "warnings": null,
                }));
            }
        }
    }
    let processes: serde_json::Map<String, Value> = processes
        .into_iter()
        .map(|(process, id)| (id, process))
        .collect();
    json!({
        "traceID": trace_id_text(trace_id),
        "spans": spans,
        "processes": processes,
        "warnings": null,
    })
}

/// A resource as a Jaeger process.
fn process(resource: Option<&Resource>) -> Value {
    let attributes = resource
        .map(|r| r.attributes.as_slice())
        .unwrap_or_default();
    let service = attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .map(value_text)
        .unwrap_or_default();
    let tags: Vec<Value> = attributes
        .iter()
        .filter(|kv| kv.key != "service.name")
        .map(tag)
        .collect();
    json!({ "serviceName": service, "tags": tags })
}

/// The tags Jaeger derives from a span's kind, status and trace state.
fn intrinsic_tags(span: &Span) -> Vec<Value> {
    let mut tags = Vec::new();
    let kind = match span.kind {
        1 => Some("internal"),
        2 => Some("server"),
        3 => Some("client"),
        4 => Some("producer"),
        5 => Some("consumer"),
        _ => None,
    };
    if let Some(kind) = kind {
        tags.push(string_tag("span.kind", kind));
    }
    if let Some(status) = &span.status {
        match status::StatusCode::try_from(status.code) {
            Ok(status::StatusCode::Ok) => tags.push(string_tag("otel.status_code", "OK")),
            Ok(status::StatusCode::Error) => {
                tags.push(string_tag("otel.status_code", "ERROR"));
                tags.push(json!({"key": "error", "type": "bool", "value": true}));
            }
            _ => {}
        }
        if !status.message.is_empty() {
            tags.push(string_tag("otel.status_description", &status.message));
        }
    }
    if !span.trace_state.is_empty() {
        tags.push(string_tag("w3c.tracestate", &span.trace_state));
    }
    tags
}

fn references(trace_id: &[u8], span: &Span) -> Vec<Value> {
    let mut references = Vec::new();
    if !span.parent_span_id.is_empty() && span.parent_span_id.iter().any(|b| *b != 0) {
        references.push(json!({
            "refType": "CHILD_OF",
            "traceID": trace_id_text(trace_id),
            "spanID": hex::encode(&span.parent_span_id),
        }));
    }
    for link in &span.links {
        references.push(json!({
            "refType": "FOLLOWS_FROM",
            "traceID": trace_id_text(&link.trace_id),
            "spanID": hex::encode(&link.span_id),
        }));
    }
    references
}

fn logs(span: &Span) -> Vec<Value> {
    span.events
        .iter()
        .map(|event| {
            let mut fields = vec![string_tag("event", &event.name)];
            fields.extend(event.attributes.iter().map(tag));
            json!({ "timestamp": event.time_unix_nano / 1_000, "fields": fields })
        })
        .collect()
}

fn string_tag(key: &str, value: &str) -> Value {
    json!({"key": key, "type": "string", "value": value})
}

/// An OTLP attribute as a typed Jaeger tag.
fn tag(kv: &KeyValue) -> Value {
    let (kind, value) = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::BoolValue(b)) => ("bool", json!(b)),
        Some(any_value::Value::IntValue(i)) => ("int64", json!(i)),
        // JSON has no NaN or infinities: those (rare) values go as their text.
        Some(any_value::Value::DoubleValue(d)) if d.is_finite() => ("float64", json!(d)),
        Some(any_value::Value::DoubleValue(d)) => ("string", json!(d.to_string())),
        Some(any_value::Value::BytesValue(b)) => ("binary", json!(BASE64.encode(b))),
        Some(any_value::Value::StringValue(s)) => ("string", json!(s)),
        Some(other) => ("string", json!(plain_json(other).to_string())),
        None => ("string", json!("")),
    };
    json!({"key": kv.key, "type": kind, "value": value})
}

/// The text of a value: strings as they are, the rest as JSON.
fn value_text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => plain_json(other).to_string(),
        None => String::new(),
    }
}

/// A value as plain JSON (arrays and maps as JSON arrays and objects), as Jaeger's translator
/// writes the non-scalar attributes.
fn plain_json(value: &any_value::Value) -> Value {
    match value {
        any_value::Value::StringValue(s) => json!(s),
        any_value::Value::BoolValue(b) => json!(b),
        any_value::Value::IntValue(i) => json!(i),
        any_value::Value::DoubleValue(d) => json!(d),
        any_value::Value::BytesValue(b) => json!(BASE64.encode(b)),
        // An index into a profile's string table; never stored for spans.
        any_value::Value::StringValueStrindex(i) => json!(i),
        any_value::Value::ArrayValue(array) => Value::Array(
            array
                .values
                .iter()
                .map(|v| v.value.as_ref().map_or(Value::Null, plain_json))
                .collect(),
        ),
        any_value::Value::KvlistValue(list) => {
            let map: BTreeMap<&str, Value> = list
                .values
                .iter()
                .map(|kv| {
                    (
                        kv.key.as_str(),
                        kv.value
                            .as_ref()
                            .and_then(|v| v.value.as_ref())
                            .map_or(Value::Null, plain_json),
                    )
                })
                .collect();
            // Keys sorted, as Go's encoder writes a map.
            Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        }
    }
}

#[cfg(test)]
mod tests;
