//! The worker's settings, read from environment variables.

use std::path::PathBuf;

use rfo_common::config::{ConfigError, Env, in_range, optional, parsed_or};
use rfo_common::db::DbConfig;
use rfo_common::kafka::KafkaConfig;
use rfo_common::s3::S3Config;

use crate::plugin::Limits;

/// A point where the worker stops itself on purpose, so tests can show that a crash at that
/// point loses no job and duplicates no row. Set with `RFO_FAULT`; never set it in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Abort after the plugin ran, before the overlay is stored.
    AbortAfterDetect,
    /// Abort after the job is recorded in PostgreSQL, before its offset is committed.
    AbortAfterRecord,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub kafka: KafkaConfig,
    pub db: DbConfig,
    pub s3: S3Config,
    /// `RFO_PLUGIN_DIR`, default `/var/lib/rfo/plugins`: the folder watched for `*.wasm`.
    pub plugin_dir: PathBuf,
    /// `RFO_COMPILE_CACHE_DIR`, default unset: where compiled plugins are cached across restarts.
    pub compile_cache_dir: Option<PathBuf>,
    /// `RFO_DEFAULT_PLUGIN`, default `foreign-object`: the plugin for jobs that name none.
    pub default_plugin: String,
    /// `RFO_CONCURRENCY`, default the number of CPUs: jobs in flight at once.
    pub concurrency: usize,
    /// `RFO_PLUGIN_DEADLINE_MS`, `RFO_PLUGIN_MEMORY_MIB`, `RFO_MAX_DETECTIONS`.
    pub limits: Limits,
    /// `KAFKA_MAX_POLL_INTERVAL_MS`, default 300,000: librdkafka's `max.poll.interval.ms`.
    pub max_poll_interval_ms: u32,
    /// `RFO_MAX_PIXELS`, default 100,000,000: larger images fail before they are decoded.
    pub max_pixels: u64,
    /// `RFO_MAX_IMAGE_MIB`, default 512: larger objects fail before they are downloaded.
    pub max_image_bytes: u64,
    /// `RFO_WORKER_ID`, default `<hostname>-<pid>`.
    pub worker_id: String,
    pub hostname: String,
    /// `RFO_SHUTDOWN_GRACE_SECS`, default 30: how long SIGTERM waits for jobs in flight.
    pub shutdown_grace_secs: u64,
    /// `RFO_FAULT`: `abort-after-detect` or `abort-after-record`, for crash tests only.
    pub fault: Option<FaultPoint>,
}

