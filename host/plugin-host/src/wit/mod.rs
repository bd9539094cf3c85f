//! The WIT versions the host serves, one module each (`since_v0_1_0` for
//! `wit/since_v0.1.0`, `since_v0_2_0` for `wit/since_v0.2.0`). Each has its own `bindgen!`;
//! the older modules' imports delegate to the newest, and every version's draw commands
//! are converted to the same composition commands.
//!
//! A component's version is the one its export names (`…/template@0.2.0`); the custom
//! section the SDK writes ([`crate::API_VERSION_SECTION`]) is read before compiling, to
//! refuse a version this host does not serve with a clear message, and must agree with
//! the export when present.

pub mod since_v0_1_0;
pub mod since_v0_2_0;

/// The export a scene template of version 0.1.0 provides.
pub const TEMPLATE_EXPORT_V0_1_0: &str = "stream-manager:plugin/template@0.1.0";
/// The export a scene template of version 0.2.0 provides.
pub const TEMPLATE_EXPORT_V0_2_0: &str = "stream-manager:plugin/template@0.2.0";
/// The export an asset loader of version 0.1.0 provides.
pub const LOADER_EXPORT_V0_1_0: &str = "stream-manager:plugin/loader@0.1.0";
/// The export an asset loader of version 0.2.0 provides.
pub const LOADER_EXPORT_V0_2_0: &str = "stream-manager:plugin/loader@0.2.0";
/// API versions this host serves.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];

/// A plugin API version this host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// `stream-manager:plugin@0.1.0`: no play or stop.
    V0_1_0,
    /// `stream-manager:plugin@0.2.0`: templates are played and stopped.
    V0_2_0,
}

impl ApiVersion {
    /// Every version served, oldest first.
    pub const ALL: [ApiVersion; 2] = [ApiVersion::V0_1_0, ApiVersion::V0_2_0];

    /// As written in WIT and in the API: `"0.2.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V0_1_0 => "0.1.0",
            ApiVersion::V0_2_0 => "0.2.0",
        }
    }

    /// The version named `text` (`"0.2.0"`), if served.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// The export a scene template of this version provides.
    pub fn template_export(self) -> &'static str {
        match self {
            ApiVersion::V0_1_0 => TEMPLATE_EXPORT_V0_1_0,
            ApiVersion::V0_2_0 => TEMPLATE_EXPORT_V0_2_0,
        }
    }

    /// The export an asset loader of this version provides.
    pub fn loader_export(self) -> &'static str {
        match self {
            ApiVersion::V0_1_0 => LOADER_EXPORT_V0_1_0,
            ApiVersion::V0_2_0 => LOADER_EXPORT_V0_2_0,
        }
    }

    /// Whether templates of this version are told when they are played and stopped (else
    /// the host shows a stopped layer's template as nothing, without calling it).
    pub fn plays(self) -> bool {
        self >= ApiVersion::V0_2_0
    }

    /// The newest version whose template export is among `exports`.
    pub fn of_template(exports: &[String]) -> Option<ApiVersion> {
        Self::ALL
            .into_iter()
            .rev()
            .find(|v| exports.iter().any(|e| e == v.template_export()))
    }

    /// The newest version whose loader export is among `exports`.
    pub fn of_loader(exports: &[String]) -> Option<ApiVersion> {
        Self::ALL
            .into_iter()
            .rev()
            .find(|v| exports.iter().any(|e| e == v.loader_export()))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exports a component of some world must have, for messages: each served version's,
/// newest first (`a` or `b`).
pub(crate) fn any_of(export: fn(ApiVersion) -> &'static str) -> String {
    ApiVersion::ALL
        .into_iter()
        .rev()
        .map(export)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Checks that the version a component's section declares (if any) is the one its
/// exports are of.
pub(crate) fn agree(declared: Option<&str>, exported: ApiVersion) -> Result<(), String> {
    match declared {
        Some(d) if d != exported.as_str() => Err(format!(
            "declares plugin API {d} (custom section `{}`) but exports the {exported} \
             interface: rebuild it against one version",
            crate::API_VERSION_SECTION
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn a_template_is_of_the_version_its_export_names() {
        assert_eq!(
            ApiVersion::of_template(&names(&[TEMPLATE_EXPORT_V0_1_0])),
            Some(ApiVersion::V0_1_0)
        );
        assert_eq!(
            ApiVersion::of_template(&names(&["wasi:cli/run@0.2.6", TEMPLATE_EXPORT_V0_2_0])),
            Some(ApiVersion::V0_2_0)
        );
        assert_eq!(
            ApiVersion::of_template(&names(&[LOADER_EXPORT_V0_2_0])),
            None
        );
        assert_eq!(
            ApiVersion::of_template(&names(&["stream-manager:plugin/template@0.3.0"])),
            None
        );
        assert_eq!(
            ApiVersion::of_loader(&names(&[LOADER_EXPORT_V0_1_0])),
            Some(ApiVersion::V0_1_0)
        );
        assert_eq!(
            ApiVersion::of_loader(&names(&[LOADER_EXPORT_V0_2_0])),
            Some(ApiVersion::V0_2_0)
        );
    }

    #[test]
    fn versions_read_and_play_as_documented() {
        for v in ApiVersion::ALL {
            assert_eq!(ApiVersion::parse(v.as_str()), Some(v));
            assert!(SUPPORTED_VERSIONS.contains(&v.as_str()));
        }
        assert_eq!(ApiVersion::parse("0.3.0"), None);
        assert!(!ApiVersion::V0_1_0.plays());
        assert!(ApiVersion::V0_2_0.plays());
        assert_eq!(
            any_of(ApiVersion::template_export),
            "stream-manager:plugin/template@0.2.0 or stream-manager:plugin/template@0.1.0"
        );
    }

    #[test]
    fn the_declared_version_must_be_the_exported_one() {
        assert!(agree(None, ApiVersion::V0_1_0).is_ok());
        assert!(agree(Some("0.2.0"), ApiVersion::V0_2_0).is_ok());
        let err = agree(Some("0.2.0"), ApiVersion::V0_1_0).unwrap_err();
        assert!(err.contains("declares plugin API 0.2.0"), "{err}");
        assert!(err.contains("0.1.0"), "{err}");
    }
}
