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
mod tests {
    use arrow::array::StringArray;

    use super::*;

    #[test]
    fn sql_schema_shows_ids_as_utf8_and_keeps_the_rest() {
        let spans = sql_schema(Table::Spans);
        for name in ["trace_id", "span_id", "parent_span_id"] {
            let field = spans.field_with_name(name).expect("id column");
            assert_eq!(field.data_type(), &DataType::Utf8, "{name}");
        }
        assert!(
            !spans
                .field_with_name("trace_id")
                .expect("trace_id")
                .is_nullable()
        );
        assert!(
            spans
                .field_with_name("parent_span_id")
                .expect("parent")
                .is_nullable()
        );
        assert_eq!(spans.fields().len(), Table::Spans.schema().fields().len());
        assert_eq!(
            spans.field_with_name("time").expect("time").data_type(),
            Table::Spans
                .schema()
                .field_with_name("time")
                .expect("time")
                .data_type()
        );
        let metrics = sql_schema(Table::Metrics);
        assert_eq!(metrics.as_ref(), Table::Metrics.schema().as_ref());
    }

    #[test]
    fn hex_conversion_keeps_nulls_and_is_lowercase() {
        let ids = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            vec![
                Some(vec![0x5b, 0x8e, 0xff, 0xf7]),
                None,
                Some(vec![0, 1, 0xab, 0xcd]),
            ]
            .into_iter(),
            4,
        )
        .expect("ids");
        let column: ArrayRef = Arc::new(ids);
        let hex = to_sql_column(&column, &DataType::Utf8).expect("hex");
        let hex = hex.as_any().downcast_ref::<StringArray>().expect("utf8");
        assert_eq!(hex.value(0), "5b8efff7");
        assert!(hex.is_null(1));
        assert_eq!(hex.value(2), "0001abcd");
    }

    #[test]
    fn parse_hex_id_accepts_only_lowercase_of_the_right_length() {
        assert_eq!(
            parse_hex_id::<16>("5b8efff798038103d269b633813fc60c"),
            Some([
                0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
                0xc6, 0x0c
            ])
        );
        assert_eq!(parse_hex_id::<16>("5B8EFFF798038103D269B633813FC60C"), None);
        assert_eq!(parse_hex_id::<16>("5b8e"), None);
        assert_eq!(parse_hex_id::<8>("zzzzzzzzzzzzzzzz"), None);
        assert_eq!(parse_hex_id::<8>("é"), None);
    }
}
