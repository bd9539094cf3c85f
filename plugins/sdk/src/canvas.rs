//! The drawing surface a template paints each frame on.
//!
//! [`Canvas`] records the host's draw commands (the composition engine's own command set)
//! and keeps every frame valid by construction, so a slip in a template costs detail
//! rather than the whole frame (which the host would refuse). The numbers are the host's
//! own, from `wit/limits.rs` (see [`limits`](crate::limits)):
//!
//! - numbers that are not finite become 0 and all numbers are clamped to ±[`MAX_COORDINATE`];
//! - widths, heights and radii below 0 become 0, opacity is clamped to 0.0–1.0, stroke
//!   widths to 0–[`MAX_STROKE_WIDTH`];
//! - text sizes above [`MAX_TEXT_SIZE`] become [`MAX_TEXT_SIZE`]; a run of text whose size
//!   is 0, negative or not finite is not drawn;
//! - a gradient keeps its first [`MAX_GRADIENT_STOPS`] stops, with offsets clamped to
//!   0.0–1.0; with fewer than [`MIN_GRADIENT_STOPS`] it is drawn solid;
//! - a font family name longer than [`MAX_FONT_NAME_BYTES`] is dropped (the text is drawn in
//!   the default font, as for a family the host does not know); an image whose asset id is
//!   empty or longer than [`MAX_ASSET_ID_BYTES`] is not drawn;
//! - a transform that is not invertible (it flattens the plane onto a line or a point:
//!   |determinant| < 1e-9, what the host refuses) is not sent, and what follows it until
//!   the matching [`restore`](Canvas::restore) is not drawn, as it would not be visible;
//! - `save` nests at most [`MAX_SAVE_DEPTH`] deep and unmatched `restore`s are ignored;
//!   saves still open at the end of the frame are closed;
//! - past [`MAX_COMMANDS`] commands, [`MAX_PATH_SEGMENTS`] path segments or
//!   [`MAX_FRAME_TEXT_BYTES`] bytes of text in a frame, further drawing is dropped;
//! - a run of text longer than [`MAX_TEXT_BYTES`] bytes is cut at a character boundary.
//!
//! A canvas for an asset loader's drawing ([`Canvas::for_drawing`]) keeps a little less
//! room for commands and saves, for what the host wraps a drawing in.
//!
//! Whatever is dropped is counted ([`Canvas::dropped`]) and the SDK logs one warning per
//! instance.

use crate::bindings::stream_manager::plugin::types as wit;
use crate::color::{Fill, Stroke};
use crate::limits::coord;

pub use crate::limits::{
    MAX_ASSET_ID_BYTES, MAX_COMMANDS, MAX_COORDINATE, MAX_FONT_NAME_BYTES, MAX_FRAME_TEXT_BYTES,
    MAX_GRADIENT_STOPS, MAX_PATH_SEGMENTS, MAX_SAVE_DEPTH, MAX_STROKE_WIDTH, MAX_TEXT_BYTES,
    MAX_TEXT_SIZE, MIN_GRADIENT_STOPS,
};

/// Smallest magnitude of the determinant of a transform the host accepts: below it the
/// transform is taken as not invertible. (With entries within ±[`MAX_COORDINATE`], a
/// determinant this large also keeps every entry of the inverse finite, the host's other
/// test.)
const MIN_DETERMINANT: f64 = 1e-9;

fn extent(v: f32) -> f32 {
    coord(v).max(0.0)
}

fn rect(x: f32, y: f32, width: f32, height: f32) -> wit::Rect {
    wit::Rect {
        x: coord(x),
        y: coord(y),
        width: extent(width),
        height: extent(height),
    }
}

/// A 2D affine transform, mapping (x, y) to (sx·x + kx·y + tx, ky·x + sy·y + ty).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Matrix {
    /// Horizontal scale.
    pub sx: f32,
    /// Vertical skew.
    pub ky: f32,
    /// Horizontal skew.
    pub kx: f32,
    /// Vertical scale.
    pub sy: f32,
    /// Horizontal translation.
    pub tx: f32,
    /// Vertical translation.
    pub ty: f32,
}

