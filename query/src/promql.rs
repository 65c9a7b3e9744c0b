//! PromQL: parsed by the `promql-parser` crate, evaluated here with Prometheus 3 semantics.
//!
//! The evaluator is independent of storage: it reads series through the [`SeriesSource`] trait
//! (an in-memory [`MemorySource`] for tests and scripts, [`reader::MetricsTableSource`] for Lumen's
//! `metrics` table). [`api`] serves it as the Prometheus HTTP API (Grafana's data source).
//!
//! ```text
//! Engine::instant / Engine::range      parse (bad_data), limits (11,000 points), steps
//!   └─► eval::Evaluator::eval(expr, t)  one evaluation timestamp at a time
//!         ├─► selectors                 lookback 5m, staleness markers, offset, @, fetch cache
//!         ├─► subqueries                inner steps aligned to multiples of the step
//!         ├─► functions / range_functions / histogram
//!         ├─► aggregate                 sum … quantile, by / without
//!         └─► binary                    arithmetic, comparison, set ops, vector matching
//! ```
//!
//! ```
//! use lumen_query::promql::{Engine, EngineConfig, Labels, MemorySource, Series, Value};
//!
//! let mut source = MemorySource::default();
//! source.add(Series {
//!     labels: Labels::new(vec![("__name__".into(), "up".into()), ("job".into(), "node".into())]),
//!     samples: vec![(0, 1.0), (15_000, 1.0)],
//! });
//! let engine = Engine::new(EngineConfig::default());
//! let result = engine.instant("sum by (job) (up)", 20_000, &source).unwrap();
//! match result.value {
//!     Value::Vector(v) => assert_eq!(v[0].value, 1.0),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

mod accumulator;
mod aggregate;
pub mod api;
mod binary;
mod columns;
mod config;
mod engine;
pub mod error;
mod eval;
mod functions;
mod histogram;
mod index_select;
mod naming;
mod otlp_convert;
mod range_functions;
pub mod reader;
pub mod sample_cache;
mod series_source;
pub mod service;
#[cfg(test)]
mod tests;
pub mod value;
pub use accumulator::{Exemplar, SeriesExemplars};
pub use config::EngineConfig;
pub use engine::{Engine, MAX_NESTING, QueryResult};
pub use error::PromqlError;
pub use series_source::{MemorySource, SeriesSource};
pub use service::{PromqlConfig, PromqlService, QueryOptions};
pub use value::{Annotations, Labels, LabelsMap, Sample, Series, Value, is_stale_nan, stale_nan};
