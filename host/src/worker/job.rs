//! One job: fetch, decode, detect, draw, encode, store, record.
//!
//! Errors are sorted by what should happen next. A job that cannot succeed (missing object,
//! corrupt image, plugin failure) is recorded as `failed` with its reason and its offset is
//! committed. A dependency that is unreachable (S3, PostgreSQL) is [`Transient`]: the caller
//! retries the whole job, which is safe because every write is keyed by the job id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use deadpool_postgres::Pool;
use rfo_common::db::jobs::{self as job_rows, Attempt, Finished};
use rfo_common::job::{Detection, JobMessage, PluginUse, StageTimings, overlay_key};
use uuid::Uuid;

use crate::config::FaultPoint;
use crate::imaging::{self, BitDepth, DecodeLimits, OverlayBox, Radiograph};
use crate::plugin::runtime::WitImage;
use crate::plugin::{LoadedPlugin, Registry};

/// Time allowed to download an image's bytes once S3 has sent the response headers.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Clients and settings shared by every job on a worker.
pub struct JobContext {
    pub pool: Pool,
    pub s3: aws_sdk_s3::Client,
    pub input_bucket: String,
    pub output_bucket: String,
    pub registry: Arc<Registry>,
    pub worker_id: String,
    pub decode_limits: DecodeLimits,
    pub max_image_bytes: u64,
    pub fault: Option<FaultPoint>,
}

/// The final state of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done {
        plugin: String,
        version: String,
        detections: usize,
        timings: StageTimings,
    },
    Failed {
        reason: String,
    },
    /// An earlier delivery already finished it.
    AlreadyFinished,
}

/// A dependency was unreachable; retry the job later.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    /// S3 failed in a way that may pass (a timeout, a 5xx response, a dropped connection).
    #[error("{0}")]
    Storage(String),
    /// PostgreSQL is unreachable, so not even a failure can be recorded.
    #[error("{0}")]
    Database(String),
}

impl From<rfo_common::db::DbError> for Transient {
    fn from(error: rfo_common::db::DbError) -> Self {
        Self::Database(error.to_string())
    }
}

/// Records a job as failed after its retries ran out.
pub async fn give_up(
    ctx: &JobContext,
    message: &JobMessage,
    reason: &str,
) -> Result<(), Transient> {
    job_rows::finish_failed(&ctx.pool, message.job_id, None, reason).await?;
    Ok(())
}

/// A permanent failure, with the plugin that was chosen if it got that far.
struct Failure {
    reason: String,
    plugin: Option<PluginUse>,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            plugin: None,
        }
    }
}

enum StepError {
    Failed(Failure),
    Transient(Transient),
}

impl From<Transient> for StepError {
    fn from(error: Transient) -> Self {
        Self::Transient(error)
    }
}

impl From<rfo_common::db::DbError> for StepError {
    fn from(error: rfo_common::db::DbError) -> Self {
        Self::Transient(error.into())
    }
}

/// Runs one job once and records how it ended.
pub async fn run(ctx: &JobContext, message: &JobMessage) -> Result<Outcome, Transient> {
    let attempt = job_rows::start_attempt(
        &ctx.pool,
        message.job_id,
        &message.image_key,
        message.plugin.as_deref(),
        message.submitted_at,
        &ctx.worker_id,
    )
    .await?;
    if let Attempt::AlreadyFinished(_) = attempt {
        return Ok(Outcome::AlreadyFinished);
    }

    match process(ctx, message).await {
        Ok(outcome) => Ok(outcome),
        Err(StepError::Transient(error)) => Err(error),
        Err(StepError::Failed(failure)) => {
            job_rows::finish_failed(
                &ctx.pool,
                message.job_id,
                failure.plugin.as_ref(),
                &failure.reason,
            )
            .await?;
            Ok(Outcome::Failed {
                reason: failure.reason,
            })
        }
    }
}

