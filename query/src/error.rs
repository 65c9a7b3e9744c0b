//! The query layer's one error type, and the one place it is mapped to HTTP.
//!
//! DataFusion reports everything as a [`DataFusionError`], often wrapped several times (context,
//! shared errors of repartitioned streams, arrow errors carrying DataFusion errors). [`QueryError`]
//! digs out the innermost cause and sorts it into what the caller did wrong (400), what the server
//! could not afford (422 / 503) and genuine internal failures (500).

use std::path::PathBuf;
use std::time::Duration;

use arrow::error::ArrowError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::error::DataFusionError;

/// Errors returned by the query engine and its HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL does not parse, names unknown tables/columns/functions, or fails on its own values
    /// (bad cast, invalid regex, ...).
    #[error("{0}")]
    BadQuery(String),
    /// The HTTP request around the query is malformed (body, parameters).
    #[error("{0}")]
    BadRequest(String),
    /// The statement would change state (DDL, DML, COPY, SET, ...); Lumen's SQL is read-only.
    #[error("{0}")]
    ReadOnly(String),
    /// The query needs more memory than its limit allows.
    #[error("{0}")]
    ResourcesExhausted(String),
    /// The query ran longer than its time limit and was cancelled.
    #[error("query exceeded its time limit of {} and was cancelled", format_duration(*.0))]
    Timeout(Duration),
    /// Data the query was reading went away mid-query (e.g. a segment compacted away); a retry
    /// will see the new state.
    #[error("{0}")]
    Unavailable(String),
    /// A failure that is not the caller's fault (a bug, a corrupt file, an I/O error).
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    /// The machine-readable error class, as sent in the `error_type` field of HTTP error bodies.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadQuery(_) => "bad_query",
            QueryError::BadRequest(_) => "bad_request",
            QueryError::ReadOnly(_) => "read_only",
            QueryError::ResourcesExhausted(_) => "resources_exhausted",
            QueryError::Timeout(_) => "timeout",
            QueryError::Unavailable(_) => "unavailable",
            QueryError::Internal(_) => "internal",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            QueryError::BadQuery(_) | QueryError::BadRequest(_) | QueryError::ReadOnly(_) => {
                StatusCode::BAD_REQUEST
            }
            QueryError::ResourcesExhausted(_) => StatusCode::UNPROCESSABLE_ENTITY,
            QueryError::Timeout(_) | QueryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body of the HTTP error response: `{"error": "...", "error_type": "..."}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.to_string(), "error_type": self.error_type() })
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        if matches!(self, QueryError::Internal(_)) {
            tracing::error!(error = %self, "query failed with an internal error");
        }
        let status = self.status();
        let retry_after = matches!(self, QueryError::Unavailable(_));
        let mut response = (status, axum::Json(self.to_json())).into_response();
        if retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<DataFusionError> for QueryError {
    fn from(err: DataFusionError) -> Self {
        classify(&err)
    }
}

/// Why reading one segment file failed. Travels through DataFusion as
/// [`DataFusionError::External`] and is recognised again by [`QueryError::from`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum SegmentReadError {
    /// The file is gone: compaction or retention removed it after the snapshot was taken.
    #[error(
        "segment {} disappeared during the query (removed by compaction or retention); retry the query",
        .0.display()
    )]
    Missing(PathBuf),
    /// The file exists but cannot be read or decoded.
    #[error("cannot read segment {}: {message}", .path.display())]
    Unreadable {
        /// The segment file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The blocking reader task died (a panic inside the Parquet decoder).
    #[error("segment reader failed: {0}")]
    ReaderDied(String),
}

impl From<SegmentReadError> for DataFusionError {
    fn from(err: SegmentReadError) -> Self {
        DataFusionError::External(Box::new(err))
    }
}

/// Sorts a DataFusion error by its innermost cause.
fn classify(err: &DataFusionError) -> QueryError {
    let root = innermost(err);
    match root {
        DataFusionError::ResourcesExhausted(message) => {
            QueryError::ResourcesExhausted(format!("query exceeded its memory limit: {message}"))
        }
        DataFusionError::SQL(parser_error, _) => QueryError::BadQuery(parser_error.to_string()),
        DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::Execution(_) => QueryError::BadQuery(clean_message(root)),
        DataFusionError::ArrowError(arrow_error, _) => classify_arrow(arrow_error, root),
        DataFusionError::External(inner) => classify_external(inner.as_ref(), root),
        _ => QueryError::Internal(clean_message(root)),
    }
}

fn classify_arrow(arrow_error: &ArrowError, root: &DataFusionError) -> QueryError {
    match arrow_error {
        ArrowError::MemoryError(message) => {
            QueryError::ResourcesExhausted(format!("query exceeded its memory limit: {message}"))
        }
        ArrowError::ExternalError(inner) => classify_external(inner.as_ref(), root),
        ArrowError::IoError(..) | ArrowError::CDataInterface(_) => {
            QueryError::Internal(clean_message(root))
        }
        // Casts, parses, arithmetic overflow, division by zero, ...: the query's own values.
        _ => QueryError::BadQuery(clean_message(root)),
    }
}

fn classify_external(
    inner: &(dyn std::error::Error + Send + Sync + 'static),
    root: &DataFusionError,
) -> QueryError {
    match inner.downcast_ref::<SegmentReadError>() {
        Some(missing @ SegmentReadError::Missing(_)) => {
            QueryError::Unavailable(missing.to_string())
        }
        Some(other) => QueryError::Internal(other.to_string()),
        // Other external errors come from function implementations handed the query's values
        // (an invalid regular expression, say); Lumen's own failures are recognised above.
        None => QueryError::BadQuery(clean_message(root)),
    }
}

/// Unwraps context, diagnostics, shared and collected errors down to the error that says what
/// actually went wrong.
fn innermost(mut err: &DataFusionError) -> &DataFusionError {
    // Bounded so a pathological cycle cannot spin forever.
    for _ in 0..64 {
        let next = match err {
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                Some(inner.as_ref())
            }
            DataFusionError::Shared(inner) => Some(inner.as_ref()),
            DataFusionError::Collection(errors) => errors.first(),
            DataFusionError::External(inner) => downcast_datafusion(inner.as_ref()),
            DataFusionError::ArrowError(arrow_error, _) => match arrow_error.as_ref() {
                ArrowError::ExternalError(inner) => downcast_datafusion(inner.as_ref()),
                _ => None,
            },
            _ => None,
        };
        match next {
            Some(next) => err = next,
            None => break,
        }
    }
    err
}

fn downcast_datafusion<'a>(
    inner: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'a DataFusionError> {
    inner.downcast_ref::<DataFusionError>().or_else(|| {
        inner
            .downcast_ref::<std::sync::Arc<DataFusionError>>()
            .map(|e| e.as_ref())
    })
}

/// DataFusion's message without a captured backtrace.
fn clean_message(err: &DataFusionError) -> String {
    err.strip_backtrace()
}

/// `1.5s`, `30s`, `250ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
