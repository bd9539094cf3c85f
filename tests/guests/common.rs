//! Helpers shared by the scene-template test guests: colours, a full-layer rectangle, a
//! render counter that survives a hot swap through `snapshot`/`restore`, and a stack
//! overflow.
//!
//! Included by each template crate with `#[path = "../../common.rs"] mod common;` after its
//! own `wit_bindgen::generate!`, so the binding types below are that crate's.

use std::cell::Cell;
use std::hint::black_box;

use crate::exports::stream_manager::plugin::template::RenderOutput;
use crate::stream_manager::plugin::types::{DrawCommand, Fill, Rect, RectCommand, Rgba};

/// Opaque #00ff00.
pub const GREEN: Rgba = Rgba {
    r: 0,
    g: 255,
    b: 0,
    a: 255,
};
/// Opaque #ff0000.
pub const RED: Rgba = Rgba {
    r: 255,
    g: 0,
    b: 0,
    a: 255,
};
/// Opaque #0000ff.
pub const BLUE: Rgba = Rgba {
    r: 0,
    g: 0,
    b: 255,
    a: 255,
};

/// Parses `#rrggbb` into an opaque colour.
pub fn parse_color(s: &str) -> Option<Rgba> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some(Rgba {
        r: channel(0)?,
        g: channel(2)?,
        b: channel(4)?,
        a: 255,
    })
}

/// A square-cornered rectangle in one colour.
pub fn solid_rect(x: f32, y: f32, width: f32, height: f32, color: Rgba) -> DrawCommand {
    DrawCommand::Rect(RectCommand {
        bounds: Rect {
            x,
            y,
            width,
            height,
        },
        radius: 0.0,
        fill: Fill::Solid(color),
    })
}

/// One rectangle `width` wide (clamped to the layer) and the full layer height.
pub fn fill_width(width: f32, layer_width: u32, layer_height: u32, color: Rgba) -> RenderOutput {
    let width = width.clamp(0.0, layer_width as f32);
    RenderOutput::Commands(vec![solid_rect(
        0.0,
        0.0,
        width,
        layer_height as f32,
        color,
    )])
}

/// One rectangle covering the whole layer.
pub fn fill_layer(layer_width: u32, layer_height: u32, color: Rgba) -> RenderOutput {
    fill_width(layer_width as f32, layer_width, layer_height, color)
}

thread_local! {
    /// Render calls so far, plus whatever a previous version handed over.
    static RENDERS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one render call and returns the new total (1 on the first call).
pub fn count_render() -> u64 {
    RENDERS.with(|r| {
        let n = r.get().saturating_add(1);
        r.set(n);
        n
    })
}

/// The render total so far.
pub fn renders() -> u64 {
    RENDERS.with(Cell::get)
}

/// `snapshot`: the render total as `{"renders":N}`.
pub fn snapshot() -> Option<String> {
    Some(format!("{{\"renders\":{}}}", renders()))
}

/// `restore`: parses `{"renders":N}` and adds N to the render total.
pub fn restore(state: &str) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(state).map_err(|e| format!("state is not JSON: {e}"))?;
    let handed = value
        .get("renders")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| "state has no unsigned integer \"renders\"".to_string())?;
    RENDERS.with(|r| r.set(r.get().saturating_add(handed)));
    Ok(())
}

/// Reads `"showRenders": true` from a params object.
pub fn show_renders(params: &serde_json::Value) -> bool {
    params
        .get("showRenders")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Parses a params string that must be a JSON object.
pub fn parse_object(params: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_json::from_str(params).map_err(|e| format!("params are not JSON: {e}"))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("params must be a JSON object".to_string())
    }
}

/// Recursion the optimiser can neither turn into a loop nor shrink: each frame keeps a
/// 4 KiB array alive across the call, and the caller uses the result. Overflows the stack
/// (a trap) long before `depth` gets anywhere near `u64::MAX`.
#[inline(never)]
pub fn dive(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let mut pad = [0_u8; 4096];
    pad[(depth % 4096) as usize] = depth as u8;
    black_box(&mut pad);
    let below = dive(black_box(depth + 1));
    below.wrapping_add(u64::from(pad[(below % 4096) as usize]))
}
