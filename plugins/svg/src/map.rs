//! Mapping a `usvg` tree onto the host's draw commands, or saying why it does not map.
//!
//! `usvg` has already turned every shape into a path, resolved styles and `<use>`, and
//! moved gradients given in the bounding box's units into user space (with a gradient
//! transform). What maps:
//!
//! - a group with a transform and/or an opacity: `save`, `transform`, `opacity`, …,
//!   `restore` (a group with neither adds nothing). The host applies opacity to each
//!   shape, not to the group as one layer, which is the same only when the shapes under
//!   the group do not overlap: a group opacity maps when it covers one shape (a fill or a
//!   stroke), or shapes whose bounding boxes are apart;
//! - a path filled with the non-zero rule, with a colour, a linear gradient or a radial
//!   gradient (2 to 16 stops, `spreadMethod="pad"`). Fill and stop opacities go into the
//!   colours' alpha. A linear gradient's transform is folded into its end points (any
//!   invertible transform); a radial gradient's into its centre and radius when it is a
//!   rotation and uniform scale, else the path is drawn in the gradient's own coordinates
//!   (`save`, `transform`, the path mapped back, `restore`). A radial gradient with a
//!   focal point off its centre, or a focal radius, does not map;
//! - a stroke without dashes: a colour stroke with the default caps and joins (butt,
//!   miter, miter limit 4, which are the host's) is the path's stroke; any other stroke
//!   (round or square caps, round or bevel joins, another miter limit, a gradient) is
//!   outlined here and filled;
//! - `paint-order`: the fill and the stroke are drawn in the SVG's order;
//! - the SVG's viewport clips what reaches outside it (`clip-rect`).
//!
//! What does not map, and falls back to a raster ([`Unmappable`]): embedded images,
//! filters, masks, clip paths, blend modes, patterns, dashes, even-odd fills, gradients
//! that reflect or repeat or have more than 16 stops or a focal point, group opacity over
//! overlapping shapes, numbers beyond ±100 000, transforms that flatten the plane, and
//! drawings over the host's limits for a drawing (commands, path segments, nested saves).
//! Text is not in the tree at all (see the [crate docs](crate#limits)).

use std::fmt;

use stream_manager_sdk::limits::{
    MAX_COORDINATE, MAX_GRADIENT_STOPS, MAX_PATH_SEGMENTS, MAX_STROKE_WIDTH,
};
use stream_manager_sdk::loader::{MAX_DRAWING_COMMANDS, MAX_DRAWING_SAVE_DEPTH};
use stream_manager_sdk::{Canvas, Color, Fill, Matrix, Path, Stroke};
use usvg::tiny_skia_path::{self as tsp, PathSegment};

/// Why an SVG does not map onto the host's draw commands.
#[derive(Clone, Debug, PartialEq)]
pub enum Unmappable {
    /// An embedded image.
    Image,
    /// A filter.
    Filter,
    /// A mask.
    Mask,
    /// A clip path.
    ClipPath,
    /// A blend mode other than normal.
    BlendMode,
    /// A pattern fill or stroke.
    Pattern,
    /// A dashed stroke.
    Dashes,
    /// The even-odd fill rule.
    EvenOdd,
    /// A gradient that reflects or repeats.
    Spread,
    /// A gradient of more stops than the host takes.
    TooManyStops(usize),
    /// A radial gradient with a focal point off its centre or a focal radius.
    Focal,
    /// A group opacity over shapes that overlap.
    GroupOpacity,
    /// A number beyond what the host takes.
    OutOfRange,
    /// A transform that flattens the plane onto a line or a point.
    Flat,
    /// More than the host takes in a drawing: what there is too much of.
    TooLarge(&'static str),
}

impl fmt::Display for Unmappable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unmappable::Image => f.write_str("the SVG embeds an image"),
            Unmappable::Filter => f.write_str("the SVG has a filter"),
            Unmappable::Mask => f.write_str("the SVG has a mask"),
            Unmappable::ClipPath => f.write_str("the SVG has a clip path"),
            Unmappable::BlendMode => f.write_str("the SVG has a blend mode"),
            Unmappable::Pattern => f.write_str("the SVG has a pattern"),
            Unmappable::Dashes => f.write_str("the SVG has a dashed stroke"),
            Unmappable::EvenOdd => f.write_str("the SVG has an even-odd fill"),
            Unmappable::Spread => f.write_str("the SVG has a gradient that reflects or repeats"),
            Unmappable::TooManyStops(n) => write!(
                f,
                "the SVG has a gradient of {n} stops (the host takes {MAX_GRADIENT_STOPS})"
            ),
            Unmappable::Focal => f.write_str("the SVG has a radial gradient with a focal point"),
            Unmappable::GroupOpacity => {
                f.write_str("the SVG has a group opacity over shapes that overlap")
            }
            Unmappable::OutOfRange => write!(
                f,
                "the SVG has a coordinate beyond ±{MAX_COORDINATE} once transformed"
            ),
            Unmappable::Flat => f.write_str("the SVG has a transform that flattens its shapes"),
            Unmappable::TooLarge(what) => write!(f, "the SVG is too large for {what}"),
        }
    }
}

