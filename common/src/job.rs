//! Jobs: the message on the queue and the record the API returns.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The message the API produces to the jobs topic, keyed by the job id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
    /// Object key in the input bucket.
    pub image_key: String,
    /// Plugin the client chose; `None` means the worker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub submitted_at: DateTime<Utc>,
}

/// Maximum length of an `image_key`, in bytes: S3's limit on key length.
pub const MAX_IMAGE_KEY_BYTES: usize = 1024;

/// Maximum length of a plugin name, in bytes.
pub const MAX_PLUGIN_NAME_BYTES: usize = 64;

/// Checks that `key` can name an S3 object and be stored in PostgreSQL: not blank, without
/// control characters, at most [`MAX_IMAGE_KEY_BYTES`].
pub fn check_image_key(key: &str) -> Result<(), String> {
    if key.trim().is_empty() {
        return Err("image_key is empty".to_owned());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!(
            "image_key contains the control character {c:?}; use printable characters only"
        ));
    }
    if key.len() > MAX_IMAGE_KEY_BYTES {
        return Err(format!(
            "image_key is {} bytes long; S3 keys are at most {MAX_IMAGE_KEY_BYTES} bytes",
            key.len()
        ));
    }
    Ok(())
}

/// Checks that `name` can be a plugin's name: 1 to 64 lowercase letters, digits and `-`.
pub fn check_plugin_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_PLUGIN_NAME_BYTES
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "plugin name {name:?} is invalid: use 1 to 64 lowercase letters, digits and '-'"
        ))
    }
}

impl JobMessage {
    /// Checks the fields a producer other than the API could have filled wrongly, so that
    /// PostgreSQL and S3 accept them.
    pub fn check(&self) -> Result<(), String> {
        check_image_key(&self.image_key)?;
        if let Some(plugin) = &self.plugin {
            check_plugin_name(plugin)?;
        }
        let year = self.submitted_at.year();
        if !(1..=9999).contains(&year) {
            return Err(format!(
                "submitted_at is in the year {year}; expected a time between the years 1 and 9999"
            ));
        }
        Ok(())
    }
}

/// The stage a job has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Accepted by the API and on the queue.
    Queued,
    /// A worker has started it.
    Processing,
    /// The overlay is stored and the detections are recorded.
    Done,
    /// It cannot succeed, and `error` contains the reason.
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(Self::Queued),
            "processing" => Some(Self::Processing),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// An axis-aligned rectangle in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// One object a plugin found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub label: String,
    /// Confidence in 0..=1.
    pub score: f32,
    #[serde(rename = "box")]
    pub region: Region,
}

/// The plugin a job asked for and the one that processed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginUse {
    pub requested: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    /// SHA-256 of the component file, hex.
    pub sha256: Option<String>,
}

/// Milliseconds a worker spent in each stage of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub fetch: f64,
    pub decode: f64,
    pub detect: f64,
    pub draw: f64,
    pub encode: f64,
    pub store: f64,
    pub record: f64,
}

/// A job as `GET /jobs/{id}` and `GET /recent` return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub image_key: String,
    pub status: JobStatus,
    pub overlay_key: Option<String>,
    /// The highest-scoring detection's box, or `None` when there is none.
    #[serde(rename = "box")]
    pub top_box: Option<Region>,
    pub detections: Vec<Detection>,
    pub plugin: PluginUse,
    pub error: Option<String>,
    /// How many times a worker has started this job, counting retries after S3 or PostgreSQL
    /// errors as well as redeliveries.
    pub attempts: i32,
    pub timings_ms: Option<StageTimings>,
}

/// Returns the output key of a job's overlay: one object per job, so that the same image submitted twice
/// never overwrites an earlier overlay.
pub fn overlay_key(job_id: Uuid) -> String {
    format!("overlays/{job_id}.png")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(image_key: &str, plugin: Option<&str>, submitted_at: &str) -> JobMessage {
        JobMessage {
            job_id: Uuid::now_v7(),
            image_key: image_key.into(),
            plugin: plugin.map(Into::into),
            submitted_at: submitted_at.parse().unwrap(),
        }
    }

    #[test]
    fn check_accepts_normal_job() {
        let job = message("scans/leg.dcm", Some("anatomy"), "2026-12-04T10:00:00Z");
        assert_eq!(job.check(), Ok(()));
    }

    #[test]
    fn check_rejects_nul_in_image_key() {
        let error = message("chest\0.png", None, "2026-12-04T10:00:00Z")
            .check()
            .unwrap_err();
        assert!(error.contains("control character"), "{error}");
    }

    #[test]
    fn check_rejects_invalid_plugin_name() {
        let error = message("a.png", Some("foreign\0object"), "2026-12-04T10:00:00Z")
            .check()
            .unwrap_err();
        assert!(error.contains("plugin name"), "{error}");
    }

    #[test]
    fn check_rejects_year_postgresql_cannot_store() {
        let error = message("a.png", None, "-200000-01-01T00:00:00Z")
            .check()
            .unwrap_err();
        assert!(error.contains("submitted_at"), "{error}");
    }

    #[test]
    fn message_round_trips_through_json() {
        let message = JobMessage {
            job_id: Uuid::now_v7(),
            image_key: "leg.dcm".into(),
            plugin: Some("anatomy".into()),
            submitted_at: Utc::now(),
        };
        let json = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<JobMessage>(&json).unwrap(), message);
    }

    #[test]
    fn message_without_plugin_parses() {
        let json = r#"{"job_id":"0190a0a0-0000-7000-8000-000000000000","image_key":"a.png","submitted_at":"2026-01-01T00:00:00Z"}"#;
        let message: JobMessage = serde_json::from_str(json).unwrap();
        assert_eq!(message.plugin, None);
    }

    #[test]
    fn status_text_round_trips() {
        for status in [
            JobStatus::Queued,
            JobStatus::Processing,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
    }
}
