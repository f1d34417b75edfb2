//! DICOM decoding: the first frame of a grayscale image, through the modality and VOI
//! transforms, to 16-bit samples in which higher values are denser.
//!
//! The steps follow DICOM PS3.4 N.2 (grayscale pipeline): stored values, then the modality
//! rescale, then the VOI transform, then MONOCHROME1 inversion. dicom-pixeldata only decodes the
//! stored values here, because its own conversion to `u16` fails on some transfer syntaxes when
//! it cannot build a LUT for the rescaled range.

use std::panic::{self, AssertUnwindSafe};

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions, Tag};
use dicom_pixeldata::{DecodedPixelData, PixelDecoder, Rescale, VoiLutFunction, WindowLevel};

use super::codestream::{self, CodestreamSize};
use super::dataset_scan;
use super::{BitDepth, DecodeError, DecodeLimits, Radiograph, SourceFormat, check_size};

const FORMAT: SourceFormat = SourceFormat::Dicom;

/// Transfer syntaxes that this build of dicom-pixeldata cannot decode, with their names.
const UNSUPPORTED_TRANSFER_SYNTAXES: &[(&str, &str)] = &[
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless"),
    ("1.2.840.10008.1.2.4.100", "MPEG2 video"),
    ("1.2.840.10008.1.2.4.101", "MPEG2 video"),
    ("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 video"),
    ("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 video"),
    ("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 video"),
    ("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 video"),
    ("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 video"),
    ("1.2.840.10008.1.2.4.107", "HEVC/H.265 video"),
    ("1.2.840.10008.1.2.4.108", "HEVC/H.265 video"),
    ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
    ("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"),
    ("1.2.840.10008.1.2.4.112", "JPEG XL"),
];

/// JPEG baseline, extended, lossless and lossless first-order transfer syntaxes.
const JPEG_TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];

/// JPEG 2000 (Part 1 and Part 2) and High-Throughput JPEG 2000 transfer syntaxes.
const JPEG2000_TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
];

/// Decodes a DICOM Part 10 file whose bytes start at the "DICM" prefix.
pub(super) fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Radiograph, DecodeError> {
    dataset_scan::check_declared_lengths(bytes)?;
    let object = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(bytes)
        .map_err(|e| DecodeError::invalid_from(FORMAT, "failed to parse the data set", e))?;

    let columns = read_u32(&object, tags::COLUMNS, "Columns")?;
    let rows = read_u32(&object, tags::ROWS, "Rows")?;
    if columns == 0 || rows == 0 {
        return Err(DecodeError::invalid(
            FORMAT,
            format!("Columns and Rows must be positive, found {columns}x{rows}"),
        ));
    }
    check_size(FORMAT, u64::from(columns), u64::from(rows), limits)?;
    let monochrome1 = check_grayscale(&object)?;
    check_transfer_syntax(&object, columns, rows)?;

    let decoded = decode_first_frame(&object)?;
    let pixels = to_display_values(&decoded, monochrome1)?;

    Ok(Radiograph {
        width: columns,
        height: rows,
        bit_depth: BitDepth::Sixteen,
        pixels,
        source: FORMAT,
    })
}

fn read_u32(object: &DefaultDicomObject, tag: Tag, name: &str) -> Result<u32, DecodeError> {
    let element = object
        .element(tag)
        .map_err(|e| DecodeError::invalid_from(FORMAT, format!("missing {name} {tag}"), e))?;
    element
        .to_int::<u32>()
        .map_err(|e| DecodeError::invalid_from(FORMAT, format!("invalid {name} {tag}"), e))
}

