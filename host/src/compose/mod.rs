//! Composition: what goes on air, drawn with tiny-skia into premultiplied RGBA buffers.

pub mod blend;
pub mod commands;
pub mod cost;
mod simd;
pub mod text;
