//! `Storage`: the engine that ties WAL, head, segments and manifest together — its public API.
//!
//! Each role has its own file, in the manner of influxdb3's `write_buffer/`:
//!
//! | file | role |
//! |---|---|
//! | `engine.rs` | the public API: open, write, snapshot, flush, compact, shutdown |
//! | `engine/recovery.rs` | opening a directory: lock, manifest, quarantine, orphans, WAL replay |
//! | `engine/wal_thread.rs` | the WAL thread: group commit, then the head, then the acknowledgement |
//! | `engine/flush.rs` | the flusher thread and a flush: frozen head → segments → manifest → WAL trim |
//! | `engine/compactor.rs` | the compactor thread: plans, merges, swaps, deletes after the grace |
//! | `engine/commit.rs` | the one path by which the manifest changes (flushes and compactions) |
//! | `engine/wake.rs` | how background threads are woken and stopped |
//!
//! Flushes and compactions both change the manifest; [`Storage::commit_manifest`] takes their
//! changes one at a time, and segment ids come from one counter.

mod commit;
mod compactor;
mod flush;
mod recovery;
mod wake;
mod wal_thread;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use parking_lot::Mutex;

use crate::compaction::CompactionConfig;
use crate::error::{Result, StorageError};
use crate::manifest::SegmentMeta;
use crate::schema::Table;
use crate::wal;
use commit::State;
pub use compactor::CompactionReport;
use compactor::Compactor;
pub use flush::FlushReport;
use flush::Flusher;
pub use recovery::RecoveryReport;
use wal_thread::WalThread;

/// Storage engine settings.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Root directory for WAL, segments and manifest.
    pub data_dir: PathBuf,
    /// Writes are refused (retryably) while the head holds more than this many bytes.
    pub max_head_bytes: usize,
    /// The head is flushed to segments when it holds more than this many bytes...
    pub flush_bytes: usize,
    /// ...or when its oldest data is older than this.
    pub flush_interval: Duration,
    /// Merging the segments of a partition (see [`crate::compaction`]).
    pub compaction: CompactionConfig,
}

impl StorageConfig {
    /// Defaults for a data directory: 1 GiB head, flush at 256 MiB or 10 minutes.
    pub fn new(data_dir: impl Into<PathBuf>) -> StorageConfig {
        StorageConfig {
            data_dir: data_dir.into(),
            max_head_bytes: 1 << 30,
            flush_bytes: 256 << 20,
            flush_interval: Duration::from_secs(600),
            compaction: CompactionConfig::default(),
        }
    }
}

/// An inclusive time range in nanoseconds since the epoch; `None` means unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest time wanted (inclusive).
    pub start: Option<i64>,
    /// Latest time wanted (inclusive).
    pub end: Option<i64>,
}

impl TimeRange {
    fn bounds(&self) -> (i64, i64) {
        (self.start.unwrap_or(i64::MIN), self.end.unwrap_or(i64::MAX))
    }
}

/// What a query sees of one table at one moment.
#[derive(Debug, Clone, Default)]
pub struct TableSnapshot {
    /// In-memory batches (storage schema), not yet in segments.
    pub head: Vec<RecordBatch>,
    /// Durable segments whose time range overlaps the requested one.
    pub segments: Vec<SegmentMeta>,
}

/// The storage engine. Cheap to share: hold it in an `Arc`.
pub struct Storage {
    config: StorageConfig,
    state: Arc<Mutex<State>>,
    /// The head's bytes, kept current by the WAL thread so writers need not take the state lock.
    head_bytes: Arc<AtomicUsize>,
    wal: WalThread,
    flusher: Flusher,
    /// The next segment id (flushes and compactions both take from it).
    next_segment_id: AtomicU64,
    /// Held while the manifest is read, changed, persisted and installed.
    manifest_lock: Mutex<()>,
    compactor: Compactor,
    shutting_down: AtomicBool,
    recovery: RecoveryReport,
    /// Held (with an OS lock) from open until shutdown so two processes never share a directory.
    lock_file: Mutex<Option<File>>,
}

impl Storage {
    /// Opens the store under `config.data_dir`, recovering it: manifest, segment check, WAL replay.
    /// Blocking; call before serving. Starts the WAL, flusher and compactor threads.
    pub fn open(config: StorageConfig) -> Result<Arc<Storage>> {
        let recovered = recovery::recover(&config.data_dir)?;
        let head_bytes = Arc::new(AtomicUsize::new(recovered.head.bytes()));
        let next_segment_id = AtomicU64::new(recovered.manifest.next_segment_id);
        let state = Arc::new(Mutex::new(State {
            head: recovered.head,
            manifest: recovered.manifest,
        }));
        let wal = WalThread::start(recovered.wal_file, state.clone(), head_bytes.clone())?;
        let storage = Arc::new(Storage {
            config,
            state,
            head_bytes,
            wal,
            flusher: Flusher::default(),
            next_segment_id,
            manifest_lock: Mutex::new(()),
            compactor: Compactor::default(),
            shutting_down: AtomicBool::new(false),
            recovery: recovered.report,
            lock_file: Mutex::new(Some(recovered.lock_file)),
        });
        storage.flusher.start(Arc::downgrade(&storage))?;
        if storage.config.compaction.enabled {
            let tick = storage
                .config
                .compaction
                .settle_after
                .clamp(Duration::from_millis(100), Duration::from_secs(30));
            storage.compactor.start(Arc::downgrade(&storage), tick)?;
        }
        storage.publish_gauges();
        Ok(storage)
    }

