//! Streaming text encoders: CSV and NDJSON, one record batch at a time.

use std::fmt::Write as _;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use serde_json::Value;

use super::value::json_value;

/// The CSV header line: column names, quoted where RFC 4180 requires.
pub fn csv_header(schema: &Schema) -> String {
    let mut out = String::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_field(field.name(), &mut out);
    }
    out.push('\n');
    out
}

/// The CSV records of `batch`, one line each, appended to `out`.
///
/// A NULL is an empty field and an empty string is `""`, so the two stay distinguishable;
/// lists, maps and structs are their JSON text.
pub fn csv_rows(batch: &RecordBatch, out: &mut String) {
    for row in 0..batch.num_rows() {
        for (i, column) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match json_value(column.as_ref(), row) {
                Value::Null => {}
                Value::String(text) => push_csv_field(&text, out),
                Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                Value::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                nested @ (Value::Array(_) | Value::Object(_)) => {
                    push_csv_field(&nested.to_string(), out)
                }
            }
        }
        out.push('\n');
    }
}

fn push_csv_field(text: &str, out: &mut String) {
    if text.is_empty() {
        out.push_str("\"\"");
    } else if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// The rows of `batch` as NDJSON: one JSON object per line, keys in column order.
pub fn ndjson_rows(batch: &RecordBatch, out: &mut String) {
    let schema = batch.schema();
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| Value::from(f.name().as_str()).to_string())
        .collect();
    for row in 0..batch.num_rows() {
        out.push('{');
        for (i, (name, column)) in names.iter().zip(batch.columns()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{name}:{}", json_value(column.as_ref(), row));
        }
        out.push_str("}\n");
    }
}
