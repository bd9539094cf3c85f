//! What rasterizing a command list will cost the host, estimated before anything is drawn.
//!
//! Validation ([`super::commands::validate`]) bounds what a list *says*; this bounds what it
//! *costs*: a list within every count limit can still ask for hours of rasterizing (a glyph
//! at 30 000 px per em, ten thousand layer-sized gradients, a hundred thousand curves
//! stroked a thousand pixels wide). The estimate walks the list once, tracking the
//! transform and the clip's bounding box, and adds up what each command makes the
//! rasterizer do, in device pixels clipped to the canvas:
//!
//! - fills: covered area × paint complexity (solid, gradient, resampled image);
//! - paths: segments × the rows their edges span (the scanline rasterizer walks every edge
//!   on every row it crosses), strokes widened by their device width;
//! - text: per glyph, shaping plus the glyph's device area (a cached mask blended, or an
//!   outline filled when it is too large for a mask);
//! - clips and saves under a clip: the clip mask is filled, intersected or copied.
//!
//! The unit is about one nanosecond of rasterizing on the machines this was measured on
//! (see `benches/compose.rs`, `cost estimate vs raster time`), so a budget in time converts
//! directly. It is an upper-bound-leaning estimate, not a promise: the rasterizer also
//! checks a deadline between commands ([`super::commands::Interrupt`]).
//!
//! The walk allocates nothing and costs well under a microsecond per hundred commands.

use tiny_skia::Transform;

use super::commands::{DrawCommand, Fill, MAX_SAVE_DEPTH, Segment};
use super::text::MAX_MASK_SIZE;

/// Fixed cost of any command (dispatch, state).
const COMMAND: f64 = 30.0;
/// Per covered pixel of a solid anti-aliased fill.
const SOLID_PX: f64 = 1.0;
/// Per covered pixel of a gradient fill (coverage mask, then shading).
const GRADIENT_PX: f64 = 3.0;
/// Per pixel of an image drawn 1:1 from a prepared copy.
const SPRITE_PX: f64 = 1.0;
/// Per pixel of an image resampled under a transform (bilinear).
const RESAMPLE_PX: f64 = 15.0;
/// Per pixel of a clip mask filled, intersected or copied.
const MASK_PX: f64 = 0.5;
/// Per path segment (flattening curves into edges).
const SEGMENT: f64 = 40.0;
/// Per row an edge spans.
const EDGE_ROW: f64 = 1.5;
/// Per glyph (shaping, lookup, placement).
const GLYPH: f64 = 150.0;
/// Segments of a typical glyph outline, for glyphs filled as paths.
const GLYPH_SEGMENTS: f64 = 40.0;
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

fn paint_px(fill: &Fill) -> f64 {
    match fill {
        Fill::Solid { .. } => SOLID_PX,
        _ => GRADIENT_PX,
    }
}

#[derive(Clone, Copy)]
struct State {
    transform: Transform,
    clip: Bounds,
    clipped: bool,
}

