//! rfo detection plugin that finds radiopaque foreign objects: compact regions far denser than
//! the anatomy around them, such as metal implants, lead side markers, jewellery, wires and clips.
//!
//! # Method
//!
//! 1. The image is reduced by block averaging to a grid whose longer side is at most 1024 cells
//!    ([`LumaGrid`]), which bounds time and memory whatever the source size.
//! 2. At two scales, a white top-hat (the grid minus its grey-level opening with a square) gives
//!    each cell's contrast against its local background. Structures wider than the square, such
//!    as the mediastinum, bone shafts or collimated borders, vanish, while smaller bright objects
//!    keep their full contrast.
//!    - The dense scale uses a square of 1/8 of the grid side and accepts only objects whose
//!      mean contrast is at least 0.4 of the image's dynamic range (lead markers, coins, plates).
//!    - The thin scale uses a square of 1/50 of the grid side and accepts smaller contrasts, for
//!      wires, clips and pins that are thin enough to stand out there.
//! 3. Cells above a contrast threshold form 8-connected components, which are kept when they
//!    are large enough, not too large for their scale, not touching the image border (collimator
//!    edges), not line-like (rib and bone edges) and contrasted enough.
//! 4. Each kept box is refined on the source pixels, scored from its contrast, and at most
//!    [`MAX_DETECTIONS`] boxes are returned, best first.
//!
//! Contrast thresholds are fractions of the image's dynamic range (0.5th to 99.5th percentile),
//! because the worker rescales every image to the full 16-bit range first.

mod components;
mod morphology;

pub use components::Component;
pub use rfo_plugin_sdk::{DetectError, Detection, ImageView, LumaGrid, PluginInfo, Region};

/// Label of every detection.
pub const LABEL: &str = "metal";

/// Maximum number of detections `detect` returns.
pub const MAX_DETECTIONS: usize = 64;

/// Longer side of the working grid, in cells.
// NOTE: block averaging dilutes objects thinner than a cell (8 pixels on an 8192-pixel image),
// so on very large images thin wires fall below the thin scale's contrast minimum.
const GRID_MAX_SIDE: u32 = 1024;

/// Smallest dynamic range assumed, so that a nearly flat image does not turn noise into objects.
const MIN_DYNAMIC_RANGE: u16 = 4096;

/// Components with a larger ratio of major to minor axis are taken as edges, not objects.
const MAX_ELONGATION: f32 = 8.0;

/// Mean contrast, as a fraction of the dynamic range, that gives a score of 1.
const FULL_SCORE_CONTRAST: f32 = 0.5;

rfo_plugin_sdk::export_detector! {
    wit_path: "../../wit",
    metadata: crate::metadata,
    detect: crate::detect,
}

/// Describes the plugin as `metadata()` reports it.
pub fn metadata() -> PluginInfo {
    PluginInfo {
        name: "foreign-object",
        version: env!("CARGO_PKG_VERSION"),
        detects: &[LABEL],
        description: "Finds radiopaque foreign objects (metal implants, lead markers, wires, \
                      clips, jewellery) far denser than the anatomy around them",
    }
}

/// Finds radiopaque foreign objects in `image`, best score first, at most [`MAX_DETECTIONS`].
///
/// Returns [`DetectError::InvalidImage`] when the image does not match its own description.
/// The result depends only on the pixels.
pub fn detect(image: &ImageView<'_>) -> Result<Vec<Detection>, DetectError> {
    Ok(inspect(image)?.detections())
}

/// Contrast scale at which a candidate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Large square, strict contrast: solid dense objects such as lead markers.
    Dense,
    /// Small square, milder contrast: wires, clips and pins.
    Thin,
}

/// Outcome of the checks on one candidate, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Kept,
    /// Bounding box larger than the scale allows: anatomy, not an object.
    TooLarge,
    /// Touches the grid border, like collimator edges do.
    TouchesBorder,
    /// Line-like, like rib, bone and collimator edges.
    Elongated,
    /// Mean or peak contrast below the scale's minimum.
    Faint,
    /// Mostly inside a box already kept at the dense scale.
    Duplicate,
}

/// One connected component of high-contrast cells and what the detector made of it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub scale: Scale,
    /// Measurements in grid cells.
    pub component: Component,
    /// Box in source pixels, refined on the source for kept candidates.
    pub region: Region,
    pub score: f32,
    pub verdict: Verdict,
}

