//! The Arrow schemas of Lumen's three tables, as stored in the WAL, the head and Parquet segments.
//!
//! docs/schema.md documents every column; keep the two in step. Conventions:
//! - time columns are `Timestamp(Nanosecond, "UTC")`;
//! - the top-level trace and span ids are `FixedSizeBinary` (16 and 8 bytes) so they compress and prune;
//!   the query layer shows them to SQL users as lowercase hex. Ids nested inside lists (span links,
//!   exemplars) are rare and are kept as lowercase hex text directly;
//! - attribute collections are `Map<Utf8, Utf8>`: scalar values in their text form, arrays and maps as
//!   JSON, bytes as base64 (the OTLP/JSON encoding of bytes). Beside each map (but exemplars'
//!   `filtered_attributes` and `metric_metadata`) a `<map>_types` text column keeps the OTLP type of
//!   every value, one [`ValueType`] letter per entry in map order, null when all are strings, so
//!   typed values come back as they came in;
//! - a batch of an older schema (a column or a nested struct field added since) is read through
//!   [`conform_batch`], which fills what it lacks with nulls.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, RecordBatch, RecordBatchOptions, StructArray,
    new_null_array,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

/// One of Lumen's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per span (OTLP traces).
    Spans,
    /// One row per log record (OTLP logs).
    Logs,
    /// One row per metric data point, for every OTLP metric type.
    Metrics,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 3] = [Table::Spans, Table::Logs, Table::Metrics];

    /// The table's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::Logs => "logs",
            Table::Metrics => "metrics",
        }
    }

    /// Parses a table name as written in SQL or on disk.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A stable one-byte code used in WAL records.
    pub fn code(self) -> u8 {
        match self {
            Table::Spans => 1,
            Table::Logs => 2,
            Table::Metrics => 3,
        }
    }

    /// Inverse of [`Table::code`].
    pub fn from_code(code: u8) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The storage schema of this table.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Spans => SPANS.clone(),
            Table::Logs => LOGS.clone(),
            Table::Metrics => METRICS.clone(),
        }
    }

    /// The columns the table's segments are sorted by, in order (the last is always `time`).
    pub fn sort_columns(self) -> &'static [&'static str] {
        match self {
            // Sorting by trace id keeps each trace together (one bloom-filter hit reads one page) and
            // lets the random ids of a trace compress against each other.
            Table::Spans => &["trace_id", "time"],
            Table::Logs => &["service_name", "time"],
            // By metric first: a selector reads one metric's series, which then sit in adjacent
            // pages instead of being spread over the whole file by their hashed ids.
            Table::Metrics => &["metric_name", "series_id", "time"],
        }
    }

    /// Top-level binary id columns (shown as hex to SQL users).
    pub fn id_columns(self) -> &'static [&'static str] {
        match self {
            Table::Spans => &["trace_id", "span_id", "parent_span_id"],
            Table::Logs => &["trace_id", "span_id"],
            Table::Metrics => &[],
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Name of the time column every table has; the column segments are partitioned and pruned by.
pub const TIME_COLUMN: &str = "time";

/// `Timestamp(Nanosecond, "UTC")`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// `Map<Utf8, Utf8>` with the field names `arrow::array::MapBuilder` produces by default.
pub fn attributes_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    )
}

/// A `List` of items of `item_type`, with the item field name `arrow::array::ListBuilder` uses.
pub fn list_of(item_type: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item_type, true)))
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp_type(), nullable)
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn u32_count(name: &str) -> Field {
    Field::new(name, DataType::UInt32, false)
}

fn attrs(name: &str) -> Field {
    Field::new(name, attributes_type(), true)
}

/// The `<name>_types` column beside the attribute map `name`.
fn attr_types(name: &str) -> Field {
    utf8(&types_column(name))
}

/// The name of the column keeping the value types of the attribute map `map_column`.
pub fn types_column(map_column: &str) -> String {
    format!("{map_column}_types")
}

/// Resource and instrumentation-scope columns, shared by all three tables (appended last).
fn resource_and_scope() -> Vec<Field> {
    vec![
        utf8("service_name"),
        attrs("resource_attributes"),
        attr_types("resource_attributes"),
        u32_count("resource_dropped_attributes_count"),
        utf8("resource_schema_url"),
        utf8("resource_entity_refs"),
        utf8("scope_name"),
        utf8("scope_version"),
        attrs("scope_attributes"),
        attr_types("scope_attributes"),
        u32_count("scope_dropped_attributes_count"),
        utf8("scope_schema_url"),
    ]
}

/// Fields of one entry of `spans.events`.
pub fn span_event_fields() -> Fields {
    Fields::from(vec![
        ts("time", false),
        utf8("name"),
        attrs("attributes"),
        attr_types("attributes"),
        u32_count("dropped_attributes_count"),
    ])
}

