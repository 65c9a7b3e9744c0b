//! Trace and span ids: stored as `FixedSizeBinary`, shown to SQL as lowercase hex `Utf8`.
//!
//! Storage keeps the top-level ids ([`Table::id_columns`]) as 16/8 raw bytes so they compress, sort
//! and hit bloom filters; SQL users read and write them as the lowercase hex every tracing UI uses.
//! This module owns both directions: the SQL schema of a table, the conversion of a stored column
//! to its SQL form, and the parsing of a hex literal back to bytes for pruning.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use lumen_storage::Table;

/// The schema SQL sees for `table`: the storage schema with the id columns turned into `Utf8`
/// (nullability and metadata kept).
pub fn sql_schema(table: Table) -> SchemaRef {
    let storage = table.schema();
    let fields: Vec<Field> = storage
        .fields()
        .iter()
        .map(|field| {
            if is_id_column(table, field.name()) {
                field.as_ref().clone().with_data_type(DataType::Utf8)
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        storage.metadata().clone(),
    ))
}

/// True for the top-level binary id columns of `table`.
pub fn is_id_column(table: Table, name: &str) -> bool {
    table.id_columns().contains(&name)
}

/// Lowercase hex of every value of a `FixedSizeBinary` array; nulls stay null.
pub fn hex_ids(ids: &FixedSizeBinaryArray) -> Result<ArrayRef, ArrowError> {
    let width = usize::try_from(ids.value_length()).unwrap_or(0);
    let hex_len = width * 2;
    let value_bytes = ids.len().saturating_mul(hex_len);
    // Utf8 offsets are i32; refuse instead of letting the builder overflow.
    if value_bytes > i32::MAX as usize {
        return Err(ArrowError::ComputeError(format!(
            "{} ids of {width} bytes are too many to show as hex in one batch",
            ids.len()
        )));
    }
    let mut builder = StringBuilder::with_capacity(ids.len(), value_bytes);
    let mut buf = vec![0u8; hex_len];
    for i in 0..ids.len() {
        if ids.is_null(i) {
            builder.append_null();
            continue;
        }
        hex::encode_to_slice(ids.value(i), &mut buf)
            .map_err(|e| ArrowError::ComputeError(format!("hex encoding of an id: {e}")))?;
        let text = std::str::from_utf8(&buf)
            .map_err(|e| ArrowError::ComputeError(format!("hex encoding of an id: {e}")))?;
        builder.append_value(text);
    }
    Ok(Arc::new(builder.finish()))
}

/// Turns a stored column into the type SQL expects for it: ids become hex, everything else is
/// passed through (or cast, should a file's type differ in a compatible way from the schema).
pub fn to_sql_column(column: &ArrayRef, sql_type: &DataType) -> Result<ArrayRef, ArrowError> {
    if column.data_type() == sql_type {
        return Ok(Arc::clone(column));
    }
    if let (DataType::FixedSizeBinary(_), DataType::Utf8) = (column.data_type(), sql_type) {
        let ids = column.as_fixed_size_binary_opt().ok_or_else(|| {
            ArrowError::ComputeError("id column is not a FixedSizeBinary array".into())
        })?;
        return hex_ids(ids);
    }
    cast(column, sql_type)
}

/// Parses a lowercase hex id of exactly `N` bytes. Anything else (upper case, wrong length,
/// non-hex) returns `None`: such a literal cannot equal any id SQL shows.
pub fn parse_hex_id<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests;