impl Default for Matrix {
    fn default() -> Matrix {
        Matrix::IDENTITY
    }
}

impl Matrix {
    /// The transform that changes nothing.
    pub const IDENTITY: Matrix = Matrix {
        sx: 1.0,
        ky: 0.0,
        kx: 0.0,
        sy: 1.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// A move by (dx, dy).
    pub fn translate(dx: f32, dy: f32) -> Matrix {
        Matrix {
            tx: dx,
            ty: dy,
            ..Matrix::IDENTITY
        }
    }

    /// A scale by (sx, sy) about the origin.
    pub fn scale(sx: f32, sy: f32) -> Matrix {
        Matrix {
            sx,
            sy,
            ..Matrix::IDENTITY
        }
    }

    /// A rotation about the origin by `degrees`, clockwise on screen (y points down).
    pub fn rotate(degrees: f32) -> Matrix {
        let (sin, cos) = degrees.to_radians().sin_cos();
        Matrix {
            sx: cos,
            ky: sin,
            kx: -sin,
            sy: cos,
            tx: 0.0,
            ty: 0.0,
        }
    }

    /// `self` followed by `next`: the matrix that maps a point as `self` would and then as
    /// `next` would.
    pub fn then(self, next: Matrix) -> Matrix {
        Matrix {
            sx: next.sx * self.sx + next.kx * self.ky,
            ky: next.ky * self.sx + next.sy * self.ky,
            kx: next.sx * self.kx + next.kx * self.sy,
            sy: next.ky * self.kx + next.sy * self.sy,
            tx: next.sx * self.tx + next.kx * self.ty + next.tx,
            ty: next.ky * self.tx + next.sy * self.ty + next.ty,
        }
    }

    /// Where the point (x, y) goes.
    pub fn apply(self, x: f32, y: f32) -> (f32, f32) {
        (
            self.sx * x + self.kx * y + self.tx,
            self.ky * x + self.sy * y + self.ty,
        )
    }

    fn to_wit(self) -> wit::Matrix {
        wit::Matrix {
            sx: coord(self.sx),
            ky: coord(self.ky),
            kx: coord(self.kx),
            sy: coord(self.sy),
            tx: coord(self.tx),
            ty: coord(self.ty),
        }
    }
}

/// A path: contours of straight lines and Bézier curves, built step by step and drawn
/// with [`Canvas::fill_path`], [`Canvas::stroke_path`] or [`Canvas::path`].
///
/// ```
/// use stream_manager_sdk::Path;
/// let mut triangle = Path::new();
/// triangle.move_to(0.0, 10.0).line_to(10.0, 10.0).line_to(5.0, 0.0).close();
/// assert_eq!(triangle.len(), 4);
/// ```
///
/// A path may be kept between frames and drawn again; it holds at most 100 000 segments
/// (further segments are ignored).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Path {
    segments: Vec<wit::Segment>,
}

impl Path {
    /// An empty path.
    pub fn new() -> Path {
        Path::default()
    }

    fn push(&mut self, segment: wit::Segment) -> &mut Path {
        if self.segments.len() < MAX_PATH_SEGMENTS {
            self.segments.push(segment);
        }
        self
    }

    /// Starts a new contour at (x, y).
    pub fn move_to(&mut self, x: f32, y: f32) -> &mut Path {
        self.push(wit::Segment::MoveTo(wit::Point {
            x: coord(x),
            y: coord(y),
        }))
    }

    /// A straight line from the current point to (x, y).
    pub fn line_to(&mut self, x: f32, y: f32) -> &mut Path {
        self.push(wit::Segment::LineTo(wit::Point {
            x: coord(x),
            y: coord(y),
        }))
    }

