//! Plain Rust counterparts of the `rfo:detector` WIT records, shared by the rfo plugins.
//!
//! A detector written against these types runs natively (tests, the host's benchmarks) and, through
//! the glue that [`export_detector!`] generates in its own crate, as a WebAssembly component.

mod component;
mod grid;

use std::fmt;
use std::ops::Range;

pub use grid::LumaGrid;

/// Borrowed view of a decoded radiograph, laid out as the WIT `image` record describes.
///
/// Pixels are row-major with channels interleaved and no row padding. 16-bit samples are
/// little-endian. Higher values mean more attenuation, so bone and metal are bright.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    pub width: u32,
    pub height: u32,
    /// 8 or 16.
    pub bit_depth: u8,
    /// 1 (grey) or 3 (RGB).
    pub channels: u8,
    /// `width * height * channels * (bit_depth / 8)` bytes.
    pub pixels: &'a [u8],
}

impl<'a> ImageView<'a> {
    /// Checks that the description is one the contract allows and matches the pixel buffer.
    ///
    /// Every accessor below assumes that this returned `Ok`.
    pub fn validate(&self) -> Result<(), DetectError> {
        if self.bit_depth != 8 && self.bit_depth != 16 {
            return Err(DetectError::InvalidImage(format!(
                "bit depth {} is invalid: expected 8 or 16",
                self.bit_depth
            )));
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(DetectError::InvalidImage(format!(
                "channel count {} is invalid: expected 1 (grey) or 3 (RGB)",
                self.channels
            )));
        }
        if self.width == 0 || self.height == 0 {
            return Err(DetectError::InvalidImage(format!(
                "image is empty ({}x{})",
                self.width, self.height
            )));
        }
        let expected = u64::from(self.width)
            .checked_mul(u64::from(self.height))
            .and_then(|n| n.checked_mul(u64::from(self.channels)))
            .and_then(|n| n.checked_mul(u64::from(self.bit_depth / 8)));
        if expected != Some(self.pixels.len() as u64) {
            return Err(DetectError::InvalidImage(format!(
                "pixel buffer is {} bytes, expected {} for a {}x{} image with {} channel(s) of {} bits",
                self.pixels.len(),
                expected.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string()),
                self.width,
                self.height,
                self.channels,
                self.bit_depth,
            )));
        }
        Ok(())
    }

    /// Returns the bytes of one row.
    pub fn row_bytes(&self, y: u32) -> &'a [u8] {
        let stride = self.width as usize * self.channels as usize * (self.bit_depth as usize / 8);
        let start = y as usize * stride;
        &self.pixels[start..start + stride]
    }

    /// Writes the luma of row `y` into `out` on a 0..=65535 scale, whatever the source format.
    ///
    /// 8-bit samples are widened by multiplying by 257 (so 255 becomes 65535). RGB is reduced
    /// with the ITU-R BT.709 luma weights, and grey stored as RGB keeps its value.
    pub fn luma_row(&self, y: u32, out: &mut Vec<u16>) {
        self.luma_segment(y, 0..self.width, out);
    }

    /// Writes the luma of the pixels `columns` of row `y` into `out`, as [`Self::luma_row`] does.
    pub fn luma_segment(&self, y: u32, columns: Range<u32>, out: &mut Vec<u16>) {
        let bytes_per_pixel = self.channels as usize * (self.bit_depth as usize / 8);
        let row = self.row_bytes(y);
        let segment =
            &row[columns.start as usize * bytes_per_pixel..columns.end as usize * bytes_per_pixel];
        out.clear();
        match (self.bit_depth, self.channels) {
            (8, 1) => out.extend(segment.iter().map(|&v| u16::from(v) * 257)),
            (16, 1) => out.extend(
                segment
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]])),
            ),
            (8, 3) => out.extend(segment.chunks_exact(3).map(|p| {
                let weighted = weigh_bt709(u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
                ((weighted * 257 + 5_000) / 10_000) as u16
            })),
            (16, 3) => out.extend(segment.chunks_exact(6).map(|p| {
                let r = u32::from(u16::from_le_bytes([p[0], p[1]]));
                let g = u32::from(u16::from_le_bytes([p[2], p[3]]));
                let b = u32::from(u16::from_le_bytes([p[4], p[5]]));
                ((weigh_bt709(r, g, b) + 5_000) / 10_000) as u16
            })),
            _ => unreachable!("luma_segment called on an image that fails validate()"),
        }
    }
}

/// Returns `10000 * luma` with the BT.709 weights 0.2126, 0.7152 and 0.0722.
fn weigh_bt709(r: u32, g: u32, b: u32) -> u32 {
    2_126 * r + 7_152 * g + 722 * b
}

/// Axis-aligned rectangle in pixels, inside the image it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// Returns the area of the overlap with `other` in pixels.
    pub fn intersection_area(&self, other: &Region) -> u64 {
        let left = self.x.max(other.x);
        let top = self.y.max(other.y);
        let right = (self.x + self.width).min(other.x + other.width);
        let bottom = (self.y + self.height).min(other.y + other.height);
        if right <= left || bottom <= top {
            return 0;
        }
        u64::from(right - left) * u64::from(bottom - top)
    }
}

