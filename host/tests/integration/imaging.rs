//! Decoding and overlay tests against the sample radiographs and synthetic images.
//!
//! The samples are read from `RFO_SAMPLES_DIR`, by default `examples/radiographs`.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage};
use rfo_host::imaging::{
    BitDepth, DecodeError, DecodeLimits, OverlayBox, OverlayError, Radiograph, SourceFormat,
    box_colors, decode, draw_overlay, encode_png, render_overlay,
};

const CHEST_MONO1: &str = "chest-pa-cr-mono1.dcm";
const CHEST_MONO1_J2K: &str = "chest-pa-cr-mono1-j2k-lossless.dcm";
const CHEST_RSNA: &str = "chest-pa-rsna.dcm";
const LEG_J2K: &str = "leg-ap-cr-lead-marker-j2k-lossless.dcm";
const CHEST_PNG_1: &str = "chest-pa-nih-1.png";
const CHEST_PNG_2: &str = "chest-pa-nih-2.png";

fn samples_dir() -> PathBuf {
    match std::env::var_os("RFO_SAMPLES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/radiographs"),
    }
}

fn read_sample(name: &str) -> Vec<u8> {
    let path = samples_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "failed to read sample {}: {e}. Set RFO_SAMPLES_DIR to the folder of sample radiographs",
            path.display()
        )
    })
}

/// Decodes a sample once per test binary, because the JPEG 2000 samples take most of a second.
fn decoded_sample(name: &'static str) -> &'static Radiograph {
    static CACHE: OnceLock<std::sync::Mutex<Vec<(&str, &'static Radiograph)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // A failed decode poisons the lock, but the cache itself stays consistent.
    let mut entries = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, image)) = entries.iter().find(|(n, _)| *n == name) {
        return image;
    }
    let image = decode(&read_sample(name), &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("failed to decode {name}: {e:?}"));
    let image: &'static Radiograph = Box::leak(Box::new(image));
    entries.push((name, image));
    image
}

fn png_bytes(image: DynamicImage) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).unwrap();
    bytes.into_inner()
}

fn jpeg_bytes(image: DynamicImage) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
    bytes.into_inner()
}

/// Mean sample value over a square of `2 * half + 1` pixels centred on `(x, y)`.
fn patch_mean(image: &Radiograph, x: u32, y: u32, half: u32) -> f64 {
    let mut sum = 0.0;
    let mut count = 0.0;
    for py in y - half..=y + half {
        for px in x - half..=x + half {
            sum += f64::from(image.sample(px, py).unwrap());
            count += 1.0;
        }
    }
    sum / count
}

fn min_max(image: &Radiograph) -> (u16, u16) {
    let mut range = (u16::MAX, u16::MIN);
    for y in 0..image.height {
        for x in 0..image.width {
            let v = image.sample(x, y).unwrap();
            range = (range.0.min(v), range.1.max(v));
        }
    }
    range
}

// ---- sample files ----

#[test]
fn samples_decode_to_expected_size() {
    let cases = [
        (
            CHEST_MONO1,
            1841,
            1955,
            BitDepth::Sixteen,
            SourceFormat::Dicom,
        ),
        (
            CHEST_MONO1_J2K,
            1841,
            1955,
            BitDepth::Sixteen,
            SourceFormat::Dicom,
        ),
        (LEG_J2K, 1760, 1760, BitDepth::Sixteen, SourceFormat::Dicom),
        (CHEST_PNG_1, 512, 512, BitDepth::Eight, SourceFormat::Png),
        (CHEST_PNG_2, 512, 512, BitDepth::Eight, SourceFormat::Png),
    ];
    for (name, width, height, bit_depth, source) in cases {
        let image = decoded_sample(name);
        assert_eq!((image.width, image.height), (width, height), "{name} size");
        assert_eq!(image.bit_depth, bit_depth, "{name} bit depth");
        assert_eq!(image.source, source, "{name} source");
        assert_eq!(
            Some(image.pixels.len()),
            image.expected_len(),
            "{name} buffer length"
        );
    }
}

#[test]
fn rsna_chest_decodes_as_sixteen_bit() {
    let image = decoded_sample(CHEST_RSNA);

    assert_eq!(image.bit_depth, BitDepth::Sixteen);
    assert_eq!(image.source, SourceFormat::Dicom);
    assert_eq!(Some(image.pixels.len()), image.expected_len());
    assert!(
        image.width >= 256 && image.height >= 256,
        "{}x{}",
        image.width,
        image.height
    );
}

