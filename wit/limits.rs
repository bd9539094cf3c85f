// The limits a template's draw commands must keep, in one place for the host and the guest
// SDK. Both `include!` this file (the host in `compose::commands`, the SDK in `canvas`), so
// the SDK's `Canvas` clamps to exactly what the host accepts. Changing a number here changes
// both; docs/templates.md lists them for authors.
//
// This file holds constants only: no `use`, no items that need a crate.

/// Most draw commands in one frame.
pub const MAX_COMMANDS: usize = 10_000;
/// Most path segments in one frame (all paths together).
pub const MAX_PATH_SEGMENTS: usize = 100_000;
/// Most bytes (UTF-8) of text in one frame (all runs together).
pub const MAX_FRAME_TEXT_BYTES: usize = 64 * 1024;
/// Most bytes (UTF-8) in one run of text.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Deepest nesting of `save`.
pub const MAX_SAVE_DEPTH: usize = 64;
/// Largest magnitude of any number in a draw command (coordinates, sizes, radii, matrix
/// entries).
pub const MAX_COORDINATE: f32 = 100_000.0;
/// Largest text size, pixels per em (before the transform). Sizes must be above 0.
pub const MAX_TEXT_SIZE: f32 = 2000.0;
/// Widest stroke, pixels (before the transform).
pub const MAX_STROKE_WIDTH: f32 = 1000.0;
/// Fewest stops of a gradient.
pub const MIN_GRADIENT_STOPS: usize = 2;
/// Most stops of a gradient.
pub const MAX_GRADIENT_STOPS: usize = 16;
/// Longest font family name, bytes.
pub const MAX_FONT_NAME_BYTES: usize = 256;
/// Longest asset id, bytes.
pub const MAX_ASSET_ID_BYTES: usize = 128;
