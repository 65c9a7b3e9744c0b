//! `Storage`: the engine that ties WAL, head, segments and manifest together.
//!
//! Threads:
//! - the WAL thread owns the open WAL file. It takes every append queued since its last fsync, writes
//!   them, fsyncs once (group commit), inserts the batches into the head and only then acknowledges the
//!   writers. Freezing the head happens on this thread too, between two groups, so a frozen buffer
//!   holds exactly the WAL records up to its `max_seq`;
//! - the flusher thread wakes every second (or when a writer finds the head over `flush_bytes`) and
//!   flushes when the head is big or old enough, retrying failed flushes;
//! - the compactor thread wakes after each flush (and every 30 s at most) and merges segments of one
//!   partition as [`crate::compaction`] plans, then deletes merged segments' files once no query
//!   can still be reading them.
//!
//! Flushes and compactions both change the manifest; [`Storage::commit_manifest`] takes their
//! changes one at a time, and segment ids come from one counter.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use parking_lot::Mutex;

use crate::compaction::{self, CompactionConfig};
use crate::error::{Result, StorageError};
use crate::head::{FrozenBuffer, Head};
use crate::manifest::{Manifest, SegmentMeta};
use crate::schema::Table;
use crate::segment;
use crate::wal::{self, WalFile};

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

/// What one flush did.
#[derive(Debug, Clone, Default)]
pub struct FlushReport {
    /// Segments written.
    pub segments: Vec<SegmentMeta>,
    /// Rows written across all segments.
    pub rows: u64,
}

/// What a compaction pass did.
#[derive(Debug, Clone, Default)]
pub struct CompactionReport {
    /// Merges done (each wrote one segment).
    pub merges: usize,
    /// Segments merged away.
    pub input_segments: usize,
    /// Rows rewritten.
    pub rows: u64,
    /// Bytes of the merged segments.
    pub bytes_before: u64,
    /// Bytes of the segments they became.
    pub bytes_after: u64,
    /// Merges that failed (their segments are not tried again until a restart).
    pub failed: usize,
}

/// What recovery found when the store was opened.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Segments listed in the manifest and readable.
    pub segments: usize,
    /// Segments moved to `quarantine/` because they were missing or unreadable.
    pub quarantined: usize,
    /// Files under `segments/` not in the manifest (interrupted flushes), removed.
    pub orphans_removed: usize,
    /// WAL records replayed into the head.
    pub replayed_records: u64,
    /// WAL files whose torn or corrupt tail was cut off.
    pub truncated_wal_files: u64,
}

struct State {
    head: Head,
    manifest: Manifest,
}

/// Why a manifest change did not take effect.
struct CommitFailed {
    error: StorageError,
    /// The new manifest may have reached the disk: files it names must not be deleted.
    may_be_on_disk: bool,
}

enum WalCommand {
    Append {
        table: Table,
        batch: RecordBatch,
        ipc: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
    },
    Freeze {
        reply: Sender<Result<Option<Arc<FrozenBuffer>>>>,
    },
    Stop,
}

/// The storage engine. Cheap to share: hold it in an `Arc`.
pub struct Storage {
    config: StorageConfig,
    state: Arc<Mutex<State>>,
    head_bytes: Arc<AtomicUsize>,
    wal_tx: Mutex<Option<Sender<WalCommand>>>,
    wal_thread: Mutex<Option<JoinHandle<()>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    flush_signal: Arc<Signal>,
    flush_lock: Mutex<()>,
    /// The next segment id (flushes and compactions both take from it).
    next_segment_id: AtomicU64,
    /// Held while the manifest is read, changed, persisted and installed.
    manifest_lock: Mutex<()>,
    compactor: Mutex<Option<JoinHandle<()>>>,
    compact_signal: Arc<Signal>,
    /// One compaction pass at a time (background or forced).
    compact_lock: Mutex<()>,
    /// Segments whose merge failed, with when: not tried again for [`RETRY_FAILED_MERGE_AFTER`].
    compaction_failed: Mutex<std::collections::HashMap<u64, Instant>>,
    /// Merged segments out of the manifest, with when they left it; their files go after the grace.
    retired: Mutex<Vec<(Instant, SegmentMeta)>>,
    /// When a flush last wrote into each `(table, partition)` (since start).
    flushed_into: Mutex<std::collections::HashMap<(Table, i64), Instant>>,
    shutting_down: AtomicBool,
    recovery: RecoveryReport,
    /// Held (with an OS lock) from open until shutdown so two processes never share a directory.
    lock_file: Mutex<Option<File>>,
}

