//! The template runtime: WebAssembly components run sandboxed by wasmtime.
//!
//! One [`Runtime`] owns the [`Engine`](wasmtime::Engine) (component model, epoch interruption, pooling
//! allocator), the [`Linker`](wasmtime::component::Linker) with the host imports and an empty WASI, the compiled-component
//! cache and every limit. A component is prepared once ([`Runtime::prepare`]: checked,
//! compiled or taken from the cache, described, configured and test-rendered under the
//! limits, all off the render thread) into a [`Build`]; layers instantiate a build into an
//! [`Instance`], a fresh [`Store`](wasmtime::Store) with its own memory limit, whose every call has an epoch
//! deadline (a budget of CPU time, bounded in wall time too).
//!
//! A plugin is untrusted, so a guest call never panics the host and never runs past its
//! budget: a trap, a Rust panic (an `unreachable`), a stack overflow, a memory limit hit, an
//! overrun budget or invalid output all come back as a [`Fault`], and an instance that
//! trapped is marked broken and must be replaced. The caller decides what a fault costs
//! (the compositor keeps the layer's last good picture).
//!
//! Owns: the wasmtime engine and its limits, the WIT bindings (one module per released WIT
//! version), the template registry with versions and hot swap, a template layer's life
//! on the render thread, and asset loaders ([`loader`] decodes, [`loaders`] the registry). Depends on `sm-compose` (the draw command set guests speak) and
//! `sm-scene` (a layer's template spec). Must not depend on FFmpeg, axum or the server's
//! state store: the registry persists through [`registry::TemplateStore`]. The sandbox
//! boundary is this crate's boundary.

pub mod faults;
mod host_state;
pub mod layer;
pub mod loader;
pub mod loaders;
pub mod output;
pub mod registry;
pub mod runtime;
pub mod wit;

pub use faults::{Fault, FaultKind, TemplateEvent, TemplateEventKind};
pub use host_state::HostState;
pub use runtime::{
    API_VERSION_SECTION, Build, FrameInfo, Instance, PluginError, PluginLimits, Runtime,
    TemplateInfo, readable_size,
};
