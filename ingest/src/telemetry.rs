//! The receivers' own metrics, recorded through the `metrics` facade (the root binary installs the
//! exporter).

use metrics::{Unit, counter, describe_counter};

/// Items (spans, log records, data points) by `signal`, `protocol` and `outcome`.
const ITEMS_TOTAL: &str = "lumen_ingest_items_total";
/// Request body bytes by `signal` and `protocol`.
const BYTES_TOTAL: &str = "lumen_ingest_bytes_total";
/// Export requests by `signal`, `protocol` and `status`.
const REQUESTS_TOTAL: &str = "lumen_ingest_requests_total";
/// Service-graph half edges dropped without their other half.
const UNPAIRED_EDGES_TOTAL: &str = "lumen_spanmetrics_unpaired_edges_total";
/// Span-metrics writes that failed (the spans themselves were stored).
const SPANMETRICS_FAILURES_TOTAL: &str = "lumen_spanmetrics_write_failures_total";

/// The wire protocol a request arrived by (the `protocol` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Grpc,
    /// Prometheus remote write.
    RemoteWrite,
    /// Samples Lumen writes itself (recording rules, `ALERTS`).
    Internal,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
            Protocol::RemoteWrite => "remote_write",
            Protocol::Internal => "internal",
        }
    }
}

/// Registers the descriptions and units of the receivers' metrics with the installed recorder.
pub fn describe_metrics() {
    describe_counter!(
        ITEMS_TOTAL,
        "OTLP items received (spans, log records, data points) by signal, protocol and outcome \
         (accepted = durably stored; rejected = refused by validation or by a failed write)"
    );
    describe_counter!(
        BYTES_TOTAL,
        Unit::Bytes,
        "OTLP request body bytes: as received over HTTP (compressed if it was), the decoded \
         message size over gRPC"
    );
    describe_counter!(
        REQUESTS_TOTAL,
        "OTLP export requests by signal, protocol and status (HTTP status code, or gRPC code name)"
    );
    describe_counter!(
        UNPAIRED_EDGES_TOTAL,
        "Service-graph half edges (a client or server span) dropped because their other half did \
         not arrive within the wait"
    );
    describe_counter!(
        SPANMETRICS_FAILURES_TOTAL,
        "Writes of span-derived metrics that failed; the spans of those requests were stored"
    );
}

pub(crate) fn record_unpaired_edges(count: u64) {
    counter!(UNPAIRED_EDGES_TOTAL).increment(count);
}

pub(crate) fn record_spanmetrics_failure() {
    counter!(SPANMETRICS_FAILURES_TOTAL).increment(1);
}

pub(crate) fn record_bytes(signal: &'static str, protocol: Protocol, bytes: usize) {
    counter!(BYTES_TOTAL, "signal" => signal, "protocol" => protocol.label())
        .increment(u64::try_from(bytes).unwrap_or(u64::MAX));
}

pub(crate) fn record_items(signal: &'static str, protocol: Protocol, accepted: u64, rejected: u64) {
    if accepted > 0 {
        counter!(ITEMS_TOTAL, "signal" => signal, "protocol" => protocol.label(), "outcome" => "accepted")
            .increment(accepted);
    }
    if rejected > 0 {
        counter!(ITEMS_TOTAL, "signal" => signal, "protocol" => protocol.label(), "outcome" => "rejected")
            .increment(rejected);
    }
}

pub(crate) fn record_request(signal: &'static str, protocol: Protocol, status: String) {
    counter!(REQUESTS_TOTAL, "signal" => signal, "protocol" => protocol.label(), "status" => status)
        .increment(1);
}

/// The `status` label of a gRPC request: the code's name in snake case.
pub(crate) fn grpc_code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}
