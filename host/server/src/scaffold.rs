//! `stream-manager template new NAME`: writes a template crate that builds as it is
//! (`cargo build --release --target wasm32-wasip2`) and passes `stream-manager template
//! check`, for an author to start from.
//!
//! The files are templates in `scaffold/` (`include_str!`), filled in by plain
//! replacement of `{{…}}` placeholders: they stay readable and are checked end to end by
//! building the result (`tests/e2e/authoring.rs`) rather than by a template engine.
//!
//! The crate depends on the guest SDK by path. By default that is the SDK of the checkout
//! this binary was built from (known at compile time), which exists for a developer's
//! own build; an installed binary, whose checkout is gone, needs `--sdk`. A path is
//! written absolute, so the new crate may live anywhere.

use std::path::{Path, PathBuf};

/// The SDK of the checkout this binary was built from (it may not exist where it runs).
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk");

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("scaffold/lib.rs.tmpl");
const README_MD: &str = include_str!("scaffold/README.md.tmpl");
const GITIGNORE: &str = include_str!("scaffold/gitignore.tmpl");

/// Longest template name (the server takes names of up to 64 bytes).
const MAX_NAME: usize = 64;

/// Names a crate may not have: Rust keywords (the library is named after the crate) and
/// the built-in crates.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc-macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Type names the generated `lib.rs` uses or the prelude has: a template type named
/// after the crate gets a `Template` suffix instead of clashing with one.
const TAKEN_TYPES: &[&str] = &[
    "Canvas",
    "Color",
    "Frame",
    "Info",
    "JsonSchema",
    "Render",
    "Size",
    "Template",
    "Params",
    "Serialize",
    "Deserialize",
    "Box",
    "Clone",
    "Copy",
    "Debug",
    "Default",
    "Drop",
    "Eq",
    "Err",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "Into",
    "Iterator",
    "None",
    "Ok",
    "Option",
    "PartialEq",
    "Result",
    "Send",
    "Sized",
    "Some",
    "String",
    "Sync",
    "ToOwned",
    "ToString",
    "Vec",
];

/// Arguments of `template new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Name of the template and of its crate: lowercase letters, digits and `-`, starting
    /// with a letter, at most 64 bytes.
    pub name: String,
    /// The folder to create the crate's folder `NAME` in (default: the current one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The guest SDK (`plugins/sdk` of a stream-manager checkout) to depend on; default:
    /// the one of the checkout this binary was built from, when it exists.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// Why no crate was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot name a template crate.
    #[error("invalid template name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    /// The crate's folder exists and holds something.
    #[error("{} already exists and is not empty; choose another NAME or --dir", .0.display())]
    NotEmpty(PathBuf),
    /// No SDK given and the built-in one is not there.
    #[error(
        "the guest SDK of the checkout this binary was built from ({}) is not there; \
         pass --sdk PATH/TO/stream-manager/plugins/sdk",
        .0.display()
    )]
    NoSdk(PathBuf),
    /// `--sdk` is not the SDK.
    #[error("--sdk {}: not the guest SDK (no Cargo.toml of stream-manager-sdk there)", .0.display())]
    NotSdk(PathBuf),
    /// A path cannot be written into `Cargo.toml`.
    #[error("{}: the path is not valid UTF-8", .0.display())]
    NotUtf8(PathBuf),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `name` can name a template crate.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |reason: &str| {
        Err(ScaffoldError::InvalidName {
            name: name.chars().take(80).collect(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return invalid("it must be 1 to 64 bytes long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("use only lowercase letters (a-z), digits and '-'");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("it must start with a letter");
    }
    if name.ends_with('-') {
        return invalid("it must not end with '-'");
    }
    if RESERVED.contains(&name) {
        return invalid("it is a Rust keyword or the name of a built-in crate");
    }
    Ok(())
}

/// The name of the template's type: `name` in upper camel case (`lower-third` →
/// `LowerThird`), unless that clashes with a name the generated code uses.
fn type_name(name: &str) -> String {
    let camel: String = name
        .split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if TAKEN_TYPES.contains(&camel.as_str()) {
        camel + "Template"
    } else {
        camel
    }
}

/// `s` as a TOML basic string, quotes included.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The SDK to depend on, as an absolute path.
fn sdk_path(sdk: Option<&Path>) -> Result<PathBuf, ScaffoldError> {
    let (path, given) = match sdk {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(BUILT_SDK), false),
    };
    let manifest = path.join("Cargo.toml");
    let is_sdk = std::fs::read_to_string(&manifest)
        .is_ok_and(|text| text.contains("name = \"stream-manager-sdk\""));
    if !is_sdk {
        return Err(if given {
            ScaffoldError::NotSdk(path)
        } else {
            ScaffoldError::NoSdk(path)
        });
    }
    std::fs::canonicalize(&path).map_err(io(&path))
}

/// Whether `dir` exists with something in it.
fn is_non_empty_dir(dir: &Path) -> Result<bool, ScaffoldError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        // A file of that name, or a folder that cannot be read: not a place to write to.
        Err(_) => Ok(dir.exists()),
    }
}

