//! Text: shaping with rustybuzz (kerning, ligatures, marks, right-to-left and other scripts
//! the font covers), glyph outlines from ttf-parser turned into tiny-skia paths, and two
//! ways to paint a shaped run: coverage masks rasterized once per glyph and size and
//! blended without allocating ([`Font::draw`]), or exact vector outlines under any
//! transform, paint and clip ([`Font::fill_text`]).
//!
//! A [`FontBook`] holds the embedded default family and the uploaded ones, chosen by family
//! name.

use std::collections::HashMap;

use bytes::Bytes;
use tiny_skia::{FillRule, Mask, Paint, Path, PathBuilder, PixmapMut, Transform};

use super::blend;

/// The default font: DejaVu Sans (free licence, see `host/compose/fonts/DejaVu-LICENSE.txt`).
pub static DEFAULT_FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Most bytes of glyph masks kept per font. Sizes come and go (animations, many layers):
/// past this the cache starts afresh.
pub const MAX_MASK_BYTES: usize = 16 << 20;

/// Largest glyph drawn from a cached coverage mask, in device pixels per em. Larger text
/// is filled as vector outlines (clipped to the canvas by the rasterizer), so a mask never
/// exceeds about this size squared and a template cannot grow the cache with huge glyphs.
pub const MAX_MASK_SIZE: f32 = 384.0;

/// Family name of the embedded default font.
pub const DEFAULT_FAMILY: &str = "DejaVu Sans";

/// A glyph rasterized at one size: its coverage and where it sits from the pen position.
struct GlyphMask {
    mask: Option<Mask>,
    left: i32,
    top: i32,
}

/// One shaped glyph: its id and where its origin sits from the start of the run, in pixels.
#[derive(Debug, Clone, Copy)]
struct Placed {
    id: u16,
    x: f32,
    y: f32,
}

type ShapingFace<'a> = rustybuzz::Face<'a>;

self_cell::self_cell!(
    /// The font's bytes with the shaping face read from them once (reading a face for
    /// shaping builds its lookup tables, hundreds of allocations).
    struct Shaper {
        owner: Bytes,
        #[covariant]
        dependent: ShapingFace,
    }
);

/// A font with caches of glyph outlines (font units, y up) and of glyph masks per size (in
/// quarter pixels). The face is re-read from the bytes on use: parsing only reads the table
/// directory, and it lets a font own its (uploaded) data.
pub struct Font {
    data: Bytes,
    shaper: Shaper,
    family: String,
    units_per_em: f32,
    outlines: HashMap<u16, Option<Path>>,
    masks: HashMap<(u16, u32), GlyphMask>,
    /// Bytes of coverage held in `masks`.
    mask_bytes: usize,
    /// The last shaped run (reused between calls).
    run: Vec<Placed>,
    buffer: Option<rustybuzz::UnicodeBuffer>,
    /// Shaping plans by direction, script and language: compiling one allocates a lot, so
    /// each is made once (a handful per font in practice).
    plans: Vec<Plan>,
}

/// A compiled shaping plan and the buffer properties it is for.
struct Plan {
    direction: rustybuzz::Direction,
    script: rustybuzz::Script,
    language: Option<rustybuzz::Language>,
    plan: rustybuzz::ShapePlan,
}

/// Most shaping plans kept per font.
const MAX_PLANS: usize = 16;

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

/// The family name a font declares (typographic family first, then the legacy one).
fn family_of(face: &ttf_parser::Face<'_>) -> Option<String> {
    let names = face.names();
    [
        ttf_parser::name_id::TYPOGRAPHIC_FAMILY,
        ttf_parser::name_id::FAMILY,
    ]
    .into_iter()
    .find_map(|id| {
        names
            .into_iter()
            .filter(|n| n.name_id == id)
            .find_map(|n| n.to_string())
    })
    .filter(|f| !f.trim().is_empty())
}

/// Facts about a font file, read without keeping it.
#[derive(Debug, Clone, PartialEq)]
pub struct FontFacts {
    /// The declared family name.
    pub family: String,
    /// Glyphs in the font.
    pub glyphs: u16,
}

/// Checks that `data` is a usable TrueType/OpenType font and reads its family name.
pub fn inspect(data: &[u8]) -> Result<FontFacts, FontError> {
    let face = ttf_parser::Face::parse(data, 0).map_err(|e| FontError(e.to_string()))?;
    if face.number_of_glyphs() == 0 || face.units_per_em() == 0 {
        return Err(FontError("the font has no glyphs".into()));
    }
    let family = family_of(&face).ok_or_else(|| FontError("the font has no family name".into()))?;
    Ok(FontFacts {
        family,
        glyphs: face.number_of_glyphs(),
    })
}

