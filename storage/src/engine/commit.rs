//! The one path by which the manifest changes: flushes and compactions both go through
//! [`Storage::commit_manifest`], one change at a time.

use std::sync::atomic::Ordering;

use super::Storage;
use crate::error::{Result, StorageError};
use crate::head::Head;
use crate::manifest::Manifest;

/// What queries read under one lock: the head and the manifest, changed together.
pub(super) struct State {
    pub(super) head: Head,
    pub(super) manifest: Manifest,
}

/// Why a manifest change did not take effect.
pub(super) struct CommitFailed {
    pub(super) error: StorageError,
    /// The new manifest may have reached the disk: files it names must not be deleted.
    pub(super) may_be_on_disk: bool,
}

impl Storage {
    /// Applies `change` to the manifest, persists it and installs it (with `installed`, under the
    /// state lock, so queries see both at once). Changes are applied one at a time.
    pub(super) fn commit_manifest(
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
}
