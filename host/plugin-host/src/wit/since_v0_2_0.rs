//! `stream-manager:plugin@0.2.0`, the newest version: bindings and the host imports, which
//! the older versions' imports delegate to.
//!
//! Its `types` interface is item for item that of 0.1.0 and has no functions, so the
//! bindings take 0.1.0's Rust types for it (`with`): the component model checks types by
//! structure, not by name, and one conversion ([`super::since_v0_1_0::command`]) serves
//! both versions' draw commands. Its `host` interface has functions, which are linked under
//! their own versioned name, so it is generated here.

use wasmtime::component::bindgen;

use crate::host_state::HostState;
use crate::output::Level;

bindgen!({
    path: "../../wit/since_v0.2.0",
    world: "scene-template",
    with: {
        "stream-manager:plugin/types": super::since_v0_1_0::stream_manager::plugin::types,
    },
});

use super::since_v0_1_0::stream_manager::plugin::types as wit;
pub use exports::stream_manager::plugin::template::{FrameInfo, Info, RenderOutput};
use stream_manager::plugin::host::LogLevel;

/// Longest text `measure-text` shapes; longer text is measured by its first part.
const MAX_MEASURED: usize = 4096;

impl stream_manager::plugin::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        };
        if let Ok(mut log) = self.log.lock() {
            log.line(level, &message);
        }
    }

    fn measure_text(&mut self, text: String, size: f32, font: Option<String>) -> wit::TextMetrics {
        if !size.is_finite() || size <= 0.0 || size > 10_000.0 {
            return wit::TextMetrics {
                width: 0.0,
                ascent: 0.0,
                descent: 0.0,
            };
        }
        let mut end = text.len().min(MAX_MEASURED);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let font = self.fonts.get(font.as_deref());
        let (ascent, descent) = font.vertical_metrics(size);
        wit::TextMetrics {
            width: font.measure(&text[..end], size),
            ascent,
            descent,
        }
    }

    fn asset_info(&mut self, id: String) -> Option<wit::AssetInfo> {
        let (width, height) = self.resources.image_size(&id)?;
        Some(wit::AssetInfo {
            id,
            kind: wit::AssetKind::Image,
            width,
            height,
            family: None,
        })
    }
}

/// This version's frame for a frame of 0.1.0 (the host's own, [`crate::FrameInfo`]):
/// the same fields.
pub fn frame(f: &super::since_v0_1_0::FrameInfo) -> FrameInfo {
    FrameInfo {
        frame: f.frame,
        time_ms: f.time_ms,
        wall_clock_ms: f.wall_clock_ms,
        utc_offset_minutes: f.utc_offset_minutes,
        fps: f.fps,
        width: f.width,
        height: f.height,
    }
}

/// What `describe` answered, as 0.1.0's record (the same fields).
pub fn info(i: Info) -> super::since_v0_1_0::Info {
    super::since_v0_1_0::Info {
        name: i.name,
        version: i.version,
        description: i.description,
        params_schema: i.params_schema,
        default_params: i.default_params,
        default_size: i.default_size,
    }
}

/// The `asset-loader` world of the same version: its imports are the template world's
/// (one linker serves both), its types the same draw commands.
pub mod loader_world {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.2.0",
        world: "asset-loader",
        with: {
            "stream-manager:plugin/types": super::super::since_v0_1_0::stream_manager::plugin::types,
            "stream-manager:plugin/host": super::stream_manager::plugin::host,
        },
    });
    pub use exports::stream_manager::plugin::loader::LoaderInfo;
}
