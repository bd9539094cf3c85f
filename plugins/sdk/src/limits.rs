//! The limits the host accepts in a frame's draw commands.
//!
//! These constants are not the SDK's own: they come from `wit/limits.rs` of the
//! stream-manager checkout, the one file the host's validator (`compose::commands`) and this
//! SDK both `include!`, so [`Canvas`](crate::Canvas) clamps to exactly what the host
//! accepts. A frame outside them is refused whole by the host (the layer keeps its last
//! picture); the canvas keeps every frame inside them instead, see its
//! [module docs](crate::canvas).

include!("../../../wit/limits.rs");

/// A number made valid for the host: finite and within ±[`MAX_COORDINATE`] (not finite: 0).
pub(crate) fn coord(v: f32) -> f32 {
    if v.is_finite() {
        v.clamp(-MAX_COORDINATE, MAX_COORDINATE)
    } else {
        0.0
    }
}