/// One draw command, in the SDK's terms, before it is drawn on a canvas.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Clips to a rectangle: x, y, width, height.
    ClipRect(f32, f32, f32, f32),
    /// Pushes the transform and opacity.
    Save,
    /// Pops them.
    Restore,
    /// Post-multiplies the transform.
    Transform(Matrix),
    /// Multiplies the opacity.
    Opacity(f32),
    /// A path, filled and/or stroked.
    Path {
        /// The segments.
        path: Path,
        /// The fill.
        fill: Option<Fill>,
        /// The stroke.
        stroke: Option<Stroke>,
    },
}

/// The draw commands of an SVG at its natural size, or why it does not map.
pub fn map(tree: &usvg::Tree) -> Result<Vec<Op>, Unmappable> {
    let mut mapper = Mapper::default();
    let (width, height) = (tree.size().width(), tree.size().height());
    let reach = tree.root().abs_stroke_bounding_box();
    // Slack for anti-aliasing at the edge.
    if reach.left() < -0.5
        || reach.top() < -0.5
        || reach.right() > width + 0.5
        || reach.bottom() > height + 0.5
    {
        mapper.push(Op::ClipRect(0.0, 0.0, number(width)?, number(height)?))?;
    }
    mapper.group(tree.root())?;
    Ok(mapper.ops)
}

/// Draws the commands on a canvas for a drawing.
pub fn draw(ops: &[Op]) -> Canvas {
    let mut canvas = Canvas::for_drawing();
    for op in ops {
        match op {
            Op::ClipRect(x, y, w, h) => canvas.clip_rect(*x, *y, *w, *h),
            Op::Save => canvas.save(),
            Op::Restore => canvas.restore(),
            Op::Transform(m) => canvas.transform(*m),
            Op::Opacity(o) => canvas.opacity(*o),
            Op::Path { path, fill, stroke } => canvas.path(path, fill.clone(), *stroke),
        }
    }
    canvas
}

/// How the stroke outline is flattened: precise enough for the drawing to be scaled up
/// this many times.
const OUTLINE_RESOLUTION: f32 = 4.0;

/// Most shapes under one group opacity whose bounding boxes are compared pairwise.
const MAX_OPACITY_SHAPES: usize = 32;

/// Smallest magnitude of a transform's determinant that the host accepts.
const MIN_DETERMINANT: f64 = 1e-9;

/// A paint made into a fill: a fill in the path's coordinates, or one in coordinates of
/// its own (a radial gradient under a transform that is not a similarity), in which the
/// path is drawn mapped back.
#[derive(Clone, Debug)]
enum Paint {
    Direct(Fill),
    Under {
        transform: tsp::Transform,
        inverse: tsp::Transform,
        fill: Fill,
    },
}

#[derive(Default)]
struct Mapper {
    ops: Vec<Op>,
    segments: usize,
    depth: usize,
}

impl Mapper {
    fn push(&mut self, op: Op) -> Result<(), Unmappable> {
        // Room for this one and the restores of the open saves.
        if self.ops.len() + 1 + self.depth > MAX_DRAWING_COMMANDS {
            return Err(Unmappable::TooLarge("the host's commands per drawing"));
        }
        self.ops.push(op);
        Ok(())
    }