/// Checks that the image is single-sample grayscale and returns whether it is MONOCHROME1.
fn check_grayscale(object: &DefaultDicomObject) -> Result<bool, DecodeError> {
    let tag = tags::PHOTOMETRIC_INTERPRETATION;
    let element = object.element(tag).map_err(|e| {
        DecodeError::invalid_from(
            FORMAT,
            format!("missing Photometric Interpretation {tag}"),
            e,
        )
    })?;
    let value = element.to_str().map_err(|e| {
        DecodeError::invalid_from(
            FORMAT,
            format!("invalid Photometric Interpretation {tag}"),
            e,
        )
    })?;
    let interpretation = value.trim_matches(|c: char| c == '\0' || c.is_whitespace());

    let monochrome1 = match interpretation {
        "MONOCHROME1" => true,
        "MONOCHROME2" => false,
        other => {
            return Err(DecodeError::unsupported(
                FORMAT,
                format!(
                    "photometric interpretation {other:?} is not grayscale; rfo decodes only \
                     MONOCHROME1 and MONOCHROME2"
                ),
            ));
        }
    };

    let samples_per_pixel = read_u32(object, tags::SAMPLES_PER_PIXEL, "Samples per Pixel")?;
    if samples_per_pixel != 1 {
        return Err(DecodeError::invalid(
            FORMAT,
            format!("{interpretation} image declares {samples_per_pixel} samples per pixel, not 1"),
        ));
    }
    Ok(monochrome1)
}

/// Rejects transfer syntaxes this build cannot decode, and JPEG or JPEG 2000 pixel data whose
/// codestream size differs from Rows and Columns.
fn check_transfer_syntax(
    object: &DefaultDicomObject,
    columns: u32,
    rows: u32,
) -> Result<(), DecodeError> {
    let uid = object
        .meta()
        .transfer_syntax()
        .trim_end_matches(|c: char| c == '\0' || c.is_whitespace());

    if let Some((_, name)) = UNSUPPORTED_TRANSFER_SYNTAXES
        .iter()
        .find(|(u, _)| *u == uid)
    {
        return Err(DecodeError::unsupported(
            FORMAT,
            format!("transfer syntax {name} ({uid}) cannot be decoded by rfo"),
        ));
    }

    let read_size: fn(&[u8]) -> Option<CodestreamSize> = if JPEG_TRANSFER_SYNTAXES.contains(&uid) {
        codestream::jpeg_size
    } else if JPEG2000_TRANSFER_SYNTAXES.contains(&uid) {
        codestream::jpeg2000_size
    } else {
        return Ok(());
    };

    // The first fragment of the first frame starts with the codestream header.
    let first_fragment = object
        .element(tags::PIXEL_DATA)
        .ok()
        .and_then(|element| element.value().fragments())
        .and_then(|fragments| fragments.first())
        .ok_or_else(|| {
            DecodeError::invalid(FORMAT, format!("missing encapsulated pixel data for {uid}"))
        })?;
    let size = read_size(first_fragment).ok_or_else(|| {
        DecodeError::invalid(
            FORMAT,
            "failed to read the codestream header of the pixel data",
        )
    })?;

    if size.width != columns || size.height != rows || size.components != 1 {
        return Err(DecodeError::invalid(
            FORMAT,
            format!(
                "pixel data codestream is {}x{} with {} components, but Columns and Rows \
                 declare {columns}x{rows} with 1 sample per pixel",
                size.width, size.height, size.components
            ),
        ));
    }
    Ok(())
}

/// Decodes the stored values of frame 0. A panic inside the codec becomes an error, because a
/// corrupt file must not take the worker down.
fn decode_first_frame(object: &DefaultDicomObject) -> Result<DecodedPixelData<'_>, DecodeError> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| object.decode_pixel_data_frame(0)));
    match outcome {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(e)) => Err(DecodeError::invalid_from(
            FORMAT,
            "failed to decode the pixel data",
            e,
        )),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            tracing::warn!(panic = message, "DICOM pixel data codec panicked");
            Err(DecodeError::invalid(
                FORMAT,
                format!("pixel data codec panicked: {message}"),
            ))
        }
    }
}

/// Position and width of the stored value inside each allocated sample.
#[derive(Debug, Clone, Copy)]
struct SampleLayout {
    bytes_per_sample: usize,
    /// Number of low bits below the stored value (`high_bit + 1 - bits_stored`).
    shift: u32,
    bits_stored: u32,
    signed: bool,
}