#[derive(Default)]
struct Wake {
    requested: bool,
    stop: bool,
}

/// A background thread's wake-up flags and the condition variable it waits on.
type Signal = (std::sync::Mutex<Wake>, Condvar);

/// How long the segments of a failed merge are left alone before they are tried again.
const RETRY_FAILED_MERGE_AFTER: Duration = Duration::from_secs(600);

/// Largest amount of WAL payload one group commit takes before it fsyncs.
const GROUP_COMMIT_BYTES: usize = 8 << 20;

impl Storage {
    /// Opens the store under `config.data_dir`, recovering it: manifest, segment check, WAL replay.
    /// Blocking; call before serving. Starts the WAL and flusher threads.
    pub fn open(config: StorageConfig) -> Result<Arc<Storage>> {
        let dir = config.data_dir.clone();
        fs::create_dir_all(&dir).map_err(|e| {
            StorageError::io(format!("creating data directory {}", dir.display()), e)
        })?;
        let lock_path = dir.join("LOCK");
        let lock_file = File::create(&lock_path)
            .map_err(|e| StorageError::io(format!("creating {}", lock_path.display()), e))?;
        if lock_file.try_lock().is_err() {
            return Err(StorageError::io(
                format!("locking {}", dir.display()),
                std::io::Error::other(
                    "another Lumen process is using this data directory; stop it or pass a different --data-dir",
                ),
            ));
        }

        let mut recovery = RecoveryReport::default();
        let mut manifest = Manifest::load(&dir)?;
        recovery.quarantined = quarantine_bad_segments(&dir, &mut manifest)?;
        recovery.segments = manifest.segments.len();
        recovery.orphans_removed = remove_orphans(&manifest, &dir)?;

        let mut head = Head::default();
        let wal_dir = dir.join("wal");
        let replay = wal::replay(&wal_dir, manifest.flushed_wal_seq, |record| {
            head.active.insert(record.seq, record.table, record.batch);
            Ok(())
        })?;
        recovery.replayed_records = replay.records - replay.skipped;
        recovery.truncated_wal_files = replay.truncated_files;
        let wal_file = WalFile::create(&wal_dir, replay.next_seq)?;
        tracing::info!(
            data_dir = %dir.display(),
            segments = recovery.segments,
            quarantined = recovery.quarantined,
            orphans_removed = recovery.orphans_removed,
            replayed_records = recovery.replayed_records,
            truncated_wal_files = recovery.truncated_wal_files,
            head_rows = head.rows(),
            "storage recovered"
        );

        let head_bytes = Arc::new(AtomicUsize::new(head.bytes()));
        let next_segment_id = AtomicU64::new(manifest.next_segment_id);
        let state = Arc::new(Mutex::new(State { head, manifest }));
        let (wal_tx, wal_rx) = mpsc::channel();
        let wal_thread = {
            let state = state.clone();
            let head_bytes = head_bytes.clone();
            std::thread::Builder::new()
                .name("lumen-wal".into())
                .spawn(move || wal_loop(wal_file, wal_rx, state, head_bytes))
                .map_err(|e| StorageError::io("starting the WAL thread", e))?
        };
        let storage = Arc::new(Storage {
            config,
            state,
            head_bytes,
            wal_tx: Mutex::new(Some(wal_tx)),
            wal_thread: Mutex::new(Some(wal_thread)),
            flusher: Mutex::new(None),
            flush_signal: Arc::new((std::sync::Mutex::new(Wake::default()), Condvar::new())),
            flush_lock: Mutex::new(()),
            next_segment_id,
            manifest_lock: Mutex::new(()),
            compactor: Mutex::new(None),
            compact_signal: Arc::new((std::sync::Mutex::new(Wake::default()), Condvar::new())),
            compact_lock: Mutex::new(()),
            compaction_failed: Mutex::new(std::collections::HashMap::new()),
            retired: Mutex::new(Vec::new()),
            flushed_into: Mutex::new(std::collections::HashMap::new()),
            shutting_down: AtomicBool::new(false),
            recovery,
            lock_file: Mutex::new(Some(lock_file)),
        });
        let weak = Arc::downgrade(&storage);
        let signal = storage.flush_signal.clone();
        let flusher = std::thread::Builder::new()
            .name("lumen-flusher".into())
            .spawn(move || flusher_loop(weak, signal))
            .map_err(|e| StorageError::io("starting the flusher thread", e))?;
        *storage.flusher.lock() = Some(flusher);
        if storage.config.compaction.enabled {
            let weak = Arc::downgrade(&storage);
            let signal = storage.compact_signal.clone();
            let tick = storage
                .config
                .compaction
                .settle_after
                .clamp(Duration::from_millis(100), Duration::from_secs(30));
            let compactor = std::thread::Builder::new()
                .name("lumen-compactor".into())
                .spawn(move || compactor_loop(weak, signal, tick))
                .map_err(|e| StorageError::io("starting the compaction thread", e))?;
            *storage.compactor.lock() = Some(compactor);
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
        let (reply, done) = tokio::sync::oneshot::channel();
        {
            let tx = self.wal_tx.lock();
            let tx = tx.as_ref().ok_or(StorageError::ShuttingDown)?;
            tx.send(WalCommand::Append {
                table,
                batch,
                ipc,
                reply,
            })
            .map_err(|_| StorageError::ShuttingDown)?;
        }
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

    /// Flushes everything in the head to segments now.
    pub async fn flush(self: &Arc<Self>) -> Result<FlushReport> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.flush_blocking())
            .await
            .map_err(|e| StorageError::io("flush task", std::io::Error::other(e.to_string())))?
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
        if let Some(tx) = self.wal_tx.lock().take() {
            let _ = tx.send(WalCommand::Stop);
        }
        if let Some(handle) = self.wal_thread.lock().take() {
            let _ = handle.join();
        }
        wake(&self.flush_signal, true);
        if let Some(handle) = self.flusher.lock().take()
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
        wake(&self.compact_signal, true);
        if let Some(handle) = self.compactor.lock().take()
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
        // A forced pass (the admin API) stops at its next batch; wait for it before letting go of
        // the directory. Merged-away files whose grace has not ended stay: a query may still read
        // them, and the next start removes them (they are no longer in the manifest).
        let _no_compaction = self.compact_lock.lock();
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

    fn request_flush(&self) {
        wake(&self.flush_signal, false);
    }

    fn freeze_active(&self) -> Result<()> {
        let (reply, done) = mpsc::channel();
        let sent = match self.wal_tx.lock().as_ref() {
            Some(tx) => tx.send(WalCommand::Freeze { reply }).is_ok(),
            None => false,
        };
        if sent && let Ok(result) = done.recv() {
            result?;
        }
        Ok(())
    }

    /// Blocking form of [`Storage::flush`]: freezes the active buffer and writes every frozen buffer.
    pub fn flush_blocking(&self) -> Result<FlushReport> {
        let _one_at_a_time = self.flush_lock.lock();
        self.freeze_active()?;
        let frozen: Vec<Arc<FrozenBuffer>> = self.state.lock().head.frozen.clone();
        let mut report = FlushReport::default();
        for buffer in frozen {
            let started = Instant::now();
            match self.flush_buffer(&buffer) {
                Ok(segments) => {
                    metrics::counter!("lumen_flushes_total", "outcome" => "ok").increment(1);
                    metrics::histogram!("lumen_flush_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                    let rows: u64 = segments.iter().map(|s| s.rows).sum();
                    metrics::counter!("lumen_flushed_rows_total").increment(rows);
                    tracing::info!(
                        segments = segments.len(),
                        rows,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "flushed head to segments"
                    );
                    report.rows += rows;
                    report.segments.extend(segments);
                }
                Err(e) => {
                    metrics::counter!("lumen_flushes_total", "outcome" => "error").increment(1);
                    tracing::error!(error = %e, "flush failed; the data stays in memory and in the WAL, retrying");
                    self.publish_gauges();
                    return Err(e);
                }
            }
        }
        self.publish_gauges();
        if !report.segments.is_empty() {
            wake(&self.compact_signal, false);
        }
        Ok(report)
    }

    /// Merges segments now: every partition with two or more segments under the size cap when
    /// `force`, else what the background policy calls for (see [`crate::compaction`]). Blocking;
    /// returns early (with what it did) when shutdown begins.
    pub fn compact_blocking(&self, force: bool) -> Result<CompactionReport> {
        let _one_at_a_time = self.compact_lock.lock();
        let mut report = CompactionReport::default();
        loop {
            let segments = self.state.lock().manifest.segments.clone();
            let settle = self.config.compaction.settle_after;
            let when = compaction::Conditions {
                now_ns: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
                force,
                busy: self
                    .flushed_into
                    .lock()
                    .iter()
                    .filter(|(_, at)| at.elapsed() < settle)
                    .map(|(p, _)| *p)
                    .collect(),
                skip: {
                    let mut failed = self.compaction_failed.lock();
                    failed.retain(|_, at| at.elapsed() < RETRY_FAILED_MERGE_AFTER);
                    failed.keys().copied().collect()
                },
            };
            let plans = compaction::plan(&segments, &self.config.compaction, &when);
            if plans.is_empty() {
                break;
            }
            let mut merged_any = false;
            for plan in plans {
                if self.is_shutting_down() {
                    return Ok(report);
                }
                match self.merge_and_commit(&plan) {
                    Ok(output) => {
                        merged_any = true;
                        report.merges += 1;
                        report.input_segments += plan.inputs.len();
                        report.rows += output.rows;
                        report.bytes_before += plan.inputs.iter().map(|s| s.bytes).sum::<u64>();
                        report.bytes_after += output.bytes;
                    }
                    Err(StorageError::ShuttingDown) => return Ok(report),
                    Err(e) => {
                        metrics::counter!("lumen_compactions_total", "table" => plan.table.name(), "outcome" => "error").increment(1);
                        tracing::error!(
                            table = plan.table.name(),
                            segments = plan.inputs.len(),
                            error = %e,
                            "compaction failed; the segments stay as they are (and queryable) and are tried again in 10 minutes"
                        );
                        report.failed += 1;
                        let now = Instant::now();
                        self.compaction_failed
                            .lock()
                            .extend(plan.inputs.iter().map(|s| (s.id, now)));
                    }
                }
            }
            if !merged_any {
                break;
            }
        }
        self.delete_retired();
        Ok(report)
    }

    /// Forced compaction ([`Storage::compact_blocking`] with `force`) on a blocking thread.
    pub async fn compact(self: &Arc<Self>) -> Result<CompactionReport> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.compact_blocking(true))
            .await
            .map_err(|e| {
                StorageError::io("compaction task", std::io::Error::other(e.to_string()))
            })?
    }

