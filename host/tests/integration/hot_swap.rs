//! Plugins on a running worker: hot swap under a stream of jobs, and hostile plugins that must
//! fail only their own job.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::{Stack, built_plugin};
use rfo_common::job::JobStatus;
use sha2::{Digest, Sha256};

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn hostile_plugins_fail_only_their_own_job() {
    let mut stack = Stack::start("hostile").await;
    for plugin in [
        "foreign-object",
        "testing/spin",
        "testing/memory-bomb",
        "testing/panic",
        "testing/flood",
    ] {
        stack.install_plugin(plugin);
    }
    // Each hostile plugin behaves on the small self-test image, so it loads, and misbehaves on
    // real radiographs.
    stack.start_worker(&[
        ("RFO_PLUGIN_DEADLINE_MS", "4000"),
        ("RFO_PLUGIN_MEMORY_MIB", "128"),
    ]);
    stack.wait_plugin("flood", Duration::from_secs(60)).await;
    stack.upload_example("chest-pa-nih-1.png").await;

    let cases = [
        ("spin", "CPU deadline of 4000 ms"),
        ("memory-bomb", "memory cap of 128 MiB"),
        ("panic", "plugin crashed"),
        ("flood", "more than the cap of 1000"),
    ];
    let mut jobs = Vec::new();
    for (plugin, _) in cases {
        jobs.push(stack.submit("chest-pa-nih-1.png", Some(plugin)).await);
    }
    let healthy = stack.submit("chest-pa-nih-1.png", None).await;

    for ((plugin, reason), job_id) in cases.iter().zip(jobs) {
        let job = stack.wait_finished(job_id, JOB_TIMEOUT).await;
        assert_eq!(job.status, JobStatus::Failed, "{plugin} job did not fail");
        let error = job.error.unwrap_or_default();
        assert!(
            error.contains(reason),
            "{plugin} job failed with {error:?}, expected {reason:?}"
        );
        assert_eq!(job.plugin.name.as_deref(), Some(*plugin));
    }
    let job = stack.wait_finished(healthy, JOB_TIMEOUT).await;
    assert_eq!(job.status, JobStatus::Done, "{:?}", job.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_swaps_under_load_lose_no_job() {
    let mut stack = Stack::start("swap").await;
    let versions = [
        (
            "1.0.0",
            std::fs::read(built_plugin("testing/versioned-1")).unwrap(),
        ),
        (
            "2.0.0",
            std::fs::read(built_plugin("testing/versioned-2")).unwrap(),
        ),
    ];
    let sha_of: HashMap<String, &str> = versions
        .iter()
        .map(|(version, bytes)| (hex::encode(Sha256::digest(bytes)), *version))
        .collect();
    let live = stack.plugin_dir.join("versioned.wasm");
    std::fs::write(&live, &versions[0].1).unwrap();
    stack.start_worker(&[
        ("RFO_DEFAULT_PLUGIN", "versioned"),
        ("RFO_CONCURRENCY", "2"),
    ]);
    stack
        .wait_plugin("versioned", Duration::from_secs(60))
        .await;
    stack.upload_example("chest-pa-nih-2.png").await;

    let mut submitted = Vec::new();
    for swap in 1..=20 {
        for _ in 0..3 {
            submitted.push(stack.submit("chest-pa-nih-2.png", None).await);
        }
        let bytes = &versions[swap % 2].1;
        if swap % 4 == 0 {
            // A slow copy straight over the live file, in pieces.
            write_slowly(&live, bytes).await;
        } else {
            // A complete file renamed over the live one, as `mv` does.
            let staged = stack.plugin_dir.join(".versioned.wasm.new");
            std::fs::write(&staged, bytes).unwrap();
            std::fs::rename(&staged, &live).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for _ in 0..3 {
        submitted.push(stack.submit("chest-pa-nih-2.png", None).await);
    }

    let mut by_version: HashMap<String, usize> = HashMap::new();
    for job_id in &submitted {
        let job = stack.wait_finished(*job_id, JOB_TIMEOUT).await;
        assert_eq!(job.status, JobStatus::Done, "job {job_id}: {:?}", job.error);
        let version = job.plugin.version.clone().unwrap();
        let sha = job.plugin.sha256.clone().unwrap();
        assert_eq!(
            sha_of.get(&sha).copied(),
            Some(version.as_str()),
            "row names a version its sha256 does not match"
        );
        *by_version.entry(version).or_default() += 1;
    }
    assert_eq!(by_version.values().sum::<usize>(), submitted.len());
    assert!(
        by_version.len() == 2,
        "both versions should have served jobs: {by_version:?}"
    );

    let pool = stack.pool();
    let rows: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM jobs WHERE status = 'done'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, submitted.len());
}

async fn write_slowly(path: &std::path::Path, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await.unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(4)) {
        file.write_all(chunk).await.unwrap();
        file.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_version_serves_within_a_second_of_landing() {
    let mut stack = Stack::start("swap-latency").await;
    let live = stack.plugin_dir.join("versioned.wasm");
    std::fs::copy(built_plugin("testing/versioned-1"), &live).unwrap();
    stack.start_worker(&[("RFO_DEFAULT_PLUGIN", "versioned")]);
    stack
        .wait_plugin("versioned", Duration::from_secs(60))
        .await;

    let staged = stack.plugin_dir.join(".versioned.wasm.new");
    std::fs::copy(built_plugin("testing/versioned-2"), &staged).unwrap();
    let landed = Instant::now();
    std::fs::rename(&staged, &live).unwrap();
    loop {
        let (_, listing) = stack.get_json("/plugins").await;
        let serving = listing["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "versioned" && p["version"] == "2.0.0");
        if serving {
            break;
        }
        assert!(
            landed.elapsed() < Duration::from_secs(10),
            "version 2.0.0 never served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "file landing to serving, as seen through GET /plugins: {:?}",
        landed.elapsed()
    );
}
