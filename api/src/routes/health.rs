//! `GET /health`: whether the API can reach PostgreSQL and Kafka.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// How long each dependency check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Returns 200 when every dependency responds, else 503 with an `error` that names the ones down.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (postgres, kafka) = tokio::join!(check_postgres(&state), check_kafka(&state));
    let mut down = Vec::new();
    if let Err(reason) = &postgres {
        down.push(format!("PostgreSQL is down: {reason}"));
    }
    if let Err(reason) = &kafka {
        down.push(format!("Kafka is down: {reason}"));
    }

    let body = json!({
        "status": if down.is_empty() { "ok" } else { "unavailable" },
        "dependencies": {
            "postgresql": dependency_json(&postgres),
            "kafka": dependency_json(&kafka),
        },
        "error": if down.is_empty() { None } else { Some(down.join("; ")) },
    });
    if down.is_empty() {
        (StatusCode::OK, Json(body))
    } else {
        tracing::warn!(problems = %down.join("; "), "health check failed");
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

fn dependency_json(result: &Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({ "ok": true }),
        Err(reason) => json!({ "ok": false, "error": reason }),
    }
}

async fn check_postgres(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, rfo_common::db::ping(&state.pool)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

async fn check_kafka(state: &AppState) -> Result<(), String> {
    let queue = state.queue.clone();
    tokio::task::spawn_blocking(move || queue.check(CHECK_TIMEOUT))
        .await
        .map_err(|e| format!("check did not finish: {e}"))?
        .map_err(|e| e.to_string())
}
