//! The scene model (`{canvas, layers}`), its validation, and its translation into draw
//! commands ([`crate::compose::commands`]), plus the [`SceneSlot`] through which a new
//! scene reaches the render thread at a frame boundary and the API learns which frame
//! first showed it.
//!
//! The canvas has its own size and is scaled onto the output frame, so a scene authored for
//! 1920×1080 plays unchanged on a 1280×720 stream. [`compositor`] draws a scene per frame,
//! caching each layer's raster.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::ToSchema;

use crate::compose::commands::ImageSource;
use crate::compose::commands::{
    DrawCommand, Fill, GradientStopSpec, Rgba, Segment, StrokeSpec, rounded_rect_segments,
};
use crate::compose::text::FontBook;

pub mod compositor;
pub mod manager;
pub use manager::SceneManager;

/// Most layers in a scene.
pub const MAX_LAYERS: usize = 256;
/// Largest canvas or layer dimension, in pixels.
pub const MAX_SIZE: f32 = 16384.0;
/// Largest coordinate magnitude.
pub const MAX_COORD: f32 = 100_000.0;

/// The drawing surface of a scene; absent fields take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CanvasProperties {
    /// Canvas width in pixels, 16..=7680. Default 1920.
    pub width: u32,
    /// Canvas height in pixels, 16..=4320. Default 1080.
    pub height: u32,
    /// `#rrggbb` or `#rrggbbaa` (transparent shows black), or the id of an image asset
    /// drawn over the whole canvas. Default `#000000`.
    pub background: String,
}

impl Default for CanvasProperties {
    fn default() -> Self {
        Self {
            width: 1920,
            height: 1080,
            background: "#000000".into(),
        }
    }
}

/// Where a layer sits, in canvas pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Position {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width (> 0).
    pub width: f32,
    /// Height (> 0).
    pub height: f32,
    /// Degrees clockwise about the centre. Default 0.
    #[serde(default)]
    pub rotation: f32,
    /// 0..=1. Default 1.
    #[serde(default = "one")]
    pub opacity: f32,
    /// Stacking order; higher is in front. Default 0.
    #[serde(default)]
    pub z_index: i32,
}

fn one() -> f32 {
    1.0
}

fn yes() -> bool {
    true
}

/// A gradient fill of a shape, across its box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GradientFill {
    /// `linear` or `radial`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Direction of a linear gradient in degrees (0 = left to right). Default 0.
    #[serde(default)]
    pub angle: f32,
    /// 2 to 16 stops.
    pub stops: Vec<ColorStop>,
}

/// One gradient stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColorStop {
    /// 0..=1.
    pub offset: f32,
    /// `#rrggbb[aa]`.
    pub color: String,
}

/// A colour string or a gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ShapeFill {
    /// `#rrggbb[aa]`.
    Color(String),
    /// A gradient.
    Gradient(GradientFill),
}

/// An outline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShapeStroke {
    /// `#rrggbb[aa]`.
    pub color: String,
    /// Width in pixels, 0..=1000.
    pub width: f32,
}

/// A shape layer's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShapeSpec {
    /// `rect`, `roundedRect` or `ellipse`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fill; none leaves the inside empty.
    #[serde(default)]
    pub fill: Option<ShapeFill>,
    /// Outline, if any.
    #[serde(default)]
    pub stroke: Option<ShapeStroke>,
    /// Corner radius of a `roundedRect`. Default 0.
    #[serde(default)]
    pub corner_radius: f32,
}

/// A text layer's content, wrapped to the layer width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TextSpec {
    /// The text (at most 4096 bytes); `\n` breaks lines. `{{time}}` (UTC `HH:MM:SS`),
    /// `{{date}}` (`YYYY-MM-DD`), `{{timecode}}` (`HH:MM:SS:FF`, UTC and frame) and
    /// `{{frame}}` (the frame number) are replaced as the stream runs.
    pub content: String,
    /// Font family: `DejaVu Sans` (embedded, the default) or the family of an uploaded
    /// font.
    #[serde(default)]
    pub font_family: Option<String>,
    /// Pixels per em, 1..=1000. Default 48.
    #[serde(default = "default_text_size")]
    pub size: f32,
    /// `#rrggbb[aa]`. Default white.
    #[serde(default = "white")]
    pub color: String,
    /// `start`, `center` or `end`. Default `start`.
    #[serde(default = "start")]
    pub align: String,
    /// Font weight (100..=900); upload a font of that weight and name its family.
    #[serde(default)]
    pub weight: Option<u32>,
}

fn default_text_size() -> f32 {
    48.0
}
fn white() -> String {
    "#ffffff".into()
}
fn start() -> String {
    "start".into()
}

/// An image layer's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSpec {
    /// Asset id.
    pub asset: String,
    /// `contain`, `cover` or `fill`. Default `contain`.
    #[serde(default)]
    pub fit: Option<String>,
}

/// One layer of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layer {
    /// 1–64 of `[A-Za-z0-9_-]`; generated when absent on creation.
    #[serde(default)]
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: String,
    /// `shape`, `text` or `image`.
    pub kind: String,
    /// Hidden layers are not drawn. Default true.
    #[serde(default = "yes")]
    pub visible: bool,
    /// Placement.
    pub position: Position,
    /// Content of a `shape` layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<ShapeSpec>,
    /// Content of a `text` layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSpec>,
    /// Content of an `image` layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// Content of a `template` layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,
}

