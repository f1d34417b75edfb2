//! Format sniffing and PNG/JPEG decoding.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;
use image::{DynamicImage, ImageDecoder, ImageError};

use super::{BitDepth, DecodeError, DecodeLimits, Radiograph, SourceFormat, check_size, dicom};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_SOI: &[u8] = &[0xFF, 0xD8, 0xFF];
const DICOM_PREFIX: &[u8] = b"DICM";
const DICOM_PREAMBLE_LEN: usize = 128;

/// Decoder allocations allowed on top of the decoded image itself, for chunk data such as ICC
/// profiles and for the decoders' working buffers.
const DECODER_ALLOC_MARGIN: u64 = 64 << 20;

/// Decodes a PNG, JPEG or DICOM radiograph, picking the format from its magic bytes.
///
/// The declared size is checked against `limits` before pixels are allocated. See
/// [`Radiograph`] for the bit depth each format produces.
///
/// # Errors
///
/// [`DecodeError::UnsupportedFormat`] when no known signature matches,
/// [`DecodeError::TooLarge`] when the image exceeds `limits`, and
/// [`DecodeError::Unsupported`] or [`DecodeError::Invalid`] when decoding fails.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Radiograph, DecodeError> {
    if bytes.starts_with(PNG_SIGNATURE) {
        let decoder = PngDecoder::new(Cursor::new(bytes))
            .map_err(|e| image_error(SourceFormat::Png, "failed to read the PNG header", e))?;
        decode_raster(decoder, SourceFormat::Png, limits)
    } else if bytes.starts_with(JPEG_SOI) {
        // The JPEG decoder fills a cut-off scan with grey and reports success, so a file that
        // lost its tail would pass for a whole radiograph. Require the end-of-image marker.
        let end = bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count();
        if !bytes[..end].ends_with(&[0xFF, 0xD9]) {
            return Err(DecodeError::invalid(
                SourceFormat::Jpeg,
                "the end-of-image marker is missing, so the file is truncated",
            ));
        }
        let decoder = JpegDecoder::new(Cursor::new(bytes))
            .map_err(|e| image_error(SourceFormat::Jpeg, "failed to read the JPEG header", e))?;
        decode_raster(decoder, SourceFormat::Jpeg, limits)
    } else if bytes.get(DICOM_PREAMBLE_LEN..DICOM_PREAMBLE_LEN + 4) == Some(DICOM_PREFIX) {
        dicom::decode(&bytes[DICOM_PREAMBLE_LEN..], limits)
    } else if bytes.starts_with(DICOM_PREFIX) {
        // A DICOM file stored without its preamble, which dicom-object also reads.
        dicom::decode(bytes, limits)
    } else {
        Err(DecodeError::UnsupportedFormat)
    }
}

/// Decodes a PNG or JPEG into grey samples of the same bit depth, converting colour to luma.
fn decode_raster<D: ImageDecoder>(
    mut decoder: D,
    format: SourceFormat,
    limits: &DecodeLimits,
) -> Result<Radiograph, DecodeError> {
    let (width, height) = decoder.dimensions();
    check_size(format, u64::from(width), u64::from(height), limits)?;

    let mut image_limits = image::Limits::no_limits();
    image_limits.max_alloc = Some(decoder.total_bytes().saturating_add(DECODER_ALLOC_MARGIN));
    decoder
        .set_limits(image_limits)
        .map_err(|e| image_error(format, "failed to apply the decoder memory limit", e))?;

    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| image_error(format, "failed to decode pixel data", e))?;
    let (bit_depth, pixels) = to_grey(image);

    Ok(Radiograph {
        width,
        height,
        bit_depth,
        pixels,
        source: format,
    })
}

/// Converts to grey, keeping 8 or 16 bits per sample. Colour becomes luma (Rec. 709 weights,
/// as the image crate computes it) and alpha is dropped.
fn to_grey(image: DynamicImage) -> (BitDepth, Vec<u8>) {
    let bits_per_channel =
        image.color().bits_per_pixel() / u16::from(image.color().channel_count());
    if bits_per_channel <= 8 {
        return (BitDepth::Eight, image.into_luma8().into_raw());
    }

    let samples = image.into_luma16().into_raw();
    let mut pixels = Vec::with_capacity(samples.len() * 2);
    for sample in samples {
        pixels.extend_from_slice(&sample.to_le_bytes());
    }
    (BitDepth::Sixteen, pixels)
}

/// Classifies an image crate error: an unsupported feature (such as a 12-bit JPEG) is
/// [`DecodeError::Unsupported`], everything else [`DecodeError::Invalid`].
fn image_error(format: SourceFormat, detail: &str, error: ImageError) -> DecodeError {
    match error {
        ImageError::Unsupported(unsupported) => {
            DecodeError::unsupported(format, format!("{detail}: {unsupported}"))
        }
        other => DecodeError::invalid_from(format, detail, other),
    }
}
