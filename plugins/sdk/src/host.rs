//! What the host offers a template: text measurement, asset look-up and logging.
//!
//! These call into the host; in a native build (unit tests of a template's pure logic)
//! there is no host and calling them panics.

use crate::bindings::stream_manager::plugin::host as wit_host;
use crate::bindings::stream_manager::plugin::types as wit;

/// Metrics of a run of text as the host would draw it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct TextMetrics {
    /// Advance width in pixels.
    pub width: f32,
    /// Distance from the baseline up to the top of the tallest glyph of the font.
    pub ascent: f32,
    /// Distance from the baseline down to the bottom of the lowest glyph (positive).
    pub descent: f32,
}

impl TextMetrics {
    /// Height from the top of the tallest glyph to the bottom of the lowest.
    pub fn height(&self) -> f32 {
        self.ascent + self.descent
    }

    /// The baseline that centres the font's glyph box vertically on `center_y`.
    pub fn baseline_centered_on(&self, center_y: f32) -> f32 {
        center_y + (self.ascent - self.descent) / 2.0
    }
}

/// Measures a run of text exactly as [`Canvas::text_with_font`](crate::Canvas) would
/// draw it with the same text, size and font (`None` for the default font): for centring,
/// fitting and scrolling.
pub fn measure_text(text: &str, size: f32, font: Option<&str>) -> TextMetrics {
    let m = wit_host::measure_text(text, size, font);
    TextMetrics {
        width: m.width,
        ascent: m.ascent,
        descent: m.descent,
    }
}

/// The largest size, at most `max_size`, at which `text` fits in `max_width` pixels, with
/// its metrics at that size: one measurement, since text width grows with size.
pub fn fit_text(
    text: &str,
    max_size: f32,
    max_width: f32,
    font: Option<&str>,
) -> (f32, TextMetrics) {
    let m = measure_text(text, max_size, font);
    if m.width <= max_width || m.width <= 0.0 {
        return (max_size, m);
    }
    let k = (max_width / m.width).max(0.0);
    (
        max_size * k,
        TextMetrics {
            width: m.width * k,
            ascent: m.ascent * k,
            descent: m.descent * k,
        },
    )
}

/// What an uploaded asset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetKind {
    /// A raster image.
    Image,
    /// A font.
    Font,
}

/// What the host knows about an uploaded asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetInfo {
    /// Its id.
    pub id: String,
    /// Image or font.
    pub kind: AssetKind,
    /// Width in pixels (images; 0 for fonts).
    pub width: u32,
    /// Height in pixels (images; 0 for fonts).
    pub height: u32,
    /// The font family (fonts only).
    pub family: Option<String>,
}

/// Looks up an uploaded asset by id; `None` if there is no such asset.
pub fn asset_info(id: &str) -> Option<AssetInfo> {
    wit_host::asset_info(id).map(|a| AssetInfo {
        id: a.id,
        kind: match a.kind {
            wit::AssetKind::Image => AssetKind::Image,
            wit::AssetKind::Font => AssetKind::Font,
        },
        width: a.width,
        height: a.height,
        family: a.family,
    })
}

/// Logging to the server log, tagged with the template. Lines are rate-limited and cut
/// at 1 KiB by the host.
pub mod log {
    use super::wit_host;

    /// How much a log line matters.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Level {
        /// Fine detail.
        Debug,
        /// Normal events.
        Info,
        /// Something odd that the template got past.
        Warn,
        /// Something that failed.
        Error,
    }

    /// Writes a line at `level`.
    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Debug => wit_host::LogLevel::Debug,
            Level::Info => wit_host::LogLevel::Info,
            Level::Warn => wit_host::LogLevel::Warn,
            Level::Error => wit_host::LogLevel::Error,
        };
        wit_host::log(level, message);
    }

    /// Writes a line at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }

    /// Writes a line at info level.
    pub fn info(message: &str) {
        log(Level::Info, message);
    }

    /// Writes a line at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }

    /// Writes a line at error level.
    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}
