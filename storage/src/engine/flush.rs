//! Flushing: the head's frozen buffers become sorted Parquet segments (one per table and hour),
//! committed to the manifest, after which the WAL files they cover are deleted. The flusher
//! thread wakes every second (or when a writer finds the head over `flush_bytes`) and flushes when
//! the head is big or old enough, retrying failed flushes with a backoff.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use parking_lot::Mutex;

use super::Storage;
use super::wake::Signal;
use crate::error::{Result, StorageError};
use crate::head::FrozenBuffer;
use crate::manifest::SegmentMeta;
use crate::schema::Table;
use crate::segment;
use crate::wal;

/// What one flush did.
#[derive(Debug, Clone, Default)]
pub struct FlushReport {
    /// Segments written.
    pub segments: Vec<SegmentMeta>,
    /// Rows written across all segments.
    pub rows: u64,
}

/// The flusher thread and what it shares with callers of [`Storage::flush`].
#[derive(Default)]
pub(super) struct Flusher {
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) signal: Arc<Signal>,
    /// One flush at a time (background or asked for).
    lock: Mutex<()>,
}

impl Flusher {
    /// Starts the thread over `storage`.
    pub(super) fn start(&self, storage: Weak<Storage>) -> Result<()> {
        let signal = self.signal.clone();
        let thread = std::thread::Builder::new()
            .name("lumen-flusher".into())
            .spawn(move || flusher_loop(storage, signal))
            .map_err(|e| StorageError::io("starting the flusher thread", e))?;
        *self.thread.lock() = Some(thread);
        Ok(())
    }
}

impl Storage {
    /// Flushes everything in the head to segments now.
    pub async fn flush(self: &Arc<Self>) -> Result<FlushReport> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.flush_blocking())
            .await
            .map_err(|e| StorageError::io("flush task", std::io::Error::other(e.to_string())))?
    }

    pub(super) fn request_flush(&self) {
        self.flusher.signal.wake(false);
    }

    /// Blocking form of [`Storage::flush`]: freezes the active buffer and writes every frozen buffer.
    pub fn flush_blocking(&self) -> Result<FlushReport> {
        let _one_at_a_time = self.flusher.lock.lock();
        self.wal.freeze_active()?;
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
            self.compactor.signal.wake(false);
        }
        Ok(report)
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
        self.compactor
            .note_flushed(&written, self.config.compaction.settle_after);
        // The manifest now covers these records: their WAL files may go. A failure here only leaves
        // files that the next flush or start removes.
        if let Err(e) = wal::trim(&dir.join("wal"), flushed_seq) {
            tracing::warn!(error = %e, "could not trim the WAL; will retry at the next flush");
        }
        Ok(written)
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

fn flusher_loop(storage: Weak<Storage>, signal: Arc<Signal>) {
    let mut backoff = Duration::from_secs(1);
    while let Some(requested) = signal.wait(Duration::from_secs(1)) {
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
