//! Tests on synthetic images. Real radiographs are in `tests/radiographs.rs`.

use super::*;

/// Grey image whose value at each pixel comes from `value(x, y)` on a 0..=65535 scale.
struct Synthetic {
    width: u32,
    height: u32,
    values: Vec<u16>,
}

impl Synthetic {
    fn new(width: u32, height: u32, value: impl Fn(u32, u32) -> u16) -> Synthetic {
        let mut values = Vec::with_capacity(width as usize * height as usize);
        for y in 0..height {
            for x in 0..width {
                values.push(value(x, y));
            }
        }
        Synthetic {
            width,
            height,
            values,
        }
    }

    fn grey16(&self) -> Vec<u8> {
        self.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn grey8(&self) -> Vec<u8> {
        self.values.iter().map(|v| (v >> 8) as u8).collect()
    }

    fn rgb8(&self) -> Vec<u8> {
        self.values
            .iter()
            .flat_map(|v| [(v >> 8) as u8; 3])
            .collect()
    }

    fn rgb16(&self) -> Vec<u8> {
        self.values
            .iter()
            .flat_map(|v| {
                let [low, high] = v.to_le_bytes();
                [low, high, low, high, low, high]
            })
            .collect()
    }

    fn view<'a>(&self, bit_depth: u8, channels: u8, pixels: &'a [u8]) -> ImageView<'a> {
        ImageView {
            width: self.width,
            height: self.height,
            bit_depth,
            channels,
            pixels,
        }
    }
}

/// Soft-tissue-like background: a smooth horizontal ramp from 15 % to 45 % of full scale.
fn background(x: u32, width: u32) -> u16 {
    (10_000 + 20_000 * u64::from(x) / u64::from(width)) as u16
}

/// Returns a 600x500 image with a dense disc of radius 20 centred at (400, 150).
fn disc_image() -> Synthetic {
    Synthetic::new(600, 500, |x, y| {
        let (dx, dy) = (x as i64 - 400, y as i64 - 150);
        if dx * dx + dy * dy <= 20 * 20 {
            60_000
        } else {
            background(x, 600)
        }
    })
}

fn overlaps(region: Region, left: u32, top: u32, right: u32, bottom: u32) -> bool {
    let target = Region {
        x: left,
        y: top,
        width: right - left,
        height: bottom - top,
    };
    region.intersection_area(&target) > 0
}

#[test]
fn metadata_lists_metal_label() {
    let info = metadata();
    assert_eq!(info.name, "foreign-object");
    assert_eq!(info.detects, [LABEL]);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn disc_found_in_every_format() {
    let image = disc_image();
    let formats = [
        (16, 1, image.grey16()),
        (8, 1, image.grey8()),
        (8, 3, image.rgb8()),
        (16, 3, image.rgb16()),
    ];
    for (bit_depth, channels, pixels) in &formats {
        let detections = detect(&image.view(*bit_depth, *channels, pixels)).unwrap();
        let format = format!("{bit_depth}-bit, {channels} channel(s)");
        assert_eq!(detections.len(), 1, "{format}: {detections:?}");
        let found = &detections[0];
        assert_eq!(found.label, "metal", "{format}");
        assert!(found.score > 0.9, "{format}: score {}", found.score);
        assert!(
            overlaps(found.region, 380, 130, 421, 171),
            "{format}: {found:?}"
        );
        // The box hugs the disc: 41 pixels across, give or take one pixel per side.
        assert!(
            (39..=43).contains(&found.region.width),
            "{format}: {found:?}"
        );
        assert!(
            (39..=43).contains(&found.region.height),
            "{format}: {found:?}"
        );
    }
}

#[test]
fn thin_clip_found_at_thin_scale() {
    // A 3x16 pixel bar 6000 above a background ramp that spans 20000: 0.3 of the dynamic
    // range, too faint for the dense scale.
    let image = Synthetic::new(400, 400, |x, y| {
        let base = background(x, 400);
        if (200..203).contains(&x) && (100..116).contains(&y) {
            base + 6_000
        } else {
            base
        }
    });
    let pixels = image.grey16();
    let inspection = inspect(&image.view(16, 1, &pixels)).unwrap();
    let kept: Vec<&Candidate> = inspection
        .candidates
        .iter()
        .filter(|candidate| candidate.verdict == Verdict::Kept)
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", inspection.candidates);
    assert_eq!(kept[0].scale, Scale::Thin);
    assert_eq!(
        kept[0].region,
        Region {
            x: 200,
            y: 100,
            width: 3,
            height: 16
        }
    );
}

#[test]
fn plain_and_ramp_images_give_nothing() {
    let cases = [
        ("flat", Synthetic::new(300, 200, |_, _| 30_000)),
        ("ramp", Synthetic::new(300, 200, |x, _| background(x, 300))),
        ("black", Synthetic::new(64, 64, |_, _| 0)),
        ("white", Synthetic::new(64, 64, |_, _| u16::MAX)),
    ];
    for (name, image) in cases {
        let pixels = image.grey16();
        let detections = detect(&image.view(16, 1, &pixels)).unwrap();
        assert!(detections.is_empty(), "{name}: {detections:?}");
    }
}

#[test]
fn collimated_border_is_not_metal() {
    // A bright band along the left edge, as a collimator blade leaves it.
    let image = Synthetic::new(
        500,
        400,
        |x, _| if x < 40 { 62_000 } else { background(x, 500) },
    );
    let pixels = image.grey16();
    let detections = detect(&image.view(16, 1, &pixels)).unwrap();
    assert!(detections.is_empty(), "{detections:?}");
}

#[test]
fn tiny_images_are_handled() {
    for (width, height) in [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5)] {
        let image = Synthetic::new(width, height, |x, y| ((x + y) * 9_000) as u16);
        let pixels = image.grey16();
        let detections = detect(&image.view(16, 1, &pixels)).unwrap();
        assert!(detections.is_empty(), "{width}x{height}: {detections:?}");
    }
}

