//! Overlay rendering: labelled detection boxes drawn over a radiograph, encoded as RGB PNG.

use font8x8::{BASIC_FONTS, LATIN_FONTS, UnicodeFonts};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageError};

use super::{BitDepth, Radiograph};

/// Detection box in image pixels, with `(x, y)` its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayBox<'a> {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub label: &'a str,
    /// Confidence, printed with two decimals after the label.
    pub score: f32,
}

impl<'a> From<&'a rfo_common::job::Detection> for OverlayBox<'a> {
    fn from(detection: &'a rfo_common::job::Detection) -> Self {
        OverlayBox {
            x: detection.region.x,
            y: detection.region.y,
            width: detection.region.width,
            height: detection.region.height,
            label: &detection.label,
            score: detection.score,
        }
    }
}

/// Error from [`draw_overlay`], [`encode_png`] and [`render_overlay`].
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The radiograph's fields contradict each other, so there is nothing valid to draw on.
    #[error(
        "invalid radiograph: {width}x{height} with {bit_depth:?} bit depth needs {expected} pixel \
         bytes, found {actual}"
    )]
    InvalidImage {
        width: u32,
        height: u32,
        bit_depth: BitDepth,
        expected: usize,
        actual: usize,
    },

    #[error("failed to encode the overlay PNG")]
    Encode(#[source] ImageError),
}

/// Box colours: saturated, none of them grey, and all readable with black text.
const PALETTE: [[u8; 3]; 10] = [
    [255, 48, 48],   // red
    [48, 220, 48],   // green
    [255, 214, 0],   // yellow
    [0, 200, 255],   // sky blue
    [255, 64, 255],  // magenta
    [255, 140, 0],   // orange
    [170, 120, 255], // violet
    [0, 255, 170],   // spring green
    [255, 120, 180], // pink
    [90, 150, 255],  // blue
];

const TEXT_COLOR: [u8; 3] = [0, 0, 0];
const GLYPH_SIZE: u32 = 8;

/// Draws the boxes over the radiograph and encodes the result as an 8-bit RGB PNG of the same
/// size: [`draw_overlay`] followed by [`encode_png`].
///
/// # Errors
///
/// As for [`draw_overlay`] and [`encode_png`].
pub fn render_overlay(
    image: &Radiograph,
    boxes: &[OverlayBox<'_>],
) -> Result<Vec<u8>, OverlayError> {
    encode_png(&draw_overlay(image, boxes)?)
}

/// Draws each box as a coloured outline with its label and score over the radiograph in grey.
///
/// A 16-bit radiograph is shown by its high byte. Boxes and labels are clipped to the image,
/// and a box whose top-left corner lies outside the image is not drawn at all. Outlines are
/// `max(2, min(width, height) / 400)` pixels thick, and text is about 2.5 % of the shorter side
/// tall (8 px glyphs scaled by a whole factor).
///
/// # Errors
///
/// [`OverlayError::InvalidImage`] when a dimension is zero or `pixels` has the wrong length.
pub fn draw_overlay(
    image: &Radiograph,
    boxes: &[OverlayBox<'_>],
) -> Result<DrawnOverlay, OverlayError> {
    let mut canvas = DrawnOverlay::from_radiograph(image)?;
    let style = Style::for_image(image.width, image.height);
    let colors = box_colors(boxes);

    for (overlay_box, &color) in boxes.iter().zip(&colors) {
        canvas.draw_outline(overlay_box, color, style.thickness);
    }
    // Labels go on top of every outline so that no other box hides them.
    let labels = layout_labels(boxes, image.width, image.height, style.text_scale);
    for (label, &color) in labels.iter().zip(&colors) {
        if let Some(label) = label {
            canvas.draw_label(label, color);
        }
    }
    Ok(canvas)
}

/// Encodes a drawn overlay as an 8-bit RGB PNG.
///
/// # Errors
///
/// [`OverlayError::Encode`] when the PNG encoder fails.
pub fn encode_png(canvas: &DrawnOverlay) -> Result<Vec<u8>, OverlayError> {
    let mut png = Vec::with_capacity(canvas.rgb.len() / 4);
    // Fast deflate with the Up filter. On the 1760x1760 leg sample (release build, 2-core
    // machine) it took 10 to 12 ms for a 1.5 MiB file. The Adaptive filter took 19 ms for the
    // same size, and the default compression level about 300 ms for 0.8 MiB.
    let encoder = PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Up);
    encoder
        .write_image(
            &canvas.rgb,
            canvas.width,
            canvas.height,
            ExtendedColorType::Rgb8,
        )
        .map_err(OverlayError::Encode)?;
    Ok(png)
}

/// A rectangle `[x, x + width) x [y, y + height)` in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: u64,
    y: u64,
    width: u64,
    height: u64,
}

