//! The S3 client and bucket settings.
//!
//! In production the client finds credentials and region the usual AWS way (environment,
//! profile, EC2 instance role). With `S3_ENDPOINT` set, as for the local S3-protocol server, it
//! uses path-style addressing, the region from `AWS_REGION` or `us-east-1`, and the access key
//! from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, so it never queries the instance metadata
//! service for anything.

use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};

use crate::config::{ConfigError, Env, optional, required};

/// Returns the time limits on S3 calls. The SDK sets only a connect timeout by default, so
/// without the others a stalled transfer would hold a job slot for ever.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        // One try of one call, up to the response headers of a GetObject or the whole upload
        // of an overlay.
        .operation_attempt_timeout(Duration::from_secs(20))
        // One call with the SDK's own retries.
        .operation_timeout(Duration::from_secs(45))
        .build()
}

/// Bucket names and where to reach S3.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `S3_INPUT_BUCKET`: where clients put radiographs.
    pub input_bucket: String,
    /// `S3_OUTPUT_BUCKET`: where workers write overlays.
    pub output_bucket: String,
    /// `S3_ENDPOINT`: an S3-compatible server's URL, for example `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// `AWS_REGION`, when set.
    pub region: Option<String>,
}

impl S3Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let endpoint = optional(env, "S3_ENDPOINT");
        if let Some(url) = &endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "S3_ENDPOINT",
                format!("is {url:?}: expected a URL such as http://127.0.0.1:9000"),
            ));
        }
        Ok(Self {
            input_bucket: required(
                env,
                "S3_INPUT_BUCKET",
                "the bucket radiographs are read from",
            )?,
            output_bucket: required(
                env,
                "S3_OUTPUT_BUCKET",
                "the bucket overlays are written to",
            )?,
            endpoint,
            region: optional(env, "AWS_REGION").or_else(|| optional(env, "AWS_DEFAULT_REGION")),
        })
    }

    /// Builds a client for these settings.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let Some(endpoint) = &self.endpoint else {
            let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .timeout_config(timeouts())
                .load()
                .await;
            return aws_sdk_s3::Client::new(&shared);
        };

        let region = self
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_owned());
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .force_path_style(true)
            .region(Region::new(region))
            .timeout_config(timeouts());
        if let (Ok(key), Ok(secret)) = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            builder =
                builder.credentials_provider(Credentials::new(key, secret, None, None, "env"));
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }
}
