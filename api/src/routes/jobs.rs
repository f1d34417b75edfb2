//! `GET /jobs/{id}`: one job, from the moment it is accepted.

use axum::Json;
use axum::extract::{Path, State};
use rfo_common::db;
use rfo_common::job::JobView;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

pub async fn job(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job_id = Uuid::parse_str(&raw_id).map_err(|_| {
        ApiError::BadRequest(format!(
            "{raw_id:?} is not a job id: expected the UUID that POST /submit returned"
        ))
    })?;
    match db::jobs::find(&state.pool, job_id).await? {
        Some(job) => Ok(Json(job)),
        None => Err(ApiError::NotFound(format!("no job has id {job_id}"))),
    }
}