#[test]
fn dicom_without_window_spans_full_range() {
    // The RSNA chest has no window, so its own minimum and maximum become 0 and 65535.
    let (low, high) = min_max(decoded_sample(CHEST_RSNA));

    assert_eq!(low, 0);
    assert_eq!(high, 65535);
}

#[test]
fn chest_spine_brighter_than_lungs() {
    let image = decoded_sample(CHEST_MONO1);
    let (w, h) = (image.width, image.height);

    // Spine in the middle of the thorax, lung fields halfway between it and the ribs' edges.
    let spine = patch_mean(image, w / 2, h / 2, 20);
    let right_lung = patch_mean(image, w * 3 / 10, h * 2 / 5, 20);
    let left_lung = patch_mean(image, w * 7 / 10, h * 2 / 5, 20);

    assert!(
        spine > right_lung + 8000.0,
        "spine {spine} vs right lung {right_lung}"
    );
    assert!(
        spine > left_lung + 8000.0,
        "spine {spine} vs left lung {left_lung}"
    );
}

#[test]
fn chest_jpeg2000_matches_uncompressed() {
    let uncompressed = decoded_sample(CHEST_MONO1);
    let jpeg2000 = decoded_sample(CHEST_MONO1_J2K);

    assert_eq!(
        (uncompressed.width, uncompressed.height),
        (jpeg2000.width, jpeg2000.height)
    );
    assert!(uncompressed.pixels == jpeg2000.pixels, "pixels differ");
}

#[test]
fn leg_marker_bright_open_field_dark() {
    // MONOCHROME1 leg: after windowing and inversion, the lead "R" marker and the collimated
    // border (no exposure) are bright, and the open field beside the leg (full exposure) dark.
    let image = decoded_sample(LEG_J2K);
    let marker_stroke = image.sample(1184, 1430).unwrap();
    let marker_holder = image.sample(1184, 1420).unwrap();
    let collimated = image.sample(100, 880).unwrap();
    let open_field = image.sample(530, 800).unwrap();

    assert!(marker_stroke > 40000, "marker stroke {marker_stroke}");
    assert!(marker_holder < 16384, "marker holder {marker_holder}");
    assert_eq!(collimated, 65535);
    assert!(open_field < 16384, "open field {open_field}");
}

#[test]
fn dicom_without_preamble_decodes() {
    let with_preamble = read_sample(CHEST_RSNA);

    let without = decode(&with_preamble[128..], &DecodeLimits::default()).unwrap();

    assert_eq!(&without, decoded_sample(CHEST_RSNA));
}

#[test]
fn truncated_samples_fail_cleanly() {
    for name in [CHEST_MONO1, CHEST_RSNA, LEG_J2K, CHEST_PNG_1] {
        let bytes = read_sample(name);
        for fraction in [0.0, 0.01, 0.1, 0.5, 0.9, 0.999] {
            let len = (bytes.len() as f64 * fraction) as usize;
            let result = decode(&bytes[..len], &DecodeLimits::default());
            assert!(result.is_err(), "{name} truncated to {len} bytes decoded");
        }
    }
}

#[test]
fn corrupted_headers_never_panic() {
    // Bytes flipped in the first 4 KiB hit the DICOM meta and data set headers, the codestream
    // headers and the PNG chunks. Some such files still decode (to a wrong picture), and the
    // rest must fail cleanly. Nothing may panic. The JPEG 2000 leg gets fewer rounds because
    // each decode that gets through takes most of a second.
    for (name, rounds) in [(CHEST_RSNA, 16), (LEG_J2K, 4), (CHEST_PNG_1, 16)] {
        let original = read_sample(name);
        let header_len = original.len().min(4096) as u64;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..rounds {
            let mut bytes = original.clone();
            for _ in 0..4 {
                seed = xorshift(seed);
                let index = (seed % header_len) as usize;
                bytes[index] ^= (seed >> 32) as u8 | 1;
            }
            let _ = decode(&bytes, &DecodeLimits::default());
        }
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

// ---- format sniffing and limits ----

#[test]
fn random_garbage_is_unsupported_format() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            seed = xorshift(seed);
            seed as u8
        })
        .collect();

    for len in [0, 1, 3, 131, 132, 4096] {
        let result = decode(&garbage[..len], &DecodeLimits::default());
        assert!(
            matches!(result, Err(DecodeError::UnsupportedFormat)),
            "{len} bytes: {result:?}"
        );
    }
}

