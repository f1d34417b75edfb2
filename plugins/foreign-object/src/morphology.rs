//! Grey-level morphology with square structuring elements, in O(1) per pixel whatever the size.

/// Returns the grey-level opening (erosion, then dilation) of a `width` x `height` image with a
/// square structuring element of side `2 * radius + 1`.
///
/// Bright structures that a square of that size cannot fit inside are removed, so that
/// `image - opening` (the white top-hat) keeps just the small bright objects with their contrast
/// against the local background. Pixels beyond the border are ignored, not taken as 0.
pub fn opening(values: &[u16], width: usize, height: usize, radius: usize) -> Vec<u16> {
    let mut result = values.to_vec();
    filter_rows(&mut result, width, radius, Extreme::Min);
    filter_columns(&mut result, width, height, radius, Extreme::Min);
    filter_rows(&mut result, width, radius, Extreme::Max);
    filter_columns(&mut result, width, height, radius, Extreme::Max);
    result
}

#[derive(Clone, Copy)]
enum Extreme {
    Min,
    Max,
}

impl Extreme {
    fn pick(self, a: u16, b: u16) -> u16 {
        match self {
            Extreme::Min => a.min(b),
            Extreme::Max => a.max(b),
        }
    }

    /// Padding value that never wins, so that pixels beyond the border are ignored.
    fn neutral(self) -> u16 {
        match self {
            Extreme::Min => u16::MAX,
            Extreme::Max => 0,
        }
    }
}

fn filter_rows(values: &mut [u16], width: usize, radius: usize, extreme: Extreme) {
    let mut scratch = SlidingScratch::default();
    let mut line = Vec::with_capacity(width);
    for row in values.chunks_exact_mut(width) {
        line.clear();
        line.extend_from_slice(row);
        scratch.filter(&line, radius, extreme, row);
    }
}

fn filter_columns(
    values: &mut [u16],
    width: usize,
    height: usize,
    radius: usize,
    extreme: Extreme,
) {
    let mut scratch = SlidingScratch::default();
    let mut line = vec![0; height];
    let mut filtered = vec![0; height];
    for x in 0..width {
        for (y, value) in line.iter_mut().enumerate() {
            *value = values[y * width + x];
        }
        scratch.filter(&line, radius, extreme, &mut filtered);
        for (y, &value) in filtered.iter().enumerate() {
            values[y * width + x] = value;
        }
    }
}

/// Buffers for the van Herk/Gil-Werman sliding extreme, reused across lines.
#[derive(Default)]
struct SlidingScratch {
    padded: Vec<u16>,
    prefix: Vec<u16>,
    suffix: Vec<u16>,
}

impl SlidingScratch {
    /// Writes to `out[i]` the extreme of `line[i - radius..=i + radius]`, clipped to the line.
    ///
    /// The padded line is cut into blocks of the window's length. Within each block a running
    /// extreme from the left (`prefix`) and from the right (`suffix`) is kept, and any window
    /// spans at most two blocks, so its extreme is that of one suffix and one prefix value.
    fn filter(&mut self, line: &[u16], radius: usize, extreme: Extreme, out: &mut [u16]) {
        let window = 2 * radius + 1;
        let neutral = extreme.neutral();
        self.padded.clear();
        self.padded.resize(radius, neutral);
        self.padded.extend_from_slice(line);
        self.padded.resize(line.len() + 2 * radius, neutral);
        let length = self.padded.len();

        self.prefix.clear();
        self.prefix.extend_from_slice(&self.padded);
        self.suffix.clear();
        self.suffix.extend_from_slice(&self.padded);
        for i in 1..length {
            if i % window != 0 {
                self.prefix[i] = extreme.pick(self.prefix[i - 1], self.prefix[i]);
            }
        }
        for i in (0..length - 1).rev() {
            if (i + 1) % window != 0 {
                self.suffix[i] = extreme.pick(self.suffix[i + 1], self.suffix[i]);
            }
        }

        for (i, value) in out.iter_mut().enumerate().take(line.len()) {
            // The window of output pixel i covers padded[i..i + window].
            *value = extreme.pick(self.suffix[i], self.prefix[i + window - 1]);
        }
    }
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
