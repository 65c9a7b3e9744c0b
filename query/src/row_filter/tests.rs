use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{Field, Schema};
use datafusion::prelude::{col, lit};
use lumen_storage::Table;

use super::{RowFilter, filterable};

/// A `spans` batch in storage types with `service_name` and `duration_ns`.
fn batch(services: &[&str], durations: &[i64]) -> RecordBatch {
    let storage = Table::Spans.schema();
    let service_field = storage.field_with_name("service_name").unwrap().clone();
    let duration_field = storage.field_with_name("duration_ns").unwrap().clone();
    let services: ArrayRef = cast(
        &StringArray::from(services.to_vec()),
        service_field.data_type(),
    )
    .unwrap();
    let durations: ArrayRef = cast(
        &Int64Array::from(durations.to_vec()),
        duration_field.data_type(),
    )
    .unwrap();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("duration_ns", duration_field.data_type().clone(), true),
            Field::new("service_name", service_field.data_type().clone(), true),
        ])),
        vec![durations, services],
    )
    .unwrap()
}

fn services(batch: &RecordBatch) -> Vec<String> {
    let column = cast(
        batch.column_by_name("service_name").unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let strings = column.as_string::<i32>();
    (0..strings.len())
        .map(|i| strings.value(i).to_owned())
        .collect()
}

#[test]
fn only_filters_on_columns_stored_as_queried_are_taken() {
    assert!(filterable(
        Table::Spans,
        &col("service_name").eq(lit("payment"))
    ));
    assert!(filterable(
        Table::Spans,
        &col("spans.duration_ns").gt(lit(5_i64))
    ));
    // Ids are hex in SQL and bytes in storage: left to the filter above the scan.
    assert!(!filterable(Table::Spans, &col("trace_id").eq(lit("ab"))));
    // Nothing volatile, and a filter must read a column.
    assert!(!filterable(
        Table::Spans,
        &datafusion::functions::math::expr_fn::random().gt(lit(0.5))
    ));
    assert!(!filterable(Table::Spans, &lit(true)));
}

#[test]
fn rows_that_fail_are_dropped_before_conversion() {
    let filters = [
        col("s.service_name").eq(lit("payment")),
        col("duration_ns").gt(lit(5_i64)),
        // Not the scan's to apply: ignored here, not an error.
        col("trace_id").eq(lit("ab")),
    ];
    let filter = RowFilter::new(Table::Spans, &filters, None).unwrap();
    let input = batch(
        &["payment", "gateway", "payment", "payment"],
        &[10, 10, 3, 6],
    );
    let kept = filter.apply(&input).unwrap();
    assert_eq!(kept.num_rows(), 2);
    assert_eq!(services(&kept), ["payment", "payment"]);
    let durations = cast(
        kept.column_by_name("duration_ns").unwrap(),
        &arrow::datatypes::DataType::Int64,
    )
    .unwrap();
    assert_eq!(
        durations
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values(),
        &[10, 6]
    );
    // A column missing from an older segment reads as nulls, which never pass.
    let only_services = input.project(&[1]).unwrap();
    assert_eq!(filter.apply(&only_services).unwrap().num_rows(), 0);
    assert!(RowFilter::new(Table::Spans, &[col("trace_id").eq(lit("ab"))], None).is_none());
}

#[test]
fn trace_ids_are_compared_as_bytes() {
    use arrow::array::FixedSizeBinaryArray;
    let ids: Vec<[u8; 16]> = vec![[1; 16], [2; 16], [3; 16]];
    let column = FixedSizeBinaryArray::try_from_iter(ids.iter()).unwrap();
    let input = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "trace_id",
            arrow::datatypes::DataType::FixedSizeBinary(16),
            false,
        )])),
        vec![Arc::new(column)],
    )
    .unwrap();
    let wanted: std::collections::BTreeSet<[u8; 16]> = [[3; 16], [9; 16]].into_iter().collect();
    let filter = RowFilter::new(Table::Spans, &[], Some(&wanted)).unwrap();
    let kept = filter.apply(&input).unwrap();
    assert_eq!(kept.num_rows(), 1);
    assert_eq!(
        kept.column(0).as_fixed_size_binary().value(0),
        &[3u8; 16][..]
    );
    // Metrics have no top-level trace id: nothing to apply.
    assert!(RowFilter::new(Table::Metrics, &[], Some(&wanted)).is_none());
}
