//! The HTTP routes, one module per endpoint.

mod health;
mod jobs;
mod plugins;
mod recent;
mod submit;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

/// Largest request body accepted; a job request is a few hundred bytes.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// Time allowed for a whole request. The API's own waits end sooner (10 s for a PostgreSQL
/// connection, 15 s for the broker), so a request that takes this long is usually one whose
/// body arrives too slowly.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Gives the empty 408 that the timeout layer sends a JSON body like every other error.
async fn explain_timeout(response: Response) -> Response {
    let from_timeout_layer = response.status() == StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(header::CONTENT_TYPE);
    if !from_timeout_layer {
        return response;
    }
    crate::error::ApiError::Timeout(format!(
        "the request did not finish within {} s; send the whole body at once, then retry",
        REQUEST_TIMEOUT.as_secs()
    ))
    .into_response()
}

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
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(map_response(explain_timeout))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_answer_gets_json_body() {
        let bare = StatusCode::REQUEST_TIMEOUT.into_response();
        let response = explain_timeout(bare).await;
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("did not finish within 30 s"), "{text}");
    }

    #[tokio::test]
    async fn other_answers_pass_unchanged() {
        let response = explain_timeout(StatusCode::NO_CONTENT.into_response()).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}
