//! The storage engine through its public API: durability, flush, recovery from crashes and corruption.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod compaction;
mod series_index;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, Int32Array, Int64Array, StringArray,
    TimestampNanosecondArray, UInt32Array, UInt64Array, new_null_array,
};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use lumen_storage::{Storage, StorageConfig, Table, TimeRange};

const HOUR: i64 = 3_600_000_000_000;
const T0: i64 = 1_764_000_000_000_000_000; // 2025-11-24T16:00Z, an hour boundary

/// A batch of `table` with one row per entry of `ids`; `id` goes into `time` (T0 + id seconds) and,
/// for spans, into the trace id, so rows can be recognised after a round trip.
fn batch(table: Table, ids: &[i64]) -> RecordBatch {
    let schema = table.schema();
    let n = ids.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match (f.name().as_str(), f.data_type()) {
                ("time", _) => Arc::new(
                    TimestampNanosecondArray::from(
                        ids.iter()
                            .map(|i| T0 + i * 1_000_000_000)
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                (_, DataType::FixedSizeBinary(w)) => {
                    let values = ids.iter().map(|i| {
                        let mut v = vec![0u8; *w as usize];
                        v[..8].copy_from_slice(&(*i as u64 + 1).to_be_bytes());
                        v
                    });
                    Arc::new(FixedSizeBinaryArray::try_from_iter(values).unwrap())
                }
                (_, _) if f.is_nullable() => new_null_array(f.data_type(), n),
                (_, DataType::Timestamp(TimeUnit::Nanosecond, _)) => {
                    Arc::new(TimestampNanosecondArray::from(vec![T0; n]).with_timezone("UTC"))
                }
                (_, DataType::Int64) => Arc::new(Int64Array::from(vec![0; n])),
                (_, DataType::Int32) => Arc::new(Int32Array::from(vec![0; n])),
                (_, DataType::UInt32) => Arc::new(UInt32Array::from(vec![0; n])),
                (_, DataType::UInt64) => Arc::new(UInt64Array::from(
                    ids.iter().map(|i| *i as u64).collect::<Vec<_>>(),
                )),
                (_, DataType::Utf8) => Arc::new(StringArray::from(vec!["x"; n])),
                (name, other) => panic!("no test value for {name}: {other}"),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn config(dir: &std::path::Path) -> StorageConfig {
    let mut config = StorageConfig::new(dir);
    config.flush_interval = Duration::from_secs(3600);
    // These tests count segments per flush; compaction has its own tests.
    config.compaction.enabled = false;
    config
}

/// Every row id visible for `table` in head and segments, sorted.
fn visible_ids(storage: &Storage, table: Table) -> Vec<i64> {
    let snap = storage.snapshot(table, TimeRange::default());
    let mut batches = snap.head.clone();
    for seg in &snap.segments {
        batches.extend(lumen_storage::segment::read_all(&seg.path).unwrap());
    }
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let t = b
                .column_by_name("time")
                .unwrap()
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .unwrap();
            t.values()
                .iter()
                .map(|v| (v - T0) / 1_000_000_000)
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn writes_are_queryable_at_once_and_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(config(dir.path())).unwrap();
    storage
        .write(Table::Spans, batch(Table::Spans, &[3, 1, 2]))
        .await
        .unwrap();
    storage
        .write(Table::Logs, batch(Table::Logs, &[5]))
        .await
        .unwrap();
    assert_eq!(visible_ids(&storage, Table::Spans), vec![1, 2, 3]);
    let report = storage.flush().await.unwrap();
    assert_eq!(report.rows, 4);
    let snap = storage.snapshot(Table::Spans, TimeRange::default());
    assert!(snap.head.is_empty());
    assert_eq!(snap.segments.len(), 1);
    assert_eq!(visible_ids(&storage, Table::Spans), vec![1, 2, 3]);
    assert_eq!(visible_ids(&storage, Table::Logs), vec![5]);
    // Segments are sorted by trace id.
    let rows = lumen_storage::segment::read_all(&snap.segments[0].path).unwrap();
    let ids = rows[0]
        .column_by_name("trace_id")
        .unwrap()
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .unwrap();
    let firsts: Vec<u8> = (0..ids.len()).map(|i| ids.value(i)[7]).collect();
    assert_eq!(firsts, vec![2, 3, 4]);
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn segments_are_split_by_hour_and_pruned_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(config(dir.path())).unwrap();
    let hour = HOUR / 1_000_000_000;
    storage
        .write(
            Table::Metrics,
            batch(Table::Metrics, &[0, 1, hour, hour + 5, 2 * hour]),
        )
        .await
        .unwrap();
    storage.flush().await.unwrap();
    let all = storage.snapshot(Table::Metrics, TimeRange::default());
    assert_eq!(all.segments.len(), 3);
    let second_hour = storage.snapshot(
        Table::Metrics,
        TimeRange {
            start: Some(T0 + HOUR),
            end: Some(T0 + HOUR + 10),
        },
    );
    assert_eq!(second_hour.segments.len(), 1);
    assert_eq!(second_hour.segments[0].rows, 2);
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn acknowledged_writes_survive_a_crash_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = Storage::open(config(dir.path())).unwrap();
        storage
            .write(Table::Spans, batch(Table::Spans, &[1, 2]))
            .await
            .unwrap();
        storage.flush().await.unwrap();
        storage
            .write(Table::Spans, batch(Table::Spans, &[3]))
            .await
            .unwrap();
        // No shutdown: dropping stops the threads without flushing, like a crash after the fsync.
    }
    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(storage.recovery().replayed_records, 1);
    assert_eq!(visible_ids(&storage, Table::Spans), vec![1, 2, 3]);
    storage.flush().await.unwrap();
    drop(storage);
    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(storage.recovery().replayed_records, 0);
    assert_eq!(visible_ids(&storage, Table::Spans), vec![1, 2, 3]);
}

#[tokio::test]
async fn orphan_segments_from_an_interrupted_flush_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = Storage::open(config(dir.path())).unwrap();
        storage
            .write(Table::Logs, batch(Table::Logs, &[1]))
            .await
            .unwrap();
    }
    // A flush that wrote its file but crashed before the manifest update.
    let orphan_dir = dir.path().join("segments/logs/2025-11-24T16");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("000000000099.parquet"), b"partial").unwrap();
    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(storage.recovery().orphans_removed, 1);
    assert_eq!(visible_ids(&storage, Table::Logs), vec![1]);
}