/// Fields of one entry of `spans.links`.
pub fn span_link_fields() -> Fields {
    Fields::from(vec![
        utf8("trace_id"),
        utf8("span_id"),
        utf8("trace_state"),
        u32_count("flags"),
        attrs("attributes"),
        attr_types("attributes"),
        u32_count("dropped_attributes_count"),
    ])
}

/// Fields of one entry of `metrics.quantiles` (summary points).
pub fn quantile_fields() -> Fields {
    Fields::from(vec![
        Field::new("quantile", DataType::Float64, false),
        Field::new("value", DataType::Float64, false),
    ])
}

/// Fields of one entry of `metrics.exemplars`.
pub fn exemplar_fields() -> Fields {
    Fields::from(vec![
        ts("time", false),
        Field::new("value", DataType::Float64, true),
        Field::new("value_int", DataType::Int64, true),
        utf8("trace_id"),
        utf8("span_id"),
        attrs("filtered_attributes"),
    ])
}

static SPANS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        ts("time", false),
        ts("end_time", false),
        Field::new("duration_ns", DataType::Int64, false),
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("parent_span_id", DataType::FixedSizeBinary(8), true),
        utf8("trace_state"),
        u32_count("flags"),
        utf8("name"),
        utf8("kind"),
        utf8("status_code"),
        utf8("status_message"),
        attrs("attributes"),
        attr_types("attributes"),
        u32_count("dropped_attributes_count"),
        Field::new(
            "events",
            list_of(DataType::Struct(span_event_fields())),
            true,
        ),
        u32_count("dropped_events_count"),
        Field::new("links", list_of(DataType::Struct(span_link_fields())), true),
        u32_count("dropped_links_count"),
    ];
    fields.extend(resource_and_scope());
    Arc::new(Schema::new(fields))
});

static LOGS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        ts("time", false),
        ts("observed_time", true),
        Field::new("severity_number", DataType::Int32, false),
        utf8("severity_text"),
        utf8("body"),
        utf8("body_type"),
        utf8("event_name"),
        Field::new("trace_id", DataType::FixedSizeBinary(16), true),
        Field::new("span_id", DataType::FixedSizeBinary(8), true),
        u32_count("flags"),
        attrs("attributes"),
        attr_types("attributes"),
        u32_count("dropped_attributes_count"),
    ];
    fields.extend(resource_and_scope());
    Arc::new(Schema::new(fields))
});