#[test]
fn unsupported_format_lists_accepted_formats() {
    let message = decode(b"GIF89a", &DecodeLimits::default())
        .unwrap_err()
        .to_string();

    assert!(message.contains("PNG"), "{message}");
    assert!(message.contains("JPEG"), "{message}");
    assert!(message.contains("DICOM"), "{message}");
}

#[test]
fn garbage_after_each_signature_is_invalid() {
    let signatures: [(&[u8], SourceFormat); 3] = [
        (b"\x89PNG\r\n\x1a\n", SourceFormat::Png),
        (&[0xFF, 0xD8, 0xFF], SourceFormat::Jpeg),
        (b"DICM", SourceFormat::Dicom),
    ];
    for (signature, format) in signatures {
        let mut bytes = signature.to_vec();
        bytes.extend(std::iter::repeat_n(0xA5, 300));

        let result = decode(&bytes, &DecodeLimits::default());

        assert!(
            matches!(&result, Err(DecodeError::Invalid { format: f, .. }) if *f == format),
            "{format}: {result:?}"
        );
    }
}

#[test]
fn size_limit_checked_before_png_pixels() {
    // A 1x1 PNG whose header is changed to declare 100000x100000 pixels: only a check made
    // before decoding can report the size instead of the missing pixel data.
    let mut bytes = png_bytes(DynamicImage::ImageLuma8(ImageBuffer::new(1, 1)));
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    fix_png_ihdr_crc(&mut bytes);

    let result = decode(&bytes, &DecodeLimits::default());

    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                width: 100_000,
                height: 100_000,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn size_limit_applies_to_each_format() {
    let limits = DecodeLimits { max_pixels: 1000 };
    for name in [CHEST_PNG_1, CHEST_MONO1, LEG_J2K] {
        let result = decode(&read_sample(name), &limits);
        assert!(
            matches!(result, Err(DecodeError::TooLarge { .. })),
            "{name}: {result:?}"
        );
    }
    let jpeg = jpeg_bytes(DynamicImage::ImageLuma8(ImageBuffer::new(40, 30)));
    let result = decode(&jpeg, &limits);
    assert!(
        matches!(result, Err(DecodeError::TooLarge { .. })),
        "JPEG: {result:?}"
    );
}

#[test]
fn size_limit_checked_before_dicom_pixels() {
    // 60000x60000 declared, 4 bytes of pixel data present.
    let bytes = SyntheticDicom::new(60000, 60000, vec![0; 2]).encode();

    let result = decode(&bytes, &DecodeLimits::default());

    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                width: 60000,
                height: 60000,
                ..
            })
        ),
        "{result:?}"
    );
}

