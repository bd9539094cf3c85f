//! The renderer: scenes and their templates into frames. [`compositor`] draws the scene on
//! air into each frame (layer caches, transitions, tweens, template layers under their
//! budgets); [`slot`] hands new scenes to the render thread at a frame boundary.
//!
//! Owns: the render thread's per-frame work. Depends on `sm-compose`, `sm-scene` and
//! `sm-plugin-host`. Must not depend on FFmpeg, axum or the server's state store: the
//! pipeline in the server drives it on its clock and takes the frames it fills.

pub mod compositor;
pub mod slot;

pub use slot::{OnAir, SceneSlot, Templates};
