//! The OTLP/HTTP receiver: `POST /v1/traces`, `/v1/metrics`, `/v1/logs`, protobuf or JSON, plain or
//! gzip.
//!
//! Steps of one request: content type and encoding checked (415), body read with a cap (413),
//! gunzipped with the same cap (413, or 400 when not valid gzip), decoded (400 with what failed),
//! then handed to the [`Exporter`]. The response is the `Export*ServiceResponse` in the request's
//! encoding, or a `google.rpc.Status` error body (see `error.rs` for the status codes).

use std::io::Read as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use flate2::read::MultiGzDecoder;
use prost::Message as _;

use crate::body::read_body;
use crate::error::IngestError;
use crate::export::{Exporter, Outcome};
use crate::json;
use crate::signal::{Logs, Metrics, OtlpSignal, Traces};
use crate::telemetry::{self, Protocol};

/// Content type of OTLP/HTTP protobuf bodies.
const PROTOBUF: &str = "application/x-protobuf";
/// Content type of OTLP/HTTP JSON bodies.
const JSON: &str = "application/json";

/// The routes of the OTLP/HTTP receiver.
pub(crate) fn router(exporter: Arc<Exporter>) -> Router {
    Router::new()
        .route("/v1/traces", post(export::<Traces>))
        .route("/v1/metrics", post(export::<Metrics>))
        .route("/v1/logs", post(export::<Logs>))
        .route("/api/v1/write", post(crate::remote_write::write))
        // `read_body` enforces `max_body_bytes` and answers in OTLP's error format; axum's own
        // 2 MiB default limit would otherwise answer first, with a plain-text 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(exporter)
}

/// How an OTLP/HTTP body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

async fn export<S: OtlpSignal>(
    State(exporter): State<Arc<Exporter>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match body_encoding(&headers) {
        Ok(encoding) => handle::<S>(&exporter, &headers, encoding, body)
            .await
            .map(|outcome| success_response::<S>(encoding, outcome))
            .map_err(|error| (error, encoding)),
        // The request's encoding is unknown: answer in JSON, which a person can read.
        Err(error) => Err((error, Encoding::Json)),
    };
    let response = result.unwrap_or_else(|(error, encoding)| {
        error.log();
        error.to_http_response(encoding == Encoding::Json)
    });
    telemetry::record_request(
        S::NAME,
        Protocol::Http,
        response.status().as_str().to_owned(),
    );
    response
}

async fn handle<S: OtlpSignal>(
    exporter: &Exporter,
    headers: &HeaderMap,
    encoding: Encoding,
    body: Body,
) -> Result<Outcome, IngestError> {
    let gzip = is_gzip(headers)?;
    let limit = exporter.config().max_body_bytes;
    let body = read_body(headers, body, limit).await?;
    telemetry::record_bytes(S::NAME, Protocol::Http, body.len());
    // Typical OTLP compresses 5-10x: a rough guess is enough to choose where to convert.
    let size_hint = if gzip {
        body.len().saturating_mul(8)
    } else {
        body.len()
    };
    exporter
        .export::<S>(Protocol::Http, size_hint, move || {
            decode_body::<S::Request>(&body, gzip, encoding, limit)
        })
        .await
}

/// The body's encoding from `Content-Type`, ignoring parameters such as `charset`.
pub(crate) fn body_encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let raw = headers.get(header::CONTENT_TYPE).map(|v| v.to_str());
    let Some(Ok(value)) = raw else {
        let shown = if raw.is_none() {
            "(none)"
        } else {
            "(not ASCII)"
        };
        return Err(IngestError::UnsupportedContentType(shown.to_owned()));
    };
    let mime = value.split(';').next().unwrap_or_default().trim();
    if mime.eq_ignore_ascii_case(PROTOBUF) || mime.eq_ignore_ascii_case("application/protobuf") {
        Ok(Encoding::Protobuf)
    } else if mime.eq_ignore_ascii_case(JSON) {
        Ok(Encoding::Json)
    } else {
        Err(IngestError::UnsupportedContentType(value.to_owned()))
    }
}

/// Whether the body is gzip-compressed (`Content-Encoding`); other codings are refused.
pub(crate) fn is_gzip(headers: &HeaderMap) -> Result<bool, IngestError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let coding = value.to_str().map(str::trim).unwrap_or("(not ASCII)");
    if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
        Ok(true)
    } else if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
        Ok(false)
    } else {
        Err(IngestError::UnsupportedContentEncoding(coding.to_owned()))
    }
}

/// Gunzips (when `gzip`) and decodes a request body.
pub(crate) fn decode_body<T>(
    body: &[u8],
    gzip: bool,
    encoding: Encoding,
    limit: usize,
) -> Result<T, IngestError>
where
    T: prost::Message + serde::de::DeserializeOwned + Default,
{
    let inflated;
    let bytes = if gzip {
        inflated = gunzip(body, limit)?;
        inflated.as_slice()
    } else {
        body
    };
    match encoding {
        Encoding::Protobuf => Ok(T::decode(bytes)?),
        Encoding::Json => json::decode(bytes),
    }
}

/// Decompresses a gzip body (one or more members), refusing output beyond `limit` bytes.
pub(crate) fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    if body.is_empty() {
        return Err(IngestError::InvalidGzip("empty body".to_owned()));
    }
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::InvalidGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(IngestError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

/// The `Export*ServiceResponse` in the request's encoding.
fn success_response<S: OtlpSignal>(encoding: Encoding, outcome: Outcome) -> Response {
    let body = match encoding {
        Encoding::Protobuf => S::response(outcome.rejected, outcome.message).encode_to_vec(),
        Encoding::Json => json_response::<S>(outcome).into_bytes(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// The OTLP/JSON response: `{}` when everything was accepted, else
/// `{"partialSuccess":{"rejectedSpans":"2","errorMessage":"..."}}` (int64 as a string, per the
/// proto3 JSON mapping).
pub(crate) fn json_response<S: OtlpSignal>(outcome: Outcome) -> String {
    if outcome.rejected == 0 && outcome.message.is_empty() {
        return "{}".to_owned();
    }
    let mut partial = serde_json::Map::new();
    if outcome.rejected > 0 {
        partial.insert(
            S::REJECTED_FIELD.to_owned(),
            outcome.rejected.to_string().into(),
        );
    }
    if !outcome.message.is_empty() {
        partial.insert("errorMessage".to_owned(), outcome.message.into());
    }
    serde_json::json!({ "partialSuccess": partial }).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
