//! The guest SDK for stream-manager plugins: scene templates and asset loaders.
//!
//! An asset loader, which decodes uploads of a format the host does not know, is written
//! with the [`loader`] module and exported with [`export_loader!`]; the rest of these docs
//! are about templates.
//!
//! A scene template is a WebAssembly component that draws a layer of a scene, frame by
//! frame, from its params (JSON, set by the operator and updated live) and the time. This
//! crate lets you write one in plain Rust: implement [`Template`], call
//! [`export_template!`] once, and build with
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! ```
//!
//! The crate type must be `cdylib`; the `.wasm` that lands in
//! `target/wasm32-wasip2/release/` is the component to upload.
//!
//! # Lifecycle
//!
//! 1. [`Template::info`] (`describe`): name, version, default params and default size,
//!    plus the params schema, which the SDK derives from [`Template::Params`] (see
//!    [Params schema](#params-schema)). Called once after loading; must not depend on
//!    params.
//! 2. [`Template::new`] on the first `configure`, then [`Template::configure`] on every
//!    live update. Params arrive already checked against the schema and are deserialized
//!    into [`Template::Params`]; a deserialize error refuses the update, naming the error.
//! 3. [`Template::render`] once per frame with a [`Frame`] and an empty [`Canvas`]:
//!    draw and answer [`Render::Drawn`], or answer [`Render::Unchanged`] to have the host
//!    reuse the last picture (cheap; do it whenever nothing moved).
//! 4. On a hot swap, [`Template::snapshot`] on the old version and
//!    [`Template::restore`] on the new one, after its first `configure`.
//!
//! If the host renders before configuring, the SDK configures with the default params.
//! The first answer of an instance is always sent as a picture, even if the template
//! said `Unchanged`.
//!
//! # Play and stop
//!
//! A layer is put on air (played) and taken off (stopped) by the operator or a
//! controller; a layer starts playing unless it was created stopped. The host calls
//! [`Template::play`] when it goes on air and [`Template::stop`] when it goes off, each
//! with the layer time ([`Frame::time_ms`]) it happened at, so a template can animate in
//! and out. `play` may be given a time earlier than the next frame: a new instance (after
//! a hot swap or a fault) is told when the layer went on air, so it shows what it would
//! have reached rather than animating in again. Animate from these times, for instance
//! with [`anim::Presence`], which moves between hidden and shown and turns round mid-way.
//!
//! Off air the SDK draws nothing, without calling [`Template::render`]: before the first
//! `play`, and from [`Template::out_ms`] after a `stop` (0 by default, so a template
//! that does not animate out is gone from the frame of the stop). During its out
//! animation the template is rendered as usual; it may answer `Unchanged` again once it
//! is back on air: the SDK keeps its last picture.
//!
//! # Params schema
//!
//! The host checks params against a JSON Schema (draft 2020-12) before
//! [`Template::configure`] sees them. You do not write it: derive [`JsonSchema`] (from
//! [`schemars`], re-exported here) next to serde's `Deserialize` on your params type, and
//! the SDK sends [`params_schema::<Params>()`](params_schema) in `describe`, with the
//! template's name as its `title`. The derive follows the serde attributes, so
//! `#[serde(default, deny_unknown_fields, rename_all = "camelCase")]` gives an object with
//! camel-case properties, each with its default, none required, and
//! `"additionalProperties": false`. Say what serde cannot know with `#[schemars(...)]`:
//! `range(min = 0, max = 5000)` on a number, `length(max = 200)` on a string or a list,
//! `inner(length(max = 100))` on the strings of a list. [`Color`] is a `"#rrggbb"` /
//! `"#rrggbbaa"` string with a pattern. Doc comments on fields become descriptions for
//! operators. See [`params_schema`] for what the generated schema looks like.
//!
//! # Limits
//!
//! A template is untrusted: no files, network, environment or arguments; memory is
//! capped (64 MiB by default); each call has a time budget (by default a quarter of the
//! frame interval). Its draw commands must keep the limits of `wit/limits.rs`, one file
//! that the host's validator and this SDK both include (re-exported here as [`limits`];
//! a frame outside them is refused whole): at most [`MAX_COMMANDS`](limits::MAX_COMMANDS)
//! (10 000) commands, [`MAX_PATH_SEGMENTS`](limits::MAX_PATH_SEGMENTS) (100 000) path
//! segments and [`MAX_FRAME_TEXT_BYTES`](limits::MAX_FRAME_TEXT_BYTES) (64 KiB) of text
//! per frame, [`MAX_TEXT_BYTES`](limits::MAX_TEXT_BYTES) (4096) per run of text;
//! [`MAX_SAVE_DEPTH`](limits::MAX_SAVE_DEPTH) (64) nested saves; every number finite and
//! within ±[`MAX_COORDINATE`](limits::MAX_COORDINATE) (100 000); text sizes above 0 and at
//! most [`MAX_TEXT_SIZE`](limits::MAX_TEXT_SIZE) (2000); stroke widths at most
//! [`MAX_STROKE_WIDTH`](limits::MAX_STROKE_WIDTH) (1000); gradients of
//! [`MIN_GRADIENT_STOPS`](limits::MIN_GRADIENT_STOPS) (2) to
//! [`MAX_GRADIENT_STOPS`] (16) stops; font family names of at
//! most [`MAX_FONT_NAME_BYTES`](limits::MAX_FONT_NAME_BYTES) (256) bytes; asset ids of 1 to
//! [`MAX_ASSET_ID_BYTES`](limits::MAX_ASSET_ID_BYTES) (128) bytes; transforms invertible.
//! [`Canvas`] clamps to exactly these limits by construction (see its
//! [module docs](canvas)), so a slip costs a detail, not the frame. A call that traps or
//! runs over budget costs the layer that frame; repeated faults quarantine the instance.
//! A panic is written to the server log before the instance traps.
//!
//! # Example
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use stream_manager_sdk::anim::progress;
//! use stream_manager_sdk::{
//!     Canvas, Color, Frame, Info, JsonSchema, Render, Size, Template, export_template,
//!     fit_text,
//! };
//!
//! /// The params: every field has a default, so a layer may give any of them. The
//! /// schema the host checks them against is derived from this type.
//! #[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
//! struct Params {
//!     /// The line of text.
//!     #[schemars(length(max = 200))]
//!     text: String,
//!     text_color: Color,
//! }
//!
//! impl Default for Params {
//!     fn default() -> Params {
//!         Params {
//!             text: "Hello".into(),
//!             text_color: Color::WHITE,
//!         }
//!     }
//! }
//!
//! struct Hello {
//!     params: Params,
//!     /// Opacity and layer size of the last picture; `None` when something changed.
//!     last: Option<(f32, u32, u32)>,
//! }
//!
//! impl Template for Hello {
//!     type Params = Params;
//!
//!     fn info() -> Info {
//!         Info {
//!             name: "hello".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             description: "A line of text that fades in".into(),
//!             default_params: serde_json::to_value(Params::default()).unwrap_or_default(),
//!             default_size: Size::new(640, 120),
//!         }
//!     }
//!
//!     fn new(params: Params) -> Result<Hello, String> {
//!         Ok(Hello { params, last: None })
//!     }
//!
//!     fn configure(&mut self, params: Params) -> Result<(), String> {
//!         if params != self.params {
//!             self.params = params;
//!             self.last = None;
//!         }
//!         Ok(())
//!     }
//!
//!     fn render(&mut self, frame: &Frame, canvas: &mut Canvas) -> Render {
//!         // Fade in over the first second on air, then stand still.
//!         let opacity = progress(frame.time_ms, 0.0, 1000.0);
//!         let key = (opacity, frame.width, frame.height);
//!         if self.last == Some(key) {
//!             return Render::Unchanged;
//!         }
//!         self.last = Some(key);
//!
//!         let (w, h) = (frame.w(), frame.h());
//!         let (size, m) = fit_text(&self.params.text, h * 0.6, w * 0.9, None);
//!         canvas.opacity(opacity);
//!         canvas.text(
//!             (w - m.width) / 2.0,
//!             m.baseline_centered_on(h / 2.0),
//!             &self.params.text,
//!             size,
//!             self.params.text_color,
//!         );
//!         Render::Drawn
//!     }
//! }
//!
//! export_template!(Hello);
//! ```