/// Estimates what rasterizing `commands` onto a `width` × `height` canvas costs. The list
/// should be validated first; an unbalanced list is estimated anyway (extra saves beyond
/// the nesting limit keep the current state).
pub fn estimate(commands: &[DrawCommand], width: u32, height: u32) -> Cost {
    let canvas = Bounds {
        x0: 0.0,
        y0: 0.0,
        x1: width as f32,
        y1: height as f32,
    };
    let canvas_area = canvas.area();
    let mut stack = [State {
        transform: Transform::identity(),
        clip: canvas,
        clipped: false,
    }; MAX_SAVE_DEPTH + 1];
    let mut depth = 0usize;
    let mut cost = Cost::default();
    for (i, c) in commands.iter().enumerate() {
        let s = stack[depth];
        let visible = |b: Bounds| b.intersect(s.clip).area();
        let rows = |b: Bounds| b.intersect(s.clip).height();
        let c_cost = COMMAND
            + match c {
                DrawCommand::Save => {
                    if depth < MAX_SAVE_DEPTH {
                        depth += 1;
                        stack[depth] = s;
                    }
                    if s.clipped {
                        canvas_area * MASK_PX
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
                DrawCommand::Opacity { .. } => 0.0,
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
                    let edges = if *radius > 0.0 { 10.0 } else { 4.0 };
                    visible(b) * paint_px(fill) + edges * (SEGMENT + rows(b) * EDGE_ROW)
                }
                DrawCommand::Ellipse {
                    x,
                    y,
                    width,
                    height,
                    fill,
                } => {
                    let b = Bounds::of(&s.transform, *x, *y, *width, *height);
                    visible(b) * paint_px(fill) + 8.0 * (SEGMENT + rows(b) * EDGE_ROW)
                }
                DrawCommand::Path {
                    segments,
                    fill,
                    stroke,
                } => path_cost(
                    segments,
                    fill.as_ref(),
                    stroke.as_ref().map(|s| s.width),
                    &s,
                ),
                DrawCommand::Text { text, size, .. } => text_cost(text, *size, &s, canvas_area),
                DrawCommand::Image {
                    x,
                    y,
                    width,
                    height,
                    ..
                } => {
                    let t = s.transform;
                    let upright = t.kx == 0.0 && t.ky == 0.0 && !s.clipped;
                    let b = Bounds::of(&t, *x, *y, *width, *height);
                    visible(b) * if upright { SPRITE_PX } else { RESAMPLE_PX }
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

fn path_cost(segments: &[Segment], fill: Option<&Fill>, stroke: Option<f32>, s: &State) -> f64 {
    let t = &s.transform;
    let half = stroke.map_or(0.0, |w| w * stretch(t) / 2.0);
    let clip_rows = f64::from(s.clip.y1 - s.clip.y0).max(0.0);
    let mut bounds: Option<Bounds> = None;
    let mut edges = 0.0;
    let mut last = (0.0f32, 0.0f32);
    for seg in segments {
        let (points, n): ([(f32, f32); 3], usize) = match *seg {
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
        for &(px, py) in &points[..n] {
            let (dx, dy) = map(t, px, py);
            b.x0 = b.x0.min(dx);
            b.y0 = b.y0.min(dy);
            b.x1 = b.x1.max(dx);
            b.y1 = b.y1.max(dy);
            last = (dx, dy);
        }
        bounds = Some(match bounds {
            None => b,
            Some(a) => Bounds {
                x0: a.x0.min(b.x0),
                y0: a.y0.min(b.y0),
                x1: a.x1.max(b.x1),
                y1: a.y1.max(b.y1),
            },
        });
        // Each edge is walked on every row it spans; a stroke outlines both sides of it,
        // widened by the stroke, plus a join.
        let span = |b: Bounds| b.intersect(s.clip).height().min(clip_rows);
        if fill.is_some() {
            edges += SEGMENT * n as f64 + span(b) * EDGE_ROW;
        }
        if stroke.is_some() {
            edges += 3.0 * (SEGMENT * n as f64 + span(b.grow(half)) * EDGE_ROW);
        }
    }
    let Some(b) = bounds else {
        return 0.0;
    };
    let area = |b: Bounds| b.intersect(s.clip).area();
    edges
        + fill.map_or(0.0, |f| area(b) * paint_px(f))
        + if stroke.is_some() {
            area(b.grow(half)) * SOLID_PX
        } else {
            0.0
        }
}

fn text_cost(text: &str, size: f32, s: &State, canvas_area: f64) -> f64 {
    let glyphs = text.chars().filter(|c| !c.is_whitespace()).count() as f64;
    let spaces = text.chars().count() as f64 - glyphs;
    let em = f64::from(size * stretch(&s.transform));
    let clip_area = s.clip.area().min(canvas_area);
    let ink = (em * em * GLYPH_INK).min(clip_area);
    let per_glyph = if em <= f64::from(MAX_MASK_SIZE) {
        GLYPH + ink * SOLID_PX
    } else {
        // Too large for a mask: filled as an outline, its edges spanning the clip's rows.
        let rows = em.min(f64::from(s.clip.y1 - s.clip.y0).max(0.0));
        GLYPH + ink * SOLID_PX + GLYPH_SEGMENTS * (SEGMENT + rows * EDGE_ROW)
    };
    glyphs * per_glyph + spaces * GLYPH
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::commands::{Fill, GradientStopSpec, StrokeSpec};

    const W: u32 = 960;
    const H: u32 = 540;

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

    fn text(size: f32, scale: f32) -> Vec<DrawCommand> {
        vec![
            DrawCommand::Transform {
                matrix: [scale, 0.0, 0.0, scale, 0.0, 0.0],
            },
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

    /// A budget of 8 ms, the render-call share of one frame at 30 fps.
    const BUDGET: f64 = 8.0e6;

    #[test]
    fn a_layer_of_ordinary_graphics_is_within_budget() {
        // A full-layer gradient, a few shapes and a line of text.
        let mut list = vec![rect(960.0, 540.0, radial()), rect(900.0, 80.0, solid())];
        list.extend(text(48.0, 1.0));
        let cost = estimate(&list, W, H);
        assert!(cost.total < BUDGET / 4.0, "{cost:?}");
    }

    #[test]
    fn glyph_bomb_is_over_budget_but_its_small_twin_is_not() {
        let bomb = estimate(&text(2000.0, 15.0), W, H);
        assert!(bomb.total > BUDGET, "{bomb:?}");
        assert_eq!(bomb.worst, 1, "the text command");
        let fine = estimate(&text(40.0, 1.5), W, H);
        assert!(fine.total < BUDGET / 100.0, "{fine:?}");
    }

    #[test]
    fn large_glyphs_are_counted_by_their_clipped_area() {
        // Off the canvas entirely: only shaping and edges are paid, not 30 000² pixels.
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
    fn gradient_flood_is_over_budget_but_a_few_gradients_are_not() {
        let flood: Vec<_> = (0..5000).map(|_| rect(960.0, 540.0, radial())).collect();
        assert!(estimate(&flood, W, H).total > 100.0 * BUDGET);
        let few: Vec<_> = (0..3).map(|_| rect(960.0, 540.0, radial())).collect();
        assert!(estimate(&few, W, H).total < BUDGET);
    }

    fn zigzag(n: usize, width: f32) -> DrawCommand {
        let mut segments = vec![Segment::MoveTo { x: 0.0, y: 0.0 }];
        segments.extend((0..n).map(|i| Segment::CubicTo {
            x1: (i % 960) as f32,
            y1: 540.0,
            x2: (i % 960) as f32 + 5.0,
            y2: 0.0,
            x: (i % 960) as f32 + 10.0,
            y: 270.0,
        }));
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
    fn stroke_bomb_is_over_budget_but_an_outline_is_not() {
        assert!(estimate(&[zigzag(99_999, 1000.0)], W, H).total > 10.0 * BUDGET);
        assert!(estimate(&[zigzag(200, 3.0)], W, H).total < BUDGET / 10.0);
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
        assert!(estimate(&list, W, H).total > BUDGET);
        let unclipped: Vec<_> = (0..4000)
            .flat_map(|_| [DrawCommand::Save, DrawCommand::Restore])
            .collect();
        assert!(estimate(&unclipped, W, H).total < BUDGET / 10.0);
    }

    #[test]
    fn transforms_scale_the_cost() {
        let small = estimate(&[rect(10.0, 10.0, solid())], W, H);
        let scaled = estimate(
            &[
                DrawCommand::Transform {
                    matrix: [50.0, 0.0, 0.0, 50.0, 0.0, 0.0],
                },
                rect(10.0, 10.0, solid()),
            ],
            W,
            H,
        );
        assert!(scaled.total > 100.0 * small.total, "{small:?} {scaled:?}");
    }
}
