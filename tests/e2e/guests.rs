//! The WebAssembly components the tests load: the test guests of `tests/guests` (hostile
//! and probe templates) and the bundled templates of `templates/`, built once per test
//! run with `cargo build --release --target wasm32-wasip2` (a no-op when up to date).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the workspace at `dir` for wasm32-wasip2 and returns its release output folder.
fn build(dir: &Path) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        // The outer build's settings are not for the guests.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the guests in {} failed",
        dir.display()
    );
    dir.join("target/wasm32-wasip2/release")
}

/// The file of test guest `name` (e.g. `hostile`, `colour_a`).
pub fn test_guest_path(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| build(&root().join("tests/guests")));
    dir.join(format!("{name}.wasm"))
}

/// The bytes of test guest `name`.
pub fn test_guest(name: &str) -> Vec<u8> {
    let path = test_guest_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The folder holding the bundled templates' `.wasm` files.
pub fn templates_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build(&root().join("templates"))).clone()
}