impl Rect {
    fn area(&self) -> u64 {
        self.width * self.height
    }

    /// Returns the area this rectangle shares with `other`.
    fn overlap(&self, other: &Rect) -> u64 {
        let width = (self.x + self.width)
            .min(other.x + other.width)
            .saturating_sub(self.x.max(other.x));
        let height = (self.y + self.height)
            .min(other.y + other.height)
            .saturating_sub(self.y.max(other.y));
        width * height
    }

    /// Returns the fraction of `self` that `other` covers, in 0..=1.
    fn covered_by(&self, other: &Rect) -> f64 {
        self.overlap(other) as f64 / self.area().max(1) as f64
    }
}

/// A label's text, glyph magnification and the bar it is drawn on.
#[derive(Debug, Clone, PartialEq)]
struct LabelLayout {
    text: String,
    scale: u32,
    bar: Rect,
}

/// Chooses where each box's label goes, so that labels neither cover each other nor hide other
/// boxes where the image leaves room.
///
/// Boxes pick in order of score, highest first. Each tries, at full size and then at half size:
/// above the box, below it, inside its top edge, then the same three aligned to the box's right
/// edge. The first place that covers no label and no other box wins. When every place covers
/// something, the one that hides least wins: covering another label counts four times as much
/// as hiding the same fraction of a box. Boxes whose top-left corner is outside the image get no
/// label.
fn layout_labels(
    boxes: &[OverlayBox<'_>],
    width: u32,
    height: u32,
    scale: u32,
) -> Vec<Option<LabelLayout>> {
    let (image_width, image_height) = (u64::from(width), u64::from(height));
    let box_rects: Vec<Rect> = boxes
        .iter()
        .map(|b| Rect {
            x: u64::from(b.x),
            y: u64::from(b.y),
            width: u64::from(b.width).min(image_width.saturating_sub(u64::from(b.x))),
            height: u64::from(b.height).min(image_height.saturating_sub(u64::from(b.y))),
        })
        .collect();
    let mut order: Vec<usize> = (0..boxes.len())
        .filter(|&i| boxes[i].x < width && boxes[i].y < height)
        .collect();
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));

    let mut scales = vec![scale.max(1)];
    if scale / 2 >= 1 {
        scales.push(scale / 2);
    }
    let mut layouts = vec![None; boxes.len()];
    let mut placed: Vec<Rect> = Vec::new();
    for index in order {
        let own = box_rects[index];
        let text = format!("{} {:.2}", boxes[index].label, boxes[index].score);
        let cost = |bar: &Rect| {
            let on_labels: f64 = placed.iter().map(|label| bar.covered_by(label)).sum();
            let on_boxes: f64 = box_rects
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != index)
                .map(|(_, other)| other.covered_by(bar))
                .sum();
            4.0 * on_labels + on_boxes
        };

        let mut best: Option<(f64, u32, Rect)> = None;
        'search: for &scale in &scales {
            let glyph = u64::from(GLYPH_SIZE * scale);
            let padding = u64::from(scale);
            let bar_width = text.chars().count() as u64 * glyph + 2 * padding;
            let bar_height = glyph + 2 * padding;
            for bar in label_candidates(own, bar_width, bar_height, image_width, image_height) {
                let bar_cost = cost(&bar);
                if best.is_none_or(|(least, _, _)| bar_cost < least) {
                    best = Some((bar_cost, scale, bar));
                }
                if bar_cost == 0.0 {
                    break 'search;
                }
            }
        }
        if let Some((_, scale, bar)) = best {
            placed.push(bar);
            layouts[index] = Some(LabelLayout {
                text: text.clone(),
                scale,
                bar,
            });
        }
    }
    layouts
}

