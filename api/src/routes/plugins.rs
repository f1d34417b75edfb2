//! `GET /plugins`: the plugins that running workers have loaded.

use axum::Json;
use axum::extract::State;
use rfo_common::db;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

pub async fn plugins(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let plugins = db::workers::available(&state.pool, state.worker_freshness_secs).await?;
    Ok(Json(json!({ "plugins": plugins })))
}