    fn save(&mut self) -> Result<(), Unmappable> {
        if self.depth >= MAX_DRAWING_SAVE_DEPTH {
            return Err(Unmappable::TooLarge("the host's nesting of groups"));
        }
        self.push(Op::Save)?;
        self.depth += 1;
        Ok(())
    }

    fn restore(&mut self) {
        // `push` kept room for it.
        self.ops.push(Op::Restore);
        self.depth -= 1;
    }

    fn group(&mut self, group: &usvg::Group) -> Result<(), Unmappable> {
        if !group.filters().is_empty() {
            return Err(Unmappable::Filter);
        }
        if group.mask().is_some() {
            return Err(Unmappable::Mask);
        }
        if group.clip_path().is_some() {
            return Err(Unmappable::ClipPath);
        }
        if group.blend_mode() != usvg::BlendMode::Normal {
            return Err(Unmappable::BlendMode);
        }
        let opacity = group.opacity().get();
        if opacity <= 0.0 {
            return Ok(());
        }
        if opacity < 1.0 && !opacity_distributes(group) {
            return Err(Unmappable::GroupOpacity);
        }
        let transform = group.transform();
        let wrapped = !transform.is_identity() || opacity < 1.0;
        if wrapped {
            self.save()?;
            if !transform.is_identity() {
                self.push(Op::Transform(matrix(transform)?))?;
            }
            if opacity < 1.0 {
                self.push(Op::Opacity(opacity))?;
            }
        }
        for child in group.children() {
            match child {
                usvg::Node::Group(g) => self.group(g)?,
                usvg::Node::Path(p) => self.path(p)?,
                usvg::Node::Image(_) => return Err(Unmappable::Image),
                // Not produced without usvg's text support; nothing to draw with anyway.
                usvg::Node::Text(_) => {}
            }
        }
        if wrapped {
            self.restore();
        }
        Ok(())
    }

    fn path(&mut self, path: &usvg::Path) -> Result<(), Unmappable> {
        if !path.is_visible() {
            return Ok(());
        }
        let data = path.data();
        let fill = match path.fill() {
            Some(fill) if fill.rule() == usvg::FillRule::EvenOdd => {
                return Err(Unmappable::EvenOdd);
            }
            Some(fill) => Some(paint(fill.paint(), fill.opacity().get())?),
            None => None,
        };
        // A stroke is the path's own, or an outline filled like a shape.
        let (stroke, outline) = match path.stroke() {
            None => (None, None),
            Some(s) if s.dasharray().is_some() => return Err(Unmappable::Dashes),
            Some(s) => match native_stroke(s) {
                Some(native) => (Some(native), None),
                None => {
                    let t = path.abs_transform();
                    let scale = t.sx.hypot(t.kx).max(t.ky.hypot(t.sy)).max(1e-3);
                    let outline = data.stroke(&s.to_tiny_skia(), OUTLINE_RESOLUTION * scale);
                    match outline {
                        Some(o) => (None, Some((o, paint(s.paint(), s.opacity().get())?))),
                        None => (None, None),
                    }
                }
            },
        };
        let stroke_first = path.paint_order() == usvg::PaintOrder::StrokeAndFill;
        match (fill, stroke, outline) {
            // One command for both, drawn fill first, as the host does.
            (Some(Paint::Direct(fill)), Some(stroke), None) if !stroke_first => {
                let segments = self.segments(data, None)?;
                self.push(Op::Path {
                    path: segments,
                    fill: Some(fill),
                    stroke: Some(stroke),
                })
            }
            (fill, stroke, outline) => {
                let stroke_step = |m: &mut Mapper| -> Result<(), Unmappable> {
                    if let Some(stroke) = stroke {
                        let segments = m.segments(data, None)?;
                        m.push(Op::Path {
                            path: segments,
                            fill: None,
                            stroke: Some(stroke),
                        })?;
                    }
                    if let Some((outline, paint)) = &outline {
                        m.fill(outline, paint)?;
                    }
                    Ok(())
                };
                if stroke_first {
                    stroke_step(self)?;
                }
                if let Some(fill) = &fill {
                    self.fill(data, fill)?;
                }
                if !stroke_first {
                    stroke_step(self)?;
                }
                Ok(())
            }
        }
    }

