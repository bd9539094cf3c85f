//! The one error type of the HTTP layer: a status, a machine code and a message, rendered
//! as `{"error":{"code","message"}}`. Client faults carry their cause; server faults are
//! logged in full and shown only as a summary.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::control::ControlError;
use crate::state::model::ConfigError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `invalid_state`, `out_of_range`.
    pub code: String,
    /// Human-readable explanation naming the field or state at fault.
    pub message: String,
}

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine code.
    pub code: &'static str,
    /// Message for the client.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` is required",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A standby refusing is its job, not a failure.
        if self.status.is_server_error() && self.code != "standby" {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::InvalidState(m) => Self::new(StatusCode::CONFLICT, "invalid_state", m),
            ControlError::Pipeline(e) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "pipeline_unavailable",
                e.to_string(),
            ),
        }
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        let code = match e {
            ConfigError::OutOfRange { .. } => "out_of_range",
            ConfigError::InvalidUrl { .. } => "invalid_url",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}
