//! The draw command set: what a scene layer or a WebAssembly template asks to be drawn, and
//! its rasterization with tiny-skia. Scene layers are turned into these commands, and the
//! plugin runtime maps the WIT `draw-command` variant one to one onto [`DrawCommand`], so
//! both paths share one validator and one rasterizer.
//!
//! Commands come from untrusted sources (API clients, third-party templates), so a list is
//! validated as a whole before anything is drawn: every number finite and within bounds,
//! counts and text lengths capped, save/restore balanced. Rasterizing a validated list
//! cannot panic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tiny_skia::{
    Color, FillRule, FilterQuality, GradientStop, LinearGradient, Mask, Paint, PathBuilder, Pixmap,
    PixmapMut, PixmapPaint, Point, RadialGradient, Rect, Shader, SpreadMode, Stroke, Transform,
};

use super::blend;
use super::text::{FontBook, MAX_MASK_SIZE};

// The numbers shared with the guest SDK: `MAX_COMMANDS`, `MAX_TEXT_SIZE`, … (see the file).
include!("../../../wit/limits.rs");

/// A colour as `[r, g, b, a]`, straight (not premultiplied), 0–255.
pub type Rgba = [u8; 4];

/// One stop of a gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientStopSpec {
    /// Position along the gradient, 0..=1.
    pub offset: f32,
    /// Colour at that position.
    pub color: Rgba,
}

/// How an area is filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Fill {
    /// One colour.
    Solid {
        /// The colour.
        color: Rgba,
    },
    /// A linear gradient from (x0, y0) to (x1, y1).
    LinearGradient {
        /// Start x.
        x0: f32,
        /// Start y.
        y0: f32,
        /// End x.
        x1: f32,
        /// End y.
        y1: f32,
        /// 2 to 16 stops.
        stops: Vec<GradientStopSpec>,
    },
    /// A radial gradient around (cx, cy).
    RadialGradient {
        /// Centre x.
        cx: f32,
        /// Centre y.
        cy: f32,
        /// Radius.
        radius: f32,
        /// 2 to 16 stops.
        stops: Vec<GradientStopSpec>,
    },
}

/// One segment of a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Segment {
    /// Starts a contour.
    MoveTo {
        /// x
        x: f32,
        /// y
        y: f32,
    },
    /// Straight line.
    LineTo {
        /// x
        x: f32,
        /// y
        y: f32,
    },
    /// Quadratic Bézier.
    QuadTo {
        /// Control x.
        x1: f32,
        /// Control y.
        y1: f32,
        /// End x.
        x: f32,
        /// End y.
        y: f32,
    },
    /// Cubic Bézier.
    CubicTo {
        /// First control x.
        x1: f32,
        /// First control y.
        y1: f32,
        /// Second control x.
        x2: f32,
        /// Second control y.
        y2: f32,
        /// End x.
        x: f32,
        /// End y.
        y: f32,
    },
    /// Closes the contour.
    Close,
}

/// One drawing instruction. Coordinates are canvas pixels before the current transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum DrawCommand {
    /// Pushes transform, opacity and clip.
    Save,
    /// Pops what the matching `save` pushed.
    Restore,
    /// Post-multiplies the transform by the matrix `[sx, ky, kx, sy, tx, ty]`.
    Transform {
        /// The matrix.
        matrix: [f32; 6],
    },
    /// Multiplies the opacity of what follows, 0..=1.
    Opacity {
        /// The factor.
        value: f32,
    },
    /// Intersects the clip with a rectangle (in current coordinates).
    ClipRect {
        /// Left.
        x: f32,
        /// Top.
        y: f32,
        /// Width.
        width: f32,
        /// Height.
        height: f32,
    },
    /// Fills a rectangle, with rounded corners when `radius` > 0.
    Rect {
        /// Left.
        x: f32,
        /// Top.
        y: f32,
        /// Width.
        width: f32,
        /// Height.
        height: f32,
        /// Corner radius.
        #[serde(default)]
        radius: f32,
        /// The fill.
        fill: Fill,
    },
    /// Fills an ellipse inscribed in a rectangle.
    Ellipse {
        /// Left.
        x: f32,
        /// Top.
        y: f32,
        /// Width.
        width: f32,
        /// Height.
        height: f32,
        /// The fill.
        fill: Fill,
    },
    /// Fills and/or strokes a path.
    Path {
        /// The segments.
        segments: Vec<Segment>,
        /// Fill, if any (non-zero winding).
        #[serde(default)]
        fill: Option<Fill>,
        /// Stroke colour and width, if any.
        #[serde(default)]
        stroke: Option<StrokeSpec>,
    },
    /// A run of text, shaped, baseline starting at (x, y).
    Text {
        /// Pen x.
        x: f32,
        /// Baseline y.
        y: f32,
        /// The text (at most [`MAX_TEXT_BYTES`] bytes).
        text: String,
        /// Size in pixels per em, above 0 and at most [`MAX_TEXT_SIZE`].
        size: f32,
        /// The fill.
        fill: Fill,
        /// Font family; absent or unknown: the default family.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        font: Option<String>,
    },
    /// Draws an image (by asset id) scaled into a rectangle.
    Image {
        /// Asset id.
        asset: String,
        /// Left.
        x: f32,
        /// Top.
        y: f32,
        /// Width.
        width: f32,
        /// Height.
        height: f32,
    },
}

