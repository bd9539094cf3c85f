//! What rasterizing a command list will cost the host, estimated before anything is drawn.
//!
//! Validation ([`super::commands::validate`]) bounds what a list *says*; this bounds what it
//! *costs*: a list within every count limit can still ask for hours of rasterizing (a glyph
//! at 30 000 px per em, ten thousand layer-sized gradients, a hundred thousand curves
//! stroked a thousand pixels wide). The estimate walks the list once, tracking the
//! transform, the opacity and the clip's bounding box, and adds up what each command makes
//! the rasterizer do, in device pixels clipped to the canvas:
//!
//! - every shape filled or stroked: a fixed cost (path, pipeline), a cost per row it spans
//!   (the anti-aliased scanline blitter flushes each row), per segment, per row each edge
//!   spans (about 8 times as much beyond some 30 000 edges on a row), and per span beyond
//!   the first on a row (each run of coverage is blended on its own); plus its covered
//!   area × paint (opaque solid, blended solid, gradient, under a clip mask or not);
//! - dense fills (many edges on a row, as in a sawtooth of thousands of sub-pixel teeth):
//!   rows × edges per row × runs per row, since tiny-skia's coverage accumulator walks the
//!   row's runs from its start for every span narrower than a pixel (quadratic per row);
//! - strokes: about 2n + 1 edges per segment of n points (both sides and a join), each
//!   spanning the rows of the segment grown by the stroke, a span per segment and row
//!   unless neighbouring strokes overlap, and the stroke's ink (length × width, at most its
//!   bounding box);
//! - text: per glyph, shaping plus either a cached mask blended (its ink area) or, when the
//!   rasterizer fills outlines instead (too large for a mask, rotated or skewed, under a
//!   clip, or not one solid colour), a filled shape the glyph's height;
//! - images: 1:1 copies, or resampled (bilinear) when drawn at another size, rotated,
//!   off the pixel grid or under a clip;
//! - clips, and saves under a clip: the canvas-sized clip mask is filled, intersected or
//!   copied.
//!
//! The unit is about one nanosecond of rasterizing on the machine the constants were
//! measured on (2 cores; `cargo bench -p stream-manager --bench cost -- --calibrate`, see
//! `benches/README.md`), so a budget in time converts directly. Over the calibration cases
//! the estimate is within ×0.5 to ×3 of the measured time for ordinary drawing and leans
//! high for adversarial lists (huge glyphs, sub-pixel sawtooth fills); it is not a promise:
//! the rasterizer also checks a deadline between commands ([`super::commands::Interrupt`]).
//!
//! The walk allocates nothing and costs about half a microsecond per hundred commands.

use tiny_skia::Transform;

use super::commands::{DrawCommand, Fill, MAX_SAVE_DEPTH, Segment};
use super::text::MAX_MASK_SIZE;

// Measured with `benches/cost.rs` (`--calibrate`) against tiny-skia 0.12, release build.

