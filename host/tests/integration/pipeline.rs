//! The whole pipeline against the local servers: API in-process, worker as a child process.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::Stack;
use crate::support::proxy::Proxy;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rfo_common::job::{JobMessage, JobStatus};
use rfo_host::imaging::{self, DecodeLimits, OverlayBox};
use rfo_host::worker::dead_letter;

const JOB_TIMEOUT: Duration = Duration::from_secs(90);
const LEG: &str = "leg-ap-cr-lead-marker-j2k-lossless.dcm";

async fn stack_with_worker(name: &str, worker_env: &[(&str, &str)]) -> Stack {
    let mut stack = Stack::start(name).await;
    stack.install_plugin("foreign-object");
    stack.install_plugin("anatomy");
    stack.start_worker(worker_env);
    stack
        .wait_plugin("foreign-object", Duration::from_secs(60))
        .await;
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn submitted_radiograph_becomes_done_row_with_overlay() {
    let stack = stack_with_worker("done-row", &[]).await;
    stack.upload_example(LEG).await;

    let job_id = stack.submit(LEG, None).await;
    let job = stack.wait_finished(job_id, JOB_TIMEOUT).await;

    assert_eq!(job.status, JobStatus::Done, "job failed: {:?}", job.error);
    assert_eq!(job.plugin.name.as_deref(), Some("foreign-object"));
    assert_eq!(job.plugin.sha256.as_ref().map(String::len), Some(64));
    assert!(job.attempts >= 1);
    let metal: Vec<_> = job
        .detections
        .iter()
        .filter(|d| d.label == "metal")
        .collect();
    assert!(
        !metal.is_empty(),
        "no metal found on the leg: {:?}",
        job.detections
    );
    assert!(job.top_box.is_some());
    let timings = job.timings_ms.expect("a done job has stage timings");
    assert!(timings.detect > 0.0);

    let overlay_key = job.overlay_key.expect("a done job has an overlay key");
    let png = stack.download_output(&overlay_key).await;
    let overlay = image::load_from_memory(&png).unwrap().to_rgb8();
    let source = std::fs::read(support::example(LEG)).unwrap();
    let radiograph = imaging::decode(&source, &DecodeLimits::default()).unwrap();
    assert_eq!(
        (overlay.width(), overlay.height()),
        (radiograph.width, radiograph.height)
    );

    // The top-left corner of every box is drawn in that box's colour.
    let boxes: Vec<OverlayBox<'_>> = job.detections.iter().map(OverlayBox::from).collect();
    let colors = imaging::box_colors(&boxes);
    for (b, color) in boxes.iter().zip(colors) {
        let pixel = overlay.get_pixel(b.x, b.y + b.height - 1).0;
        assert_eq!(
            pixel, color,
            "box {b:?} is not drawn at its bottom-left corner"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chosen_plugin_changes_the_result() {
    let stack = stack_with_worker("choice", &[]).await;
    stack.wait_plugin("anatomy", Duration::from_secs(30)).await;
    stack.upload_example("chest-pa-nih-1.png").await;

    let anatomy = stack.submit("chest-pa-nih-1.png", Some("anatomy")).await;
    let job = stack.wait_finished(anatomy, JOB_TIMEOUT).await;

    assert_eq!(job.status, JobStatus::Done, "job failed: {:?}", job.error);
    assert_eq!(job.plugin.name.as_deref(), Some("anatomy"));
    assert_eq!(job.plugin.requested.as_deref(), Some("anatomy"));
    assert!(
        job.detections.iter().all(|d| d.label == "anatomy"),
        "{:?}",
        job.detections
    );
    assert!(!job.detections.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_object_fails_job_and_worker_carries_on() {
    let stack = stack_with_worker("missing-key", &[]).await;
    stack.upload_example("chest-pa-nih-2.png").await;

    let missing = stack.submit("no-such-image.png", None).await;
    let good = stack.submit("chest-pa-nih-2.png", None).await;
    let missing_job = stack.wait_finished(missing, JOB_TIMEOUT).await;
    let good_job = stack.wait_finished(good, JOB_TIMEOUT).await;

    assert_eq!(missing_job.status, JobStatus::Failed);
    let reason = missing_job.error.unwrap_or_default();
    assert!(
        reason.contains("no-such-image.png") && reason.contains("not found"),
        "{reason}"
    );
    assert_eq!(good_job.status, JobStatus::Done, "{:?}", good_job.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_image_fails_with_decode_reason() {
    let stack = stack_with_worker("corrupt", &[]).await;
    stack
        .upload("broken.png", b"\x89PNG\r\n\x1a\nthis is not a png".to_vec())
        .await;

    let job_id = stack.submit("broken.png", None).await;
    let job = stack.wait_finished(job_id, JOB_TIMEOUT).await;

    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.error
            .unwrap_or_default()
            .contains("failed to decode broken.png")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_object_fails_with_clear_reason() {
    let stack = stack_with_worker("empty-object", &[]).await;
    stack.upload("empty.png", Vec::new()).await;

    let job_id = stack.submit("empty.png", None).await;
    let job = stack.wait_finished(job_id, JOB_TIMEOUT).await;

    assert_eq!(job.status, JobStatus::Failed);
    let reason = job.error.unwrap_or_default();
    assert!(reason.contains("is empty (0 bytes)"), "{reason}");
}

/// Crashes a worker at a fault point, starts a fresh one and checks that one row results.
async fn crash_and_restart(name: &str, fault: &str) {
    let mut stack = Stack::start(name).await;
    stack.install_plugin("foreign-object");
    let crashing = stack.start_worker(&[("RFO_FAULT", fault)]);
    stack
        .wait_plugin("foreign-object", Duration::from_secs(60))
        .await;
    stack.upload_example("chest-pa-nih-1.png").await;

    let job_id = stack.submit("chest-pa-nih-1.png", None).await;
    assert!(
        stack.wait_worker_exit(crashing, Duration::from_secs(90)),
        "worker with RFO_FAULT={fault} did not abort"
    );
    stack.start_worker(&[]);
    let job = stack.wait_finished(job_id, JOB_TIMEOUT).await;

    assert_eq!(job.status, JobStatus::Done, "{:?}", job.error);
    assert_eq!(
        job.attempts,
        if fault == "abort-after-record" { 1 } else { 2 }
    );
    let pool = stack.pool();
    let client = pool.get().await.unwrap();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM jobs WHERE job_id = $1", &[&job_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    let detections: i64 = client
        .query_one(
            "SELECT count(*) FROM detections WHERE job_id = $1",
            &[&job_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(detections as usize, job.detections.len());
    stack
        .download_output(job.overlay_key.as_deref().unwrap())
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_detect_leaves_one_row() {
    crash_and_restart("crash-detect", "abort-after-detect").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_record_leaves_one_row() {
    crash_and_restart("crash-record", "abort-after-record").await;
}

/// Returns the value of header `name` on a Kafka message, as text.
fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn non_job_message_is_dead_lettered() {
    let stack = stack_with_worker("not-a-job", &[]).await;
    stack.upload_example("chest-pa-nih-2.png").await;

    let (partition, offset) = stack.produce_raw(b"stray", b"{not json").await;
    let good = stack.submit("chest-pa-nih-2.png", None).await;
    let good_job = stack.wait_finished(good, JOB_TIMEOUT).await;
    assert_eq!(good_job.status, JobStatus::Done, "{:?}", good_job.error);

    let letters = stack.dead_letters(1, JOB_TIMEOUT).await;
    assert_eq!(letters.len(), 1, "expected one dead letter");
    let letter = &letters[0];
    assert_eq!(letter.payload(), Some(&b"{not json"[..]));
    assert_eq!(letter.key(), Some(&b"stray"[..]));
    let reason = header(letter, "rfo-reason").unwrap_or_default();
    assert!(reason.starts_with("not a job"), "{reason}");
    let source = header(letter, "rfo-source").unwrap_or_default();
    assert_eq!(
        source,
        format!("{}/{partition}/{offset}", stack.env["KAFKA_TOPIC"])
    );
    assert!(header(letter, "rfo-worker").is_some());
    assert!(header(letter, "rfo-failed-at").is_some());

    // The stray message's offset is committed, so a restarted worker does not see it again.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while stack.committed_offset(partition) <= Some(offset) {
        assert!(
            std::time::Instant::now() < deadline,
            "offset {offset} of partition {partition} was not committed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_job_fields_go_to_dead_letter_topic() {
    let stack = stack_with_worker("invalid-job", &[]).await;
    stack.upload_example("chest-pa-nih-2.png").await;
    // PostgreSQL cannot store a NUL byte or the year -200000, so these can never be recorded.
    let bad = [
        r#"{"job_id":"0190a0a0-0000-7000-8000-000000000001","image_key":"chest\u0000.png","submitted_at":"2026-12-04T10:00:00Z"}"#,
        r#"{"job_id":"0190a0a0-0000-7000-8000-000000000002","image_key":"a.png","plugin":"foreign\u0000object","submitted_at":"2026-12-04T10:00:00Z"}"#,
        r#"{"job_id":"0190a0a0-0000-7000-8000-000000000003","image_key":"a.png","submitted_at":"-200000-01-01T00:00:00Z"}"#,
    ];
    for payload in bad {
        stack.produce_raw(b"bad", payload.as_bytes()).await;
    }

    let good = stack.submit("chest-pa-nih-2.png", None).await;
    let good_job = stack.wait_finished(good, JOB_TIMEOUT).await;
    assert_eq!(good_job.status, JobStatus::Done, "{:?}", good_job.error);

    let letters = stack.dead_letters(bad.len(), JOB_TIMEOUT).await;
    assert_eq!(letters.len(), bad.len(), "expected one dead letter each");
    for letter in &letters {
        let reason = header(letter, "rfo-reason").unwrap_or_default();
        assert!(reason.starts_with("not a valid job"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_message_is_cut_in_dead_letter() {
    let stack = stack_with_worker("huge-message", &[]).await;
    let payload = vec![b'x'; 2_000_000];
    let key = vec![b'k'; 10_000];

    stack.produce_raw(&key, &payload).await;
    let letters = stack.dead_letters(1, JOB_TIMEOUT).await;

    assert_eq!(letters.len(), 1, "expected one dead letter");
    let payload_kept = letters[0].payload().unwrap_or_default();
    assert_eq!(payload_kept.len(), dead_letter::MAX_PAYLOAD_BYTES);
    assert_eq!(
        header(&letters[0], "rfo-original-bytes").as_deref(),
        Some("2000000")
    );
    assert_eq!(
        letters[0].key().map(<[u8]>::len),
        Some(dead_letter::MAX_KEY_BYTES)
    );
    assert_eq!(
        header(&letters[0], "rfo-original-key-bytes").as_deref(),
        Some("10000")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_outage_job_is_dead_lettered() {
    // The worker reaches S3 through a forwarder that the test cuts; the test itself does not.
    let mut stack = Stack::start("s3-down").await;
    stack.install_plugin("foreign-object");
    let s3: SocketAddr = stack.env["S3_ENDPOINT"]
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = Proxy::start(s3).await;
    let endpoint = format!("http://127.0.0.1:{}", proxy.port);
    stack.start_worker(&[("S3_ENDPOINT", &endpoint)]);
    stack
        .wait_plugin("foreign-object", Duration::from_secs(60))
        .await;
    stack.upload_example("chest-pa-nih-2.png").await;

    proxy.cut();
    let job_id = stack.submit("chest-pa-nih-2.png", None).await;
    let job = stack.wait_finished(job_id, JOB_TIMEOUT).await;

    assert_eq!(job.status, JobStatus::Failed);
    let reason = job.error.unwrap_or_default();
    assert!(reason.contains("S3 failed 5 times"), "{reason}");
    assert!(reason.contains("dead-letter topic"), "{reason}");

    let letters = stack.dead_letters(1, JOB_TIMEOUT).await;
    assert_eq!(letters.len(), 1, "expected one dead letter");
    let message: JobMessage = serde_json::from_slice(letters[0].payload().unwrap()).unwrap();
    assert_eq!(message.job_id, job_id);
    assert_eq!(message.image_key, "chest-pa-nih-2.png");
    let header_reason = header(&letters[0], "rfo-reason").unwrap_or_default();
    assert!(
        header_reason.contains("S3 failed 5 times"),
        "{header_reason}"
    );
}
