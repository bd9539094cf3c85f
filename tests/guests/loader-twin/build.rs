//! Makes the core module declare 80 MiB of initial linear memory: more than a template may
//! have (64 MiB), within what a loader may (256 MiB), so uploading it as a loader shows that
//! loaders are held to their own memory limit.

fn main() {
    println!("cargo::rustc-link-arg-cdylib=--initial-memory=83886080");
    println!("cargo::rerun-if-changed=build.rs");
}
