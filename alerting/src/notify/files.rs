//! Durable file primitives for the outbox and the dispatcher state: write to a temporary name,
//! fsync, rename, fsync the directory; remove and fsync the directory.
//!
//! These are blocking calls. They run on the dispatcher's own thread, at start-up, or (for the
//! delivery tasks' removals) inside `spawn_blocking`; never directly on an async worker.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `bytes` atomically and durably.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Removes `path` (absent is fine) and makes the removal durable.
pub(super) fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a directory so creations, renames and removals in it survive a crash.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
