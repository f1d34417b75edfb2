//! `detect` in WebAssembly against the same detector compiled natively. It prints figures and
//! asserts nothing about speed; run it with `scripts/bench.sh detect`
//! (`cargo bench -p rfo-host --bench detect`).

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::time::Instant;

use rfo_foreign_object::ImageView;
use rfo_host::imaging::{self, BitDepth, DecodeLimits};
use rfo_host::plugin::runtime::WitImage;
use rfo_host::plugin::{Limits, PluginRuntime};

const RUNS: usize = 15;

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn bench_detect_wasm_against_native() {
    let runtime = PluginRuntime::new().unwrap();
    let limits = Limits::default();
    let compiled = runtime
        .compile(&std::fs::read(support::built_plugin("foreign-object")).unwrap())
        .unwrap();

    for name in [
        "chest-pa-nih-1.png",
        "chest-pa-rsna.dcm",
        "leg-ap-cr-lead-marker-j2k-lossless.dcm",
        "chest-pa-cr-mono1.dcm",
    ] {
        let bytes = std::fs::read(support::example(name)).unwrap();
        let radiograph = imaging::decode(&bytes, &DecodeLimits::default()).unwrap();
        let bit_depth = match radiograph.bit_depth {
            BitDepth::Eight => 8,
            BitDepth::Sixteen => 16,
        };
        let view = ImageView {
            width: radiograph.width,
            height: radiograph.height,
            bit_depth,
            channels: 1,
            pixels: &radiograph.pixels,
        };
        let image = WitImage {
            width: radiograph.width,
            height: radiograph.height,
            bit_depth,
            channels: 1,
            pixels: radiograph.pixels.clone(),
        };

        let mut native_ms = Vec::new();
        let mut wasm_ms = Vec::new();
        for _ in 0..RUNS {
            let clock = Instant::now();
            let native = rfo_foreign_object::detect(&view).unwrap();
            native_ms.push(clock.elapsed().as_secs_f64() * 1e3);
            let clock = Instant::now();
            let wasm = runtime.detect(&compiled, &image, &limits).unwrap();
            wasm_ms.push(clock.elapsed().as_secs_f64() * 1e3);
            assert_eq!(
                native.len(),
                wasm.len(),
                "native and Wasm disagree on {name}"
            );
        }
        let native = median(&mut native_ms);
        let wasm = median(&mut wasm_ms);
        println!(
            "{name:<40} {}x{} {bit_depth:>2}-bit  native {native:>7.1} ms  wasm {wasm:>7.1} ms  ratio {:.2}x",
            radiograph.width,
            radiograph.height,
            wasm / native
        );
    }
}

fn main() {
    bench_detect_wasm_against_native();
}