    /// A filled path.
    fn fill(&mut self, data: &tsp::Path, paint: &Paint) -> Result<(), Unmappable> {
        match paint {
            Paint::Direct(fill) => {
                let path = self.segments(data, None)?;
                self.push(Op::Path {
                    path,
                    fill: Some(fill.clone()),
                    stroke: None,
                })
            }
            Paint::Under {
                transform,
                inverse,
                fill,
            } => {
                let path = self.segments(data, Some(*inverse))?;
                self.save()?;
                self.push(Op::Transform(matrix(*transform)?))?;
                self.push(Op::Path {
                    path,
                    fill: Some(fill.clone()),
                    stroke: None,
                })?;
                self.restore();
                Ok(())
            }
        }
    }

    /// The segments of a path, mapped through `transform` if given, counted against the
    /// host's limit.
    fn segments(
        &mut self,
        data: &tsp::Path,
        transform: Option<tsp::Transform>,
    ) -> Result<Path, Unmappable> {
        self.segments += data.verbs().len();
        if self.segments > MAX_PATH_SEGMENTS {
            return Err(Unmappable::TooLarge("the host's path segments per drawing"));
        }
        let point = |mut p: tsp::Point| -> Result<(f32, f32), Unmappable> {
            if let Some(t) = transform {
                t.map_point(&mut p);
            }
            Ok((number(p.x)?, number(p.y)?))
        };
        let mut path = Path::new();
        for segment in data.segments() {
            match segment {
                PathSegment::MoveTo(p) => {
                    let (x, y) = point(p)?;
                    path.move_to(x, y);
                }
                PathSegment::LineTo(p) => {
                    let (x, y) = point(p)?;
                    path.line_to(x, y);
                }
                PathSegment::QuadTo(p1, p) => {
                    let ((x1, y1), (x, y)) = (point(p1)?, point(p)?);
                    path.quad_to(x1, y1, x, y);
                }
                PathSegment::CubicTo(p1, p2, p) => {
                    let ((x1, y1), (x2, y2), (x, y)) = (point(p1)?, point(p2)?, point(p)?);
                    path.cubic_to(x1, y1, x2, y2, x, y);
                }
                PathSegment::Close => {
                    path.close();
                }
            }
        }
        Ok(path)
    }
}

/// The stroke as the host draws it, when it is one: a colour, with the default caps, joins
/// and miter limit, and a width the host takes.
fn native_stroke(stroke: &usvg::Stroke) -> Option<Stroke> {
    let usvg::Paint::Color(c) = stroke.paint() else {
        return None;
    };
    let width = stroke.width().get();
    let default_shape = stroke.linecap() == usvg::LineCap::Butt
        && stroke.linejoin() == usvg::LineJoin::Miter
        && stroke.miterlimit().get() == 4.0;
    (default_shape && width <= MAX_STROKE_WIDTH)
        .then(|| Stroke::new(color(*c, stroke.opacity().get()), width))
}

/// A colour with an opacity (0–1) folded into its alpha.
fn color(c: usvg::Color, opacity: f32) -> Color {
    Color::rgba(
        c.red,
        c.green,
        c.blue,
        (opacity.clamp(0.0, 1.0) * 255.0).round() as u8,
    )
}

/// A paint as a fill.
fn paint(paint: &usvg::Paint, opacity: f32) -> Result<Paint, Unmappable> {
    match paint {
        usvg::Paint::Color(c) => Ok(Paint::Direct(Fill::Solid(color(*c, opacity)))),
        usvg::Paint::LinearGradient(g) => {
            let stops = stops(g, opacity)?;
            linear(g, stops).map(Paint::Direct)
        }
        usvg::Paint::RadialGradient(g) => {
            let stops = stops(g, opacity)?;
            radial(g, stops)
        }
        usvg::Paint::Pattern(_) => Err(Unmappable::Pattern),
    }
}

