//! A small client for rfo's HTTP API, with the response shapes the demo reads.
//!
//! Fields the demo does not show are left out, and most fields are optional, so the demo keeps
//! working while the API gains fields.

use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Time allowed for one HTTP request to the API.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Body of `POST /submit`.
#[derive(Debug, Serialize)]
struct SubmitRequest<'a> {
    image_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<&'a str>,
}

/// Body of a 202 response to `POST /submit`.
#[derive(Debug, Deserialize)]
struct SubmitResponse {
    job_id: String,
}

/// Body of every 4xx and 5xx response.
#[derive(Debug, Deserialize)]
struct ErrorResponse {
    error: String,
}

/// A job as `GET /jobs/{id}` returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub status: JobStatus,
    /// RFC 3339 time the API accepted the job.
    pub created_at: Option<String>,
    /// RFC 3339 time of the last status change.
    pub updated_at: Option<String>,
    pub overlay_key: Option<String>,
    #[serde(default)]
    pub detections: Vec<Detection>,
    pub plugin: Option<PluginUsed>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Processing,
    Done,
    Failed,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Detection {
    pub label: String,
}

/// The plugin a job asked for and the one that ran it.
#[derive(Debug, Clone, Deserialize)]
pub struct PluginUsed {
    pub requested: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// Client for one rfo API base URL such as `http://127.0.0.1:8080`.
pub struct ApiClient {
    base_url: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // The API runs on loopback, so an HTTP_PROXY meant for other hosts must not apply.
            .no_proxy()
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// Submits one image and returns the job id.
    pub async fn submit(&self, image_key: &str, plugin: Option<&str>) -> anyhow::Result<String> {
        let url = format!("{}/submit", self.base_url);
        let response = self
            .http
            .post(&url)
            .json(&SubmitRequest { image_key, plugin })
            .send()
            .await
            .with_context(|| {
                format!("failed to reach the rfo API at {url}: is rfo-api running?")
            })?;
        let status = response.status();
        if status != reqwest::StatusCode::ACCEPTED {
            let message = error_message(response).await;
            anyhow::bail!("POST {url} for {image_key} returned {status}: {message}");
        }
        let body: SubmitResponse = response
            .json()
            .await
            .with_context(|| format!("invalid JSON in the response to POST {url}"))?;
        Ok(body.job_id)
    }

    /// Fetches one job, or returns `Ok(None)` when the API has no job with that id (yet).
    pub async fn job(&self, job_id: &str) -> anyhow::Result<Option<Job>> {
        let url = format!("{}/jobs/{job_id}", self.base_url);
        let response = self.http.get(&url).send().await.with_context(|| {
            format!("failed to reach the rfo API at {url}: is rfo-api running?")
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let message = error_message(response).await;
            anyhow::bail!("GET {url} returned {status}: {message}");
        }
        let job = response
            .json()
            .await
            .with_context(|| format!("invalid job JSON from GET {url}"))?;
        Ok(Some(job))
    }
}

/// Returns the `error` field of an error response, or its raw text if it is not the usual JSON.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorResponse>(&text) {
        Ok(body) => body.error,
        Err(_) if text.is_empty() => "(empty body)".to_owned(),
        Err(_) => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_parses_the_api_contract() {
        let text = r#"{
            "job_id": "0196f7a0-0000-7000-8000-000000000001",
            "created_at": "2025-01-01T10:00:00.000Z",
            "updated_at": "2025-01-01T10:00:00.250Z",
            "image_key": "leg.dcm",
            "status": "done",
            "overlay_key": "leg.overlay.png",
            "box": {"x": 1, "y": 2, "width": 3, "height": 4},
            "detections": [{"label": "metal", "score": 0.9,
                            "box": {"x": 1, "y": 2, "width": 3, "height": 4}}],
            "plugin": {"requested": null, "name": "foreign-object", "version": "0.1.0",
                       "sha256": "ab"},
            "error": null,
            "attempts": 1,
            "timings_ms": {"fetch": 1, "decode": 2}
        }"#;

        let job: Job = serde_json::from_str(text).unwrap();

        assert_eq!(job.status, JobStatus::Done);
        assert_eq!(job.overlay_key.as_deref(), Some("leg.overlay.png"));
        assert_eq!(job.detections.len(), 1);
        assert_eq!(job.detections[0].label, "metal");
        let plugin = job.plugin.unwrap();
        assert_eq!(plugin.name.as_deref(), Some("foreign-object"));
        assert_eq!(plugin.version.as_deref(), Some("0.1.0"));
    }

    #[test]
    fn queued_job_parses_with_nulls() {
        let text = r#"{"job_id": "x", "status": "queued", "overlay_key": null,
                       "detections": [], "plugin": {"requested": "foreign-object",
                       "name": null, "version": null, "sha256": null}, "error": null,
                       "timings_ms": null}"#;

        let job: Job = serde_json::from_str(text).unwrap();

        assert_eq!(job.status, JobStatus::Queued);
        assert!(!job.status.is_final());
        assert_eq!(
            job.plugin.unwrap().requested.as_deref(),
            Some("foreign-object")
        );
    }
}