/// Fixed cost of any command (dispatch, state): 10 000 saves, transforms, opacities and
/// restores take 44 µs.
const COMMAND: f64 = 5.0;
/// Fixed cost of filling or stroking one shape (path built, pipeline set up): 5000 1×1
/// rects take 5.1 ms.
const SHAPE: f64 = 800.0;
/// Per device row a filled or stroked shape spans (the anti-aliased blitter's row flush):
/// 1000 24×24 rects take 7.7 ms, 200 rounded 120×60 rects 8.9 ms.
const ROW: f64 = 150.0;
/// Per covered pixel of an opaque solid fill (rows written straight): a full 1080p rect,
/// 0.23 ms.
const OPAQUE_PX: f64 = 0.15;
/// Per covered pixel of a translucent solid fill or stroke (blended): 3.2 to 3.4 ns.
const SOLID_PX: f64 = 3.3;
/// Per covered pixel of a gradient fill (coverage mask, then shading): 2.6 to 4 ns.
const GRADIENT_PX: f64 = 3.0;
/// Per covered pixel of text outlines in a gradient (tiny-skia's own gradient pipeline, not
/// the shading of other gradient fills): 26 glyphs of 48 px, 0.5 ms more than in one
/// colour.
const SHADER_PX: f64 = 12.0;
/// Extra per covered pixel under a clip mask: 1 to 3 ns.
const MASKED_PX: f64 = 2.0;
/// Per pixel of an image drawn 1:1 (pixel-aligned, drawn size prepared): 0.4 to 0.73 ns.
const SPRITE_PX: f64 = 0.7;
/// Per pixel of an image resampled (bilinear, or under a clip): 12.7 to 16.6 ns.
const RESAMPLE_PX: f64 = 15.0;
/// Per canvas pixel of a clip mask made, or twice for one intersected: 0.65 to 0.8 ns
/// per intersection.
const MASK_PX: f64 = 0.4;
/// Per canvas pixel of a clip mask copied by a `save` under a clip (a memcpy, measured
/// 0.023 to 0.035 ns alone). Set about twice that: a flood of saves under a clip is the
/// adversarial use (the `clip-flood` guest: 3333 on 320×180 measured 7.8 ms, estimated
/// 17 ms, so over a lone layer's 16.7 ms share at 30 fps), and the copy is memory-bound,
/// sharing bandwidth with the encoder on air.
const MASK_COPY_PX: f64 = 0.06;
/// Per path segment (built, flattened into edges).
const SEGMENT: f64 = 40.0;
/// Per row an edge spans: strokes of 1000 lines over 864 rows take 31 ms (about 3 edges
/// per line), 200 cubics stroked 1000 wide 6 to 15 ms.
const EDGE_ROW: f64 = 10.0;
/// Edges on one row beyond which each costs [`EDGE_ROW_FAR`] instead of [`EDGE_ROW`] (the
/// scanline's edge list outgrows the caches): a stroke bomb of 99 999 cubics 1000 wide on
/// 320×180, 700 000 edges a row, took 11.5 s, 86 ns per edge-row.
const NEAR_EDGES: f64 = 30_000.0;
/// Per row an edge spans, for the edges of a row beyond [`NEAR_EDGES`].
const EDGE_ROW_FAR: f64 = 80.0;
/// Per row, per edge on the row, per run of the row walked (dense fills): a star of 1000
/// lines, 6.7 ms at 540p; a sawtooth of 5000 lines in 40 rows, 117 ms.
const DENSE: f64 = 1.0;
/// Per span of a row beyond the first (a run of coverage blended on its own): a line chart
/// of 500 points stroked 2 wide, 1.7 to 2.8 ms more than its edges.
const SPAN: f64 = 230.0;
/// Per glyph (shaping, lookup, placement): 20 lines of 16 px text, 0.45 µs a glyph.
const GLYPH: f64 = 350.0;
/// Per pixel of a glyph mask blended: glyphs of 160 and 380 px, 0.4 ns.
const GLYPH_PX: f64 = 0.4;
/// Segments of a typical glyph outline, for glyphs filled as paths.
const GLYPH_SEGMENTS: f64 = 40.0;
/// Edges of a typical glyph outline on one row: 26 glyphs of 48 px filled as outlines
/// take 0.34 to 0.55 ms, two of 600 px 0.16 to 0.28 ms.
const GLYPH_EDGES: f64 = 4.0;
/// A glyph's ink covers about this share of its em square.
const GLYPH_INK: f64 = 0.6;

/// A rectangle in device pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Bounds {
    fn intersect(self, o: Bounds) -> Bounds {
        Bounds {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        }
    }

    fn union(self, o: Bounds) -> Bounds {
        Bounds {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }

    fn width(self) -> f64 {
        f64::from((self.x1 - self.x0).max(0.0))
    }

    fn height(self) -> f64 {
        f64::from((self.y1 - self.y0).max(0.0))
    }

    fn area(self) -> f64 {
        self.width() * self.height()
    }

    fn grow(self, by: f32) -> Bounds {
        Bounds {
            x0: self.x0 - by,
            y0: self.y0 - by,
            x1: self.x1 + by,
            y1: self.y1 + by,
        }
    }

    /// The device bounds of the local rectangle (x, y, w, h) under `t`.
    fn of(t: &Transform, x: f32, y: f32, w: f32, h: f32) -> Bounds {
        let mut b = Bounds {
            x0: f32::INFINITY,
            y0: f32::INFINITY,
            x1: f32::NEG_INFINITY,
            y1: f32::NEG_INFINITY,
        };
        for (px, py) in [(x, y), (x + w, y), (x, y + h), (x + w, y + h)] {
            let (dx, dy) = map(t, px, py);
            b.x0 = b.x0.min(dx);
            b.y0 = b.y0.min(dy);
            b.x1 = b.x1.max(dx);
            b.y1 = b.y1.max(dy);
        }
        b
    }
}

