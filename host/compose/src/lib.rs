//! The composition engine: what goes on air, drawn with tiny-skia into premultiplied RGBA
//! buffers. [`commands`] is the draw command set shared by scene layers and templates (one
//! validator, one rasterizer), [`text`] shapes and rasterizes text, [`blend`] composites
//! layers into a frame, [`cost`] estimates what a command list costs to rasterize, and
//! [`Resources`] holds the images and fonts a scene draws with, and [`video`] is the mailbox
//! through which live inputs hand their pictures to the renderer.
//!
//! Owns: pixels, synchronously, on the caller's thread. Must not depend on tokio, FFmpeg,
//! wasmtime or anything else of the server: everything above builds on this crate.

pub mod blend;
pub mod commands;
pub mod cost;
pub mod resources;
mod simd;
pub mod text;
pub mod video;

pub use resources::Resources;
