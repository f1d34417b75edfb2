//! Broker settings shared by the API's producer and the worker's consumer.
//!
//! With `KAFKA_USER` set, clients log in with SASL/SCRAM-SHA-512 over TLS, which is what Amazon
//! MSK expects on its SCRAM listener (port 9096). Without it they connect in plain text, as to the
//! local broker.

use rdkafka::ClientConfig;

use crate::config::{ConfigError, Env, optional, parsed_optional, required};

/// The topic jobs are produced to when `KAFKA_TOPIC` is unset.
pub const DEFAULT_TOPIC: &str = "rfo-jobs";

/// The consumer group workers join when `KAFKA_GROUP` is unset.
pub const DEFAULT_GROUP: &str = "rfo-workers";

/// The suffix that makes the dead-letter topic's name from the jobs topic's when
/// `KAFKA_DEAD_LETTER_TOPIC` is unset: `rfo-jobs` gives `rfo-jobs-dead-letter`.
pub const DEAD_LETTER_SUFFIX: &str = "-dead-letter";

/// Connection settings for the Kafka-protocol broker.
#[derive(Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]` from `KAFKA_BOOTSTRAP`.
    pub bootstrap: String,
    /// SASL/SCRAM login from `KAFKA_USER` and `KAFKA_PASS`.
    pub login: Option<(String, String)>,
    /// `KAFKA_TOPIC`, default [`DEFAULT_TOPIC`].
    pub topic: String,
    /// `KAFKA_GROUP`, default [`DEFAULT_GROUP`].
    pub group: String,
    /// `KAFKA_DEAD_LETTER_TOPIC`, default the jobs topic followed by [`DEAD_LETTER_SUFFIX`]:
    /// where workers put messages they could not process.
    pub dead_letter_topic: String,
    /// `KAFKA_FETCH_WAIT_MAX_MS`: librdkafka's `fetch.wait.max.ms`. Unset keeps librdkafka's
    /// default (500 ms); the local mock broker delays every empty fetch that long, so the local
    /// stack sets it low.
    pub fetch_wait_max_ms: Option<u32>,
    /// `KAFKA_SESSION_TIMEOUT_MS`: librdkafka's `session.timeout.ms` (default 45,000), how long
    /// the group waits for a silent worker before giving its partitions to others.
    pub session_timeout_ms: Option<u32>,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("bootstrap", &self.bootstrap)
            .field("user", &self.login.as_ref().map(|(user, _)| user))
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("fetch_wait_max_ms", &self.fetch_wait_max_ms)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .finish()
    }
}

