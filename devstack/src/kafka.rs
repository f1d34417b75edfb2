//! librdkafka's mock cluster: Kafka brokers inside this process, listening on loopback.
//!
//! The mock cluster (rdkafka 0.39, librdkafka 2.12) speaks the Kafka protocol well enough for
//! producers, consumer groups and offset commits, but it is marked experimental and has limits
//! that rfo's tests must live with:
//! - Brokers listen on 127.0.0.1 at ports the OS picks; librdkafka offers no way to choose them.
//! - CreateTopics is not implemented. A topic a client names that does not exist yet is created
//!   on first use with 4 partitions.
//! - A new consumer group's first join waits about 3 s (the group's initial rebalance delay).
//! - An empty Fetch is held for the consumer's whole `fetch.wait.max.ms`, even when a message
//!   arrives meanwhile, so clients here should lower that setting.
//! - Everything is in memory and lost when the process exits.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, bail};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A topic to create at start, written `NAME:PARTITIONS` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
}

impl FromStr for TopicSpec {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        let Some((name, partitions)) = text.split_once(':') else {
            bail!("invalid topic {text:?}: expected NAME:PARTITIONS, for example rfo-jobs:4");
        };
        let valid_name = !name.is_empty()
            && name.len() <= 249
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_name {
            bail!("invalid topic name {name:?}: use 1 to 249 of a-z, A-Z, 0-9, '.', '_', '-'");
        }
        let partitions: i32 = partitions
            .parse()
            .with_context(|| format!("invalid partition count {partitions:?} in topic {text:?}"))?;
        if !(1..=1000).contains(&partitions) {
            bail!("invalid partition count {partitions} in topic {text:?}: expected 1 to 1000");
        }
        Ok(Self {
            name: name.to_owned(),
            partitions,
        })
    }
}

impl fmt::Display for TopicSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.partitions)
    }
}

/// A running mock cluster. The brokers stop when this is dropped.
pub struct MockKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl MockKafka {
    /// Starts `brokers` brokers and creates `topics` with a replication factor of
    /// `min(3, brokers)`.
    pub fn start(brokers: i32, topics: &[TopicSpec]) -> anyhow::Result<Self> {
        let cluster = MockCluster::new(brokers).with_context(|| {
            format!("failed to start a Kafka mock cluster of {brokers} brokers")
        })?;
        let replication_factor = brokers.min(3);
        for topic in topics {
            cluster
                .create_topic(&topic.name, topic.partitions, replication_factor)
                .with_context(|| format!("failed to create topic {topic} on the mock cluster"))?;
        }
        Ok(Self { cluster })
    }

    /// Returns the `bootstrap.servers` list, for example `127.0.0.1:40123`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_spec_parses_name_and_partitions() {
        let spec: TopicSpec = "rfo-jobs:4".parse().unwrap();
        assert_eq!(spec.name, "rfo-jobs");
        assert_eq!(spec.partitions, 4);
        assert_eq!(spec.to_string(), "rfo-jobs:4");
    }

    #[test]
    fn topic_spec_rejects_malformed_input() {
        for text in [
            "rfo-jobs",
            ":4",
            "rfo jobs:4",
            "rfo-jobs:0",
            "rfo-jobs:x",
            "a/b:1",
        ] {
            assert!(text.parse::<TopicSpec>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn mock_cluster_creates_requested_topics() {
        use rdkafka::ClientConfig;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use std::time::Duration;

        let topics = [
            TopicSpec {
                name: "jobs".into(),
                partitions: 4,
            },
            TopicSpec {
                name: "jobs-dlq".into(),
                partitions: 1,
            },
        ];
        let kafka = MockKafka::start(1, &topics).unwrap();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .create()
            .unwrap();

        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .unwrap();
        let count = |name: &str| {
            metadata
                .topics()
                .iter()
                .find(|topic| topic.name() == name)
                .map(|topic| topic.partitions().len())
        };
        assert_eq!(count("jobs"), Some(4));
        assert_eq!(count("jobs-dlq"), Some(1));
    }
}
