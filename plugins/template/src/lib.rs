//! Template rfo detection plugin: boxes the brightest spot of the image.
//!
//! Copy this folder to start a plugin (see `../README.md`). The shape to keep:
//! - `metadata()` and `detect()` are plain Rust, so tests and benchmarks run them natively.
//! - `export_detector!` turns them into the `rfo:detector` WebAssembly component when the crate
//!   is built for `wasm32-wasip2`. On other targets it expands to nothing.
//!
//! Inside the worker a plugin runs in a sandbox with no files, network or environment, and its
//! clocks read zero. `detect` therefore depends on the pixels alone.

use rfo_plugin_sdk::{DetectError, Detection, ImageView, PluginInfo, Region};

/// Label of every detection; list every label `detect` can return in `metadata().detects`.
pub const LABEL: &str = "brightest-spot";

/// Side of the box drawn around the brightest pixel, in pixels (clipped at the image edges).
const SPOT_SIDE: u32 = 9;

// Generates the component exports. The path is the folder of the WIT contract, relative to this
// crate's Cargo.toml; keep `../../wit` when the plugin sits directly under plugins/.
rfo_plugin_sdk::export_detector! {
    wit_path: "../../wit",
    metadata: crate::metadata,
    detect: crate::detect,
}

/// Describes the plugin. The worker calls this once when it loads the component.
pub fn metadata() -> PluginInfo {
    PluginInfo {
        // Lowercase letters, digits and `-`: clients choose the plugin by this name.
        name: "template",
        version: env!("CARGO_PKG_VERSION"),
        detects: &[LABEL],
        description: "Template plugin: boxes the brightest spot of the image",
    }
}

/// Returns one box around the brightest pixel (the first in row-major order when several tie),
/// scored by its brightness on a 0..=1 scale.
///
/// The image is 8- or 16-bit, grey or RGB, normalised so that higher means denser.
/// `luma_row` hides those differences behind one 0..=65535 scale.
pub fn detect(image: &ImageView<'_>) -> Result<Vec<Detection>, DetectError> {
    // Reject images whose description does not match their pixels, as the contract requires, rather
    // than panicking on an out-of-bounds index later. A panic would trap the component.
    image.validate()?;

    // (value, x, y); pixel (0, 0) wins when the image is all zero.
    let mut brightest = (0u16, 0u32, 0u32);
    let mut row = Vec::with_capacity(image.width as usize);
    for y in 0..image.height {
        image.luma_row(y, &mut row);
        for (x, &value) in row.iter().enumerate() {
            if value > brightest.0 {
                brightest = (value, x as u32, y);
            }
        }
    }
    let (value, x, y) = brightest;

    Ok(vec![Detection {
        region: box_around(x, y, image.width, image.height),
        label: LABEL.to_owned(),
        score: f32::from(value) / f32::from(u16::MAX),
    }])
}

/// Returns a square of `SPOT_SIDE` pixels centred on (x, y), clipped to the image, because the
/// contract requires every region to lie inside the image.
fn box_around(x: u32, y: u32, width: u32, height: u32) -> Region {
    let half = SPOT_SIDE / 2;
    let left = x.saturating_sub(half);
    let top = y.saturating_sub(half);
    let right = (x + half + 1).min(width);
    let bottom = (y + half + 1).min(height);
    Region {
        x: left,
        y: top,
        width: right - left,
        height: bottom - top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_centres_on_brightest_pixel() {
        let mut pixels = vec![10u8; 20 * 20];
        pixels[12 * 20 + 7] = 200;
        let image = ImageView {
            width: 20,
            height: 20,
            bit_depth: 8,
            channels: 1,
            pixels: &pixels,
        };
        let detections = detect(&image).unwrap();
        assert_eq!(detections.len(), 1);
        assert_eq!(
            detections[0].region,
            Region {
                x: 3,
                y: 8,
                width: 9,
                height: 9
            }
        );
        assert_eq!(detections[0].label, LABEL);
        assert!((detections[0].score - 200.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn box_is_clipped_at_the_corner() {
        let pixels = 0xffffu16.to_le_bytes();
        let image = ImageView {
            width: 1,
            height: 1,
            bit_depth: 16,
            channels: 1,
            pixels: &pixels,
        };
        let detections = detect(&image).unwrap();
        assert_eq!(
            detections[0].region,
            Region {
                x: 0,
                y: 0,
                width: 1,
                height: 1
            }
        );
        assert_eq!(detections[0].score, 1.0);
    }

    #[test]
    fn invalid_image_is_an_error() {
        let image = ImageView {
            width: 3,
            height: 3,
            bit_depth: 8,
            channels: 1,
            pixels: &[0; 8],
        };
        assert!(matches!(detect(&image), Err(DetectError::InvalidImage(_))));
    }
}
