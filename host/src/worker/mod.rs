//! The worker: consumes jobs, runs them and commits their offsets once they are recorded.
//!
//! - [`job`]: the stages of one job and how its errors are sorted.
//! - [`dead_letter`]: where messages go that are not jobs, or whose S3 objects stay unreachable.
//! - [`offsets`]: which offset may be committed while jobs finish out of order.
//! - [`presence`]: publishes the plugins this worker has loaded to PostgreSQL.
//!
//! Delivery is at least once. An offset is committed only after the job's row is final, so a
//! crash at any point makes the job run again. Every write is keyed by the job id, so the rerun
//! leaves one row.

pub mod dead_letter;
pub mod job;
pub mod offsets;
pub mod presence;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use rfo_common::job::JobMessage;
use tokio::sync::Semaphore;

use crate::config::WorkerConfig;
use crate::imaging::DecodeLimits;
use crate::plugin::registry::LoadError;
use crate::plugin::{PluginRuntime, Registry};
use dead_letter::DeadLetters;
use job::{JobContext, Outcome, Transient};
use offsets::OffsetTracker;

/// Maximum wait between retries of a job whose dependency is down.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Attempts at a job whose S3 reads or writes keep failing before it is recorded as failed.
/// With the backoff above, five attempts that fail at once span about 4 s.
const MAX_STORAGE_ATTEMPTS: u32 = 5;

/// Time after which a job whose S3 calls keep failing gets no further attempt, however few it
/// had. With the S3 time limits (45 s per call, 60 s per download), a job then ends within about
/// 3 minutes. That is inside the consumer's default poll interval of 5 minutes, so a worker
/// whose slots all wait on S3 stays in its group.
const STORAGE_RETRY_BUDGET: Duration = Duration::from_secs(120);

/// Consumer callbacks: log rebalances and forget revoked partitions' offsets.
struct WorkerContext {
    tracker: Arc<Mutex<OffsetTracker>>,
}

impl ClientContext for WorkerContext {}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let mut tracker = self
                .tracker
                .lock()
                .expect("offset tracker lock is never poisoned");
            for element in partitions.elements() {
                tracker.revoke(element.topic(), element.partition());
            }
            tracing::info!(partitions = partitions.count(), "partitions revoked");
        }
    }

    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let list: Vec<String> = partitions
                    .elements()
                    .iter()
                    .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = %list.join(","), "partitions assigned");
            }
            Rebalance::Error(error) => tracing::error!(%error, "consumer group rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

type JobConsumer = StreamConsumer<WorkerContext>;

/// Loads plugins, joins the consumer group and processes jobs until `shutdown` completes, then
/// lets jobs in flight finish (up to the grace period) and leaves the group.
pub async fn run(config: WorkerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let pool = config.db.pool();
    rfo_common::db::migrate(&pool)
        .await
        .context("failed to prepare the database; check DB_HOST, DB_PORT, DB_USER and DB_PASS")?;

    let registry = Arc::new(Registry::new(
        Arc::new(PluginRuntime::with_compile_cache(
            config.compile_cache_dir.as_deref(),
        )?),
        config.limits,
        config.default_plugin.clone(),
    ));
    load_plugins(&registry, &config).await?;
    let _watch =
        crate::plugin::watch::spawn(registry.clone(), &config.plugin_dir).with_context(|| {
            format!(
                "failed to watch plugin folder {}",
                config.plugin_dir.display()
            )
        })?;
    let presence = presence::spawn(pool.clone(), registry.clone(), &config);

    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    let consumer: Arc<JobConsumer> = Arc::new(
        config
            .kafka
            .consumer_config(config.max_poll_interval_ms)
            .create_with_context(WorkerContext {
                tracker: tracker.clone(),
            })
            .context("failed to create the Kafka consumer; check KAFKA_BOOTSTRAP")?,
    );
    consumer
        .subscribe(&[&config.kafka.topic])
        .with_context(|| format!("failed to subscribe to {}", config.kafka.topic))?;
    let dead_letters = Arc::new(
        DeadLetters::new(&config.kafka, &config.worker_id)
            .context("failed to create the Kafka producer for the dead-letter topic")?,
    );

    let ctx = Arc::new(JobContext {
        pool: pool.clone(),
        s3: config.s3.client().await,
        input_bucket: config.s3.input_bucket.clone(),
        output_bucket: config.s3.output_bucket.clone(),
        registry: registry.clone(),
        worker_id: config.worker_id.clone(),
        decode_limits: DecodeLimits {
            max_pixels: config.max_pixels,
        },
        max_image_bytes: config.max_image_bytes,
        fault: config.fault,
    });
    tracing::info!(
        worker_id = %config.worker_id,
        topic = %config.kafka.topic,
        group = %config.kafka.group,
        dead_letter_topic = %config.kafka.dead_letter_topic,
        concurrency = config.concurrency,
        plugin_dir = %config.plugin_dir.display(),
        "worker started"
    );

    let slots = Arc::new(Semaphore::new(config.concurrency));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handler = Handler {
        ctx,
        dead_letters,
        stop: stop_rx,
    };
    consume(&consumer, &handler, &tracker, &slots, shutdown).await;

    let _ = stop_tx.send(true);
    drain(&slots, config.concurrency, config.shutdown_grace_secs).await;
    presence.stop(&config.worker_id).await;
    consumer.unsubscribe();
    tracing::info!(worker_id = %config.worker_id, "worker stopped");
    Ok(())
}

async fn load_plugins(registry: &Registry, config: &WorkerConfig) -> anyhow::Result<()> {
    let dir = config.plugin_dir.clone();
    if !dir.is_dir() {
        anyhow::bail!(
            "plugin folder {} (RFO_PLUGIN_DIR) does not exist or is not a folder; create it and \
             put plugin .wasm files in it",
            dir.display()
        );
    }
    let results = tokio::task::block_in_place(|| registry.load_dir(&dir))
        .with_context(|| format!("failed to list plugin folder {}", dir.display()))?;
    for (path, result) in results {
        match result {
            Ok(loaded) => tracing::info!(plugin = %loaded.name, version = %loaded.version,
                sha256 = %loaded.sha256, file = %path.display(), "plugin loaded"),
            Err(LoadError::Unchanged { .. }) => {}
            Err(error) => tracing::warn!(%error, "plugin rejected"),
        }
    }
    if registry.resolve(None).is_err() {
        tracing::warn!(default = %config.default_plugin, dir = %dir.display(),
            "the default plugin is not loaded; jobs that name no plugin will fail until it is");
    }
    Ok(())
}

async fn consume(
    consumer: &Arc<JobConsumer>,
    handler: &Handler,
    tracker: &Arc<Mutex<OffsetTracker>>,
    slots: &Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the job semaphore is never closed"),
            () = &mut shutdown => return,
        };
        let message = tokio::select! {
            message = consumer.recv() => message,
            () = &mut shutdown => return,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                let missing_topic = error.rdkafka_error_code()
                    == Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition);
                if missing_topic {
                    // Normal until the first job is produced where topics are created on use.
                    tracing::warn!(%error, "the jobs topic does not exist yet; retrying in 1 s");
                } else {
                    tracing::error!(%error, "failed to receive from Kafka; retrying in 1 s");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };

        let delivered = Delivered {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
        };
        tracker
            .lock()
            .expect("offset tracker lock is never poisoned")
            .start(&delivered.topic, delivered.partition, delivered.offset);

        let consumer = consumer.clone();
        let handler = handler.clone();
        let tracker = tracker.clone();
        tokio::spawn(async move {
            if handler.handle(&delivered).await {
                commit(
                    &consumer,
                    &tracker,
                    &delivered.topic,
                    delivered.partition,
                    delivered.offset,
                );
            }
            drop(permit);
        });
    }
}