impl SampleLayout {
    fn of(decoded: &DecodedPixelData<'_>) -> Result<Self, DecodeError> {
        let bits_allocated = u32::from(decoded.bits_allocated());
        let bits_stored = u32::from(decoded.bits_stored());
        let high_bit = u32::from(decoded.high_bit());

        // dicom-pixeldata expands 1-bit samples to one byte each (0 or 255).
        let bytes_per_sample = match bits_allocated {
            1 | 8 => 1,
            16 => 2,
            32 => 4,
            other => {
                return Err(DecodeError::unsupported(
                    FORMAT,
                    format!("Bits Allocated of {other} is not supported; expected 1, 8, 16 or 32"),
                ));
            }
        };
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(DecodeError::invalid(
                FORMAT,
                format!(
                    "Bits Stored of {bits_stored} does not fit Bits Allocated of {bits_allocated}"
                ),
            ));
        }
        if high_bit >= bits_allocated || high_bit + 1 < bits_stored {
            return Err(DecodeError::invalid(
                FORMAT,
                format!(
                    "High Bit of {high_bit} does not fit Bits Stored of {bits_stored} and Bits \
                     Allocated of {bits_allocated}"
                ),
            ));
        }

        Ok(SampleLayout {
            bytes_per_sample,
            shift: high_bit + 1 - bits_stored,
            bits_stored,
            signed: decoded.pixel_representation() == dicom_pixeldata::PixelRepresentation::Signed,
        })
    }

    /// Extracts the stored value from one raw sample in native byte order, masking off any
    /// bits outside the stored range (such as embedded overlays) and extending the sign.
    fn stored_value(&self, raw: &[u8]) -> i64 {
        let word = match self.bytes_per_sample {
            1 => u64::from(raw[0]),
            2 => u64::from(u16::from_ne_bytes([raw[0], raw[1]])),
            _ => u64::from(u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]])),
        };
        let value = (word >> self.shift) & ((1u64 << self.bits_stored) - 1);
        let sign_bit = 1u64 << (self.bits_stored - 1);
        if self.signed && value & sign_bit != 0 {
            value as i64 - (1i64 << self.bits_stored)
        } else {
            value as i64
        }
    }
}

/// Applies the modality rescale, the VOI transform and MONOCHROME1 inversion, and returns
/// 16-bit little-endian samples spread over 0..=65535.
fn to_display_values(
    decoded: &DecodedPixelData<'_>,
    monochrome1: bool,
) -> Result<Vec<u8>, DecodeError> {
    let layout = SampleLayout::of(decoded)?;
    let pixel_count = decoded.columns() as usize * decoded.rows() as usize;
    let frame = decoded
        .data()
        .get(..pixel_count * layout.bytes_per_sample)
        .ok_or_else(|| {
            DecodeError::invalid(
                FORMAT,
                format!(
                    "decoded frame has {} bytes, expected {}",
                    decoded.data().len(),
                    pixel_count * layout.bytes_per_sample
                ),
            )
        })?;
    let samples = frame.chunks_exact(layout.bytes_per_sample);

    let rescale = first_rescale(decoded)?;
    let modality = |raw: &[u8]| rescale.apply(layout.stored_value(raw) as f64);
    let voi = match select_voi(decoded) {
        Some(voi) => voi,
        None => min_max(samples.clone().map(modality)),
    };
    tracing::debug!(?voi, monochrome1, "applying DICOM VOI transform");

    let mut pixels = Vec::with_capacity(pixel_count * 2);
    for raw in samples {
        let fraction = voi.apply(modality(raw));
        // `as` saturates, so a NaN from a degenerate rescale becomes 0 rather than panicking.
        let mut value = (fraction * 65535.0).round() as u16;
        if monochrome1 {
            value = 65535 - value;
        }
        pixels.extend_from_slice(&value.to_le_bytes());
    }
    Ok(pixels)
}

