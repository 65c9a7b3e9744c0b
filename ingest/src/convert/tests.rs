//! Conversion tests: the published OTLP/JSON examples end to end, and validation cases.
//!
//! This module holds the shared helpers; the cases are in its submodules.

use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    Float64Type, Int32Type, Int64Type, TimestampNanosecondType, UInt32Type, UInt64Type,
};
use lumen_storage::Table;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Summary,
    SummaryDataPoint, exemplar, metric::Data, number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span, status};
use prost::Message as _;

use super::{Converted, Limits, logs, metrics, series_id, spans};

mod examples;
mod log_cases;
mod metric_cases;
mod span_cases;

/// 2026-01-01T00:00:00Z: "now" for every test, so results do not depend on the clock.
const NOW: i64 = 1_767_225_600_000_000_000;
/// The timestamp used by the published examples (2018-12-13T14:51:00Z).
const EXAMPLE_TIME: i64 = 1_544_712_660_000_000_000;

fn example(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/otlp-examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn decode_json<T: serde::de::DeserializeOwned>(name: &str) -> T {
    crate::json::decode(&example(name)).unwrap_or_else(|e| panic!("decoding {name}: {e}"))
}

fn batch(converted: &Converted) -> &RecordBatch {
    converted.batch.as_ref().expect("a batch")
}

fn string(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = array.as_string::<i32>();
    array.is_valid(row).then(|| array.value(row).to_owned())
}

fn u32_at(batch: &RecordBatch, column: &str, row: usize) -> u32 {
    batch
        .column_by_name(column)
        .expect("column")
        .as_primitive::<UInt32Type>()
        .value(row)
}

fn time_at(batch: &RecordBatch, column: &str, row: usize) -> Option<i64> {
    let array = batch.column_by_name(column).expect("column");
    let array = array.as_primitive::<TimestampNanosecondType>();
    array.is_valid(row).then(|| array.value(row))
}

fn f64_at(batch: &RecordBatch, column: &str, row: usize) -> Option<f64> {
    let array = batch
        .column_by_name(column)
        .expect("column")
        .as_primitive::<Float64Type>();
    array.is_valid(row).then(|| array.value(row))
}

fn u64_at(batch: &RecordBatch, column: &str, row: usize) -> Option<u64> {
    let array = batch
        .column_by_name(column)
        .expect("column")
        .as_primitive::<UInt64Type>();
    array.is_valid(row).then(|| array.value(row))
}

fn i64_at(batch: &RecordBatch, column: &str, row: usize) -> Option<i64> {
    let array = batch
        .column_by_name(column)
        .expect("column")
        .as_primitive::<Int64Type>();
    array.is_valid(row).then(|| array.value(row))
}

fn i32_at(batch: &RecordBatch, column: &str, row: usize) -> Option<i32> {
    let array = batch
        .column_by_name(column)
        .expect("column")
        .as_primitive::<Int32Type>();
    array.is_valid(row).then(|| array.value(row))
}

fn id(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let array = batch
        .column_by_name(column)
        .expect("column")
        .as_fixed_size_binary();
    array.is_valid(row).then(|| hex::encode(array.value(row)))
}

fn map_at(batch: &RecordBatch, column: &str, row: usize) -> Vec<(String, Option<String>)> {
    map_entries(batch.column_by_name(column).expect("column").as_ref(), row)
}

fn map_entries(array: &dyn Array, row: usize) -> Vec<(String, Option<String>)> {
    let entries = array.as_map().value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .map(|i| {
            (
                keys.value(i).to_owned(),
                values.is_valid(i).then(|| values.value(i).to_owned()),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
        .collect()
}

fn u64_list(batch: &RecordBatch, column: &str, row: usize) -> Option<Vec<u64>> {
    let list = batch
        .column_by_name(column)
        .expect("column")
        .as_list::<i32>();
    list.is_valid(row).then(|| {
        list.value(row)
            .as_primitive::<UInt64Type>()
            .values()
            .to_vec()
    })
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![string_kv("service.name", service)],
        ..Default::default()
    })
}

fn limits() -> Limits {
    Limits {
        max_attributes_per_item: 128,
        max_future_skew: Duration::from_secs(3600),
    }
}

/// The checks every converted batch must pass whatever its content.
fn assert_schema(converted: &Converted, table: Table) {
    if let Some(batch) = &converted.batch {
        assert_eq!(batch.schema(), table.schema());
        assert_eq!(batch.num_rows() as u64, converted.accepted);
    }
}
