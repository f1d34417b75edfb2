//! Logging setup for rfo's binaries.
//!
//! Logs go to standard error, one line per event. `RUST_LOG` sets the filter (default `info`),
//! and the targets in [`QUIET`] stay at warnings unless it names them. `RFO_LOG_FORMAT=json`
//! switches to JSON lines for log shippers.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Targets kept at warnings, because at info they log every call or every image. They stay
/// quiet under any `RUST_LOG` that does not name them (`RUST_LOG=jpeg2k=info` does).
const QUIET: [&str; 7] = [
    "wasmtime",
    "cranelift",
    "aws_config",
    "aws_smithy_runtime",
    "jpeg2k",
    "refinery_core",
    "tokio_postgres",
];

/// Returns the filter directives for `RUST_LOG` = `requested`: the quiet targets at `warn`
/// unless `requested` names them, then `requested` itself, by default `info`.
fn directives(requested: &str) -> String {
    let requested = if requested.trim().is_empty() {
        "info"
    } else {
        requested
    };
    let mut directives: Vec<String> = QUIET
        .iter()
        .filter(|target| !requested.contains(*target))
        .map(|target| format!("{target}=warn"))
        .collect();
    directives.push(requested.to_owned());
    directives.join(",")
}

pub fn init() {
    let requested = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = EnvFilter::try_new(directives(&requested)).unwrap_or_else(|error| {
        eprintln!("RUST_LOG={requested:?} is not a valid log filter ({error}); using info");
        EnvFilter::new(directives(""))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_default_to_info_with_quiet_targets() {
        let directives = directives("");
        assert!(directives.starts_with("wasmtime=warn,"), "{directives}");
        assert!(directives.ends_with(",info"), "{directives}");
    }

    #[test]
    fn directives_keep_quiet_targets_under_debug() {
        assert!(directives("debug").contains("jpeg2k=warn"));
    }

    #[test]
    fn directives_let_named_target_through() {
        let directives = directives("info,jpeg2k=info");
        assert!(!directives.contains("jpeg2k=warn"), "{directives}");
        assert!(directives.contains("wasmtime=warn"), "{directives}");
    }
}
