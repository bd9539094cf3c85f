//! Scenes for the unit tests.

use crate::{Layer, Position};

/// A 40x40 solid rectangle layer at (`x`, 10).
pub fn rect_layer(id: &str, x: f32, color: &str, z: i32) -> Layer {
    let position = Position {
        x,
        y: 10.0,
        width: 40.0,
        height: 40.0,
        rotation: 0.0,
        opacity: 1.0,
        z_index: z,
    };
    Layer::rect(id, position, color)
}
