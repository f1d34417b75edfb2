//! rfo detection plugin that finds the body region: the box around the exposed anatomy, as
//! opposed to the empty background where the beam reached the detector unattenuated and to the
//! collimated margins that the beam never reached.
//!
//! # Method
//!
//! 1. The image is reduced by block averaging to a grid whose longer side is at most 512 cells.
//! 2. Otsu's threshold on a 256-bin histogram separates attenuating cells from the dark
//!    direct-exposure background.
//! 3. Cells above that threshold that are flat and connected to the image border are the
//!    collimated margin: bright but without structure, while anatomy shows structure. A cell is
//!    flat when the standard deviation over a square of 1/16 of the grid side around it is below
//!    [`FLAT_STANDARD_DEVIATION`].
//! 4. Otsu's method runs again without the margin. Cells more than a quarter of the way from the
//!    dark class mean to the bright class mean, outside the margin, are body candidates.
//! 5. The largest 8-connected group of candidates is the body. Its box is returned with the
//!    second split's separability (between-class over total variance, 0..=1) as the score.

pub use rfo_plugin_sdk::{DetectError, Detection, ImageView, LumaGrid, PluginInfo, Region};

/// Label of the detection.
pub const LABEL: &str = "anatomy";

/// Longer side of the working grid, in cells.
const GRID_MAX_SIDE: u32 = 512;

/// Local standard deviation (on the 0..=65535 scale, about 1.5 % of it) below which an
/// attenuating cell counts as collimated margin, not anatomy.
pub const FLAT_STANDARD_DEVIATION: f64 = 1_000.0;

/// Position of the body's edge level between the background's mean (0) and the body's mean (1).
const BODY_LEVEL_FRACTION: f64 = 0.25;

/// Smallest body, as a fraction of the grid's cells. Anything smaller is not reported.
const MIN_BODY_FRACTION: f64 = 0.01;

rfo_plugin_sdk::export_detector! {
    wit_path: "../../wit",
    metadata: crate::metadata,
    detect: crate::detect,
}

/// Describes the plugin as `metadata()` reports it.
pub fn metadata() -> PluginInfo {
    PluginInfo {
        name: "anatomy",
        version: env!("CARGO_PKG_VERSION"),
        detects: &[LABEL],
        description: "Finds the body region: the exposed anatomy, without the empty background \
                      and collimated margins",
    }
}

/// Returns the box of the body in `image`, or nothing when the image shows no distinct body
/// (a blank image, or a body smaller than 1 % of the image).
///
/// Returns [`DetectError::InvalidImage`] when the image does not match its own description.
pub fn detect(image: &ImageView<'_>) -> Result<Vec<Detection>, DetectError> {
    image.validate()?;
    let grid = LumaGrid::from_image(image, GRID_MAX_SIDE);

    // A first split finds the collimated margin. A second split without it finds the body's
    // edge, which the margin's mass would otherwise pull up towards bone levels.
    let Some(first) = otsu_split(&grid.values) else {
        return Ok(Vec::new());
    };
    let collimated = collimated_margin(&grid, first.threshold_bin);
    let exposed: Vec<u16> = grid
        .values
        .iter()
        .zip(&collimated)
        .filter(|&(_, &collimated)| !collimated)
        .map(|(&value, _)| value)
        .collect();
    let Some(split) = otsu_split(&exposed) else {
        return Ok(Vec::new());
    };

    // Otsu's threshold lies about halfway between the class means, which cuts off the thin soft
    // tissue at the body's edge. A quarter of the way up from the background is still well clear
    // of it.
    let body_level = split.dark_mean + BODY_LEVEL_FRACTION * (split.bright_mean - split.dark_mean);
    let mask: Vec<bool> = (0..grid.values.len())
        .map(|index| bin_of(grid.values[index]) as f64 > body_level && !collimated[index])
        .collect();

    let Some(body) = largest_component(&mask, grid.width as usize, grid.height as usize) else {
        return Ok(Vec::new());
    };
    let cells = f64::from(grid.width) * f64::from(grid.height);
    if (body.area as f64) < MIN_BODY_FRACTION * cells {
        return Ok(Vec::new());
    }

    Ok(vec![Detection {
        region: grid.to_source(body.bounds),
        label: LABEL.to_owned(),
        score: split.separability as f32,
    }])
}

fn bin_of(value: u16) -> usize {
    usize::from(value >> 8)
}

/// Marks the collimated margin: cells connected to the grid border through cells that are
/// brighter than `threshold_bin` and flat.
///
/// Flat bright regions inside the body, such as a large homogeneous organ, stay unmarked because
/// they do not reach the border through flat cells.
fn collimated_margin(grid: &LumaGrid, threshold_bin: usize) -> Vec<bool> {
    let (width, height) = (grid.width as usize, grid.height as usize);
    let radius = (width.max(height) / 32).max(1);
    let deviation = local_standard_deviation(grid, radius);
    let candidate: Vec<bool> = grid
        .values
        .iter()
        .zip(&deviation)
        .map(|(&value, &deviation)| {
            bin_of(value) > threshold_bin && deviation < FLAT_STANDARD_DEVIATION
        })
        .collect();

    let mut collimated = vec![false; candidate.len()];
    let mut stack: Vec<usize> = (0..candidate.len())
        .filter(|&index| {
            let (x, y) = (index % width, index / width);
            candidate[index] && (x == 0 || y == 0 || x + 1 == width || y + 1 == height)
        })
        .collect();
    for &index in &stack {
        collimated[index] = true;
    }
    while let Some(index) = stack.pop() {
        let (x, y) = (index % width, index / width);
        for ny in y.saturating_sub(1)..(y + 2).min(height) {
            for nx in x.saturating_sub(1)..(x + 2).min(width) {
                let neighbour = ny * width + nx;
                if candidate[neighbour] && !collimated[neighbour] {
                    collimated[neighbour] = true;
                    stack.push(neighbour);
                }
            }
        }
    }
    collimated
}

