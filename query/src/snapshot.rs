//! Where scans get their data: a snapshot of one table for a time range.
//!
//! The table provider asks a [`SnapshotSource`] rather than [`Storage`] directly so the query layer
//! can be tested against in-memory fakes; [`Storage`] is the one production implementation.

use lumen_storage::{Storage, Table, TableSnapshot, TimeRange};

/// Something that can hand out consistent snapshots of Lumen's tables.
pub trait SnapshotSource: Send + Sync + 'static {
    /// The head batches and segments of `table` that may hold rows in `range`.
    ///
    /// Segment files named in the snapshot may still disappear before they are read (compaction,
    /// retention); scans report that as a retryable error.
    fn snapshot(&self, table: Table, range: TimeRange) -> TableSnapshot;
}

impl SnapshotSource for Storage {
    fn snapshot(&self, table: Table, range: TimeRange) -> TableSnapshot {
        Storage::snapshot(self, table, range)
    }
}