#![deny(missing_docs)]

pub mod anim;
pub mod canvas;
mod color;
mod host;
pub mod limits;
pub mod loader;
#[doc(hidden)]
pub mod runtime;
mod schema;
pub mod testing;

#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "scene-template",
        pub_export_macro: true,
        export_macro_name: "__export_scene_template",
        default_bindings_module: "$crate::bindings",
        additional_derives: [PartialEq],
    });
}

/// The bindings of the `asset-loader` world, apart from the template's: each world's
/// exports are described to the component linker only by its own export macro, so a
/// template component exports only `template` and a loader component only `loader`. The
/// shared interfaces (`types`, `host`) are those of [`bindings`], so a loader draws with
/// the same [`Canvas`].
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod loader_bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "asset-loader",
        pub_export_macro: true,
        export_macro_name: "__export_asset_loader",
        default_bindings_module: "$crate::loader_bindings",
        with: {
            "stream-manager:plugin/types@0.2.0": crate::bindings::stream_manager::plugin::types,
            "stream-manager:plugin/host@0.2.0": crate::bindings::stream_manager::plugin::host,
        },
    });
}

pub use canvas::{Canvas, Matrix, Path};
pub use color::{Color, ColorError, Fill, MAX_GRADIENT_STOPS, Stroke};
pub use host::{AssetInfo, AssetKind, TextMetrics, asset_info, fit_text, log, measure_text};
pub use schema::params_schema;
/// The crate that derives params schemas, for `#[schemars(...)]` attributes and hand-written
/// [`JsonSchema`] impls.
pub use schemars;
/// Derive it on [`Template::Params`] (and the types of its fields): the SDK sends the
/// schema it generates as the params schema. See [Params schema](crate#params-schema).
pub use schemars::JsonSchema;