async fn process(ctx: &JobContext, message: &JobMessage) -> Result<Outcome, StepError> {
    let mut timings = StageTimings::default();
    let plugin = ctx
        .registry
        .resolve(message.plugin.as_deref())
        .map_err(|e| StepError::Failed(Failure::new(e.to_string())))?;
    let plugin_use = PluginUse {
        requested: message.plugin.clone(),
        name: Some(plugin.name.clone()),
        version: Some(plugin.version.clone()),
        sha256: Some(plugin.sha256.clone()),
    };
    let with_plugin = |reason: String| {
        StepError::Failed(Failure {
            reason,
            plugin: Some(plugin_use.clone()),
        })
    };

    let clock = Instant::now();
    let bytes = fetch(ctx, &message.image_key).await?;
    timings.fetch = elapsed_ms(clock);

    let clock = Instant::now();
    let limits = ctx.decode_limits;
    let image_key = message.image_key.clone();
    let radiograph = blocking(move || imaging::decode(&bytes, &limits))
        .await?
        .map_err(|e| {
            with_plugin(format!(
                "failed to decode {image_key}: {}",
                rfo_common::error::chain(&e)
            ))
        })?;
    timings.decode = elapsed_ms(clock);

    let clock = Instant::now();
    let (radiograph, found) = detect(ctx, plugin.clone(), radiograph).await?;
    let detections = found.map_err(|e| with_plugin(e.to_string()))?;
    timings.detect = elapsed_ms(clock);

    if ctx.fault == Some(FaultPoint::AbortAfterDetect) {
        tracing::error!(job_id = %message.job_id, "RFO_FAULT=abort-after-detect: aborting");
        std::process::abort();
    }

    let (png, draw_ms, encode_ms) = draw_overlay(radiograph, detections.clone())
        .await?
        .map_err(|e| with_plugin(format!("failed to draw the overlay: {e}")))?;
    timings.draw = draw_ms;
    timings.encode = encode_ms;

    let clock = Instant::now();
    let key = overlay_key(message.job_id);
    store(ctx, &key, png).await?;
    timings.store = elapsed_ms(clock);

    let clock = Instant::now();
    job_rows::finish_done(
        &ctx.pool,
        &Finished {
            job_id: message.job_id,
            overlay_key: &key,
            plugin_name: &plugin.name,
            plugin_version: &plugin.version,
            plugin_sha256: &plugin.sha256,
            detections: &detections,
            timings: &timings,
        },
    )
    .await?;
    timings.record = elapsed_ms(clock);

    if ctx.fault == Some(FaultPoint::AbortAfterRecord) {
        tracing::error!(job_id = %message.job_id, "RFO_FAULT=abort-after-record: aborting");
        std::process::abort();
    }
    record_time(ctx, message.job_id, timings.record).await;

    Ok(Outcome::Done {
        plugin: plugin.name.clone(),
        version: plugin.version.clone(),
        detections: detections.len(),
        timings,
    })
}

async fn fetch(ctx: &JobContext, key: &str) -> Result<Vec<u8>, StepError> {
    let response = ctx
        .s3
        .get_object()
        .bucket(&ctx.input_bucket)
        .key(key)
        .send()
        .await;
    let output = match response {
        Ok(output) => output,
        Err(error) => {
            let missing = error.as_service_error().is_some_and(|e| e.is_no_such_key());
            if missing {
                return Err(StepError::Failed(Failure::new(format!(
                    "image_key {key:?} was not found in bucket {:?}; upload it first",
                    ctx.input_bucket
                ))));
            }
            return Err(s3_error(
                &error,
                &format!("read {key:?} from bucket {:?}", ctx.input_bucket),
            ));
        }
    };
    if output.content_length() == Some(0) {
        return Err(StepError::Failed(Failure::new(format!(
            "image {key:?} is empty (0 bytes); upload the file again"
        ))));
    }
    let size = output.content_length().unwrap_or(0).max(0) as u64;
    if size > ctx.max_image_bytes {
        return Err(StepError::Failed(Failure::new(format!(
            "image {key:?} is {size} bytes, more than the limit of {} (RFO_MAX_IMAGE_MIB)",
            ctx.max_image_bytes
        ))));
    }
    // The client's timeouts end when the response headers arrive, so the body has its own.
    let body = tokio::time::timeout(BODY_TIMEOUT, output.body.collect())
        .await
        .map_err(|_| {
            StepError::Transient(Transient::Storage(format!(
                "timed out after {} s downloading {key:?}",
                BODY_TIMEOUT.as_secs()
            )))
        })?
        .map_err(|e| {
            StepError::Transient(Transient::Storage(format!(
                "failed to download {key:?}: {e}"
            )))
        })?;
    Ok(body.into_bytes().to_vec())
}

