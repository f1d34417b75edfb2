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
    let text = raw.trim();
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "n is {raw:?}: expected a whole number (values outside 1 to {MAX_COUNT} are clamped)"
        )));
    }
    // A whole number too long for i64 is clamped like any other out of range.
    Ok(match text.parse::<i64>() {
        Ok(n) => n.clamp(1, MAX_COUNT),
        Err(_) if text.starts_with('-') => 1,
        Err(_) => MAX_COUNT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_clamps_numbers_too_long_for_i64() {
        assert_eq!(
            parse_count(Some("99999999999999999999")).unwrap(),
            MAX_COUNT
        );
        assert_eq!(parse_count(Some("-99999999999999999999")).unwrap(), 1);
        assert!(parse_count(Some("1.5")).is_err());
        assert!(parse_count(Some("-")).is_err());
    }

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