/// A `template` layer: which uploaded template draws it, with what params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateSpec {
    /// Template id (as in `GET /api/templates`).
    pub id: String,
    /// Params, valid against the template's params schema; absent: its default params.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

impl TemplateSpec {
    /// The params as given, or the template's defaults when none were given.
    pub fn params_or<'a>(&'a self, defaults: &'a serde_json::Value) -> &'a serde_json::Value {
        if self.params.is_null() {
            defaults
        } else {
            &self.params
        }
    }
}

/// A scene: canvas and layers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scene {
    /// The canvas.
    #[serde(default)]
    pub canvas: CanvasProperties,
    /// Layers in creation order (drawn by `zIndex`, then this order).
    #[serde(default)]
    pub layers: Vec<Layer>,
}

/// What a scene may refer to: the assets that exist.
pub trait AssetLookup {
    /// Whether `id` is an image asset.
    fn is_image(&self, id: &str) -> bool;
    /// Whether a font of `family` exists (besides the embedded default).
    fn has_family(&self, family: &str) -> bool;
    /// The current version of template `id`, if it exists.
    fn template(&self, _id: &str) -> Option<std::sync::Arc<crate::plugin::Build>> {
        None
    }
}

/// No uploaded assets.
pub struct NoAssets;

impl AssetLookup for NoAssets {
    fn is_image(&self, _: &str) -> bool {
        false
    }
    fn has_family(&self, _: &str) -> bool {
        false
    }
}

impl AssetLookup for crate::assets::AssetManager {
    fn is_image(&self, id: &str) -> bool {
        crate::assets::AssetManager::is_image(self, id)
    }
    fn has_family(&self, family: &str) -> bool {
        crate::assets::AssetManager::has_family(self, family)
    }
}

/// Why a scene was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SceneError {
    /// A value outside its range or format.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// JSON path.
        field: String,
        /// What is allowed.
        reason: String,
    },
    /// A layer kind that does not exist.
    #[error("{field}: unknown layer kind {kind:?}; one of shape, text, image, template")]
    UnknownKind {
        /// JSON path.
        field: String,
        /// The kind given.
        kind: String,
    },
    /// An image layer naming an asset (or a text layer naming a font family) that does not
    /// exist.
    #[error("{field}: unknown asset {asset:?}")]
    UnknownAsset {
        /// JSON path.
        field: String,
        /// The id given.
        asset: String,
    },
    /// A template layer naming a template that does not exist.
    #[error("{field}: unknown template {template:?}")]
    UnknownTemplate {
        /// JSON path.
        field: String,
        /// The id given.
        template: String,
    },
    /// Template params refused by its schema or by the template itself.
    #[error("{field}: {message}")]
    InvalidParams {
        /// JSON path.
        field: String,
        /// Why, in the schema's or the template's words.
        message: String,
    },
}

/// Largest params object of a template layer, as JSON.
const MAX_PARAMS_BYTES: usize = 64 * 1024;

