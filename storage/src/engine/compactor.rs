//! Compaction as the engine runs it: the compactor thread wakes after each flush (and every
//! 30 s at most) and merges segments of one partition as [`crate::compaction`] plans; a merge is
//! swapped in by one manifest change, and the merged-away files are deleted once no query can
//! still be reading them (after `retire_grace`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Storage;
use super::wake::Signal;
use crate::compaction;
use crate::error::{Result, StorageError};
use crate::manifest::SegmentMeta;
use crate::schema::Table;
use crate::segment;

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

/// How long the segments of a failed merge are left alone before they are tried again.
const RETRY_FAILED_MERGE_AFTER: Duration = Duration::from_secs(600);

/// The compactor thread and the bookkeeping compaction keeps between passes.
#[derive(Default)]
pub(super) struct Compactor {
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) signal: Arc<Signal>,
    /// One compaction pass at a time (background or forced).
    pub(super) lock: Mutex<()>,
    /// Segments whose merge failed, with when: not tried again for [`RETRY_FAILED_MERGE_AFTER`].
    failed: Mutex<HashMap<u64, Instant>>,
    /// Merged segments out of the manifest, with when they left it; their files go after the grace.
    retired: Mutex<Vec<(Instant, SegmentMeta)>>,
    /// When a flush last wrote into each `(table, partition)` (since start).
    flushed_into: Mutex<HashMap<(Table, i64), Instant>>,
}

impl Compactor {
    /// Starts the thread over `storage`, waking at least every `tick`.
    pub(super) fn start(&self, storage: Weak<Storage>, tick: Duration) -> Result<()> {
        let signal = self.signal.clone();
        let thread = std::thread::Builder::new()
            .name("lumen-compactor".into())
            .spawn(move || compactor_loop(storage, signal, tick))
            .map_err(|e| StorageError::io("starting the compaction thread", e))?;
        *self.thread.lock() = Some(thread);
        Ok(())
    }

    /// Records that a flush wrote `segments`: compaction leaves the hours flushes are writing into
    /// to its size tiers for `settle_after`.
    pub(super) fn note_flushed(&self, segments: &[SegmentMeta], settle_after: Duration) {
        let now = Instant::now();
        let mut flushed_into = self.flushed_into.lock();
        flushed_into.retain(|_, at| at.elapsed() < settle_after);
        for s in segments {
            flushed_into.insert((s.table, segment::partition_start(s.min_time)), now);
        }
    }
}

impl Storage {
    /// Merges segments now: every partition with two or more segments under the size cap when
    /// `force`, else what the background policy calls for (see [`crate::compaction`]). Blocking;
    /// returns early (with what it did) when shutdown begins.
    pub fn compact_blocking(&self, force: bool) -> Result<CompactionReport> {
        let _one_at_a_time = self.compactor.lock.lock();
        let mut report = CompactionReport::default();
        loop {
            let segments = self.state.lock().manifest.segments.clone();
            let settle = self.config.compaction.settle_after;
            let when = compaction::Conditions {
                now_ns: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
                force,
                busy: self
                    .compactor
                    .flushed_into
                    .lock()
                    .iter()
                    .filter(|(_, at)| at.elapsed() < settle)
                    .map(|(p, _)| *p)
                    .collect(),
                skip: {
                    let mut failed = self.compactor.failed.lock();
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
                        self.compactor
                            .failed
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
                let _ = segment::remove_segment_files(&output);
            }
            return Err(failed.error);
        }
        let now = Instant::now();
        {
            let mut retired = self.compactor.retired.lock();
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
    pub(super) fn delete_retired(&self) {
        let grace = self.config.compaction.retire_grace;
        let due: Vec<SegmentMeta> = {
            let mut retired = self.compactor.retired.lock();
            if retired.is_empty() {
                return;
            }
            let (due, keep): (Vec<_>, Vec<_>) =
                retired.drain(..).partition(|(at, _)| at.elapsed() >= grace);
            *retired = keep;
            due.into_iter().map(|(_, s)| s).collect()
        };
        for segment in due {
            if let Err(e) = segment::remove_segment_files(&segment) {
                tracing::warn!(segment = %segment.path.display(), error = %e, "could not delete a merged segment; the next start removes it");
            }
        }
    }
}

fn compactor_loop(storage: Weak<Storage>, signal: Arc<Signal>, tick: Duration) {
    // Woken after each flush, and every `tick` to notice partitions that have settled.
    while signal.wait(tick).is_some() {
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
