use std::time::Duration;

use lumen_storage::{StorageError, Table};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;
use crate::IngestConfig;
use crate::export::testing::{FakeSink, exporter};

fn receiver(sink: &Arc<FakeSink>) -> GrpcReceiver {
    GrpcReceiver {
        exporter: exporter(sink, IngestConfig::default()),
    }
}

fn request() -> ExportTraceServiceRequest {
    let span = |trace_id: Vec<u8>| Span {
        trace_id,
        span_id: vec![2; 8],
        name: "GET /".to_owned(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_000_000_001,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span(vec![1; 16]), span(vec![1; 4])],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn routes_build() {
    let _ = routes(exporter(&FakeSink::accepting(), IngestConfig::default()));
}

#[tokio::test]
async fn rejected_items_are_reported_in_partial_success() {
    let sink = FakeSink::accepting();
    let response = TraceService::export(&receiver(&sink), Request::new(request()))
        .await
        .expect("ok")
        .into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id must be 16 bytes"),
        "{}",
        partial.error_message
    );
    assert_eq!(sink.rows(Table::Spans), 1);
}

#[tokio::test]
async fn overload_is_unavailable_and_says_retry() {
    let sink = FakeSink::failing(|| StorageError::Overloaded {
        reason: "head full".into(),
        retry_after: Duration::from_secs(2),
    });
    let status = TraceService::export(&receiver(&sink), Request::new(request()))
        .await
        .expect_err("overloaded");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("retry after 2s"),
        "{}",
        status.message()
    );
}
