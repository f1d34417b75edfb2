use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rfo_common::config::ProcessEnv;
use rfo_host::config::WorkerConfig;
use rfo_host::plugin::Limits;
use rfo_host::tools;

/// rfo: finds foreign objects in radiographs with WebAssembly detection plugins.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume jobs from Kafka and process them; configured by environment variables.
    Worker,
    /// Run or check a plugin locally, without servers.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Run a plugin on one image: print its detections and timings, write the overlay.
    Run {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        /// A PNG, JPEG or DICOM radiograph.
        image: PathBuf,
        /// Output path of the overlay PNG.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run the conformance suite on a plugin; exits non-zero if any case fails.
    Check {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Args)]
struct LimitArgs {
    /// CPU deadline per call, in milliseconds.
    #[arg(long, default_value_t = Limits::default().deadline_ms)]
    deadline_ms: u64,
    /// Memory cap per call, in MiB.
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    memory_mib: usize,
    /// Most detections a call may return.
    #[arg(long, default_value_t = Limits::default().max_detections)]
    max_detections: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            deadline_ms: self.deadline_ms,
            memory_bytes: self.memory_mib << 20,
            max_detections: self.max_detections,
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    rfo_common::telemetry::init();
    let result = match cli.command {
        Command::Worker => run_worker(),
        Command::Plugin(PluginCommand::Run {
            plugin,
            image,
            output,
            limits,
        }) => tools::run::run(&tools::run::RunOptions {
            plugin,
            image,
            output,
            limits: limits.limits(),
        })
        .map(|()| true),
        Command::Plugin(PluginCommand::Check { plugin, limits }) => {
            tools::check::check(&plugin, &limits.limits())
                .map(|results| tools::check::print_table(&plugin, &results))
        }
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_worker() -> anyhow::Result<bool> {
    let config = WorkerConfig::from_env(&ProcessEnv)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(rfo_host::worker::run(config, shutdown_signal()));
    // Jobs still running after the grace period sit on blocking threads (decoding, the plugin).
    // Dropping the runtime would wait for them; their offsets are uncommitted, so they are
    // delivered again and the process can exit now.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result?;
    Ok(true)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds on Unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested; finishing jobs in flight");
}
