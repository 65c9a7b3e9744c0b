//! Compaction through the engine: merged partitions keep every row, stay sorted and indexed, and
//! survive restarts and crashes without loss or duplicates.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, StringArray, TimestampNanosecondArray};
use arrow::datatypes::UInt64Type;
use lumen_storage::compaction::{self, Plan};
use lumen_storage::index::sidecar_path;
use lumen_storage::{Storage, StorageConfig, Table, TimeRange, load_series_index, segment};

use super::series_index::{files_under, metrics, runs_in_file, runs_in_index};

fn compacting_config(dir: &Path, background: bool) -> StorageConfig {
    let mut config = StorageConfig::new(dir);
    config.flush_interval = Duration::from_secs(3600);
    config.compaction.enabled = background;
    config.compaction.retire_grace = Duration::ZERO;
    config
}

/// Every row of `table` (head and segments) as its debug text, counted: a multiset that says
/// whether rows were lost, duplicated or altered.
fn rows_of(storage: &Storage, table: Table) -> BTreeMap<String, usize> {
    let snap = storage.snapshot(table, TimeRange::default());
    let mut batches = snap.head.clone();
    for seg in &snap.segments {
        batches.extend(segment::read_all(&seg.path).unwrap());
    }
    let mut rows = BTreeMap::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            // (Debug, not Display: displaying a "UTC" timestamp needs chrono-tz.)
            let row: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| format!("{:?}", c.slice(i, 1)))
                .collect();
            *rows.entry(row.join("|")).or_insert(0) += 1;
        }
    }
    rows
}

fn segments_per_partition(storage: &Storage, table: Table) -> BTreeMap<i64, usize> {
    let mut out = BTreeMap::new();
    for s in storage.snapshot(table, TimeRange::default()).segments {
        *out.entry(segment::partition_start(s.min_time)).or_insert(0) += 1;
    }
    out
}

/// Three flushes of metrics (two hours each) and two of spans, into `storage`.
async fn three_flushes(storage: &Storage) {
    for (series, points) in [(50, 6), (40, 4), (20, 3)] {
        storage
            .write(Table::Metrics, metrics(series, points))
            .await
            .unwrap();
        storage
            .write(
                Table::Spans,
                super::batch(Table::Spans, &[series as i64, 3, 1]),
            )
            .await
            .unwrap();
        storage.flush_blocking().unwrap();
    }
}

/// `(metric_name, series_id, time)` of every row of a metrics segment, in file order.
fn sort_keys(path: &Path) -> Vec<(String, u64, i64)> {
    let mut out = Vec::new();
    for batch in segment::read_all(path).unwrap() {
        let names = batch
            .column_by_name("metric_name")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let ids = batch
            .column_by_name("series_id")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let times = batch
            .column_by_name("time")
            .unwrap()
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        for i in 0..batch.num_rows() {
            out.push((names.value(i).to_string(), ids.value(i), times.value(i)));
        }
    }
    out
}

