//! Grey-level morphology with square structuring elements, in O(1) per pixel whatever the size.

/// Returns the grey-level opening (erosion, then dilation) of a `width` x `height` image with a
/// square structuring element of side `2 * radius + 1`.
///
/// Bright structures that a square of that size cannot fit inside are removed, so that
/// `image - opening` (the white top-hat) keeps just the small bright objects with their contrast
/// against the local background. Pixels beyond the border are ignored, not taken as 0.
///
/// The square filter is separable into a vertical and a horizontal pass. Vertical passes run on
/// whole rows at a time, which reads memory in order and lets the compiler use vector
/// instructions, so the horizontal passes run as vertical ones on the transposed image.
pub fn opening(values: &[u16], width: usize, height: usize, radius: usize) -> Vec<u16> {
    let mut image = values.to_vec();
    filter_vertical::<MIN>(&mut image, width, height, radius);
    // Minimum and maximum filters along one axis commute with those along the other, so the
    // two horizontal passes can share one transposition.
    let mut transposed = transpose(&image, width, height);
    filter_vertical::<MIN>(&mut transposed, height, width, radius);
    filter_vertical::<MAX>(&mut transposed, height, width, radius);
    let mut image = transpose(&transposed, height, width);
    filter_vertical::<MAX>(&mut image, width, height, radius);
    image
}

/// Filter kinds for [`filter_vertical`]: the minimum (erosion) or the maximum (dilation).
const MIN: bool = true;
const MAX: bool = false;

#[inline(always)]
fn pick<const IS_MIN: bool>(a: u16, b: u16) -> u16 {
    if IS_MIN { a.min(b) } else { a.max(b) }
}

/// Returns the value that never wins, so that pixels beyond the border are ignored.
fn neutral<const IS_MIN: bool>() -> u16 {
    if IS_MIN { u16::MAX } else { 0 }
}

/// Combines `rows` into `into` element by element.
#[inline(always)]
fn combine<const IS_MIN: bool>(into: &mut [u16], rows: &[u16]) {
    for (value, &other) in into.iter_mut().zip(rows) {
        *value = pick::<IS_MIN>(*value, other);
    }
}

/// Replaces each pixel with the extreme of the `2 * radius + 1` pixels above, at and below it,
/// clipped to the image.
///
/// This is the van Herk/Gil-Werman method, applied to whole rows. The image, padded with
/// `radius` neutral rows above and below, is cut into blocks of the window's height. Within
/// each block a running extreme from the top (`prefix`) and from the bottom (`suffix`) is kept.
/// Any window spans at most two blocks, so its extreme is that of one suffix and one prefix row.
fn filter_vertical<const IS_MIN: bool>(
    values: &mut [u16],
    width: usize,
    height: usize,
    radius: usize,
) {
    if width == 0 || height == 0 {
        return;
    }
    let window = 2 * radius + 1;
    let padded_height = height + 2 * radius;
    let source_row = |padded_y: usize| {
        padded_y
            .checked_sub(radius)
            .filter(|&y| y < height)
            .map(|y| &values[y * width..(y + 1) * width])
    };

    let mut prefix = vec![0u16; padded_height * width];
    let mut suffix = vec![0u16; padded_height * width];
    for (padded_y, row) in prefix.chunks_exact_mut(width).enumerate() {
        match source_row(padded_y) {
            Some(source) => row.copy_from_slice(source),
            None => row.fill(neutral::<IS_MIN>()),
        }
    }
    suffix.copy_from_slice(&prefix);

    for block in prefix.chunks_mut(window * width) {
        for y in 1..block.len() / width {
            let (above, rest) = block.split_at_mut(y * width);
            combine::<IS_MIN>(&mut rest[..width], &above[(y - 1) * width..]);
        }
    }
    for block in suffix.chunks_mut(window * width) {
        for y in (0..block.len() / width - 1).rev() {
            let (upper, below) = block.split_at_mut((y + 1) * width);
            combine::<IS_MIN>(&mut upper[y * width..], &below[..width]);
        }
    }

    // The window of output row y covers padded rows y..y + window.
    for (y, out) in values.chunks_exact_mut(width).enumerate() {
        out.copy_from_slice(&suffix[y * width..(y + 1) * width]);
        let last = y + window - 1;
        combine::<IS_MIN>(out, &prefix[last * width..(last + 1) * width]);
    }
}

/// Returns the `height` x `width` transpose of a `width` x `height` image, copied in tiles so
/// that both sides stay in cache.
fn transpose(values: &[u16], width: usize, height: usize) -> Vec<u16> {
    const TILE: usize = 32;
    let mut transposed = vec![0u16; values.len()];
    for tile_y in (0..height).step_by(TILE) {
        for tile_x in (0..width).step_by(TILE) {
            for y in tile_y..(tile_y + TILE).min(height) {
                for x in tile_x..(tile_x + TILE).min(width) {
                    transposed[x * height + y] = values[y * width + x];
                }
            }
        }
    }
    transposed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward O(radius^2) opening, for checking the fast one.
    fn naive_opening(values: &[u16], width: usize, height: usize, radius: usize) -> Vec<u16> {
        let window_extreme =
            |source: &[u16], x: usize, y: usize, pick: fn(u16, u16) -> u16, start| {
                let mut result = start;
                for wy in y.saturating_sub(radius)..(y + radius + 1).min(height) {
                    for wx in x.saturating_sub(radius)..(x + radius + 1).min(width) {
                        result = pick(result, source[wy * width + wx]);
                    }
                }
                result
            };
        let mut eroded = vec![0; values.len()];
        for y in 0..height {
            for x in 0..width {
                eroded[y * width + x] = window_extreme(values, x, y, u16::min, u16::MAX);
            }
        }
        let mut opened = vec![0; values.len()];
        for y in 0..height {
            for x in 0..width {
                opened[y * width + x] = window_extreme(&eroded, x, y, u16::max, 0);
            }
        }
        opened
    }

    #[test]
    fn opening_matches_naive_filter() {
        // A deterministic pseudo-random image (xorshift), odd sizes, several radii.
        let (width, height) = (37, 23);
        let mut state = 0x2545_f491_u32;
        let values: Vec<u16> = (0..width * height)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 16) as u16
            })
            .collect();
        for radius in [0, 1, 2, 5, 20, 40] {
            assert_eq!(
                opening(&values, width, height, radius),
                naive_opening(&values, width, height, radius),
                "radius {radius}"
            );
        }
    }

    #[test]
    fn opening_removes_small_bright_spot() {
        let (width, height) = (9, 9);
        let mut values = vec![100; width * height];
        values[4 * width + 4] = 1000;
        let opened = opening(&values, width, height, 1);
        assert!(opened.iter().all(|&v| v == 100));
    }

    #[test]
    fn opening_keeps_wide_plateau() {
        let (width, height) = (12, 12);
        let values: Vec<u16> = (0..width * height)
            .map(|i| if i % width < 6 { 500 } else { 100 })
            .collect();
        assert_eq!(opening(&values, width, height, 2), values);
    }
}
