//! Text: glyph outlines from the font (ttf-parser) turned into tiny-skia paths, rasterized
//! once per character and size into coverage masks, then painted per frame without
//! allocating (see [`super::blend`]). Glyph origins snap to whole pixels. Real shaping
//! (kerning, ligatures, complex scripts) comes with the scene engine; this draws text in
//! one font, character by character.

use std::collections::HashMap;

use tiny_skia::{FillRule, Mask, Paint, Path, PathBuilder, PixmapMut, Transform};

use super::blend;

/// The default font: DejaVu Sans (free licence, see `assets/fonts/DejaVu-LICENSE.txt`).
pub static DEFAULT_FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

struct Glyph {
    path: Option<Path>,
    advance: f32,
}

/// A glyph rasterized at one size: its coverage and where it sits from the pen position.
struct GlyphMask {
    mask: Option<Mask>,
    left: i32,
    top: i32,
}

/// A parsed font with caches of glyph outlines (font units, y up) and of glyph masks per
/// size (in quarter pixels).
pub struct Font {
    face: ttf_parser::Face<'static>,
    units_per_em: f32,
    glyphs: HashMap<char, Glyph>,
    masks: HashMap<(char, u32), GlyphMask>,
}

/// Why a font could not be used.
#[derive(Debug, thiserror::Error)]
#[error("font: {0}")]
pub struct FontError(String);

struct Outline(PathBuilder);

impl ttf_parser::OutlineBuilder for Outline {
    fn move_to(&mut self, x: f32, y: f32) {
        self.0.move_to(x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.0.line_to(x, y);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        self.0.quad_to(x1, y1, x, y);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        self.0.cubic_to(x1, y1, x2, y2, x, y);
    }
    fn close(&mut self) {
        self.0.close();
    }
}

impl Font {
    /// Parses a TrueType/OpenType font.
    pub fn parse(data: &'static [u8]) -> Result<Self, FontError> {
        let face = ttf_parser::Face::parse(data, 0).map_err(|e| FontError(e.to_string()))?;
        Ok(Self {
            units_per_em: f32::from(face.units_per_em()),
            face,
            glyphs: HashMap::new(),
            masks: HashMap::new(),
        })
    }

    /// The embedded default font.
    pub fn default_font() -> Self {
        Self::parse(DEFAULT_FONT).expect("embedded font parses")
    }

    fn glyph(&mut self, c: char) -> &Glyph {
        let face = &self.face;
        self.glyphs.entry(c).or_insert_with(|| {
            let id = face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
            let advance = f32::from(face.glyph_hor_advance(id).unwrap_or(0));
            let mut outline = Outline(PathBuilder::new());
            let path = face
                .outline_glyph(id, &mut outline)
                .and_then(|_| outline.0.finish());
            Glyph { path, advance }
        })
    }

    /// Width of `text` at `size` pixels per em.
    pub fn measure(&mut self, text: &str, size: f32) -> f32 {
        let scale = size / self.units_per_em;
        text.chars().map(|c| self.glyph(c).advance * scale).sum()
    }

    fn mask(&mut self, c: char, size: f32) -> &GlyphMask {
        let key = (c, (size * 4.0).round() as u32);
        if !self.masks.contains_key(&key) {
            let scale = key.1 as f32 / 4.0 / self.units_per_em;
            let mask = self
                .glyph(c)
                .path
                .as_ref()
                .and_then(|path| rasterize(path, scale));
            self.masks.insert(
                key,
                mask.unwrap_or(GlyphMask {
                    mask: None,
                    left: 0,
                    top: 0,
                }),
            );
        }
        &self.masks[&key]
    }

    /// Paints `text` in `color` (straight RGBA) with its baseline starting at (`x`,
    /// `baseline`), `size` pixels per em; returns the pen position after the text.
    pub fn draw(
        &mut self,
        canvas: &mut PixmapMut<'_>,
        text: &str,
        x: f32,
        baseline: f32,
        size: f32,
        color: [u8; 4],
    ) -> f32 {
        let color = blend::premultiply(color);
        let scale = size / self.units_per_em;
        let mut pen = x;
        for c in text.chars() {
            let advance = self.glyph(c).advance * scale;
            let glyph = self.mask(c, size);
            if let Some(mask) = &glyph.mask {
                let (gx, gy) = (
                    pen.round() as i32 + glyph.left,
                    baseline.round() as i32 + glyph.top,
                );
                blend::blend_mask(canvas, mask, gx, gy, color);
            }
            pen += advance;
        }
        pen
    }
}

impl Font {
    /// Fills `text` as vector outlines with any paint, transform and clip (sub-pixel exact,
    /// slower than [`Font::draw`]); the baseline starts at (`x`, `baseline`) before
    /// `transform`. Returns the pen position after the text.
    #[allow(clippy::too_many_arguments)]
    pub fn fill_text(
        &mut self,
        canvas: &mut PixmapMut<'_>,
        text: &str,
        x: f32,
        baseline: f32,
        size: f32,
        paint: &Paint<'_>,
        transform: Transform,
        clip: Option<&Mask>,
    ) -> f32 {
        let scale = size / self.units_per_em;
        let mut pen = x;
        for c in text.chars() {
            let glyph = self.glyph(c);
            if let Some(path) = &glyph.path {
                // Font units are y-up; flip onto the y-down canvas.
                let t = transform
                    .pre_concat(Transform::from_row(scale, 0.0, 0.0, -scale, pen, baseline));
                canvas.fill_path(path, paint, FillRule::Winding, t, clip);
            }
            pen += glyph.advance * scale;
        }
        pen
    }
}

/// Rasterizes a glyph outline at `scale` into a mask with a one-pixel margin.
fn rasterize(path: &Path, scale: f32) -> Option<GlyphMask> {
    let b = path.bounds();
    let left = (b.left() * scale).floor() as i32 - 1;
    let top = (-b.bottom() * scale).floor() as i32 - 1;
    let right = (b.right() * scale).ceil() as i32 + 1;
    let bottom = (-b.top() * scale).ceil() as i32 + 1;
    let mut mask = Mask::new((right - left).max(1) as u32, (bottom - top).max(1) as u32)?;
    // Font units are y-up; flip onto the y-down mask, origin at the pen.
    let t = Transform::from_row(scale, 0.0, 0.0, -scale, -left as f32, -top as f32);
    mask.fill_path(path, FillRule::Winding, true, t);
    Some(GlyphMask {
        mask: Some(mask),
        left,
        top,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_where_asked() {
        let mut font = Font::default_font();
        let mut buf = vec![0u8; 200 * 60 * 4];
        let mut pm = PixmapMut::from_bytes(&mut buf, 200, 60).unwrap();
        let end = font.draw(&mut pm, "Hello", 10.0, 40.0, 32.0, [255, 255, 255, 255]);
        assert!((end - 10.0 - font.measure("Hello", 32.0)).abs() < 0.01);
        let lit =
            |x0: usize, x1: usize| (0..60).any(|y| (x0..x1).any(|x| buf[(y * 200 + x) * 4] > 128));
        assert!(lit(10, end as usize), "glyphs inside the measured run");
        assert!(!lit(end as usize + 2, 200), "nothing after the run");
    }
}