#[tokio::test]
async fn forced_compaction_merges_each_partition_into_one_sorted_indexed_segment_with_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(compacting_config(dir.path(), false)).unwrap();
    three_flushes(&storage).await;
    assert_eq!(
        segments_per_partition(&storage, Table::Metrics)
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![3, 3]
    );
    let metrics_before = rows_of(&storage, Table::Metrics);
    let spans_before = rows_of(&storage, Table::Spans);
    let files_before = files_under(dir.path());

    let report = storage.compact_blocking(true).unwrap();
    assert_eq!(
        (report.merges, report.input_segments, report.failed),
        (3, 9, 0),
        "{report:?}"
    );
    assert_eq!(report.rows, (50 * 6 + 40 * 4 + 20 * 3 + 9) as u64);

    assert_eq!(
        segments_per_partition(&storage, Table::Metrics)
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![1, 1]
    );
    assert_eq!(
        segments_per_partition(&storage, Table::Spans)
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        rows_of(&storage, Table::Metrics),
        metrics_before,
        "rows lost, duplicated or altered"
    );
    assert_eq!(rows_of(&storage, Table::Spans), spans_before);

    for meta in storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments
    {
        let keys = sort_keys(&meta.path);
        assert!(
            keys.is_sorted(),
            "the merged segment is sorted by (metric_name, series_id, time)"
        );
        assert_eq!(keys.len() as u64, meta.rows);
        // Its sidecar was written with it and describes it exactly.
        assert!(sidecar_path(&meta.path).exists());
        lumen_storage::index::forget(&meta.path);
        assert_eq!(runs_in_index(&meta), runs_in_file(&meta.path));
        assert_eq!(load_series_index(&meta).unwrap().len(), 50);
    }
    let spans = storage
        .snapshot(Table::Spans, TimeRange::default())
        .segments;
    let trace_ids: Vec<Vec<u8>> = segment::read_all(&spans[0].path)
        .unwrap()
        .iter()
        .flat_map(|b| {
            let ids = b.column_by_name("trace_id").unwrap().as_fixed_size_binary();
            (0..ids.len())
                .map(|i| ids.value(i).to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(trace_ids.is_sorted() && trace_ids.len() == 9);

    // The merged segments' files are gone (no grace here); nothing else is left behind.
    let mut live: Vec<_> = ["metrics", "spans"]
        .iter()
        .flat_map(|t| {
            storage
                .snapshot(Table::from_name(t).unwrap(), TimeRange::default())
                .segments
        })
        .flat_map(|s| segment::segment_files(&s))
        .collect();
    live.sort();
    assert_eq!(files_under(dir.path()), live);
    assert!(files_before.len() > live.len());

    // Nothing more to do; and after a restart everything is still there, once.
    assert_eq!(storage.compact_blocking(true).unwrap().merges, 0);
    storage.shutdown().await.unwrap();
    drop(storage);
    let storage = Storage::open(compacting_config(dir.path(), false)).unwrap();
    assert_eq!(storage.recovery().orphans_removed, 0);
    assert_eq!(rows_of(&storage, Table::Metrics), metrics_before);
    assert_eq!(rows_of(&storage, Table::Spans), spans_before);
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_background_compactor_merges_an_ended_hour_once_flushes_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compacting_config(dir.path(), true);
    config.compaction.settle_after = Duration::from_millis(300);
    let storage = Storage::open(config).unwrap();
    // The test data is from 2025: its hour has long ended, so once no flush has written into it
    // for `settle_after`, its two segments are merged.
    storage
        .write(Table::Logs, super::batch(Table::Logs, &[1, 2]))
        .await
        .unwrap();
    storage.flush_blocking().unwrap();
    storage
        .write(Table::Logs, super::batch(Table::Logs, &[3]))
        .await
        .unwrap();
    let before = rows_of(&storage, Table::Logs);
    storage.flush_blocking().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while segments_per_partition(&storage, Table::Logs)
        .values()
        .any(|n| *n > 1)
    {
        assert!(
            Instant::now() < deadline,
            "the compactor did not merge the two segments within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows_of(&storage, Table::Logs), before);
    assert_eq!(super::visible_ids(&storage, Table::Logs), vec![1, 2, 3]);
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_query_that_listed_the_merged_segments_can_still_read_them_until_the_grace_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compacting_config(dir.path(), false);
    config.compaction.retire_grace = Duration::from_secs(3600);
    let storage = Storage::open(config).unwrap();
    three_flushes(&storage).await;
    let listed = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments;
    let spans_listed = storage
        .snapshot(Table::Spans, TimeRange::default())
        .segments
        .len();
    assert_eq!(storage.compact_blocking(true).unwrap().merges, 3);
    for meta in &listed {
        assert!(
            !segment::read_all(&meta.path).unwrap().is_empty(),
            "{} is still readable",
            meta.path.display()
        );
    }
    let now = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments;
    assert!(
        now.iter().all(|m| !listed.contains(m)),
        "new queries see only the merged segments"
    );
    // A shutdown within the grace keeps them (a query may still read them); the next start
    // removes them, as files no longer in the manifest.
    storage.shutdown().await.unwrap();
    drop(storage);
    assert!(listed.iter().all(|m| m.path.exists()));
    let storage = Storage::open(compacting_config(dir.path(), false)).unwrap();
    assert_eq!(
        storage.recovery().orphans_removed,
        2 * listed.len() + spans_listed,
        "the merged-away metrics segments and their sidecars, and span segments"
    );
    for meta in &listed {
        assert!(!meta.path.exists() && !sidecar_path(&meta.path).exists());
    }
    assert_eq!(
        storage
            .snapshot(Table::Metrics, TimeRange::default())
            .segments,
        now
    );
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_merge_that_never_reached_the_manifest_leaves_no_duplicates_and_a_cancelled_one_no_files()
{
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(compacting_config(dir.path(), false)).unwrap();
    three_flushes(&storage).await;
    let before = rows_of(&storage, Table::Metrics);
    let files_before = files_under(dir.path());
    let inputs: Vec<_> = storage
        .snapshot(Table::Metrics, TimeRange::default())
        .segments
        .into_iter()
        .filter(|s| segment::partition_start(s.min_time) == segment::partition_start(super::T0))
        .collect();
    assert_eq!(inputs.len(), 3);
    let plan = Plan {
        table: Table::Metrics,
        partition: segment::partition_start(super::T0),
        inputs,
    };

    // Cancelled (shutdown began): an error, and no file left behind.
    assert!(matches!(
        compaction::merge(&plan, 900, &|| false),
        Err(lumen_storage::StorageError::ShuttingDown)
    ));
    assert_eq!(files_under(dir.path()), files_before);

    // Written, then a crash before the manifest named it: the next start removes it.
    let merged = compaction::merge(&plan, 901, &|| true).unwrap();
    assert_eq!(merged.rows, plan.rows());
    assert!(merged.path.exists());
    storage.shutdown().await.unwrap();
    drop(storage);
    let storage = Storage::open(compacting_config(dir.path(), false)).unwrap();
    assert_eq!(
        storage.recovery().orphans_removed,
        2,
        "the merged file and its sidecar"
    );
    assert_eq!(rows_of(&storage, Table::Metrics), before);
    assert_eq!(files_under(dir.path()), files_before);
    storage.shutdown().await.unwrap();
}