impl Font {
    /// Parses a TrueType/OpenType font.
    pub fn parse(data: Bytes) -> Result<Self, FontError> {
        let facts = inspect(&data)?;
        let face = ttf_parser::Face::parse(&data, 0).map_err(|e| FontError(e.to_string()))?;
        let units_per_em = f32::from(face.units_per_em());
        let shaper = Shaper::try_new(data.clone(), |d| {
            rustybuzz::Face::from_slice(d, 0).ok_or_else(|| FontError("no shaping face".into()))
        })?;
        Ok(Self {
            data,
            shaper,
            family: facts.family,
            units_per_em,
            outlines: HashMap::new(),
            masks: HashMap::new(),
            mask_bytes: 0,
            run: Vec::new(),
            buffer: None,
            plans: Vec::new(),
        })
    }

    /// The embedded default font.
    pub fn default_font() -> Self {
        Self::parse(Bytes::from_static(DEFAULT_FONT)).expect("embedded font parses")
    }

    /// The family name.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// Shapes `text` at `size` into `self.run`; returns the advance of the whole run.
    fn shape(&mut self, text: &str, size: f32) -> f32 {
        self.run.clear();
        let face = self.shaper.borrow_dependent();
        let mut buffer = self.buffer.take().unwrap_or_default();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let (direction, script, language) =
            (buffer.direction(), buffer.script(), buffer.language());
        let i =
            match self.plans.iter().position(|p| {
                p.direction == direction && p.script == script && p.language == language
            }) {
                Some(i) => i,
                None => {
                    if self.plans.len() >= MAX_PLANS {
                        self.plans.clear();
                    }
                    let plan = rustybuzz::ShapePlan::new(
                        face,
                        direction,
                        Some(script),
                        language.as_ref(),
                        &[],
                    );
                    self.plans.push(Plan {
                        direction,
                        script,
                        language,
                        plan,
                    });
                    self.plans.len() - 1
                }
            };
        let shaped = rustybuzz::shape_with_plan(face, &self.plans[i].plan, buffer);
        let scale = size / self.units_per_em;
        let mut pen = 0.0;
        for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
            self.run.push(Placed {
                id: info.glyph_id as u16,
                x: pen + pos.x_offset as f32 * scale,
                y: -pos.y_offset as f32 * scale,
            });
            pen += pos.x_advance as f32 * scale;
        }
        self.buffer = Some(shaped.clear());
        pen
    }

    fn outline(&mut self, id: u16) -> Option<&Path> {
        let data = &self.data;
        self.outlines
            .entry(id)
            .or_insert_with(|| {
                let face = ttf_parser::Face::parse(data, 0).ok()?;
                let mut outline = Outline(PathBuilder::new());
                face.outline_glyph(ttf_parser::GlyphId(id), &mut outline)?;
                outline.0.finish()
            })
            .as_ref()
    }

    /// Ascent and descent (positive, below the baseline) of the font at `size` pixels per em.
    pub fn vertical_metrics(&self, size: f32) -> (f32, f32) {
        let scale = size / self.units_per_em;
        let face = self.shaper.borrow_dependent();
        (
            f32::from(face.ascender()) * scale,
            -f32::from(face.descender()) * scale,
        )
    }

    /// Width of `text` at `size` pixels per em, as shaped (kerning included).
    pub fn measure(&mut self, text: &str, size: f32) -> f32 {
        self.shape(text, size)
    }

    fn mask(&mut self, id: u16, size: f32) -> &GlyphMask {
        let key = (id, (size.min(MAX_MASK_SIZE) * 4.0).round() as u32);
        if !self.masks.contains_key(&key) {
            let scale = key.1 as f32 / 4.0 / self.units_per_em;
            let mask = self.outline(id).and_then(|path| rasterize(path, scale));
            let bytes = mask
                .as_ref()
                .and_then(|m| m.mask.as_ref())
                .map_or(0, |m| m.data().len())
                + std::mem::size_of::<GlyphMask>();
            if self.mask_bytes + bytes > MAX_MASK_BYTES {
                self.trim();
            }
            self.mask_bytes += bytes;
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

    /// Drops the cached glyph masks (they are made again when drawn) and their memory.
    pub fn trim(&mut self) {
        self.masks = HashMap::new();
        self.mask_bytes = 0;
    }

    /// Bytes of glyph masks held.
    pub fn mask_bytes(&self) -> usize {
        self.mask_bytes
    }

    /// Paints `text` in `color` (straight RGBA) with its baseline starting at (`x`,
    /// `baseline`), `size` pixels per em; returns the pen position after the text. Glyph
    /// origins snap to whole pixels.
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
        let advance = self.shape(text, size);
        let run = std::mem::take(&mut self.run);
        for g in &run {
            let glyph = self.mask(g.id, size);
            if let Some(mask) = &glyph.mask {
                let (gx, gy) = (
                    (x + g.x).round() as i32 + glyph.left,
                    (baseline + g.y).round() as i32 + glyph.top,
                );
                blend::blend_mask(canvas, mask, gx, gy, color);
            }
        }
        self.run = run;
        x + advance
    }

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
        let advance = self.shape(text, size);
        let run = std::mem::take(&mut self.run);
        for g in &run {
            if let Some(path) = self.outline(g.id) {
                // Font units are y-up; flip onto the y-down canvas.
                let t = transform.pre_concat(Transform::from_row(
                    scale,
                    0.0,
                    0.0,
                    -scale,
                    x + g.x,
                    baseline + g.y,
                ));
                canvas.fill_path(path, paint, FillRule::Winding, t, clip);
            }
        }
        self.run = run;
        x + advance
    }
}

