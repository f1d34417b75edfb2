//! The dead-letter topic: where a worker puts a message it could not process, so that nothing
//! accepted is dropped. Two kinds of message go there:
//!
//! - a message on the jobs topic that is not a job (no payload, or not a job's JSON);
//! - a job that failed only because S3 kept failing, so that an operator can submit it again
//!   once S3 is back.
//!
//! Each record keeps the original key and payload (only their first bytes when they are larger
//! than a broker takes) and adds headers that give the reason and the original position. The worker commits the original offset only after the broker acknowledged
//! the dead letter (acks=all), so a crash in between can produce a dead letter twice but never
//! loses one.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rfo_common::kafka::KafkaConfig;

/// Header naming why the message is on the dead-letter topic.
pub const REASON_HEADER: &str = "rfo-reason";
/// Header with the original `topic/partition/offset`.
pub const SOURCE_HEADER: &str = "rfo-source";
/// Header with the id of the worker that gave up on the message.
pub const WORKER_HEADER: &str = "rfo-worker";
/// Header with the time the worker gave up, in RFC 3339.
pub const FAILED_AT_HEADER: &str = "rfo-failed-at";
/// Header with the original payload's size in bytes, present when the payload was cut.
pub const ORIGINAL_BYTES_HEADER: &str = "rfo-original-bytes";
/// Header with the original key's size in bytes, present when the key was cut.
pub const ORIGINAL_KEY_BYTES_HEADER: &str = "rfo-original-key-bytes";

/// Largest payload kept whole. Producers reject messages over `message.max.bytes` (librdkafka's
/// default is 1,000,000 bytes), and a dead letter that can never be produced would block its
/// partition's commits, so a longer payload keeps only its first this many bytes.
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;

/// Largest key kept whole, for the same reason. Job keys are 36-byte job ids.
pub const MAX_KEY_BYTES: usize = 4 * 1024;

/// The position of a dead letter on the jobs topic.
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// A producer for the dead-letter topic.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    worker_id: String,
}

impl DeadLetters {
    pub fn new(config: &KafkaConfig, worker_id: &str) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: config.producer_config().create()?,
            topic: config.dead_letter_topic.clone(),
            worker_id: worker_id.to_owned(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces one dead letter and waits until every in-sync replica has it.
    pub async fn send(
        &self,
        source: &Source<'_>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        reason: &str,
    ) -> Result<(), KafkaError> {
        let origin = format!("{}/{}/{}", source.topic, source.partition, source.offset);
        let failed_at = chrono::Utc::now().to_rfc3339();
        let mut headers = OwnedHeaders::new();
        for (name, value) in [
            (REASON_HEADER, reason),
            (SOURCE_HEADER, origin.as_str()),
            (WORKER_HEADER, self.worker_id.as_str()),
            (FAILED_AT_HEADER, failed_at.as_str()),
        ] {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }

        let (payload, headers) = cut(payload, MAX_PAYLOAD_BYTES, ORIGINAL_BYTES_HEADER, headers);
        let (key, headers) = cut(key, MAX_KEY_BYTES, ORIGINAL_KEY_BYTES_HEADER, headers);
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }

        self.producer
            .send(record, Timeout::After(Duration::from_secs(15)))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}

/// Returns the first `max` bytes of `bytes`, and `headers` with `size_header` set to the original
/// size when that cut anything.
fn cut<'a>(
    bytes: Option<&'a [u8]>,
    max: usize,
    size_header: &str,
    headers: OwnedHeaders,
) -> (Option<&'a [u8]>, OwnedHeaders) {
    match bytes {
        Some(bytes) if bytes.len() > max => {
            let headers = headers.insert(Header {
                key: size_header,
                value: Some(&bytes.len().to_string()),
            });
            (Some(&bytes[..max]), headers)
        }
        _ => (bytes, headers),
    }
}
