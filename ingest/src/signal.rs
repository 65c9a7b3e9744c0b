//! The three OTLP signals, described once so the HTTP and gRPC receivers share one code path.

use arrow::error::ArrowError;
use lumen_storage::Table;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::de::DeserializeOwned;

use crate::convert::{self, Converted, Limits};
use crate::spanmetrics::SpanMetrics;

/// One OTLP signal: its request and response messages, its table and its conversion.
pub(crate) trait OtlpSignal: Send + Sync + 'static {
    /// The `signal` label of the crate's metrics: `traces`, `metrics` or `logs`.
    const NAME: &'static str;
    /// The table the signal's rows go to.
    const TABLE: Table;
    /// The OTLP/JSON name of the partial-success rejected counter (e.g. `rejectedSpans`).
    const REJECTED_FIELD: &'static str;
    /// `Export*ServiceRequest`.
    type Request: prost::Message + DeserializeOwned + Default + Send + 'static;
    /// `Export*ServiceResponse`.
    type Response: prost::Message + Default + Send + 'static;

    /// Converts a request into rows of [`Self::TABLE`].
    fn convert(
        request: &Self::Request,
        limits: &Limits,
        now_ns: i64,
    ) -> Result<Converted, ArrowError>;

    /// The response; `partial_success` is set when items were rejected or there is a message.
    fn response(rejected: u64, message: String) -> Self::Response;

    /// Metrics derived from a request, written with it (span metrics); none for most signals.
    fn derive(
        _request: &Self::Request,
        _span_metrics: &SpanMetrics,
        _limits: &Limits,
        _now_ns: i64,
    ) -> Option<ExportMetricsServiceRequest> {
        None
    }
}

fn rejected_count(rejected: u64) -> i64 {
    i64::try_from(rejected).unwrap_or(i64::MAX)
}

/// OTLP traces → `spans`.
pub(crate) enum Traces {}

impl OtlpSignal for Traces {
    const NAME: &'static str = "traces";
    const TABLE: Table = Table::Spans;
    const REJECTED_FIELD: &'static str = "rejectedSpans";
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;

    fn convert(
        request: &Self::Request,
        limits: &Limits,
        now_ns: i64,
    ) -> Result<Converted, ArrowError> {
        convert::spans(request, limits, now_ns)
    }

    fn derive(
        request: &Self::Request,
        span_metrics: &SpanMetrics,
        limits: &Limits,
        now_ns: i64,
    ) -> Option<ExportMetricsServiceRequest> {
        span_metrics.derive(request, limits, now_ns)
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        let partial = rejected > 0 || !message.is_empty();
        ExportTraceServiceResponse {
            partial_success: partial.then(|| ExportTracePartialSuccess {
                rejected_spans: rejected_count(rejected),
                error_message: message,
            }),
        }
    }
}

/// OTLP metrics → `metrics` (one row per data point).
pub(crate) enum Metrics {}

impl OtlpSignal for Metrics {
    const NAME: &'static str = "metrics";
    const TABLE: Table = Table::Metrics;
    const REJECTED_FIELD: &'static str = "rejectedDataPoints";
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;

    fn convert(
        request: &Self::Request,
        limits: &Limits,
        now_ns: i64,
    ) -> Result<Converted, ArrowError> {
        convert::metrics(request, limits, now_ns)
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        let partial = rejected > 0 || !message.is_empty();
        ExportMetricsServiceResponse {
            partial_success: partial.then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected_count(rejected),
                error_message: message,
            }),
        }
    }
}

/// OTLP logs → `logs`.
pub(crate) enum Logs {}

impl OtlpSignal for Logs {
    const NAME: &'static str = "logs";
    const TABLE: Table = Table::Logs;
    const REJECTED_FIELD: &'static str = "rejectedLogRecords";
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;

    fn convert(
        request: &Self::Request,
        limits: &Limits,
        now_ns: i64,
    ) -> Result<Converted, ArrowError> {
        convert::logs(request, limits, now_ns)
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        let partial = rejected > 0 || !message.is_empty();
        ExportLogsServiceResponse {
            partial_success: partial.then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected_count(rejected),
                error_message: message,
            }),
        }
    }
}