/// The files of a new template crate: (path in the crate, contents).
pub fn files(name: &str, sdk: &Path) -> Result<Vec<(&'static str, String)>, ScaffoldError> {
    check_name(name)?;
    let sdk = sdk
        .to_str()
        .ok_or_else(|| ScaffoldError::NotUtf8(sdk.to_path_buf()))?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{lib_name}}", &name.replace('-', "_"))
            .replace("{{type}}", &type_name(name))
            .replace("{{sdk}}", &toml_string(sdk))
    };
    Ok(vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("README.md", fill(README_MD)),
        (".gitignore", fill(GITIGNORE)),
    ])
}

/// Writes the template crate `args.name` into `args.dir` (default: the current folder)
/// and returns its folder.
pub fn create(args: &NewArgs) -> Result<PathBuf, ScaffoldError> {
    check_name(&args.name)?;
    let parent = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = parent.join(&args.name);
    if is_non_empty_dir(&root)? {
        return Err(ScaffoldError::NotEmpty(root));
    }
    let sdk = sdk_path(args.sdk.as_deref())?;
    let files = files(&args.name, &sdk)?;
    for (path, contents) in files {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(&path, contents).map_err(io(&path))?;
    }
    Ok(root)
}

/// Runs `template new`: writes the crate and says what to do next.
pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    let root = create(args)?;
    let lib = args.name.replace('-', "_");
    println!(
        "Created template {name:?} in {dir}. Next:\n\n    cd {dir}\n    cargo build --release \
         --target wasm32-wasip2\n    stream-manager template check \
         target/wasm32-wasip2/release/{lib}.wasm\n\nREADME.md there says how to render and \
         upload it.",
        name = args.name,
        dir = root.display(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_crate_names() {
        for ok in ["a", "hello", "lower-third", "score-board-2", "x1"] {
            check_name(ok).unwrap();
        }
        let long = "a".repeat(MAX_NAME + 1);
        for bad in [
            "",
            "Hello",
            "hello_world",
            "2fast",
            "-x",
            "x-",
            "a b",
            "é",
            "../x",
            "fn",
            "test",
            &long,
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid template name"), "{e}");
        }
    }

    #[test]
    fn type_names_are_camel_case_and_clash_free() {
        assert_eq!(type_name("lower-third"), "LowerThird");
        assert_eq!(type_name("x2"), "X2");
        assert_eq!(type_name("a--b"), "AB");
        assert_eq!(type_name("canvas"), "CanvasTemplate");
        assert_eq!(type_name("template"), "TemplateTemplate");
    }

    #[test]
    fn paths_are_quoted_for_toml() {
        assert_eq!(toml_string("/a/b"), r#""/a/b""#);
        assert_eq!(toml_string(r#"C:\x "y""#), r#""C:\\x \"y\"""#);
        let value: toml::Value =
            toml::from_str(&format!("p = {}", toml_string("odd\\ \"name\"\n"))).unwrap();
        assert_eq!(value["p"].as_str(), Some("odd\\ \"name\"\n"));
    }

    #[test]
    fn every_placeholder_is_filled() {
        let files = files("my-badge", Path::new("/sdk")).unwrap();
        for (path, text) in &files {
            assert!(!text.contains("{{"), "{path}: {text}");
        }
        let manifest: toml::Value = toml::from_str(&files[0].1).unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("my-badge"));
        assert_eq!(
            manifest["dependencies"]["stream-manager-sdk"]["path"].as_str(),
            Some("/sdk")
        );
        assert!(files[1].1.contains("struct MyBadge {"));
        assert!(files[2].1.contains("release/my_badge.wasm"));
    }
}
