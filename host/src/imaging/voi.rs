//! VOI transforms of DICOM modality values to the 0..=1 display range (PS3.3 C.11.2).

use dicom_pixeldata::{DecodedPixelData, VoiLutFunction, WindowLevel};

/// VOI transform from modality values to the 0..=1 output range.
#[derive(Debug)]
pub(super) enum Voi<'a> {
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
pub(super) fn select<'a>(decoded: &'a DecodedPixelData<'_>) -> Option<Voi<'a>> {
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

/// Builds a linear stretch over the range of `values`.
pub(super) fn min_max(values: impl Iterator<Item = f64>) -> Voi<'static> {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), v| {
        (min.min(v), max.max(v))
    });
    Voi::MinMax { min, max }
}

impl Voi<'_> {
    /// Maps a modality value to 0..=1.
    pub(super) fn apply(&self, x: f64) -> f64 {
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
///
/// NOTE: the factor 4 in SIGMOID follows dicom-pixeldata 0.10.1 (`window_level_sigmoid`). The
/// standard prints that equation as an image, which was not checked.
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
    fn linear_exact_window_spans_width() {
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
