//! The head: acknowledged batches held in memory until a flush writes them to segments.
//!
//! The active buffer takes new writes. A flush freezes it (it becomes a [`FrozenBuffer`], still visible to
//! queries) and starts a new active buffer; once the frozen buffer's segments are in the manifest it is
//! dropped. Every buffer remembers the highest WAL seq it holds, which is what the manifest records as
//! flushed.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, TimestampNanosecondArray};
use arrow::compute::kernels::aggregate::{max, min};
use arrow::record_batch::RecordBatch;

use crate::schema::{TIME_COLUMN, Table};

/// A batch in the head with its time bounds, so snapshots can skip batches outside a query's range.
#[derive(Debug, Clone)]
pub struct HeadBatch {
    /// The batch, in the table's storage schema.
    pub batch: RecordBatch,
    /// Smallest `time` in the batch (ns).
    pub min_time: i64,
    /// Largest `time` in the batch (ns).
    pub max_time: i64,
}

impl HeadBatch {
    /// Wraps a batch, computing its time bounds. Empty batches get an empty range.
    pub fn new(batch: RecordBatch) -> HeadBatch {
        let times = batch
            .column_by_name(TIME_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
        let (min_time, max_time) = match times {
            Some(t) => (min(t).unwrap_or(i64::MAX), max(t).unwrap_or(i64::MIN)),
            None => (i64::MIN, i64::MAX),
        };
        HeadBatch {
            batch,
            min_time,
            max_time,
        }
    }

    /// True when the batch may hold rows in `[start, end]`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.min_time <= end && self.max_time >= start
    }
}

/// Batches of all tables written between two freezes.
#[derive(Debug, Default)]
pub struct Buffer {
    tables: [Vec<HeadBatch>; 3],
    /// Memory held by the batches, in bytes.
    pub bytes: usize,
    /// Rows held.
    pub rows: usize,
    /// Highest WAL seq in this buffer (0 when empty).
    pub max_seq: u64,
    /// When the first batch arrived.
    pub first_write: Option<Instant>,
}

fn slot(table: Table) -> usize {
    match table {
        Table::Spans => 0,
        Table::Logs => 1,
        Table::Metrics => 2,
    }
}

impl Buffer {
    /// Adds a batch that the WAL holds at `seq`.
    pub fn insert(&mut self, seq: u64, table: Table, batch: RecordBatch) {
        if batch.num_rows() == 0 {
            self.max_seq = self.max_seq.max(seq);
            return;
        }
        self.bytes += batch.get_array_memory_size();
        self.rows += batch.num_rows();
        self.max_seq = self.max_seq.max(seq);
        self.first_write.get_or_insert_with(Instant::now);
        self.tables[slot(table)].push(HeadBatch::new(batch));
    }

    /// The batches of one table.
    pub fn batches(&self, table: Table) -> &[HeadBatch] {
        &self.tables[slot(table)]
    }

    /// True when no rows are held.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

/// A buffer being flushed: read-only, still visible to queries until its segments are in the manifest.
#[derive(Debug)]
pub struct FrozenBuffer {
    /// Identifies the buffer among frozen ones.
    pub id: u64,
    /// The data.
    pub buffer: Buffer,
}

/// The whole head: one active buffer and the frozen ones not yet flushed.
#[derive(Debug, Default)]
pub struct Head {
    /// Takes new writes.
    pub active: Buffer,
    /// Frozen, oldest first.
    pub frozen: Vec<Arc<FrozenBuffer>>,
    next_frozen_id: u64,
}

impl Head {
    /// Bytes held in the active and frozen buffers.
    pub fn bytes(&self) -> usize {
        self.active.bytes + self.frozen.iter().map(|f| f.buffer.bytes).sum::<usize>()
    }

    /// Rows held in the active and frozen buffers.
    pub fn rows(&self) -> usize {
        self.active.rows + self.frozen.iter().map(|f| f.buffer.rows).sum::<usize>()
    }

    /// Moves the active buffer to the frozen list (if it holds anything) and returns it.
    pub fn freeze(&mut self) -> Option<Arc<FrozenBuffer>> {
        if self.active.is_empty() {
            return None;
        }
        let buffer = std::mem::take(&mut self.active);
        self.next_frozen_id += 1;
        let frozen = Arc::new(FrozenBuffer {
            id: self.next_frozen_id,
            buffer,
        });
        self.frozen.push(frozen.clone());
        Some(frozen)
    }

    /// Drops a frozen buffer whose data is now in durable segments.
    pub fn release(&mut self, id: u64) {
        self.frozen.retain(|f| f.id != id);
    }

    /// Batches of `table` overlapping `[start, end]`, frozen buffers first.
    pub fn batches(&self, table: Table, start: i64, end: i64) -> Vec<RecordBatch> {
        self.frozen
            .iter()
            .map(|f| &f.buffer)
            .chain(std::iter::once(&self.active))
            .flat_map(|b| b.batches(table))
            .filter(|b| b.overlaps(start, end))
            .map(|b| b.batch.clone())
            .collect()
    }
}