    /// What recovery found when this store was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// Appends a batch (in `table`'s storage schema) durably. Returns once it is fsync'd in the WAL
    /// and visible to queries. `StorageError::Overloaded` when the head is full.
    pub async fn write(&self, table: Table, batch: RecordBatch) -> Result<()> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(StorageError::ShuttingDown);
        }
        if batch.schema().fields() != table.schema().fields() {
            return Err(StorageError::SchemaMismatch {
                table: table.name(),
                message: "fields differ".into(),
            });
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let size = batch.get_array_memory_size();
        let held = self.head_bytes.load(Ordering::Acquire);
        if held + size > self.config.max_head_bytes {
            metrics::counter!("lumen_writes_rejected_total", "reason" => "head_full").increment(1);
            self.request_flush();
            return Err(StorageError::Overloaded {
                reason: format!(
                    "the in-memory head is full ({held} of {} bytes) while flushes catch up",
                    self.config.max_head_bytes
                ),
                retry_after: Duration::from_secs(2),
            });
        }
        let ipc = wal::encode_batch(&batch)?;
        let done = self.wal.append(table, batch, ipc)?;
        let result = done.await.map_err(|_| StorageError::ShuttingDown)?;
        // The WAL thread keeps `head_bytes` current; reading it avoids taking the state lock on
        // every write. It counts frozen buffers too, which only makes a pending flush retry sooner.
        if result.is_ok() && self.head_bytes.load(Ordering::Acquire) >= self.config.flush_bytes {
            self.request_flush();
        }
        result
    }

    /// Loads the series indexes of the newest metrics segments into the index cache while they fit
    /// (see [`crate::index::warm_up`]); blocking, meant for a background thread at start-up.
    pub fn warm_series_indexes(&self, keep_going: &dyn Fn() -> bool) -> crate::index::WarmUp {
        let mut segments: Vec<SegmentMeta> = self
            .state
            .lock()
            .manifest
            .table_segments(Table::Metrics)
            .cloned()
            .collect();
        segments.sort_by_key(|s| std::cmp::Reverse((s.max_time, s.id)));
        crate::index::warm_up(&segments, keep_going)
    }

    /// Head batches and segments of `table` that may hold rows in `range`.
    pub fn snapshot(&self, table: Table, range: TimeRange) -> TableSnapshot {
        let (start, end) = range.bounds();
        let state = self.state.lock();
        TableSnapshot {
            head: state.head.batches(table, start, end),
            segments: state
                .manifest
                .table_segments(table)
                .filter(|s| s.min_time <= end && s.max_time >= start)
                .cloned()
                .collect(),
        }
    }

    /// Stops taking writes, flushes the head and stops background threads. Writes still queued are
    /// acknowledged first (they are in the WAL and replay at the next start if the flush missed them).
    pub async fn shutdown(self: &Arc<Self>) -> Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.shutdown_blocking())
            .await
            .map_err(|e| StorageError::io("shutdown task", std::io::Error::other(e.to_string())))?
    }

    /// Blocking form of [`Storage::shutdown`].
    pub fn shutdown_blocking(&self) -> Result<()> {
        if self.shutting_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let flushed = self.flush_blocking();
        self.wal.stop();
        self.flusher.signal.wake(true);
        if let Some(handle) = self.flusher.thread.lock().take()
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
        self.compactor.signal.wake(true);
        if let Some(handle) = self.compactor.thread.lock().take()
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
        // A forced pass (the admin API) stops at its next batch; wait for it before letting go of
        // the directory. Merged-away files whose grace has not ended stay: a query may still read
        // them, and the next start removes them (they are no longer in the manifest).
        let _no_compaction = self.compactor.lock.lock();
        self.delete_retired();
        self.lock_file.lock().take();
        flushed.map(|_| ())
    }

    /// True once shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Bytes and rows currently held in memory.
    pub fn head_usage(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.head.bytes(), state.head.rows())
    }

    pub(crate) fn publish_gauges(&self) {
        let state = self.state.lock();
        metrics::gauge!("lumen_head_bytes").set(state.head.bytes() as f64);
        metrics::gauge!("lumen_head_rows").set(state.head.rows() as f64);
        for table in Table::ALL {
            let (count, bytes) = state
                .manifest
                .table_segments(table)
                .fold((0u64, 0u64), |(c, b), s| (c + 1, b + s.bytes));
            metrics::gauge!("lumen_segments", "table" => table.name()).set(count as f64);
            metrics::gauge!("lumen_segment_bytes", "table" => table.name()).set(bytes as f64);
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.wal.stop();
    }
}
