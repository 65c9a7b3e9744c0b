//! Lumen's storage engine.
//!
//! Data flow through this crate:
//!
//! ```text
//! Storage::write(table, batch)
//!   └─► wal::WalWriter  (one thread; batches records of concurrent writers, one fsync per group)
//!         └─► head::Head (in memory; queryable as soon as the write is acknowledged)
//!               └─► flush (size / age / shutdown): freeze head ─► segment::write_segment
//!                     (sorted, zstd Parquet per table and hour; metrics segments also get a
//!                     series index sidecar, see [`index`]) ─► manifest (atomic rename)
//!                     ─► WAL files covered by the manifest are deleted
//! compaction (background, after flushes): an hour's segments ─► one merged segment (streaming
//!                     k-way merge, see [`compaction`]) ─► manifest swaps them ─► inputs deleted
//!                     after a grace period
//! Storage::snapshot(table, range) ─► head batches + segment list, pruned by time
//! load_series_index(&segment)     ─► the series of a metrics segment and their row ranges (cached)
//! ```
//!
//! Recovery (`Storage::open`) loads the manifest, quarantines unreadable segments, deletes segment files a
//! crash left outside the manifest, and replays the WAL records the manifest does not cover. The crate
//! knows nothing of DataFusion or the wire protocols: `query` reads snapshots, `ingest` calls `write`.

pub mod cache;
pub mod compaction;
pub mod durable;
pub mod engine;
pub mod error;
pub mod head;
pub mod index;
pub mod manifest;
pub mod schema;
pub mod segment;
pub mod wal;

pub use compaction::CompactionConfig;
pub use engine::{CompactionReport, FlushReport, Storage, StorageConfig, TableSnapshot, TimeRange};
pub use error::{Result, StorageError};
pub use index::{
    AttributeColumn, MetricDescriptor, Postings, SeriesEntry, SeriesIndex, load_series_index,
};
pub use manifest::SegmentMeta;
pub use roaring::{self, RoaringBitmap};
pub use schema::Table;
