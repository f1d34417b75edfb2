//! The Kafka producer that puts jobs on the queue.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rfo_common::job::JobMessage;
use rfo_common::kafka::KafkaConfig;

pub struct JobQueue {
    producer: FutureProducer,
    topic: String,
}

impl JobQueue {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: config.producer_config().create()?,
            topic: config.topic.clone(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces a job and waits until every in-sync replica has it (acks=all).
    pub async fn send(&self, message: &JobMessage) -> Result<(), KafkaError> {
        let payload = serde_json::to_vec(message).expect("job messages serialise");
        let key = message.job_id.to_string();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
        self.producer
            .send(record, Timeout::After(Duration::from_secs(15)))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }

    /// Checks that the broker responds to a metadata request for the jobs topic. Blocks up to
    /// `timeout`, so call it off the async executor.
    pub fn check(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer
            .client()
            .fetch_metadata(Some(&self.topic), timeout)
            .map(|_| ())
    }

    /// Waits up to `timeout` for queued messages to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::error!(%error, "failed to flush the Kafka producer; some jobs may not be queued");
        }
    }
}
