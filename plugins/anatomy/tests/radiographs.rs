//! The anatomy detector on real radiographs, decoded and normalised as the worker does it.
//!
//! The files live in the repository's `examples/radiographs`; a missing file fails the
//! test.

use rfo_anatomy::{Detection, detect};
use rfo_plugin_devtools::{load_radiograph, sample_radiograph};

fn detect_in(name: &str) -> (u32, u32, Vec<Detection>) {
    let path = sample_radiograph(name);
    let image =
        load_radiograph(&path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    let detections =
        detect(&image.view()).unwrap_or_else(|e| panic!("detect failed on {name}: {e}"));
    (image.width, image.height, detections)
}

#[test]
fn leg_box_excludes_collimated_strips() {
    // The leg spans about x = 550..1210 over the full height. Collimated (bright) strips cover
    // x < 470 and x > 1240.
    let (_, height, detections) = detect_in("leg-ap-cr-lead-marker-j2k-lossless.dcm");
    assert_eq!(detections.len(), 1, "{detections:?}");
    let region = detections[0].region;
    let right = region.x + region.width;
    assert!((470..=600).contains(&region.x), "left edge: {region:?}");
    assert!((1150..=1240).contains(&right), "right edge: {region:?}");
    assert!(region.y <= 10, "top edge: {region:?}");
    assert!(
        region.y + region.height >= height - 10,
        "bottom edge: {region:?}"
    );
}

#[test]
fn chest_body_fills_the_frame() {
    for name in [
        "chest-pa-cr-mono1.dcm",
        "chest-pa-rsna.dcm",
        "chest-pa-nih-1.png",
    ] {
        let (width, height, detections) = detect_in(name);
        assert_eq!(detections.len(), 1, "{name}: {detections:?}");
        let region = detections[0].region;
        let covered = u64::from(region.width) * u64::from(region.height);
        let total = u64::from(width) * u64::from(height);
        assert!(10 * covered >= 9 * total, "{name}: {region:?}");
    }
}
