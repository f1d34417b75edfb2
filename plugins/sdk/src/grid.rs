use crate::{ImageView, Region};

/// Luma image reduced by block averaging so that its longer side has at most a given number of
/// cells.
///
/// Detectors work on a grid to bound their memory and time whatever the source size, then map
/// what they find back to source pixels with [`LumaGrid::to_source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LumaGrid {
    pub width: u32,
    pub height: u32,
    /// Side of one square cell in source pixels: 1 when the source was small enough to keep.
    pub cell: u32,
    /// Row-major cell means on a 0..=65535 scale.
    pub values: Vec<u16>,
    source_width: u32,
    source_height: u32,
}

impl LumaGrid {
    /// Averages the luma of `image` over square cells so that neither side exceeds `max_side`.
    ///
    /// Cells on the right and bottom edges may be partial and average only the pixels they
    /// cover. `image` must have passed [`ImageView::validate`], and `max_side` must not be 0.
    pub fn from_image(image: &ImageView<'_>, max_side: u32) -> LumaGrid {
        assert!(max_side > 0, "a grid needs at least one cell per side");
        let cell = image.width.max(image.height).div_ceil(max_side);
        let width = image.width.div_ceil(cell);
        let height = image.height.div_ceil(cell);

        let mut values = Vec::with_capacity(width as usize * height as usize);
        let mut sums = vec![0u64; width as usize];
        let mut row = Vec::with_capacity(image.width as usize);
        for y in 0..image.height {
            image.luma_row(y, &mut row);
            for (sum, chunk) in sums.iter_mut().zip(row.chunks(cell as usize)) {
                *sum += chunk.iter().map(|&v| u64::from(v)).sum::<u64>();
            }

            let block_ends = (y + 1) % cell == 0 || y + 1 == image.height;
            if !block_ends {
                continue;
            }
            let block_rows = u64::from(y % cell + 1);
            for (column, sum) in sums.iter_mut().enumerate() {
                let first_x = column as u32 * cell;
                let block_columns = u64::from(cell.min(image.width - first_x));
                let count = block_rows * block_columns;
                values.push(((*sum + count / 2) / count) as u16);
                *sum = 0;
            }
        }

        LumaGrid {
            width,
            height,
            cell,
            values,
            source_width: image.width,
            source_height: image.height,
        }
    }

    /// Returns the value of the cell at column `x`, row `y`.
    pub fn get(&self, x: u32, y: u32) -> u16 {
        self.values[y as usize * self.width as usize + x as usize]
    }

    /// Maps a rectangle of cells to the source pixels it covers, clipped to the source image.
    pub fn to_source(&self, cells: Region) -> Region {
        let x = (cells.x * self.cell).min(self.source_width - 1);
        let y = (cells.y * self.cell).min(self.source_height - 1);
        let right = ((cells.x + cells.width) * self.cell).min(self.source_width);
        let bottom = ((cells.y + cells.height) * self.cell).min(self.source_height);
        Region {
            x,
            y,
            width: (right - x).max(1),
            height: (bottom - y).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey8(width: u32, height: u32, pixels: &[u8]) -> ImageView<'_> {
        ImageView {
            width,
            height,
            bit_depth: 8,
            channels: 1,
            pixels,
        }
    }

    #[test]
    fn small_image_keeps_its_pixels() {
        let pixels = [0, 1, 2, 3, 4, 5];
        let grid = LumaGrid::from_image(&grey8(3, 2, &pixels), 16);
        assert_eq!(grid.cell, 1);
        assert_eq!((grid.width, grid.height), (3, 2));
        assert_eq!(grid.values, [0, 257, 514, 771, 1028, 1285]);
    }

    #[test]
    fn partial_cells_average_what_they_cover() {
        // 5x3 into cells of 2: a 3x2 grid whose last column and row are partial.
        let pixels = [
            10, 10, 20, 20, 30, //
            10, 10, 20, 20, 30, //
            40, 40, 50, 50, 60, //
        ];
        let grid = LumaGrid::from_image(&grey8(5, 3, &pixels), 3);
        assert_eq!(grid.cell, 2);
        assert_eq!((grid.width, grid.height), (3, 2));
        let expected: Vec<u16> = [10, 20, 30, 40, 50, 60].iter().map(|v| v * 257).collect();
        assert_eq!(grid.values, expected);
    }

    #[test]
    fn to_source_clips_to_the_image() {
        let pixels = [0u8; 15];
        let grid = LumaGrid::from_image(&grey8(5, 3, &pixels), 3);
        let region = grid.to_source(Region {
            x: 1,
            y: 1,
            width: 2,
            height: 1,
        });
        assert_eq!(
            region,
            Region {
                x: 2,
                y: 2,
                width: 3,
                height: 1
            }
        );
    }

    #[test]
    fn one_pixel_image_makes_one_cell() {
        let grid = LumaGrid::from_image(&grey8(1, 1, &[200]), 1024);
        assert_eq!(grid.values, [200 * 257]);
        let region = grid.to_source(Region {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        });
        assert_eq!((region.width, region.height), (1, 1));
    }
}