fn map(t: &Transform, x: f32, y: f32) -> (f32, f32) {
    (t.sx * x + t.kx * y + t.tx, t.ky * x + t.sy * y + t.ty)
}

/// How much a transform enlarges lengths at most (its larger singular value, bounded
/// above by the larger column norm times √2).
fn stretch(t: &Transform) -> f32 {
    (t.sx * t.sx + t.ky * t.ky)
        .max(t.kx * t.kx + t.sy * t.sy)
        .sqrt()
}

/// The estimated cost of a list, and its most expensive command.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// Estimated rasterizing time, in units of about one nanosecond.
    pub total: f64,
    /// Index of the most expensive command.
    pub worst: usize,
    /// Its cost.
    pub worst_cost: f64,
}

impl Cost {
    /// The estimate as a duration.
    pub fn time(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.total.max(0.0) / 1e9)
    }
}

/// What a command is, in a few words (for fault messages).
pub fn describe(command: &DrawCommand) -> String {
    match command {
        DrawCommand::Save => "save".into(),
        DrawCommand::Restore => "restore".into(),
        DrawCommand::Transform { .. } => "transform".into(),
        DrawCommand::Opacity { .. } => "opacity".into(),
        DrawCommand::ClipRect { .. } => "clip-rect".into(),
        DrawCommand::Rect { fill, .. } => format!("rect ({})", fill_name(fill)),
        DrawCommand::Ellipse { fill, .. } => format!("ellipse ({})", fill_name(fill)),
        DrawCommand::Path {
            segments, stroke, ..
        } => match stroke {
            Some(s) => format!(
                "path of {} segments stroked {} wide",
                segments.len(),
                s.width
            ),
            None => format!("path of {} segments", segments.len()),
        },
        DrawCommand::Text { text, size, .. } => {
            format!("text of {} characters at size {size}", text.chars().count())
        }
        DrawCommand::Image { asset, .. } => format!("image {asset:?}"),
    }
}

fn fill_name(fill: &Fill) -> &'static str {
    match fill {
        Fill::Solid { .. } => "solid",
        Fill::LinearGradient { .. } => "linear gradient",
        Fill::RadialGradient { .. } => "radial gradient",
    }
}

#[derive(Clone, Copy)]
struct State {
    transform: Transform,
    opacity: f32,
    clip: Bounds,
    clipped: bool,
}

impl State {
    /// Per covered pixel of `fill` (a stroke is a solid fill) in this state.
    fn paint_px(&self, fill: &Fill) -> f64 {
        let px = match fill {
            Fill::Solid { color } if color[3] == 255 && self.opacity >= 1.0 => OPAQUE_PX,
            Fill::Solid { .. } => SOLID_PX,
            _ => GRADIENT_PX,
        };
        px + if self.clipped { MASKED_PX } else { 0.0 }
    }

    /// Rows of `b` within the clip.
    fn rows(&self, b: Bounds) -> f64 {
        b.intersect(self.clip).height()
    }

    /// Area of `b` within the clip.
    fn area(&self, b: Bounds) -> f64 {
        b.intersect(self.clip).area()
    }
}

/// What edges beyond [`NEAR_EDGES`] on a row add, for `edge_rows` over `rows`.
fn far_edges(edge_rows: f64, rows: f64) -> f64 {
    if rows > 0.0 {
        rows * (edge_rows / rows - NEAR_EDGES).max(0.0) * (EDGE_ROW_FAR - EDGE_ROW)
    } else {
        0.0
    }
}

/// One filled shape: fixed cost, its rows, segments and edge-rows (anti-aliased scanline
/// fill) and its covered pixels.
fn shape(rows: f64, segments: f64, edge_rows: f64, area: f64, px: f64) -> f64 {
    SHAPE + rows * ROW + segments * SEGMENT + edge_rows * EDGE_ROW + area * px
}

