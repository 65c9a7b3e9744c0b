//! Snapshot sources for tests: [`FakeSource`] holds head batches and segment lists in memory, and
//! the `spans` fixtures below fill it (head rows and Parquet segments written like storage does).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{
    ArrayRef, FixedSizeBinaryArray, Int64Array, MapBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampNanosecondArray, UInt32Array, new_null_array,
};
use arrow::datatypes::DataType;
use lumen_storage::{SegmentMeta, Table, TableSnapshot, TimeRange};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::snapshot::SnapshotSource;

/// A snapshot source over batches and segment lists held in memory; records requested ranges.
#[derive(Default)]
pub struct FakeSource {
    /// Head batches per table.
    pub head: Mutex<HashMap<Table, Vec<RecordBatch>>>,
    /// Segments of every table.
    pub segments: Mutex<Vec<SegmentMeta>>,
    /// Every `(table, range)` a snapshot was asked for, in order.
    pub ranges: Mutex<Vec<(Table, TimeRange)>>,
}

impl SnapshotSource for FakeSource {
    fn snapshot(&self, table: Table, range: TimeRange) -> lumen_storage::TableSnapshot {
        self.ranges.lock().unwrap().push((table, range));
        TableSnapshot {
            head: self
                .head
                .lock()
                .unwrap()
                .get(&table)
                .cloned()
                .unwrap_or_default(),
            segments: self
                .segments
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.table == table)
                .cloned()
                .collect(),
        }
    }
}

/// One span of the fixtures (the other columns are filled in alike).
pub struct SpanRow {
    /// Start time (ns).
    pub time: i64,
    /// Trace id.
    pub trace: [u8; 16],
    /// Span id.
    pub span: [u8; 8],
    /// Parent span id.
    pub parent: Option<[u8; 8]>,
    /// Span name.
    pub name: &'static str,
}

/// Trace id `n`: `5b00…00<n>`.
pub fn trace(n: u8) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = 0x5b;
    id[15] = n;
    id
}

/// A root span of trace `trace_n` with span id `[span_n; 8]`.
pub fn span_row(time: i64, trace_n: u8, span_n: u8, name: &'static str) -> SpanRow {
    SpanRow {
        time,
        trace: trace(trace_n),
        span: [span_n; 8],
        parent: None,
        name,
    }
}

/// A batch in the full `spans` storage schema.
pub fn spans_batch(rows: &[SpanRow]) -> RecordBatch {
    let schema = Table::Spans.schema();
    let n = rows.len();
    let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.name().as_str() {
                "time" => {
                    Arc::new(TimestampNanosecondArray::from(times.clone()).with_timezone("UTC"))
                }
                "end_time" => Arc::new(
                    TimestampNanosecondArray::from(
                        times.iter().map(|t| t + 1_000).collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                "duration_ns" => Arc::new(Int64Array::from(vec![1_000; n])),
                "trace_id" => Arc::new(
                    FixedSizeBinaryArray::try_from_iter(rows.iter().map(|r| r.trace)).unwrap(),
                ),
                "span_id" => Arc::new(
                    FixedSizeBinaryArray::try_from_iter(rows.iter().map(|r| r.span)).unwrap(),
                ),
                "parent_span_id" => Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                        rows.iter().map(|r| r.parent),
                        8,
                    )
                    .unwrap(),
                ),
                "name" => Arc::new(StringArray::from(
                    rows.iter().map(|r| r.name).collect::<Vec<_>>(),
                )),
                "service_name" => Arc::new(StringArray::from(vec!["checkout"; n])),
                "attributes" => {
                    let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                    for _ in 0..n {
                        map.keys().append_value("http.method");
                        map.values().append_value("GET");
                        map.append(true).unwrap();
                    }
                    Arc::new(map.finish())
                }
                _ if field.is_nullable() => new_null_array(field.data_type(), n),
                _ => match field.data_type() {
                    DataType::UInt32 => Arc::new(UInt32Array::from(vec![0; n])),
                    other => panic!("no test value for {}: {other}", field.name()),
                },
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Writes a spans segment like the storage engine does (sorted by trace id, bloom filter on
/// `trace_id`, page statistics), with small row groups so pruning has something to do.
pub fn write_spans_segment(dir: &Path, id: u64, rows: Vec<SpanRow>) -> SegmentMeta {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(ColumnPath::from("trace_id"), true)
        .build();
    write_spans_segment_with(dir, id, rows, props)
}

/// [`write_spans_segment`] with the given writer properties.
pub fn write_spans_segment_with(
    dir: &Path,
    id: u64,
    mut rows: Vec<SpanRow>,
    props: WriterProperties,
) -> SegmentMeta {
    rows.sort_by_key(|r| (r.trace, r.time));
    let batch = spans_batch(&rows);
    let path = dir.join(format!("spans-{id}.parquet"));
    let mut writer =
        ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    SegmentMeta {
        id,
        table: Table::Spans,
        path,
        min_time: rows.iter().map(|r| r.time).min().unwrap_or(0),
        max_time: rows.iter().map(|r| r.time).max().unwrap_or(0),
        rows: rows.len() as u64,
        bytes: 0,
    }
}

/// A source with two head spans and two segments of four spans each.
pub fn populated_source(dir: &Path) -> Arc<FakeSource> {
    let source = Arc::new(FakeSource::default());
    let mut head = vec![
        span_row(5_000, 9, 1, "head-a"),
        span_row(5_001, 1, 2, "head-b"),
    ];
    head[1].parent = Some([1; 8]);
    source
        .head
        .lock()
        .unwrap()
        .insert(Table::Spans, vec![spans_batch(&head)]);
    let first = write_spans_segment(
        dir,
        1,
        vec![
            span_row(1_000, 1, 10, "s1"),
            span_row(1_001, 1, 11, "s1"),
            span_row(1_002, 2, 12, "s2"),
            span_row(1_003, 3, 13, "s3"),
        ],
    );
    let second = write_spans_segment(
        dir,
        2,
        vec![
            span_row(3_000, 4, 20, "s4"),
            span_row(3_001, 5, 21, "s5"),
            span_row(3_002, 6, 22, "s6"),
            span_row(3_003, 1, 23, "s1-late"),
        ],
    );
    source.segments.lock().unwrap().extend([first, second]);
    source
}
