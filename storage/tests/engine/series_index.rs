//! The series index sidecars of metrics segments through the engine: written at flush, rebuilt when
//! missing or corrupt, kept and removed correctly by recovery.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, AsArray, MapBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray, UInt32Array, UInt64Array, new_null_array,
};
use arrow::datatypes::UInt64Type;
use lumen_storage::index::{self, sidecar_path};
use lumen_storage::{
    AttributeColumn, SegmentMeta, Storage, StorageConfig, Table, TimeRange, load_series_index,
};

const HOUR: i64 = 3_600_000_000_000;
const T0: i64 = 1_764_000_000_000_000_000; // an hour boundary

fn config(dir: &Path) -> StorageConfig {
    let mut config = StorageConfig::new(dir);
    config.flush_interval = Duration::from_secs(3600);
    // These tests count segments per flush; compaction has its own tests.
    config.compaction.enabled = false;
    config
}

/// `series` series (`host` = `h<i>`, `dc` = `dc<i % 3>`) of metric `m<i % 4>`, `points` points
/// each, spread over two hours; rows in arrival order (by time), not by series.
pub(crate) fn metrics(series: u64, points: i64) -> RecordBatch {
    let schema = Table::Metrics.schema();
    let mut rows = Vec::new();
    for p in 0..points {
        for s in 0..series {
            rows.push((s, T0 + p * (2 * HOUR / points)));
        }
    }
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.name().as_str() {
                "time" => Arc::new(
                    TimestampNanosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                "series_id" => Arc::new(UInt64Array::from(
                    rows.iter().map(|r| r.0 * 7919 % 1000).collect::<Vec<_>>(),
                )),
                "metric_name" => Arc::new(StringArray::from(
                    rows.iter()
                        .map(|r| format!("m{}", r.0 % 4))
                        .collect::<Vec<_>>(),
                )),
                "metric_type" => Arc::new(StringArray::from(vec!["gauge"; n])),
                "attributes" | "resource_attributes" => {
                    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                    for (s, _) in &rows {
                        if f.name() == "attributes" {
                            b.keys().append_value("host");
                            b.values().append_value(format!("h{s}"));
                            b.keys().append_value("dc");
                            b.values().append_value(format!("dc{}", s % 3));
                        } else {
                            b.keys().append_value("service.name");
                            b.values().append_value("svc");
                        }
                        b.append(true).unwrap();
                    }
                    Arc::new(b.finish())
                }
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                _ => Arc::new(UInt32Array::from(vec![0u32; n])),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

async fn flushed_store(dir: &Path) -> (Arc<Storage>, Vec<SegmentMeta>) {
    let storage = Storage::open(config(dir)).unwrap();
    storage.write(Table::Metrics, metrics(50, 6)).await.unwrap();
    storage.flush().await.unwrap();
    let segments = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments;
    assert_eq!(segments.len(), 2);
    (storage, segments)
}

/// `(series_id, first row, rows)` of every run of equal `series_id` in the segment file.
pub(crate) fn runs_in_file(path: &Path) -> Vec<(u64, u64, u64)> {
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    let mut row = 0u64;
    for batch in lumen_storage::segment::read_all(path).unwrap() {
        let ids = batch
            .column_by_name("series_id")
            .unwrap()
            .as_primitive::<UInt64Type>();
        for i in 0..ids.len() {
            match runs.last_mut() {
                Some(last) if last.0 == ids.value(i) => last.2 += 1,
                _ => runs.push((ids.value(i), row, 1)),
            }
            row += 1;
        }
    }
    runs
}

pub(crate) fn runs_in_index(meta: &SegmentMeta) -> Vec<(u64, u64, u64)> {
    let index = load_series_index(meta).unwrap();
    (0..index.len())
        .map(|o| index.series(o).unwrap())
        .map(|e| (e.series_id(), e.first_row(), e.rows()))
        .collect()
}

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = lumen_storage::segment::list_files(dir).unwrap();
    out.sort();
    out
}

#[tokio::test]
async fn flush_writes_a_series_index_next_to_each_metrics_segment() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(config(dir.path())).unwrap();
    storage.write(Table::Metrics, metrics(50, 6)).await.unwrap();
    storage
        .write(Table::Logs, lumen_storage_logs())
        .await
        .unwrap();
    storage.flush().await.unwrap();
    let segments = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments;
    assert_eq!(segments.len(), 2);
    for meta in &segments {
        assert!(sidecar_path(&meta.path).exists());
        assert_eq!(runs_in_index(meta), runs_in_file(&meta.path));
        let index = load_series_index(meta).unwrap();
        assert_eq!(index.len(), 50);
        assert_eq!(index.series_with_metric_name("m1").unwrap().len(), 13); // s % 4 == 1 for 13 of 0..50
        assert_eq!(
            index
                .series_with_attribute(AttributeColumn::Point, "host", "h7")
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            index
                .series_with_attribute(AttributeColumn::Point, "dc", "dc0")
                .unwrap()
                .len(),
            17
        );
    }
    for meta in storage.snapshot(Table::Logs, TimeRange::default()).segments {
        assert!(
            !sidecar_path(&meta.path).exists(),
            "logs segments have no series index"
        );
        assert!(load_series_index(&meta).is_err());
    }
    storage.shutdown().await.unwrap();
}

/// One log row (the logs schema has no metric columns to fill).
fn lumen_storage_logs() -> RecordBatch {
    let schema = Table::Logs.schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match (f.name().as_str(), f.is_nullable()) {
                ("time", _) => {
                    Arc::new(TimestampNanosecondArray::from(vec![T0]).with_timezone("UTC"))
                }
                (_, true) => new_null_array(f.data_type(), 1),
                ("severity_number", false) => Arc::new(arrow::array::Int32Array::from(vec![0])),
                _ => Arc::new(UInt32Array::from(vec![0u32])),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

#[tokio::test]
async fn a_missing_or_corrupt_sidecar_is_rebuilt_and_never_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, segments) = flushed_store(dir.path()).await;
    let expected: Vec<_> = segments.iter().map(runs_in_index).collect();
    storage.shutdown().await.unwrap();
    drop(storage);

    std::fs::remove_file(sidecar_path(&segments[0].path)).unwrap();
    std::fs::write(sidecar_path(&segments[1].path), b"not an index").unwrap();
    for meta in &segments {
        index::forget(&meta.path); // as after a restart: nothing cached
    }
    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(storage.recovery().quarantined, 0);
    assert_eq!(storage.recovery().orphans_removed, 0);
    let reopened = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments;
    assert_eq!(
        reopened.iter().map(runs_in_index).collect::<Vec<_>>(),
        expected
    );
    // Rebuilt indexes are written back, valid.
    for meta in &reopened {
        let bytes = std::fs::read(sidecar_path(&meta.path)).unwrap();
        let index = index::format::decode(&bytes).unwrap();
        assert_eq!(index.segment_rows(), meta.rows);
    }
    // A sidecar of another file (same name, other size) is not trusted either.
    let meta = &reopened[0];
    let other = SegmentMeta {
        bytes: meta.bytes + 1,
        ..meta.clone()
    };
    index::forget(&meta.path);
    assert_eq!(runs_in_index(&other), expected[0]);
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_up_warm_up_loads_the_indexes_and_rebuilds_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, segments) = flushed_store(dir.path()).await;
    let expected: Vec<_> = segments.iter().map(runs_in_index).collect();
    storage.shutdown().await.unwrap();
    drop(storage);
    std::fs::remove_file(sidecar_path(&segments[1].path)).unwrap();
    for meta in &segments {
        index::forget(&meta.path);
    }

    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(
        storage.warm_series_indexes(&|| false),
        index::WarmUp::default(),
        "told to stop at once"
    );
    let done = storage.warm_series_indexes(&|| true);
    assert_eq!((done.loaded, done.cached), (2, 0), "{done:?}");
    assert!(done.bytes > 0);
    assert!(
        sidecar_path(&segments[1].path).exists(),
        "the missing sidecar was rebuilt"
    );
    let again = storage.warm_series_indexes(&|| true);
    assert_eq!(
        (again.loaded, again.cached, again.bytes),
        (0, 2, 0),
        "{again:?}"
    );
    assert_eq!(
        segments.iter().map(runs_in_index).collect::<Vec<_>>(),
        expected
    );
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn recovery_keeps_live_sidecars_and_removes_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, segments) = flushed_store(dir.path()).await;
    storage.shutdown().await.unwrap();
    drop(storage);
    let before = files_under(dir.path());
    assert_eq!(before.len(), 4, "two segments, two sidecars: {before:?}");

    let part = segments[0].path.parent().unwrap();
    // Leftovers of a flush that crashed before its manifest update, and of an interrupted rewrite.
    std::fs::write(part.join("000000000099.parquet"), b"partial").unwrap();
    std::fs::write(part.join("000000000099.series"), b"partial").unwrap();
    std::fs::write(
        sidecar_path(&segments[0].path).with_extension("series.1-0.tmp"),
        b"partial",
    )
    .unwrap();
    // A corrupt segment: quarantined, and its sidecar must go with it.
    std::fs::write(&segments[1].path, b"garbage, not parquet").unwrap();

    let storage = Storage::open(config(dir.path())).unwrap();
    assert_eq!(storage.recovery().quarantined, 1);
    assert_eq!(storage.recovery().orphans_removed, 3);
    assert_eq!(
        files_under(dir.path()),
        vec![segments[0].path.clone(), sidecar_path(&segments[0].path)]
    );
    assert_eq!(
        storage
            .snapshot(Table::Metrics, TimeRange::default())
            .segments
            .len(),
        1
    );
    storage.shutdown().await.unwrap();
}
