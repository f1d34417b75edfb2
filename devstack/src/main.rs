//! `rfo-devstack`: the servers rfo needs, run on loopback, plus the clients that exercise them.
//!
//! - [`serve`]: runs the Kafka mock cluster ([`kafka`]) and the S3-protocol server ([`s3_server`])
//!   until SIGTERM or SIGINT, and writes their addresses to `devstack.env`.
//! - [`upload`]: copies local files into a bucket.
//! - [`demo`]: sends every radiograph in a folder through a running rfo and prints the results.
//! - [`s3_client`]: the aws-sdk-s3 client both clients use, configured from the environment.
//!
//! Amazon MSK, S3 and RDS stand-ins for development and tests only: there is no TLS, the S3
//! credentials are fixed, and nothing is durable across a restart except the S3 folder.

mod api_client;
mod demo;
mod demo_report;
mod download;
mod kafka;
mod s3_client;
mod s3_server;
mod serve;
mod upload;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "rfo-devstack", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Kafka mock cluster and the S3-protocol server in the foreground until SIGTERM or
    /// SIGINT.
    Serve(serve::ServeArgs),
    /// Upload files, or every file under a folder, to a bucket of the server in S3_ENDPOINT.
    Upload {
        /// Bucket to upload into.
        #[arg(long, env = "S3_INPUT_BUCKET")]
        bucket: String,
        /// Prefix put before every key, for example `tests/`.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Files or folders. A file's key is its name, and a file under a folder is keyed by its
        /// path relative to that folder.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Download objects, such as a job's overlay_key, from a bucket of the server in S3_ENDPOINT.
    Download {
        /// Bucket to download from.
        #[arg(long, env = "S3_OUTPUT_BUCKET")]
        bucket: String,
        /// Folder to save into; each object is saved under the last part of its key.
        #[arg(long, short = 'o', default_value = ".")]
        out_dir: PathBuf,
        /// Object keys, for example `overlays/<job_id>.png`.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Submit every radiograph in a folder to a running rfo API and wait for the results.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Upload {
                bucket,
                prefix,
                paths,
            } => upload::run(&bucket, &prefix, &paths).await,
            Command::Download {
                bucket,
                out_dir,
                keys,
            } => download::run(&bucket, &out_dir, &keys).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up one-line log events on stderr, filtered by `RUST_LOG` (default `info`).
///
/// s3s logs every request at debug level and its own internals at info, so it is held to `warn`
/// unless `RUST_LOG` names it.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,s3s=warn,s3s_fs=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .init();
}
