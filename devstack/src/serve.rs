//! `rfo-devstack serve`: runs the Kafka mock cluster and the S3-protocol server until SIGTERM or
//! SIGINT, and writes `STATE_DIR/devstack.env` once both accept connections.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::kafka::{MockKafka, TopicSpec};
use crate::s3_server::{S3Server, S3ServerConfig};

/// Name of the file, inside the state folder, that gives clients the servers' addresses.
pub const ENV_FILE_NAME: &str = "devstack.env";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder for the env file and, unless --s3-root is given, the S3 data (`STATE_DIR/s3`).
    #[arg(long)]
    state_dir: PathBuf,
    /// Folder that contains one subfolder per bucket.
    #[arg(long)]
    s3_root: Option<PathBuf>,
    /// TCP port of the S3-protocol server on 127.0.0.1, or 0 for a free one.
    #[arg(long, default_value_t = 0)]
    s3_port: u16,
    /// The one access key the S3 server accepts.
    #[arg(long, default_value = "rfo-local")]
    access_key: String,
    /// Secret for --access-key. Local use only: it is written in plain text to the env file.
    #[arg(long, default_value = "rfo-local-secret")]
    secret_key: String,
    /// Region clients sign requests for. The server accepts any.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Bucket the jobs' images are read from (created at start).
    #[arg(long, default_value = "rfo-input")]
    input_bucket: String,
    /// Bucket the overlays are written to (created at start).
    #[arg(long, default_value = "rfo-output")]
    output_bucket: String,
    /// Topics to create at start, as NAME:PARTITIONS. Repeat the flag for several.
    #[arg(long = "topic", default_values = ["rfo-jobs:4", "rfo-jobs-dlq:1"])]
    topics: Vec<TopicSpec>,
    /// Number of mock Kafka brokers. Their ports are always picked by the OS.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    brokers: i32,
    /// Value written as KAFKA_FETCH_WAIT_MAX_MS. The mock cluster delays its response to an empty
    /// fetch for the consumer's whole fetch.wait.max.ms, so a low value keeps idle consumers quick.
    #[arg(long, default_value_t = 20)]
    fetch_wait_max_ms: u32,
}

/// Runs both servers until a shutdown signal, then removes the env file and stops them.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.state_dir).with_context(|| {
        format!(
            "failed to create the state folder {}",
            args.state_dir.display()
        )
    })?;
    let env_path = args.state_dir.join(ENV_FILE_NAME);
    remove_stale_env_file(&env_path)?;

    // Register the handlers before announcing the servers, so a stop that follows the env file
    // at once is not missed.
    let mut sigterm = signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("failed to listen for SIGINT")?;

    let kafka = MockKafka::start(args.brokers, &args.topics)?;
    let bootstrap = kafka.bootstrap_servers();
    let topics = args
        .topics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    info!(bootstrap = %bootstrap, topics = ?topics, "Kafka mock cluster started");

    let s3_root = args
        .s3_root
        .clone()
        .unwrap_or_else(|| args.state_dir.join("s3"));
    let s3 = S3Server::bind(S3ServerConfig {
        root: s3_root.clone(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, args.s3_port)),
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        buckets: vec![args.input_bucket.clone(), args.output_bucket.clone()],
    })
    .await?;
    let s3_endpoint = format!("http://{}", s3.local_addr()?);
    let (stop_sender, stop_receiver) = watch::channel(false);
    let s3_task = tokio::spawn(s3.serve(stop_receiver));
    info!(endpoint = %s3_endpoint, root = %s3_root.display(), "S3 server started");

    let env_text = render_env_file(&args, &bootstrap, &s3_endpoint);
    write_atomically(&env_path, &env_text)?;
    info!(env_file = %env_path.display(), "devstack ready");

    let signal_name = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
    };
    info!(signal = signal_name, "stopping devstack");

    if let Err(error) = std::fs::remove_file(&env_path) {
        warn!(env_file = %env_path.display(), %error, "failed to remove the env file");
    }
    let _ = stop_sender.send(true);
    if let Err(error) = s3_task.await {
        warn!(%error, "S3 server task ended abnormally");
    }
    drop(kafka);
    info!("devstack stopped");
    Ok(())
}

/// Removes an env file left by a server that did not stop cleanly, so no client reads stale ports.
fn remove_stale_env_file(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            warn!(env_file = %path.display(), "removed an env file left by an earlier run");
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error)
            .with_context(|| format!("failed to remove the stale env file {}", path.display())),
    }
}

/// Renders `export NAME='VALUE'` lines that a shell can source.
fn render_env_file(args: &ServeArgs, bootstrap: &str, s3_endpoint: &str) -> String {
    let fetch_wait = args.fetch_wait_max_ms.to_string();
    let variables = [
        ("KAFKA_BOOTSTRAP", bootstrap),
        ("KAFKA_FETCH_WAIT_MAX_MS", fetch_wait.as_str()),
        ("S3_ENDPOINT", s3_endpoint),
        ("S3_INPUT_BUCKET", args.input_bucket.as_str()),
        ("S3_OUTPUT_BUCKET", args.output_bucket.as_str()),
        ("AWS_ACCESS_KEY_ID", args.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", args.secret_key.as_str()),
        ("AWS_REGION", args.region.as_str()),
        // Keeps the AWS SDK from probing the EC2 instance metadata address for credentials.
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];

    let mut text = String::from("# Written by rfo-devstack serve and removed when it stops.\n");
    for (name, value) in variables {
        let _ = writeln!(text, "export {name}={}", shell_quote(value));
    }
    text
}

/// Quotes a value for POSIX shells: single quotes, with each `'` written as `'\''`.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension("env.tmp");
    std::fs::write(&temporary, text)
        .with_context(|| format!("failed to write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("failed to move {} into place", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_escapes_single_quotes() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
