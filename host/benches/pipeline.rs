//! Pipeline benchmark through the local servers. It prints figures and asserts nothing about
//! speed; run it with `scripts/bench.sh pipeline`, which starts the servers and runs
//! `cargo bench -p rfo-host --bench pipeline`.
//!
//! The same jobs run twice in one process: once with the `template` plugin (a trivial detector,
//! the baseline: the cost of the pipeline around the plugin) and once with `foreign-object`.

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rfo_common::job::{JobStatus, StageTimings};
use support::Stack;

/// Radiographs from `examples/radiographs` used when `RFO_BENCH_IMAGES` is unset.
const DEFAULT_IMAGES: [&str; 3] = [
    "chest-pa-nih-1.png",
    "chest-pa-rsna.dcm",
    "leg-ap-cr-lead-marker-j2k-lossless.dcm",
];

/// Returns the radiographs to process: `RFO_BENCH_IMAGES`, a comma-separated list of names in
/// `examples/radiographs`, or [`DEFAULT_IMAGES`].
fn images() -> Vec<String> {
    match std::env::var("RFO_BENCH_IMAGES") {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').map(|name| name.trim().to_owned()).collect()
        }
        _ => DEFAULT_IMAGES.map(str::to_owned).into(),
    }
}

fn jobs_per_image() -> usize {
    std::env::var("RFO_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

struct Figures {
    jobs: usize,
    jobs_per_sec: f64,
    mean: StageTimings,
}

async fn run_batch(stack: &Stack, images: &[String], plugin: &str) -> Figures {
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..jobs_per_image() {
        for image in images {
            ids.push(stack.submit(image, Some(plugin)).await);
        }
    }
    let mut sum = StageTimings::default();
    for id in &ids {
        let job = stack.wait_finished(*id, Duration::from_secs(600)).await;
        assert_eq!(job.status, JobStatus::Done, "{:?}", job.error);
        let t = job.timings_ms.unwrap();
        sum.fetch += t.fetch;
        sum.decode += t.decode;
        sum.detect += t.detect;
        sum.draw += t.draw;
        sum.encode += t.encode;
        sum.store += t.store;
        sum.record += t.record;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = ids.len() as f64;
    Figures {
        jobs: ids.len(),
        jobs_per_sec: n / elapsed,
        mean: StageTimings {
            fetch: sum.fetch / n,
            decode: sum.decode / n,
            detect: sum.detect / n,
            draw: sum.draw / n,
            encode: sum.encode / n,
            store: sum.store / n,
            record: sum.record / n,
        },
    }
}

fn print(label: &str, f: &Figures) {
    let t = &f.mean;
    println!(
        "{label:<16} {:>4} jobs {:>7.2} jobs/s | mean ms: fetch {:.1} decode {:.1} detect {:.1} draw {:.1} encode {:.1} store {:.1} record {:.1}",
        f.jobs, f.jobs_per_sec, t.fetch, t.decode, t.detect, t.draw, t.encode, t.store, t.record
    );
}

async fn bench_pipeline() {
    let images = images();
    let mut stack = Stack::start("bench").await;
    stack.install_plugin("foreign-object");
    stack.install_plugin("template");
    // RFO_CONCURRENCY reaches the worker, whose environment is otherwise the stack's alone.
    let concurrency = std::env::var("RFO_CONCURRENCY").ok();
    let worker_env: Vec<(&str, &str)> = concurrency
        .iter()
        .map(|value| ("RFO_CONCURRENCY", value.as_str()))
        .collect();
    stack.start_worker(&worker_env);
    stack.wait_plugin("template", Duration::from_secs(60)).await;
    stack
        .wait_plugin("foreign-object", Duration::from_secs(60))
        .await;
    for image in &images {
        stack.upload_example(image).await;
    }
    // Warm up: first group join and first-touch costs.
    let warm = stack.submit(&images[0], Some("template")).await;
    stack.wait_finished(warm, Duration::from_secs(120)).await;

    let baseline = run_batch(&stack, &images, "template").await;
    let detector = run_batch(&stack, &images, "foreign-object").await;
    println!("images: {}", images.join(", "));
    println!(
        "worker concurrency: {}",
        concurrency.as_deref().unwrap_or("default (CPU count)")
    );
    print("template", &baseline);
    print("foreign-object", &detector);
    println!(
        "foreign-object throughput: {:.2}x the template baseline",
        detector.jobs_per_sec / baseline.jobs_per_sec
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    bench_pipeline().await;
}