fn out_of_range(field: impl Into<String>, reason: impl Into<String>) -> SceneError {
    SceneError::OutOfRange {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses `#rrggbb` or `#rrggbbaa`.
pub fn parse_color(s: &str) -> Option<Rgba> {
    let hex = s.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([
        byte(0)?,
        byte(2)?,
        byte(4)?,
        if hex.len() == 8 { byte(6)? } else { 255 },
    ])
}

fn check_color(field: &str, s: &str) -> Result<Rgba, SceneError> {
    parse_color(s)
        .ok_or_else(|| out_of_range(field, format!("{s:?} is not a #rrggbb or #rrggbbaa colour")))
}

fn check_finite(field: &str, v: f32, min: f32, max: f32) -> Result<(), SceneError> {
    if !v.is_finite() || v < min || v > max {
        return Err(out_of_range(field, format!("{v} is outside {min}..={max}")));
    }
    Ok(())
}

/// Checks a layer id's characters and length.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_fill(field: &str, fill: &ShapeFill) -> Result<(), SceneError> {
    match fill {
        ShapeFill::Color(c) => check_color(field, c).map(drop),
        ShapeFill::Gradient(g) => {
            if g.kind != "linear" && g.kind != "radial" {
                return Err(out_of_range(format!("{field}.type"), "linear or radial"));
            }
            check_finite(&format!("{field}.angle"), g.angle, -36000.0, 36000.0)?;
            if !(2..=16).contains(&g.stops.len()) {
                return Err(out_of_range(format!("{field}.stops"), "2 to 16 stops"));
            }
            for (i, s) in g.stops.iter().enumerate() {
                check_finite(&format!("{field}.stops[{i}].offset"), s.offset, 0.0, 1.0)?;
                check_color(&format!("{field}.stops[{i}].color"), &s.color)?;
            }
            Ok(())
        }
    }
}

impl Position {
    /// Checks every field; `field` prefixes the names in errors.
    pub fn validate(&self, field: &str) -> Result<(), SceneError> {
        check_finite(&format!("{field}.x"), self.x, -MAX_COORD, MAX_COORD)?;
        check_finite(&format!("{field}.y"), self.y, -MAX_COORD, MAX_COORD)?;
        check_finite(
            &format!("{field}.width"),
            self.width,
            f32::MIN_POSITIVE,
            MAX_SIZE,
        )?;
        check_finite(
            &format!("{field}.height"),
            self.height,
            f32::MIN_POSITIVE,
            MAX_SIZE,
        )?;
        check_finite(
            &format!("{field}.rotation"),
            self.rotation,
            -36000.0,
            36000.0,
        )?;
        check_finite(&format!("{field}.opacity"), self.opacity, 0.0, 1.0)
    }
}

impl Layer {
    /// Checks the layer against the assets that exist.
    pub fn validate(&self, field: &str, assets: &dyn AssetLookup) -> Result<(), SceneError> {
        if !valid_id(&self.id) {
            return Err(out_of_range(
                format!("{field}.id"),
                "1 to 64 of A-Z a-z 0-9 _ -",
            ));
        }
        if self.name.len() > 256 {
            return Err(out_of_range(format!("{field}.name"), "at most 256 bytes"));
        }
        self.position.validate(&format!("{field}.position"))?;
        let present = [
            ("shape", self.shape.is_some()),
            ("text", self.text.is_some()),
            ("image", self.image.is_some()),
            ("template", self.template.is_some()),
        ];
        if !present.iter().any(|(k, _)| *k == self.kind) {
            return Err(SceneError::UnknownKind {
                field: format!("{field}.kind"),
                kind: self.kind.clone(),
            });
        }
        for (k, is_set) in present {
            if (k == self.kind) != is_set {
                let reason = if is_set {
                    "belongs to another kind"
                } else {
                    "is required for this kind"
                };
                return Err(out_of_range(format!("{field}.{k}"), reason));
            }
        }
        if let Some(t) = &self.template {
            let Some(build) = assets.template(&t.id) else {
                return Err(SceneError::UnknownTemplate {
                    field: format!("{field}.template.id"),
                    template: t.id.clone(),
                });
            };
            if serde_json::to_vec(&t.params).map_or(0, |v| v.len()) > MAX_PARAMS_BYTES {
                return Err(out_of_range(
                    format!("{field}.template.params"),
                    "at most 64 KiB of JSON",
                ));
            }
            build
                .check_params(t.params_or(&build.info.default_params))
                .map_err(|message| SceneError::InvalidParams {
                    field: format!("{field}.template.params"),
                    message,
                })?;
        }
        if let Some(s) = &self.shape {
            if !["rect", "roundedRect", "ellipse"].contains(&s.kind.as_str()) {
                return Err(out_of_range(
                    format!("{field}.shape.type"),
                    "rect, roundedRect or ellipse",
                ));
            }
            if let Some(f) = &s.fill {
                check_fill(&format!("{field}.shape.fill"), f)?;
            }
            if let Some(st) = &s.stroke {
                check_color(&format!("{field}.shape.stroke.color"), &st.color)?;
                check_finite(
                    &format!("{field}.shape.stroke.width"),
                    st.width,
                    0.0,
                    1000.0,
                )?;
            }
            check_finite(
                &format!("{field}.shape.cornerRadius"),
                s.corner_radius,
                0.0,
                MAX_SIZE,
            )?;
        }
        if let Some(t) = &self.text {
            if t.content.len() > 4096 {
                return Err(out_of_range(
                    format!("{field}.text.content"),
                    "at most 4096 bytes",
                ));
            }
            check_finite(&format!("{field}.text.size"), t.size, 1.0, 1000.0)?;
            check_color(&format!("{field}.text.color"), &t.color)?;
            if !["start", "center", "end"].contains(&t.align.as_str()) {
                return Err(out_of_range(
                    format!("{field}.text.align"),
                    "start, center or end",
                ));
            }
            if t.weight.is_some_and(|w| !(100..=900).contains(&w)) {
                return Err(out_of_range(format!("{field}.text.weight"), "100..=900"));
            }
            if let Some(f) = &t.font_family
                && !f.eq_ignore_ascii_case(crate::compose::text::DEFAULT_FAMILY)
                && !assets.has_family(f)
            {
                return Err(SceneError::UnknownAsset {
                    field: format!("{field}.text.fontFamily"),
                    asset: f.clone(),
                });
            }
        }
        if let Some(i) = &self.image {
            if !assets.is_image(&i.asset) {
                return Err(SceneError::UnknownAsset {
                    field: format!("{field}.image.asset"),
                    asset: i.asset.clone(),
                });
            }
            if i.fit
                .as_deref()
                .is_some_and(|f| !["contain", "cover", "fill"].contains(&f))
            {
                return Err(out_of_range(
                    format!("{field}.image.fit"),
                    "contain, cover or fill",
                ));
            }
        }
        Ok(())
    }
}

impl Scene {
    /// Checks the whole scene against the assets that exist.
    pub fn validate(&self, assets: &dyn AssetLookup) -> Result<(), SceneError> {
        let c = &self.canvas;
        if !(16..=7680).contains(&c.width) {
            return Err(out_of_range("canvas.width", "16..=7680"));
        }
        if !(16..=4320).contains(&c.height) {
            return Err(out_of_range("canvas.height", "16..=4320"));
        }
        if c.background.starts_with('#') {
            check_color("canvas.background", &c.background)?;
        } else if !assets.is_image(&c.background) {
            return Err(SceneError::UnknownAsset {
                field: "canvas.background".into(),
                asset: c.background.clone(),
            });
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(out_of_range(
                "layers",
                format!("at most {MAX_LAYERS} layers"),
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.validate(&format!("layers[{i}]"), assets)?;
            if self.layers[..i].iter().any(|o| o.id == l.id) {
                return Err(out_of_range(
                    format!("layers[{i}].id"),
                    format!("duplicate id {:?}", l.id),
                ));
            }
        }
        Ok(())
    }

    /// The layers to draw, back to front: visible, not fully transparent, by `zIndex` then
    /// list order.
    pub fn draw_order(&self) -> impl Iterator<Item = &Layer> {
        let mut order: Vec<&Layer> = self
            .layers
            .iter()
            .filter(|l| l.visible && l.position.opacity > 0.0)
            .collect();
        order.sort_by_key(|l| l.position.z_index);
        order.into_iter()
    }

    /// Scale from canvas to an `out_w` × `out_h` frame.
    pub fn scale_to(&self, out_w: u32, out_h: u32) -> (f32, f32) {
        (
            out_w as f32 / self.canvas.width as f32,
            out_h as f32 / self.canvas.height as f32,
        )
    }

    /// The image assets this scene draws, with the size in device pixels each is drawn at
    /// on an `out_w` × `out_h` frame (for [`crate::assets::AssetManager::resources`]).
    /// `size_of` gives an asset's own size.
    pub fn drawn_images(
        &self,
        out_w: u32,
        out_h: u32,
        size_of: &dyn Fn(&str) -> Option<(u32, u32)>,
    ) -> Vec<(String, u32, u32)> {
        let (sx, sy) = self.scale_to(out_w, out_h);
        let mut out = Vec::new();
        if !self.canvas.background.starts_with('#') {
            out.push((self.canvas.background.clone(), out_w, out_h));
        }
        for layer in &self.layers {
            let (Some(image), p) = (&layer.image, &layer.position) else {
                continue;
            };
            let Some((iw, ih)) = size_of(&image.asset) else {
                continue;
            };
            let (_, _, w, h) = fit_rect(image.fit.as_deref(), p.width, p.height, iw, ih);
            out.push((
                image.asset.clone(),
                (w * sx).round() as u32,
                (h * sy).round() as u32,
            ));
        }
        out
    }

    /// The draw commands of the canvas background (canvas coordinates).
    pub fn background_commands(&self) -> Vec<DrawCommand> {
        let (cw, ch) = (self.canvas.width as f32, self.canvas.height as f32);
        match parse_color(&self.canvas.background) {
            Some(bg) if bg[3] == 0 => Vec::new(),
            Some(bg) => vec![DrawCommand::Rect {
                x: 0.0,
                y: 0.0,
                width: cw,
                height: ch,
                radius: 0.0,
                fill: Fill::Solid { color: bg },
            }],
            None => vec![DrawCommand::Image {
                asset: self.canvas.background.clone(),
                x: 0.0,
                y: 0.0,
                width: cw,
                height: ch,
            }],
        }
    }

    /// The draw commands that paint this whole scene onto an `out_w` × `out_h` frame (the
    /// canvas scaled to fit), uncached: what the [`compositor::Compositor`] produces layer by
    /// layer. `text` expands `{{…}}` tokens.
    pub fn to_commands(
        &self,
        out_w: u32,
        out_h: u32,
        fonts: &mut FontBook,
        images: &dyn ImageSource,
        tokens: &Tokens,
    ) -> Vec<DrawCommand> {
        let (sx, sy) = self.scale_to(out_w, out_h);
        let mut out = vec![DrawCommand::Transform {
            matrix: [sx, 0.0, 0.0, sy, 0.0, 0.0],
        }];
        out.extend(self.background_commands());
        let mut text = String::new();
        for layer in self.draw_order() {
            let p = &layer.position;
            out.push(DrawCommand::Save);
            let (s, c) = p.rotation.to_radians().sin_cos();
            let (cx, cy) = (p.x + p.width / 2.0, p.y + p.height / 2.0);
            // Rotate about the centre, then place the layer's local origin at (x, y).
            let (e, f) = (cx - c * cx + s * cy, cy - s * cx - c * cy);
            out.push(DrawCommand::Transform {
                matrix: [c, s, -s, c, e + c * p.x - s * p.y, f + s * p.x + c * p.y],
            });
            if p.opacity < 1.0 {
                out.push(DrawCommand::Opacity { value: p.opacity });
            }
            if let Some(t) = &layer.text {
                text.clear();
                tokens.expand(&t.content, &mut text);
            }
            layer_commands(layer, &text, fonts, images, &mut out);
            out.push(DrawCommand::Restore);
        }
        out
    }
}

/// Values of the `{{…}}` tokens of text layers at one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokens {
    /// The scene's frame number.
    pub frame: u64,
    /// Frames per second (for `{{timecode}}`).
    pub fps: u32,
    /// Wall-clock time, seconds since the Unix epoch (UTC).
    pub unix_secs: u64,
    /// Milliseconds within that second.
    pub millis: u32,
}

impl Tokens {
    /// The tokens now, at `frame` of a stream at `fps`.
    pub fn now(frame: u64, fps: u32) -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            frame,
            fps,
            unix_secs: since.as_secs(),
            millis: since.subsec_millis(),
        }
    }

    /// Whether `content` has a token (its text then changes as the stream runs).
    pub fn any_in(content: &str) -> bool {
        ["{{time}}", "{{date}}", "{{timecode}}", "{{frame}}"]
            .iter()
            .any(|t| content.contains(t))
    }

    /// Appends `content` with its tokens replaced to `out` (no allocation once `out` has
    /// grown to fit).
    pub fn expand(&self, content: &str, out: &mut String) {
        use std::fmt::Write as _;
        let secs = self.unix_secs % 86_400;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let mut rest = content;
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            let token = ["{{time}}", "{{date}}", "{{timecode}}", "{{frame}}"]
                .into_iter()
                .find(|t| after.starts_with(t));
            let _ = match token {
                Some("{{time}}") => write!(out, "{h:02}:{m:02}:{s:02}"),
                Some("{{date}}") => {
                    let (y, mo, d) = civil_date(self.unix_secs / 86_400);
                    write!(out, "{y:04}-{mo:02}-{d:02}")
                }
                Some("{{timecode}}") => {
                    let ff = u64::from(self.millis) * u64::from(self.fps.max(1)) / 1000;
                    write!(out, "{h:02}:{m:02}:{s:02}:{ff:02}")
                }
                Some(_) => write!(out, "{}", self.frame),
                None => {
                    out.push_str("{{");
                    rest = &after[2..];
                    continue;
                }
            };
            rest = &after[token.map_or(2, str::len)..];
        }
        out.push_str(rest);
    }
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_date(days: u64) -> (i64, u32, u32) {
    // Howard Hinnant's days_from_civil, inverted.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where an image of `iw` × `ih` goes in a `w` × `h` box: `(x, y, width, height)` relative
/// to the box. `contain` fits inside (letterboxed), `cover` fills it (cropped by the box),
/// `fill` stretches.
pub fn fit_rect(fit: Option<&str>, w: f32, h: f32, iw: u32, ih: u32) -> (f32, f32, f32, f32) {
    let (iw, ih) = (iw.max(1) as f32, ih.max(1) as f32);
    let scale = match fit {
        Some("fill") => return (0.0, 0.0, w, h),
        Some("cover") => (w / iw).max(h / ih),
        _ => (w / iw).min(h / ih),
    };
    let (dw, dh) = (iw * scale, ih * scale);
    ((w - dw) / 2.0, (h - dh) / 2.0, dw, dh)
}

/// Appends the commands of one layer's content in its local coordinates: origin at the
/// layer's top-left corner, `width` × `height` canvas pixels, before rotation and opacity.
/// `text` is the text layer's content with its tokens expanded.
pub fn layer_commands(
    layer: &Layer,
    text: &str,
    fonts: &mut FontBook,
    images: &dyn ImageSource,
    out: &mut Vec<DrawCommand>,
) {
    let local = Position {
        x: 0.0,
        y: 0.0,
        ..layer.position.clone()
    };
    if let Some(shape) = &layer.shape {
        shape_commands(shape, &local, out);
    }
    if let Some(spec) = &layer.text {
        text_commands(spec, text, &local, fonts, out);
    }
    if let Some(image) = &layer.image {
        let Some(pixmap) = images.image(&image.asset) else {
            return;
        };
        let (x, y, width, height) = fit_rect(
            image.fit.as_deref(),
            local.width,
            local.height,
            pixmap.width(),
            pixmap.height(),
        );
        let crop = image.fit.as_deref() == Some("cover");
        if crop {
            out.push(DrawCommand::Save);
            out.push(DrawCommand::ClipRect {
                x: 0.0,
                y: 0.0,
                width: local.width,
                height: local.height,
            });
        }
        out.push(DrawCommand::Image {
            asset: image.asset.clone(),
            x,
            y,
            width,
            height,
        });
        if crop {
            out.push(DrawCommand::Restore);
        }
    }
}

fn fill_of(fill: &ShapeFill, p: &Position) -> Option<Fill> {
    match fill {
        ShapeFill::Color(c) => parse_color(c).map(|color| Fill::Solid { color }),
        ShapeFill::Gradient(g) => {
            let stops = g
                .stops
                .iter()
                .map(|s| {
                    Some(GradientStopSpec {
                        offset: s.offset,
                        color: parse_color(&s.color)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            let (cx, cy) = (p.x + p.width / 2.0, p.y + p.height / 2.0);
            Some(if g.kind == "radial" {
                Fill::RadialGradient {
                    cx,
                    cy,
                    radius: p.width.max(p.height) / 2.0,
                    stops,
                }
            } else {
                let (s, c) = g.angle.to_radians().sin_cos();
                let (dx, dy) = (c * p.width / 2.0, s * p.height / 2.0);
                Fill::LinearGradient {
                    x0: cx - dx,
                    y0: cy - dy,
                    x1: cx + dx,
                    y1: cy + dy,
                    stops,
                }
            })
        }
    }
}

/// Outline of an ellipse in a box, as four cubic arcs.
fn ellipse_segments(p: &Position) -> Vec<Segment> {
    let (rx, ry) = (p.width / 2.0, p.height / 2.0);
    let (cx, cy) = (p.x + rx, p.y + ry);
    let (kx, ky) = (rx * 0.552_284_8, ry * 0.552_284_8);
    vec![
        Segment::MoveTo { x: cx + rx, y: cy },
        Segment::CubicTo {
            x1: cx + rx,
            y1: cy + ky,
            x2: cx + kx,
            y2: cy + ry,
            x: cx,
            y: cy + ry,
        },
        Segment::CubicTo {
            x1: cx - kx,
            y1: cy + ry,
            x2: cx - rx,
            y2: cy + ky,
            x: cx - rx,
            y: cy,
        },
        Segment::CubicTo {
            x1: cx - rx,
            y1: cy - ky,
            x2: cx - kx,
            y2: cy - ry,
            x: cx,
            y: cy - ry,
        },
        Segment::CubicTo {
            x1: cx + kx,
            y1: cy - ry,
            x2: cx + rx,
            y2: cy - ky,
            x: cx + rx,
            y: cy,
        },
        Segment::Close,
    ]
}

fn shape_commands(shape: &ShapeSpec, p: &Position, out: &mut Vec<DrawCommand>) {
    let fill = shape.fill.as_ref().and_then(|f| fill_of(f, p));
    let (x, y, width, height) = (p.x, p.y, p.width, p.height);
    match (shape.kind.as_str(), fill) {
        ("ellipse", Some(fill)) => out.push(DrawCommand::Ellipse {
            x,
            y,
            width,
            height,
            fill,
        }),
        ("roundedRect", Some(fill)) => out.push(DrawCommand::Rect {
            x,
            y,
            width,
            height,
            radius: shape.corner_radius,
            fill,
        }),
        (_, Some(fill)) => out.push(DrawCommand::Rect {
            x,
            y,
            width,
            height,
            radius: 0.0,
            fill,
        }),
        (_, None) => {}
    }
    if let Some(st) = &shape.stroke
        && let Some(color) = parse_color(&st.color)
    {
        let segments = match shape.kind.as_str() {
            "ellipse" => ellipse_segments(p),
            "roundedRect" => {
                rounded_rect_segments(p.x, p.y, p.width, p.height, shape.corner_radius)
            }
            _ => rounded_rect_segments(p.x, p.y, p.width, p.height, 0.0),
        };
        out.push(DrawCommand::Path {
            segments,
            fill: None,
            stroke: Some(StrokeSpec {
                color,
                width: st.width,
            }),
        });
    }
}

/// Lays `text` out in the layer box: explicit line breaks, then word wrap at the width.
fn text_commands(
    text: &TextSpec,
    content: &str,
    p: &Position,
    fonts: &mut FontBook,
    out: &mut Vec<DrawCommand>,
) {
    let Some(color) = parse_color(&text.color) else {
        return;
    };
    let font = fonts.get(text.font_family.as_deref());
    let size = text.size;
    let line_height = size * 1.2;
    // Clipped to the layer box only when it overflows (a clip costs the fast glyph path).
    let clip_at = out.len();
    let mut overflows = false;
    let mut baseline = p.y + size;
    let space = font.measure(" ", size);
    for paragraph in content.split('\n') {
        let mut line = String::new();
        let mut line_w = 0.0;
        let mut lines = Vec::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let w = font.measure(word, size);
            if !line.is_empty() && line_w + space + w > p.width {
                lines.push((std::mem::take(&mut line), line_w));
                line_w = 0.0;
            }
            if !line.is_empty() {
                line.push(' ');
                line_w += space;
            }
            line.push_str(word);
            line_w += w;
        }
        lines.push((line, line_w));
        for (content, w) in lines {
            overflows |= w > p.width || baseline + size * 0.25 > p.y + p.height;
            let x = match text.align.as_str() {
                "center" => p.x + (p.width - w) / 2.0,
                "end" => p.x + p.width - w,
                _ => p.x,
            };
            if !content.is_empty() {
                out.push(DrawCommand::Text {
                    x,
                    y: baseline,
                    text: content,
                    size,
                    fill: Fill::Solid { color },
                    font: text.font_family.clone(),
                });
            }
            baseline += line_height;
        }
    }
    if overflows {
        out.insert(
            clip_at,
            DrawCommand::ClipRect {
                x: p.x,
                y: p.y,
                width: p.width,
                height: p.height,
            },
        );
    }
}

/// How an animated change progresses over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Easing {
    /// Constant speed.
    #[default]
    Linear,
    /// Starts slow.
    EaseIn,
    /// Ends slow.
    EaseOut,
    /// Starts and ends slow.
    EaseInOut,
}

impl Easing {
    /// Progress at time `t` (both 0..=1).
    pub fn apply(self, t: f32) -> f32 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Self::Linear => t,
            Self::EaseIn => t * t,
            Self::EaseOut => 1.0 - (1.0 - t) * (1.0 - t),
            Self::EaseInOut if t < 0.5 => 2.0 * t * t,
            Self::EaseInOut => 1.0 - (-2.0 * t + 2.0).powi(2) / 2.0,
        }
    }
}

/// `{"durationMs", "easing"}` of an animated layer change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Animate {
    /// Duration, 0..=60000 ms.
    pub duration_ms: u32,
    /// Default `linear`.
    #[serde(default)]
    pub easing: Easing,
}

