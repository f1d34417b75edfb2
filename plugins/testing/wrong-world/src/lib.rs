//! Hostile test plugin: exports `rfo:detector@9.0.0` (the copy of the contract in `wit/` here),
//! a version that a 0.1.x worker must reject with a message naming both versions.
//!
//! Built for wasm32 only: on other targets the crate is empty, so that `cargo test` across the
//! plugins workspace still compiles it.
#![cfg(target_arch = "wasm32")]
// The code that wit-bindgen generates uses `unsafe`.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    world: "detector",
    path: "wit",
});

use exports::rfo::detector::plugin::{DetectError, Detection, Guest, Image, PluginInfo};

struct WrongWorld;

impl Guest for WrongWorld {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "wrong-world".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            detects: vec!["wrong-world".to_owned()],
            description: "Test plugin built against rfo:detector@9.0.0".to_owned(),
        }
    }

    fn detect(_image: Image) -> Result<Vec<Detection>, DetectError> {
        Ok(Vec::new())
    }
}

export!(WrongWorld);
