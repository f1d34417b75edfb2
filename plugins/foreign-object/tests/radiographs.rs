//! The detector on real radiographs, decoded and normalised as the worker does it.
//!
//! The files live in the repository's `examples/radiographs`; a missing file fails the
//! test. The marker positions below were read off the decoded images.

use rfo_foreign_object::{Detection, Region, detect};
use rfo_plugin_devtools::{load_radiograph, sample_radiograph};

fn detect_in(name: &str) -> Vec<Detection> {
    let path = sample_radiograph(name);
    let image =
        load_radiograph(&path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    detect(&image.view()).unwrap_or_else(|e| panic!("detect failed on {name}: {e}"))
}

fn area(region: &Region) -> u64 {
    u64::from(region.width) * u64::from(region.height)
}

#[test]
fn leg_lead_marker_is_boxed() {
    // The mirrored lead "R" lies right of the ankle; its strokes span these pixels.
    let marker = Region {
        x: 1152,
        y: 1392,
        width: 60,
        height: 76,
    };
    let detections = detect_in("leg-ap-cr-lead-marker-j2k-lossless.dcm");

    let on_marker: Vec<&Detection> = detections
        .iter()
        .filter(|d| 10 * d.region.intersection_area(&marker) >= 8 * area(&marker))
        .collect();
    assert_eq!(on_marker.len(), 1, "{detections:?}");
    let found = on_marker[0];
    assert_eq!(found.label, "metal");
    assert!(found.score >= 0.9, "score {}", found.score);
    assert!(
        area(&found.region) <= 2 * area(&marker),
        "box too large: {found:?}"
    );
}

#[test]
fn leg_has_no_other_boxes() {
    let detections = detect_in("leg-ap-cr-lead-marker-j2k-lossless.dcm");
    assert_eq!(detections.len(), 1, "{detections:?}");
}

#[test]
fn chests_without_metal_stay_quiet() {
    // These show only anatomy and, in the PNGs, a small side marker near the top right corner.
    for name in [
        "chest-pa-cr-mono1.dcm",
        "chest-pa-nih-1.png",
        "chest-pa-nih-2.png",
    ] {
        let detections = detect_in(name);
        assert!(detections.len() <= 2, "{name}: {detections:?}");
    }
}

#[test]
fn compressed_and_plain_chest_agree() {
    // The JPEG 2000 lossless file decodes to the same pixels as the uncompressed one.
    let plain = detect_in("chest-pa-cr-mono1.dcm");
    let compressed = detect_in("chest-pa-cr-mono1-j2k-lossless.dcm");
    assert_eq!(plain, compressed);
}

#[test]
fn chest_side_marker_is_boxed() {
    // The lead "L" of the side marker in the top right corner of the RSNA chest.
    let marker = Region {
        x: 893,
        y: 48,
        width: 22,
        height: 34,
    };
    let detections = detect_in("chest-pa-rsna.dcm");
    let found = detections
        .iter()
        .any(|d| 2 * d.region.intersection_area(&marker) >= area(&marker) && d.score >= 0.9);
    assert!(found, "{detections:?}");
}