/// A layer's position moving from `from` to `to` (position, size, rotation, opacity).
#[derive(Debug, Clone, PartialEq)]
pub struct Tween {
    /// The layer.
    pub layer: String,
    /// Where it starts.
    pub from: Position,
    /// Where it ends (the layer's stored position).
    pub to: Position,
    /// Duration in milliseconds.
    pub duration_ms: u32,
    /// Progress curve.
    pub easing: Easing,
}

impl Position {
    /// The position a fraction `t` of the way to `to` (the stacking order jumps to `to`'s).
    pub fn lerp(&self, to: &Position, t: f32) -> Position {
        let mix = |a: f32, b: f32| a + (b - a) * t;
        Position {
            x: mix(self.x, to.x),
            y: mix(self.y, to.y),
            width: mix(self.width, to.width),
            height: mix(self.height, to.height),
            rotation: mix(self.rotation, to.rotation),
            opacity: mix(self.opacity, to.opacity),
            z_index: to.z_index,
        }
    }
}

/// How one scene replaces another on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum TransitionKind {
    /// At once.
    #[default]
    Cut,
    /// Cross-fade.
    Fade,
    /// The new scene pushes the old one out to the left.
    Slide,
}

/// `{"kind", "durationMs"}` of a scene change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    /// `cut`, `fade` or `slide`.
    pub kind: TransitionKind,
    /// 0..=10000 ms (ignored for `cut`). Default 500.
    #[serde(default = "half_second")]
    pub duration_ms: u32,
}