/// Everything the detector found in one image, including rejected candidates, for tuning.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub grid_width: u32,
    pub grid_height: u32,
    /// Grid cell side in source pixels.
    pub cell: u32,
    /// Contrast unit: the spread between the 0.5th and 99.5th percentile of the grid, at least
    /// 4096.
    pub dynamic_range: u16,
    /// Candidates of at least the minimum area, dense scale first.
    pub candidates: Vec<Candidate>,
}

impl Inspection {
    /// Returns the kept candidates as detections, best first, at most [`MAX_DETECTIONS`].
    pub fn detections(&self) -> Vec<Detection> {
        let mut detections: Vec<Detection> = self
            .candidates
            .iter()
            .filter(|candidate| candidate.verdict == Verdict::Kept)
            .map(|candidate| Detection {
                region: candidate.region,
                label: LABEL.to_owned(),
                score: candidate.score,
            })
            .collect();
        rfo_plugin_sdk::keep_best(&mut detections, MAX_DETECTIONS);
        detections
    }
}

/// Parameters of one contrast scale. Fractions are of the image's dynamic range.
struct ScaleRule {
    scale: Scale,
    /// The square's half side is the grid's longer side divided by this.
    radius_divisor: u32,
    /// Cells at or above this contrast form the components.
    mask_fraction: f32,
    min_mean_fraction: f32,
    min_peak_fraction: f32,
    /// Largest bounding-box side, in square sides.
    max_extent_in_squares: f32,
}

// NOTE: the thresholds were tuned by eye on six chest and leg radiographs (CR and downsized
// PNG). They separate lead markers and sternal wires from anatomy there, but faint wires over the
// mediastinum stay below the thin scale's contrast minimum and are missed.
const RULES: [ScaleRule; 2] = [
    ScaleRule {
        scale: Scale::Dense,
        radius_divisor: 16,
        mask_fraction: 0.2,
        min_mean_fraction: 0.4,
        min_peak_fraction: 0.4,
        max_extent_in_squares: 1.0,
    },
    ScaleRule {
        scale: Scale::Thin,
        radius_divisor: 100,
        mask_fraction: 0.1,
        min_mean_fraction: 0.17,
        min_peak_fraction: 0.22,
        max_extent_in_squares: 3.0,
    },
];

/// Runs the detector and returns every candidate with its verdict.
///
/// [`detect`] is `inspect(image)?.detections()`. This is for tuning and tests.
pub fn inspect(image: &ImageView<'_>) -> Result<Inspection, DetectError> {
    image.validate()?;
    let grid = LumaGrid::from_image(image, GRID_MAX_SIDE);
    let dynamic_range = dynamic_range(&grid.values);

    let mut candidates = Vec::new();
    for rule in &RULES {
        candidates.extend(find_candidates(&grid, rule, dynamic_range));
    }
    mark_duplicates(&mut candidates);
    for candidate in &mut candidates {
        if candidate.verdict == Verdict::Kept {
            let rule = RULES
                .iter()
                .find(|rule| rule.scale == candidate.scale)
                .expect("every candidate comes from a rule");
            candidate.region = refine_region(image, &grid, candidate, rule, dynamic_range);
        }
    }

    Ok(Inspection {
        grid_width: grid.width,
        grid_height: grid.height,
        cell: grid.cell,
        dynamic_range,
        candidates,
    })
}

/// Returns the spread between the 0.5th and 99.5th percentile, at least [`MIN_DYNAMIC_RANGE`].
fn dynamic_range(values: &[u16]) -> u16 {
    let mut histogram = vec![0u32; 1 << 16];
    for &value in values {
        histogram[value as usize] += 1;
    }
    let low = percentile(&histogram, values.len(), 0.005);
    let high = percentile(&histogram, values.len(), 0.995);
    (high - low).max(MIN_DYNAMIC_RANGE)
}

/// Returns the smallest value with more than `fraction` of the `count` values at or below it.
fn percentile(histogram: &[u32], count: usize, fraction: f64) -> u16 {
    let rank = (count as f64 * fraction) as u64;
    let mut seen = 0u64;
    for (value, &frequency) in histogram.iter().enumerate() {
        seen += u64::from(frequency);
        if seen > rank {
            return value as u16;
        }
    }
    u16::MAX
}

/// Returns the grid's minimum component area in cells: 8, or more on a fine grid, so that a
/// component always covers at least about 1/256 of the longer side squared.
fn min_area(grid: &LumaGrid) -> u32 {
    let side = grid.width.max(grid.height) / 256;
    (side * side).max(8)
}