fn fix_png_ihdr_crc(bytes: &mut [u8]) {
    // The CRC covers the chunk type and data: bytes 12..29 of the file.
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

// ---- PNG and JPEG conversion ----

#[test]
fn sixteen_bit_png_keeps_full_range() {
    let gradient = ImageBuffer::from_fn(256, 2, |x, _| Luma([(x * 257) as u16]));
    let bytes = png_bytes(DynamicImage::ImageLuma16(gradient.clone()));

    let image = decode(&bytes, &DecodeLimits::default()).unwrap();

    assert_eq!(image.bit_depth, BitDepth::Sixteen);
    assert_eq!(image.source, SourceFormat::Png);
    assert_eq!(image.sample(0, 0), Some(0));
    assert_eq!(image.sample(255, 1), Some(65535));
    for (x, y, pixel) in gradient.enumerate_pixels() {
        assert_eq!(image.sample(x, y), Some(pixel.0[0]), "sample at {x},{y}");
    }
}

#[test]
fn eight_bit_grey_png_is_unchanged() {
    let grey = ImageBuffer::from_fn(16, 16, |x, y| Luma([(x * 16 + y) as u8]));
    let bytes = png_bytes(DynamicImage::ImageLuma8(grey.clone()));

    let image = decode(&bytes, &DecodeLimits::default()).unwrap();

    assert_eq!(image.bit_depth, BitDepth::Eight);
    assert_eq!(image.pixels, grey.into_raw());
}

#[test]
fn rgb_png_becomes_luma_of_same_depth() {
    let rgb8 = RgbImage::from_fn(4, 1, |x, _| match x {
        0 => Rgb([0, 0, 0]),
        1 => Rgb([200, 200, 200]),
        2 => Rgb([255, 0, 0]),
        _ => Rgb([0, 255, 0]),
    });
    let image = decode(
        &png_bytes(DynamicImage::ImageRgb8(rgb8)),
        &DecodeLimits::default(),
    );
    let image = image.unwrap();

    assert_eq!(image.bit_depth, BitDepth::Eight);
    assert_eq!(image.sample(0, 0), Some(0));
    assert_eq!(image.sample(1, 0), Some(200));
    // Green weighs more than red in luma.
    assert!(image.sample(3, 0) > image.sample(2, 0));

    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(2, 1, |x, _| Rgb([x as u16 * 65535; 3]));
    let image = decode(
        &png_bytes(DynamicImage::ImageRgb16(rgb16)),
        &DecodeLimits::default(),
    );
    let image = image.unwrap();

    assert_eq!(image.bit_depth, BitDepth::Sixteen);
    assert_eq!(image.sample(0, 0), Some(0));
    assert_eq!(image.sample(1, 0), Some(65535));
}

#[test]
fn rgba_png_drops_alpha() {
    let rgba = image::RgbaImage::from_pixel(3, 3, image::Rgba([120, 120, 120, 0]));

    let image = decode(
        &png_bytes(DynamicImage::ImageRgba8(rgba)),
        &DecodeLimits::default(),
    );
    let image = image.unwrap();

    assert_eq!(image.bit_depth, BitDepth::Eight);
    assert_eq!(image.sample(1, 1), Some(120));
}

#[test]
fn jpeg_grey_and_colour_are_eight_bit() {
    let grey = ImageBuffer::from_pixel(32, 24, Luma([128u8]));
    let image = decode(
        &jpeg_bytes(DynamicImage::ImageLuma8(grey)),
        &DecodeLimits::default(),
    );
    let image = image.unwrap();

    assert_eq!((image.width, image.height), (32, 24));
    assert_eq!(image.bit_depth, BitDepth::Eight);
    assert_eq!(image.source, SourceFormat::Jpeg);
    assert!(image.sample(5, 5).unwrap().abs_diff(128) <= 2);

    let colour = RgbImage::from_pixel(32, 24, Rgb([90, 90, 90]));
    let image = decode(
        &jpeg_bytes(DynamicImage::ImageRgb8(colour)),
        &DecodeLimits::default(),
    );
    let image = image.unwrap();

    assert_eq!(image.bit_depth, BitDepth::Eight);
    assert!(image.sample(5, 5).unwrap().abs_diff(90) <= 2);
}

// ---- synthetic DICOM ----

/// Writer for minimal explicit VR little-endian DICOM files with a grayscale image.
struct SyntheticDicom {
    columns: u16,
    rows: u16,
    frames: u32,
    photometric: &'static str,
    samples_per_pixel: u16,
    /// 16 or 32.
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
    /// Window Center and Width.
    window: Option<(f64, f64)>,
    /// Rescale Slope and Intercept.
    rescale: Option<(f64, f64)>,
    /// Stored values of all frames, row-major, written in `bits_allocated` bits each.
    values: Vec<u32>,
}

impl SyntheticDicom {
    fn new(columns: u16, rows: u16, values: Vec<u32>) -> Self {
        SyntheticDicom {
            columns,
            rows,
            frames: 1,
            photometric: "MONOCHROME2",
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 16,
            signed: false,
            window: None,
            rescale: None,
            values,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut meta = Vec::new();
        element(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
        element(
            &mut meta,
            0x0002,
            0x0002,
            b"UI",
            &ui("1.2.840.10008.5.1.4.1.1.1"),
        );
        element(
            &mut meta,
            0x0002,
            0x0003,
            b"UI",
            &ui("1.2.826.0.1.3680043.2.1125.1"),
        );
        element(&mut meta, 0x0002, 0x0010, b"UI", &ui("1.2.840.10008.1.2.1"));

        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        element(
            &mut bytes,
            0x0002,
            0x0000,
            b"UL",
            &(meta.len() as u32).to_le_bytes(),
        );
        bytes.extend_from_slice(&meta);

        let us = |v: u16| v.to_le_bytes().to_vec();
        element(
            &mut bytes,
            0x0028,
            0x0002,
            b"US",
            &us(self.samples_per_pixel),
        );
        element(&mut bytes, 0x0028, 0x0004, b"CS", &text(self.photometric));
        if self.frames > 1 {
            element(
                &mut bytes,
                0x0028,
                0x0008,
                b"IS",
                &text(&self.frames.to_string()),
            );
        }
        element(&mut bytes, 0x0028, 0x0010, b"US", &us(self.rows));
        element(&mut bytes, 0x0028, 0x0011, b"US", &us(self.columns));
        element(&mut bytes, 0x0028, 0x0100, b"US", &us(self.bits_allocated));
        element(&mut bytes, 0x0028, 0x0101, b"US", &us(self.bits_stored));
        element(&mut bytes, 0x0028, 0x0102, b"US", &us(self.bits_stored - 1));
        element(
            &mut bytes,
            0x0028,
            0x0103,
            b"US",
            &us(u16::from(self.signed)),
        );
        if let Some((center, width)) = self.window {
            element(
                &mut bytes,
                0x0028,
                0x1050,
                b"DS",
                &text(&center.to_string()),
            );
            element(&mut bytes, 0x0028, 0x1051, b"DS", &text(&width.to_string()));
        }
        if let Some((slope, intercept)) = self.rescale {
            element(
                &mut bytes,
                0x0028,
                0x1052,
                b"DS",
                &text(&intercept.to_string()),
            );
            element(&mut bytes, 0x0028, 0x1053, b"DS", &text(&slope.to_string()));
        }
        let pixel_data: Vec<u8> = match self.bits_allocated {
            16 => self
                .values
                .iter()
                .flat_map(|&v| (v as u16).to_le_bytes())
                .collect(),
            _ => self.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        element(&mut bytes, 0x7FE0, 0x0010, b"OW", &pixel_data);
        bytes
    }
}

/// Appends one explicit VR little-endian element, padding the value to even length.
fn element(out: &mut Vec<u8>, group: u16, number: u16, vr: &[u8; 2], value: &[u8]) {
    let mut value = value.to_vec();
    if value.len() % 2 == 1 {
        value.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
    }
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&value);
}

fn ui(uid: &str) -> Vec<u8> {
    uid.as_bytes().to_vec()
}

fn text(value: &str) -> Vec<u8> {
    value.as_bytes().to_vec()
}

fn decode_synthetic(dicom: &SyntheticDicom) -> Result<Radiograph, DecodeError> {
    decode(&dicom.encode(), &DecodeLimits::default())
}

fn samples(image: &Radiograph) -> Vec<u16> {
    (0..image.width)
        .map(|x| image.sample(x, 0).unwrap())
        .collect()
}

#[test]
fn dicom_without_window_stretches_min_to_max() {
    let dicom = SyntheticDicom::new(3, 1, vec![100, 150, 200]);

    let image = decode_synthetic(&dicom).unwrap();

    assert_eq!(image.bit_depth, BitDepth::Sixteen);
    assert_eq!(samples(&image), [0, 32768, 65535]);
}

#[test]
fn dicom_window_applies_after_rescale() {
    // Modality values 2 * v - 1000: -1000, 0, 1000, 2000. The window 500 +- 500 (width 1001,
    // so exactly 0..=1000 after the standard's half-pixel offsets) clips both ends.
    let dicom = SyntheticDicom {
        window: Some((500.5, 1001.0)),
        rescale: Some((2.0, -1000.0)),
        ..SyntheticDicom::new(4, 1, vec![0, 500, 1000, 1500])
    };

    let image = decode_synthetic(&dicom).unwrap();

    assert_eq!(samples(&image), [0, 0, 65535, 65535]);

    let dicom = SyntheticDicom {
        window: Some((500.5, 1001.0)),
        rescale: Some((2.0, -1000.0)),
        ..SyntheticDicom::new(1, 1, vec![750])
    };
    let image = decode_synthetic(&dicom).unwrap();
    assert_eq!(samples(&image), [32768]);
}

#[test]
fn dicom_monochrome1_inverts_after_window() {
    let dicom = SyntheticDicom {
        photometric: "MONOCHROME1",
        window: Some((100.5, 101.0)),
        ..SyntheticDicom::new(3, 1, vec![0, 1000, 75])
    };

    let image = decode_synthetic(&dicom).unwrap();

    // The window maps 0, 1000 and 75 to 0, 1 and 0.25; inversion then gives 1, 0 and 0.75.
    assert_eq!(samples(&image), [65535, 0, 49151]);
}

#[test]
fn dicom_signed_values_keep_their_order() {
    let dicom = SyntheticDicom {
        bits_stored: 12,
        signed: true,
        // -2048, -1, 0, 2047 in 12-bit two's complement.
        ..SyntheticDicom::new(4, 1, vec![0x0800, 0x0FFF, 0x0000, 0x07FF])
    };

    let image = decode_synthetic(&dicom).unwrap();
    let values = samples(&image);

    assert_eq!(values[0], 0);
    assert!(values[1] < values[2], "{values:?}");
    assert_eq!(values[3], 65535);
}

#[test]
fn dicom_24_bit_values_are_scaled() {
    let dicom = SyntheticDicom {
        bits_allocated: 32,
        bits_stored: 24,
        ..SyntheticDicom::new(3, 1, vec![0x10_0000, 0x20_0000, 0x30_0000])
    };

    let image = decode_synthetic(&dicom).unwrap();

    assert_eq!(samples(&image), [0, 32768, 65535]);
}

#[test]
fn dicom_multiframe_uses_first_frame() {
    let dicom = SyntheticDicom {
        frames: 2,
        ..SyntheticDicom::new(2, 1, vec![10, 20, 500, 0])
    };

    let image = decode_synthetic(&dicom).unwrap();

    assert_eq!((image.width, image.height), (2, 1));
    assert_eq!(samples(&image), [0, 65535]);
}

#[test]
fn dicom_colour_is_rejected() {
    let dicom = SyntheticDicom {
        photometric: "RGB",
        samples_per_pixel: 3,
        ..SyntheticDicom::new(1, 1, vec![0, 0, 0])
    };

    let error = decode_synthetic(&dicom).unwrap_err();

    assert!(
        matches!(error, DecodeError::Unsupported { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("RGB"), "{error}");
}

#[test]
fn dicom_huge_element_rejected_quickly() {
    // 4 GiB declared after the pixel data, with no bytes behind it. Parsing such a file would
    // allocate the declared size before failing.
    let mut bytes = SyntheticDicom::new(1, 1, vec![0]).encode();
    bytes.extend_from_slice(&[0xE1, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
    bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());

    let clock = std::time::Instant::now();
    let result = decode(&bytes, &DecodeLimits::default());

    assert!(
        matches!(result, Err(DecodeError::Invalid { .. })),
        "{result:?}"
    );
    assert!(
        clock.elapsed().as_secs_f64() < 1.0,
        "took {:?}",
        clock.elapsed()
    );
}

#[test]
fn dicom_codestream_size_mismatch_rejected() {
    for name in [LEG_J2K, CHEST_RSNA] {
        let mut bytes = read_sample(name);
        // Rows (0028,0010), explicit VR US: tag, "US", length 2, then the value.
        let rows_header = [0x28, 0x00, 0x10, 0x00, b'U', b'S', 0x02, 0x00];
        let at = bytes
            .windows(8)
            .position(|w| w == rows_header)
            .expect("Rows element");
        bytes[at + 8..at + 10].copy_from_slice(&16u16.to_le_bytes());

        let result = decode(&bytes, &DecodeLimits::default());

        let Err(DecodeError::Invalid { detail, .. }) = &result else {
            panic!("{name}: {result:?}");
        };
        assert!(detail.contains("codestream"), "{name}: {detail}");
    }
}

#[test]
fn dicom_with_short_pixel_data_is_invalid() {
    let dicom = SyntheticDicom::new(100, 100, vec![0; 10]);

    let result = decode_synthetic(&dicom);

    assert!(
        matches!(result, Err(DecodeError::Invalid { .. })),
        "{result:?}"
    );
}

// ---- overlay ----

fn grey_image(width: u32, height: u32, value: u8) -> Radiograph {
    Radiograph {
        width,
        height,
        bit_depth: BitDepth::Eight,
        pixels: vec![value; width as usize * height as usize],
        source: SourceFormat::Png,
    }
}

fn decode_overlay(png: &[u8]) -> RgbImage {
    let decoded = image::load_from_memory_with_format(png, ImageFormat::Png).unwrap();
    assert_eq!(decoded.color(), image::ColorType::Rgb8);
    decoded.into_rgb8()
}

#[test]
fn overlay_draws_box_edges_in_color() {
    let image = grey_image(300, 200, 60);
    let boxes = [OverlayBox {
        x: 100,
        y: 80,
        width: 50,
        height: 40,
        label: "metal",
        score: 0.93,
    }];
    let color = box_colors(&boxes)[0];

    let overlay = decode_overlay(&render_overlay(&image, &boxes).unwrap());

    assert_eq!(overlay.dimensions(), (300, 200));
    for (x, y) in [
        (100, 80),
        (149, 80),
        (100, 119),
        (149, 119),
        (125, 80),
        (100, 100),
    ] {
        assert_eq!(overlay.get_pixel(x, y).0, color, "edge pixel {x},{y}");
    }
    assert_eq!(overlay.get_pixel(125, 100).0, [60; 3], "box interior");
    assert_eq!(overlay.get_pixel(10, 190).0, [60; 3], "outside the box");
}

#[test]
fn overlay_label_above_or_below_box() {
    let image = grey_image(400, 400, 0);
    let boxes = [
        OverlayBox {
            x: 50,
            y: 200,
            width: 100,
            height: 100,
            label: "coin",
            score: 0.5,
        },
        OverlayBox {
            x: 250,
            y: 0,
            width: 100,
            height: 100,
            label: "pin",
            score: 0.75,
        },
    ];
    let colors = box_colors(&boxes);

    let overlay = decode_overlay(&render_overlay(&image, &boxes).unwrap());

    // The label bar is 10 px tall at scale 1 (8 px glyphs and 1 px padding).
    assert_eq!(
        overlay.get_pixel(50, 195).0,
        colors[0],
        "bar above the first box"
    );
    assert_eq!(
        overlay.get_pixel(300, 100).0,
        colors[1],
        "bar below the second box, which touches the top edge"
    );
    assert_eq!(
        overlay.get_pixel(300, 50).0,
        [0, 0, 0],
        "the inside of the second box stays uncovered"
    );
    let text_pixels = (50..150)
        .flat_map(|x| (190..200).map(move |y| (x, y)))
        .filter(|&(x, y)| overlay.get_pixel(x, y).0 == [0, 0, 0])
        .count();
    assert!(
        text_pixels > 20,
        "only {text_pixels} text pixels in the first label"
    );
}

#[test]
fn overlay_shows_sixteen_bit_high_byte() {
    let image = Radiograph {
        width: 2,
        height: 1,
        bit_depth: BitDepth::Sixteen,
        pixels: [0x12FFu16, 0xAB00]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        source: SourceFormat::Dicom,
    };

    let overlay = decode_overlay(&render_overlay(&image, &[]).unwrap());

    assert_eq!(overlay.get_pixel(0, 0).0, [0x12; 3]);
    assert_eq!(overlay.get_pixel(1, 0).0, [0xAB; 3]);
}

#[test]
fn overlay_clips_boxes_outside_image() {
    let image = grey_image(64, 48, 100);
    let boxes = [
        OverlayBox {
            x: 50,
            y: 40,
            width: 1000,
            height: 1000,
            label: "edge",
            score: 0.1,
        },
        OverlayBox {
            x: 500,
            y: 500,
            width: 10,
            height: 10,
            label: "away",
            score: 0.2,
        },
        OverlayBox {
            x: u32::MAX - 1,
            y: u32::MAX - 1,
            width: u32::MAX,
            height: u32::MAX,
            label: "overflow",
            score: f32::NAN,
        },
        OverlayBox {
            x: 0,
            y: 0,
            width: 0,
            height: 0,
            label: "",
            score: -1.0,
        },
        OverlayBox {
            x: 60,
            y: 0,
            width: 4,
            height: 4,
            label: "a long label that cannot fit ünïcødé ✓",
            score: 1.0,
        },
    ];
    let colors = box_colors(&boxes);

    let overlay = decode_overlay(&render_overlay(&image, &boxes).unwrap());

    assert_eq!(overlay.dimensions(), (64, 48));
    assert_eq!(
        overlay.get_pixel(50, 47).0,
        colors[0],
        "clipped box's left edge"
    );
}

#[test]
fn overlay_of_one_pixel_image_works() {
    let image = grey_image(1, 1, 7);
    let boxes = [OverlayBox {
        x: 0,
        y: 0,
        width: 1,
        height: 1,
        label: "dot",
        score: 0.99,
    }];

    let overlay = decode_overlay(&render_overlay(&image, &boxes).unwrap());

    assert_eq!(overlay.dimensions(), (1, 1));
    assert_eq!(overlay.get_pixel(0, 0).0, box_colors(&boxes)[0]);

    let plain = decode_overlay(&render_overlay(&image, &[]).unwrap());
    assert_eq!(plain.get_pixel(0, 0).0, [7; 3]);
}

#[test]
fn overlay_rejects_inconsistent_radiograph() {
    let mut image = grey_image(10, 10, 0);
    image.pixels.pop();

    let result = render_overlay(&image, &[]);
    assert!(
        matches!(result, Err(OverlayError::InvalidImage { .. })),
        "{result:?}"
    );

    let empty = grey_image(0, 5, 0);
    let result = render_overlay(&empty, &[]);
    assert!(
        matches!(result, Err(OverlayError::InvalidImage { .. })),
        "{result:?}"
    );
}

#[test]
fn overlay_of_leg_sample_decodes_back() {
    let leg = decoded_sample(LEG_J2K);
    let boxes = [OverlayBox {
        x: 100,
        y: 100,
        width: 300,
        height: 200,
        label: "lead",
        score: 0.9,
    }];

    let overlay = decode_overlay(&render_overlay(leg, &boxes).unwrap());

    assert_eq!(overlay.dimensions(), (leg.width, leg.height));
    assert_eq!(overlay.get_pixel(100, 150).0, box_colors(&boxes)[0]);
    let grey = (leg.sample(900, 900).unwrap() >> 8) as u8;
    assert_eq!(overlay.get_pixel(900, 900).0, [grey; 3]);
}

// ---- timings ----

fn median_ms(runs: usize, mut work: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let clock = std::time::Instant::now();
            work();
            clock.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// Prints the median decode, draw and encode times of each sample. Run it in release:
/// `cargo test --release -p rfo-host --test integration sample_timings -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; run in release with --ignored --nocapture"]
fn sample_timings() {
    println!("| sample | size | decode ms | draw ms | encode ms | overlay PNG KiB |");
    println!("|---|---|---|---|---|---|");
    for name in [
        CHEST_MONO1,
        CHEST_MONO1_J2K,
        LEG_J2K,
        CHEST_RSNA,
        CHEST_PNG_1,
    ] {
        let bytes = read_sample(name);
        let limits = DecodeLimits::default();
        let decode_ms = median_ms(5, || {
            decode(&bytes, &limits).unwrap();
        });

        let image = decode(&bytes, &limits).unwrap();
        let boxes = [OverlayBox {
            x: image.width / 4,
            y: image.height / 4,
            width: image.width / 3,
            height: image.height / 3,
            label: "metal",
            score: 0.93,
        }];
        let draw_ms = median_ms(5, || {
            draw_overlay(&image, &boxes).unwrap();
        });
        let drawn = draw_overlay(&image, &boxes).unwrap();
        let encode_ms = median_ms(5, || {
            encode_png(&drawn).unwrap();
        });
        let png_kib = encode_png(&drawn).unwrap().len() / 1024;

        println!(
            "| {name} | {}x{} | {decode_ms:.1} | {draw_ms:.2} | {encode_ms:.1} | {png_kib} |",
            image.width, image.height
        );
    }
}

#[test]
fn truncated_jpeg_is_invalid() {
    let image = image::GrayImage::from_fn(64, 64, |x, y| Luma([((x * 3 + y * 5) % 256) as u8]));
    let mut jpeg = Vec::new();
    DynamicImage::ImageLuma8(image)
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .unwrap();
    let cut = &jpeg[..jpeg.len() * 2 / 3];

    let err = decode(cut, &DecodeLimits::default()).unwrap_err();
    assert!(err.to_string().contains("end-of-image marker"), "{err}");
    assert!(decode(&jpeg, &DecodeLimits::default()).is_ok());
}
