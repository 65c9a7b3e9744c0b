//! The OTLP/gRPC receiver: `TraceService`, `MetricsService` and `LogsService`.
//!
//! tonic decodes the message (gzip accepted, size capped at `max_body_bytes`, decode errors answered
//! by tonic itself); the [`Exporter`] does the rest. Rejected items are reported in
//! `partial_success`; storage overload is `UNAVAILABLE`, which OTLP exporters retry.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::export::Exporter;
use crate::signal::{Logs, Metrics, OtlpSignal, Traces};
use crate::telemetry::{self, Protocol};

/// The three OTLP services, ready to be served by a tonic server.
pub(crate) fn routes(exporter: Arc<Exporter>) -> Routes {
    let max = exporter.config().max_body_bytes;
    let receiver = Arc::new(GrpcReceiver { exporter });
    let traces = TraceServiceServer::from_arc(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let metrics = MetricsServiceServer::from_arc(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let logs = LogsServiceServer::from_arc(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    Routes::new(traces).add_service(metrics).add_service(logs)
}

/// Implements the three OTLP collector services over one [`Exporter`].
struct GrpcReceiver {
    exporter: Arc<Exporter>,
}

impl GrpcReceiver {
    async fn handle<S: OtlpSignal>(&self, request: S::Request) -> Result<S::Response, Status> {
        // tonic has already decompressed the message: this is its decoded size.
        let size = request.encoded_len();
        telemetry::record_bytes(S::NAME, Protocol::Grpc, size);
        let result = self
            .exporter
            .export::<S>(Protocol::Grpc, size, move || Ok(request))
            .await;
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(error) => error.grpc_code(),
        };
        telemetry::record_request(
            S::NAME,
            Protocol::Grpc,
            telemetry::grpc_code_label(code).to_owned(),
        );
        match result {
            Ok(outcome) => Ok(S::response(outcome.rejected, outcome.message)),
            Err(error) => {
                error.log();
                Err(error.to_grpc_status())
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.handle::<Traces>(request.into_inner())
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.handle::<Metrics>(request.into_inner())
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl LogsService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.handle::<Logs>(request.into_inner())
            .await
            .map(Response::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
}