    /// A quadratic Bézier from the current point to (x, y) with control point (x1, y1).
    pub fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) -> &mut Path {
        self.push(wit::Segment::QuadTo(wit::QuadSegment {
            x1: coord(x1),
            y1: coord(y1),
            x: coord(x),
            y: coord(y),
        }))
    }

    /// A cubic Bézier from the current point to (x, y) with control points (x1, y1) and
    /// (x2, y2).
    pub fn cubic_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) -> &mut Path {
        self.push(wit::Segment::CubicTo(wit::CubicSegment {
            x1: coord(x1),
            y1: coord(y1),
            x2: coord(x2),
            y2: coord(y2),
            x: coord(x),
            y: coord(y),
        }))
    }

    /// Closes the current contour with a line back to its start.
    pub fn close(&mut self) -> &mut Path {
        self.push(wit::Segment::Close)
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether the path has no segments.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Removes every segment, keeping the allocation.
    pub fn clear(&mut self) {
        self.segments.clear();
    }
}

/// The picture of one frame, drawn with a 2D-canvas-like API in layer pixels: (0, 0) is
/// the top-left corner of the layer and (`frame.width`, `frame.height`) its bottom-right.
///
/// The SDK hands the template an empty canvas for each [`render`](crate::Template::render)
/// and sends what was drawn when the template answers [`Render::Drawn`](crate::Render).
/// Transform, opacity and clip apply to what follows until the matching
/// [`restore`](Canvas::restore).
///
/// See the [module docs](self) for how limits are kept.
#[derive(Debug, Default)]
pub struct Canvas {
    commands: Vec<wit::DrawCommand>,
    /// `save`s sent and not yet restored.
    depth: usize,
    /// `save`s dropped (too deep, or no room) whose `restore`s must be dropped too. They
    /// are always the innermost open ones.
    skipped_saves: u32,
    /// Set by a transform that is not invertible: the depth it was given at. Nothing is
    /// drawn until a `restore` takes the depth below it.
    flattened_at: Option<usize>,
    text_bytes: usize,
    segments: usize,
    dropped: usize,
    /// Most commands and deepest nesting of `save`: the host's limits for a frame, or less
    /// for a loader's drawing (see [`Canvas::for_drawing`]).
    max_commands: usize,
    max_depth: usize,
}

impl Canvas {
    /// An empty canvas. Templates are handed one by the SDK; this is for tests.
    pub const fn new() -> Canvas {
        Canvas {
            commands: Vec::new(),
            depth: 0,
            skipped_saves: 0,
            flattened_at: None,
            text_bytes: 0,
            segments: 0,
            dropped: 0,
            max_commands: MAX_COMMANDS,
            max_depth: MAX_SAVE_DEPTH,
        }
    }

    /// An empty canvas for an asset loader's drawing
    /// ([`Decoded::Drawing`](crate::loader::Decoded::Drawing)): it leaves room for what the
    /// host wraps a drawing in when it draws it in a frame, keeping at most
    /// [`MAX_DRAWING_COMMANDS`](crate::loader::MAX_DRAWING_COMMANDS) commands and
    /// [`MAX_DRAWING_SAVE_DEPTH`](crate::loader::MAX_DRAWING_SAVE_DEPTH) nested saves. The
    /// other limits are a frame's.
    pub const fn for_drawing() -> Canvas {
        let mut canvas = Canvas::new();
        canvas.max_commands = crate::loader::MAX_DRAWING_COMMANDS;
        canvas.max_depth = crate::loader::MAX_DRAWING_SAVE_DEPTH;
        canvas
    }

    /// Number of commands drawn so far this frame.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether nothing has been drawn this frame.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Number of drawing operations dropped this frame because a limit was reached.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Whether there is room for one more command plus the restores that will close the
    /// open saves.
    fn has_room(&self, extra: usize) -> bool {
        self.commands.len() + extra + self.depth <= self.max_commands
    }

    fn push(&mut self, command: wit::DrawCommand) {
        if self.flattened_at.is_some() {
            // Under a transform that flattens the plane: nothing would be visible.
            return;
        }
        if self.skipped_saves == 0 && self.has_room(1) {
            self.commands.push(command);
        } else {
            // Inside a dropped `save` nothing is drawn: what follows relied on its clip or
            // transform.
            self.dropped += 1;
        }
    }

    /// Pushes the current transform, opacity and clip, to be brought back by the matching
    /// [`restore`](Canvas::restore).
    pub fn save(&mut self) {
        if self.skipped_saves > 0 || self.depth >= self.max_depth || !self.has_room(2) {
            self.skipped_saves += 1;
            self.dropped += 1;
        } else {
            self.commands.push(wit::DrawCommand::Save);
            self.depth += 1;
        }
    }