    fn merge_and_commit(&self, plan: &compaction::Plan) -> Result<SegmentMeta> {
        let started = Instant::now();
        let id = self.next_segment_id.fetch_add(1, Ordering::AcqRel);
        let output = compaction::merge(plan, id, &|| !self.is_shutting_down())?;
        let inputs: HashSet<u64> = plan.inputs.iter().map(|s| s.id).collect();
        let committed = self.commit_manifest(
            |manifest| {
                if self.is_shutting_down() {
                    return Err(StorageError::ShuttingDown);
                }
                if manifest
                    .segments
                    .iter()
                    .filter(|s| inputs.contains(&s.id))
                    .count()
                    != inputs.len()
                {
                    return Err(StorageError::io(
                        "compacting",
                        std::io::Error::other("a segment to merge left the manifest meanwhile"),
                    ));
                }
                let at = manifest
                    .segments
                    .iter()
                    .position(|s| inputs.contains(&s.id))
                    .unwrap_or(manifest.segments.len());
                manifest.segments.retain(|s| !inputs.contains(&s.id));
                manifest
                    .segments
                    .insert(at.min(manifest.segments.len()), output.clone());
                Ok(())
            },
            |_| {},
        );
        if let Err(failed) = committed {
            if !failed.may_be_on_disk {
                let _ = crate::segment::remove_segment_files(&output);
            }
            return Err(failed.error);
        }
        let now = Instant::now();
        {
            let mut retired = self.retired.lock();
            for input in &plan.inputs {
                // Queries from now on use the merged segment's index.
                crate::index::forget(&input.path);
                retired.push((now, input.clone()));
            }
        }
        let bytes_before: u64 = plan.inputs.iter().map(|s| s.bytes).sum();
        metrics::counter!("lumen_compactions_total", "table" => plan.table.name(), "outcome" => "ok").increment(1);
        metrics::counter!("lumen_compacted_rows_total", "table" => plan.table.name())
            .increment(output.rows);
        metrics::histogram!("lumen_compaction_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::info!(
            table = plan.table.name(),
            partition = %chrono::DateTime::from_timestamp_nanos(plan.partition).format("%Y-%m-%dT%H"),
            segments = plan.inputs.len(),
            rows = output.rows,
            bytes_before,
            bytes_after = output.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "merged segments"
        );
        self.publish_gauges();
        Ok(output)
    }