/// Estimates what rasterizing `commands` onto a `width` × `height` canvas costs, taking
/// every image as drawn 1:1 when pixel-aligned and upright (see [`estimate_with`]). The
/// list should be validated first; an unbalanced list is estimated anyway (extra saves
/// beyond the nesting limit keep the current state).
pub fn estimate(commands: &[DrawCommand], width: u32, height: u32) -> Cost {
    estimate_with(commands, width, height, &|_, _, _| true)
}

/// [`estimate`], asking `prepared(asset, w, h)` whether an image can be drawn at `w` × `h`
/// device pixels without resampling (its own size, or a copy prepared at that size); when
/// not, it is costed as resampled, about 20 times a 1:1 copy.
pub fn estimate_with(
    commands: &[DrawCommand],
    width: u32,
    height: u32,
    prepared: &dyn Fn(&str, u32, u32) -> bool,
) -> Cost {
    let canvas = Bounds {
        x0: 0.0,
        y0: 0.0,
        x1: width as f32,
        y1: height as f32,
    };
    let canvas_area = canvas.area();
    let mut stack = [State {
        transform: Transform::identity(),
        opacity: 1.0,
        clip: canvas,
        clipped: false,
    }; MAX_SAVE_DEPTH + 1];
    let mut depth = 0usize;
    let mut cost = Cost::default();
    for (i, c) in commands.iter().enumerate() {
        let s = stack[depth];
        let c_cost = COMMAND
            + match c {
                DrawCommand::Save => {
                    if depth < MAX_SAVE_DEPTH {
                        depth += 1;
                        stack[depth] = s;
                    }
                    // The state is cloned, clip mask and all.
                    if s.clipped {
                        canvas_area * MASK_COPY_PX
                    } else {
                        0.0
                    }
                }
                DrawCommand::Restore => {
                    depth = depth.saturating_sub(1);
                    0.0
                }
                DrawCommand::Transform { matrix: m } => {
                    stack[depth].transform = s
                        .transform
                        .pre_concat(Transform::from_row(m[0], m[1], m[2], m[3], m[4], m[5]));
                    0.0
                }
                DrawCommand::Opacity { value } => {
                    stack[depth].opacity = s.opacity * value;
                    0.0
                }
                DrawCommand::ClipRect {
                    x,
                    y,
                    width,
                    height,
                } => {
                    let b = Bounds::of(&s.transform, *x, *y, *width, *height);
                    stack[depth].clip = s.clip.intersect(b);
                    stack[depth].clipped = true;
                    // A canvas-sized mask is made (or intersected, which makes another).
                    canvas_area * MASK_PX * if s.clipped { 2.0 } else { 1.0 }
                }
                DrawCommand::Rect {
                    x,
                    y,
                    width,
                    height,
                    radius,
                    fill,
                } => {
                    let b = Bounds::of(&s.transform, *x, *y, *width, *height);
                    let segments = if *radius > 0.0 { 8.0 } else { 4.0 };
                    // Convex: two edges on every row.
                    let rows = s.rows(b);
                    shape(rows, segments, 2.0 * rows, s.area(b), s.paint_px(fill))
                }
                DrawCommand::Ellipse {
                    x,
                    y,
                    width,
                    height,
                    fill,
                } => {
                    let b = Bounds::of(&s.transform, *x, *y, *width, *height);
                    let rows = s.rows(b);
                    shape(rows, 8.0, 2.0 * rows, s.area(b), s.paint_px(fill))
                }
                DrawCommand::Path {
                    segments,
                    fill,
                    stroke,
                } => path_cost(segments, fill.as_ref(), stroke.as_ref(), &s),
                DrawCommand::Text {
                    text, size, fill, ..
                } => text_cost(text, *size, fill, &s),
                DrawCommand::Image {
                    asset,
                    x,
                    y,
                    width,
                    height,
                } => {
                    let t = s.transform;
                    let b = Bounds::of(&t, *x, *y, *width, *height);
                    // Mirrors `draw_image`: a straight copy only when upright, unclipped,
                    // on the pixel grid and at a size it has.
                    let (dx, dy) = (x * t.sx + t.tx, y * t.sy + t.ty);
                    let (dw, dh) = ((width * t.sx).round(), (height * t.sy).round());
                    let copy = t.kx == 0.0
                        && t.ky == 0.0
                        && t.sx > 0.0
                        && t.sy > 0.0
                        && !s.clipped
                        && (dx - dx.round()).abs() < 1e-3
                        && (dy - dy.round()).abs() < 1e-3
                        && dw >= 1.0
                        && dh >= 1.0
                        && prepared(asset, dw as u32, dh as u32);
                    s.area(b) * if copy { SPRITE_PX } else { RESAMPLE_PX }
                }
            };
        cost.total += c_cost;
        if c_cost > cost.worst_cost {
            cost.worst = i;
            cost.worst_cost = c_cost;
        }
    }
    cost
}

