//! Hostile test plugin: `detect` returns 1,000,000 one-pixel detections, far more than a worker
//! should accept.
//!
//! Built for wasm32 only: on other targets the crate is empty, so that `cargo test` across the
//! plugins workspace still compiles it.
#![cfg(target_arch = "wasm32")]
// The code that wit-bindgen generates uses `unsafe`.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    world: "detector",
    path: "../../../wit",
});

use exports::rfo::detector::plugin::{DetectError, Detection, Guest, Image, PluginInfo, Region};
use std::hint::black_box;

const DETECTION_COUNT: usize = 1_000_000;

struct Flood;

impl Guest for Flood {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "flood".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            detects: vec!["flood".to_owned()],
            description: "Test plugin whose detect returns 1,000,000 detections".to_owned(),
        }
    }

    fn detect(image: Image) -> Result<Vec<Detection>, DetectError> {
        // Small images such as the worker's self-test get an empty result, so the plugin loads
        // and misbehaves only on real radiographs.
        if image.width <= 64 && image.height <= 64 {
            return Ok(Vec::new());
        }
        // Every region is a pixel inside any non-empty image, so only the count is hostile.
        let width = image.width.max(1);
        let height = image.height.max(1);
        let detections = (0..DETECTION_COUNT)
            .map(|i| {
                let i = i as u64;
                Detection {
                    region: Region {
                        x: (i % u64::from(width)) as u32,
                        y: (i / u64::from(width) % u64::from(height)) as u32,
                        width: 1,
                        height: 1,
                    },
                    label: "flood".to_owned(),
                    score: 0.5,
                }
            })
            .collect();
        Ok(black_box(detections))
    }
}

export!(Flood);
