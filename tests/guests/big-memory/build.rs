//! Makes the core module declare 65 535 pages (4 GiB − 64 KiB) of initial linear memory.
//! wasm-ld takes `--initial-memory` in bytes, a multiple of the 64 KiB page;
//! `wasm-component-ld` passes it through to wasm-ld.
//!
//! Not the full 4 GiB (65 536 pages): wasm-ld accepts `--initial-memory=4294967296`, but
//! then the heap end (`__heap_end`, memory size × 64 KiB) wraps to 0 in 32 bits and the
//! allocator hits `unreachable` on the first allocation (in `describe`), so the template
//! could never run even on a host without a memory cap. One page less, it runs (green) on
//! an uncapped host, and is still about 64 times the default cap.

fn main() {
    println!("cargo::rustc-link-arg-cdylib=--initial-memory=4294901760");
    println!("cargo::rerun-if-changed=build.rs");
}
