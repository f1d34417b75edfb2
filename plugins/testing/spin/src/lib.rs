//! Hostile test plugin: `detect` never returns, so only the worker's deadline can stop it.
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

use exports::rfo::detector::plugin::{DetectError, Detection, Guest, Image, PluginInfo};
use std::hint::black_box;

struct Spin;

impl Guest for Spin {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "spin".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            detects: vec!["spin".to_owned()],
            description: "Test plugin whose detect never returns".to_owned(),
        }
    }

    fn detect(image: Image) -> Result<Vec<Detection>, DetectError> {
        // Small images such as the worker's self-test get an empty result, so the plugin loads
        // and misbehaves only on real radiographs.
        if image.width <= 64 && image.height <= 64 {
            return Ok(Vec::new());
        }
        let mut counter = 0u64;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }
}

export!(Spin);
