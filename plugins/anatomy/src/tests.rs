//! Tests on synthetic images. Real radiographs are in `tests/radiographs.rs`.

use super::*;

fn grey16(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Returns a 600x400 image: flat bright collimated strips left of x = 60 and from x = 540, a flat dark
/// background, and a textured elliptical body centred at (300, 200) with half axes 150 and 120.
/// `interior` optionally adds a flat bright disc of that radius in the body's centre.
fn collimated_body(interior: Option<i64>) -> (u32, u32, Vec<u16>) {
    let (width, height) = (600u32, 400u32);
    let mut values = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (x as f64 - 300.0, y as f64 - 200.0);
            let in_body = (dx / 150.0).powi(2) + (dy / 120.0).powi(2) <= 1.0;
            let in_interior = interior.is_some_and(|r| (dx * dx + dy * dy) as i64 <= r * r);
            let value = if !(60..540).contains(&x) {
                60_000.0
            } else if in_interior {
                50_000.0
            } else if in_body {
                30_000.0 + 6_000.0 * (x as f64 / 7.0).sin() * (y as f64 / 9.0).cos()
            } else {
                3_000.0
            };
            values.push(value as u16);
        }
    }
    (width, height, values)
}

fn assert_near(actual: u32, expected: u32, what: &str, found: &Detection) {
    assert!(
        actual.abs_diff(expected) <= 4,
        "{what}: {actual} != {expected} (+-4): {found:?}"
    );
}

fn assert_body_box(found: &Detection) {
    assert_eq!(found.label, "anatomy");
    assert_near(found.region.x, 150, "left", found);
    assert_near(found.region.y, 80, "top", found);
    assert_near(found.region.x + found.region.width, 451, "right", found);
    assert_near(found.region.y + found.region.height, 321, "bottom", found);
    assert!(
        found.score > 0.5 && found.score <= 1.0,
        "score {}",
        found.score
    );
}

#[test]
fn body_found_between_collimated_strips() {
    let (width, height, values) = collimated_body(None);
    let pixels = grey16(&values);
    let image = ImageView {
        width,
        height,
        bit_depth: 16,
        channels: 1,
        pixels: &pixels,
    };
    let detections = detect(&image).unwrap();
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_body_box(&detections[0]);
}

#[test]
fn flat_organ_inside_body_is_kept() {
    let (width, height, values) = collimated_body(Some(60));
    let pixels = grey16(&values);
    let image = ImageView {
        width,
        height,
        bit_depth: 16,
        channels: 1,
        pixels: &pixels,
    };
    let detections = detect(&image).unwrap();
    assert_eq!(detections.len(), 1, "{detections:?}");
    assert_body_box(&detections[0]);
}

#[test]
fn body_found_in_8_bit_and_rgb() {
    let (width, height, values) = collimated_body(None);
    let grey8: Vec<u8> = values.iter().map(|v| (v >> 8) as u8).collect();
    let rgb8: Vec<u8> = grey8.iter().flat_map(|&v| [v, v, v]).collect();
    for (channels, pixels) in [(1, &grey8), (3, &rgb8)] {
        let image = ImageView {
            width,
            height,
            bit_depth: 8,
            channels,
            pixels,
        };
        let detections = detect(&image).unwrap();
        assert_eq!(detections.len(), 1, "{channels} channel(s): {detections:?}");
        assert_body_box(&detections[0]);
    }
}

#[test]
fn blank_and_tiny_images_give_nothing() {
    let flat = vec![0x40u8; 300 * 200 * 2];
    let cases = [
        (
            "flat",
            ImageView {
                width: 300,
                height: 200,
                bit_depth: 16,
                channels: 1,
                pixels: &flat,
            },
        ),
        (
            "1x1",
            ImageView {
                width: 1,
                height: 1,
                bit_depth: 8,
                channels: 1,
                pixels: &[200],
            },
        ),
    ];
    for (name, image) in cases {
        let detections = detect(&image).unwrap();
        assert!(detections.is_empty(), "{name}: {detections:?}");
    }
}

#[test]
fn speck_smaller_than_one_percent_is_ignored() {
    // A single bright pixel in 100x100: a clear split, but no body.
    let mut pixels = vec![10u8; 100 * 100];
    pixels[50 * 100 + 50] = 250;
    let image = ImageView {
        width: 100,
        height: 100,
        bit_depth: 8,
        channels: 1,
        pixels: &pixels,
    };
    let detections = detect(&image).unwrap();
    assert!(detections.is_empty(), "{detections:?}");
}

#[test]
fn invalid_images_are_rejected() {
    let pixels = [0u8; 5];
    let image = ImageView {
        width: 2,
        height: 2,
        bit_depth: 8,
        channels: 1,
        pixels: &pixels,
    };
    let result = detect(&image);
    assert!(
        matches!(result, Err(DetectError::InvalidImage(_))),
        "{result:?}"
    );
}

#[test]
fn metadata_lists_anatomy_label() {
    let info = metadata();
    assert_eq!(info.name, "anatomy");
    assert_eq!(info.detects, [LABEL]);
}