impl KafkaConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let bootstrap = required(
            env,
            "KAFKA_BOOTSTRAP",
            "the broker list, host:port[,host:port]",
        )?;
        if bootstrap.split(',').any(|b| !b.trim().contains(':')) {
            return Err(ConfigError::new(
                "KAFKA_BOOTSTRAP",
                format!(
                    "is {bootstrap:?}: expected host:port[,host:port], for example 127.0.0.1:9092"
                ),
            ));
        }
        let login = match optional(env, "KAFKA_USER") {
            None => None,
            Some(user) => {
                let pass = required(env, "KAFKA_PASS", "the SCRAM password of KAFKA_USER")?;
                Some((user, pass))
            }
        };
        let topic = optional(env, "KAFKA_TOPIC").unwrap_or_else(|| DEFAULT_TOPIC.to_owned());
        let dead_letter_topic = optional(env, "KAFKA_DEAD_LETTER_TOPIC")
            .unwrap_or_else(|| format!("{topic}{DEAD_LETTER_SUFFIX}"));
        if dead_letter_topic == topic {
            // Dead letters would come back as jobs and be dead-lettered again, for ever.
            return Err(ConfigError::new(
                "KAFKA_DEAD_LETTER_TOPIC",
                format!("is {dead_letter_topic:?}, the same as KAFKA_TOPIC: give it another name"),
            ));
        }
        Ok(Self {
            bootstrap,
            login,
            topic,
            dead_letter_topic,
            group: optional(env, "KAFKA_GROUP").unwrap_or_else(|| DEFAULT_GROUP.to_owned()),
            fetch_wait_max_ms: parsed_optional(env, "KAFKA_FETCH_WAIT_MAX_MS", "milliseconds")?,
            session_timeout_ms: parsed_optional(env, "KAFKA_SESSION_TIMEOUT_MS", "milliseconds")?,
        })
    }

    /// Returns the settings every client needs: brokers and, when configured, the SCRAM login.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        if let Some((user, pass)) = &self.login {
            config
                .set("security.protocol", "SASL_SSL")
                .set("sasl.mechanisms", "SCRAM-SHA-512")
                .set("sasl.username", user)
                .set("sasl.password", pass);
        }
        config
    }

    /// Producer settings: every message is acknowledged by all in-sync replicas, and the
    /// idempotent producer keeps retries from writing duplicates.
    ///
    /// Each produce waits for its acknowledgement while a client waits for the response, so
    /// `linger.ms` is 1 rather than librdkafka's default of 5. With 5, every `POST /submit`
    /// waited about 5 ms for a batch to fill.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "10000");
        config
    }

    /// Consumer settings: offsets are committed by the worker only after a job is recorded.
    pub fn consumer_config(&self, max_poll_interval_ms: u32) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("max.poll.interval.ms", max_poll_interval_ms.to_string());
        if let Some(wait) = self.fetch_wait_max_ms {
            config.set("fetch.wait.max.ms", wait.to_string());
        }
        if let Some(timeout) = self.session_timeout_ms {
            config.set("session.timeout.ms", timeout.to_string());
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn user_switches_to_sasl_ssl_scram() {
        let env = HashMap::from([
            ("KAFKA_BOOTSTRAP", "b-1.example:9096"),
            ("KAFKA_USER", "rfo"),
            ("KAFKA_PASS", "secret"),
        ]);
        let config = KafkaConfig::from_env(&env).unwrap().client_config();
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("rfo"));
    }

    #[test]
    fn user_without_password_is_rejected() {
        let env = HashMap::from([("KAFKA_BOOTSTRAP", "b:9096"), ("KAFKA_USER", "rfo")]);
        let err = KafkaConfig::from_env(&env).unwrap_err();
        assert_eq!(err.var, "KAFKA_PASS");
    }

    #[test]
    fn no_user_means_plain_text() {
        let env = HashMap::from([("KAFKA_BOOTSTRAP", "127.0.0.1:9092")]);
        let config = KafkaConfig::from_env(&env).unwrap();
        assert_eq!(config.client_config().get("security.protocol"), None);
        assert_eq!(config.topic, "rfo-jobs");
        assert_eq!(config.group, "rfo-workers");
        assert_eq!(config.dead_letter_topic, "rfo-jobs-dead-letter");
    }

    #[test]
    fn dead_letter_topic_follows_jobs_topic() {
        let env = HashMap::from([("KAFKA_BOOTSTRAP", "b:9092"), ("KAFKA_TOPIC", "scans")]);
        let config = KafkaConfig::from_env(&env).unwrap();
        assert_eq!(config.dead_letter_topic, "scans-dead-letter");
    }

    #[test]
    fn dead_letter_topic_same_as_jobs_rejected() {
        let env = HashMap::from([
            ("KAFKA_BOOTSTRAP", "b:9092"),
            ("KAFKA_TOPIC", "scans"),
            ("KAFKA_DEAD_LETTER_TOPIC", "scans"),
        ]);
        let err = KafkaConfig::from_env(&env).unwrap_err();
        assert_eq!(err.var, "KAFKA_DEAD_LETTER_TOPIC");
    }

    #[test]
    fn bootstrap_without_port_is_rejected() {
        let env = HashMap::from([("KAFKA_BOOTSTRAP", "localhost")]);
        assert_eq!(
            KafkaConfig::from_env(&env).unwrap_err().var,
            "KAFKA_BOOTSTRAP"
        );
    }

    #[test]
    fn debug_output_hides_password() {
        let env = HashMap::from([
            ("KAFKA_BOOTSTRAP", "b:9096"),
            ("KAFKA_USER", "rfo"),
            ("KAFKA_PASS", "hunter2"),
        ]);
        let text = format!("{:?}", KafkaConfig::from_env(&env).unwrap());
        assert!(!text.contains("hunter2"), "{text}");
    }
}
