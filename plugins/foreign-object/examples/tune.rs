//! Runs the foreign-object detector on radiographs and draws what it finds.
//!
//! ```text
//! cargo run --release --example tune -- IMAGE... [--out DIR] [--all]
//! ```
//!
//! Each IMAGE is a DICOM file (`.dcm`) or an image such as a PNG, decoded and normalised as the
//! worker does it. For each, the tool prints the detections, writes `DIR/NAME.metal.png` with
//! the boxes drawn in red (DIR defaults to the current folder), and with `--all` also prints the
//! rejected candidates and why they were rejected.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rfo_foreign_object::{Candidate, Verdict};
use rfo_plugin_devtools::{load_radiograph, write_overlay};

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut inputs = Vec::new();
    let mut out_dir = PathBuf::from(".");
    let mut show_all = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out_dir = args.next().ok_or("--out needs a folder")?.into(),
            "--all" => show_all = true,
            _ => inputs.push(PathBuf::from(arg)),
        }
    }
    if inputs.is_empty() {
        return Err("usage: tune IMAGE... [--out DIR] [--all]".into());
    }

    for input in &inputs {
        run_one(input, &out_dir, show_all)?;
    }
    Ok(())
}

fn run_one(
    input: &Path,
    out_dir: &Path,
    show_all: bool,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let started = Instant::now();
    let image = load_radiograph(input)?;
    let decode_time = started.elapsed();

    let started = Instant::now();
    let inspection = rfo_foreign_object::inspect(&image.view())?;
    let detect_time = started.elapsed();
    let detections = inspection.detections();

    println!(
        "{}: {}x{}, {}-bit, {} channel(s); decoded in {decode_time:.1?}, detected in {detect_time:.1?}",
        input.display(),
        image.width,
        image.height,
        image.bit_depth,
        image.channels,
    );
    println!(
        "  grid {}x{} (cell {} px), dynamic range {}",
        inspection.grid_width, inspection.grid_height, inspection.cell, inspection.dynamic_range
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
    if show_all {
        for candidate in &inspection.candidates {
            if candidate.verdict != Verdict::Kept {
                print_candidate(candidate);
            }
        }
    }

    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
    let overlay = out_dir.join(format!("{stem}.metal.png"));
    write_overlay(&image.view(), &detections, &overlay)?;
    println!("  wrote {}", overlay.display());
    Ok(())
}

fn print_candidate(candidate: &Candidate) {
    let c = &candidate.component;
    let r = candidate.region;
    println!(
        "    {:?}/{:?}: x={} y={} w={} h={}; {} cells, fill {:.2}, elongation {:.1}, contrast mean {:.0} max {}",
        candidate.scale,
        candidate.verdict,
        r.x,
        r.y,
        r.width,
        r.height,
        c.area,
        c.fill(),
        c.elongation,
        c.contrast_mean(),
        c.contrast_max,
    );
}
