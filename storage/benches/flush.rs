//! Head flush to Parquet segments, in rows per second.
//!
//! - `flush/write_segments/{spans,logs,metrics}`: `lumen_storage::segment::write_segments` on the
//!   batches the head holds after ~100 fleet export requests of ~1000 items (one batch per request):
//!   concatenation, split by hour partition, sort by the table's sort key, zstd Parquet with page
//!   statistics, fsync of file and directory.
//! - `flush/storage_flush/all`: `Storage::flush` (blocking form) of a store whose head holds all
//!   three tables' batches: the above plus freezing the head, rotating the WAL, persisting the
//!   manifest and trimming the WAL. The writes that fill the head are not timed.
//!
//! Run: `cargo bench -p lumen-storage --bench flush`.

#![allow(clippy::expect_used)] // a bench that cannot set up must stop

use lumen_ingest::testing as common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use lumen_storage::segment;
use lumen_storage::{Storage, StorageConfig, Table};

/// Export requests (of ~1000 items) per table in the head being flushed.
const REQUESTS: usize = 100;

fn write_segments(c: &mut Criterion, tables: &[(Table, Vec<RecordBatch>)]) {
    let mut group = c.benchmark_group("flush/write_segments");
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(8));
    for (table, batches) in tables {
        group.throughput(Throughput::Elements(common::rows(batches) as u64));
        group.bench_function(table.name(), |b| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let next_id = std::sync::atomic::AtomicU64::new(1);
            b.iter(|| {
                let segments = segment::write_segments(dir.path(), *table, batches, &next_id, 1)
                    .expect("writes segments");
                for s in &segments {
                    std::fs::remove_file(&s.path).expect("removes the segment");
                }
                black_box(segments)
            })
        });
    }
    group.finish();
}

fn storage_flush(c: &mut Criterion, tables: &[(Table, Vec<RecordBatch>)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows: usize = tables
        .iter()
        .map(|(_, batches)| common::rows(batches))
        .sum();
    let mut group = c.benchmark_group("flush/storage_flush");
    group.sampling_mode(SamplingMode::Flat);
    // Ten samples of one flush each; the untimed writes that fill the head come on top.
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("all", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temporary directory");
                let mut config = StorageConfig::new(dir.path());
                config.max_head_bytes = usize::MAX;
                config.flush_bytes = usize::MAX;
                config.flush_interval = Duration::from_secs(24 * 60 * 60);
                let storage = Storage::open(config).expect("opens an empty store");
                fill(&runtime, &storage, tables);
                let started = Instant::now();
                let report = storage.flush_blocking().expect("flush");
                elapsed += started.elapsed();
                assert_eq!(report.rows as usize, rows);
                drop(storage);
            }
            elapsed
        })
    });
    group.finish();
}

/// Writes every batch through `Storage::write`, all at once (group commit keeps this quick).
fn fill(
    runtime: &tokio::runtime::Runtime,
    storage: &Arc<Storage>,
    tables: &[(Table, Vec<RecordBatch>)],
) {
    runtime.block_on(async {
        let tasks: Vec<_> = tables
            .iter()
            .flat_map(|(table, batches)| batches.iter().map(|batch| (*table, batch.clone())))
            .map(|(table, batch)| {
                let storage = storage.clone();
                tokio::spawn(async move { storage.write(table, batch).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer task").expect("write");
        }
    });
}

fn benches(c: &mut Criterion) {
    let requests = common::requests(REQUESTS);
    let tables: Vec<(Table, Vec<RecordBatch>)> = Table::ALL
        .into_iter()
        .map(|t| (t, common::batches(t, &requests)))
        .collect();
    let dir = tempfile::tempdir().expect("temporary directory");
    let next_id = std::sync::atomic::AtomicU64::new(1);
    for (table, batches) in &tables {
        let rows = common::rows(batches);
        let memory: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let segments = segment::write_segments(dir.path(), *table, batches, &next_id, 1)
            .expect("writes segments");
        let on_disk: u64 = segments.iter().map(|s| s.bytes).sum();
        eprintln!(
            "flush: {}: {} batches, {rows} rows, {:.0} MB in Arrow, {} segment(s), {:.1} B/row on disk",
            table.name(),
            batches.len(),
            memory as f64 / 1e6,
            segments.len(),
            on_disk as f64 / rows as f64,
        );
    }
    drop(dir);
    write_segments(c, &tables);
    storage_flush(c, &tables);
}

criterion_group! {
    name = flush;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(flush);
