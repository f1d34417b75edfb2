//! 8-connected component labelling of a mask, with the measurements the detector filters on.

/// Measurements of one connected component, in grid cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Number of cells.
    pub area: u32,
    pub left: u32,
    pub top: u32,
    /// Exclusive.
    pub right: u32,
    /// Exclusive.
    pub bottom: u32,
    /// Whether any cell lies on the first or last row or column.
    pub touches_border: bool,
    /// Sum over the cells of their contrast against the local background.
    pub contrast_sum: u64,
    /// Largest contrast of any cell.
    pub contrast_max: u16,
    /// Sum over the cells of their value.
    pub value_sum: u64,
    /// Ratio of the major to the minor axis of the ellipse with the same second moments.
    pub elongation: f32,
}

impl Component {
    pub fn width(&self) -> u32 {
        self.right - self.left
    }

    pub fn height(&self) -> u32 {
        self.bottom - self.top
    }

    /// Returns the mean contrast of the component's cells.
    pub fn contrast_mean(&self) -> f32 {
        self.contrast_sum as f32 / self.area as f32
    }

    /// Returns the mean level of the local background under the component: the mean value
    /// less the mean contrast.
    pub fn background_mean(&self) -> f32 {
        (self.value_sum as f32 - self.contrast_sum as f32) / self.area as f32
    }

    /// Returns the fraction of the bounding box that the component covers.
    pub fn fill(&self) -> f32 {
        self.area as f32 / (self.width() as f32 * self.height() as f32)
    }
}

/// Finds the 8-connected components of the cells where `mask` is true, keeping those of at least
/// `min_area` cells.
///
/// `values` contains each cell's value and `contrast` its contrast against the local background.
/// Components come out in the row-major order of their first cell, so the result is
/// deterministic.
pub fn label(
    mask: &[bool],
    values: &[u16],
    contrast: &[u16],
    width: usize,
    height: usize,
    min_area: u32,
) -> Vec<Component> {
    let mut visited = vec![false; mask.len()];
    let mut stack = Vec::new();
    let mut components = Vec::new();

    for start in 0..mask.len() {
        if !mask[start] || visited[start] {
            continue;
        }
        visited[start] = true;
        stack.push(start);
        let mut moments = Moments::default();
        let mut component = Component {
            area: 0,
            left: u32::MAX,
            top: u32::MAX,
            right: 0,
            bottom: 0,
            touches_border: false,
            contrast_sum: 0,
            contrast_max: 0,
            value_sum: 0,
            elongation: 1.0,
        };

        while let Some(index) = stack.pop() {
            let (x, y) = (index % width, index / width);
            let cell = Cell {
                x,
                y,
                value: values[index],
                contrast: contrast[index],
            };
            add_cell(&mut component, &mut moments, cell, width, height);

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
        if component.area >= min_area {
            component.elongation = moments.elongation();
            components.push(component);
        }
    }
    components
}

struct Cell {
    x: usize,
    y: usize,
    value: u16,
    contrast: u16,
}

fn add_cell(
    component: &mut Component,
    moments: &mut Moments,
    cell: Cell,
    width: usize,
    height: usize,
) {
    let Cell {
        x,
        y,
        value,
        contrast,
    } = cell;
    let (cx, cy) = (x as u32, y as u32);
    component.area += 1;
    component.left = component.left.min(cx);
    component.top = component.top.min(cy);
    component.right = component.right.max(cx + 1);
    component.bottom = component.bottom.max(cy + 1);
    component.touches_border |= x == 0 || y == 0 || x + 1 == width || y + 1 == height;
    component.contrast_sum += u64::from(contrast);
    component.contrast_max = component.contrast_max.max(contrast);
    component.value_sum += u64::from(value);
    moments.add(x as f64, y as f64);
}

/// Raw first and second moments of cell positions.
#[derive(Default)]
struct Moments {
    count: f64,
    sum_x: f64,
    sum_y: f64,
    sum_xx: f64,
    sum_yy: f64,
    sum_xy: f64,
}

impl Moments {
    fn add(&mut self, x: f64, y: f64) {
        self.count += 1.0;
        self.sum_x += x;
        self.sum_y += y;
        self.sum_xx += x * x;
        self.sum_yy += y * y;
        self.sum_xy += x * y;
    }

    /// Returns sqrt(major / minor eigenvalue) of the covariance matrix.
    ///
    /// Each cell counts as a unit square (variance 1/12 per axis), so a single cell or a
    /// one-cell-wide line still has a finite ratio.
    fn elongation(&self) -> f32 {
        let mean_x = self.sum_x / self.count;
        let mean_y = self.sum_y / self.count;
        let var_x = self.sum_xx / self.count - mean_x * mean_x + 1.0 / 12.0;
        let var_y = self.sum_yy / self.count - mean_y * mean_y + 1.0 / 12.0;
        let cov = self.sum_xy / self.count - mean_x * mean_y;
        let half_trace = (var_x + var_y) / 2.0;
        let spread = ((var_x - var_y) * (var_x - var_y) / 4.0 + cov * cov).sqrt();
        let major = half_trace + spread;
        let minor = (half_trace - spread).max(1e-9);
        (major / minor).sqrt() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_from(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let width = rows[0].len();
        let mask = rows
            .iter()
            .flat_map(|row| row.bytes().map(|b| b == b'#'))
            .collect();
        (mask, width, rows.len())
    }

    #[test]
    fn label_joins_diagonal_neighbours() {
        let (mask, width, height) = mask_from(&[
            "#....", //
            ".#...", //
            "...##", //
            "...##", //
        ]);
        let values = vec![50; mask.len()];
        let contrast = vec![10; mask.len()];
        let components = label(&mask, &values, &contrast, width, height, 1);
        assert_eq!(components.len(), 2);
        assert_eq!(components[0].area, 2);
        assert_eq!((components[0].width(), components[0].height()), (2, 2));
        assert!(components[0].touches_border);
        assert_eq!(components[1].area, 4);
        assert_eq!(components[1].left, 3);
        assert_eq!(components[1].contrast_sum, 40);
        assert_eq!(components[1].background_mean(), 40.0);

        let large_only = label(&mask, &values, &contrast, width, height, 3);
        assert_eq!(large_only.len(), 1);
        assert_eq!(large_only[0].area, 4);
    }

    #[test]
    fn square_is_round_and_line_is_long() {
        let (square, width, height) = mask_from(&[
            ".......", //
            ".###...", //
            ".###...", //
            ".###...", //
            ".......", //
        ]);
        let contrast = vec![1; square.len()];
        let square = &label(&square, &contrast, &contrast, width, height, 1)[0];
        assert!((square.elongation - 1.0).abs() < 1e-3);
        assert!(!square.touches_border);

        let (line, width, height) = mask_from(&[
            ".........", //
            ".#######.", //
            ".........", //
        ]);
        let contrast = vec![1; line.len()];
        let line = &label(&line, &contrast, &contrast, width, height, 1)[0];
        assert!(line.elongation > 5.0, "elongation {}", line.elongation);
    }
}
