//! The Prometheus API's error answer: `{"status":"error","errorType":…,"error":…}` with the
//! status code of the error type.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use crate::promql::error::PromqlError;

/// An API error: Prometheus `errorType` and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// `bad_data`, `execution`, `timeout`, `internal`, ...
    pub error_type: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    pub(super) fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            error_type: "bad_data",
            message: message.into(),
        }
    }

    /// The HTTP status of the error type.
    pub fn status(&self) -> StatusCode {
        match self.error_type {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            "canceled" => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "timeout" => StatusCode::SERVICE_UNAVAILABLE,
            "not_found" => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<PromqlError> for ApiError {
    fn from(err: PromqlError) -> Self {
        ApiError {
            error_type: err.error_type(),
            message: err.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.error_type, "error": self.message});
        json_response(self.status(), &body)
    }
}

/// A JSON body with its status.
pub(super) fn json_response(status: StatusCode, body: &Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