/// The version of the plugin API (`wit/since_v0.2.0`, package
/// `stream-manager:plugin@0.2.0`) this SDK builds against. It is embedded in every
/// template and loader as the custom section `stream-manager:api-version`.
pub const API_VERSION: &str = "0.2.0";

/// A size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Size {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Size {
    /// A size of `width` × `height` pixels.
    pub const fn new(width: u32, height: u32) -> Size {
        Size { width, height }
    }
}

/// What a template says about itself (the answer to `describe`).
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    /// Short name, e.g. `"lower-third"`.
    pub name: String,
    /// The template's own version, e.g. `"1.2.0"` (`env!("CARGO_PKG_VERSION")` is handy).
    pub version: String,
    /// One line for operators.
    pub description: String,
    /// The params used when a layer gives none: a JSON object valid against the params
    /// schema (`serde_json::to_value(Params::default())` is handy). The schema itself is
    /// derived from [`Template::Params`]; see [Params schema](crate#params-schema).
    pub default_params: serde_json::Value,
    /// The size the template is designed for, used when a layer gives none.
    pub default_size: Size,
}

/// The frame being drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// Frame number on air, counting from 0 when the layer appeared.
    pub frame: u64,
    /// Milliseconds since the layer appeared (played or not), continuous across a hot swap:
    /// the clock of [`Template::play`] and [`Template::stop`]. Animate from this, not from
    /// counting calls: the host may skip frames.
    pub time_ms: f64,
    /// Wall-clock time, milliseconds since the Unix epoch (UTC).
    pub wall_clock_ms: i64,
    /// Offset of the server's local time from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Frames per second of the stream.
    pub fps: u32,
    /// Width of the layer in pixels: draw within (0, 0)–(width, height).
    pub width: u32,
    /// Height of the layer in pixels.
    pub height: u32,
}

impl Frame {
    /// The server's local time as milliseconds since the Unix epoch shifted by the UTC
    /// offset (for formatting a time of day).
    pub fn local_time_ms(&self) -> i64 {
        self.wall_clock_ms
            .saturating_add(i64::from(self.utc_offset_minutes) * 60_000)
    }

    /// Width of the layer as `f32`, for drawing.
    pub fn w(&self) -> f32 {
        self.width as f32
    }

    /// Height of the layer as `f32`, for drawing.
    pub fn h(&self) -> f32 {
        self.height as f32
    }
}

/// What [`Template::render`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    /// The picture is the same as the last one drawn: the host reuses it and whatever was
    /// drawn on the canvas is discarded.
    Unchanged,
    /// The canvas holds the new picture.
    Drawn,
}