static METRICS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        ts("time", false),
        ts("start_time", true),
        Field::new("metric_name", DataType::Utf8, false),
        utf8("description"),
        utf8("unit"),
        Field::new("metric_type", DataType::Utf8, false),
        utf8("temporality"),
        Field::new("is_monotonic", DataType::Boolean, true),
        Field::new("series_id", DataType::UInt64, false),
        u32_count("flags"),
        attrs("attributes"),
        attr_types("attributes"),
        attrs("metric_metadata"),
        Field::new("value", DataType::Float64, true),
        Field::new("value_int", DataType::Int64, true),
        Field::new("count", DataType::UInt64, true),
        Field::new("sum", DataType::Float64, true),
        Field::new("min", DataType::Float64, true),
        Field::new("max", DataType::Float64, true),
        Field::new("bucket_counts", list_of(DataType::UInt64), true),
        Field::new("explicit_bounds", list_of(DataType::Float64), true),
        Field::new("scale", DataType::Int32, true),
        Field::new("zero_count", DataType::UInt64, true),
        Field::new("zero_threshold", DataType::Float64, true),
        Field::new("positive_offset", DataType::Int32, true),
        Field::new("positive_bucket_counts", list_of(DataType::UInt64), true),
        Field::new("negative_offset", DataType::Int32, true),
        Field::new("negative_bucket_counts", list_of(DataType::UInt64), true),
        Field::new(
            "quantiles",
            list_of(DataType::Struct(quantile_fields())),
            true,
        ),
        Field::new(
            "exemplars",
            list_of(DataType::Struct(exemplar_fields())),
            true,
        ),
    ];
    fields.extend(resource_and_scope());
    Arc::new(Schema::new(fields))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_time_first_and_sort_columns_exist() {
        for table in Table::ALL {
            let schema = table.schema();
            assert_eq!(schema.field(0).name(), TIME_COLUMN);
            for col in table.sort_columns().iter().chain(table.id_columns()) {
                assert!(schema.index_of(col).is_ok(), "{table}: missing {col}");
            }
            assert_eq!(Table::from_code(table.code()), Some(table));
            assert_eq!(Table::from_name(table.name()), Some(table));
        }
    }

    #[test]
    fn batches_of_an_older_schema_read_in_todays() {
        use arrow::array::{ListArray, StringArray, TimestampNanosecondArray, UInt32Array};
        use arrow::buffer::OffsetBuffer;

        // A `spans` batch as written before the `_types` columns: no `attributes_types`, and
        // events without their `attributes_types` field.
        let old_event = Fields::from(vec![
            ts("time", false),
            utf8("name"),
            u32_count("dropped_attributes_count"),
        ]);
        let events = StructArray::try_new(
            old_event.clone(),
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![5, 6]).with_timezone("UTC")),
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(UInt32Array::from(vec![0, 1])),
            ],
            None,
        )
        .unwrap();
        let events = ListArray::try_new(
            Arc::new(Field::new(
                "item",
                DataType::Struct(old_event.clone()),
                true,
            )),
            OffsetBuffer::from_lengths([2]),
            Arc::new(events),
            None,
        )
        .unwrap();
        let old = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("events", events.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            old,
            vec![Arc::new(StringArray::from(vec!["span"])), Arc::new(events)],
        )
        .unwrap();

        let target = Arc::new(Schema::new(vec![
            Field::new(
                "events",
                list_of(DataType::Struct(span_event_fields())),
                true,
            ),
            utf8("attributes_types"),
            Field::new("name", DataType::Utf8, true),
        ]));
        let conformed = conform_batch(&batch, &target).unwrap();
        assert_eq!(conformed.schema(), target);
        assert_eq!(conformed.num_rows(), 1);
        assert!(conformed.column(1).is_null(0));
        let events = conformed.column(0).as_list::<i32>();
        let items = events.values().as_struct();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items
                .column_by_name("name")
                .unwrap()
                .as_string::<i32>()
                .value(1),
            "b"
        );
        assert_eq!(
            items
                .column_by_name("attributes_types")
                .unwrap()
                .null_count(),
            2
        );
        assert_eq!(items.column_by_name("attributes").unwrap().null_count(), 2);

        // A column that may not be null cannot be made up.
        let strict = Arc::new(Schema::new(vec![u32_count("flags")]));
        let err = conform_batch(&batch, &strict).unwrap_err();
        assert!(err.to_string().contains("no column flags"), "{err}");
        // A batch already in the schema comes back as is.
        let same = conform_batch(&conformed, &target).unwrap();
        assert_eq!(same.column(0).to_data(), conformed.column(0).to_data());
    }

    #[test]
    fn value_type_letters_round_trip() {
        for kind in [
            ValueType::String,
            ValueType::Bool,
            ValueType::Int,
            ValueType::Double,
            ValueType::Bytes,
            ValueType::Array,
            ValueType::Kvlist,
        ] {
            assert_eq!(ValueType::from_code(kind.code()), kind);
        }
        assert_eq!(ValueType::of_entry(Some("si"), 1), ValueType::Int);
        assert_eq!(ValueType::of_entry(Some("si"), 2), ValueType::String);
        assert_eq!(ValueType::of_entry(None, 0), ValueType::String);
    }
}

// ---------------------------------------------------------------------------------------------
// Values of the `metrics` table's descriptor columns: written by ingest, read by PromQL.

/// `metrics.metric_type`: which OTLP data a row's point came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// An OTLP gauge (remote-written samples without a counter name are gauges too).
    Gauge,
    /// An OTLP sum. `is_monotonic` true means it only goes up: a counter (`_total` in PromQL
    /// when cumulative); the column is null for the other types.
    Sum,
    /// An OTLP histogram with explicit bounds.
    Histogram,
    /// An OTLP exponential histogram.
    ExponentialHistogram,
    /// An OTLP summary (quantiles, sum, count).
    Summary,
}

impl MetricType {
    /// Every type, in OTLP's order.
    pub const ALL: [MetricType; 5] = [
        MetricType::Gauge,
        MetricType::Sum,
        MetricType::Histogram,
        MetricType::ExponentialHistogram,
        MetricType::Summary,
    ];

    /// The text stored in `metric_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Sum => "sum",
            MetricType::Histogram => "histogram",
            MetricType::ExponentialHistogram => "exponential_histogram",
            MetricType::Summary => "summary",
        }
    }

    /// The type stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<MetricType> {
        MetricType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// `metrics.temporality` of sums and histograms (null when OTLP leaves it unspecified, and for
/// gauges and summaries, which have none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Temporality {
    /// Each point covers the interval since the previous one.
    Delta,
    /// Each point covers the interval since the series' start.
    Cumulative,
}