async fn store(ctx: &JobContext, key: &str, png: Vec<u8>) -> Result<(), StepError> {
    ctx.s3
        .put_object()
        .bucket(&ctx.output_bucket)
        .key(key)
        .content_type("image/png")
        .body(ByteStream::from(png))
        .send()
        .await
        .map_err(|error| {
            s3_error(
                &error,
                &format!("write overlay {key:?} to bucket {:?}", ctx.output_bucket),
            )
        })?;
    Ok(())
}

/// Sorts an S3 error by what should happen next. A 4xx response (403 AccessDenied, 400 for a
/// key the server cannot take) will not change on a retry, so it fails the job. Anything else
/// (a timeout, a 5xx response, a dropped connection) may pass and is retried.
fn s3_error<E>(error: &SdkError<E, HttpResponse>, action: &str) -> StepError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    if let Some(status @ 400..=499) = status {
        let code = error
            .as_service_error()
            .and_then(ProvideErrorMetadata::code)
            .unwrap_or("no error code");
        return StepError::Failed(Failure::new(format!(
            "S3 rejected the request to {action} with HTTP {status} ({code}); check the key \
             and the worker's permissions"
        )));
    }
    StepError::Transient(Transient::Storage(format!(
        "failed to {action}: {}",
        rfo_common::error::chain(error)
    )))
}

type DetectResult = Result<Vec<Detection>, crate::plugin::PluginError>;

/// Runs the plugin on a blocking thread. The pixels move into the call and back out, so a large
/// image is never copied.
async fn detect(
    ctx: &JobContext,
    plugin: Arc<LoadedPlugin>,
    radiograph: Radiograph,
) -> Result<(Radiograph, DetectResult), StepError> {
    let registry = ctx.registry.clone();
    blocking(move || {
        let mut radiograph = radiograph;
        let image = WitImage {
            width: radiograph.width,
            height: radiograph.height,
            bit_depth: match radiograph.bit_depth {
                BitDepth::Eight => 8,
                BitDepth::Sixteen => 16,
            },
            channels: 1,
            pixels: std::mem::take(&mut radiograph.pixels),
        };
        let result = registry
            .runtime()
            .detect(&plugin.compiled, &image, registry.limits());
        radiograph.pixels = image.pixels;
        let detections = result.map(|found| found.into_iter().map(Detection::from).collect());
        (radiograph, detections)
    })
    .await
}

type Drawn = Result<(Vec<u8>, f64, f64), imaging::OverlayError>;

async fn draw_overlay(
    radiograph: Radiograph,
    detections: Vec<Detection>,
) -> Result<Drawn, StepError> {
    blocking(move || {
        let boxes: Vec<OverlayBox<'_>> = detections.iter().map(OverlayBox::from).collect();
        let clock = Instant::now();
        let canvas = imaging::draw_overlay(&radiograph, &boxes)?;
        let draw_ms = elapsed_ms(clock);
        let clock = Instant::now();
        let png = imaging::encode_png(&canvas)?;
        Ok((png, draw_ms, elapsed_ms(clock)))
    })
    .await
}

async fn record_time(ctx: &JobContext, job_id: Uuid, millis: f64) {
    if let Err(error) = job_rows::set_record_time(&ctx.pool, job_id, millis).await {
        tracing::warn!(%job_id, %error, "failed to store the record stage time");
    }
}

/// Runs CPU-heavy work off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StepError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StepError::Failed(Failure::new(format!("job step crashed: {e}"))))
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    fn response_error(status: u16, code: &str) -> SdkError<PutObjectError, HttpResponse> {
        let error = PutObjectError::generic(ErrorMetadata::builder().code(code).build());
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(error, response)
    }

    #[test]
    fn s3_client_error_fails_job() {
        let StepError::Failed(failure) = s3_error(&response_error(403, "AccessDenied"), "write x")
        else {
            panic!("a 403 must fail the job");
        };
        assert!(
            failure.reason.contains("HTTP 403 (AccessDenied)"),
            "{}",
            failure.reason
        );
    }

    #[test]
    fn s3_server_error_is_retried() {
        let outcome = s3_error(&response_error(503, "SlowDown"), "write x");
        assert!(matches!(
            outcome,
            StepError::Transient(Transient::Storage(_))
        ));
    }
}
