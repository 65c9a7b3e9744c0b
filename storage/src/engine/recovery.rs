//! Opening a data directory: its lock, the manifest, unusable segments moved to `quarantine/`,
//! files a crash left outside the manifest removed, and the WAL replayed into the head.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::head::Head;
use crate::manifest::Manifest;
use crate::schema;
use crate::segment;
use crate::wal::{self, WalFile};

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

/// A data directory opened and recovered: what the engine starts from.
pub(super) struct Recovered {
    pub(super) manifest: Manifest,
    pub(super) head: Head,
    /// The WAL file new writes go to (after the replayed ones).
    pub(super) wal_file: WalFile,
    pub(super) report: RecoveryReport,
    /// Held (with an OS lock) until shutdown so two processes never share a directory.
    pub(super) lock_file: File,
}

/// Locks `dir` and recovers it: manifest, segment check, orphan removal, WAL replay. Blocking.
pub(super) fn recover(dir: &Path) -> Result<Recovered> {
    fs::create_dir_all(dir)
        .map_err(|e| StorageError::io(format!("creating data directory {}", dir.display()), e))?;
    let lock_file = lock_data_dir(dir)?;

    let mut report = RecoveryReport::default();
    let mut manifest = Manifest::load(dir)?;
    report.quarantined = quarantine_bad_segments(dir, &mut manifest)?;
    report.segments = manifest.segments.len();
    report.orphans_removed = remove_orphans(&manifest, dir)?;

    let mut head = Head::default();
    let wal_dir = dir.join("wal");
    let replay = wal::replay(&wal_dir, manifest.flushed_wal_seq, |record| {
        // A record written by an older Lumen is kept in today's schema.
        let batch = schema::conform_batch(&record.batch, &record.table.schema())?;
        head.active.insert(record.seq, record.table, batch);
        Ok(())
    })?;
    report.replayed_records = replay.records - replay.skipped;
    report.truncated_wal_files = replay.truncated_files;
    let wal_file = WalFile::create(&wal_dir, replay.next_seq)?;
    tracing::info!(
        data_dir = %dir.display(),
        segments = report.segments,
        quarantined = report.quarantined,
        orphans_removed = report.orphans_removed,
        replayed_records = report.replayed_records,
        truncated_wal_files = report.truncated_wal_files,
        head_rows = head.rows(),
        "storage recovered"
    );
    Ok(Recovered {
        manifest,
        head,
        wal_file,
        report,
        lock_file,
    })
}

fn lock_data_dir(dir: &Path) -> Result<File> {
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
    Ok(lock_file)
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
