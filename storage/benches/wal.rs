//! The write path's durability cost: WAL append with group commit. Every figure here includes
//! `fsync` (`sync_data`) on the file system of the temporary directory (`$TMPDIR`, else `/tmp`),
//! so it measures this machine's disk as much as Lumen.
//!
//! - `wal/storage_write/{1,4,16}`: N concurrent writers (Tokio tasks on a 2-thread runtime), each
//!   calling the public `Storage::write` with a ~1000-span batch in a loop; a call returns once its
//!   record is fsync'd and in the head. This is IPC encoding in the caller, the single WAL thread
//!   batching the records of concurrent writers into one fsync (group commit), and the head insert.
//! - `wal/wal_file/{1,16}`: `lumen_storage::wal::WalFile` directly: append that many pre-encoded
//!   records, then one `sync`: the floor under `Storage::write` with that many writers per group.
//!
//! Throughput is in rows (spans) per second; the record size is printed at start, for MB/s.
//! A fresh store (or WAL file) is made per sample so that disk use stays bounded.
//!
//! Run: `cargo bench -p lumen-storage --bench wal`.

#![allow(clippy::expect_used)] // a bench that cannot set up must stop

use lumen_ingest::testing as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use lumen_storage::wal::{self, WalFile};
use lumen_storage::{Storage, StorageConfig, Table};

/// A store that neither flushes nor refuses writes while the bench runs: only the WAL is measured.
fn open_store(dir: &std::path::Path) -> Arc<Storage> {
    let mut config = StorageConfig::new(dir);
    config.max_head_bytes = usize::MAX;
    config.flush_bytes = usize::MAX;
    config.flush_interval = Duration::from_secs(24 * 60 * 60);
    Storage::open(config).expect("opens an empty store")
}

fn storage_write(c: &mut Criterion, batch: &RecordBatch) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows = batch.num_rows() as u64;
    let mut group = c.benchmark_group("wal/storage_write");
    group.sampling_mode(SamplingMode::Flat);
    for writers in [1u64, 4, 16] {
        group.throughput(Throughput::Elements(rows * writers));
        group.bench_function(writers.to_string(), |b| {
            // One iteration: every writer writes one batch; the writers run freely, not in lockstep.
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("temporary directory");
                let storage = open_store(dir.path());
                let elapsed = runtime.block_on(async {
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..writers)
                        .map(|_| {
                            let storage = storage.clone();
                            let batch = batch.clone();
                            tokio::spawn(async move {
                                for _ in 0..iters {
                                    storage
                                        .write(Table::Spans, batch.clone())
                                        .await
                                        .expect("write");
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("writer task");
                    }
                    started.elapsed()
                });
                drop(storage);
                elapsed
            })
        });
    }
    group.finish();
}

fn wal_file(c: &mut Criterion, batch: &RecordBatch) {
    let ipc = wal::encode_batch(batch).expect("IPC encoding");
    let rows = batch.num_rows() as u64;
    let mut group = c.benchmark_group("wal/wal_file");
    for records in [1u64, 16] {
        group.throughput(Throughput::Elements(rows * records));
        group.bench_function(records.to_string(), |b| {
            // One iteration: `records` appends and one fsync.
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("temporary directory");
                let mut file = WalFile::create(dir.path(), 1).expect("WAL file");
                let started = Instant::now();
                for _ in 0..iters {
                    for _ in 0..records {
                        file.append(Table::Spans, &ipc).expect("append");
                    }
                    file.sync().expect("fsync");
                }
                started.elapsed()
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let requests = common::requests(1);
    let batch = common::batches(Table::Spans, &requests).remove(0);
    let ipc_bytes = wal::encode_batch(&batch).expect("IPC encoding").len();
    eprintln!(
        "wal: spans batch of {} rows, {ipc_bytes} bytes as a WAL record ({:.0} B/row)",
        batch.num_rows(),
        ipc_bytes as f64 / batch.num_rows() as f64
    );
    storage_write(c, &batch);
    wal_file(c, &batch);
}

criterion_group! {
    name = wal;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(wal);