fn path_cost(
    segments: &[Segment],
    fill: Option<&Fill>,
    stroke: Option<&super::commands::StrokeSpec>,
    s: &State,
) -> f64 {
    let t = &s.transform;
    let half = stroke.map_or(0.0, |st| st.width * stretch(t) / 2.0);
    let mut bounds: Option<Bounds> = None;
    // Points, edge-rows of the fill and of the stroke's outline, rows the segments span
    // (widened by the stroke), device length.
    let (mut points, mut fill_edge_rows, mut stroke_edge_rows) = (0.0, 0.0, 0.0);
    let (mut segment_rows, mut length) = (0.0, 0.0);
    let mut last = (0.0f32, 0.0f32);
    for seg in segments {
        let (ps, n): ([(f32, f32); 3], usize) = match *seg {
            Segment::MoveTo { x, y } => {
                last = map(t, x, y);
                continue;
            }
            Segment::Close => continue,
            Segment::LineTo { x, y } => ([(x, y), (0.0, 0.0), (0.0, 0.0)], 1),
            Segment::QuadTo { x1, y1, x, y } => ([(x1, y1), (x, y), (0.0, 0.0)], 2),
            Segment::CubicTo {
                x1,
                y1,
                x2,
                y2,
                x,
                y,
            } => ([(x1, y1), (x2, y2), (x, y)], 3),
        };
        let mut b = Bounds {
            x0: last.0,
            y0: last.1,
            x1: last.0,
            y1: last.1,
        };
        for &(px, py) in &ps[..n] {
            let (dx, dy) = map(t, px, py);
            b.x0 = b.x0.min(dx);
            b.y0 = b.y0.min(dy);
            b.x1 = b.x1.max(dx);
            b.y1 = b.y1.max(dy);
            // The control polygon is at least as long as the curve.
            let (ex, ey) = (dx - last.0, dy - last.1);
            length += f64::from((ex * ex + ey * ey).sqrt());
            last = (dx, dy);
        }
        bounds = Some(bounds.map_or(b, |a| a.union(b)));
        let n = n as f64;
        points += n;
        // Each edge is walked on every row it spans; a curve may span its rows more than
        // once. A stroke outlines both sides of a segment, widened by the stroke, plus a
        // join.
        fill_edge_rows += (n + 1.0) / 2.0 * s.rows(b);
        let rows = s.rows(b.grow(half));
        segment_rows += rows;
        stroke_edge_rows += (2.0 * n + 1.0) * rows;
    }
    let Some(b) = bounds else {
        return 0.0;
    };
    let mut cost = 0.0;
    if let Some(f) = fill {
        let rows = s.rows(b);
        let width = b.intersect(s.clip).width();
        let (dense, spans) = if rows > 0.0 {
            // Edges on a row: the runs the coverage accumulator may walk for each, and
            // the spans between them (each blended separately).
            let per_row = fill_edge_rows / rows;
            (
                rows * per_row * per_row.min(width),
                (fill_edge_rows / 2.0).min(rows * width / 2.0),
            )
        } else {
            (0.0, 0.0)
        };
        cost += shape(rows, points, fill_edge_rows, s.area(b), s.paint_px(f))
            + far_edges(fill_edge_rows, rows)
            + dense * DENSE
            + (spans - rows).max(0.0) * SPAN;
    }
    if let Some(st) = stroke {
        let g = b.grow(half);
        let rows = s.rows(g);
        let ink = s
            .area(g)
            .min(length * f64::from(2.0 * half + 1.0) + f64::from(4.0 * half * half));
        // A span per segment on each of its rows, except where strokes closer than
        // their width merge into one.
        let spans = if segment_rows > 0.0 {
            let spacing = g.intersect(s.clip).width() * rows / segment_rows;
            segment_rows * ((spacing - f64::from(2.0 * half)) / spacing).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let paint = Fill::Solid { color: st.color };
        cost += shape(
            rows,
            points * 2.0,
            stroke_edge_rows,
            ink,
            s.paint_px(&paint),
        ) + far_edges(stroke_edge_rows, rows)
            + (spans - rows).max(0.0) * SPAN;
    }
    cost
}

fn text_cost(text: &str, size: f32, fill: &Fill, s: &State) -> f64 {
    let glyphs = text.chars().filter(|c| !c.is_whitespace()).count() as f64;
    let spaces = text.chars().count() as f64 - glyphs;
    let t = &s.transform;
    let em = f64::from(size * stretch(t));
    let ink = (em * em * GLYPH_INK).min(s.clip.area());
    // Mirrors `rasterize`: cached masks only for upright, unclipped, solid text that is
    // not too large; otherwise every glyph is a filled outline.
    let masks = matches!(fill, Fill::Solid { .. })
        && !s.clipped
        && t.kx == 0.0
        && t.ky == 0.0
        && t.sx > 0.0
        && (t.sx - t.sy).abs() < 1e-6
        && size * t.sx <= MAX_MASK_SIZE;
    let per_glyph = if masks {
        GLYPH + ink * GLYPH_PX
    } else {
        let rows = em.min(s.clip.height());
        let per_row = ROW + GLYPH_EDGES * EDGE_ROW + DENSE * GLYPH_EDGES * GLYPH_EDGES;
        let px = match fill {
            Fill::Solid { .. } => s.paint_px(fill),
            _ => s.paint_px(fill) - GRADIENT_PX + SHADER_PX,
        };
        GLYPH + SHAPE + GLYPH_SEGMENTS * SEGMENT + rows * per_row + ink * px
    };
    glyphs * per_glyph + spaces * GLYPH
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{Fill, GradientStopSpec, StrokeSpec};

    const W: u32 = 960;
    const H: u32 = 540;

    /// A layer's share of the templates' frame budget with three template layers: half
    /// the frame at 30 fps (16.7 ms) split three ways.
    const SHARE_30: f64 = 5.5e6;
    /// The same at 60 fps.
    const SHARE_60: f64 = 2.7e6;

    fn rect(w: f32, h: f32, fill: Fill) -> DrawCommand {
        DrawCommand::Rect {
            x: 0.0,
            y: 0.0,
            width: w,
            height: h,
            radius: 0.0,
            fill,
        }
    }

    fn solid() -> Fill {
        Fill::Solid {
            color: [255, 255, 255, 255],
        }
    }

    fn radial() -> Fill {
        Fill::RadialGradient {
            cx: 480.0,
            cy: 270.0,
            radius: 480.0,
            stops: vec![
                GradientStopSpec {
                    offset: 0.0,
                    color: [255, 0, 0, 255],
                },
                GradientStopSpec {
                    offset: 1.0,
                    color: [0, 0, 255, 255],
                },
            ],
        }
    }

    fn transform(scale: f32) -> DrawCommand {
        DrawCommand::Transform {
            matrix: [scale, 0.0, 0.0, scale, 0.0, 0.0],
        }
    }

    fn text(size: f32, scale: f32) -> Vec<DrawCommand> {
        vec![
            transform(scale),
            DrawCommand::Text {
                x: 0.0,
                y: 100.0,
                text: "ABCDEFGHIJKLMNOPQRSTUVWXYZ".into(),
                size,
                fill: solid(),
                font: None,
            },
        ]
    }

    fn stroked(segments: Vec<Segment>, width: f32) -> DrawCommand {
        DrawCommand::Path {
            segments,
            fill: None,
            stroke: Some(StrokeSpec {
                color: [255; 4],
                width,
            }),
        }
    }

    #[test]
    fn a_layer_of_ordinary_graphics_is_well_within_its_share() {
        // A full-layer gradient, a translucent panel, a line of text and an outline.
        let mut list = vec![
            rect(960.0, 540.0, radial()),
            rect(
                900.0,
                80.0,
                Fill::Solid {
                    color: [0, 0, 0, 160],
                },
            ),
        ];
        list.extend(text(48.0, 1.0));
        list.push(stroked(
            crate::commands::rounded_rect_segments(20.0, 20.0, 920.0, 500.0, 16.0),
            3.0,
        ));
        let cost = estimate(&list, W, H);
        assert!(cost.total < SHARE_60, "{cost:?}");
        // Five thousand such gradients are not.
        let flood: Vec<_> = (0..5000).map(|_| rect(960.0, 540.0, radial())).collect();
        assert!(estimate(&flood, W, H).total > 1000.0 * SHARE_30);
    }

    #[test]
    fn glyph_bomb_is_over_its_share_but_its_small_twin_is_not() {
        // 26 glyphs of 30 000 px per em, each filled as an outline over the whole layer.
        let bomb = estimate(&text(2000.0, 15.0), 1920, 1080);
        assert!(bomb.total > SHARE_30, "{bomb:?}");
        assert_eq!(bomb.worst, 1, "the text command");
        let fine = estimate(&text(40.0, 1.5), 1920, 1080);
        assert!(fine.total < SHARE_30 / 100.0, "{fine:?}");
    }

    #[test]
    fn large_glyphs_are_counted_by_their_clipped_area() {
        // Clipped to 10×10 pixels: only shaping, set-up and ten rows are paid, not 30 000²
        // pixels.
        let mut list = vec![DrawCommand::ClipRect {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        }];
        list.extend(text(2000.0, 15.0));
        let clipped = estimate(&list, W, H);
        let unclipped = estimate(&text(2000.0, 15.0), W, H);
        assert!(clipped.total < unclipped.total / 4.0, "{clipped:?}");
    }

    #[test]
    fn text_filled_as_outlines_costs_more_than_text_from_masks() {
        // The rasterizer fills outlines for rotated text (and clipped, gradient or huge
        // text); a line at 48 px measured 13 to 22 µs a glyph that way, 1.3 µs from masks.
        let upright = estimate(&text(48.0, 1.0), W, H);
        let mut rotated = text(48.0, 1.0);
        rotated[0] = DrawCommand::Transform {
            matrix: [0.985, 0.174, -0.174, 0.985, 40.0, 0.0],
        };
        let rotated = estimate(&rotated, W, H);
        assert!(
            rotated.total > 5.0 * upright.total,
            "{upright:?} {rotated:?}"
        );
        assert!(rotated.total < SHARE_60, "{rotated:?}");
    }

    #[test]
    fn gradient_flood_is_over_its_share_but_a_few_gradients_are_not() {
        let flood: Vec<_> = (0..50).map(|_| rect(960.0, 540.0, radial())).collect();
        assert!(estimate(&flood, W, H).total > 10.0 * SHARE_30);
        let few: Vec<_> = (0..2).map(|_| rect(960.0, 540.0, radial())).collect();
        assert!(estimate(&few, W, H).total < SHARE_30);
    }

    /// A move-to and `n` cubics, each from the middle of the layer's height down to its
    /// bottom and up to its top, stepping right.
    fn zigzag(n: usize) -> Vec<Segment> {
        let mut segments = vec![Segment::MoveTo { x: 0.0, y: 0.0 }];
        segments.extend((0..n).map(|i| Segment::CubicTo {
            x1: (i % 960) as f32,
            y1: 540.0,
            x2: (i % 960) as f32 + 5.0,
            y2: 0.0,
            x: (i % 960) as f32 + 10.0,
            y: 270.0,
        }));
        segments
    }

    #[test]
    fn stroke_bomb_is_over_its_share_but_a_line_chart_is_not() {
        assert!(estimate(&[stroked(zigzag(99_999), 1000.0)], W, H).total > 100.0 * SHARE_30);
        // Even thin, curves over the whole height are paid on every row they span (200 of
        // them stroked 3 wide measured 8.6 ms at 540p).
        assert!(estimate(&[stroked(zigzag(200), 3.0)], W, H).total > SHARE_60);
        // A chart of 200 points within a band of 100 rows (one of 500 points measured 1.5 to
        // 2.1 ms at 540p, most of it blending a short span per segment and row).
        let mut chart = vec![Segment::MoveTo { x: 0.0, y: 300.0 }];
        chart.extend((1..=200).map(|i| Segment::LineTo {
            x: i as f32 * 4.8,
            y: 300.0 + 50.0 * (i as f32 * 0.3).sin(),
        }));
        let chart = estimate(&[stroked(chart, 3.0)], W, H);
        assert!(chart.total < SHARE_60 / 2.0, "{chart:?}");
    }

    #[test]
    fn a_sawtooth_of_sub_pixel_teeth_is_over_its_share_but_a_star_is_not() {
        // 5000 lines between two rows 40 apart (measured 117 ms): thousands of edges on
        // every row, the rasterizer's walk over a row's runs quadratic.
        let mut teeth = vec![Segment::MoveTo { x: 0.0, y: 250.0 }];
        teeth.extend((1..=5000).map(|i| Segment::LineTo {
            x: i as f32 * 960.0 / 5000.0,
            y: if i % 2 == 0 { 250.0 } else { 290.0 },
        }));
        let fill = |segments| DrawCommand::Path {
            segments,
            fill: Some(solid()),
            stroke: None,
        };
        let sawtooth = estimate(&[fill(teeth)], W, H);
        assert!(sawtooth.total > 10.0 * SHARE_30, "{sawtooth:?}");
        let star: Vec<Segment> = (0..12)
            .map(|i| {
                let a = i as f32 / 12.0 * std::f32::consts::TAU;
                let r = if i % 2 == 0 { 250.0 } else { 120.0 };
                let (x, y) = (480.0 + r * a.cos(), 270.0 + r * a.sin());
                if i == 0 {
                    Segment::MoveTo { x, y }
                } else {
                    Segment::LineTo { x, y }
                }
            })
            .chain([Segment::Close])
            .collect();
        let star = estimate(&[fill(star)], W, H);
        assert!(star.total < SHARE_30 / 20.0, "{star:?}");
    }

    #[test]
    fn saves_under_a_clip_cost_a_mask_copy_each() {
        let mut list = vec![DrawCommand::ClipRect {
            x: 0.0,
            y: 0.0,
            width: 960.0,
            height: 540.0,
        }];
        for _ in 0..4000 {
            list.extend([DrawCommand::Save, DrawCommand::Restore]);
        }
        assert!(estimate(&list, W, H).total > SHARE_30);
        let unclipped: Vec<_> = (0..4000)
            .flat_map(|_| [DrawCommand::Save, DrawCommand::Restore])
            .collect();
        assert!(estimate(&unclipped, W, H).total < SHARE_30 / 100.0);
    }

    #[test]
    fn transforms_scale_the_cost() {
        let scaled = estimate(&[transform(50.0), rect(10.0, 10.0, solid())], W, H);
        let large = estimate(&[rect(500.0, 500.0, solid())], W, H);
        assert!(
            (scaled.total - large.total - COMMAND).abs() < 1.0,
            "{scaled:?} {large:?}"
        );
        let small = estimate(&[rect(10.0, 10.0, solid())], W, H);
        assert!(scaled.total > 20.0 * small.total, "{small:?} {scaled:?}");
    }

    #[test]
    fn blended_fills_cost_more_than_opaque_ones() {
        let opaque = estimate(&[rect(960.0, 540.0, solid())], W, H);
        let faded = estimate(
            &[
                DrawCommand::Opacity { value: 0.5 },
                rect(960.0, 540.0, solid()),
            ],
            W,
            H,
        );
        assert!(faded.total > 5.0 * opaque.total, "{opaque:?} {faded:?}");
    }

    #[test]
    fn images_resampled_cost_more_than_images_copied() {
        let image = DrawCommand::Image {
            asset: "photo".into(),
            x: 0.0,
            y: 0.0,
            width: 960.0,
            height: 540.0,
        };
        // A 640×360 image: drawn at 960×540 it is resampled.
        let own_size = |_: &str, w: u32, h: u32| (w, h) == (640, 360);
        let resampled = estimate_with(std::slice::from_ref(&image), W, H, &own_size);
        let copied = estimate(std::slice::from_ref(&image), W, H);
        assert!(
            resampled.total > 10.0 * copied.total,
            "{copied:?} {resampled:?}"
        );
        // Rotated, it is resampled whatever its size.
        let rotated = estimate(
            &[
                DrawCommand::Transform {
                    matrix: [0.966, 0.259, -0.259, 0.966, 100.0, 0.0],
                },
                image,
            ],
            W,
            H,
        );
        assert!(rotated.total > 10.0 * copied.total, "{rotated:?}");
    }
}
