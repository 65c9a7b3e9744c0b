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
    // An id column tested only for NULL reads the same in either type (root spans).
    assert!(filterable(Table::Spans, &col("parent_span_id").is_null()));
    assert!(!filterable(
        Table::Spans,
        &col("parent_span_id")
            .is_null()
            .or(col("parent_span_id").eq(lit("ab")))
    ));
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

/// A two-row-group Parquet file of `service_name`, `status_code` and `name` (text, dictionary
/// encoded as segments are) and `duration_ns`.
fn parquet_file() -> bytes::Bytes {
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    let schema = Arc::new(Schema::new(vec![
        Field::new("service_name", arrow::datatypes::DataType::Utf8, true),
        Field::new("status_code", arrow::datatypes::DataType::Utf8, true),
        Field::new("name", arrow::datatypes::DataType::Utf8, true),
        Field::new("duration_ns", arrow::datatypes::DataType::Int64, false),
    ]));
    let services = [
        "payment", "gateway", "payment", "account", "payment", "gateway",
    ];
    let statuses = ["error", "error", "ok", "error", "error", "unset"];
    let names = ["charge", "GET /", "charge", "login", "refund", "GET /"];
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(services.to_vec())),
            Arc::new(StringArray::from(statuses.to_vec())),
            Arc::new(StringArray::from(names.to_vec())),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(3))
        .build();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes::Bytes::from(out)
}

/// Reads the file through `filter` as a segment scan does: the schema `read_as` gives, the
/// filters as the reader's predicates.
fn read_filtered(filter: RowFilter) -> (Vec<i64>, Vec<RecordBatch>) {
    use parquet::arrow::arrow_reader::{
        ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    let file = parquet_file();
    let filter = Arc::new(filter);
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).unwrap();
    let metadata = match filter.read_as(metadata.schema()) {
        Some(schema) => ArrowReaderMetadata::try_new(
            Arc::clone(metadata.metadata()),
            ArrowReaderOptions::new().with_schema(schema),
        )
        .unwrap(),
        None => metadata,
    };
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata);
    let predicates = filter.parquet(builder.parquet_schema());
    let batches: Vec<RecordBatch> = builder
        .with_row_filter(predicates)
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let durations = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("duration_ns")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    (durations, batches)
}

#[test]
fn segment_reads_compare_text_as_dictionaries_and_late_materialise_the_rest() {
    let filters = [col("service_name")
        .eq(lit("payment"))
        .and(col("status_code").eq(lit("error")))];
    let filter = RowFilter::new(Table::Spans, &filters, None).unwrap();
    let (durations, batches) = read_filtered(filter);
    assert_eq!(durations, [1, 5]);
    // The compared columns come out of the reader as dictionaries (the scan turns them back
    // into text); the others as written.
    let schema = batches[0].schema();
    assert!(matches!(
        schema.field_with_name("service_name").unwrap().data_type(),
        arrow::datatypes::DataType::Dictionary(..)
    ));
    assert_eq!(
        schema.field_with_name("name").unwrap().data_type(),
        &arrow::datatypes::DataType::Utf8
    );

    // A function over a text column reads it as text, and still filters.
    let filters = [
        datafusion::functions::regex::expr_fn::regexp_like(col("name"), lit("^GET.*"), None),
        col("service_name").eq(lit("gateway")),
    ];
    let filter = RowFilter::new(Table::Spans, &filters, None).unwrap();
    let (durations, batches) = read_filtered(filter);
    assert_eq!(durations, [2, 6]);
    assert_eq!(
        batches[0]
            .schema()
            .field_with_name("name")
            .unwrap()
            .data_type(),
        &arrow::datatypes::DataType::Utf8
    );

    // Nothing passes: no rows, not an error; and a numeric filter reads no dictionary.
    let filter = RowFilter::new(
        Table::Spans,
        &[
            col("service_name").eq(lit("nobody")),
            col("duration_ns").gt(lit(0_i64)),
        ],
        None,
    )
    .unwrap();
    assert_eq!(read_filtered(filter).0, Vec::<i64>::new());
    let filter = RowFilter::new(Table::Spans, &[col("duration_ns").gt(lit(4_i64))], None).unwrap();
    assert!(filter.read_as(&parquet_file_schema()).is_none());
    assert_eq!(read_filtered(filter).0, [5, 6]);
}

fn parquet_file_schema() -> arrow::datatypes::SchemaRef {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    ArrowReaderMetadata::load(&parquet_file(), ArrowReaderOptions::new())
        .unwrap()
        .schema()
        .clone()
}
