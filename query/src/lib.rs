//! Lumen's query layer: DataFusion tables over storage snapshots, and one folder per query
//! language, each an engine with a thin HTTP API (`api.rs`).
//!
//! Data flow through this crate:
//!
//! ```text
//! SQL ── POST /api/v1/sql ─► sql::api           body / format, errors → status (error::QueryError)
//!   └─► sql::session::QueryEngine::sql          own tokio runtime, timeout, shared memory pool
//!         │                                     (no spilling), lumen_queries_total{outcome}
//!         └─► sql::readonly                     only queries, EXPLAIN, DESCRIBE, SHOW (checked twice)
//!               └─► DataFusion                  parse, plan, optimize; filters pushed into the scans
//!                     └─► table::LumenTable::scan
//!                           pruning::ScanPredicate (time bounds, trace ids from the filters)
//!                           row_filter::RowFilter (the filters reading no id column)
//!                           snapshot::SnapshotSource::snapshot(table, range) ─► head + segments
//!                           └─► scan::LumenScanExec
//!                                 head partition: row filter, project, ids → hex
//!                                 segment partitions: blocking Parquet reads, pruned by row-group
//!                                 statistics, trace_id bloom filters and the page index,
//!                                 row filter, projected, ids → hex, streamed through a bounded
//!                                 channel
//!         ◄── record batches ─► sql::format     JSON / CSV / NDJSON (and render_table for the CLI)
//!
//! PromQL ── /api/v1/query, query_range, series, labels, ... ─► promql::api (params → service)
//!   alert rules (the root binary's Querier) ─────────────────┐      │
//!                                                            ▼      ▼
//!   promql::service::PromqlService      concurrency slots, inline budget / heavy shapes,
//!         │                             deadlines, panic containment
//!         └─► promql::engine::Engine    parse (cached), instant / range ─► promql::eval
//!               └─► promql::reader::MetricsTableSource (a promql::SeriesSource)
//!                     snapshot::SnapshotSource ─► head batches + segments
//!                     segments through their series index (promql::index_select)
//!                     rows ─► promql::accumulator (series) named by promql::naming
//!                             (OTLP → Prometheus names, labels, target_info)
//!
//! Traces ── Tempo /api/traces, /api/search … ─► traceql::api ─► traceql::parser (TraceQL → ast)
//!   │                                                         traceql::search (ast → traceql::sql,
//!   │                                                         one pruned scan, span sets per trace)
//!   └── Jaeger /jaeger/api/… ─► jaeger::api ─► one aggregate scan for the newest matching traces
//!         both read whole traces through traces::fetch_traces (trace_id IN …, bloom-pruned)
//!         ─► traces::otlp (rows → OTLP, typed values) ─► protobuf / OTLP JSON / jaeger (Jaeger JSON)
//! ```
//!
//! PromQL's evaluator has Prometheus 3 semantics over the [`promql::SeriesSource`] trait,
//! independent of storage (see [`promql`]). One [`PromqlService`] per server runs every PromQL
//! query, from the Prometheus API ([`prometheus_router`]) and from alert rules alike.
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
//! let body = lumen_query::sql::format::encode_json(&output.schema, &output.batches);
//! # let _ = body;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod hexid;
pub mod jaeger;
pub mod promql;
pub mod pruning;
pub mod row_filter;
pub mod scan;
pub mod snapshot;
pub mod sql;
pub mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod traceql;
pub mod traces;

pub use error::QueryError;
pub use jaeger::api::jaeger_router;
pub use promql::api::prometheus_router;
pub use promql::{PromqlConfig, PromqlService};
pub use snapshot::SnapshotSource;
pub use sql::api::http_router;
pub use sql::session::{QueryConfig, QueryEngine, QueryOutput, QueryStream};
pub use table::LumenTable;
pub use traceql::api::tempo_router;