fn half_second() -> u32 {
    500
}

/// What the render thread draws: a scene, the resources it needs, the animations and the
/// transition it starts with.
#[derive(Clone, Default)]
pub struct OnAir {
    /// The scene.
    pub scene: std::sync::Arc<Scene>,
    /// Its images and fonts.
    pub resources: std::sync::Arc<crate::assets::Resources>,
    /// Animations that start with it.
    pub tweens: Vec<Tween>,
    /// How it replaces the previous scene (`None`: an edit of the same scene, at once).
    pub transition: Option<Transition>,
    /// The templates its template layers use (current versions), and the runtime that
    /// runs them.
    pub templates: Templates,
}

/// What template layers need on the render thread: the current build of each template
/// the scene uses, and the runtime.
#[derive(Clone, Default)]
pub struct Templates {
    /// Builds by template id.
    pub builds: std::sync::Arc<HashMap<String, std::sync::Arc<crate::plugin::Build>>>,
    /// The runtime (none: template layers stay empty).
    pub runtime: Option<std::sync::Arc<crate::plugin::Runtime>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.builds.iter().map(|(id, b)| (id, &b.hash)))
            .finish()
    }
}

/// A waiter for the frame that first shows a scene version.
type Waiter = (u64, oneshot::Sender<u64>);