impl Temporality {
    /// The text stored in `temporality`.
    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Delta => "delta",
            Temporality::Cumulative => "cumulative",
        }
    }

    /// The temporality stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Temporality> {
        [Temporality::Delta, Temporality::Cumulative]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// `scope_name` of rows received through Prometheus remote write: their labels are their
/// attributes, kept as sent.
pub const REMOTE_WRITE_SCOPE: &str = "prometheus.remote_write";

/// `scope_name` of the metrics Lumen derives from spans at ingest (`traces_spanmetrics_*`,
/// `traces_service_graph_*`).
pub const SPAN_METRICS_SCOPE: &str = "lumen.spanmetrics";

/// Bits of the `flags` column of `metrics` rows (OTLP `DataPointFlags`).
pub struct PointFlags;

impl PointFlags {
    /// `FLAG_NO_RECORDED_VALUE`: the point has no value (PromQL reads it as a staleness marker).
    pub const NO_RECORDED_VALUE: u32 = 1;
}

// ---------------------------------------------------------------------------------------------
// Typed attribute values: the letters of the `<map>_types` columns.

/// The OTLP `AnyValue` kind of an attribute value, stored as one ASCII letter per map entry in the
/// `<map>_types` column beside an attribute map. The column is null when every value is a string
/// (or absent), so string-only maps cost nothing; a missing letter also means string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `string_value` (and an entry with no value).
    String,
    /// `bool_value`: stored as `true` / `false`.
    Bool,
    /// `int_value`: stored in decimal.
    Int,
    /// `double_value`: stored in shortest round-trip form.
    Double,
    /// `bytes_value`: stored in base64.
    Bytes,
    /// `array_value`: stored as a JSON array.
    Array,
    /// `kvlist_value`: stored as a JSON object.
    Kvlist,
}

impl ValueType {
    /// The letter stored for this type.
    pub const fn code(self) -> u8 {
        match self {
            ValueType::String => b's',
            ValueType::Bool => b'b',
            ValueType::Int => b'i',
            ValueType::Double => b'd',
            ValueType::Bytes => b'y',
            ValueType::Array => b'a',
            ValueType::Kvlist => b'm',
        }
    }

    /// The type a stored letter stands for; unknown letters read as strings.
    pub const fn from_code(code: u8) -> ValueType {
        match code {
            b'b' => ValueType::Bool,
            b'i' => ValueType::Int,
            b'd' => ValueType::Double,
            b'y' => ValueType::Bytes,
            b'a' => ValueType::Array,
            b'm' => ValueType::Kvlist,
            _ => ValueType::String,
        }
    }

    /// The type of entry `index` of a map whose `<map>_types` value is `types`.
    pub fn of_entry(types: Option<&str>, index: usize) -> ValueType {
        types
            .and_then(|t| t.as_bytes().get(index))
            .map_or(ValueType::String, |c| ValueType::from_code(*c))
    }

    /// The name Tempo and TraceQL use for the type (`string`, `int`, `double`, `bool`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Bool => "bool",
            ValueType::Int => "int",
            ValueType::Double => "double",
            ValueType::Bytes => "bytes",
            ValueType::Array => "array",
            ValueType::Kvlist => "kvlist",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading batches of an older schema.

/// `batch` in `schema`: columns matched by name in `schema`'s order, nested struct fields matched
/// the same way (see [`conform_array`]); columns the batch lacks (added to the schema after it was
/// written) are nulls, columns `schema` lacks are dropped. A batch already in `schema` is returned
/// as is.
pub fn conform_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => conform_array(column, field.data_type()),
            None => missing(field, batch.num_rows()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// `array` as `target`: structs (also inside lists) get the target's fields by name, a field the
/// array lacks as nulls; anything else that differs is cast.
pub fn conform_array(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    match (array.data_type(), target) {
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let strukt = array.as_struct();
            let children = fields
                .iter()
                .map(|field| match strukt.column_by_name(field.name()) {
                    Some(child) => conform_array(child, field.data_type()),
                    None => missing(field, strukt.len()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                children,
                strukt.nulls().cloned(),
            )?))
        }
        (DataType::List(_), DataType::List(item)) => {
            let list = array.as_list::<i32>();
            let values = conform_array(list.values(), item.data_type())?;
            Ok(Arc::new(ListArray::try_new(
                Arc::clone(item),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        _ => arrow::compute::cast(array, target),
    }
}

/// The column for a field an older batch does not have: nulls, or an error when the field may not
/// be null.
fn missing(field: &Field, rows: usize) -> Result<ArrayRef, ArrowError> {
    if !field.is_nullable() && rows > 0 {
        return Err(ArrowError::SchemaError(format!(
            "the stored data has no column {} and it cannot be null",
            field.name()
        )));
    }
    Ok(new_null_array(field.data_type(), rows))
}