impl WorkerConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = parsed_or(env, "RFO_CONCURRENCY", cpus, "a number of jobs")?;
        let deadline_ms = parsed_or(env, "RFO_PLUGIN_DEADLINE_MS", 10_000u64, "milliseconds")?;
        let memory_mib = parsed_or(env, "RFO_PLUGIN_MEMORY_MIB", 512usize, "mebibytes")?;
        let max_detections = parsed_or(env, "RFO_MAX_DETECTIONS", 1_000usize, "a count")?;
        let max_poll_interval_ms = parsed_or(
            env,
            "KAFKA_MAX_POLL_INTERVAL_MS",
            300_000u32,
            "milliseconds",
        )?;
        let image_mib = parsed_or(env, "RFO_MAX_IMAGE_MIB", 512u64, "mebibytes")?;
        let hostname = hostname();

        let config = Self {
            kafka: KafkaConfig::from_env(env)?,
            db: DbConfig::from_env(env)?,
            s3: S3Config::from_env(env)?,
            plugin_dir: optional(env, "RFO_PLUGIN_DIR")
                .unwrap_or_else(|| "/var/lib/rfo/plugins".to_owned())
                .into(),
            compile_cache_dir: optional(env, "RFO_COMPILE_CACHE_DIR").map(PathBuf::from),
            default_plugin: optional(env, "RFO_DEFAULT_PLUGIN")
                .unwrap_or_else(|| "foreign-object".to_owned()),
            concurrency: in_range("RFO_CONCURRENCY", concurrency, 1, 256)?,
            limits: Limits {
                deadline_ms: in_range("RFO_PLUGIN_DEADLINE_MS", deadline_ms, 10, 3_600_000)?,
                memory_bytes: in_range("RFO_PLUGIN_MEMORY_MIB", memory_mib, 16, 4096)? << 20,
                max_detections: in_range("RFO_MAX_DETECTIONS", max_detections, 1, 1_000_000)?,
            },
            max_poll_interval_ms: in_range(
                "KAFKA_MAX_POLL_INTERVAL_MS",
                max_poll_interval_ms,
                1_000,
                86_400_000,
            )?,
            max_pixels: parsed_or(env, "RFO_MAX_PIXELS", 100_000_000u64, "a pixel count")?,
            max_image_bytes: in_range("RFO_MAX_IMAGE_MIB", image_mib, 1, 16_384)? << 20,
            worker_id: optional(env, "RFO_WORKER_ID")
                .unwrap_or_else(|| format!("{hostname}-{}", std::process::id())),
            hostname,
            shutdown_grace_secs: parsed_or(env, "RFO_SHUTDOWN_GRACE_SECS", 30u64, "seconds")?,
            fault: parse_fault(optional(env, "RFO_FAULT"))?,
        };
        config.check_deadline_fits_poll_interval()?;
        Ok(config)
    }

    /// The plugin deadline must stay well inside the consumer's poll interval: when every job
    /// slot is busy the worker stops polling, and a consumer that does not poll within
    /// `max.poll.interval.ms` is dropped from its group. Half the interval leaves room for the
    /// download, decode and upload around the plugin call.
    fn check_deadline_fits_poll_interval(&self) -> Result<(), ConfigError> {
        let max_deadline = u64::from(self.max_poll_interval_ms) / 2;
        if self.limits.deadline_ms > max_deadline {
            return Err(ConfigError::new(
                "RFO_PLUGIN_DEADLINE_MS",
                format!(
                    "is {} ms, more than half of KAFKA_MAX_POLL_INTERVAL_MS ({} ms): a slow plugin \
                     would make the worker drop out of its consumer group; lower the deadline to \
                     at most {max_deadline} ms or raise the poll interval",
                    self.limits.deadline_ms, self.max_poll_interval_ms
                ),
            ));
        }
        Ok(())
    }
}

fn parse_fault(raw: Option<String>) -> Result<Option<FaultPoint>, ConfigError> {
    match raw.as_deref() {
        None => Ok(None),
        Some("abort-after-detect") => Ok(Some(FaultPoint::AbortAfterDetect)),
        Some("abort-after-record") => Ok(Some(FaultPoint::AbortAfterRecord)),
        Some(other) => Err(ConfigError::new(
            "RFO_FAULT",
            format!("is {other:?}: expected abort-after-detect or abort-after-record, or unset"),
        )),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base_env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            ("DB_HOST", "127.0.0.1"),
            ("DB_USER", "app"),
            ("S3_INPUT_BUCKET", "in"),
            ("S3_OUTPUT_BUCKET", "out"),
        ])
    }

    #[test]
    fn defaults_apply() {
        let config = WorkerConfig::from_env(&base_env()).unwrap();
        assert_eq!(config.default_plugin, "foreign-object");
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.db.name, "rfoapp");
        assert_eq!(config.fault, None);
    }

    #[test]
    fn deadline_longer_than_half_poll_interval_is_rejected() {
        let mut env = base_env();
        env.insert("RFO_PLUGIN_DEADLINE_MS", "200000");
        let err = WorkerConfig::from_env(&env).unwrap_err();
        assert_eq!(err.var, "RFO_PLUGIN_DEADLINE_MS");
        assert!(
            err.to_string().contains("KAFKA_MAX_POLL_INTERVAL_MS"),
            "{err}"
        );
    }

    #[test]
    fn missing_bucket_is_named() {
        let mut env = base_env();
        env.remove("S3_OUTPUT_BUCKET");
        assert_eq!(
            WorkerConfig::from_env(&env).unwrap_err().var,
            "S3_OUTPUT_BUCKET"
        );
    }

    #[test]
    fn unknown_fault_is_rejected() {
        let mut env = base_env();
        env.insert("RFO_FAULT", "explode");
        assert_eq!(WorkerConfig::from_env(&env).unwrap_err().var, "RFO_FAULT");
    }
}
