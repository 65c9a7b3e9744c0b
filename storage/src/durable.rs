//! What the durability contract needs from the file system, in one place: a file is written under
//! a temporary name, fsync'd and renamed, and the rename only counts once its directory is
//! fsync'd too ([`sync_dir`]). The WAL, segments, sidecars and the manifest all use it.

use std::fs::File;
use std::path::Path;

use crate::error::{Result, StorageError};

/// Fsyncs the directory `dir`, making renames and deletions inside it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(format!("fsync of directory {}", dir.display()), e))
}
