//! Plugin platform benchmarks. They print figures and assert nothing about speed; run them with
//! `scripts/bench.sh plugins` (`cargo bench -p rfo-host --bench plugins`).

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rfo_host::plugin::{Limits, PluginRuntime, Registry};
use support::{TempDir, built_plugin};

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1 << 20) as f64
}

fn bench_instantiate() {
    let runtime = PluginRuntime::new().unwrap();
    let limits = Limits::default();
    let compiled = runtime
        .compile(&std::fs::read(built_plugin("foreign-object")).unwrap())
        .unwrap();
    for _ in 0..200 {
        runtime.instantiate_only(&compiled, &limits).unwrap();
    }

    let runs = 5_000;
    let mut store_us = Vec::with_capacity(runs);
    let mut instance_us = Vec::with_capacity(runs);
    for _ in 0..runs {
        let clock = Instant::now();
        runtime.store_only(&limits);
        store_us.push(clock.elapsed().as_secs_f64() * 1e6);
        let clock = Instant::now();
        runtime.instantiate_only(&compiled, &limits).unwrap();
        instance_us.push(clock.elapsed().as_secs_f64() * 1e6);
    }
    let store = median(&mut store_us);
    let instance = median(&mut instance_us);
    println!("store only (baseline):       median {store:.1} us");
    println!(
        "store + instantiate:         median {instance:.1} us ({:.1}x baseline)",
        instance / store
    );
}

fn bench_swaps_rss_and_latency() {
    let registry = Arc::new(Registry::new(
        Arc::new(PluginRuntime::new().unwrap()),
        Limits::default(),
        "versioned".into(),
    ));
    let versions = [
        std::fs::read(built_plugin("testing/versioned-1")).unwrap(),
        std::fs::read(built_plugin("testing/versioned-2")).unwrap(),
    ];
    let dir = TempDir::new("rfo-bench-swap");
    let live = dir.path().join("versioned.wasm");

    // Direct loads: compile + metadata + self-test + swap, the baseline for the watcher.
    std::fs::write(&live, &versions[0]).unwrap();
    registry.load_file(&live).unwrap();
    let rss_start = rss_mib();
    let mut load_ms = Vec::new();
    for i in 0..1_000 {
        std::fs::write(&live, &versions[(i + 1) % 2]).unwrap();
        let clock = Instant::now();
        registry.load_file(&live).unwrap();
        load_ms.push(clock.elapsed().as_secs_f64() * 1e3);
        if i == 99 {
            println!("RSS after 100 swaps:  {:.1} MiB", rss_mib());
        }
    }
    let rss_end = rss_mib();
    println!("RSS before swaps:     {rss_start:.1} MiB");
    println!(
        "RSS after 1000 swaps: {rss_end:.1} MiB ({:+.1} MiB)",
        rss_end - rss_start
    );
    let direct = median(&mut load_ms);
    println!("direct load (baseline): median {direct:.1} ms");

    // Through the folder watch: from the rename to the new version being resolvable.
    let _watch = rfo_host::plugin::watch::spawn(registry.clone(), dir.path()).unwrap();
    let mut landing_ms = Vec::new();
    for i in 0..20 {
        let bytes = &versions[(i + 1) % 2];
        let staged = dir.path().join(".versioned.wasm.new");
        std::fs::write(&staged, bytes).unwrap();
        let expected = if (i + 1) % 2 == 0 { "1.0.0" } else { "2.0.0" };
        let clock = Instant::now();
        std::fs::rename(&staged, &live).unwrap();
        while registry
            .resolve(None)
            .map(|p| p.version.clone())
            .ok()
            .as_deref()
            != Some(expected)
        {
            assert!(clock.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(1));
        }
        landing_ms.push(clock.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(300));
    }
    let landing = median(&mut landing_ms);
    println!(
        "file landing to serving: median {landing:.1} ms, max {:.1} ms ({:.1}x direct load)",
        landing_ms.last().unwrap(),
        landing / direct
    );
}

/// Times compiling a component with no cache (the baseline), into an empty cache (a worker's
/// first start) and from a cache a previous runtime filled (a restart).
fn bench_compile_cache() {
    for name in ["foreign-object", "exposure"] {
        let Some(bytes) = support::plugin_bytes(name) else {
            println!("{name}: not built, skipped (plugins/build.sh builds it)");
            continue;
        };
        let clock = Instant::now();
        PluginRuntime::new().unwrap().compile(&bytes).unwrap();
        let uncached = clock.elapsed().as_secs_f64() * 1e3;

        let cache = TempDir::new("rfo-bench-compile-cache");
        let clock = Instant::now();
        PluginRuntime::with_compile_cache(Some(cache.path()))
            .unwrap()
            .compile(&bytes)
            .unwrap();
        let first_start = clock.elapsed().as_secs_f64() * 1e3;

        // A new runtime, as after a restart, finds the code the first one stored.
        let clock = Instant::now();
        PluginRuntime::with_compile_cache(Some(cache.path()))
            .unwrap()
            .compile(&bytes)
            .unwrap();
        let restart = clock.elapsed().as_secs_f64() * 1e3;
        println!(
            "{name} ({} KiB): compile without cache {uncached:.1} ms (baseline); \
             into an empty cache {first_start:.1} ms ({:.2}x); from a warm cache {restart:.1} ms ({:.3}x)",
            bytes.len() / 1024,
            first_start / uncached,
            restart / uncached
        );
    }
}

fn main() {
    bench_instantiate();
    bench_swaps_rss_and_latency();
    bench_compile_cache();
}
