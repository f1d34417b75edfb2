//! The error every route returns, mapped to HTTP in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request that could not be served. The body is `{"error": "..."}` with a message that states
/// what to change.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body could not be read, usually because it is larger than the limit.
    #[error("{0}")]
    TooLarge(String),
    /// The request did not finish in time, usually because its body arrived too slowly.
    #[error("{0}")]
    Timeout(String),
    /// A dependency is unreachable; the client may retry.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<rfo_common::db::DbError> for ApiError {
    fn from(error: rfo_common::db::DbError) -> Self {
        // The cause goes to the log only: it can name tables, columns and hosts.
        tracing::error!(error = %error, "database request failed");
        Self::Unavailable("PostgreSQL is unavailable; retry later".to_owned())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        // The message is logged in its quoted form, because it can contain text from the
        // request. A 503's cause, when there is one, was logged where it arose.
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = ?message, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), error = ?message, "request rejected");
        }
        (status, Json(json!({ "error": message }))).into_response()
    }
}