    /// Deletes the files of merged segments that left the manifest more than the grace period ago.
    /// A failure only leaves files that the next start removes.
    fn delete_retired(&self) {
        let grace = self.config.compaction.retire_grace;
        let due: Vec<SegmentMeta> = {
            let mut retired = self.retired.lock();
            if retired.is_empty() {
                return;
            }
            let (due, keep): (Vec<_>, Vec<_>) =
                retired.drain(..).partition(|(at, _)| at.elapsed() >= grace);
            *retired = keep;
            due.into_iter().map(|(_, s)| s).collect()
        };
        for segment in due {
            if let Err(e) = crate::segment::remove_segment_files(&segment) {
                tracing::warn!(segment = %segment.path.display(), error = %e, "could not delete a merged segment; the next start removes it");
            }
        }
    }

    /// Applies `change` to the manifest, persists it and installs it (with `installed`, under the
    /// state lock, so queries see both at once). Changes are applied one at a time.
    fn commit_manifest(
        &self,
        change: impl FnOnce(&mut Manifest) -> Result<()>,
        installed: impl FnOnce(&mut State),
    ) -> std::result::Result<Manifest, CommitFailed> {
        let _one_at_a_time = self.manifest_lock.lock();
        let mut manifest = self.state.lock().manifest.clone();
        change(&mut manifest).map_err(|error| CommitFailed {
            error,
            may_be_on_disk: false,
        })?;
        manifest.next_segment_id = manifest
            .next_segment_id
            .max(self.next_segment_id.load(Ordering::Acquire));
        // A failure may come after the rename (the directory fsync): the manifest on disk may then
        // name the new files, so the caller must keep them; the next start removes them if not.
        manifest.persist().map_err(|error| CommitFailed {
            error,
            may_be_on_disk: true,
        })?;
        let mut state = self.state.lock();
        state.manifest = manifest.clone();
        installed(&mut state);
        Ok(manifest)
    }