/// A message as received from the jobs topic.
struct Delivered {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
}

/// The state every job task shares: the job context, the dead-letter producer and the stop signal.
#[derive(Clone)]
struct Handler {
    ctx: Arc<JobContext>,
    dead_letters: Arc<DeadLetters>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Handler {
    /// Runs one delivered message to a final state. Returns false if the worker is stopping
    /// while a dependency is down, so the offset stays uncommitted and the message is
    /// redelivered.
    async fn handle(&self, delivered: &Delivered) -> bool {
        let message: JobMessage = match delivered.payload.as_deref().map(serde_json::from_slice) {
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                return self
                    .dead_letter(delivered, &format!("not a job: {error}"))
                    .await;
            }
            None => {
                return self
                    .dead_letter(delivered, "not a job: the message has no payload")
                    .await;
            }
        };
        if let Err(reason) = message.check() {
            return self
                .dead_letter(delivered, &format!("not a valid job: {reason}"))
                .await;
        }

        let mut delay = Duration::from_millis(250);
        let mut storage_failures = 0;
        let started = Instant::now();
        loop {
            match job::run(&self.ctx, &message).await {
                Ok(outcome) => {
                    log_outcome(&message, &outcome);
                    return true;
                }
                Err(Transient::Storage(error))
                    if storage_failures + 1 >= MAX_STORAGE_ATTEMPTS
                        || started.elapsed() >= STORAGE_RETRY_BUDGET =>
                {
                    // S3 errors that persist fail the job, so that one bad object cannot hold a
                    // job slot for ever. PostgreSQL errors keep retrying: without the database
                    // not even the failure could be recorded. The dead letter comes first, so a
                    // crash in between reruns the job rather than losing it.
                    let reason = format!(
                        "S3 failed {} times in {} s: {error}",
                        storage_failures + 1,
                        started.elapsed().as_secs()
                    );
                    if !self.dead_letter(delivered, &reason).await {
                        return false;
                    }
                    let reason = format!(
                        "{reason}; the job was put on dead-letter topic {}",
                        self.dead_letters.topic()
                    );
                    return self.record_failure(&message, reason).await;
                }
                Err(error) => {
                    if matches!(error, Transient::Storage(_)) {
                        storage_failures += 1;
                    }
                    tracing::warn!(job_id = %message.job_id, %error, retry_in_ms = delay.as_millis() as u64,
                        "job hit an unavailable dependency; retrying");
                }
            }
            if !self.pause(&mut delay).await {
                tracing::warn!(job_id = %message.job_id, "worker stopping; the job will be redelivered");
                return false;
            }
        }
    }

