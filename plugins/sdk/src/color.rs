//! Colours, fills and strokes.
//!
//! [`Color`] is the type to put in a template's params: it deserializes from and
//! serializes to `"#rrggbb"` / `"#rrggbbaa"`, and its [`JsonSchema`] is a string with the
//! pattern [`Color::SCHEMA_PATTERN`], inlined where it is used, so a derived params schema
//! refuses exactly what deserializing refuses.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bindings::stream_manager::plugin::types as wit;

/// A colour: straight (not premultiplied) RGBA, each channel 0–255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
    /// Alpha: 0 transparent, 255 opaque.
    pub a: u8,
}

/// Why a string is not a colour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColorError {
    input: String,
}

impl fmt::Display for ColorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid colour {:?}: expected \"#rrggbb\" or \"#rrggbbaa\" (hexadecimal)",
            self.input
        )
    }
}

impl std::error::Error for ColorError {}

impl Color {
    /// Regular expression for a colour string in a params JSON Schema (`"pattern"`):
    /// `#rrggbb` or `#rrggbbaa`.
    pub const SCHEMA_PATTERN: &'static str = "^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$";

    /// Fully transparent black.
    pub const TRANSPARENT: Color = Color::rgba(0, 0, 0, 0);
    /// Opaque black.
    pub const BLACK: Color = Color::rgb(0, 0, 0);
    /// Opaque white.
    pub const WHITE: Color = Color::rgb(255, 255, 255);

    /// An opaque colour.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color { r, g, b, a: 255 }
    }

    /// A colour with alpha (0 transparent, 255 opaque).
    pub const fn rgba(r: u8, g: u8, b: u8, a: u8) -> Color {
        Color { r, g, b, a }
    }

    /// Parses `"#rrggbb"` (opaque) or `"#rrggbbaa"`; hex digits in either case.
    ///
    /// ```
    /// use stream_manager_sdk::Color;
    /// assert_eq!(Color::from_hex("#ff8000").unwrap(), Color::rgb(255, 128, 0));
    /// assert_eq!(Color::from_hex("#FF800080").unwrap(), Color::rgba(255, 128, 0, 128));
    /// assert!(Color::from_hex("ff8000").is_err());
    /// ```
    pub fn from_hex(s: &str) -> Result<Color, ColorError> {
        let err = || ColorError {
            input: s.chars().take(32).collect(),
        };
        let hex = s.strip_prefix('#').ok_or_else(err)?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| err());
        Ok(Color {
            r: channel(0)?,
            g: channel(2)?,
            b: channel(4)?,
            a: if hex.len() == 8 { channel(6)? } else { 255 },
        })
    }

    /// Formats as `"#rrggbb"` when opaque, else `"#rrggbbaa"` (lower case).
    pub fn to_hex(self) -> String {
        if self.a == 255 {
            format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
        } else {
            format!("#{:02x}{:02x}{:02x}{:02x}", self.r, self.g, self.b, self.a)
        }
    }

    /// The same colour with another alpha.
    pub const fn with_alpha(self, a: u8) -> Color {
        Color { a, ..self }
    }

    /// The same colour with its alpha multiplied by `factor` (clamped to 0.0–1.0), for
    /// fading.
    pub fn faded(self, factor: f32) -> Color {
        let f = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.with_alpha((f32::from(self.a) * f).round() as u8)
    }

    /// The colour `t` of the way from `self` to `other` (t clamped to 0.0–1.0), channel by
    /// channel.
    pub fn mix(self, other: Color, t: f32) -> Color {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ch = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * t).round() as u8;
        Color {
            r: ch(self.r, other.r),
            g: ch(self.g, other.g),
            b: ch(self.b, other.b),
            a: ch(self.a, other.a),
        }
    }

    pub(crate) fn to_wit(self) -> wit::Rgba {
        wit::Rgba {
            r: self.r,
            g: self.g,
            b: self.b,
            a: self.a,
        }
    }
}

impl std::str::FromStr for Color {
    type Err = ColorError;

    fn from_str(s: &str) -> Result<Color, ColorError> {
        Color::from_hex(s)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Color, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Color::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Color {
    /// Inlined: each colour property reads `{"type": "string", "pattern": …}` with its own
    /// default and description, no `$ref`.
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Color".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "stream_manager_sdk::Color".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": Color::SCHEMA_PATTERN,
        })
    }
}