    /// Brings back the transform, opacity and clip of the matching [`save`](Canvas::save).
    /// A `restore` without a `save` is ignored.
    pub fn restore(&mut self) {
        if self.skipped_saves > 0 {
            self.skipped_saves -= 1;
        } else if self.depth > 0 {
            self.depth -= 1;
            self.commands.push(wit::DrawCommand::Restore);
            if self.flattened_at.is_some_and(|d| self.depth < d) {
                self.flattened_at = None;
            }
        }
    }

    /// Post-multiplies the current transform by `matrix`: `matrix` applies to what follows
    /// before the transforms already in place.
    ///
    /// A matrix that is not invertible (a scale by 0, say: its determinant is within
    /// ±1e-9) flattens what follows onto a line or a point. The host refuses such a
    /// transform, so it is not sent and nothing is drawn until the matching
    /// [`restore`](Canvas::restore) (or the end of the frame, without one).
    pub fn transform(&mut self, matrix: Matrix) {
        let m = matrix.to_wit();
        let det = f64::from(m.sx) * f64::from(m.sy) - f64::from(m.kx) * f64::from(m.ky);
        if det.abs() < MIN_DETERMINANT {
            if self.flattened_at.is_none() {
                self.flattened_at = Some(self.depth);
            }
            return;
        }
        self.push(wit::DrawCommand::Transform(m));
    }

    /// Moves the origin by (dx, dy).
    pub fn translate(&mut self, dx: f32, dy: f32) {
        self.transform(Matrix::translate(dx, dy));
    }

    /// Scales what follows by (sx, sy) about the origin.
    pub fn scale(&mut self, sx: f32, sy: f32) {
        self.transform(Matrix::scale(sx, sy));
    }

    /// Rotates what follows by `degrees` about the origin, clockwise on screen.
    pub fn rotate(&mut self, degrees: f32) {
        self.transform(Matrix::rotate(degrees));
    }

    /// Rotates what follows by `degrees` about the point (cx, cy), clockwise on screen.
    pub fn rotate_about(&mut self, degrees: f32, cx: f32, cy: f32) {
        self.transform(
            Matrix::translate(-cx, -cy)
                .then(Matrix::rotate(degrees))
                .then(Matrix::translate(cx, cy)),
        );
    }