/// Result of Otsu's method on the high bytes of the values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OtsuSplit {
    /// Highest bin (value >> 8) of the dark class.
    threshold_bin: usize,
    /// Between-class variance over total variance, in 0..=1.
    separability: f64,
    /// Mean bin of the dark class.
    dark_mean: f64,
    /// Mean bin of the bright class.
    bright_mean: f64,
}

/// Finds the threshold that maximises the between-class variance, or `None` for a uniform
/// image.
fn otsu_split(values: &[u16]) -> Option<OtsuSplit> {
    if values.is_empty() {
        return None;
    }
    let mut histogram = [0u64; 256];
    for &value in values {
        histogram[bin_of(value)] += 1;
    }
    let total = values.len() as f64;
    let mean = histogram
        .iter()
        .enumerate()
        .map(|(bin, &count)| bin as f64 * count as f64)
        .sum::<f64>()
        / total;
    let variance = histogram
        .iter()
        .enumerate()
        .map(|(bin, &count)| (bin as f64 - mean).powi(2) * count as f64)
        .sum::<f64>()
        / total;
    if variance == 0.0 {
        return None;
    }

    // (threshold bin, between-class variance, dark mean, bright mean) of the best split so far.
    let mut best: Option<(usize, f64, f64, f64)> = None;
    let (mut dark_count, mut dark_sum) = (0.0, 0.0);
    for (bin, &count) in histogram.iter().enumerate().take(255) {
        dark_count += count as f64;
        dark_sum += bin as f64 * count as f64;
        let bright_count = total - dark_count;
        if dark_count == 0.0 || bright_count == 0.0 {
            continue;
        }
        let dark_mean = dark_sum / dark_count;
        let bright_mean = (mean * total - dark_sum) / bright_count;
        let between = dark_count / total * bright_count / total * (dark_mean - bright_mean).powi(2);
        if best.is_none_or(|(_, best_between, _, _)| between > best_between) {
            best = Some((bin, between, dark_mean, bright_mean));
        }
    }
    best.map(
        |(threshold_bin, between, dark_mean, bright_mean)| OtsuSplit {
            threshold_bin,
            separability: (between / variance).clamp(0.0, 1.0),
            dark_mean,
            bright_mean,
        },
    )
}

/// Returns each cell's standard deviation over the square of half side `radius` around it,
/// clipped to the grid, from summed-area tables of the values and their squares.
fn local_standard_deviation(grid: &LumaGrid, radius: usize) -> Vec<f64> {
    let (width, height) = (grid.width as usize, grid.height as usize);
    let stride = width + 1;
    let mut sums = vec![0u64; stride * (height + 1)];
    let mut squares = vec![0u64; stride * (height + 1)];
    for y in 0..height {
        let (mut row_sum, mut row_squares) = (0u64, 0u64);
        for x in 0..width {
            let value = u64::from(grid.values[y * width + x]);
            row_sum += value;
            row_squares += value * value;
            sums[(y + 1) * stride + x + 1] = sums[y * stride + x + 1] + row_sum;
            squares[(y + 1) * stride + x + 1] = squares[y * stride + x + 1] + row_squares;
        }
    }

    let window = |table: &[u64], left: usize, top: usize, right: usize, bottom: usize| {
        table[bottom * stride + right] + table[top * stride + left]
            - table[top * stride + right]
            - table[bottom * stride + left]
    };
    let mut deviation = Vec::with_capacity(width * height);
    for y in 0..height {
        let (top, bottom) = (y.saturating_sub(radius), (y + radius + 1).min(height));
        for x in 0..width {
            let (left, right) = (x.saturating_sub(radius), (x + radius + 1).min(width));
            let count = ((right - left) * (bottom - top)) as f64;
            let mean = window(&sums, left, top, right, bottom) as f64 / count;
            let mean_square = window(&squares, left, top, right, bottom) as f64 / count;
            deviation.push((mean_square - mean * mean).max(0.0).sqrt());
        }
    }
    deviation
}

/// Area and bounding box of one connected group of cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Body {
    area: u32,
    bounds: Region,
}

/// Returns the largest 8-connected component of `mask`. The first one found wins a tie.
fn largest_component(mask: &[bool], width: usize, height: usize) -> Option<Body> {
    let mut visited = vec![false; mask.len()];
    let mut stack = Vec::new();
    let mut largest: Option<Body> = None;

    for start in 0..mask.len() {
        if !mask[start] || visited[start] {
            continue;
        }
        visited[start] = true;
        stack.push(start);
        let (mut area, mut left, mut top, mut right, mut bottom) = (0u32, width, height, 0, 0);
        while let Some(index) = stack.pop() {
            let (x, y) = (index % width, index / width);
            area += 1;
            left = left.min(x);
            top = top.min(y);
            right = right.max(x + 1);
            bottom = bottom.max(y + 1);
            for ny in y.saturating_sub(1)..(y + 2).min(height) {
                for nx in x.saturating_sub(1)..(x + 2).min(width) {
                    let neighbour = ny * width + nx;
                    if mask[neighbour] && !visited[neighbour] {
                        visited[neighbour] = true;
                        stack.push(neighbour);
                    }
                }
            }
        }
        if largest.is_none_or(|body| area > body.area) {
            largest = Some(Body {
                area,
                bounds: Region {
                    x: left as u32,
                    y: top as u32,
                    width: (right - left) as u32,
                    height: (bottom - top) as u32,
                },
            });
        }
    }
    largest
}

#[cfg(test)]
mod tests;