/// How an area or a run of text is painted.
///
/// A [`Color`] converts into a solid fill, so drawing methods accept either.
#[derive(Clone, Debug, PartialEq)]
pub enum Fill {
    /// One colour.
    Solid(Color),
    /// A linear gradient from (x0, y0) to (x1, y1), in the current coordinates.
    Linear {
        /// Start x.
        x0: f32,
        /// Start y.
        y0: f32,
        /// End x.
        x1: f32,
        /// End y.
        y1: f32,
        /// The stops: (offset 0.0–1.0, colour). The host takes
        /// [`MIN_GRADIENT_STOPS`](crate::limits::MIN_GRADIENT_STOPS) (2) to
        /// [`MAX_GRADIENT_STOPS`] (16); with fewer the fill is drawn solid in the one
        /// colour (or transparent), stops past the 16th are dropped.
        stops: Vec<(f32, Color)>,
    },
    /// A radial gradient around (cx, cy).
    Radial {
        /// Centre x.
        cx: f32,
        /// Centre y.
        cy: f32,
        /// Radius, greater than 0.
        radius: f32,
        /// The stops, as for [`Fill::Linear`].
        stops: Vec<(f32, Color)>,
    },
}

pub use crate::limits::MAX_GRADIENT_STOPS;
use crate::limits::{MAX_STROKE_WIDTH, MIN_GRADIENT_STOPS, coord};

impl Fill {
    /// One colour.
    pub fn solid(color: Color) -> Fill {
        Fill::Solid(color)
    }

    /// A linear gradient from (x0, y0) to (x1, y1) through `stops` (offset, colour).
    pub fn linear(
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        stops: impl IntoIterator<Item = (f32, Color)>,
    ) -> Fill {
        Fill::Linear {
            x0,
            y0,
            x1,
            y1,
            stops: stops.into_iter().collect(),
        }
    }

    /// A radial gradient around (cx, cy) through `stops` (offset, colour).
    pub fn radial(
        cx: f32,
        cy: f32,
        radius: f32,
        stops: impl IntoIterator<Item = (f32, Color)>,
    ) -> Fill {
        Fill::Radial {
            cx,
            cy,
            radius,
            stops: stops.into_iter().collect(),
        }
    }

    /// Converts to the host's type, making it valid: numbers clamped, stop offsets clamped
    /// to 0.0–1.0, the first [`MAX_GRADIENT_STOPS`] stops kept, fewer than
    /// [`MIN_GRADIENT_STOPS`] turned into a solid fill (of the one colour, or transparent).
    pub(crate) fn to_wit(&self) -> wit::Fill {
        fn stops(stops: &[(f32, Color)]) -> Result<Vec<wit::GradientStop>, wit::Fill> {
            if stops.len() < MIN_GRADIENT_STOPS {
                let color = stops.first().map_or(Color::TRANSPARENT, |&(_, c)| c);
                return Err(wit::Fill::Solid(color.to_wit()));
            }
            Ok(stops
                .iter()
                .take(MAX_GRADIENT_STOPS)
                .map(|&(offset, color)| wit::GradientStop {
                    offset: if offset.is_finite() {
                        offset.clamp(0.0, 1.0)
                    } else {
                        0.0
                    },
                    color: color.to_wit(),
                })
                .collect())
        }
        match self {
            Fill::Solid(c) => wit::Fill::Solid(c.to_wit()),
            Fill::Linear {
                x0,
                y0,
                x1,
                y1,
                stops: s,
            } => match stops(s) {
                Ok(stops) => wit::Fill::Linear(wit::LinearGradient {
                    x0: coord(*x0),
                    y0: coord(*y0),
                    x1: coord(*x1),
                    y1: coord(*y1),
                    stops,
                }),
                Err(solid) => solid,
            },
            Fill::Radial {
                cx,
                cy,
                radius,
                stops: s,
            } => match stops(s) {
                Ok(stops) => wit::Fill::Radial(wit::RadialGradient {
                    cx: coord(*cx),
                    cy: coord(*cy),
                    radius: coord(*radius).max(0.001),
                    stops,
                }),
                Err(solid) => solid,
            },
        }
    }
}

impl From<Color> for Fill {
    fn from(color: Color) -> Fill {
        Fill::Solid(color)
    }
}

/// The outline drawn along a path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stroke {
    /// Colour.
    pub color: Color,
    /// Width in pixels, 0–[`MAX_STROKE_WIDTH`] (1000).
    pub width: f32,
}

impl Stroke {
    /// An outline `width` pixels wide.
    pub fn new(color: Color, width: f32) -> Stroke {
        Stroke { color, width }
    }