    /// Multiplies the opacity of what follows by `opacity` (clamped to 0.0–1.0).
    pub fn opacity(&mut self, opacity: f32) {
        let opacity = if opacity.is_finite() {
            opacity.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.push(wit::DrawCommand::Opacity(opacity));
    }

    /// Intersects the clip with a rectangle in the current coordinates.
    pub fn clip_rect(&mut self, x: f32, y: f32, width: f32, height: f32) {
        self.push(wit::DrawCommand::ClipRect(rect(x, y, width, height)));
    }

    /// Fills a rectangle.
    pub fn rect(&mut self, x: f32, y: f32, width: f32, height: f32, fill: impl Into<Fill>) {
        self.rounded_rect(x, y, width, height, 0.0, fill);
    }

    /// Fills a rectangle with corners rounded to `radius` pixels.
    pub fn rounded_rect(
        &mut self,
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        radius: f32,
        fill: impl Into<Fill>,
    ) {
        self.push(wit::DrawCommand::Rect(wit::RectCommand {
            bounds: rect(x, y, width, height),
            radius: extent(radius),
            fill: fill.into().to_wit(),
        }));
    }

    /// Fills the ellipse inscribed in a rectangle.
    pub fn ellipse(&mut self, x: f32, y: f32, width: f32, height: f32, fill: impl Into<Fill>) {
        self.push(wit::DrawCommand::Ellipse(wit::EllipseCommand {
            bounds: rect(x, y, width, height),
            fill: fill.into().to_wit(),
        }));
    }

    /// Fills a circle of radius `r` around (cx, cy).
    pub fn circle(&mut self, cx: f32, cy: f32, r: f32, fill: impl Into<Fill>) {
        self.ellipse(cx - r, cy - r, 2.0 * r, 2.0 * r, fill);
    }

    /// Draws a path, filled (non-zero winding) and/or stroked; nothing when both are
    /// `None` or the path is empty.
    pub fn path(&mut self, path: &Path, fill: Option<Fill>, stroke: Option<Stroke>) {
        if path.is_empty() || (fill.is_none() && stroke.is_none()) {
            return;
        }
        if self.segments + path.len() > MAX_PATH_SEGMENTS {
            self.dropped += 1;
            return;
        }
        let before = self.commands.len();
        self.push(wit::DrawCommand::Path(wit::PathCommand {
            segments: path.segments.clone(),
            fill: fill.map(|f| f.to_wit()),
            stroke: stroke.map(Stroke::to_wit),
        }));
        if self.commands.len() > before {
            self.segments += path.len();
        }
    }

    /// Fills a path (non-zero winding).
    pub fn fill_path(&mut self, path: &Path, fill: impl Into<Fill>) {
        self.path(path, Some(fill.into()), None);
    }

    /// Strokes the outline of a path.
    pub fn stroke_path(&mut self, path: &Path, stroke: Stroke) {
        self.path(path, None, Some(stroke));
    }

    /// Draws a run of text on one line in the default font: the pen starts at `x`, the
    /// baseline is at `y`, `size` is pixels per em (above 0, at most [`MAX_TEXT_SIZE`]). Use
    /// [`measure_text`](crate::measure_text) to centre or right-align it.
    pub fn text(&mut self, x: f32, y: f32, text: &str, size: f32, fill: impl Into<Fill>) {
        self.text_with_font(x, y, text, size, fill, None);
    }

    /// Like [`text`](Canvas::text), in the font family of an uploaded font (`None`, or a
    /// family the host does not know, means the default font). `size` is clamped to
    /// [`MAX_TEXT_SIZE`].
    pub fn text_with_font(
        &mut self,
        x: f32,
        y: f32,
        text: &str,
        size: f32,
        fill: impl Into<Fill>,
        font: Option<&str>,
    ) {
        if text.is_empty() || !(size.is_finite() && size > 0.0) {
            return;
        }
        // A name longer than the host takes cannot be a family it knows: the default font
        // is what the host would draw.
        let font = match font {
            Some(f) if f.len() > MAX_FONT_NAME_BYTES => {
                self.dropped += 1;
                None
            }
            f => f,
        };
        let text = truncate(text, MAX_TEXT_BYTES);
        if self.text_bytes + text.len() > MAX_FRAME_TEXT_BYTES {
            self.dropped += 1;
            return;
        }
        let before = self.commands.len();
        self.push(wit::DrawCommand::Text(wit::TextCommand {
            x: coord(x),
            y: coord(y),
            text: text.to_owned(),
            size: size.min(MAX_TEXT_SIZE),
            fill: fill.into().to_wit(),
            font: font.map(str::to_owned),
        }));
        if self.commands.len() > before {
            self.text_bytes += text.len();
        }
    }

    /// Draws an uploaded image (by asset id, as in `GET /api/assets`) scaled into a
    /// rectangle. See [`asset_info`](crate::asset_info) for its natural size. Nothing is
    /// drawn for an id that is empty or longer than [`MAX_ASSET_ID_BYTES`] (no asset has
    /// one).
    pub fn image(&mut self, asset: &str, x: f32, y: f32, width: f32, height: f32) {
        if asset.is_empty() || asset.len() > MAX_ASSET_ID_BYTES {
            self.dropped += 1;
            return;
        }
        self.push(wit::DrawCommand::Image(wit::ImageCommand {
            asset: asset.to_owned(),
            bounds: rect(x, y, width, height),
        }));
    }

    /// Closes the open saves and takes the commands, leaving the canvas empty with room
    /// for as many commands as this frame had.
    pub(crate) fn finish(&mut self) -> Vec<wit::DrawCommand> {
        for _ in 0..self.depth {
            self.commands.push(wit::DrawCommand::Restore);
        }
        let capacity = self.commands.len();
        let commands = std::mem::replace(&mut self.commands, Vec::with_capacity(capacity));
        self.reset();
        commands
    }

    /// Forgets what was drawn, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.commands.clear();
        self.reset();
    }

