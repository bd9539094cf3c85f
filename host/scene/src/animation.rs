//! Animations of a layer's position: easing curves and tweens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::Position;

/// How an animated change progresses over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Easing {
    /// Constant speed.
    #[default]
    Linear,
    /// Starts slow.
    EaseIn,
    /// Ends slow.
    EaseOut,
    /// Starts and ends slow.
    EaseInOut,
}

impl Easing {
    /// Progress at time `t` (both 0..=1).
    pub fn apply(self, t: f32) -> f32 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Self::Linear => t,
            Self::EaseIn => t * t,
            Self::EaseOut => 1.0 - (1.0 - t) * (1.0 - t),
            Self::EaseInOut if t < 0.5 => 2.0 * t * t,
            Self::EaseInOut => 1.0 - (-2.0 * t + 2.0).powi(2) / 2.0,
        }
    }
}

/// `{"durationMs", "easing"}` of an animated layer change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Animate {
    /// Duration, 0..=60000 ms.
    #[schema(maximum = 60_000)]
    pub duration_ms: u32,
    /// Default `linear`.
    #[serde(default)]
    pub easing: Easing,
}

/// A layer's position moving from `from` to `to` (position, size, rotation, opacity).
#[derive(Debug, Clone, PartialEq)]
pub struct Tween {
    /// The layer.
    pub layer: String,
    /// Where it starts.
    pub from: Position,
    /// Where it ends (the layer's stored position).
    pub to: Position,
    /// Duration in milliseconds.
    pub duration_ms: u32,
    /// Progress curve.
    pub easing: Easing,
}

impl Position {
    /// The position a fraction `t` of the way to `to` (the stacking order jumps to `to`'s).
    pub fn lerp(&self, to: &Position, t: f32) -> Position {
        let mix = |a: f32, b: f32| a + (b - a) * t;
        Position {
            x: mix(self.x, to.x),
            y: mix(self.y, to.y),
            width: mix(self.width, to.width),
            height: mix(self.height, to.height),
            rotation: mix(self.rotation, to.rotation),
            opacity: mix(self.opacity, to.opacity),
            z_index: to.z_index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rect_layer;

    #[test]
    fn easings_run_from_zero_to_one() {
        for e in [
            Easing::Linear,
            Easing::EaseIn,
            Easing::EaseOut,
            Easing::EaseInOut,
        ] {
            assert_eq!((e.apply(0.0), e.apply(1.0)), (0.0, 1.0), "{e:?}");
            assert!(e.apply(0.25) < e.apply(0.75), "{e:?} increases");
        }
        assert!(Easing::EaseIn.apply(0.5) < 0.5 && Easing::EaseOut.apply(0.5) > 0.5);
        let a = rect_layer("a", 0.0, "#000000", 1).position;
        let b = Position {
            x: 100.0,
            opacity: 0.0,
            z_index: 5,
            ..a.clone()
        };
        let mid = a.lerp(&b, 0.5);
        assert_eq!((mid.x, mid.opacity, mid.z_index), (50.0, 0.5, 5));
    }
}