#[tokio::test]
async fn corrupt_segment_is_quarantined_and_the_store_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let storage = Storage::open(config(dir.path())).unwrap();
        storage
            .write(Table::Logs, batch(Table::Logs, &[1]))
            .await
            .unwrap();
        storage
            .write(Table::Spans, batch(Table::Spans, &[7]))
            .await
            .unwrap();
        let report = storage.flush().await.unwrap();
        storage.shutdown().await.unwrap();
        report
            .segments
            .iter()
            .find(|s| s.table == Table::Logs)
            .unwrap()
            .path
            .clone()
    };
    std::fs::write(&path, b"garbage, not parquet").unwrap();
    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(storage.recovery().quarantined, 1);
    assert!(dir.path().join("quarantine").read_dir().unwrap().count() == 1);
    assert_eq!(visible_ids(&storage, Table::Logs), Vec::<i64>::new());
    assert_eq!(visible_ids(&storage, Table::Spans), vec![7]);
}

#[tokio::test]
async fn full_head_refuses_writes_retryably() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_head_bytes = 1;
    let storage = Storage::open(cfg).unwrap();
    let err = storage
        .write(Table::Logs, batch(Table::Logs, &[1]))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Storage::open(config(dir.path())).unwrap();
    let err = Storage::open(config(dir.path())).err().unwrap();
    assert!(err.to_string().contains("another Lumen process"), "{err}");
}

#[tokio::test]
async fn concurrent_writers_share_fsyncs_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(config(dir.path())).unwrap();
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25i64 {
                storage
                    .write(Table::Logs, batch(Table::Logs, &[w * 100 + i]))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: Vec<i64> = (0..8)
        .flat_map(|w| (0..25).map(move |i| w * 100 + i))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(visible_ids(&storage, Table::Logs), expected);
    storage.shutdown().await.unwrap();
    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(visible_ids(&storage, Table::Logs), expected);
}