    fn reset(&mut self) {
        self.depth = 0;
        self.skipped_saves = 0;
        self.flattened_at = None;
        self.text_bytes = 0;
        self.segments = 0;
        self.dropped = 0;
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Color;

    fn count(canvas: &Canvas, f: impl Fn(&wit::DrawCommand) -> bool) -> usize {
        canvas.commands.iter().filter(|c| f(c)).count()
    }

    #[test]
    fn saves_stay_balanced_and_shallow() {
        let mut c = Canvas::new();
        for _ in 0..100 {
            c.save();
        }
        c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
        for _ in 0..150 {
            c.restore();
        }
        c.save();
        let out = c.finish();
        let saves = out
            .iter()
            .filter(|c| matches!(c, wit::DrawCommand::Save))
            .count();
        let restores = out
            .iter()
            .filter(|c| matches!(c, wit::DrawCommand::Restore))
            .count();
        assert_eq!(saves, 65);
        assert_eq!(restores, 65);
        // The rect was inside dropped saves.
        assert!(!out.iter().any(|c| matches!(c, wit::DrawCommand::Rect(_))));
        assert!(c.is_empty());
    }

    #[test]
    fn command_limit_leaves_room_for_restores() {
        let mut c = Canvas::new();
        c.save();
        c.save();
        for _ in 0..20_000 {
            c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
        }
        assert!(c.dropped() > 0);
        let out = c.finish();
        assert_eq!(out.len(), MAX_COMMANDS);
        assert!(matches!(out[MAX_COMMANDS - 1], wit::DrawCommand::Restore));
    }

    #[test]
    fn text_is_cut_and_budgeted() {
        let mut c = Canvas::new();
        let long = "é".repeat(3000); // 6000 bytes
        c.text(0.0, 0.0, &long, 10.0, Color::WHITE);
        match &c.commands[0] {
            wit::DrawCommand::Text(t) => assert_eq!(t.text.len(), 4096),
            _ => panic!("expected text"),
        }
        for _ in 0..20 {
            c.text(0.0, 0.0, &long, 10.0, Color::WHITE);
        }
        assert_eq!(count(&c, |c| matches!(c, wit::DrawCommand::Text(_))), 16);
        c.text(0.0, 0.0, "x", 0.0, Color::WHITE);
        c.text(0.0, 0.0, "", 10.0, Color::WHITE);
        assert_eq!(c.len(), 16);
    }

    #[test]
    fn numbers_are_made_valid() {
        let mut c = Canvas::new();
        c.rect(f32::NAN, 1e9, -5.0, f32::INFINITY, Color::WHITE);
        c.opacity(7.0);
        match (&c.commands[0], &c.commands[1]) {
            (wit::DrawCommand::Rect(r), wit::DrawCommand::Opacity(o)) => {
                assert_eq!(r.bounds.x, 0.0);
                assert_eq!(r.bounds.y, MAX_COORDINATE);
                assert_eq!(r.bounds.width, 0.0);
                assert_eq!(r.bounds.height, 0.0);
                assert_eq!(*o, 1.0);
            }
            _ => panic!("unexpected commands"),
        }
    }

    #[test]
    fn limits_are_the_hosts() {
        // One file, `wit/limits.rs`, for the host and the SDK: these are its numbers.
        assert_eq!(MAX_COMMANDS, crate::limits::MAX_COMMANDS);
        assert_eq!(MAX_TEXT_SIZE, 2000.0);
        assert_eq!(MAX_STROKE_WIDTH, 1000.0);
        assert_eq!((MIN_GRADIENT_STOPS, MAX_GRADIENT_STOPS), (2, 16));
        assert_eq!((MAX_FONT_NAME_BYTES, MAX_ASSET_ID_BYTES), (256, 128));
    }

    fn texts(canvas: &Canvas) -> Vec<&wit::TextCommand> {
        canvas
            .commands
            .iter()
            .filter_map(|c| match c {
                wit::DrawCommand::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn text_sizes_are_clamped_to_the_host_limit() {
        let mut c = Canvas::new();
        c.text(0.0, 0.0, "big", 5000.0, Color::WHITE);
        c.text(0.0, 0.0, "max", MAX_TEXT_SIZE, Color::WHITE);
        c.text(0.0, 0.0, "tiny", 1e-6, Color::WHITE);
        let sizes: Vec<f32> = texts(&c).iter().map(|t| t.size).collect();
        assert_eq!(sizes, [MAX_TEXT_SIZE, MAX_TEXT_SIZE, 1e-6]);
    }

    #[test]
    fn text_of_no_size_is_skipped() {
        let mut c = Canvas::new();
        for size in [0.0, -0.0, -12.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            c.text(0.0, 0.0, "x", size, Color::WHITE);
        }
        assert!(c.is_empty());
        c.text(0.0, 0.0, "x", 12.0, Color::WHITE);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn long_font_names_are_dropped_not_the_text() {
        let mut c = Canvas::new();
        let longest = "f".repeat(MAX_FONT_NAME_BYTES);
        let too_long = "f".repeat(MAX_FONT_NAME_BYTES + 1);
        c.text_with_font(0.0, 0.0, "a", 10.0, Color::WHITE, Some(&longest));
        assert_eq!(c.dropped(), 0);
        c.text_with_font(0.0, 0.0, "b", 10.0, Color::WHITE, Some(&too_long));
        assert_eq!(c.dropped(), 1);
        let t = texts(&c);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].font.as_deref(), Some(longest.as_str()));
        assert_eq!((t[1].text.as_str(), t[1].font.as_deref()), ("b", None));
    }

    #[test]
    fn images_with_bad_asset_ids_are_skipped() {
        let mut c = Canvas::new();
        c.image("", 0.0, 0.0, 10.0, 10.0);
        c.image(&"a".repeat(MAX_ASSET_ID_BYTES + 1), 0.0, 0.0, 10.0, 10.0);
        assert!(c.is_empty());
        assert_eq!(c.dropped(), 2);
        c.image(&"a".repeat(MAX_ASSET_ID_BYTES), 0.0, 0.0, 10.0, 10.0);
        c.image("logo", 0.0, 0.0, 10.0, 10.0);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn transforms_that_are_not_invertible_are_skipped_with_what_they_flatten() {
        let is_transform = |c: &wit::DrawCommand| matches!(c, wit::DrawCommand::Transform(_));
        let is_rect = |c: &wit::DrawCommand| matches!(c, wit::DrawCommand::Rect(_));
        let mut c = Canvas::new();
        c.scale(1e-4, 1e-4); // determinant 1e-8: the host takes it
        assert_eq!(count(&c, is_transform), 1);
        for m in [
            Matrix::scale(0.0, 1.0),
            Matrix::scale(1e-5, 1e-5), // determinant 1e-10
            Matrix::scale(f32::NAN, 1.0),
            Matrix {
                sx: 2.0,
                ky: 4.0,
                kx: 1.0,
                sy: 2.0,
                tx: 5.0,
                ty: 5.0,
            },
        ] {
            c.save();
            c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
            c.transform(m);
            // Flattened onto a line: nothing of this is visible, so none of it is sent.
            c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
            c.save();
            c.opacity(0.5);
            c.restore();
            c.restore();
        }
        assert_eq!(count(&c, is_transform), 1);
        assert_eq!(count(&c, is_rect), 4);
        // Drawing comes back after the restore; without a save, not for the rest of the
        // frame.
        c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
        assert_eq!(count(&c, is_rect), 5);
        c.scale(0.0, 0.0);
        c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
        c.restore();
        c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
        assert_eq!(count(&c, is_rect), 5);
        assert_eq!(c.dropped(), 0, "an invisible drawing is not a dropped one");
        // A new frame starts unflattened.
        c.clear();
        c.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn matrices_compose() {
        let m = Matrix::translate(-1.0, 0.0)
            .then(Matrix::rotate(90.0))
            .then(Matrix::translate(1.0, 0.0));
        let (x, y) = m.apply(2.0, 0.0);
        assert!((x - 1.0).abs() < 1e-5 && (y - 1.0).abs() < 1e-5, "{x} {y}");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