/// A stroke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrokeSpec {
    /// Colour.
    pub color: Rgba,
    /// Width in pixels, 0..=[`MAX_STROKE_WIDTH`].
    pub width: f32,
}

/// Bounds on a command list from an untrusted source.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most commands in a list.
    pub max_commands: usize,
    /// Most path segments in the whole list.
    pub max_segments: usize,
    /// Most bytes of text in the whole list.
    pub max_text_bytes: usize,
    /// Most bytes of text in one run.
    pub max_run_bytes: usize,
    /// Deepest save nesting.
    pub max_depth: usize,
    /// Largest absolute coordinate or size.
    pub max_coordinate: f32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_commands: MAX_COMMANDS,
            max_segments: MAX_PATH_SEGMENTS,
            max_text_bytes: MAX_FRAME_TEXT_BYTES,
            max_run_bytes: MAX_TEXT_BYTES,
            max_depth: MAX_SAVE_DEPTH,
            max_coordinate: MAX_COORDINATE,
        }
    }
}

/// Why a command list was refused; names the command by index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DrawError {
    /// A list over a limit.
    #[error("{0}")]
    TooLarge(String),
    /// A bad value in command `index`.
    #[error("command {index}: {reason}")]
    Invalid {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(index: usize, reason: impl Into<String>) -> DrawError {
    DrawError::Invalid {
        index,
        reason: reason.into(),
    }
}

fn check_numbers(index: usize, limits: &Limits, values: &[f32]) -> Result<(), DrawError> {
    match values
        .iter()
        .find(|v| !v.is_finite() || v.abs() > limits.max_coordinate)
    {
        Some(v) => Err(invalid(
            index,
            format!(
                "{v} is not a finite number within ±{}",
                limits.max_coordinate
            ),
        )),
        None => Ok(()),
    }
}

fn check_fill(index: usize, limits: &Limits, fill: &Fill) -> Result<(), DrawError> {
    let stops = match fill {
        Fill::Solid { .. } => return Ok(()),
        Fill::LinearGradient {
            x0,
            y0,
            x1,
            y1,
            stops,
        } => {
            check_numbers(index, limits, &[*x0, *y0, *x1, *y1])?;
            stops
        }
        Fill::RadialGradient {
            cx,
            cy,
            radius,
            stops,
        } => {
            check_numbers(index, limits, &[*cx, *cy, *radius])?;
            if *radius <= 0.0 {
                return Err(invalid(index, "gradient radius must be positive"));
            }
            stops
        }
    };
    if !(MIN_GRADIENT_STOPS..=MAX_GRADIENT_STOPS).contains(&stops.len()) {
        return Err(invalid(
            index,
            format!("a gradient has {MIN_GRADIENT_STOPS} to {MAX_GRADIENT_STOPS} stops"),
        ));
    }
    if stops.iter().any(|s| !(0.0..=1.0).contains(&s.offset)) {
        return Err(invalid(index, "gradient stop offsets are within 0..=1"));
    }
    Ok(())
}

/// Checks a whole list against `limits` before anything is drawn.
pub fn validate(commands: &[DrawCommand], limits: &Limits) -> Result<(), DrawError> {
    if commands.len() > limits.max_commands {
        return Err(DrawError::TooLarge(format!(
            "{} commands; at most {}",
            commands.len(),
            limits.max_commands
        )));
    }
    let (mut depth, mut segments, mut text_bytes) = (0usize, 0usize, 0usize);
    for (i, c) in commands.iter().enumerate() {
        match c {
            DrawCommand::Save => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(invalid(
                        i,
                        format!("save nested deeper than {}", limits.max_depth),
                    ));
                }
            }
            DrawCommand::Restore => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| invalid(i, "restore without save"))?;
            }
            DrawCommand::Transform { matrix } => {
                check_numbers(i, limits, matrix)?;
                let [sx, ky, kx, sy, tx, ty] = *matrix;
                let det = f64::from(sx) * f64::from(sy) - f64::from(kx) * f64::from(ky);
                if det.abs() < 1e-9
                    || Transform::from_row(sx, ky, kx, sy, tx, ty)
                        .invert()
                        .is_none()
                {
                    return Err(invalid(i, "the transform is not invertible"));
                }
            }
            DrawCommand::Opacity { value } => {
                if !(0.0..=1.0).contains(value) {
                    return Err(invalid(i, "opacity is within 0..=1"));
                }
            }
            DrawCommand::ClipRect {
                x,
                y,
                width,
                height,
            }
            | DrawCommand::Ellipse {
                x,
                y,
                width,
                height,
                ..
            } => {
                check_numbers(i, limits, &[*x, *y, *width, *height])?;
                if let DrawCommand::Ellipse { fill, .. } = c {
                    check_fill(i, limits, fill)?;
                }
            }
            DrawCommand::Rect {
                x,
                y,
                width,
                height,
                radius,
                fill,
            } => {
                check_numbers(i, limits, &[*x, *y, *width, *height, *radius])?;
                if *radius < 0.0 {
                    return Err(invalid(i, "radius must not be negative"));
                }
                check_fill(i, limits, fill)?;
            }
            DrawCommand::Path {
                segments: segs,
                fill,
                stroke,
            } => {
                segments += segs.len();
                if segments > limits.max_segments {
                    return Err(DrawError::TooLarge(format!(
                        "more than {} path segments",
                        limits.max_segments
                    )));
                }
                for s in segs {
                    match s {
                        Segment::MoveTo { x, y } | Segment::LineTo { x, y } => {
                            check_numbers(i, limits, &[*x, *y])?
                        }
                        Segment::QuadTo { x1, y1, x, y } => {
                            check_numbers(i, limits, &[*x1, *y1, *x, *y])?
                        }
                        Segment::CubicTo {
                            x1,
                            y1,
                            x2,
                            y2,
                            x,
                            y,
                        } => check_numbers(i, limits, &[*x1, *y1, *x2, *y2, *x, *y])?,
                        Segment::Close => {}
                    }
                }
                if let Some(f) = fill {
                    check_fill(i, limits, f)?;
                }
                if let Some(s) = stroke
                    && !(s.width.is_finite() && (0.0..=MAX_STROKE_WIDTH).contains(&s.width))
                {
                    return Err(invalid(
                        i,
                        format!("stroke width is within 0..={MAX_STROKE_WIDTH}"),
                    ));
                }
            }
            DrawCommand::Text {
                x,
                y,
                text,
                size,
                fill,
                font,
            } => {
                check_numbers(i, limits, &[*x, *y, *size])?;
                if font.as_ref().is_some_and(|f| f.len() > MAX_FONT_NAME_BYTES) {
                    return Err(invalid(
                        i,
                        format!("font family names are at most {MAX_FONT_NAME_BYTES} bytes"),
                    ));
                }
                if !(*size > 0.0 && *size <= MAX_TEXT_SIZE) {
                    return Err(invalid(
                        i,
                        format!("text size is above 0 and at most {MAX_TEXT_SIZE}"),
                    ));
                }
                if text.len() > limits.max_run_bytes {
                    return Err(invalid(
                        i,
                        format!(
                            "{} bytes of text in one run; at most {}",
                            text.len(),
                            limits.max_run_bytes
                        ),
                    ));
                }
                text_bytes += text.len();
                if text_bytes > limits.max_text_bytes {
                    return Err(DrawError::TooLarge(format!(
                        "more than {} bytes of text",
                        limits.max_text_bytes
                    )));
                }
                check_fill(i, limits, fill)?;
            }
            DrawCommand::Image {
                asset,
                x,
                y,
                width,
                height,
            } => {
                check_numbers(i, limits, &[*x, *y, *width, *height])?;
                if asset.is_empty() || asset.len() > MAX_ASSET_ID_BYTES {
                    return Err(invalid(
                        i,
                        format!("asset ids are 1 to {MAX_ASSET_ID_BYTES} bytes"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Where `image` commands find their pixels.
pub trait ImageSource {
    /// The premultiplied pixels of an asset, if it is known.
    fn image(&self, asset: &str) -> Option<&Pixmap>;
    /// The asset already resized to exactly `width` × `height` pixels, if such a copy was
    /// prepared (off the render thread); drawn 1:1 instead of being resampled per frame.
    fn sized(&self, _asset: &str, _width: u32, _height: u32) -> Option<&Pixmap> {
        None
    }
    /// The asset as a vector drawing, if it is one (drawn sharp at any size).
    fn drawing(&self, _asset: &str) -> Option<&crate::resources::Drawing> {
        None
    }
}

/// No images (scenes and templates without image assets).
pub struct NoImages;

impl ImageSource for NoImages {
    fn image(&self, _: &str) -> Option<&Pixmap> {
        None
    }
}

fn color(c: Rgba, opacity: f32) -> Color {
    let mut color = Color::from_rgba8(c[0], c[1], c[2], c[3]);
    color.apply_opacity(opacity);
    color
}

fn paint(fill: &Fill, opacity: f32) -> Option<Paint<'static>> {
    let stops = |stops: &[GradientStopSpec]| {
        stops
            .iter()
            .map(|s| GradientStop::new(s.offset, color(s.color, opacity)))
            .collect::<Vec<_>>()
    };
    let shader = match fill {
        Fill::Solid { color: c } => Shader::SolidColor(color(*c, opacity)),
        Fill::LinearGradient {
            x0,
            y0,
            x1,
            y1,
            stops: s,
        } => LinearGradient::new(
            Point::from_xy(*x0, *y0),
            Point::from_xy(*x1, *y1),
            stops(s),
            SpreadMode::Pad,
            Transform::identity(),
        )?,
        Fill::RadialGradient {
            cx,
            cy,
            radius,
            stops: s,
        } => RadialGradient::new(
            Point::from_xy(*cx, *cy),
            0.0,
            Point::from_xy(*cx, *cy),
            *radius,
            stops(s),
            SpreadMode::Pad,
            Transform::identity(),
        )?,
    };
    Some(Paint {
        shader,
        anti_alias: true,
        ..Paint::default()
    })
}

#[derive(Clone)]
struct State {
    transform: Transform,
    opacity: f32,
    clip: Option<Mask>,
}

/// When rasterizing must stop between two commands: out of time (see [`Deadline`]) or when
/// a flag is raised (the pipeline stops).
#[derive(Debug, Clone, Copy, Default)]
pub struct Interrupt<'a> {
    /// Stop once this has run out.
    pub deadline: Option<Deadline>,
    /// Stop once this is true.
    pub stop: Option<&'a AtomicBool>,
}

impl Interrupt<'_> {
    /// Never interrupts.
    pub const NONE: Interrupt<'static> = Interrupt {
        deadline: None,
        stop: None,
    };

    fn due(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
            || self.deadline.is_some_and(|d| d.passed())
    }
}

/// The wall-time bound of a [`Deadline::patient`] allowance.
pub const PATIENT_WALL: Duration = Duration::from_secs(2);

/// A time allowance for rasterizing one command list, counted in the rasterizing thread's
/// own CPU time: a thread the machine preempted (other processes, a busy host) has not spent
/// its allowance and is not cut short for it. Wall time still bounds it: at twice the
/// allowance the list stops whatever the CPU time, so a starved thread holds its frame at
/// most that long.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    allowance: Duration,
    /// Wall time after which the allowance has run out whatever the CPU time.
    wall: Duration,
    started: Instant,
    started_cpu: Option<Duration>,
}

