//! DICOM decoding: the first frame of a grayscale image, through the modality and VOI
//! transforms, to 16-bit samples in which higher values are denser.
//!
//! The steps follow the DICOM grayscale pipeline: stored values, then the modality rescale, then
//! the VOI transform, then MONOCHROME1 inversion. dicom-pixeldata only decodes the stored values
//! here, so that rfo applies the rescale, window and inversion the same way on every transfer
//! syntax.

use std::panic::{self, AssertUnwindSafe};

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions, Tag};
use dicom_pixeldata::{DecodedPixelData, PixelDecoder, Rescale};

use super::codestream::{self, CodestreamSize};
use super::{BitDepth, DecodeError, DecodeLimits, Radiograph, SourceFormat, check_size};
use super::{dataset_scan, voi};

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
/// corrupt file must not take the worker down. This relies on the default `panic = "unwind"`.
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

    /// Extracts the stored bits from one raw sample in native byte order, masking off any bits
    /// outside the stored range (such as embedded overlays).
    fn stored_bits(&self, raw: &[u8]) -> u32 {
        let word = match self.bytes_per_sample {
            1 => u32::from(raw[0]),
            2 => u32::from(u16::from_ne_bytes([raw[0], raw[1]])),
            _ => u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]),
        };
        let mask = (1u64 << self.bits_stored) - 1;
        ((u64::from(word) >> self.shift) & mask) as u32
    }

    /// Interprets stored bits as a number, two's complement when the pixel representation is
    /// signed.
    fn stored_value(&self, bits: u32) -> i64 {
        let sign_bit = 1u64 << (self.bits_stored - 1);
        if self.signed && u64::from(bits) & sign_bit != 0 {
            i64::from(bits) - (1i64 << self.bits_stored)
        } else {
            i64::from(bits)
        }
    }
}

/// Maximum Bits Stored for which the transform goes through a table with one entry per possible
/// stored value (64 Ki entries at most). Wider samples are transformed pixel by pixel.
const MAX_TABLE_BITS: u32 = 16;

/// Applies the modality rescale, the VOI transform and MONOCHROME1 inversion, and returns
/// 16-bit little-endian samples spread over 0..=65535.
fn to_display_values(
    decoded: &DecodedPixelData<'_>,
    monochrome1: bool,
) -> Result<Vec<u8>, DecodeError> {
    let layout = SampleLayout::of(decoded)?;
    let frame = frame_bytes(decoded, &layout)?;
    let samples = frame.chunks_exact(layout.bytes_per_sample);
    let rescale = first_rescale(decoded)?;
    let modality = |bits: u32| rescale.apply(layout.stored_value(bits) as f64);
    let file_voi = voi::select(decoded);

    let mut pixels = Vec::with_capacity(samples.len() * 2);
    if layout.bits_stored <= MAX_TABLE_BITS {
        let table_len = 1usize << layout.bits_stored;
        let voi = file_voi.unwrap_or_else(|| {
            // Min–max over the stored values that occur, found through a presence table.
            let mut present = vec![false; table_len];
            for raw in samples.clone() {
                present[layout.stored_bits(raw) as usize] = true;
            }
            let occurring = (0..table_len as u32).filter(|&bits| present[bits as usize]);
            voi::min_max(occurring.map(modality))
        });
        tracing::debug!(?voi, monochrome1, "applying DICOM VOI transform");

        let table: Vec<[u8; 2]> = (0..table_len as u32)
            .map(|bits| to_output(voi.apply(modality(bits)), monochrome1).to_le_bytes())
            .collect();
        for raw in samples {
            pixels.extend_from_slice(&table[layout.stored_bits(raw) as usize]);
        }
    } else {
        let voi = file_voi.unwrap_or_else(|| {
            voi::min_max(samples.clone().map(|raw| modality(layout.stored_bits(raw))))
        });
        tracing::debug!(?voi, monochrome1, "applying DICOM VOI transform");

        for raw in samples {
            let value = to_output(voi.apply(modality(layout.stored_bits(raw))), monochrome1);
            pixels.extend_from_slice(&value.to_le_bytes());
        }
    }
    Ok(pixels)
}

/// Returns the bytes of the decoded frame, checked against Rows and Columns.
fn frame_bytes<'a>(
    decoded: &'a DecodedPixelData<'_>,
    layout: &SampleLayout,
) -> Result<&'a [u8], DecodeError> {
    let pixel_count = decoded.columns() as usize * decoded.rows() as usize;
    let expected = pixel_count * layout.bytes_per_sample;
    decoded.data().get(..expected).ok_or_else(|| {
        DecodeError::invalid(
            FORMAT,
            format!(
                "decoded frame has {} bytes, expected {expected}",
                decoded.data().len()
            ),
        )
    })
}

/// Scales a VOI output in 0..=1 to 16 bits, inverting it for MONOCHROME1.
fn to_output(fraction: f64, monochrome1: bool) -> u16 {
    // `as` saturates, so a NaN from a degenerate rescale becomes 0 rather than panicking.
    let value = (fraction * 65535.0).round() as u16;
    if monochrome1 { 65535 - value } else { value }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of(layout: &SampleLayout, raw: u16) -> i64 {
        layout.stored_value(layout.stored_bits(&raw.to_ne_bytes()))
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
        assert_eq!(value_of(&unsigned, 0x8FFF), 4095);

        let signed = SampleLayout {
            signed: true,
            ..unsigned
        };
        assert_eq!(value_of(&signed, 0x0FFF), -1);
        assert_eq!(value_of(&signed, 0x0800), -2048);
        assert_eq!(value_of(&signed, 0x07FF), 2047);
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
        assert_eq!(value_of(&layout, 0x0AB5), 0xAB);
    }
}
