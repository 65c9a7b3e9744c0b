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
mod tests;