/// One object a detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub region: Region,
    /// Short lowercase label such as `metal`.
    pub label: String,
    /// Confidence in 0..=1.
    pub score: f32,
}

/// Sorts detections by descending score and keeps at most `max_count` of them.
///
/// Ties are broken by position, so the output does not depend on the input order.
pub fn keep_best(detections: &mut Vec<Detection>, max_count: usize) {
    detections.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.region.y.cmp(&b.region.y))
            .then(a.region.x.cmp(&b.region.x))
            .then(a.region.width.cmp(&b.region.width))
            .then(a.region.height.cmp(&b.region.height))
    });
    detections.truncate(max_count);
}

/// Description a plugin returns from `metadata()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginInfo {
    /// Lowercase letters, digits and `-`. Clients choose the plugin by this name.
    pub name: &'static str,
    /// The plugin's own semver version.
    pub version: &'static str,
    /// Labels that `detect` can return.
    pub detects: &'static [&'static str],
    /// One line for people.
    pub description: &'static str,
}

/// Reason a detector could not process an image, mirroring the WIT `detect-error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectError {
    /// The image does not match its own description.
    InvalidImage(String),
    /// A valid image that the detector cannot handle.
    Unsupported(String),
    /// Any other failure inside the detector.
    Internal(String),
}

impl fmt::Display for DetectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectError::InvalidImage(message) => write!(f, "invalid image: {message}"),
            DetectError::Unsupported(message) => write!(f, "unsupported image: {message}"),
            DetectError::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for DetectError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(width: u32, height: u32, bit_depth: u8, channels: u8, pixels: &[u8]) -> ImageView<'_> {
        ImageView {
            width,
            height,
            bit_depth,
            channels,
            pixels,
        }
    }

    #[test]
    fn validate_accepts_all_formats() {
        assert_eq!(view(2, 1, 8, 1, &[0; 2]).validate(), Ok(()));
        assert_eq!(view(2, 1, 16, 1, &[0; 4]).validate(), Ok(()));
        assert_eq!(view(2, 1, 8, 3, &[0; 6]).validate(), Ok(()));
        assert_eq!(view(2, 1, 16, 3, &[0; 12]).validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_bad_descriptions() {
        let cases = [
            view(2, 2, 8, 1, &[0; 3]),
            view(2, 2, 12, 1, &[0; 8]),
            view(2, 2, 8, 4, &[0; 16]),
            view(0, 2, 8, 1, &[]),
            view(2, 0, 8, 1, &[]),
            view(u32::MAX, u32::MAX, 16, 3, &[0; 6]),
        ];
        for image in cases {
            let result = image.validate();
            assert!(
                matches!(result, Err(DetectError::InvalidImage(_))),
                "{image:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn luma_row_scales_to_16_bit() {
        let mut out = Vec::new();
        view(2, 1, 8, 1, &[0, 255]).luma_row(0, &mut out);
        assert_eq!(out, [0, 65535]);

        view(2, 1, 16, 1, &[0x34, 0x12, 0xff, 0xff]).luma_row(0, &mut out);
        assert_eq!(out, [0x1234, 65535]);

        view(2, 1, 8, 3, &[255, 255, 255, 10, 10, 10]).luma_row(0, &mut out);
        assert_eq!(out, [65535, 2570]);

        view(1, 1, 16, 3, &[0x00, 0x80, 0x00, 0x80, 0x00, 0x80]).luma_row(0, &mut out);
        assert_eq!(out, [0x8000]);
    }

    #[test]
    fn luma_segment_reads_the_requested_columns() {
        let mut out = Vec::new();
        let pixels = [0, 1, 2, 3, 4, 5, 6, 7];
        view(4, 2, 8, 1, &pixels).luma_segment(1, 1..3, &mut out);
        assert_eq!(out, [5 * 257, 6 * 257]);
    }

    #[test]
    fn luma_row_weighs_green_most() {
        let mut out = Vec::new();
        view(3, 1, 8, 3, &[255, 0, 0, 0, 255, 0, 0, 0, 255]).luma_row(0, &mut out);
        assert!(out[1] > out[0]);
        assert!(out[0] > out[2]);
    }

    #[test]
    fn keep_best_orders_and_truncates() {
        let detection = |x, score| Detection {
            region: Region {
                x,
                y: 0,
                width: 1,
                height: 1,
            },
            label: "metal".to_owned(),
            score,
        };
        let mut detections = vec![detection(3, 0.5), detection(1, 0.9), detection(2, 0.5)];
        keep_best(&mut detections, 2);
        let order: Vec<u32> = detections.iter().map(|d| d.region.x).collect();
        assert_eq!(order, [1, 2]);
    }

    #[test]
    fn intersection_area_of_overlap_and_gap() {
        let a = Region {
            x: 0,
            y: 0,
            width: 10,
            height: 10,
        };
        let b = Region {
            x: 5,
            y: 5,
            width: 10,
            height: 10,
        };
        let far = Region {
            x: 20,
            y: 20,
            width: 1,
            height: 1,
        };
        assert_eq!(a.intersection_area(&b), 25);
        assert_eq!(a.intersection_area(&far), 0);
    }
}
