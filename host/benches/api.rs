//! HTTP API benchmark through the local servers: `POST /submit` and `GET /recent?n=10` under 8
//! concurrent clients, against `GET /health`, which only pings PostgreSQL and the broker, as
//! the baseline. It prints figures and asserts nothing about speed; run it with
//! `scripts/bench.sh api`, which starts the servers and runs `cargo bench -p rfo-host --bench api`.
//!
//! No worker runs, so submitted jobs stay queued; `/recent` reads the rows they left.

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::Stack;

/// Concurrent clients, each sending one request at a time.
const CLIENTS: usize = 8;

/// Requests per client in each measured run.
fn requests_per_client() -> usize {
    std::env::var("RFO_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250)
}

struct Figures {
    requests: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Sends `request` from [`CLIENTS`] tasks at once and measures throughput and latency.
async fn measure<F, Fut>(request: F) -> Figures
where
    F: Fn(reqwest::Client) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let request = Arc::new(request);
    let per_client = requests_per_client();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let clock = Instant::now();
                let status = request(client.clone()).await;
                assert!(status < 300, "request returned HTTP {status}");
                latencies.push(clock.elapsed().as_secs_f64() * 1e3);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction) as usize];
    Figures {
        requests: latencies.len(),
        per_sec: latencies.len() as f64 / elapsed,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    }
}

fn print(label: &str, figures: &Figures, baseline: &Figures) {
    println!(
        "{label:<24} {:>5} requests {:>8.0} req/s ({:.2}x baseline) | p50 {:.2} ms p99 {:.2} ms",
        figures.requests,
        figures.per_sec,
        figures.per_sec / baseline.per_sec,
        figures.p50_ms,
        figures.p99_ms
    );
}

async fn bench_api() {
    let stack = Stack::start("bench-api").await;
    let url = stack.api_url.clone();

    // Warm up connections and the first topic use.
    for _ in 0..20 {
        stack.submit("warm-up.png", None).await;
    }

    let health_url = format!("{url}/health");
    let health = measure(move |client| {
        let url = health_url.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    })
    .await;

    let submit_url = format!("{url}/submit");
    let submit = measure(move |client| {
        let url = submit_url.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(r#"{"image_key": "chest-pa-nih-1.png"}"#)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    })
    .await;

    let recent_url = format!("{url}/recent?n=10");
    let recent = measure(move |client| {
        let url = recent_url.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    })
    .await;

    println!("{CLIENTS} concurrent clients, each sending one request at a time");
    print("GET /health (baseline)", &health, &health);
    print("POST /submit", &submit, &health);
    print("GET /recent?n=10", &recent, &health);
    drop(stack);
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    bench_api().await;
}