#[test]
fn invalid_images_are_rejected() {
    let pixels = [0u8; 12];
    let cases = [
        (
            "short buffer",
            ImageView {
                width: 4,
                height: 4,
                bit_depth: 8,
                channels: 1,
                pixels: &pixels,
            },
        ),
        (
            "12-bit",
            ImageView {
                width: 2,
                height: 3,
                bit_depth: 12,
                channels: 1,
                pixels: &pixels,
            },
        ),
        (
            "2 channels",
            ImageView {
                width: 3,
                height: 2,
                bit_depth: 8,
                channels: 2,
                pixels: &pixels,
            },
        ),
        (
            "empty",
            ImageView {
                width: 0,
                height: 0,
                bit_depth: 8,
                channels: 1,
                pixels: &[],
            },
        ),
    ];
    for (name, image) in cases {
        let result = detect(&image);
        assert!(
            matches!(result, Err(DetectError::InvalidImage(_))),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn output_is_capped_and_sorted() {
    // 12x12 discs of radius 5, with contrasts that rise along the rows: 144 objects.
    let image = Synthetic::new(1200, 1200, |x, y| {
        let (column, row) = (x / 100, y / 100);
        let (dx, dy) = (x as i64 % 100 - 50, y as i64 % 100 - 50);
        if dx * dx + dy * dy <= 25 {
            (30_000 + 2_000 * row + 100 * column) as u16
        } else {
            8_000
        }
    });
    let pixels = image.grey16();
    let inspection = inspect(&image.view(16, 1, &pixels)).unwrap();
    let kept = inspection
        .candidates
        .iter()
        .filter(|candidate| candidate.verdict == Verdict::Kept)
        .count();
    assert!(kept > MAX_DETECTIONS, "only {kept} kept");

    let detections = inspection.detections();
    assert_eq!(detections.len(), MAX_DETECTIONS);
    for pair in detections.windows(2) {
        assert!(pair[0].score >= pair[1].score, "{pair:?}");
    }
}

#[test]
fn same_image_gives_same_output() {
    let image = disc_image();
    let pixels = image.grey16();
    let first = detect(&image.view(16, 1, &pixels)).unwrap();
    let second = detect(&image.view(16, 1, &pixels)).unwrap();
    assert_eq!(first, second);
}

#[test]
fn large_image_box_maps_to_source_pixels() {
    // 8192x8192 8-bit: the grid cell is 8 pixels, and the refined box must still hug the disc.
    let (width, height) = (8192u32, 8192u32);
    let (centre_x, centre_y, radius) = (6000i64, 2000i64, 120i64);
    let mut pixels = vec![0u8; width as usize * height as usize];
    for (y, row) in pixels.chunks_exact_mut(width as usize).enumerate() {
        for (x, pixel) in row.iter_mut().enumerate() {
            let (dx, dy) = (x as i64 - centre_x, y as i64 - centre_y);
            *pixel = if dx * dx + dy * dy <= radius * radius {
                240
            } else {
                60
            };
        }
    }
    let image = ImageView {
        width,
        height,
        bit_depth: 8,
        channels: 1,
        pixels: &pixels,
    };
    let detections = detect(&image).unwrap();
    assert_eq!(detections.len(), 1, "{detections:?}");
    let region = detections[0].region;
    assert!(region.x.abs_diff(5880) <= 1, "{region:?}");
    assert!(region.y.abs_diff(1880) <= 1, "{region:?}");
    assert!(region.width.abs_diff(241) <= 2, "{region:?}");
    assert!(region.height.abs_diff(241) <= 2, "{region:?}");
}
