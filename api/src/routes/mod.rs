//! The HTTP routes, one module per endpoint.

mod health;
mod jobs;
mod plugins;
mod recent;
mod submit;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

/// Largest request body accepted; a job request is a few hundred bytes.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

async fn not_found(uri: axum::http::Uri) -> crate::error::ApiError {
    crate::error::ApiError::NotFound(format!(
        "no endpoint at {}; rfo serves POST /submit, GET /recent, GET /jobs/{{id}}, GET /plugins \
         and GET /health",
        uri.path()
    ))
}

async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> crate::error::ApiError {
    crate::error::ApiError::MethodNotAllowed(format!(
        "{method} is not allowed on {}; see the Allow header for the methods it accepts",
        uri.path()
    ))
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/submit", post(submit::submit))
        .route("/recent", get(recent::recent))
        .route("/jobs/{id}", get(jobs::job))
        .route("/plugins", get(plugins::plugins))
        .route("/health", get(health::health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
