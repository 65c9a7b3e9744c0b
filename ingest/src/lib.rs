//! Lumen's receivers: OTLP over gRPC and HTTP (protobuf and JSON), converted to Arrow record batches
//! and handed to the storage engine.
//!
//! Data flow through this crate:
//!
//! ```text
//! POST /v1/{traces,metrics,logs}  (http.rs)          gRPC Export  (grpc.rs)
//!   content type + encoding checks                     tonic decodes (gzip, size limit)
//!   body read with a size cap, gunzip with a cap            │
//!   (decoding: prost, or OTLP/JSON in json.rs)             │
//!        └──────────────────────┬──────────────────────────┘
//!                               ▼
//!            export.rs (over 16 KiB: on the blocking pool, one per core): decode (HTTP,
//!              remote write), then
//!            convert::{spans,logs,metrics}: validate every item (bad ones are rejected and
//!              reported, the rest kept) and append straight into Arrow builders
//!              (one row per span / log record / data point)
//!                               ▼
//!            Storage::write(table, batch)  — returns once durable and queryable
//!                               ▼
//!            Export*ServiceResponse (partial_success when items were rejected or trimmed),
//!            or an error mapped to its HTTP / gRPC status in error.rs
//! ```
//!
//! signal.rs describes the three signals once (request, response, table, conversion) so that both
//! receivers share one code path. The schemas produced are `lumen_storage::schema`'s; see that
//! module (and docs/schema.md) for the column-by-column meaning, and [`convert`] for the text forms
//! of attribute values. The crate records its own metrics through the `metrics` facade; see
//! [`describe_metrics`].

#![warn(missing_docs)]

mod body;
pub mod convert;
mod error;
mod export;
mod grpc;
mod http;
mod json;
pub mod remote_write;
mod signal;
pub mod spanmetrics;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

pub use convert::{Converted, Limits};
pub use error::IngestError;
pub use remote_write::{PromSample, SampleWriter};
pub use telemetry::describe_metrics;

/// Settings of the OTLP receivers.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Largest request body accepted, both as received and after decompression (bytes).
    pub max_body_bytes: usize,
    /// Attributes kept per item (span, event, link, log record, data point, resource, scope); the
    /// rest are counted in the item's `dropped_attributes_count`.
    pub max_attributes_per_item: usize,
    /// How far in the future a timestamp may lie before its item is rejected.
    pub max_future_skew: Duration,
    /// Derive RED metrics and the service graph from spans at ingest ([`spanmetrics`]).
    pub span_metrics: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 16 * 1024 * 1024,
            max_attributes_per_item: 128,
            max_future_skew: Duration::from_secs(24 * 60 * 60),
            span_metrics: true,
        }
    }
}

impl IngestConfig {
    /// The conversion limits these settings imply.
    pub fn limits(&self) -> Limits {
        Limits {
            max_attributes_per_item: self.max_attributes_per_item,
            max_future_skew: self.max_future_skew,
        }
    }
}

/// The OTLP receivers, HTTP and gRPC, over one export path: one set of limits and one
/// span-metrics state, so a client span sent over gRPC pairs with its server span sent over HTTP.
pub struct Receivers {
    exporter: Arc<export::Exporter>,
}

impl Receivers {
    /// Receivers writing to `storage`.
    pub fn new(storage: Arc<lumen_storage::Storage>, config: IngestConfig) -> Self {
        Receivers {
            exporter: Arc::new(export::Exporter::new(storage, config)),
        }
    }

    /// The OTLP/HTTP receiver: `POST /v1/traces`, `/v1/metrics` and `/v1/logs`.
    pub fn http_router(&self) -> axum::Router {
        http::router(Arc::clone(&self.exporter))
    }

    /// The OTLP/gRPC receiver: `TraceService`, `MetricsService` and `LogsService`, accepting gzip.
    pub fn grpc_routes(&self) -> tonic::service::Routes {
        grpc::routes(Arc::clone(&self.exporter))
    }
}
