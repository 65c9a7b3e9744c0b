//! The SQL HTTP API: `POST /api/v1/sql`.
//!
//! The body is either `{"query": "..."}` with `Content-Type: application/json`, or the raw SQL
//! (any other content type). `?format=json` (default), `csv` or `ndjson` picks the response
//! format (see [`super::format`]). Errors are `{"error": "...", "error_type": "..."}` with the
//! status from [`QueryError::status`].
//!
//! JSON results are collected first (their memory counted against the query memory limit), so
//! every failure gets a proper status. CSV and NDJSON stream: the first batch is awaited before
//! the response starts, so planning errors and most execution errors (aggregations, sorts, the
//! memory limit) still get their status; an error after the first rows were sent aborts the
//! response body, which clients see as a truncated transfer.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde::Deserialize;

use super::format::{OutputFormat, csv_header, csv_rows, encode_json, ndjson_rows};
use super::session::QueryEngine;
use crate::error::QueryError;

/// The query API routes, ready to be merged into the server's router.
pub fn http_router(engine: Arc<QueryEngine>) -> Router {
    Router::new()
        .route("/api/v1/sql", post(sql_handler))
        .with_state(engine)
}

#[derive(Debug, Deserialize)]
struct SqlParams {
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SqlBody {
    query: String,
}

/// `POST /api/v1/sql`.
pub(crate) async fn sql_handler(
    State(engine): State<Arc<QueryEngine>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&engine, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(
    engine: &QueryEngine,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, QueryError> {
    let format = output_format(uri)?;
    let query = query_text(headers, body)?;
    match format {
        OutputFormat::Json => {
            let output = engine.sql(&query).await?;
            // Encoding a large result is CPU work; keep it off the async workers.
            let json =
                tokio::task::spawn_blocking(move || encode_json(&output.schema, &output.batches))
                    .await
                    .map_err(|err| {
                        QueryError::Internal(format!("encoding the result failed: {err}"))
                    })?;
            Ok(with_content_type(json.into_response(), format))
        }
        OutputFormat::Csv | OutputFormat::Ndjson => stream_response(engine, &query, format).await,
    }
}

fn output_format(uri: &Uri) -> Result<OutputFormat, QueryError> {
    let Query(params) = Query::<SqlParams>::try_from_uri(uri).map_err(|rejection| {
        QueryError::BadRequest(format!(
            "invalid query parameters: {}",
            rejection.body_text()
        ))
    })?;
    params
        .format
        .as_deref()
        .map_or(Ok(OutputFormat::Json), OutputFormat::parse)
}

/// The SQL text of a request: from a JSON body when the content type says JSON, raw otherwise.
fn query_text(headers: &HeaderMap, body: &[u8]) -> Result<String, QueryError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        let parsed: SqlBody = serde_json::from_slice(body).map_err(|err| {
            QueryError::BadRequest(format!(
                "invalid JSON body (expected {{\"query\": \"...\"}}): {err}"
            ))
        })?;
        return Ok(parsed.query);
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| QueryError::BadRequest("the query is not valid UTF-8".into()))
}

async fn stream_response(
    engine: &QueryEngine,
    query: &str,
    format: OutputFormat,
) -> Result<Response, QueryError> {
    let mut stream = engine.sql_stream(query).await?;
    let schema = stream.schema();
    let first = stream.next().await.transpose()?;

    let mut head = String::new();
    if format == OutputFormat::Csv {
        head.push_str(&csv_header(&schema));
    }
    if let Some(batch) = &first {
        encode_text(format, batch, &mut head);
    }
    let rest = stream.map(move |item| match item {
        Ok(batch) => {
            let mut text = String::new();
            encode_text(format, &batch, &mut text);
            Ok(Bytes::from(text))
        }
        Err(err) => {
            tracing::warn!(error = %err, "streamed query failed after the response started");
            Err(std::io::Error::other(err.to_string()))
        }
    });
    let body = futures::stream::once(std::future::ready(Ok(Bytes::from(head)))).chain(rest);
    Ok(with_content_type(
        Body::from_stream(body).into_response(),
        format,
    ))
}

fn encode_text(format: OutputFormat, batch: &arrow::array::RecordBatch, out: &mut String) {
    match format {
        OutputFormat::Csv => csv_rows(batch, out),
        OutputFormat::Ndjson | OutputFormat::Json => ndjson_rows(batch, out),
    }
}

fn with_content_type(mut response: Response, format: OutputFormat) -> Response {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

#[cfg(test)]
mod tests;
