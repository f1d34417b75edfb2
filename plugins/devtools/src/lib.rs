//! Native helpers for developing and testing rfo plugins. None of this is built into a plugin.
//!
//! [`load_radiograph`] decodes a file into the image a worker hands to a plugin, and
//! [`write_overlay`] draws detections on it so that a person can check them.

use std::error::Error;
use std::path::{Path, PathBuf};

use dicom_pixeldata::{
    ConvertOptions, ModalityLutOption, PhotometricInterpretation, PixelDecoder, WindowLevel,
};
use image::{DynamicImage, Rgb, RgbImage};
use rfo_plugin_sdk::{Detection, ImageView};

pub type BoxError = Box<dyn Error + Send + Sync>;

/// Decoded image that owns its pixels, laid out as [`ImageView`] describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedImage {
    pub width: u32,
    pub height: u32,
    pub bit_depth: u8,
    pub channels: u8,
    pub pixels: Vec<u8>,
}

impl OwnedImage {
    /// Borrows the image as a plugin receives it.
    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            width: self.width,
            height: self.height,
            bit_depth: self.bit_depth,
            channels: self.channels,
            pixels: &self.pixels,
        }
    }
}

/// Returns the path of a sample radiograph in the repository's `examples/radiographs`.
pub fn sample_radiograph(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/radiographs")
        .join(name)
}

/// Decodes a DICOM file (by its `.dcm` extension) or any image the `image` crate reads.
///
/// DICOM becomes 16-bit grey normalised as the worker does it: see [`decode_dicom`]. An 8-bit
/// or 16-bit grey image keeps its depth, and anything else becomes 8-bit RGB.
pub fn load_radiograph(path: &Path) -> Result<OwnedImage, BoxError> {
    let is_dicom = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("dcm"));
    if is_dicom {
        return decode_dicom(path);
    }

    let decoded =
        image::open(path).map_err(|e| format!("cannot decode {}: {e}", path.display()))?;
    let (width, height) = (decoded.width(), decoded.height());
    let image = match decoded {
        DynamicImage::ImageLuma8(grey) => OwnedImage {
            width,
            height,
            bit_depth: 8,
            channels: 1,
            pixels: grey.into_raw(),
        },
        DynamicImage::ImageLuma16(grey) => OwnedImage {
            width,
            height,
            bit_depth: 16,
            channels: 1,
            pixels: grey
                .into_raw()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        },
        other => OwnedImage {
            width,
            height,
            bit_depth: 8,
            channels: 3,
            pixels: other.to_rgb8().into_raw(),
        },
    };
    Ok(image)
}

/// Decodes the first frame of a grey DICOM image into normalised 16-bit grey.
///
/// The steps: stored values, then Rescale Slope and Intercept, then the first Window Center and
/// Width as the linear VOI function of DICOM PS3.3 C.11.2.1.2 (min-max of the frame when there
/// is no window), scaled to 0..=65535, then inverted for MONOCHROME1 so that higher always means
/// denser.
pub fn decode_dicom(path: &Path) -> Result<OwnedImage, BoxError> {
    let object = dicom_object::open_file(path)
        .map_err(|e| format!("cannot open DICOM file {}: {e}", path.display()))?;
    let decoded = object
        .decode_pixel_data()
        .map_err(|e| format!("cannot decode the pixel data of {}: {e}", path.display()))?;
    if decoded.samples_per_pixel() != 1 {
        return Err(format!(
            "{} has {} samples per pixel; only grey DICOM is supported",
            path.display(),
            decoded.samples_per_pixel()
        )
        .into());
    }

    // Stored values without any transform, so that no lookup table is built for the target type.
    let raw_options = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
    let stored: Vec<f64> = decoded.to_vec_frame_with_options(0, &raw_options)?;
    let rescale = decoded.rescale()?[0];
    let values: Vec<f64> = stored
        .iter()
        .map(|&v| v * rescale.slope + rescale.intercept)
        .collect();

    let window = decoded
        .window()?
        .and_then(|windows| windows.first().copied());
    let mut normalised = match window {
        Some(window) => apply_linear_window(&values, window),
        None => stretch_min_max(&values),
    };
    if *decoded.photometric_interpretation() == PhotometricInterpretation::Monochrome1 {
        for v in &mut normalised {
            *v = u16::MAX - *v;
        }
    }

    Ok(OwnedImage {
        width: decoded.columns(),
        height: decoded.rows(),
        bit_depth: 16,
        channels: 1,
        pixels: normalised.iter().flat_map(|v| v.to_le_bytes()).collect(),
    })
}

/// Applies the DICOM linear VOI function with an output range of 0..=65535.
fn apply_linear_window(values: &[f64], window: WindowLevel) -> Vec<u16> {
    let center = window.center - 0.5;
    let half_span = (window.width.max(1.0) - 1.0) / 2.0;
    values
        .iter()
        .map(|&x| {
            if x <= center - half_span {
                0
            } else if x > center + half_span {
                u16::MAX
            } else {
                let fraction = (x - center) / (2.0 * half_span) + 0.5;
                (fraction * 65535.0).round().clamp(0.0, 65535.0) as u16
            }
        })
        .collect()
}

fn stretch_min_max(values: &[f64]) -> Vec<u16> {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Also true for an empty frame, where min is +inf and max is -inf.
    if max <= min {
        return vec![0; values.len()];
    }
    values
        .iter()
        .map(|&x| ((x - min) / (max - min) * 65535.0).round() as u16)
        .collect()
}

/// Writes `image` as an 8-bit RGB PNG with each detection's region outlined.
///
/// The outline is red for `metal`, green for `anatomy` and yellow for any other label, with a
/// thickness of about 1/400 of the longer image side (at least 2 pixels).
pub fn write_overlay(
    image: &ImageView<'_>,
    detections: &[Detection],
    path: &Path,
) -> Result<(), BoxError> {
    let mut canvas = RgbImage::new(image.width, image.height);
    let mut row = Vec::new();
    for y in 0..image.height {
        image.luma_row(y, &mut row);
        for (x, &v) in row.iter().enumerate() {
            let grey = (v >> 8) as u8;
            canvas.put_pixel(x as u32, y, Rgb([grey, grey, grey]));
        }
    }

    let thickness = (image.width.max(image.height) / 400).max(2);
    for detection in detections {
        let colour = match detection.label.as_str() {
            "metal" => Rgb([255, 40, 40]),
            "anatomy" => Rgb([40, 220, 40]),
            _ => Rgb([255, 220, 0]),
        };
        outline(&mut canvas, detection, thickness, colour);
    }
    canvas
        .save(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Draws a rectangle border of the given thickness just inside the detection's region.
fn outline(canvas: &mut RgbImage, detection: &Detection, thickness: u32, colour: Rgb<u8>) {
    let region = detection.region;
    let right = (region.x + region.width).min(canvas.width());
    let bottom = (region.y + region.height).min(canvas.height());
    for y in region.y..bottom {
        for x in region.x..right {
            let near_edge = x < region.x + thickness
                || y < region.y + thickness
                || x + thickness >= right
                || y + thickness >= bottom;
            if near_edge {
                canvas.put_pixel(x, y, colour);
            }
        }
    }
}