/// Lists the places a label bar may go around `own`, in order of preference, moved left where
/// it would run past the right edge. Places that do not fit vertically are left out, except
/// inside the box's top edge, which is always offered.
fn label_candidates(
    own: Rect,
    bar_width: u64,
    bar_height: u64,
    image_width: u64,
    image_height: u64,
) -> Vec<Rect> {
    let max_x = image_width.saturating_sub(bar_width);
    let left = own.x.min(max_x);
    let right = (own.x + own.width).saturating_sub(bar_width).min(max_x);
    let above = own.y.checked_sub(bar_height);
    let below = Some(own.y + own.height).filter(|y| y + bar_height <= image_height);
    let inside = Some(own.y.min(image_height.saturating_sub(bar_height)));

    let mut candidates = Vec::with_capacity(6);
    for x in [left, right] {
        for y in [above, below, inside].into_iter().flatten() {
            let bar = Rect {
                x,
                y,
                width: bar_width,
                height: bar_height,
            };
            if !candidates.contains(&bar) {
                candidates.push(bar);
            }
        }
    }
    candidates
}

/// Returns the RGB colour that [`render_overlay`] gives each box.
///
/// A label keeps the same colour from image to image unless it collides with another label in
/// the same image, and distinct labels in one image get distinct colours until the ten palette
/// colours run out.
pub fn box_colors(boxes: &[OverlayBox<'_>]) -> Vec<[u8; 3]> {
    let mut slot_labels: [Option<&str>; PALETTE.len()] = [None; PALETTE.len()];
    boxes
        .iter()
        .map(|overlay_box| PALETTE[palette_slot(overlay_box.label, &mut slot_labels)])
        .collect()
}

/// Finds the label's slot, or claims the first free slot from its hash onward.
fn palette_slot<'a>(label: &'a str, slot_labels: &mut [Option<&'a str>]) -> usize {
    let preferred = fnv1a(label.as_bytes()) as usize % slot_labels.len();
    for step in 0..slot_labels.len() {
        let slot = (preferred + step) % slot_labels.len();
        match slot_labels[slot] {
            Some(owner) if owner == label => return slot,
            Some(_) => continue,
            None => {
                slot_labels[slot] = Some(label);
                return slot;
            }
        }
    }
    // More distinct labels than colours: share the preferred colour.
    preferred
}

/// 64-bit FNV-1a, a fixed hash so that colours do not change between runs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Line thickness and glyph scale for one image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Style {
    /// Outline thickness in pixels: `max(2, min_side / 400)`, so 4 px on a 1841x1955 chest.
    thickness: u32,
    /// Glyph magnification: text is `8 * text_scale` pixels tall, about 2.5 % of the shorter
    /// side (16 px on 512x512, 48 px on 1841x1955).
    text_scale: u32,
}

impl Style {
    fn for_image(width: u32, height: u32) -> Self {
        let min_side = width.min(height);
        Style {
            thickness: (min_side / 400).max(2),
            text_scale: ((min_side + 160) / 320).max(1),
        }
    }
}