impl Deadline {
    /// An allowance that starts now.
    pub fn start(allowance: Duration) -> Self {
        Self {
            allowance,
            wall: 2 * allowance,
            started: Instant::now(),
            started_cpu: thread_cpu_time(),
        }
    }

    /// An allowance that starts now, for work that keeps no frame waiting (checking an
    /// upload): a starved thread may take up to [`PATIENT_WALL`] of wall time.
    pub fn patient(allowance: Duration) -> Self {
        Self {
            wall: PATIENT_WALL.max(2 * allowance),
            ..Self::start(allowance)
        }
    }

    /// The allowance.
    pub fn allowance(&self) -> Duration {
        self.allowance
    }

    /// CPU time this thread spent since the start (wall time where the platform has no
    /// thread CPU clock).
    pub fn cpu_used(&self) -> Duration {
        match (self.started_cpu, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => self.started.elapsed(),
        }
    }

    /// Whether the allowance has run out. The thread's CPU clock (a system call) is read
    /// only once the wall clock has passed the allowance.
    pub fn passed(&self) -> bool {
        let wall = self.started.elapsed();
        wall >= self.allowance && (wall >= self.wall || self.cpu_used() >= self.allowance)
    }
}

/// The calling thread's CPU time, if the platform has the clock.
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| {
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

/// Rasterizing stopped before the end of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rasterizing was interrupted before command {index}")]
pub struct Interrupted {
    /// The first command not drawn.
    pub index: usize,
}

/// Rasterizes a validated command list onto `canvas`. Degenerate shapes (empty
/// rectangles, zero-length gradients) draw nothing; unknown image assets are skipped.
pub fn rasterize(
    commands: &[DrawCommand],
    canvas: &mut PixmapMut<'_>,
    fonts: &mut FontBook,
    images: &dyn ImageSource,
) {
    let _ = rasterize_within(
        commands,
        canvas,
        fonts,
        images,
        (Transform::identity(), 1.0, Interrupt::NONE),
    );
}

/// [`rasterize`] with every command under the `base` transform and `opacity` (which the
/// commands cannot undo), checking `interrupt` before each command; what was drawn before it fired stays on
/// `canvas`.
pub fn rasterize_within(
    commands: &[DrawCommand],
    canvas: &mut PixmapMut<'_>,
    fonts: &mut FontBook,
    images: &dyn ImageSource,
    (base, opacity, interrupt): (Transform, f32, Interrupt<'_>),
) -> Result<(), Interrupted> {
    let mut stack: Vec<State> = Vec::new();
    let mut s = State {
        transform: base,
        opacity,
        clip: None,
    };
    let watch = interrupt.deadline.is_some() || interrupt.stop.is_some();
    for (index, c) in commands.iter().enumerate() {
        if watch && interrupt.due() {
            return Err(Interrupted { index });
        }
        match c {
            DrawCommand::Save => stack.push(s.clone()),
            DrawCommand::Restore => {
                if let Some(prev) = stack.pop() {
                    s = prev;
                }
            }
            DrawCommand::Transform { matrix: m } => {
                s.transform = s
                    .transform
                    .pre_concat(Transform::from_row(m[0], m[1], m[2], m[3], m[4], m[5]));
            }
            DrawCommand::Opacity { value } => s.opacity *= value,
            DrawCommand::ClipRect {
                x,
                y,
                width,
                height,
            } => {
                let Some(rect) = Rect::from_xywh(*x, *y, *width, *height) else {
                    // An empty clip hides everything until restore.
                    s.clip = Mask::new(canvas.width(), canvas.height());
                    continue;
                };
                let path = PathBuilder::from_rect(rect);
                match &mut s.clip {
                    Some(mask) => mask.intersect_path(&path, FillRule::Winding, true, s.transform),
                    None => {
                        let Some(mut mask) = Mask::new(canvas.width(), canvas.height()) else {
                            continue;
                        };
                        mask.fill_path(&path, FillRule::Winding, true, s.transform);
                        s.clip = Some(mask);
                    }
                }
            }
            DrawCommand::Rect {
                x,
                y,
                width,
                height,
                radius,
                fill,
            } => {
                let Some(rect) = Rect::from_xywh(*x, *y, *width, *height) else {
                    continue;
                };
                let path = if *radius > 0.0 {
                    path_of(&rounded_rect_segments(*x, *y, *width, *height, *radius))
                } else {
                    Some(PathBuilder::from_rect(rect))
                };
                if let Some(path) = path {
                    fill_shape(canvas, &s, &path, fill);
                }
            }
            DrawCommand::Ellipse {
                x,
                y,
                width,
                height,
                fill,
            } => {
                let Some(rect) = Rect::from_xywh(*x, *y, *width, *height) else {
                    continue;
                };
                let mut pb = PathBuilder::new();
                pb.push_oval(rect);
                if let Some(path) = pb.finish() {
                    fill_shape(canvas, &s, &path, fill);
                }
            }
            DrawCommand::Path {
                segments,
                fill,
                stroke,
            } => {
                let Some(path) = path_of(segments) else {
                    continue;
                };
                if let Some(f) = fill {
                    fill_shape(canvas, &s, &path, f);
                }
                if let Some(st) = stroke
                    && let Some(p) = paint(&Fill::Solid { color: st.color }, s.opacity)
                {
                    let stroke = Stroke {
                        width: st.width,
                        ..Stroke::default()
                    };
                    canvas.stroke_path(&path, &p, &stroke, s.transform, s.clip.as_ref());
                }
            }
            DrawCommand::Text {
                x,
                y,
                text,
                size,
                fill,
                font,
            } => {
                let t = s.transform;
                if let (Fill::Solid { color: c }, None) = (fill, &s.clip)
                    && t.kx == 0.0
                    && t.ky == 0.0
                    && t.sx > 0.0
                    && (t.sx - t.sy).abs() < 1e-6
                    && size * t.sx <= MAX_MASK_SIZE
                {
                    // Upright, unclipped, one colour, not huge: cached glyph masks, no path
                    // filling. Larger glyphs are filled as outlines below (clipped to the
                    // canvas by the rasterizer), so no mask is ever larger than
                    // MAX_MASK_SIZE pixels per em.
                    let (dx, dy) = (x * t.sx + t.tx, y * t.sy + t.ty);
                    let alpha = (f32::from(c[3]) * s.opacity.clamp(0.0, 1.0)).round() as u8;
                    let color = [c[0], c[1], c[2], alpha];
                    fonts
                        .get(font.as_deref())
                        .draw(canvas, text, dx, dy, size * t.sx, color);
                } else if let Some(p) = paint(fill, s.opacity) {
                    fonts.get(font.as_deref()).fill_text(
                        canvas,
                        text,
                        *x,
                        *y,
                        *size,
                        &p,
                        s.transform,
                        s.clip.as_ref(),
                    );
                }
            }
            DrawCommand::Image {
                asset,
                x,
                y,
                width,
                height,
            } => {
                draw_image(canvas, &s, images, asset, *x, *y, *width, *height);
            }
        }
    }
    Ok(())
}

/// Fills a path. Solid colours go through tiny-skia; gradients are shaded here, through the
/// path's coverage mask and a 256-entry colour table (several times faster than tiny-skia's
/// gradient pipeline, which dominated the cost of drawing gradient shapes).
fn fill_shape(canvas: &mut PixmapMut<'_>, s: &State, path: &tiny_skia::Path, fill: &Fill) {
    let (stops, position): (&[GradientStopSpec], Gradient) = match fill {
        Fill::Solid { .. } => {
            if let Some(p) = paint(fill, s.opacity) {
                canvas.fill_path(path, &p, FillRule::Winding, s.transform, s.clip.as_ref());
            }
            return;
        }
        Fill::LinearGradient {
            x0,
            y0,
            x1,
            y1,
            stops,
        } => (stops, Gradient::Linear(*x0, *y0, *x1 - *x0, *y1 - *y0)),
        Fill::RadialGradient {
            cx,
            cy,
            radius,
            stops,
        } => (stops, Gradient::Radial(*cx, *cy, *radius)),
    };
    let Some(inverse) = s.transform.invert() else {
        return;
    };
    let (cw, ch) = (canvas.width(), canvas.height());
    let Some(bounds) = path.bounds().transform(s.transform) else {
        return;
    };
    let x0 = bounds.left().floor().clamp(0.0, cw as f32) as u32;
    let y0 = bounds.top().floor().clamp(0.0, ch as f32) as u32;
    let x1 = bounds.right().ceil().clamp(0.0, cw as f32) as u32;
    let y1 = bounds.bottom().ceil().clamp(0.0, ch as f32) as u32;
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    // The coverage mask spans the shape's bounds only, not the canvas.
    let (mw, mh) = (x1 - x0, y1 - y0);
    let Some(mut mask) = Mask::new(mw, mh) else {
        return;
    };
    let to_mask = s.transform.post_translate(-(x0 as f32), -(y0 as f32));
    mask.fill_path(path, FillRule::Winding, true, to_mask);
    if let Some(clip) = &s.clip {
        let (mw, cw) = (mw as usize, cw as usize);
        for (y, row) in mask.data_mut().chunks_exact_mut(mw).enumerate() {
            let start = (y0 as usize + y) * cw + x0 as usize;
            for (m, c) in row.iter_mut().zip(&clip.data()[start..start + mw]) {
                *m = ((u16::from(*m) * u16::from(*c) + 127) / 255) as u8;
            }
        }
    }
    let mut sorted: Vec<(f32, Rgba)> = stops.iter().map(|g| (g.offset, g.color)).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let lut = blend::gradient_lut(&sorted, s.opacity);
    // Pixel centre (x, y) to gradient space: u = i.sx·x + i.kx·y + i.tx,
    // v = i.ky·x + i.sy·y + i.ty, with i the inverse of the current transform.
    let i = inverse;
    let ramp = match position {
        Gradient::Linear(ax, ay, dx, dy) => {
            let len2 = dx * dx + dy * dy;
            if len2 <= f32::EPSILON {
                return;
            }
            // t = ((u - ax)·dx + (v - ay)·dy) / len², affine in (x, y).
            blend::Ramp::Linear([
                (i.sx * dx + i.ky * dy) / len2,
                (i.kx * dx + i.sy * dy) / len2,
                ((i.tx - ax) * dx + (i.ty - ay) * dy) / len2,
            ])
        }
        Gradient::Radial(cx, cy, r) => {
            if r <= f32::EPSILON {
                return;
            }
            blend::Ramp::Radial([i.sx, i.kx, i.tx - cx], [i.ky, i.sy, i.ty - cy], r)
        }
    };
    blend::shade(canvas, &mask, (x0, y0, x1, y1), &lut, ramp);
}

/// Where a gradient runs, in user space: linear from a point along a vector, or radial
/// about a centre with a radius.
#[derive(Clone, Copy)]
enum Gradient {
    Linear(f32, f32, f32, f32),
    Radial(f32, f32, f32),
}

/// Draws an image into a rectangle: 1:1 from a copy prepared at the drawn size when the
/// transform only scales and translates, else resampled (bilinear) from the original.
#[allow(clippy::too_many_arguments)]
fn draw_image(
    canvas: &mut PixmapMut<'_>,
    s: &State,
    images: &dyn ImageSource,
    asset: &str,
    x: f32,
    y: f32,
    width: f32,
    height: f32,
) {
    let t = s.transform;
    let mut paint = PixmapPaint {
        opacity: s.opacity,
        quality: FilterQuality::Bilinear,
        ..PixmapPaint::default()
    };
    if t.kx == 0.0 && t.ky == 0.0 && t.sx > 0.0 && t.sy > 0.0 {
        let (dw, dh) = ((width * t.sx).round(), (height * t.sy).round());
        let (w, h) = (dw as u32, dh as u32);
        let prepared = images.sized(asset, w, h).or_else(|| {
            images
                .image(asset)
                .filter(|p| (p.width(), p.height()) == (w, h))
        });
        if dw >= 1.0
            && dh >= 1.0
            && let Some(sized) = prepared
        {
            let (dx, dy) = (x * t.sx + t.tx, y * t.sy + t.ty);
            let (rx, ry) = (dx.round(), dy.round());
            if (dx - rx).abs() < 1e-3 && (dy - ry).abs() < 1e-3 {
                if s.clip.is_none() {
                    // Pixel-aligned 1:1: a straight blend (or copy), no resampling pipeline.
                    let opacity = (s.opacity.clamp(0.0, 1.0) * 255.0).round() as u8;
                    let whole = (0, 0, sized.width(), sized.height());
                    blend::draw_sprite(canvas, sized, whole, rx as i32, ry as i32, opacity, false);
                    return;
                }
                paint.quality = FilterQuality::Nearest;
            }
            let at = Transform::from_translate(dx, dy);
            canvas.draw_pixmap(0, 0, sized.as_ref(), &paint, at, s.clip.as_ref());
            return;
        }
    }
    let Some(image) = images.image(asset) else {
        return;
    };
    if image.width() == 0 || image.height() == 0 || width <= 0.0 || height <= 0.0 {
        return;
    }
    let t = t.pre_concat(Transform::from_row(
        width / image.width() as f32,
        0.0,
        0.0,
        height / image.height() as f32,
        x,
        y,
    ));
    canvas.draw_pixmap(0, 0, image.as_ref(), &paint, t, s.clip.as_ref());
}

/// Outline of a rectangle with corners of `radius` (clamped to half the shorter side; 0:
/// sharp), clockwise, as path segments (quarter circles approximated by cubics).
pub fn rounded_rect_segments(x: f32, y: f32, width: f32, height: f32, radius: f32) -> Vec<Segment> {
    let r = radius.min(width / 2.0).min(height / 2.0).max(0.0);
    let k = r * 0.552_284_8;
    let (l, t, rt, b) = (x, y, x + width, y + height);
    vec![
        Segment::MoveTo { x: l + r, y: t },
        Segment::LineTo { x: rt - r, y: t },
        Segment::CubicTo {
            x1: rt - r + k,
            y1: t,
            x2: rt,
            y2: t + r - k,
            x: rt,
            y: t + r,
        },
        Segment::LineTo { x: rt, y: b - r },
        Segment::CubicTo {
            x1: rt,
            y1: b - r + k,
            x2: rt - r + k,
            y2: b,
            x: rt - r,
            y: b,
        },
        Segment::LineTo { x: l + r, y: b },
        Segment::CubicTo {
            x1: l + r - k,
            y1: b,
            x2: l,
            y2: b - r + k,
            x: l,
            y: b - r,
        },
        Segment::LineTo { x: l, y: t + r },
        Segment::CubicTo {
            x1: l,
            y1: t + r - k,
            x2: l + r - k,
            y2: t,
            x: l + r,
            y: t,
        },
        Segment::Close,
    ]
}

/// The tiny-skia path of a list of segments (`None` when empty or degenerate).
fn path_of(segments: &[Segment]) -> Option<tiny_skia::Path> {
    let mut pb = PathBuilder::new();
    for seg in segments {
        match *seg {
            Segment::MoveTo { x, y } => pb.move_to(x, y),
            Segment::LineTo { x, y } => pb.line_to(x, y),
            Segment::QuadTo { x1, y1, x, y } => pb.quad_to(x1, y1, x, y),
            Segment::CubicTo {
                x1,
                y1,
                x2,
                y2,
                x,
                y,
            } => pb.cubic_to(x1, y1, x2, y2, x, y),
            Segment::Close => pb.close(),
        }
    }
    pb.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 100;
    const H: u32 = 60;

    fn draw(commands: &[DrawCommand]) -> Vec<u8> {
        validate(commands, &Limits::default()).expect("valid");
        let mut buf = vec![0u8; (W * H * 4) as usize];
        let mut pm = PixmapMut::from_bytes(&mut buf, W, H).unwrap();
        pm.fill(Color::BLACK);
        rasterize(commands, &mut pm, &mut FontBook::default(), &NoImages);
        buf
    }

    fn px(buf: &[u8], x: u32, y: u32) -> [u8; 4] {
        let i = ((y * W + x) * 4) as usize;
        [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]
    }

    fn solid(color: Rgba) -> Fill {
        Fill::Solid { color }
    }

    #[test]
    fn commands_parse_from_json() {
        let json = r#"[{"op":"save"},{"op":"opacity","value":0.5},
            {"op":"rect","x":1,"y":2,"width":3,"height":4,"fill":{"type":"solid","color":[255,0,0,255]}},
            {"op":"path","segments":[{"op":"moveTo","x":0,"y":0},{"op":"lineTo","x":5,"y":5},{"op":"close"}],
             "stroke":{"color":[0,0,0,255],"width":2}},{"op":"restore"}]"#;
        let commands: Vec<DrawCommand> = serde_json::from_str(json).unwrap();
        assert_eq!(commands.len(), 5);
        validate(&commands, &Limits::default()).unwrap();
    }

    #[test]
    fn rect_transform_clip_and_opacity() {
        let red = solid([255, 0, 0, 255]);
        let buf = draw(&[
            DrawCommand::Rect {
                x: 10.0,
                y: 10.0,
                width: 20.0,
                height: 20.0,
                radius: 0.0,
                fill: red.clone(),
            },
            DrawCommand::Save,
            DrawCommand::Transform {
                matrix: [1.0, 0.0, 0.0, 1.0, 50.0, 0.0],
            },
            DrawCommand::ClipRect {
                x: 10.0,
                y: 10.0,
                width: 10.0,
                height: 40.0,
            },
            DrawCommand::Opacity { value: 0.5 },
            DrawCommand::Rect {
                x: 10.0,
                y: 10.0,
                width: 20.0,
                height: 20.0,
                radius: 0.0,
                fill: red,
            },
            DrawCommand::Restore,
        ]);
        assert_eq!(px(&buf, 20, 20), [255, 0, 0, 255]);
        assert_eq!(px(&buf, 5, 5), [0, 0, 0, 255]);
        let half = px(&buf, 65, 20);
        assert!(
            (126..=129).contains(&half[0]) && half[1] == 0,
            "half-opaque red over black: {half:?}"
        );
        assert_eq!(px(&buf, 75, 20), [0, 0, 0, 255], "clipped away");
    }

    #[test]
    fn gradients_and_text_draw_something() {
        let gradient = Fill::LinearGradient {
            x0: 0.0,
            y0: 0.0,
            x1: 100.0,
            y1: 0.0,
            stops: vec![
                GradientStopSpec {
                    offset: 0.0,
                    color: [0, 0, 255, 255],
                },
                GradientStopSpec {
                    offset: 1.0,
                    color: [0, 255, 0, 255],
                },
            ],
        };
        let buf = draw(&[
            DrawCommand::Rect {
                x: 0.0,
                y: 0.0,
                width: 100.0,
                height: 30.0,
                radius: 8.0,
                fill: gradient,
            },
            DrawCommand::Text {
                x: 2.0,
                y: 55.0,
                text: "Hi".into(),
                size: 24.0,
                fill: solid([255, 255, 255, 255]),
                font: None,
            },
        ]);
        let (left, right) = (px(&buf, 10, 15), px(&buf, 90, 15));
        assert!(
            left[2] > left[1] && right[1] > right[2],
            "blue to green: {left:?} {right:?}"
        );
        assert_eq!(px(&buf, 0, 0), [0, 0, 0, 255], "rounded corner left empty");
        assert!(
            (0..30).any(|x| (35..60).any(|y| px(&buf, x, y)[0] > 200)),
            "text drawn"
        );
    }

    #[test]
    fn hostile_lists_are_refused() {
        let limits = Limits::default();
        let nan = DrawCommand::Rect {
            x: f32::NAN,
            y: 0.0,
            width: 1.0,
            height: 1.0,
            radius: 0.0,
            fill: solid([0; 4]),
        };
        assert!(matches!(
            validate(&[nan], &limits),
            Err(DrawError::Invalid { index: 0, .. })
        ));
        assert!(validate(&[DrawCommand::Restore], &limits).is_err());
        let many = vec![DrawCommand::Save; 65];
        assert!(validate(&many, &limits).is_err());
        let singular = DrawCommand::Transform { matrix: [0.0; 6] };
        assert!(validate(&[singular], &limits).is_err());
        let huge = DrawCommand::Text {
            x: 0.0,
            y: 0.0,
            text: "x".repeat(70_000),
            size: 10.0,
            fill: solid([0; 4]),
            font: None,
        };
        assert!(matches!(
            validate(std::slice::from_ref(&huge), &limits),
            Err(DrawError::Invalid { index: 0, .. })
        ));
        let DrawCommand::Text { text, .. } = &huge else {
            unreachable!()
        };
        let run = DrawCommand::Text {
            x: 0.0,
            y: 0.0,
            text: text[..MAX_TEXT_BYTES].to_string(),
            size: 10.0,
            fill: solid([0; 4]),
            font: None,
        };
        assert!(matches!(
            validate(&vec![run; 17], &limits),
            Err(DrawError::TooLarge(_))
        ));
        let flood = vec![DrawCommand::Opacity { value: 1.0 }; 10_001];
        assert!(matches!(
            validate(&flood, &limits),
            Err(DrawError::TooLarge(_))
        ));
    }
}