fn stops(g: &usvg::BaseGradient, opacity: f32) -> Result<Vec<(f32, Color)>, Unmappable> {
    if g.spread_method() != usvg::SpreadMethod::Pad {
        return Err(Unmappable::Spread);
    }
    let stops = g.stops();
    if stops.len() > MAX_GRADIENT_STOPS {
        return Err(Unmappable::TooManyStops(stops.len()));
    }
    Ok(stops
        .iter()
        .map(|s| {
            (
                s.offset().get(),
                color(s.color(), s.opacity().get() * opacity),
            )
        })
        .collect())
}

/// A gradient of fewer than two stops (or of no extent) paints one colour: the last stop's.
fn solid(stops: &[(f32, Color)]) -> Fill {
    Fill::Solid(stops.last().map_or(Color::TRANSPARENT, |&(_, c)| c))
}

/// A linear gradient with its transform folded in. Under an invertible affine transform a
/// linear gradient stays linear: its start point moves with the transform, and its
/// direction is the gradient of the position along it, which transforms by the inverse
/// transpose.
fn linear(g: &usvg::LinearGradient, stops: Vec<(f32, Color)>) -> Result<Fill, Unmappable> {
    let (x1, y1, x2, y2) = (
        f64::from(g.x1()),
        f64::from(g.y1()),
        f64::from(g.x2()),
        f64::from(g.y2()),
    );
    let (dx, dy) = (x2 - x1, y2 - y1);
    let length2 = dx * dx + dy * dy;
    if stops.len() < 2 || length2 == 0.0 {
        return Ok(solid(&stops));
    }
    let t = g.transform();
    let (sx, ky, kx, sy) = (
        f64::from(t.sx),
        f64::from(t.ky),
        f64::from(t.kx),
        f64::from(t.sy),
    );
    let det = sx * sy - kx * ky;
    if det.abs() < MIN_DETERMINANT {
        return Err(Unmappable::Flat);
    }
    // The position along the gradient grows by (dx, dy) / length² per unit in gradient
    // space; in user space by the inverse transpose of that.
    let (gx, gy) = (dx / length2, dy / length2);
    let (ux, uy) = ((sy * gx - ky * gy) / det, (-kx * gx + sx * gy) / det);
    let u2 = ux * ux + uy * uy;
    let start = (
        sx * x1 + kx * y1 + f64::from(t.tx),
        ky * x1 + sy * y1 + f64::from(t.ty),
    );
    let end = (start.0 + ux / u2, start.1 + uy / u2);
    Ok(Fill::linear(
        number64(start.0)?,
        number64(start.1)?,
        number64(end.0)?,
        number64(end.1)?,
        stops,
    ))
}

/// A radial gradient: centred (no focal point), its transform folded in when it is a
/// similarity, else drawn in its own coordinates.
fn radial(g: &usvg::RadialGradient, stops: Vec<(f32, Color)>) -> Result<Paint, Unmappable> {
    let (cx, cy, r) = (g.cx(), g.cy(), g.r().get());
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * r.max(1.0);
    if !close(g.fx(), cx) || !close(g.fy(), cy) || g.fr().get() > 0.0 {
        return Err(Unmappable::Focal);
    }
    if stops.len() < 2 {
        return Ok(Paint::Direct(solid(&stops)));
    }
    let t = g.transform();
    let det = f64::from(t.sx) * f64::from(t.sy) - f64::from(t.kx) * f64::from(t.ky);
    if det.abs() < MIN_DETERMINANT {
        return Err(Unmappable::Flat);
    }
    let scale = det.abs().sqrt();
    let tolerance = 1e-4 * scale;
    let similar = (f64::from(t.sx).abs() - f64::from(t.sy).abs()).abs() <= tolerance
        && (f64::from(t.kx).abs() - f64::from(t.ky).abs()).abs() <= tolerance
        && (f64::from(t.sx) * f64::from(t.kx) + f64::from(t.ky) * f64::from(t.sy)).abs()
            <= tolerance * scale;
    if similar {
        let mut centre = tsp::Point::from_xy(cx, cy);
        t.map_point(&mut centre);
        return Ok(Paint::Direct(Fill::radial(
            number(centre.x)?,
            number(centre.y)?,
            number64(f64::from(r) * scale)?,
            stops,
        )));
    }
    let inverse = t.invert().ok_or(Unmappable::Flat)?;
    Ok(Paint::Under {
        transform: t,
        inverse,
        fill: Fill::radial(number(cx)?, number(cy)?, number(r)?, stops),
    })
}