/// Radiograph in RGB 8-bit with the boxes drawn on it, ready for [`encode_png`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnOverlay {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl DrawnOverlay {
    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Returns the pixels as row-major RGB triples.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    fn from_radiograph(image: &Radiograph) -> Result<Self, OverlayError> {
        let expected = image.expected_len();
        let pixel_count = image.width as usize * image.height as usize;
        let rgb_len = pixel_count
            .checked_mul(3)
            .filter(|_| pixel_count > 0 && expected == Some(image.pixels.len()));
        let Some(rgb_len) = rgb_len else {
            return Err(OverlayError::InvalidImage {
                width: image.width,
                height: image.height,
                bit_depth: image.bit_depth,
                expected: expected.unwrap_or(usize::MAX),
                actual: image.pixels.len(),
            });
        };

        let mut rgb = vec![0u8; rgb_len];
        let pixels = rgb.chunks_exact_mut(3);
        match image.bit_depth {
            BitDepth::Eight => {
                for (pixel, &value) in pixels.zip(&image.pixels) {
                    pixel.fill(value);
                }
            }
            BitDepth::Sixteen => {
                // Little-endian samples, so the second byte of each is the high byte.
                for (pixel, sample) in pixels.zip(image.pixels.chunks_exact(2)) {
                    pixel.fill(sample[1]);
                }
            }
        }

        Ok(DrawnOverlay {
            width: image.width,
            height: image.height,
            rgb,
        })
    }

    /// Fills the rectangle `[x0, x1) x [y0, y1)`, clipped to the canvas.
    fn fill_rect(&mut self, x0: u64, y0: u64, x1: u64, y1: u64, color: [u8; 3]) {
        let x1 = x1.min(u64::from(self.width));
        let y1 = y1.min(u64::from(self.height));
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let row_len = self.width as usize * 3;
        for y in y0 as usize..y1 as usize {
            let row = &mut self.rgb[y * row_len..(y + 1) * row_len];
            for pixel in row[x0 as usize * 3..x1 as usize * 3].chunks_exact_mut(3) {
                pixel.copy_from_slice(&color);
            }
        }
    }

    /// Draws the outline inside the box's edges, so a box that fits the image stays visible.
    fn draw_outline(&mut self, overlay_box: &OverlayBox<'_>, color: [u8; 3], thickness: u32) {
        let (x0, y0) = (u64::from(overlay_box.x), u64::from(overlay_box.y));
        let x1 = x0 + u64::from(overlay_box.width);
        let y1 = y0 + u64::from(overlay_box.height);
        let t = u64::from(thickness);

        self.fill_rect(x0, y0, x1, (y0 + t).min(y1), color);
        self.fill_rect(x0, y1.saturating_sub(t).max(y0), x1, y1, color);
        self.fill_rect(x0, y0, (x0 + t).min(x1), y1, color);
        self.fill_rect(x1.saturating_sub(t).max(x0), y0, x1, y1, color);
    }

    /// Draws a label's bar in the box colour and its text on top.
    fn draw_label(&mut self, label: &LabelLayout, color: [u8; 3]) {
        let bar = label.bar;
        self.fill_rect(bar.x, bar.y, bar.x + bar.width, bar.y + bar.height, color);

        let scale = u64::from(label.scale);
        let glyph = u64::from(GLYPH_SIZE) * scale;
        let mut glyph_x = bar.x + scale;
        for c in label.text.chars() {
            self.draw_glyph(glyph_x, bar.y + scale, c, scale);
            glyph_x += glyph;
        }
    }

    /// Draws one font8x8 glyph. Characters missing from its Basic Latin and Latin-1 tables show
    /// as '?'.
    fn draw_glyph(&mut self, x: u64, y: u64, c: char, scale: u64) {
        let bitmap = BASIC_FONTS
            .get(c)
            .or_else(|| LATIN_FONTS.get(c))
            .or_else(|| BASIC_FONTS.get('?'))
            .unwrap_or_default();
        // Each byte is one row, top row first, and bit 0 is the leftmost pixel.
        for (row, bits) in (0u64..).zip(bitmap) {
            for column in 0..u64::from(GLYPH_SIZE) {
                if bits & (1 << column) != 0 {
                    let px = x + column * scale;
                    let py = y + row * scale;
                    self.fill_rect(px, py, px + scale, py + scale, TEXT_COLOR);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_grows_with_image_size() {
        assert_eq!(
            Style::for_image(1, 1),
            Style {
                thickness: 2,
                text_scale: 1
            }
        );
        assert_eq!(
            Style::for_image(512, 512),
            Style {
                thickness: 2,
                text_scale: 2
            }
        );
        assert_eq!(
            Style::for_image(1841, 1955),
            Style {
                thickness: 4,
                text_scale: 6
            }
        );
    }

    fn scored(x: u32, y: u32, width: u32, height: u32, score: f32) -> OverlayBox<'static> {
        OverlayBox {
            x,
            y,
            width,
            height,
            label: "metal",
            score,
        }
    }

    fn bar(layout: &Option<LabelLayout>) -> Rect {
        layout.as_ref().expect("a label was placed").bar
    }

    #[test]
    fn label_goes_above_box_with_room() {
        let layouts = layout_labels(&[scored(100, 100, 40, 40, 0.9)], 512, 512, 2);
        let bar = bar(&layouts[0]);
        assert_eq!((bar.x, bar.y + bar.height), (100, 100));
        assert_eq!(layouts[0].as_ref().unwrap().scale, 2);
    }

    #[test]
    fn label_goes_below_box_at_top_edge() {
        let layouts = layout_labels(&[scored(100, 0, 40, 40, 0.9)], 512, 512, 2);
        assert_eq!(bar(&layouts[0]).y, 40);
    }

    #[test]
    fn labels_of_close_boxes_do_not_overlap() {
        let boxes = [
            scored(100, 100, 20, 20, 0.9),
            scored(130, 100, 20, 20, 0.8),
            scored(100, 130, 20, 20, 0.7),
        ];
        let layouts = layout_labels(&boxes, 512, 512, 2);
        for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                assert_eq!(
                    bar(&layouts[i]).overlap(&bar(&layouts[j])),
                    0,
                    "labels {i} and {j}"
                );
            }
        }
    }

    #[test]
    fn label_does_not_hide_small_neighbour() {
        // The small box sits where the large box's label would go by default.
        let boxes = [
            scored(100, 100, 200, 200, 0.9),
            scored(110, 80, 12, 12, 0.5),
        ];
        let layouts = layout_labels(&boxes, 512, 512, 2);
        let small = Rect {
            x: 110,
            y: 80,
            width: 12,
            height: 12,
        };
        assert_eq!(bar(&layouts[0]).overlap(&small), 0);
        assert_eq!(bar(&layouts[1]).overlap(&bar(&layouts[0])), 0);
    }

    #[test]
    fn every_box_inside_image_gets_label() {
        // Twenty boxes in a 64x64 image leave no free place, yet each still gets a label.
        let boxes: Vec<_> = (0..20).map(|i| scored(i * 3, i * 3, 4, 4, 0.5)).collect();
        let layouts = layout_labels(&boxes, 64, 64, 1);
        assert!(layouts.iter().all(Option::is_some));
    }

    #[test]
    fn box_outside_image_gets_no_label() {
        let layouts = layout_labels(&[scored(600, 10, 4, 4, 0.5)], 512, 512, 2);
        assert_eq!(layouts[0], None);
    }

    #[test]
    fn box_colors_follow_labels() {
        let labelled = |label| OverlayBox {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
            label,
            score: 1.0,
        };
        let boxes: Vec<_> = ["metal", "coin", "metal", "pin", "clip"]
            .map(labelled)
            .into();

        let colors = box_colors(&boxes);

        assert_eq!(colors[0], colors[2]);
        assert_ne!(colors[0], colors[1]);
        assert_ne!(colors[1], colors[3]);
        assert_ne!(colors[3], colors[4]);
        assert_ne!(colors[0], colors[4]);
    }

    #[test]
    fn box_colors_stay_distinct_until_palette_runs_out() {
        let labels: Vec<String> = (0..PALETTE.len()).map(|i| format!("label{i}")).collect();
        let boxes: Vec<_> = labels
            .iter()
            .map(|label| OverlayBox {
                x: 0,
                y: 0,
                width: 1,
                height: 1,
                label,
                score: 0.5,
            })
            .collect();

        let mut colors = box_colors(&boxes);
        colors.sort();
        colors.dedup();

        assert_eq!(colors.len(), PALETTE.len());
    }
}