    fn flush_buffer(&self, buffer: &FrozenBuffer) -> Result<Vec<SegmentMeta>> {
        let dir = &self.config.data_dir;
        let mut written = Vec::new();
        for table in Table::ALL {
            let batches: Vec<RecordBatch> = buffer
                .buffer
                .batches(table)
                .iter()
                .map(|b| b.batch.clone())
                .collect();
            match segment::write_segments(
                dir,
                table,
                &batches,
                &self.next_segment_id,
                buffer.buffer.max_seq,
            ) {
                Ok(segments) => written.extend(segments),
                Err(e) => {
                    for s in &written {
                        let _ = segment::remove_segment_files(s);
                    }
                    return Err(e);
                }
            }
        }
        let committed = self.commit_manifest(
            |manifest| {
                manifest.segments.extend(written.iter().cloned());
                manifest.flushed_wal_seq = manifest.flushed_wal_seq.max(buffer.buffer.max_seq);
                Ok(())
            },
            |state| {
                state.head.release(buffer.id);
                self.head_bytes.store(state.head.bytes(), Ordering::Release);
            },
        );
        let flushed_seq = match committed {
            Ok(manifest) => manifest.flushed_wal_seq,
            Err(failed) => {
                if !failed.may_be_on_disk {
                    for s in &written {
                        let _ = segment::remove_segment_files(s);
                    }
                }
                return Err(failed.error);
            }
        };
        {
            // Compaction leaves the hours flushes are writing into to its size tiers for a while.
            let now = Instant::now();
            let mut flushed_into = self.flushed_into.lock();
            flushed_into.retain(|_, at| at.elapsed() < self.config.compaction.settle_after);
            for s in &written {
                flushed_into.insert((s.table, segment::partition_start(s.min_time)), now);
            }
        }
        // The manifest now covers these records: their WAL files may go. A failure here only leaves
        // files that the next flush or start removes.
        if let Err(e) = wal::trim(&dir.join("wal"), flushed_seq) {
            tracing::warn!(error = %e, "could not trim the WAL; will retry at the next flush");
        }
        Ok(written)
    }