/// Whether an opacity on `group` can be applied to each of its shapes instead: it covers
/// one shape, or shapes whose bounding boxes are apart.
fn opacity_distributes(group: &usvg::Group) -> bool {
    let mut boxes = Vec::new();
    if !shapes(group, &mut boxes) {
        return false;
    }
    boxes.iter().enumerate().all(|(i, a)| {
        boxes[i + 1..].iter().all(|b| {
            a.right() <= b.left()
                || b.right() <= a.left()
                || a.bottom() <= b.top()
                || b.bottom() <= a.top()
        })
    })
}

/// Collects the bounding boxes of the shapes (fills and strokes) under `group`; false when
/// there are too many to compare, or a path whose fill and stroke overlap.
fn shapes(group: &usvg::Group, boxes: &mut Vec<usvg::Rect>) -> bool {
    for child in group.children() {
        match child {
            usvg::Node::Group(g) if !shapes(g, boxes) => return false,
            usvg::Node::Group(_) => {}
            usvg::Node::Path(p) if p.is_visible() => {
                if p.fill().is_some() && p.stroke().is_some() {
                    return false;
                }
                boxes.push(p.abs_stroke_bounding_box());
            }
            _ => {}
        }
        if boxes.len() > MAX_OPACITY_SHAPES {
            return false;
        }
    }
    true
}

/// A transform as a matrix the host takes.
fn matrix(t: tsp::Transform) -> Result<Matrix, Unmappable> {
    let det = f64::from(t.sx) * f64::from(t.sy) - f64::from(t.kx) * f64::from(t.ky);
    if det.abs() < MIN_DETERMINANT {
        return Err(Unmappable::Flat);
    }
    Ok(Matrix {
        sx: number(t.sx)?,
        ky: number(t.ky)?,
        kx: number(t.kx)?,
        sy: number(t.sy)?,
        tx: number(t.tx)?,
        ty: number(t.ty)?,
    })
}

/// A number the host takes: finite and within ±[`MAX_COORDINATE`].
fn number(v: f32) -> Result<f32, Unmappable> {
    if v.is_finite() && v.abs() <= MAX_COORDINATE {
        Ok(v)
    } else {
        Err(Unmappable::OutOfRange)
    }
}

