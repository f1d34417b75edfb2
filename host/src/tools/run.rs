//! `rfo plugin run`: run a plugin on one image, print its detections and write the overlay.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};

use rfo_common::job::Detection;

use crate::imaging::{self, BitDepth, DecodeLimits, OverlayBox};
use crate::plugin::runtime::WitImage;
use crate::plugin::{Limits, PluginRuntime};

/// Options of `rfo plugin run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub plugin: PathBuf,
    pub image: PathBuf,
    pub output: Option<PathBuf>,
    pub limits: Limits,
}

/// Runs the plugin and prints a report to standard output.
pub fn run(options: &RunOptions) -> anyhow::Result<()> {
    let runtime = PluginRuntime::new()?;
    let bytes = std::fs::read(&options.plugin)
        .with_context(|| format!("failed to read plugin {}", options.plugin.display()))?;

    let clock = Instant::now();
    let compiled = match runtime.compile(&bytes) {
        Ok(compiled) => compiled,
        Err(reason) => bail!("{}: {reason}", options.plugin.display()),
    };
    let compile_ms = ms(clock);
    let info = runtime
        .metadata(&compiled, &options.limits)
        .map_err(|e| anyhow::anyhow!("metadata() failed: {e}"))?;

    let image_bytes = std::fs::read(&options.image)
        .with_context(|| format!("failed to read image {}", options.image.display()))?;
    let clock = Instant::now();
    let radiograph = imaging::decode(&image_bytes, &DecodeLimits::default())
        .with_context(|| format!("failed to decode {}", options.image.display()))?;
    let decode_ms = ms(clock);

    let wit_image = WitImage {
        width: radiograph.width,
        height: radiograph.height,
        bit_depth: match radiograph.bit_depth {
            BitDepth::Eight => 8,
            BitDepth::Sixteen => 16,
        },
        channels: 1,
        pixels: radiograph.pixels.clone(),
    };
    let clock = Instant::now();
    let detections = runtime
        .detect(&compiled, &wit_image, &options.limits)
        .map_err(|e| anyhow::anyhow!("detect() failed: {e}"))?;
    let detect_ms = ms(clock);

    println!(
        "plugin   {} {} ({})",
        info.name, info.version, info.description
    );
    println!(
        "image    {} ({}x{}, {}-bit)",
        options.image.display(),
        wit_image.width,
        wit_image.height,
        wit_image.bit_depth
    );
    println!(
        "timings  compile {compile_ms:.1} ms, decode {decode_ms:.1} ms, detect {detect_ms:.1} ms"
    );
    println!("{} detection(s)", detections.len());
    if !detections.is_empty() {
        println!(
            "  {:<16} {:>6} {:>6} {:>6} {:>6} {:>6}",
            "label", "score", "x", "y", "width", "height"
        );
    }
    for d in &detections {
        println!(
            "  {:<16} {:>6.3} {:>6} {:>6} {:>6} {:>6}",
            d.label, d.score, d.region.x, d.region.y, d.region.width, d.region.height
        );
    }

    if let Some(output) = &options.output {
        let found: Vec<Detection> = detections.into_iter().map(Detection::from).collect();
        let boxes: Vec<OverlayBox<'_>> = found.iter().map(OverlayBox::from).collect();
        let clock = Instant::now();
        let png = imaging::render_overlay(&radiograph, &boxes)?;
        std::fs::write(output, &png)
            .with_context(|| format!("failed to write {}", output.display()))?;
        println!(
            "overlay  {} ({:.1} ms to draw and encode)",
            output.display(),
            ms(clock)
        );
    }
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
