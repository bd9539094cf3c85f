//! The WIT versions the host serves, one module each (`since_v0_1_0` for
//! `wit/since_v0.1.0`). Each has its own `bindgen!`; when a new version is added, the older
//! modules' imports delegate to the newest and their outputs are converted to the same
//! composition commands.

pub mod since_v0_1_0;

/// The export a scene template of version 0.1.0 provides.
pub const TEMPLATE_EXPORT_V0_1_0: &str = "stream-manager:plugin/template@0.1.0";
/// The export an asset loader of version 0.1.0 provides.
pub const LOADER_EXPORT_V0_1_0: &str = "stream-manager:plugin/loader@0.1.0";
/// API versions this host serves.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];
