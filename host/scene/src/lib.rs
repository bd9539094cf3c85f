//! The scene model (`{canvas, layers}`) that the API accepts, the store keeps and the
//! renderer draws: its types, their validation, the `{{…}}` tokens of text layers,
//! animations and transitions, and the translation of layers into draw commands.
//!
//! The canvas has its own size and is scaled onto the output frame, so a scene authored for
//! 1920×1080 plays unchanged on a 1280×720 stream.
//!
//! Owns: plain data and pure functions. Depends on `sm-compose` (the draw command types) and
//! serde/utoipa. Must not depend on the plugin runtime, the asset store, the state store,
//! FFmpeg or an async runtime: what validation needs to know about assets and templates
//! comes in through [`AssetLookup`].

mod animation;
mod draw;
mod model;
#[cfg(test)]
mod testing;
mod tokens;
mod transition;
mod validate;

pub use animation::{Animate, Easing, Tween};
pub use draw::{fit_rect, layer_commands};
pub use model::*;
pub use tokens::Tokens;
pub use transition::{Transition, TransitionKind};
pub use validate::{AssetLookup, NoAssets, SceneError, valid_id};