    pub(crate) fn to_wit(self) -> wit::Stroke {
        wit::Stroke {
            color: self.color.to_wit(),
            width: if self.width.is_finite() {
                self.width.clamp(0.0, MAX_STROKE_WIDTH)
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        for s in ["#000000", "#ffffff", "#12ab3c", "#12ab3c80"] {
            assert_eq!(Color::from_hex(s).unwrap().to_hex(), s);
        }
        assert_eq!(
            Color::from_hex("#ABCDEF").unwrap(),
            Color::rgb(0xab, 0xcd, 0xef)
        );
    }

    #[test]
    fn bad_hex_is_an_error() {
        for s in [
            "",
            "#",
            "#fff",
            "#ggffff",
            "123456",
            "#1234567",
            "#ééé",
            "#12345678a",
        ] {
            let e = Color::from_hex(s).unwrap_err();
            assert!(e.to_string().contains("invalid colour"), "{e}");
        }
    }

    #[test]
    fn serde_uses_hex() {
        let c: Color = serde_json::from_str("\"#ff000080\"").unwrap();
        assert_eq!(c, Color::rgba(255, 0, 0, 128));
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"#ff000080\"");
        let e = serde_json::from_str::<Color>("\"red\"").unwrap_err();
        assert!(e.to_string().contains("invalid colour"));
    }

    #[test]
    fn stroke_widths_are_clamped_to_the_host_limit() {
        let width = |w: f32| Stroke::new(Color::BLACK, w).to_wit().width;
        assert_eq!(width(2.5), 2.5);
        assert_eq!(width(MAX_STROKE_WIDTH + 1.0), MAX_STROKE_WIDTH);
        assert_eq!(width(1e9), MAX_STROKE_WIDTH);
        assert_eq!(width(-3.0), 0.0);
        assert_eq!(width(f32::NAN), 0.0);
        assert_eq!(width(f32::INFINITY), 0.0);
    }

    #[test]
    fn gradient_stops_are_clamped_to_the_host_limits() {
        let stops = |n: usize| {
            let fill = Fill::linear(0.0, 0.0, 1.0, 0.0, (0..n).map(|i| (i as f32, Color::WHITE)));
            match fill.to_wit() {
                wit::Fill::Linear(g) => g.stops.iter().map(|s| s.offset).collect(),
                wit::Fill::Solid(_) => Vec::new(),
                wit::Fill::Radial(_) => panic!("expected a linear gradient"),
            }
        };
        assert!(
            stops(0).is_empty() && stops(1).is_empty(),
            "solid below 2 stops"
        );
        assert_eq!(stops(MIN_GRADIENT_STOPS), [0.0, 1.0]);
        assert_eq!(stops(MAX_GRADIENT_STOPS).len(), MAX_GRADIENT_STOPS);
        assert_eq!(stops(MAX_GRADIENT_STOPS + 1).len(), MAX_GRADIENT_STOPS);
        let odd = Fill::linear(
            0.0,
            0.0,
            1.0,
            0.0,
            [
                (-0.5, Color::WHITE),
                (f32::NAN, Color::WHITE),
                (7.0, Color::BLACK),
            ],
        );
        match odd.to_wit() {
            wit::Fill::Linear(g) => {
                let offsets: Vec<f32> = g.stops.iter().map(|s| s.offset).collect();
                assert_eq!(offsets, [0.0, 0.0, 1.0]);
            }
            _ => panic!("expected a linear gradient"),
        }
    }

    #[test]
    fn colour_schema_matches_what_deserializes() {
        let schema = crate::params_schema::<Color>();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["pattern"], Color::SCHEMA_PATTERN);
        // `from_hex` takes exactly "#" and 6 or 8 hex digits, which is the pattern.
        assert_eq!(Color::SCHEMA_PATTERN, "^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$");
    }

    #[test]
    fn gradients_are_made_valid() {
        let one = Fill::linear(0.0, 0.0, 1.0, 0.0, [(0.5, Color::WHITE)]);
        assert!(matches!(one.to_wit(), wit::Fill::Solid(c) if c.r == 255));
        let many = Fill::radial(0.0, 0.0, 0.0, (0..40).map(|i| (i as f32, Color::BLACK)));
        match many.to_wit() {
            wit::Fill::Radial(g) => {
                assert_eq!(g.stops.len(), 16);
                assert!(g.radius > 0.0);
                assert!(g.stops.iter().all(|s| (0.0..=1.0).contains(&s.offset)));
            }
            _ => panic!("expected a radial gradient"),
        }
    }
}
