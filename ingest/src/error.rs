//! The crate's error type and the one place it is mapped to HTTP and gRPC statuses.
//!
//! | error                                   | HTTP | gRPC                 | client retries? |
//! |-----------------------------------------|------|----------------------|-----------------|
//! | unsupported content type / encoding     | 415  | INVALID_ARGUMENT     | no              |
//! | body too large (compressed or not)      | 413  | RESOURCE_EXHAUSTED   | no (no RetryInfo) |
//! | unreadable body, bad gzip, protobuf, JSON | 400 | INVALID_ARGUMENT    | no              |
//! | storage overloaded, shutting down       | 503 + `Retry-After` | UNAVAILABLE | yes      |
//! | other storage failure, internal error   | 500  | INTERNAL             | no              |
//!
//! HTTP error bodies are a `google.rpc.Status` (code and message) in the request's encoding.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lumen_storage::StorageError;
use prost::Message as _;

/// Retry-After sent when the storage engine is shutting down (it names no delay of its own).
const SHUTDOWN_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Everything that can make an export request fail as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The `Content-Type` is neither OTLP protobuf nor OTLP JSON.
    #[error("unsupported content type {0:?}: send application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    /// The `Content-Encoding` is not one this receiver decodes.
    #[error("unsupported content encoding {0:?}: send gzip or no Content-Encoding")]
    UnsupportedContentEncoding(String),
    /// The body as received is larger than the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body decompresses to more than the configured limit.
    #[error("request body decompresses to more than the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body could not be read from the connection.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// `Content-Encoding: gzip` with a body that is not valid gzip.
    #[error("invalid gzip body: {0}")]
    InvalidGzip(String),
    /// The body is not valid Snappy (remote write).
    #[error("invalid Snappy body: {0}")]
    InvalidSnappy(String),

    /// The body is not a valid protobuf export request.
    #[error("invalid protobuf body: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The body is not a valid OTLP/JSON export request.
    #[error("invalid OTLP/JSON body: {0}")]
    Json(String),
    /// The storage engine refuses writes for now; the client should retry later.
    #[error("overloaded ({reason}); retry after {}s", retry_after_secs(*.retry_after))]
    Overloaded {
        /// Why the write was refused.
        reason: String,
        /// When the client should retry.
        retry_after: Duration,
    },
    /// The server is shutting down; the client should retry later.
    #[error("shutting down; retry after {}s", SHUTDOWN_RETRY_AFTER.as_secs())]
    ShuttingDown,
    /// The storage engine failed for another reason (details are logged, not sent).
    #[error("storage error; see the server log")]
    Storage(#[source] StorageError),
    /// A bug or an unexpected failure inside the receiver (details are logged, not sent).
    #[error("internal error; see the server log")]
    Internal(String),
}

impl From<StorageError> for IngestError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Overloaded {
                reason,
                retry_after,
            } => IngestError::Overloaded {
                reason,
                retry_after,
            },
            StorageError::ShuttingDown => IngestError::ShuttingDown,
            other => IngestError::Storage(other),
        }
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
fn retry_after_secs(delay: Duration) -> u64 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    secs.max(1)
}

impl IngestError {
    /// The HTTP status this error is answered with.
    pub fn http_status(&self) -> StatusCode {
        match self {
            IngestError::UnsupportedContentType(_) | IngestError::UnsupportedContentEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            IngestError::BodyTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::BodyRead(_)
            | IngestError::InvalidGzip(_)
            | IngestError::InvalidSnappy(_)
            | IngestError::Protobuf(_)
            | IngestError::Json(_) => StatusCode::BAD_REQUEST,
            IngestError::Overloaded { .. } | IngestError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            IngestError::Storage(_) | IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status code this error is answered with (also the `code` of HTTP error bodies).
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            IngestError::UnsupportedContentType(_)
            | IngestError::UnsupportedContentEncoding(_)
            | IngestError::BodyRead(_)
            | IngestError::InvalidGzip(_)
            | IngestError::InvalidSnappy(_)
            | IngestError::Protobuf(_)
            | IngestError::Json(_) => tonic::Code::InvalidArgument,
            IngestError::BodyTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => {
                tonic::Code::ResourceExhausted
            }
            IngestError::Overloaded { .. } | IngestError::ShuttingDown => tonic::Code::Unavailable,
            IngestError::Storage(_) | IngestError::Internal(_) => tonic::Code::Internal,
        }
    }

    /// How long the client should wait before retrying, for retryable errors.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IngestError::Overloaded { retry_after, .. } => Some(*retry_after),
            IngestError::ShuttingDown => Some(SHUTDOWN_RETRY_AFTER),
            _ => None,
        }
    }

    /// Logs errors whose details stay on the server (storage and internal failures).
    pub(crate) fn log(&self) {
        match self {
            IngestError::Storage(e) => {
                tracing::error!(error = %e, "OTLP export: storage write failed")
            }
            IngestError::Internal(e) => tracing::error!(error = %e, "OTLP export failed"),
            IngestError::Overloaded { reason, .. } => {
                tracing::debug!(%reason, "OTLP export refused: storage overloaded")
            }
            _ => tracing::debug!(error = %self, "OTLP export refused"),
        }
    }

    /// The gRPC status for this error.
    pub fn to_grpc_status(&self) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), self.to_string())
    }

    /// The OTLP/HTTP response for this error: a `google.rpc.Status` body in the request's encoding
    /// (JSON when the request's encoding is unknown), with `Retry-After` when retryable.
    pub(crate) fn to_http_response(&self, json: bool) -> Response {
        let status = RpcStatus {
            code: self.grpc_code() as i32,
            message: self.to_string(),
        };
        let (content_type, body) = if json {
            let body = serde_json::json!({ "code": status.code, "message": status.message });
            ("application/json", body.to_string().into_bytes())
        } else {
            ("application/x-protobuf", status.encode_to_vec())
        };
        let mut response = (
            self.http_status(),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response();
        if let Some(delay) = self.retry_after() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(delay)),
            );
        }
        response
    }
}

impl From<IngestError> for tonic::Status {
    fn from(error: IngestError) -> Self {
        error.to_grpc_status()
    }
}

/// `google.rpc.Status` without `details`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong, for the developer who sent the request.
    #[prost(string, tag = "2")]
    pub message: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
