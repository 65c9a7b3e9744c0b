//! Query results as JSON, CSV and NDJSON — and as an aligned table for terminals.
//!
//! # The JSON response
//!
//! ```json
//! {"columns":[{"name":"service_name","type":"utf8"},{"name":"n","type":"int64"}],
//!  "rows":[["checkout",1200],[null,7]]}
//! ```
//!
//! # Column types
//!
//! | Arrow type | `type` |
//! |---|---|
//! | Boolean | `boolean` |
//! | Int8 … Int64, UInt8 … UInt64 | `int8` … `int64`, `uint8` … `uint64` |
//! | Float16 / Float32 / Float64 | `float16` / `float32` / `float64` |
//! | Decimal*(p, s) | `decimal(p,s)` |
//! | Timestamp (any unit, any zone) | `timestamp` |
//! | Date32 / Date64 | `date` |
//! | Time32 / Time64 | `time` |
//! | Duration | `duration` |
//! | Interval | `interval` |
//! | Utf8 / LargeUtf8 / Utf8View | `utf8` |
//! | Binary / LargeBinary / BinaryView / FixedSizeBinary | `binary` |
//! | List / LargeList / FixedSizeList / ListView of T | `list<T>` |
//! | Map of K to V | `map<K,V>` |
//! | Struct | `struct<name:T,...>` |
//! | Dictionary / run-end encoded of T | T |
//! | Null | `null` |
//!
//! # Values
//!
//! - NULL → `null`; booleans → `true`/`false`;
//! - integers → JSON numbers, exact (including the full `int64`/`uint64` range);
//! - floats → numbers; NaN and infinities → the strings `"NaN"`, `"+Inf"`, `"-Inf"`;
//! - timestamps → RFC 3339 in UTC with nine fractional digits: `"2018-12-13T14:51:00.000000000Z"`;
//! - binary → lowercase hex string;
//! - lists → arrays; maps → objects (keys as text); structs → objects;
//! - everything else (dates, times, durations, intervals, decimals) → Arrow's display text.
//!
//! CSV uses the same values as text (NULL is an empty field, an empty string is `""`, nested
//! values are their JSON), with a header line and RFC 4180 quoting; lines end with `\n`.
//! NDJSON writes one object per row keyed by column name, in column order.

mod table;
mod text;
mod value;

use std::fmt::Write as _;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use table::{Column, TableOptions, render_table, render_table_with};
pub use text::{csv_header, csv_rows, ndjson_rows};
pub use value::{batch_rows, format_timestamp, json_value};

use crate::error::QueryError;

/// The JSON response body of `POST /api/v1/sql` (what `lumen sql` parses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonResult {
    /// The result's columns.
    pub columns: Vec<Column>,
    /// The rows, each one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// The output formats of the SQL API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// `{"columns": [...], "rows": [[...]]}` (default).
    #[default]
    Json,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per row and line.
    Ndjson,
}

impl OutputFormat {
    /// Parses the `format` query parameter (case-insensitive).
    pub fn parse(name: &str) -> Result<Self, QueryError> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Ok(OutputFormat::Json),
            "csv" => Ok(OutputFormat::Csv),
            "ndjson" | "jsonl" => Ok(OutputFormat::Ndjson),
            other => Err(QueryError::BadRequest(format!(
                "unknown format {other:?}; use json, csv or ndjson"
            ))),
        }
    }

    /// The `Content-Type` of responses in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::Csv => "text/csv; charset=utf-8; header=present",
            OutputFormat::Ndjson => "application/x-ndjson",
        }
    }
}

/// The friendly name of an Arrow type (see the module docs).
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "null".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "float16".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Duration(_) => "duration".into(),
        DataType::Interval(_) => "interval".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "utf8".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => format!("list<{}>", type_name(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => format!(
                "map<{},{}>",
                type_name(fields[0].data_type()),
                type_name(fields[1].data_type())
            ),
            _ => "map".into(),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), type_name(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(","))
        }
        DataType::Dictionary(_, value) => type_name(value),
        DataType::RunEndEncoded(_, value) => type_name(value.data_type()),
        DataType::Union(..) => "union".into(),
    }
}

/// The columns of a result schema.
pub fn columns(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column::new(f.name().as_str(), type_name(f.data_type())))
        .collect()
}

/// The whole JSON response for a result.
pub fn encode_json(schema: &Schema, batches: &[RecordBatch]) -> String {
    let columns = Value::Array(
        columns(schema)
            .into_iter()
            .map(|c| serde_json::json!({ "name": c.name, "type": c.data_type }))
            .collect(),
    );
    let mut out = String::new();
    let _ = write!(out, "{{\"columns\":{columns},\"rows\":[");
    let mut first = true;
    for batch in batches {
        for row in 0..batch.num_rows() {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('[');
            for (i, column) in batch.columns().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", json_value(column.as_ref(), row));
            }
            out.push(']');
        }
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests;
