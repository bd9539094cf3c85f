//! How one scene replaces another on air.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How one scene replaces another on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum TransitionKind {
    /// At once.
    #[default]
    Cut,
    /// Cross-fade.
    Fade,
    /// The new scene pushes the old one out to the left.
    Slide,
}

/// `{"kind", "durationMs"}` of a scene change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    /// `cut`, `fade` or `slide`.
    pub kind: TransitionKind,
    /// 0..=10000 ms (ignored for `cut`). Default 500.
    #[serde(default = "half_second")]
    #[schema(maximum = 10_000)]
    pub duration_ms: u32,
}

fn half_second() -> u32 {
    500
}
