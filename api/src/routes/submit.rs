//! `POST /submit`: accept a job and put it on the queue.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use chrono::Utc;
use rfo_common::db;
use rfo_common::job::{JobMessage, check_image_key, check_plugin_name};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// A validated job request.
#[derive(Debug, PartialEq)]
struct SubmitRequest {
    image_key: String,
    plugin: Option<String>,
}

/// Inserts the job's row as `queued`, then produces it and returns 202 once the broker has
/// acknowledged it, so that an accepted job is never lost.
pub async fn submit(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body is larger than {} KiB; send only {{\"image_key\": \"...\"}}, \
                 optionally with \"plugin\"",
                super::MAX_BODY_BYTES / 1024
            ))
        } else {
            ApiError::BadRequest(format!(
                "failed to read the request body: {}",
                rejection.body_text()
            ))
        }
    })?;
    let request = parse_request(&body)?;
    if let Some(plugin) = &request.plugin {
        check_plugin_available(&state, plugin).await?;
    }

    let message = JobMessage {
        job_id: Uuid::now_v7(),
        image_key: request.image_key,
        plugin: request.plugin,
        submitted_at: Utc::now(),
    };
    db::jobs::insert_queued(
        &state.pool,
        message.job_id,
        &message.image_key,
        message.plugin.as_deref(),
        message.submitted_at,
    )
    .await?;

    if let Err(error) = state.queue.send(&message).await {
        tracing::error!(job_id = %message.job_id, %error, "failed to queue job");
        let reason = format!("the broker did not accept the job: {error}");
        if let Err(db_error) = db::jobs::mark_rejected(&state.pool, message.job_id, &reason).await {
            tracing::error!(job_id = %message.job_id, error = %db_error, "failed to mark job rejected");
        }
        return Err(ApiError::Unavailable(format!(
            "Kafka did not accept the job ({error}); it was not queued, retry later"
        )));
    }

    tracing::info!(job_id = %message.job_id, image_key = %message.image_key,
        plugin = message.plugin.as_deref().unwrap_or("default"), "job queued");
    let body = json!({
        "queued": true,
        "topic": state.queue.topic(),
        "image_key": message.image_key,
        "job_id": message.job_id,
        "plugin": message.plugin,
    });
    Ok((StatusCode::ACCEPTED, Json(body)))
}

fn parse_request(body: &[u8]) -> Result<SubmitRequest, ApiError> {
    const EXAMPLE: &str = r#"send {"image_key": "chest.png"}, optionally with "plugin": "NAME""#;
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("request body is not valid JSON ({e}); {EXAMPLE}"))
    })?;
    let Value::Object(fields) = value else {
        return Err(ApiError::BadRequest(format!(
            "request body must be a JSON object; {EXAMPLE}"
        )));
    };
    // A misspelt field (say "plugn") would otherwise silently run the default plugin.
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["image_key", "plugin"].contains(&k.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "unknown field {unknown:?}; the accepted fields are image_key and plugin"
        )));
    }

    let image_key = match fields.get("image_key") {
        None | Some(Value::Null) => {
            return Err(ApiError::BadRequest(format!(
                "image_key is missing; {EXAMPLE}"
            )));
        }
        Some(Value::String(key)) => key.clone(),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "image_key must be a string, not {other}; {EXAMPLE}"
            )));
        }
    };
    if image_key.trim().is_empty() {
        return Err(ApiError::BadRequest(format!(
            "image_key is empty; {EXAMPLE}"
        )));
    }
    check_image_key(&image_key).map_err(ApiError::BadRequest)?;

    let plugin = match fields.get("plugin") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if name.trim().is_empty() => None,
        Some(Value::String(name)) => {
            let name = name.trim();
            check_plugin_name(name)
                .map_err(|e| ApiError::BadRequest(format!("{e}; GET /plugins lists them")))?;
            Some(name.to_owned())
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "plugin must be a plugin name string, not {other}; GET /plugins lists them"
            )));
        }
    };
    Ok(SubmitRequest { image_key, plugin })
}

async fn check_plugin_available(state: &AppState, plugin: &str) -> Result<(), ApiError> {
    let available = db::workers::available(&state.pool, state.worker_freshness_secs).await?;
    if available.iter().any(|p| p.name == plugin) {
        return Ok(());
    }
    let mut names: Vec<&str> = available.iter().map(|p| p.name.as_str()).collect();
    names.dedup();
    if names.is_empty() {
        // No live worker is a passing state of the service, not a fault in the request.
        return Err(ApiError::Unavailable(format!(
            "no worker is running, so plugin {plugin:?} cannot be checked; retry later or submit \
             without \"plugin\" to queue the job for the default plugin"
        )));
    }
    let list = names.join(", ");
    Err(ApiError::BadRequest(format!(
        "no running worker has plugin {plugin:?}; available plugins: {list}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_text(body: &str) -> String {
        parse_request(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn accepts_key_and_optional_plugin() {
        let request = parse_request(br#"{"image_key": "a.png", "plugin": "anatomy"}"#).unwrap();
        assert_eq!(request.image_key, "a.png");
        assert_eq!(request.plugin.as_deref(), Some("anatomy"));
        let request = parse_request(br#"{"image_key": "a.png"}"#).unwrap();
        assert_eq!(request.plugin, None);
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(error_text("{image_key").contains("not valid JSON"));
    }

    #[test]
    fn rejects_missing_empty_and_non_string_key() {
        assert!(error_text("{}").contains("image_key is missing"));
        assert!(error_text(r#"{"image_key": "  "}"#).contains("image_key is empty"));
        assert!(error_text(r#"{"image_key": 7}"#).contains("must be a string"));
        assert!(error_text("[1]").contains("JSON object"));
    }

    #[test]
    fn rejects_control_characters_in_key() {
        assert!(error_text("{\"image_key\": \"a\\u0000b\"}").contains("control character"));
        assert!(error_text("{\"image_key\": \"a\\nb\"}").contains("control character"));
    }

    #[test]
    fn rejects_unknown_fields() {
        let text = error_text(r#"{"image_key": "a.png", "plugn": "x"}"#);
        assert!(text.contains("unknown field \"plugn\""), "{text}");
    }

    #[test]
    fn rejects_overlong_key() {
        let body = format!(r#"{{"image_key": "{}"}}"#, "k".repeat(1025));
        assert!(error_text(&body).contains("at most 1024 bytes"));
    }
}
