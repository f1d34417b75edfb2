//! Test plugin for hot-swap tests: a well-behaved detector whose version is set at build time
//! by `RFO_VERSIONED_VERSION`, so that two builds are two versions of one plugin.
//!
//! Built for wasm32 only: on other targets the crate is empty.
#![cfg(target_arch = "wasm32")]
// The code that wit-bindgen generates uses `unsafe`.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    world: "detector",
    path: "../../../wit",
});

use exports::rfo::detector::plugin::{DetectError, Detection, Guest, Image, PluginInfo, Region};

struct Versioned;

const VERSION: &str = match option_env!("RFO_VERSIONED_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

impl Guest for Versioned {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "versioned".to_owned(),
            version: VERSION.to_owned(),
            detects: vec!["image".to_owned()],
            description: "Test plugin that boxes the whole image; its version is set at build time"
                .to_owned(),
        }
    }

    fn detect(image: Image) -> Result<Vec<Detection>, DetectError> {
        if image.width == 0 || image.height == 0 {
            return Ok(Vec::new());
        }
        Ok(vec![Detection {
            region: Region {
                x: 0,
                y: 0,
                width: image.width,
                height: image.height,
            },
            label: "image".to_owned(),
            score: 1.0,
        }])
    }
}

export!(Versioned);