fn first_rescale(decoded: &DecodedPixelData<'_>) -> Result<Rescale, DecodeError> {
    let rescale = decoded
        .rescale()
        .map_err(|e| DecodeError::invalid_from(FORMAT, "invalid Rescale Slope or Intercept", e))?
        .first()
        .copied()
        .unwrap_or(Rescale::new(1.0, 0.0));
    if !rescale.slope.is_finite() || !rescale.intercept.is_finite() {
        return Err(DecodeError::invalid(
            FORMAT,
            format!(
                "Rescale Slope {} and Intercept {} must be finite",
                rescale.slope, rescale.intercept
            ),
        ));
    }
    Ok(rescale)
}

/// VOI transform from modality values to the 0..=1 output range.
#[derive(Debug)]
enum Voi<'a> {
    /// Window Center and Width with their VOI LUT Function (PS3.3 C.11.2.1.2).
    Window {
        level: WindowLevel,
        function: VoiLutFunction,
    },
    /// The first item of the VOI LUT Sequence (PS3.3 C.11.2.1.1).
    Table {
        first_mapped: i64,
        max_entry: f64,
        entries: &'a [u16],
    },
    /// Linear stretch of the image's own modality range, for files without VOI attributes.
    MinMax { min: f64, max: f64 },
}

/// Picks the first valid window, else the first VOI LUT table, else `None` for min–max.
fn select_voi<'a>(decoded: &'a DecodedPixelData<'_>) -> Option<Voi<'a>> {
    let function = decoded
        .voi_lut_function()
        .ok()
        .flatten()
        .and_then(|functions| functions.first().copied())
        .unwrap_or_default();
    let window = decoded
        .window()
        .ok()
        .flatten()
        .and_then(|windows| windows.first().copied());

    if let Some(level) = window {
        // LINEAR requires a width of at least 1, LINEAR_EXACT and SIGMOID a positive width.
        let min_width = if function == VoiLutFunction::Linear {
            1.0
        } else {
            f64::MIN_POSITIVE
        };
        if level.center.is_finite() && level.width.is_finite() && level.width >= min_width {
            return Some(Voi::Window { level, function });
        }
        tracing::warn!(
            center = level.center,
            width = level.width,
            "ignoring invalid DICOM window"
        );
    }

    let table = decoded
        .voi_lut_sequence()
        .ok()
        .flatten()
        .and_then(|tables| tables.first());
    if let Some(table) = table
        && !table.data.is_empty()
        && table.bits_stored > 0
    {
        return Some(Voi::Table {
            first_mapped: i64::from(table.min_pixel_value),
            max_entry: f64::from((1u32 << table.bits_stored) - 1),
            entries: &table.data,
        });
    }
    None
}

fn min_max(values: impl Iterator<Item = f64>) -> Voi<'static> {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), v| {
        (min.min(v), max.max(v))
    });
    Voi::MinMax { min, max }
}

impl Voi<'_> {
    /// Maps a modality value to 0..=1.
    fn apply(&self, x: f64) -> f64 {
        match *self {
            Voi::Window { level, function } => window(x, level, function),
            Voi::Table {
                first_mapped,
                max_entry,
                entries,
            } => {
                // Values below the first mapped value take the first entry, values past the
                // end take the last one.
                let index = (x.round() as i64).saturating_sub(first_mapped);
                let index = index.clamp(0, entries.len() as i64 - 1) as usize;
                f64::from(entries[index]) / max_entry
            }
            Voi::MinMax { min, max } => {
                if max > min {
                    (x - min) / (max - min)
                } else {
                    // A flat image has no contrast to stretch.
                    0.0
                }
            }
        }
    }
}