/// The fonts text can use: the embedded default family first, then uploaded ones, looked
/// up by family name (case-insensitive). An unknown or absent family falls back to the
/// default.
pub struct FontBook {
    fonts: Vec<Font>,
}

impl Default for FontBook {
    fn default() -> Self {
        Self {
            fonts: vec![Font::default_font()],
        }
    }
}

impl FontBook {
    /// The font for `family`.
    pub fn get(&mut self, family: Option<&str>) -> &mut Font {
        let i = family
            .and_then(|f| {
                self.fonts
                    .iter()
                    .position(|font| font.family.eq_ignore_ascii_case(f))
            })
            .unwrap_or(0);
        &mut self.fonts[i]
    }

    /// Drops every font's cached glyph masks (when layers went away).
    pub fn trim(&mut self) {
        for f in &mut self.fonts {
            f.trim();
        }
    }

    /// Bytes of glyph masks held by every font.
    pub fn mask_bytes(&self) -> usize {
        self.fonts.iter().map(Font::mask_bytes).sum()
    }

    /// Whether `family` names a font in the book.
    pub fn has(&self, family: &str) -> bool {
        self.fonts
            .iter()
            .any(|f| f.family.eq_ignore_ascii_case(family))
    }

    /// Adds the fonts of `available` that are not in the book yet (keeping the glyph
    /// caches of those that are); fonts that no longer parse are skipped.
    pub fn sync<'a>(&mut self, available: impl IntoIterator<Item = &'a Bytes>) {
        for data in available {
            if self.fonts.iter().any(|f| f.data == *data) {
                continue;
            }
            if let Ok(font) = Font::parse(data.clone()) {
                self.fonts.push(font);
            }
        }
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

    #[test]
    fn shaping_kerns_and_joins_scripts() {
        let mut font = Font::default_font();
        let pair = font.measure("AV", 40.0);
        let apart = font.measure("A", 40.0) + font.measure("V", 40.0);
        assert!(pair < apart - 0.5, "AV is kerned: {pair} vs {apart}");
        // Arabic letters take their joining forms: none is the isolated glyph.
        font.shape("\u{628}\u{628}\u{628}", 40.0);
        let joined: Vec<u16> = font.run.iter().map(|g| g.id).collect();
        font.shape("\u{628}", 40.0);
        let isolated = font.run[0].id;
        assert_eq!(joined.len(), 3);
        assert!(
            joined.iter().all(|&g| g != isolated && g != 0),
            "{joined:?}"
        );
    }

    #[test]
    fn glyph_masks_are_bounded_in_bytes_and_size() {
        let mut font = Font::default_font();
        let mut buf = vec![0u8; 400 * 400 * 4];
        let mut pm = PixmapMut::from_bytes(&mut buf, 400, 400).unwrap();
        // Every size from 1 to 384 px per em of a whole alphabet: far more than the cap.
        for size in 1..=384 {
            font.draw(
                &mut pm,
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                0.0,
                300.0,
                size as f32,
                [255; 4],
            );
            assert!(font.mask_bytes() <= MAX_MASK_BYTES, "{}", font.mask_bytes());
        }
        assert!(font.mask_bytes() > 0);
        // A huge size is capped: its mask is no larger than one at MAX_MASK_SIZE.
        font.trim();
        font.draw(&mut pm, "W", 0.0, 300.0, 30_000.0, [255; 4]);
        let capped = font.mask_bytes();
        font.trim();
        font.draw(&mut pm, "W", 0.0, 300.0, MAX_MASK_SIZE, [255; 4]);
        assert_eq!(capped, font.mask_bytes());
        font.trim();
        assert_eq!(font.mask_bytes(), 0);
    }

    #[test]
    fn fonts_are_found_by_family() {
        let mut book = FontBook::default();
        assert_eq!(book.get(Some("dejavu sans")).family(), DEFAULT_FAMILY);
        assert_eq!(book.get(Some("Nope")).family(), DEFAULT_FAMILY);
        assert!(book.has("DejaVu Sans") && !book.has("Nope"));
        assert!(inspect(b"not a font").is_err());
        assert_eq!(inspect(DEFAULT_FONT).unwrap().family, DEFAULT_FAMILY);
    }
}
