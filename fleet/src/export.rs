//! What the services' batch processors hold: spans wait until they end and log records until their
//! timestamp passes, then leave grouped as OTLP wants them (resource → scope → items).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::logs::BuiltLog;
use crate::otlp::ns;
use crate::topology::{Instances, SCHEMA_URL, SCOPE_COUNT, SERVICE_COUNT, ScopeKind, Service};
use crate::traces::BuiltSpan;

/// Spans and log records simulated but not yet exported.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Indexed by service × scope.
    spans: Vec<Vec<Span>>,
    /// Indexed by service.
    logs: Vec<Vec<LogRecord>>,
}

impl Pending {
    pub(crate) fn new() -> Pending {
        Pending {
            spans: vec![Vec::new(); SERVICE_COUNT * SCOPE_COUNT],
            logs: vec![Vec::new(); SERVICE_COUNT],
        }
    }

    /// Holds a trace's spans until each ends.
    pub(crate) fn add_spans(&mut self, spans: Vec<BuiltSpan>) {
        for s in spans {
            self.spans[s.service.index() * SCOPE_COUNT + s.scope.index()].push(s.span);
        }
    }

    /// Holds a log record until its time.
    pub(crate) fn add_log(&mut self, log: BuiltLog) {
        self.logs[log.service.index()].push(log.record);
    }

    /// Spans and log records still held.
    pub(crate) fn len(&self) -> usize {
        self.spans.iter().map(Vec::len).sum::<usize>()
            + self.logs.iter().map(Vec::len).sum::<usize>()
    }

    /// Takes every span that ended and every record written at or before `until`.
    pub(crate) fn drain(
        &mut self,
        until: i64,
        instances: &Instances,
    ) -> (ExportTraceServiceRequest, ExportLogsServiceRequest) {
        let until = ns(until);
        let mut traces = ExportTraceServiceRequest::default();
        let mut logs = ExportLogsServiceRequest::default();
        for service in Service::ALL {
            let mut scope_spans = Vec::new();
            for kind in ScopeKind::ALL {
                let bucket = &mut self.spans[service.index() * SCOPE_COUNT + kind.index()];
                let ready: Vec<Span> = bucket
                    .extract_if(.., |s| s.end_time_unix_nano <= until)
                    .collect();
                if !ready.is_empty() {
                    scope_spans.push(ScopeSpans {
                        scope: Some(instances.scope(service, kind).clone()),
                        spans: ready,
                        schema_url: SCHEMA_URL.to_string(),
                    });
                }
            }
            if !scope_spans.is_empty() {
                traces.resource_spans.push(ResourceSpans {
                    resource: Some(instances.resource(service).clone()),
                    scope_spans,
                    schema_url: SCHEMA_URL.to_string(),
                });
            }
            let bucket = &mut self.logs[service.index()];
            let ready: Vec<LogRecord> = bucket
                .extract_if(.., |r| r.time_unix_nano <= until)
                .collect();
            if !ready.is_empty() {
                logs.resource_logs.push(ResourceLogs {
                    resource: Some(instances.resource(service).clone()),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(instances.scope(service, ScopeKind::App).clone()),
                        log_records: ready,
                        schema_url: SCHEMA_URL.to_string(),
                    }],
                    schema_url: SCHEMA_URL.to_string(),
                });
            }
        }
        (traces, logs)
    }
}