/// Window transform to 0..=1 (PS3.3 C.11.2.1.2 for LINEAR, C.11.2.1.3 for LINEAR_EXACT and
/// SIGMOID). The caller guarantees the width limits each function requires.
fn window(x: f64, level: WindowLevel, function: VoiLutFunction) -> f64 {
    let WindowLevel {
        center: c,
        width: w,
    } = level;
    match function {
        VoiLutFunction::Linear => {
            if x <= c - 0.5 - (w - 1.0) / 2.0 {
                0.0
            } else if x > c - 0.5 + (w - 1.0) / 2.0 {
                1.0
            } else {
                // Only reached when w > 1, so the division is safe.
                (x - (c - 0.5)) / (w - 1.0) + 0.5
            }
        }
        VoiLutFunction::LinearExact => {
            if x <= c - w / 2.0 {
                0.0
            } else if x > c + w / 2.0 {
                1.0
            } else {
                (x - c) / w + 0.5
            }
        }
        VoiLutFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(center: f64, width: f64) -> WindowLevel {
        WindowLevel { center, width }
    }

    #[test]
    fn linear_window_matches_standard_breakpoints() {
        // Center 2048 and width 4096 map 0 to the bottom and 4095 to the top.
        let l = level(2048.0, 4096.0);
        assert_eq!(window(0.0, l, VoiLutFunction::Linear), 0.0);
        assert_eq!(window(-100.0, l, VoiLutFunction::Linear), 0.0);
        assert_eq!(window(4095.0, l, VoiLutFunction::Linear), 1.0);
        assert_eq!(window(5000.0, l, VoiLutFunction::Linear), 1.0);
        let middle = window(2047.5, l, VoiLutFunction::Linear);
        assert!((middle - 0.5).abs() < 1e-12, "middle maps to {middle}");
    }

    #[test]
    fn linear_window_of_width_one_is_a_threshold() {
        let l = level(100.0, 1.0);
        assert_eq!(window(99.0, l, VoiLutFunction::Linear), 0.0);
        assert_eq!(window(99.5, l, VoiLutFunction::Linear), 0.0);
        assert_eq!(window(100.0, l, VoiLutFunction::Linear), 1.0);
    }

    #[test]
    fn linear_exact_window_spans_center_plus_minus_half_width() {
        let l = level(100.0, 50.0);
        assert_eq!(window(75.0, l, VoiLutFunction::LinearExact), 0.0);
        assert_eq!(window(125.0, l, VoiLutFunction::LinearExact), 1.0);
        assert_eq!(window(100.0, l, VoiLutFunction::LinearExact), 0.5);
    }

    #[test]
    fn sigmoid_window_is_half_at_center() {
        let l = level(100.0, 50.0);
        assert_eq!(window(100.0, l, VoiLutFunction::Sigmoid), 0.5);
        assert!(window(0.0, l, VoiLutFunction::Sigmoid) < 0.001);
        assert!(window(200.0, l, VoiLutFunction::Sigmoid) > 0.999);
    }

    #[test]
    fn stored_value_masks_overlay_bits_and_extends_sign() {
        let unsigned = SampleLayout {
            bytes_per_sample: 2,
            shift: 0,
            bits_stored: 12,
            signed: false,
        };
        // Bit 15 is an embedded overlay bit outside the 12 stored bits.
        assert_eq!(unsigned.stored_value(&0x8FFFu16.to_ne_bytes()), 4095);

        let signed = SampleLayout {
            signed: true,
            ..unsigned
        };
        assert_eq!(signed.stored_value(&0x0FFFu16.to_ne_bytes()), -1);
        assert_eq!(signed.stored_value(&0x0800u16.to_ne_bytes()), -2048);
        assert_eq!(signed.stored_value(&0x07FFu16.to_ne_bytes()), 2047);
    }

    #[test]
    fn stored_value_honours_high_bit_shift() {
        // 8 bits stored in bits 4..=11 of a 16-bit sample (High Bit 11).
        let layout = SampleLayout {
            bytes_per_sample: 2,
            shift: 4,
            bits_stored: 8,
            signed: false,
        };
        assert_eq!(layout.stored_value(&0x0AB5u16.to_ne_bytes()), 0xAB);
    }

    #[test]
    fn voi_table_clamps_outside_its_range() {
        let entries = [0u16, 100, 255];
        let table = Voi::Table {
            first_mapped: 10,
            max_entry: 255.0,
            entries: &entries,
        };
        assert_eq!(table.apply(-5.0), 0.0);
        assert_eq!(table.apply(11.0), 100.0 / 255.0);
        assert_eq!(table.apply(1000.0), 1.0);
    }

    #[test]
    fn min_max_of_flat_image_is_zero() {
        let voi = min_max([7.0, 7.0].into_iter());
        assert_eq!(voi.apply(7.0), 0.0);
    }
}
