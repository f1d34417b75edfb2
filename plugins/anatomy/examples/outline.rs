//! Runs the anatomy detector on radiographs and draws the body box.
//!
//! ```text
//! cargo run --release --example outline -- IMAGE... [--out DIR]
//! ```
//!
//! Each IMAGE is a DICOM file (`.dcm`) or an image such as a PNG, decoded and normalised as the
//! worker does it. For each, the tool prints the detection and writes `DIR/NAME.anatomy.png`
//! with the box drawn in green (DIR defaults to the current folder).

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use rfo_plugin_devtools::{load_radiograph, write_overlay};

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut inputs = Vec::new();
    let mut out_dir = PathBuf::from(".");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out_dir = args.next().ok_or("--out needs a folder")?.into(),
            _ => inputs.push(PathBuf::from(arg)),
        }
    }
    if inputs.is_empty() {
        return Err("usage: outline IMAGE... [--out DIR]".into());
    }

    for input in &inputs {
        let image = load_radiograph(input)?;
        let started = Instant::now();
        let detections = rfo_anatomy::detect(&image.view())?;
        println!(
            "{}: {}x{}; detected in {:.1?}",
            input.display(),
            image.width,
            image.height,
            started.elapsed()
        );
        for detection in &detections {
            let r = detection.region;
            println!(
                "  {} x={} y={} w={} h={} score={:.2}",
                detection.label, r.x, r.y, r.width, r.height, detection.score
            );
        }
        if detections.is_empty() {
            println!("  no detections");
        }
        let stem = input.file_stem().unwrap_or_default().to_string_lossy();
        let overlay = out_dir.join(format!("{stem}.anatomy.png"));
        write_overlay(&image.view(), &detections, &overlay)?;
        println!("  wrote {}", overlay.display());
    }
    Ok(())
}