    fn publish_gauges(&self) {
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

    fn flush_due(&self) -> bool {
        let state = self.state.lock();
        let active = &state.head.active;
        !state.head.frozen.is_empty()
            || active.bytes >= self.config.flush_bytes
            || active
                .first_write
                .is_some_and(|t| t.elapsed() >= self.config.flush_interval)
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(tx) = self.wal_tx.lock().take() {
            let _ = tx.send(WalCommand::Stop);
        }
        if let Some(handle) = self.wal_thread.lock().take() {
            let _ = handle.join();
        }
    }
}

fn flusher_loop(storage: Weak<Storage>, signal: Arc<Signal>) {
    let mut backoff = Duration::from_secs(1);
    while let Some(requested) = wait_for_wake(&signal, Duration::from_secs(1)) {
        let Some(storage) = storage.upgrade() else {
            return;
        };
        if storage.is_shutting_down() {
            return;
        }
        storage.delete_retired();
        if requested || storage.flush_due() {
            match storage.flush_blocking() {
                Ok(_) => backoff = Duration::from_secs(1),
                Err(_) => {
                    drop(storage);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Sets a background thread's wake-up flag (`stop` for good) and wakes it.
fn wake(signal: &Signal, stop: bool) {
    let (lock, cvar) = signal;
    if let Ok(mut wake) = lock.lock() {
        wake.requested = true;
        wake.stop |= stop;
    }
    cvar.notify_all();
}

/// Waits up to `timeout` for a wake-up; `None` when told to stop.
fn wait_for_wake(signal: &Signal, timeout: Duration) -> Option<bool> {
    let (lock, cvar) = signal;
    let guard = lock.lock().ok()?;
    let (mut guard, _) = cvar
        .wait_timeout_while(guard, timeout, |w| !w.requested && !w.stop)
        .ok()?;
    if guard.stop {
        return None;
    }
    Some(std::mem::take(&mut guard.requested))
}

fn compactor_loop(storage: Weak<Storage>, signal: Arc<Signal>, tick: Duration) {
    // Woken after each flush, and every `tick` to notice partitions that have settled.
    while wait_for_wake(&signal, tick).is_some() {
        let Some(storage) = storage.upgrade() else {
            return;
        };
        if storage.is_shutting_down() {
            return;
        }
        // Failures are logged and counted per merge inside.
        let _ = storage.compact_blocking(false);
    }
}

type Pending = Vec<(
    u64,
    Table,
    RecordBatch,
    tokio::sync::oneshot::Sender<Result<()>>,
)>;

fn wal_loop(
    mut wal: WalFile,
    rx: Receiver<WalCommand>,
    state: Arc<Mutex<State>>,
    head_bytes: Arc<AtomicUsize>,
) {
    let mut pending: Pending = Vec::new();
    // After a failed write or fsync the file's contents are unknown; refuse further appends rather
    // than acknowledge data that may not be durable.
    let mut poisoned: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut group_bytes = 0usize;
        while let Some(command) = next.take() {
            match command {
                WalCommand::Append {
                    table,
                    batch,
                    ipc,
                    reply,
                } => {
                    if let Some(why) = &poisoned {
                        let _ = reply.send(Err(StorageError::io(
                            "WAL",
                            std::io::Error::other(why.clone()),
                        )));
                    } else {
                        match wal.append(table, &ipc) {
                            Ok(seq) => pending.push((seq, table, batch, reply)),
                            Err(e) => {
                                poisoned = Some(format!("an earlier WAL write failed: {e}"));
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    group_bytes += ipc.len();
                    if group_bytes < GROUP_COMMIT_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                WalCommand::Freeze { reply } => {
                    commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
                    let frozen = state.lock().head.freeze();
                    let result = match frozen {
                        Some(f) => wal.rotate().map(|()| Some(f)),
                        None => Ok(None),
                    };
                    let _ = reply.send(result);
                }
                WalCommand::Stop => {
                    commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
                    return;
                }
            }
        }
        commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
    }
    commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
}

fn commit(
    wal: &mut WalFile,
    pending: &mut Pending,
    state: &Mutex<State>,
    head_bytes: &AtomicUsize,
    poisoned: &mut Option<String>,
) {
    if pending.is_empty() {
        return;
    }
    let started = Instant::now();
    match wal.sync() {
        Ok(bytes) => {
            metrics::histogram!("lumen_wal_fsync_seconds").record(started.elapsed().as_secs_f64());
            metrics::counter!("lumen_wal_bytes_total").increment(bytes);
            metrics::counter!("lumen_wal_records_total").increment(pending.len() as u64);
            let mut replies = Vec::with_capacity(pending.len());
            {
                let mut state = state.lock();
                for (seq, table, batch, reply) in pending.drain(..) {
                    state.head.active.insert(seq, table, batch);
                    replies.push(reply);
                }
                head_bytes.store(state.head.bytes(), Ordering::Release);
                metrics::gauge!("lumen_head_bytes").set(state.head.bytes() as f64);
                metrics::gauge!("lumen_head_rows").set(state.head.rows() as f64);
            }
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "WAL fsync failed; refusing further writes until restart");
            *poisoned = Some(format!("WAL fsync failed: {e}"));
            for (_, _, _, reply) in pending.drain(..) {
                let _ = reply.send(Err(StorageError::io(
                    "WAL fsync",
                    std::io::Error::other(e.to_string()),
                )));
            }
        }
    }
}

fn quarantine_bad_segments(dir: &Path, manifest: &mut Manifest) -> Result<usize> {
    let mut bad = Vec::new();
    for meta in &manifest.segments {
        if let Err(why) = segment::verify(meta) {
            tracing::error!(segment = %meta.path.display(), "segment is unusable ({why}); moving it to quarantine/ and serving without it");
            bad.push(meta.id);
        }
    }
    if bad.is_empty() {
        return Ok(0);
    }
    let quarantine = dir.join("quarantine");
    fs::create_dir_all(&quarantine)
        .map_err(|e| StorageError::io(format!("creating {}", quarantine.display()), e))?;
    for meta in manifest.segments.iter().filter(|m| bad.contains(&m.id)) {
        if meta.path.exists() {
            let name = format!(
                "{}-{}",
                meta.table.name(),
                meta.path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("segment")
            );
            fs::rename(&meta.path, quarantine.join(name)).map_err(|e| {
                StorageError::io(format!("quarantining {}", meta.path.display()), e)
            })?;
        }
        // Its series index sidecar describes a file that is gone from the store. Best effort: a
        // sidecar must never stop start-up (the orphan pass below tries again).
        if let Err(e) = segment::remove_segment_files(meta) {
            tracing::warn!(segment = %meta.path.display(), error = %e, "could not remove the quarantined segment's series index");
        }
    }
    manifest.segments.retain(|m| !bad.contains(&m.id));
    manifest.persist()?;
    metrics::counter!("lumen_segments_quarantined_total").increment(bad.len() as u64);
    Ok(bad.len())
}

fn remove_orphans(manifest: &Manifest, dir: &Path) -> Result<usize> {
    // Live: every listed segment and its series index sidecar. Everything else under segments/ —
    // files of a flush that crashed before its manifest update, temporary files, sidecars of
    // segments no longer listed — goes.
    let live: std::collections::HashSet<PathBuf> = manifest
        .segments
        .iter()
        .flat_map(segment::segment_files)
        .collect();
    let mut removed = 0;
    for path in segment::list_files(dir)? {
        if !live.contains(&path) {
            // Written by a flush that crashed before its manifest update: the WAL still holds the data.
            tracing::info!(file = %path.display(), "removing a segment file not in the manifest (interrupted flush)");
            crate::index::forget(&path);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                // A leftover sidecar or temporary file only takes space: never stop start-up for it.
                Err(e) if path.extension().is_none_or(|ext| ext != "parquet") => {
                    tracing::warn!(file = %path.display(), error = %e, "could not remove a leftover file");
                }
                Err(e) => return Err(StorageError::io(format!("removing {}", path.display()), e)),
            }
        }
    }
    Ok(removed)
}
