//! OTLP/JSON decoding.
//!
//! The `with-serde` implementations of `opentelemetry-proto` handle most of OTLP/JSON: hex ids in
//! either case, 64-bit integers as strings or numbers, `NaN`/`Infinity` for doubles, unknown fields
//! ignored. They decode every example published with the protocol. What they miss, and what
//! [`normalize`] fixes in a pass over the parsed JSON before handing it to them:
//!
//! - field names in their original snake_case form (`trace_id`), which receivers should accept;
//! - `null` for a field, which proto3 JSON treats as the field's default (serde would refuse it);
//! - enums given by name (`"kind": "SPAN_KIND_SERVER"`), which the proto3 JSON mapping allows;
//! - `arrayValue` / `kvlistValue` without `values` (an empty list; serde would refuse it).
//!
//! The same pass checks that ids are hex, so that the error names the field
//! (`resourceSpans[0].scopeSpans[0].spans[3].traceId: "xyz" is not a hex-encoded id`); other
//! errors are serde's, which say what was expected but not where.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use crate::error::IngestError;

/// Decodes an OTLP/JSON export request.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, IngestError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::Json(format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(IngestError::Json(
            "the body must be a JSON object".to_owned(),
        ));
    }
    normalize(&mut value).map_err(|e| IngestError::Json(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| IngestError::Json(e.to_string()))
}

/// A field that cannot be decoded, with its path in the request (built on the way out).
#[derive(Debug)]
struct FieldError {
    /// Path segments, innermost first.
    path: Vec<String>,
    message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, segment) in self.path.iter().rev().enumerate() {
            if i > 0 && !segment.starts_with('[') {
                f.write_str(".")?;
            }
            f.write_str(segment)?;
        }
        write!(f, ": {}", self.message)
    }
}

fn at<T>(result: Result<T, FieldError>, segment: impl FnOnce() -> String) -> Result<T, FieldError> {
    result.map_err(|mut e| {
        e.path.push(segment());
        e
    })
}

/// Rewrites the parsed JSON into the form the `with-serde` implementations accept (see the module
/// docs). Every object key in OTLP/JSON is a field name (attribute keys are values of `key`), so
/// keys can be renamed wherever they are.
fn normalize(value: &mut Value) -> Result<(), FieldError> {
    match value {
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('_')) {
                let fields = std::mem::take(map);
                for (key, field) in fields {
                    let key = if key.contains('_') {
                        camel_case(&key)
                    } else {
                        key
                    };
                    // When both spellings are present, the camelCase one wins.
                    if !field.is_null() && !map.contains_key(&key) {
                        map.insert(key, field);
                    }
                }
            } else {
                map.retain(|_, field| !field.is_null());
            }
            for (key, field) in map.iter_mut() {
                at(normalize_field(key, field), || key.clone())?;
                at(normalize(field), || key.clone())?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                at(normalize(item), || format!("[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn normalize_field(key: &str, field: &mut Value) -> Result<(), FieldError> {
    match (key, &*field) {
        // Checked here so that the error names the field; serde decodes them afterwards.
        ("traceId" | "spanId" | "parentSpanId", Value::String(id))
            if id.len() % 2 != 0 || !id.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            let shown: String = id.chars().take(40).collect();
            return Err(FieldError {
                path: Vec::new(),
                message: format!("{shown:?} is not a hex-encoded id"),
            });
        }
        ("kind", Value::String(name)) => {
            enum_number(field, SpanKind::from_str_name(name).map(|v| v as i32))
        }
        ("code", Value::String(name)) => {
            enum_number(field, StatusCode::from_str_name(name).map(|v| v as i32))
        }
        ("severityNumber", Value::String(name)) => {
            enum_number(field, SeverityNumber::from_str_name(name).map(|v| v as i32))
        }
        ("aggregationTemporality", Value::String(name)) => enum_number(
            field,
            AggregationTemporality::from_str_name(name).map(|v| v as i32),
        ),
        ("arrayValue" | "kvlistValue", Value::Object(list)) if !list.contains_key("values") => {
            let mut list = Map::new();
            list.insert("values".to_owned(), Value::Array(Vec::new()));
            *field = Value::Object(list);
        }
        _ => {}
    }
    Ok(())
}

/// Replaces an enum name by its number; an unknown name is left for serde to report.
fn enum_number(field: &mut Value, number: Option<i32>) {
    if let Some(number) = number {
        *field = Value::from(number);
    }
}

/// `time_unix_nano` → `timeUnixNano`.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
