//! The check a component must pass before it serves jobs.
//!
//! A plugin that cannot process a small, plain radiograph-like image would fail every job, so
//! the registry refuses it and keeps the previous version serving.

use super::runtime::{Compiled, Limits, PluginError, PluginRuntime, WitImage};

/// Side of the square self-test image, in pixels.
const SIZE: u32 = 64;

/// Builds a 16-bit grey gradient with a small dense square, like a marker on soft tissue.
pub fn test_image() -> WitImage {
    let mut pixels = Vec::with_capacity((SIZE * SIZE * 2) as usize);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let dense = (40..48).contains(&x) && (20..28).contains(&y);
            let value: u16 = if dense {
                60_000
            } else {
                8_000 + (x + y) as u16 * 150
            };
            pixels.extend_from_slice(&value.to_le_bytes());
        }
    }
    WitImage {
        width: SIZE,
        height: SIZE,
        bit_depth: 16,
        channels: 1,
        pixels,
    }
}

/// Runs `detect` on [`test_image`] within `limits`; any error fails the test.
pub fn run(
    runtime: &PluginRuntime,
    compiled: &Compiled,
    limits: &Limits,
) -> Result<usize, PluginError> {
    runtime
        .detect(compiled, &test_image(), limits)
        .map(|detections| detections.len())
}
