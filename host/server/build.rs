//! Embeds the admin console (`web/`) into the binary: writes `$OUT_DIR/console_files.rs`, a
//! table of every file under `web/` (path relative to it, `include_bytes!` of its served
//! form, see `src/api/web_text.rs`), sorted, so that the binary serves exactly what is in
//! the directory, with no list to keep.

use std::path::{Path, PathBuf};

#[path = "src/api/web_text.rs"]
mod web_text;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let served = out.join("web");
    let mut table = String::from("&[\n");
    for path in &files {
        // Directories are watched too, so an added or removed file rebuilds the table.
        if let Some(dir) = path.parent() {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .strip_prefix(&root)
            .expect("under web/")
            .to_str()
            .expect("UTF-8 file names under web/")
            .replace('\\', "/");
        let bytes = std::fs::read(path).expect("a readable file under web/");
        let body = match String::from_utf8(bytes) {
            Ok(text) => web_text::served(&name, &text).into_bytes(),
            Err(e) => e.into_bytes(),
        };
        let copy = served.join(&name);
        std::fs::create_dir_all(copy.parent().expect("a folder")).expect("OUT_DIR is writable");
        std::fs::write(&copy, body).expect("OUT_DIR is writable");
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}) as &[u8]),\n",
            copy.display().to_string()
        ));
    }
    table.push(']');
    std::fs::write(out.join("console_files.rs"), table).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
