//! Log records as the services' loggers (bridged to OpenTelemetry) emit them: a severity, a text body,
//! structured attributes, and the trace context of the span that was active.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::otlp::ns;
use crate::topology::Service;

/// Log severities the services use, with their OTLP numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Debug,
    Info,
    Warn,
    Error,
}

impl Severity {
    fn number(self) -> i32 {
        match self {
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }
}

/// A log record and the service whose logger wrote it.
#[derive(Clone, Debug)]
pub(crate) struct BuiltLog {
    pub service: Service,
    pub record: LogRecord,
}

/// The trace context a log record was written in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// Builds a log record. `observed` is when the SDK's processor saw it (a few µs later).
pub(crate) fn log_record(
    at: i64,
    severity: Severity,
    body: String,
    context: Option<LogContext>,
    event_name: Option<&str>,
    attributes: Vec<KeyValue>,
) -> LogRecord {
    let (trace_id, span_id, flags) = match context {
        Some(c) => (c.trace_id.to_vec(), c.span_id.to_vec(), 1),
        None => (Vec::new(), Vec::new(), 0),
    };
    LogRecord {
        time_unix_nano: ns(at),
        observed_time_unix_nano: ns(at + 15_000),
        severity_number: severity.number(),
        severity_text: severity.text().to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body)),
        }),
        attributes,
        dropped_attributes_count: 0,
        flags,
        trace_id,
        span_id,
        event_name: event_name.unwrap_or_default().to_string(),
    }
}
