//! Hostile test plugin: `detect` allocates 64 MiB blocks until the worker's memory limit stops it.
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

/// Size of each allocation. Every byte is written, so the memory is really committed.
const BLOCK_BYTES: usize = 64 * 1024 * 1024;

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "memory-bomb".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            detects: vec!["memory-bomb".to_owned()],
            description: "Test plugin whose detect allocates memory without bound".to_owned(),
        }
    }

    fn detect(image: Image) -> Result<Vec<Detection>, DetectError> {
        // Small images such as the worker's self-test get an empty result, so the plugin loads
        // and misbehaves only on real radiographs.
        if image.width <= 64 && image.height <= 64 {
            return Ok(Vec::new());
        }
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            blocks.push(black_box(vec![1u8; BLOCK_BYTES]));
            black_box(&mut blocks);
        }
    }
}

export!(MemoryBomb);
