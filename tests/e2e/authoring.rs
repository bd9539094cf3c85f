//! Writing a template from scratch: `stream-manager template new` scaffolds a crate that
//! builds for wasm32-wasip2 as it is and passes `template check`, with a params schema
//! derived from its Rust type that the host enforces; bad names and occupied folders are
//! refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::TempDir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stream-manager"))
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `stream-manager template new ARGS…`.
fn template_new(args: &[&str], dir: &Path) -> Output {
    bin()
        .args(["template", "new"])
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("stream-manager runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the crate at `dir` for wasm32-wasip2 as an author would and returns the
/// component. The target folder is shared between runs (the SDK and its dependencies are
/// built once), and the lockfile is the bundled templates' (same dependencies, so the
/// build needs no registry index update and uses versions the project has built).
fn build_component(dir: &Path, lib_name: &str) -> PathBuf {
    std::fs::copy(root().join("templates/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = root().join("target/scaffold-test");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        // The outer build's settings are not for the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building the new template\n{}",
        text(&out)
    );
    target.join(format!("wasm32-wasip2/release/{lib_name}.wasm"))
}

/// The numbers of "N drawn, M unchanged" in `template check`'s summary.
fn drawn_and_unchanged(summary: &str) -> (u32, u32) {
    let words: Vec<&str> = summary.split_whitespace().collect();
    let before = |word: &str| {
        let i = words
            .iter()
            .position(|w| w.trim_end_matches([',', ';']) == word)
            .unwrap_or_else(|| panic!("no {word:?} in {summary}"));
        words[i - 1].parse::<u32>().unwrap()
    };
    (before("drawn"), before("unchanged"))
}

#[test]
fn a_new_template_builds_and_passes_check() {
    let tmp = TempDir::new("authoring");
    let out = template_new(&["hello-card"], tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    let dir = tmp.join("hello-card");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello_card.wasm"),
        "{}",
        text(&out)
    );
    for file in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for command in [
        "cargo build --release --target wasm32-wasip2",
        "stream-manager template check target/wasm32-wasip2/release/hello_card.wasm",
        "stream-manager template render",
        "stream-manager template preview target/wasm32-wasip2/release/hello_card.wasm --watch",
        "POST http://127.0.0.1:4200/api/templates",
    ] {
        assert!(
            readme.contains(command),
            "README lacks {command:?}:\n{readme}"
        );
    }

    let wasm = build_component(&dir, "hello_card");

    // It loads, describes itself with the derived schema and renders within the limits;
    // once faded in it answers `Unchanged`.
    let out = bin()
        .args(["template", "check", "--frames", "60"])
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (info, summary) = stdout
        .split_once("\n60 frames")
        .unwrap_or_else(|| panic!("{}", text(&out)));
    let info: serde_json::Value = serde_json::from_str(info).unwrap();
    assert_eq!(info["name"], "hello-card", "{info}");
    assert_eq!(info["apiVersion"], "0.2.0", "{info}");
    let schema = &info["paramsSchema"];
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{schema}"
    );
    assert_eq!(schema["title"], "hello-card", "{schema}");
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    assert_eq!(
        schema["properties"]["textColor"]["pattern"],
        "^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"
    );
    assert_eq!(schema["properties"]["text"]["maxLength"], 200, "{schema}");
    assert_eq!(
        info["defaultParams"]["text"], "Hello from hello-card",
        "{info}"
    );
    let (drawn, unchanged) = drawn_and_unchanged(summary);
    assert!(drawn >= 1 && unchanged >= 30, "{summary}");

    // Params are checked against the derived schema: a good update passes, a value out
    // of its range, a bad colour or an unknown field is refused.
    let check = |params: &str| {
        bin()
            .args(["template", "check", "--frames", "2", "--params", params])
            .arg(&wasm)
            .output()
            .unwrap()
    };
    let out = check(r##"{"text": "Hi", "textColor": "#ff0000", "textScale": 0.8}"##);
    assert!(out.status.success(), "{}", text(&out));
    for bad in [
        r#"{"textScale": 5}"#,
        r#"{"textColor": "red"}"#,
        r#"{"text": "Hi", "colour": "red"}"#,
    ] {
        let out = check(bad);
        assert!(!out.status.success(), "{bad} accepted\n{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--params"),
            "{bad}\n{}",
            text(&out)
        );
    }
}

#[test]
fn template_new_refuses_a_bad_name() {
    let tmp = TempDir::new("authoring-names");
    for name in ["Hello", "hello_card", "2d", "card-", "fn", "a b", ""] {
        let out = template_new(&[name], tmp.path());
        assert!(!out.status.success(), "{name:?} accepted\n{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("invalid template name"),
            "{name:?}\n{}",
            text(&out)
        );
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing is written: {left:?}");
}

#[test]
fn template_new_refuses_a_folder_in_use_and_a_wrong_sdk() {
    let tmp = TempDir::new("authoring-dirs");
    let taken = tmp.join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let out = template_new(&["taken"], tmp.path());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(!taken.join("Cargo.toml").exists());

    // An empty folder of that name is fine.
    std::fs::create_dir_all(tmp.join("empty")).unwrap();
    let out = template_new(&["empty"], tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(tmp.join("empty/src/lib.rs").is_file());

    // --sdk must be the SDK.
    let out = bin()
        .args(["template", "new", "elsewhere", "--sdk"])
        .arg(tmp.path())
        .arg("--dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the guest SDK"),
        "{}",
        text(&out)
    );
    assert!(!tmp.join("elsewhere").exists());
    // The SDK of this checkout, given explicitly, is written into Cargo.toml as an
    // absolute path.
    let sdk = root().join("plugins/sdk");
    let out = bin()
        .args(["template", "new", "explicit", "--sdk"])
        .arg(&sdk)
        .arg("--dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let manifest = std::fs::read_to_string(tmp.join("explicit/Cargo.toml")).unwrap();
    let sdk = std::fs::canonicalize(sdk).unwrap();
    assert!(
        manifest.contains(&format!("path = \"{}\"", sdk.display())),
        "{manifest}"
    );
}