struct SlotInner {
    on_air: OnAir,
    version: u64,
    waiters: Vec<Waiter>,
}

/// The hand-over point between the Scene Manager and the render thread: the newest scene
/// with a version number, and the API callers waiting to learn the frame that shows it.
pub struct SceneSlot {
    inner: Mutex<SlotInner>,
    version: AtomicU64,
}

impl SceneSlot {
    /// A slot holding `scene` as version 1.
    pub fn new(scene: Scene) -> Self {
        Self {
            inner: Mutex::new(SlotInner {
                on_air: OnAir {
                    scene: std::sync::Arc::new(scene),
                    ..OnAir::default()
                },
                version: 1,
                waiters: Vec::new(),
            }),
            version: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotInner> {
        self.inner.lock().expect("scene slot lock")
    }

    /// Installs a new scene (no assets, no animation); the receiver yields the number of
    /// the first frame showing it.
    pub fn publish(&self, scene: Scene) -> oneshot::Receiver<u64> {
        self.publish_on_air(OnAir {
            scene: std::sync::Arc::new(scene),
            ..OnAir::default()
        })
    }

    /// Installs what goes on air next; the receiver yields the number of the first frame
    /// showing it.
    pub fn publish_on_air(&self, on_air: OnAir) -> oneshot::Receiver<u64> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        inner.version += 1;
        inner.on_air = on_air;
        let v = inner.version;
        inner.waiters.push((v, tx));
        self.version.store(v, Ordering::Release);
        rx
    }

    /// The current version, cheaply (the render thread checks it every frame).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current scene and its version.
    pub fn current(&self) -> (u64, std::sync::Arc<Scene>) {
        let inner = self.lock();
        (inner.version, inner.on_air.scene.clone())
    }

    /// Everything on air and its version.
    pub fn on_air(&self) -> (u64, OnAir) {
        let inner = self.lock();
        (inner.version, inner.on_air.clone())
    }

    /// Tells everyone waiting for `version` or older that frame `frame` shows it.
    pub fn applied(&self, version: u64, frame: u64) {
        let mut inner = self.lock();
        let waiters = std::mem::take(&mut inner.waiters);
        for (v, tx) in waiters {
            if v <= version {
                let _ = tx.send(frame);
            } else {
                inner.waiters.push((v, tx));
            }
        }
    }

    /// Drops waiters (the stream stopped: nothing will show their change).
    pub fn abandon_waiters(&self) {
        self.lock().waiters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::commands::{Limits, NoImages, rasterize, validate};
    use tiny_skia::PixmapMut;

    /// A 40x40 solid rectangle layer at (`x`, 10).
    pub(super) fn rect_layer(id: &str, x: f32, color: &str, z: i32) -> Layer {
        Layer {
            id: id.into(),
            name: id.into(),
            kind: "shape".into(),
            visible: true,
            position: Position {
                x,
                y: 10.0,
                width: 40.0,
                height: 40.0,
                rotation: 0.0,
                opacity: 1.0,
                z_index: z,
            },
            shape: Some(ShapeSpec {
                kind: "rect".into(),
                fill: Some(ShapeFill::Color(color.into())),
                stroke: None,
                corner_radius: 0.0,
            }),
            text: None,
            image: None,
            template: None,
        }
    }

    #[test]
    fn layers_compose_in_z_order_scaled_to_the_output() {
        let scene = Scene {
            canvas: CanvasProperties {
                width: 200,
                height: 100,
                background: "#000000".into(),
            },
            layers: vec![
                rect_layer("front", 30.0, "#00ff00", 2),
                rect_layer("back", 10.0, "#ff0000", 1),
            ],
        };
        scene.validate(&NoAssets).unwrap();
        let mut fonts = FontBook::default();
        let commands = scene.to_commands(100, 50, &mut fonts, &NoImages, &Tokens::default());
        validate(&commands, &Limits::default()).unwrap();
        let mut buf = vec![0u8; 100 * 50 * 4];
        rasterize(
            &commands,
            &mut PixmapMut::from_bytes(&mut buf, 100, 50).unwrap(),
            &mut fonts,
            &NoImages,
        );
        let px = |x: usize, y: usize| buf[(y * 100 + x) * 4..][..3].to_vec();
        assert_eq!(px(7, 15), [255, 0, 0], "back layer, half scale");
        assert_eq!(px(20, 15), [0, 255, 0], "front layer wins the overlap");
        assert_eq!(px(80, 40), [0, 0, 0], "background");
    }

    #[test]
    fn validation_names_the_field() {
        let mut scene = Scene {
            layers: vec![rect_layer("a", 0.0, "#nothex", 0)],
            ..Default::default()
        };
        let e = scene.validate(&NoAssets).unwrap_err();
        assert!(e.to_string().starts_with("layers[0].shape.fill"), "{e}");
        scene.layers[0].kind = "hologram".into();
        assert!(matches!(
            scene.validate(&NoAssets),
            Err(SceneError::UnknownKind { .. })
        ));
        scene.layers = vec![rect_layer("a", 0.0, "#fff000", 0)];
        scene.layers[0].position.opacity = 2.0;
        assert!(
            scene
                .validate(&NoAssets)
                .unwrap_err()
                .to_string()
                .contains("opacity")
        );
        assert_eq!(parse_color("#ff000080"), Some([255, 0, 0, 128]));
        assert_eq!(parse_color("red"), None);
    }

    #[test]
    fn tokens_expand_and_images_fit() {
        let t = Tokens {
            frame: 42,
            fps: 25,
            unix_secs: 86_400 * 365 + 3600 + 62,
            millis: 480,
        };
        let mut out = String::new();
        t.expand("{{date}} {{time}} {{timecode}} #{{frame}} {{x}}", &mut out);
        assert_eq!(out, "1971-01-01 01:01:02 01:01:02:12 #42 {{x}}");
        assert!(Tokens::any_in("a {{frame}}") && !Tokens::any_in("a {{x}}"));
        assert_eq!(
            fit_rect(Some("fill"), 100.0, 50.0, 10, 10),
            (0.0, 0.0, 100.0, 50.0)
        );
        assert_eq!(fit_rect(None, 100.0, 50.0, 10, 10), (25.0, 0.0, 50.0, 50.0));
        assert_eq!(
            fit_rect(Some("cover"), 100.0, 50.0, 10, 10),
            (0.0, -25.0, 100.0, 100.0)
        );
    }

    #[test]
    fn easings_run_from_zero_to_one() {
        for e in [
            Easing::Linear,
            Easing::EaseIn,
            Easing::EaseOut,
            Easing::EaseInOut,
        ] {
            assert_eq!((e.apply(0.0), e.apply(1.0)), (0.0, 1.0), "{e:?}");
            assert!(e.apply(0.25) < e.apply(0.75), "{e:?} increases");
        }
        assert!(Easing::EaseIn.apply(0.5) < 0.5 && Easing::EaseOut.apply(0.5) > 0.5);
        let a = rect_layer("a", 0.0, "#000000", 1).position;
        let b = Position {
            x: 100.0,
            opacity: 0.0,
            z_index: 5,
            ..a.clone()
        };
        let mid = a.lerp(&b, 0.5);
        assert_eq!((mid.x, mid.opacity, mid.z_index), (50.0, 0.5, 5));
    }

    #[test]
    fn slot_reports_the_frame_that_shows_a_version() {
        let slot = SceneSlot::new(Scene::default());
        let mut first = slot.publish(Scene::default());
        let mut second = slot.publish(Scene::default());
        slot.applied(2, 40);
        assert_eq!(first.try_recv().unwrap(), 40);
        assert!(second.try_recv().is_err());
        slot.applied(3, 41);
        assert_eq!(second.try_recv().unwrap(), 41);
    }
}