fn find_candidates(grid: &LumaGrid, rule: &ScaleRule, dynamic_range: u16) -> Vec<Candidate> {
    let (width, height) = (grid.width as usize, grid.height as usize);
    let side = grid.width.max(grid.height);
    let radius = (side / rule.radius_divisor).max(1);
    let opened = morphology::opening(&grid.values, width, height, radius as usize);
    let contrast: Vec<u16> = grid
        .values
        .iter()
        .zip(&opened)
        .map(|(&value, &background)| value.saturating_sub(background))
        .collect();
    drop(opened);

    let range = f32::from(dynamic_range);
    let mask_level = (rule.mask_fraction * range) as u16;
    let mask: Vec<bool> = contrast.iter().map(|&c| c >= mask_level).collect();
    let components = components::label(
        &mask,
        &grid.values,
        &contrast,
        width,
        height,
        min_area(grid),
    );

    let max_extent = (rule.max_extent_in_squares * (2 * radius + 1) as f32) as u32;
    components
        .into_iter()
        .map(|component| {
            let verdict = if component.width().max(component.height()) > max_extent {
                Verdict::TooLarge
            } else if component.touches_border {
                Verdict::TouchesBorder
            } else if component.elongation > MAX_ELONGATION {
                Verdict::Elongated
            } else if component.contrast_mean() < rule.min_mean_fraction * range
                || f32::from(component.contrast_max) < rule.min_peak_fraction * range
            {
                Verdict::Faint
            } else {
                Verdict::Kept
            };
            let score = (component.contrast_mean() / (FULL_SCORE_CONTRAST * range)).min(1.0);
            let region = grid.to_source(Region {
                x: component.left,
                y: component.top,
                width: component.width(),
                height: component.height(),
            });
            Candidate {
                scale: rule.scale,
                component,
                region,
                score,
                verdict,
            }
        })
        .collect()
}

/// Marks kept thin-scale candidates that lie mostly (half their area or more) inside a kept
/// dense-scale box, such as the strokes of a lead letter.
fn mark_duplicates(candidates: &mut [Candidate]) {
    let dense: Vec<Region> = candidates
        .iter()
        .filter(|c| c.scale == Scale::Dense && c.verdict == Verdict::Kept)
        .map(|c| c.region)
        .collect();
    for candidate in candidates.iter_mut() {
        if candidate.scale != Scale::Thin || candidate.verdict != Verdict::Kept {
            continue;
        }
        let area = u64::from(candidate.region.width) * u64::from(candidate.region.height);
        let inside = dense
            .iter()
            .any(|region| 2 * region.intersection_area(&candidate.region) >= area);
        if inside {
            candidate.verdict = Verdict::Duplicate;
        }
    }
}

/// Returns the box of the source pixels near the candidate that reach its mask level.
///
/// The grid box is widened by one cell on each side and mapped to source pixels. Within it,
/// pixels at or above the component's background plus the scale's mask contrast count. This
/// undoes the blur of block averaging when a cell is several pixels wide, and returns the
/// unrefined box when no pixel qualifies.
fn refine_region(
    image: &ImageView<'_>,
    grid: &LumaGrid,
    candidate: &Candidate,
    rule: &ScaleRule,
    dynamic_range: u16,
) -> Region {
    if grid.cell == 1 {
        return candidate.region;
    }
    let component = &candidate.component;
    let left = component.left.saturating_sub(1);
    let top = component.top.saturating_sub(1);
    let search = grid.to_source(Region {
        x: left,
        y: top,
        width: (component.right + 1).min(grid.width) - left,
        height: (component.bottom + 1).min(grid.height) - top,
    });
    let level = component.background_mean() + rule.mask_fraction * f32::from(dynamic_range);

    let (mut min_x, mut min_y, mut max_x, mut max_y) = (u32::MAX, u32::MAX, 0, 0);
    let mut row = Vec::with_capacity(search.width as usize);
    for y in search.y..search.y + search.height {
        image.luma_segment(y, search.x..search.x + search.width, &mut row);
        for (offset, &value) in row.iter().enumerate() {
            if f32::from(value) >= level {
                let x = search.x + offset as u32;
                min_x = min_x.min(x);
                max_x = max_x.max(x);
                min_y = min_y.min(y);
                max_y = max_y.max(y);
            }
        }
    }
    if min_x > max_x {
        return candidate.region;
    }
    Region {
        x: min_x,
        y: min_y,
        width: max_x - min_x + 1,
        height: max_y - min_y + 1,
    }
}

#[cfg(test)]
mod tests;
