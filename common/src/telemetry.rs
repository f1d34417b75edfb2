//! Logging setup for rfo's binaries.
//!
//! Logs go to standard error, one line per event. `RUST_LOG` sets the filter (default `info`);
//! `RFO_LOG_FORMAT=json` switches to JSON lines for log shippers.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,wasmtime=warn,cranelift=warn,aws_config=warn,aws_smithy_runtime=warn,jpeg2k=warn,\
             refinery_core=warn,tokio_postgres=warn",
        )
    });
    let json = std::env::var("RFO_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second call (for example from two tests in one process) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
