//! Hostile test plugin: `detect` panics, which traps the component instance.
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

struct Panic;

impl Guest for Panic {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "panic".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            detects: vec!["panic".to_owned()],
            description: "Test plugin whose detect panics".to_owned(),
        }
    }

    fn detect(image: Image) -> Result<Vec<Detection>, DetectError> {
        // Small images such as the worker's self-test get an empty result, so the plugin loads
        // and misbehaves only on real radiographs.
        if image.width <= 64 && image.height <= 64 {
            return Ok(Vec::new());
        }
        // black_box keeps the panic behind a condition that the compiler cannot resolve.
        if black_box(image.width) != u32::MAX {
            panic!("rfo test plugin `panic` panics in detect on purpose");
        }
        Ok(Vec::new())
    }
}

export!(Panic);
