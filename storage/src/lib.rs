//! Lumen's storage engine.
//!
//! Data flow through this crate (each step names the file where it happens):
//!
//! ```text
//! Storage::write(table, batch)                       engine.rs (head full → Overloaded, retryable)
//!   └─► WAL thread: group commit, one fsync per group   engine/wal_thread.rs, wal.rs (file format)
//!         └─► head::Head (queryable once acknowledged)   head.rs
//!               └─► flush (size / age / shutdown)         engine/flush.rs
//!                     freeze head ─► segment::write_segments (sorted, zstd Parquet per table and
//!                     hour; metrics segments also get a series index sidecar, see [`index`])
//!                     ─► manifest change (engine/commit.rs, manifest.rs: tmp, fsync, rename)
//!                     ─► WAL files covered by the manifest are deleted
//! compaction (background, after flushes)             engine/compactor.rs, compaction.rs (plan, merge)
//!                     an hour's segments ─► one merged segment ─► manifest swaps them ─► inputs
//!                     deleted after a grace period
//! Storage::snapshot(table, range)                    engine.rs: head batches + segment list
//! segment::reader::open(&segment, footer)            segment/reader.rs: the one way segments are
//!                                                    read, footers cached (cache.rs)
//! load_series_index(&segment)                        index/cache.rs: series and their row ranges
//! Storage::open                                      engine/recovery.rs: lock, manifest, quarantine,
//!                                                    orphans, WAL replay (torn tails cut)
//! ```
//!
//! Every fsync of a directory goes through [`durable::sync_dir`]; everything kept between queries
//! sits in a [`cache::SizedCache`]. The crate knows nothing of DataFusion or the wire protocols:
//! `query` reads snapshots, `ingest` calls `write`.

#![warn(missing_docs)]

pub mod cache;
pub mod compaction;
pub mod durable;
pub mod duration;
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
