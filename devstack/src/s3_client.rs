//! The aws-sdk-s3 client that `upload` and `demo` use, configured only from environment
//! variables so it never looks for credentials elsewhere (no profile files, no instance metadata).

use std::env;
use std::path::Path;

use anyhow::Context;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

/// S3 connection settings read from the variables `rfo-devstack serve` writes to `devstack.env`.
pub struct S3Settings {
    /// `S3_ENDPOINT`, for example `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// `AWS_REGION`, default `us-east-1`.
    pub region: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: String,
}

impl S3Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            endpoint: required_var("S3_ENDPOINT")?,
            region: env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
            access_key: required_var("AWS_ACCESS_KEY_ID")?,
            secret_key: required_var("AWS_SECRET_ACCESS_KEY")?,
        })
    }

    /// Builds a path-style client with static credentials.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let credentials = Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "rfo-devstack-env",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// Reads an environment variable that must be set and not empty.
pub fn required_var(name: &str) -> anyhow::Result<String> {
    match env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => anyhow::bail!(
            "environment variable {name} is missing: source the stack's env file first, for \
             example `. .rfo/stack.env`"
        ),
    }
}

/// Uploads one file and returns its size in bytes.
pub async fn put_file(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &Path,
) -> anyhow::Result<u64> {
    let size = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("failed to read {}", path.display()))?
        .len();
    let body = ByteStream::from_path(path)
        .await
        .with_context(|| format!("failed to open {}", path.display()))?;
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .with_context(|| format!("failed to upload {} to s3://{bucket}/{key}", path.display()))?;
    Ok(size)
}

/// Downloads one object into `path` and returns its size in bytes.
pub async fn get_file(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &Path,
) -> anyhow::Result<u64> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("failed to download s3://{bucket}/{key}"))?;
    let bytes = object
        .body
        .collect()
        .await
        .with_context(|| format!("failed to read the body of s3://{bucket}/{key}"))?
        .into_bytes();
    tokio::fs::write(path, &bytes)
        .await
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(bytes.len() as u64)
}
