//! Lumen's query layer: read-only SQL over the `spans`, `logs` and `metrics` tables.
//!
//! Data flow through this crate:
//!
//! ```text
//! POST /api/v1/sql ─► http          body / format, errors → status (error::QueryError)
//!   └─► session::QueryEngine::sql   own tokio runtime, timeout, shared memory pool (no spilling),
//!         │                         lumen_queries_total{outcome}, lumen_query_duration_seconds
//!         └─► readonly              only queries, EXPLAIN, DESCRIBE, SHOW (checked twice)
//!               └─► DataFusion      parse, plan, optimize; filters pushed into the scans
//!                     └─► table::LumenTable::scan
//!                           pruning::ScanPredicate (time bounds, trace ids from the filters)
//!                           source::SnapshotSource::snapshot(table, time range) ─► head + segments
//!                           └─► scan::LumenScanExec
//!                                 head partition: project, ids → hex
//!                                 segment partitions: blocking Parquet reads, pruned by row-group
//!                                 statistics, trace_id bloom filters and the page index,
//!                                 projected, ids → hex, streamed through a bounded channel
//!         ◄── record batches ─► format  JSON / CSV / NDJSON (and render_table for the CLI)
//! ```
//!
//! PromQL lives in [`promql`]: an evaluator with Prometheus 3 semantics over the
//! [`promql::SeriesSource`] trait, independent of storage (see that module's docs), served as the
//! Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`, ...) by [`prometheus_router`].
//!
//! SQL sees each table in its storage schema (`lumen_storage::schema`), except that the top-level
//! trace and span ids are lowercase hex text: `SELECT trace_id FROM spans` shows hex, and
//! `WHERE trace_id = '5b8efff798038103d269b633813fc60c'` works and skips every row group and page
//! that cannot hold the trace.
//!
//! ```no_run
//! # async fn example(storage: std::sync::Arc<lumen_storage::Storage>) -> Result<(), lumen_query::QueryError> {
//! use lumen_query::{QueryConfig, QueryEngine};
//!
//! let engine = QueryEngine::new(storage, QueryConfig::default())?;
//! let output = engine
//!     .sql("SELECT service_name, count(*) AS spans FROM spans \
//!           WHERE time > now() - INTERVAL '1 hour' GROUP BY service_name")
//!     .await?;
//! let body = lumen_query::format::encode_json(&output.schema, &output.batches);
//! # let _ = body;
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod hexid;
pub mod promql;
pub mod pruning;
pub mod scan;
pub mod snapshot;
pub mod sql;
pub mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::QueryError;
pub use promql::api::prometheus_router;
pub use promql::{PromqlConfig, PromqlService};
pub use snapshot::SnapshotSource;
pub use sql::api::http_router;
pub use sql::format;
pub use sql::session::{QueryConfig, QueryEngine, QueryOutput, QueryStream};
pub use table::LumenTable;
