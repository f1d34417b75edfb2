//! `GET /recent?n=10`: the newest jobs, newest first.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use rfo_common::db;
use rfo_common::job::JobView;

use crate::AppState;
use crate::error::ApiError;

const DEFAULT_COUNT: i64 = 10;
const MAX_COUNT: i64 = 100;

pub async fn recent(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let count = parse_count(params.get("n").map(String::as_str))?;
    Ok(Json(db::jobs::recent(&state.pool, count).await?))
}

/// Parses `n`, clamped to 1..=100; a missing `n` means 10.
fn parse_count(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_COUNT);
    };
    let n: i64 = raw.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "n is {raw:?}: expected a whole number (values outside 1 to {MAX_COUNT} are clamped)"
        ))
    })?;
    Ok(n.clamp(1, MAX_COUNT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_defaults_and_clamps() {
        assert_eq!(parse_count(None).unwrap(), 10);
        assert_eq!(parse_count(Some("0")).unwrap(), 1);
        assert_eq!(parse_count(Some("-5")).unwrap(), 1);
        assert_eq!(parse_count(Some("1000")).unwrap(), 100);
        assert_eq!(parse_count(Some("25")).unwrap(), 25);
    }

    #[test]
    fn count_rejects_non_numbers() {
        assert!(parse_count(Some("ten")).is_err());
    }
}
