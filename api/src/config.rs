//! The API's settings, read from environment variables.

use rfo_common::config::{ConfigError, Env, optional, parsed_or};
use rfo_common::db::DbConfig;
use rfo_common::kafka::KafkaConfig;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `API_HOST`, default `0.0.0.0`: the address to listen on.
    pub host: String,
    /// `API_PORT`, default 8000.
    pub port: u16,
    pub kafka: KafkaConfig,
    pub db: DbConfig,
    /// `RFO_WORKER_FRESHNESS_SECS`, default 30: how recent a worker's heartbeat must be for its
    /// plugins to count as available.
    pub worker_freshness_secs: f64,
}

impl ApiConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            host: optional(env, "API_HOST").unwrap_or_else(|| "0.0.0.0".to_owned()),
            port: parsed_or(env, "API_PORT", 8000, "a TCP port")?,
            kafka: KafkaConfig::from_env(env)?,
            db: DbConfig::from_env(env)?,
            worker_freshness_secs: parsed_or(env, "RFO_WORKER_FRESHNESS_SECS", 30.0, "seconds")?,
        })
    }
}