/// A scene template. Implement it, then export it with [`export_template!`].
///
/// One instance lives per layer; all calls come from one thread, one at a time.
pub trait Template: Sized + 'static {
    /// The params, deserialized from the JSON object the host hands to `configure`.
    /// Use `#[serde(default)]` so a layer may give only some of them. Its [`JsonSchema`]
    /// (derived next to `Deserialize`) is the params schema the host checks params
    /// against, so make it precise: ranges, string lengths, `deny_unknown_fields`.
    type Params: serde::de::DeserializeOwned + JsonSchema;

    /// Name, version, description, default params and default size. Must not depend on
    /// params. (The params schema comes from [`Template::Params`].)
    fn info() -> Info;

    /// Creates the instance from its first params.
    fn new(params: Self::Params) -> Result<Self, String>;

    /// A live update of the params. On `Err` the host refuses the update with the message
    /// and the template must carry on with its previous params, so check before changing
    /// anything.
    fn configure(&mut self, params: Self::Params) -> Result<(), String>;

    /// Draws one frame on `canvas` (empty) and answers [`Render::Drawn`], or answers
    /// [`Render::Unchanged`] when the picture would be the same as the last one.
    fn render(&mut self, frame: &Frame, canvas: &mut Canvas) -> Render;

    /// The layer goes on air at layer time `at_ms` (the clock of [`Frame::time_ms`]):
    /// start the in animation there. `at_ms` is the next frame's time, or an earlier one
    /// when a new instance is told when its layer went on air (after a hot swap or a
    /// fault): show what the animation has reached by the frame's time, do not start it
    /// again. Not called again before [`stop`](Template::stop), except for such a new
    /// instance. See [Play and stop](crate#play-and-stop). The default does nothing: the
    /// template is drawn from the next frame.
    fn play(&mut self, at_ms: f64) {
        let _ = at_ms;
    }

    /// The layer goes off air at layer time `at_ms`: start the out animation there. The
    /// template is rendered for [`out_ms`](Template::out_ms) more, then the SDK draws
    /// nothing until the next [`play`](Template::play). The default does nothing.
    fn stop(&mut self, at_ms: f64) {
        let _ = at_ms;
    }

    /// How long the out animation lasts after [`stop`](Template::stop), in ms: from then
    /// the SDK draws nothing. Asked at every frame while stopped. The default, 0, has the
    /// template gone from the frame of the stop.
    fn out_ms(&self) -> f64 {
        0.0
    }

    /// Hot swap, old version: the running state to hand to the next version (a game
    /// clock, a scroll offset). The default hands over nothing.
    fn snapshot(&self) -> Option<serde_json::Value> {
        None
    }

    /// Hot swap, new version: called after the first `configure` with what the previous
    /// version's [`snapshot`](Template::snapshot) returned. On `Err` the host logs the
    /// message and the template carries on fresh. The default ignores the state.
    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}

/// Exports a [`Template`] as the component's `stream-manager:plugin/template@0.2.0`
/// interface. Call it exactly once, at the top level of the template crate.
///
/// ```ignore
/// stream_manager_sdk::export_template!(MyTemplate);
/// ```
#[macro_export]
macro_rules! export_template {
    ($template:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __STREAM_MANAGER_RUNTIME: ::core::cell::RefCell<
                    $crate::runtime::Runtime<$template>,
                > = const { ::core::cell::RefCell::new($crate::runtime::Runtime::new()) };
            }

            struct __StreamManagerExports;

            impl $crate::runtime::Guest for __StreamManagerExports {
                fn describe() -> $crate::runtime::InfoWit {
                    $crate::runtime::describe::<$template>()
                }

                fn configure(
                    params: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    __STREAM_MANAGER_RUNTIME.with(|rt| $crate::runtime::configure(rt, params))
                }

                fn render(frame: $crate::runtime::FrameInfo) -> $crate::runtime::RenderOutput {
                    __STREAM_MANAGER_RUNTIME.with(|rt| $crate::runtime::render(rt, frame))
                }

                fn snapshot() -> ::core::option::Option<::std::string::String> {
                    __STREAM_MANAGER_RUNTIME.with(|rt| $crate::runtime::snapshot(rt))
                }

                fn restore(
                    state: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    __STREAM_MANAGER_RUNTIME.with(|rt| $crate::runtime::restore(rt, state))
                }

                fn play(at_ms: f64) {
                    __STREAM_MANAGER_RUNTIME.with(|rt| $crate::runtime::play(rt, at_ms))
                }

                fn stop(at_ms: f64) {
                    __STREAM_MANAGER_RUNTIME.with(|rt| $crate::runtime::stop(rt, at_ms))
                }
            }

            $crate::bindings::__export_scene_template!(
                __StreamManagerExports with_types_in $crate::bindings
            );
        };
    };
}

/// Exports a [`Loader`](loader::Loader) as the component's
/// `stream-manager:plugin/loader@0.2.0` interface (world `asset-loader`). Call it exactly
/// once, at the top level of the loader crate, and not in a crate that exports a template.
///
/// ```ignore
/// stream_manager_sdk::export_loader!(MyLoader);
/// ```
///
/// See the [`loader`] module for an example.
#[macro_export]
macro_rules! export_loader {
    ($loader:ty) => {
        const _: () = {
            struct __StreamManagerLoaderExports;

            impl $crate::runtime::LoaderGuest for __StreamManagerLoaderExports {
                fn describe() -> $crate::runtime::LoaderInfoWit {
                    $crate::runtime::loader_describe::<$loader>()
                }

                fn decode(
                    bytes: ::std::vec::Vec<u8>,
                    options: ::std::string::String,
                ) -> ::core::result::Result<$crate::runtime::DecodedWit, ::std::string::String>
                {
                    $crate::runtime::loader_decode::<$loader>(bytes, options)
                }
            }

            $crate::loader_bindings::__export_asset_loader!(
                __StreamManagerLoaderExports with_types_in $crate::loader_bindings
            );
        };
    };
}
