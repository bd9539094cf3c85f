//! The scene model: a canvas and its layers, as the API and the store carry them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sm_compose::commands::Rgba;

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
    #[schema(minimum = 16, maximum = 7680)]
    pub width: u32,
    /// Canvas height in pixels, 16..=4320. Default 1080.
    #[schema(minimum = 16, maximum = 4320)]
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
    /// Left edge, -100000..=100000.
    #[schema(minimum = -100_000.0, maximum = 100_000.0)]
    pub x: f32,
    /// Top edge, -100000..=100000.
    #[schema(minimum = -100_000.0, maximum = 100_000.0)]
    pub y: f32,
    /// Width, > 0 (at least the smallest normal 32-bit float) and at most 16384.
    #[schema(minimum = 1.1754944e-38, maximum = 16384.0)]
    pub width: f32,
    /// Height, > 0 (at least the smallest normal 32-bit float) and at most 16384.
    #[schema(minimum = 1.1754944e-38, maximum = 16384.0)]
    pub height: f32,
    /// Degrees clockwise about the centre, -36000..=36000. Default 0.
    #[serde(default)]
    #[schema(minimum = -36_000.0, maximum = 36_000.0)]
    pub rotation: f32,
    /// 0..=1. Default 1.
    #[serde(default = "one")]
    #[schema(minimum = 0.0, maximum = 1.0)]
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
    /// How an animated image plays (ignored for still images). Default: playing, looping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback: Option<Playback>,
}

/// How an animated image plays on its layer: at its own frame durations, timed by the
/// render clock from when the layer appeared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Playback {
    /// Starts again after the last frame; false holds the last frame. Default true.
    #[serde(default = "yes", rename = "loop")]
    pub looping: bool,
    /// False pauses on the frame showing (true resumes from there). Default true.
    #[serde(default = "yes")]
    pub playing: bool,
}

impl Default for Playback {
    fn default() -> Self {
        Self {
            looping: true,
            playing: true,
        }
    }
}

/// A `video` layer's content: a live input, fitted into the layer box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoSpec {
    /// Input id (as in `GET /api/inputs`).
    pub input: String,
    /// `contain`, `cover` or `fill`. Default `contain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<String>,
    /// How long the last frame stays after the input stops playing, in ms, 0..=60000.
    /// Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u32>,
    /// Image asset shown (fitted like the video) once the hold is over; without one, a
    /// neutral slate naming the input and its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

/// Default of [`VideoSpec::hold_ms`].
pub const DEFAULT_HOLD_MS: u32 = 1000;

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
    /// `shape`, `text`, `image`, `template` or `video`.
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
    /// Content of a `video` layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoSpec>,
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
    /// Whether the graphic is on air (played) or off air (stopped); default true. A
    /// template of plugin API 0.2.0 or later is told (`play`, `stop`) and animates in and
    /// out; an older one is shown while playing and draws nothing while stopped. Changing
    /// it does not configure the template again.
    #[serde(default = "playing_by_default")]
    #[schema(default = true)]
    pub playing: bool,
}

fn playing_by_default() -> bool {
    true
}

impl TemplateSpec {
    /// A spec of template `id` with `params` (null: the defaults), playing.
    pub fn new(id: impl Into<String>, params: serde_json::Value) -> Self {
        Self {
            id: id.into(),
            params,
            playing: true,
        }
    }

    /// Whether `other` configures the template the same way (the same template and
    /// params, whether playing or not).
    pub fn same_config(&self, other: &TemplateSpec) -> bool {
        self.id == other.id && self.params == other.params
    }

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

impl Layer {
    /// A visible rectangle layer filled with `color` (`#rrggbb[aa]`), named after its id.
    pub fn rect(id: &str, position: Position, color: &str) -> Self {
        Self {
            id: id.into(),
            name: id.into(),
            kind: "shape".into(),
            visible: true,
            position,
            shape: Some(ShapeSpec {
                kind: "rect".into(),
                fill: Some(ShapeFill::Color(color.into())),
                stroke: None,
                corner_radius: 0.0,
            }),
            text: None,
            image: None,
            template: None,
            video: None,
        }
    }
}

impl Scene {
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
