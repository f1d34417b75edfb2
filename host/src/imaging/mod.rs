//! Radiograph decoding and overlay rendering.
//!
//! - [`decode`] turns PNG, JPEG or DICOM bytes into a single-channel [`Radiograph`] in which
//!   higher values are denser tissue (bone and metal bright). The format comes from the magic
//!   bytes, never from a file name.
//! - [`draw_overlay`] draws labelled boxes over a radiograph, [`encode_png`] turns the result
//!   into an RGB PNG, and [`render_overlay`] does both.
//!
//! Layout:
//! - `decode.rs` sniffs the format and decodes PNG and JPEG.
//! - `dicom.rs` decodes DICOM and applies the modality rescale and the VOI transform from
//!   `voi.rs`. Before that, `dataset_scan.rs` checks the declared element lengths, and
//!   `codestream.rs` reads the size of embedded JPEG and JPEG 2000 pixel data.
//! - `overlay.rs` draws and encodes the overlay.

mod codestream;
mod dataset_scan;
mod decode;
mod dicom;
mod overlay;
mod voi;

use std::fmt;

pub use decode::decode;
pub use overlay::{
    DrawnOverlay, OverlayBox, OverlayError, box_colors, draw_overlay, encode_png, render_overlay,
};

/// Bits per sample of a [`Radiograph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    Eight,
    Sixteen,
}

impl BitDepth {
    /// Returns the number of bytes that one sample takes in [`Radiograph::pixels`].
    pub fn bytes_per_sample(self) -> usize {
        match self {
            BitDepth::Eight => 1,
            BitDepth::Sixteen => 2,
        }
    }
}

/// Container format that a [`Radiograph`] was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Png,
    Jpeg,
    Dicom,
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SourceFormat::Png => "PNG",
            SourceFormat::Jpeg => "JPEG",
            SourceFormat::Dicom => "DICOM",
        };
        f.write_str(name)
    }
}

/// Single-channel grey image in which higher values are denser (bone and metal bright).
///
/// DICOM input is always [`BitDepth::Sixteen`], after the modality and VOI transforms have
/// spread it over the full 0..=65535 range. PNG and JPEG input keeps its own bit depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Radiograph {
    pub width: u32,
    pub height: u32,
    pub bit_depth: BitDepth,
    /// Samples in row-major order, one byte each for 8-bit and two bytes little-endian each
    /// for 16-bit, so the length is `width * height * bit_depth.bytes_per_sample()`.
    pub pixels: Vec<u8>,
    pub source: SourceFormat,
}

impl Radiograph {
    /// Returns the sample at column `x` and row `y`, or `None` outside the image or when
    /// `pixels` is shorter than the dimensions require.
    pub fn sample(&self, x: u32, y: u32) -> Option<u16> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let index = y as usize * self.width as usize + x as usize;
        match self.bit_depth {
            BitDepth::Eight => self.pixels.get(index).map(|&v| u16::from(v)),
            BitDepth::Sixteen => {
                let bytes = self.pixels.get(index * 2..index * 2 + 2)?;
                Some(u16::from_le_bytes([bytes[0], bytes[1]]))
            }
        }
    }

    /// Returns the number of bytes that `pixels` must contain for the declared dimensions and
    /// bit depth, or `None` if that number does not fit in `usize`.
    pub fn expected_len(&self) -> Option<usize> {
        (self.width as usize)
            .checked_mul(self.height as usize)?
            .checked_mul(self.bit_depth.bytes_per_sample())
    }
}

/// Limits that [`decode`] checks against the declared image size before it allocates pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Maximum `width * height` of one image or DICOM frame. The default is 100 million,
    /// about 10000x10000: a 16-bit grey image of that size takes 200 MB once decoded, and an
    /// RGBA 16-bit PNG needs 800 MB while it is converted to grey.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: 100_000_000,
        }
    }
}

/// Error from [`decode`]. Every variant is permanent: decoding the same bytes again fails again.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "unsupported image format: expected PNG, JPEG or DICOM (Part 10 file with the \"DICM\" \
         prefix, with or without the 128-byte preamble)"
    )]
    UnsupportedFormat,

    #[error(
        "{format} image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels \
         (RFO_MAX_PIXELS in the worker)"
    )]
    TooLarge {
        format: SourceFormat,
        width: u64,
        height: u64,
        max_pixels: u64,
    },

    /// The image is valid as far as it was read, but uses a feature that rfo does not decode,
    /// such as a colour DICOM or a JPEG-LS transfer syntax.
    #[error("unsupported {format} image: {detail}")]
    Unsupported {
        format: SourceFormat,
        detail: String,
    },

    /// The bytes are truncated, corrupt or inconsistent.
    #[error("failed to decode {format} image: {detail}")]
    Invalid {
        format: SourceFormat,
        detail: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl DecodeError {
    fn invalid(format: SourceFormat, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            format,
            detail: detail.into(),
            source: None,
        }
    }

    fn invalid_from<E>(format: SourceFormat, detail: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        DecodeError::Invalid {
            format,
            detail: detail.into(),
            source: Some(Box::new(source)),
        }
    }

    fn unsupported(format: SourceFormat, detail: impl Into<String>) -> Self {
        DecodeError::Unsupported {
            format,
            detail: detail.into(),
        }
    }
}

/// Checks `width * height` against `limits`, in 64-bit arithmetic so it cannot overflow.
fn check_size(
    format: SourceFormat,
    width: u64,
    height: u64,
    limits: &DecodeLimits,
) -> Result<(), DecodeError> {
    if width.saturating_mul(height) > limits.max_pixels {
        return Err(DecodeError::TooLarge {
            format,
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}