    /// Produces `delivered` to the dead-letter topic, retrying until the broker acknowledges
    /// it. Returns false if the worker stops first.
    async fn dead_letter(&self, delivered: &Delivered, reason: &str) -> bool {
        let source = dead_letter::Source {
            topic: &delivered.topic,
            partition: delivered.partition,
            offset: delivered.offset,
        };
        let mut delay = Duration::from_millis(250);
        loop {
            let sent = self
                .dead_letters
                .send(
                    &source,
                    delivered.key.as_deref(),
                    delivered.payload.as_deref(),
                    reason,
                )
                .await;
            match sent {
                Ok(()) => {
                    tracing::warn!(partition = delivered.partition, offset = delivered.offset,
                        dead_letter_topic = %self.dead_letters.topic(), reason = ?reason,
                        "moved a message to the dead-letter topic");
                    return true;
                }
                Err(error) => tracing::error!(partition = delivered.partition,
                    offset = delivered.offset, dead_letter_topic = %self.dead_letters.topic(), %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "failed to produce to the dead-letter topic; retrying"),
            }
            if !self.pause(&mut delay).await {
                tracing::warn!(
                    partition = delivered.partition,
                    offset = delivered.offset,
                    "worker stopping; the message will be redelivered"
                );
                return false;
            }
        }
    }

    /// Records a job as failed, retrying while PostgreSQL is down. Returns false if the worker
    /// stops first.
    async fn record_failure(&self, message: &JobMessage, reason: String) -> bool {
        let mut delay = Duration::from_millis(250);
        loop {
            match job::give_up(&self.ctx, message, &reason).await {
                Ok(()) => {
                    log_outcome(message, &Outcome::Failed { reason });
                    return true;
                }
                Err(error) => tracing::warn!(job_id = %message.job_id, %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "failed to record the job as failed; retrying"),
            }
            if !self.pause(&mut delay).await {
                tracing::warn!(job_id = %message.job_id, "worker stopping; the job will be redelivered");
                return false;
            }
        }
    }

    /// Waits `delay`, then doubles it up to [`MAX_RETRY_DELAY`]. Returns false at once if the
    /// worker is stopping.
    async fn pause(&self, delay: &mut Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(*delay) => {}
            _ = stop.wait_for(|stopping| *stopping) => return false,
        }
        *delay = (*delay * 2).min(MAX_RETRY_DELAY);
        true
    }
}

fn log_outcome(message: &JobMessage, outcome: &Outcome) {
    match outcome {
        Outcome::Done {
            plugin,
            version,
            detections,
            timings,
        } => tracing::info!(
            job_id = %message.job_id,
            image_key = %message.image_key,
            plugin = %plugin,
            version = %version,
            detections,
            fetch_ms = format!("{:.1}", timings.fetch),
            decode_ms = format!("{:.1}", timings.decode),
            detect_ms = format!("{:.1}", timings.detect),
            draw_ms = format!("{:.1}", timings.draw),
            encode_ms = format!("{:.1}", timings.encode),
            store_ms = format!("{:.1}", timings.store),
            record_ms = format!("{:.1}", timings.record),
            "job done"
        ),
        Outcome::Failed { reason } => tracing::warn!(
            job_id = %message.job_id,
            image_key = %message.image_key,
            reason = ?reason,
            "job failed"
        ),
        Outcome::AlreadyFinished => tracing::info!(
            job_id = %message.job_id,
            "job already finished by an earlier delivery; committing its offset"
        ),
    }
}

fn commit(
    consumer: &JobConsumer,
    tracker: &Mutex<OffsetTracker>,
    topic: &str,
    partition: i32,
    offset: i64,
) {
    let position = tracker
        .lock()
        .expect("offset tracker lock is never poisoned")
        .finish(topic, partition, offset);
    let Some(position) = position else {
        return;
    };
    let mut list = TopicPartitionList::new();
    if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(position)) {
        tracing::error!(%error, partition, position, "failed to build the offset commit");
        return;
    }
    if let Err(error) = consumer.commit(&list, CommitMode::Async) {
        tracing::warn!(%error, partition, position, "failed to commit offset; the jobs before it may be redelivered");
    }
}

/// Waits until every job slot is free again, or the grace period ends.
async fn drain(slots: &Semaphore, concurrency: usize, grace_secs: u64) {
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let busy = concurrency - slots.available_permits();
    if busy > 0 {
        tracing::info!(jobs = busy, grace_secs, "waiting for jobs in flight");
    }
    match tokio::time::timeout(Duration::from_secs(grace_secs), slots.acquire_many(all)).await {
        Ok(_) => {}
        Err(_) => tracing::warn!(
            grace_secs,
            "jobs still running after the grace period; they will be redelivered"
        ),
    }
}