fn number64(v: f64) -> Result<f32, Unmappable> {
    if v.is_finite() && v.abs() <= f64::from(MAX_COORDINATE) {
        Ok(v as f32)
    } else {
        Err(Unmappable::OutOfRange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(body: &str) -> usvg::Tree {
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">{body}</svg>"#
        );
        crate::parse::parse(svg.as_bytes()).unwrap()
    }

    fn paths(ops: &[Op]) -> Vec<(usize, Option<Fill>, Option<Stroke>)> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Path { path, fill, stroke } => Some((path.len(), fill.clone(), *stroke)),
                _ => None,
            })
            .collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn a_logo_maps_to_paths_with_its_fills() {
        let ops = map(&tree(
            r##"<defs>
                <linearGradient id="g"><stop offset="0" stop-color="#ff0000"/>
                    <stop offset="1" stop-color="#0000ff" stop-opacity="0.5"/></linearGradient>
            </defs>
            <rect x="10" y="10" width="80" height="80" fill="#00ff00"/>
            <circle cx="150" cy="50" r="40" fill="url(#g)" stroke="#000000" stroke-width="2"/>"##,
        ))
        .unwrap();
        assert_eq!(ops.len(), 2, "{ops:?}");
        let p = paths(&ops);
        // The rect: move, three lines, close.
        assert_eq!(p[0].0, 5);
        assert_eq!(p[0].1, Some(Fill::Solid(Color::rgb(0, 255, 0))));
        assert_eq!(p[0].2, None);
        // The circle: cubic arcs, its gradient across its bounding box in user space.
        assert!(p[1].0 >= 5);
        match &p[1].1 {
            Some(Fill::Linear {
                x0,
                y0,
                x1,
                y1,
                stops,
            }) => {
                assert!(close(*x0, 110.0) && close(*y0, 10.0), "{x0} {y0}");
                assert!(close(*x1, 190.0) && close(*y1, 10.0), "{x1} {y1}");
                assert_eq!(
                    stops,
                    &[
                        (0.0, Color::rgb(255, 0, 0)),
                        (1.0, Color::rgba(0, 0, 255, 128))
                    ]
                );
            }
            other => panic!("expected a linear gradient, got {other:?}"),
        }
        assert_eq!(p[1].2, Some(Stroke::new(Color::BLACK, 2.0)));
        let canvas = draw(&ops);
        assert_eq!((canvas.len(), canvas.dropped()), (2, 0));
    }

    #[test]
    fn groups_map_to_saves_with_transform_and_opacity() {
        let ops = map(&tree(
            r##"<g transform="translate(10 20)" opacity="0.5">
                <rect width="10" height="10" fill="#ffffff"/>
                <rect x="20" width="10" height="10" fill="#ffffff"/>
            </g>"##,
        ))
        .unwrap();
        assert_eq!(ops.len(), 6, "{ops:?}");
        assert_eq!(ops[0], Op::Save);
        assert_eq!(ops[1], Op::Transform(Matrix::translate(10.0, 20.0)));
        assert_eq!(ops[2], Op::Opacity(0.5));
        assert_eq!(ops[5], Op::Restore);
        // Overlapping shapes under one opacity do not map.
        let overlapping = tree(
            r##"<g opacity="0.5"><rect width="10" height="10" fill="#ffffff"/>
                <rect x="5" width="10" height="10" fill="#000000"/></g>"##,
        );
        assert_eq!(map(&overlapping), Err(Unmappable::GroupOpacity));
    }

    #[test]
    fn gradients_in_bounding_box_units_map() {
        // A radial gradient on a wide rect is an ellipse: drawn in its own coordinates.
        let ops = map(&tree(
            r##"<radialGradient id="r"><stop offset="0" stop-color="#ffffff"/>
                <stop offset="1" stop-color="#000000"/></radialGradient>
            <rect width="200" height="100" fill="url(#r)"/>"##,
        ))
        .unwrap();
        assert!(matches!(ops[0], Op::Save), "{ops:?}");
        match &ops[1] {
            Op::Transform(m) => assert!(close(m.sx, 200.0) && close(m.sy, 100.0), "{m:?}"),
            other => panic!("expected a transform, got {other:?}"),
        }
        match &ops[2] {
            Op::Path {
                fill: Some(Fill::Radial { cx, cy, radius, .. }),
                ..
            } => assert!(close(*cx, 0.5) && close(*cy, 0.5) && close(*radius, 0.5)),
            other => panic!("expected a radial fill, got {other:?}"),
        }
        // On a square, it folds into the centre and radius.
        let ops = map(&tree(
            r##"<radialGradient id="r"><stop offset="0" stop-color="#ffffff"/>
                <stop offset="1" stop-color="#000000"/></radialGradient>
            <rect width="100" height="100" fill="url(#r)"/>"##,
        ))
        .unwrap();
        match &ops[..] {
            [
                Op::Path {
                    fill: Some(Fill::Radial { cx, cy, radius, .. }),
                    ..
                },
            ] => assert!(close(*cx, 50.0) && close(*cy, 50.0) && close(*radius, 50.0)),
            other => panic!("expected one radial fill, got {other:?}"),
        }
    }

    #[test]
    fn other_strokes_are_outlined_and_filled() {
        let ops = map(&tree(
            r##"<path d="M10 10 L100 50" fill="none" stroke="#ff0000" stroke-width="8"
                stroke-linecap="round"/>"##,
        ))
        .unwrap();
        match &ops[..] {
            [
                Op::Path {
                    fill: Some(Fill::Solid(c)),
                    stroke: None,
                    ..
                },
            ] => assert_eq!(*c, Color::rgb(255, 0, 0)),
            other => panic!("expected a filled outline, got {other:?}"),
        }
    }

    #[test]
    fn what_does_not_map_says_why() {
        let cases = [
            (
                r##"<path d="M0 0 L10 0 L10 10 Z" fill-rule="evenodd"/>"##,
                Unmappable::EvenOdd,
            ),
            (
                r##"<path d="M0 0 L10 0" stroke="#000" stroke-dasharray="2 2"/>"##,
                Unmappable::Dashes,
            ),
            (
                r##"<clipPath id="c"><rect width="5" height="5"/></clipPath>
                <rect width="10" height="10" clip-path="url(#c)"/>"##,
                Unmappable::ClipPath,
            ),
            (
                r##"<mask id="m"><rect width="5" height="5" fill="#fff"/></mask>
                <rect width="10" height="10" mask="url(#m)"/>"##,
                Unmappable::Mask,
            ),
            (
                r##"<pattern id="p" width="4" height="4" patternUnits="userSpaceOnUse">
                <rect width="2" height="2"/></pattern><rect width="10" height="10" fill="url(#p)"/>"##,
                Unmappable::Pattern,
            ),
            (
                r##"<linearGradient id="g" spreadMethod="repeat" x2="0.1">
                <stop offset="0" stop-color="#fff"/><stop offset="1" stop-color="#000"/>
                </linearGradient><rect width="10" height="10" fill="url(#g)"/>"##,
                Unmappable::Spread,
            ),
            (
                r##"<radialGradient id="g" fx="0.2"><stop offset="0" stop-color="#fff"/>
                <stop offset="1" stop-color="#000"/></radialGradient>
                <rect width="10" height="10" fill="url(#g)"/>"##,
                Unmappable::Focal,
            ),
            (
                r##"<rect width="10" height="10" style="mix-blend-mode: multiply"/>"##,
                Unmappable::BlendMode,
            ),
            (
                r##"<rect width="10" height="10" transform="scale(1000000)"/>"##,
                Unmappable::OutOfRange,
            ),
        ];
        for (body, why) in cases {
            assert_eq!(map(&tree(body)), Err(why), "{body}");
        }
        let stops: String = (0..17)
            .map(|i| {
                format!(
                    r##"<stop offset="{}" stop-color="#fff"/>"##,
                    i as f32 / 16.0
                )
            })
            .collect();
        let many = format!(
            r##"<linearGradient id="g">{stops}</linearGradient>
            <rect width="10" height="10" fill="url(#g)"/>"##
        );
        assert_eq!(map(&tree(&many)), Err(Unmappable::TooManyStops(17)));
    }

    #[test]
    fn drawings_past_the_hosts_limits_do_not_map() {
        let rects = r##"<rect width="1" height="1"/>"##.repeat(MAX_DRAWING_COMMANDS + 1);
        assert!(matches!(map(&tree(&rects)), Err(Unmappable::TooLarge(_))));
        let deep = format!(
            "{}<rect width=\"1\" height=\"1\"/>{}",
            r#"<g transform="translate(1 0)">"#.repeat(MAX_DRAWING_SAVE_DEPTH + 1),
            "</g>".repeat(MAX_DRAWING_SAVE_DEPTH + 1)
        );
        assert!(matches!(map(&tree(&deep)), Err(Unmappable::TooLarge(_))));
        let exactly_deep = format!(
            "{}<rect width=\"1\" height=\"1\"/>{}",
            r#"<g transform="translate(1 0)">"#.repeat(MAX_DRAWING_SAVE_DEPTH),
            "</g>".repeat(MAX_DRAWING_SAVE_DEPTH)
        );
        let ops = map(&tree(&exactly_deep)).unwrap();
        assert_eq!(draw(&ops).dropped(), 0);
    }

    #[test]
    fn shapes_beyond_the_viewport_are_clipped_to_it() {
        let ops = map(&tree(r##"<rect x="150" width="100" height="10"/>"##)).unwrap();
        assert_eq!(ops[0], Op::ClipRect(0.0, 0.0, 200.0, 100.0));
    }
}
