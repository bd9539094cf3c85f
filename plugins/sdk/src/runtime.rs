//! The glue between the exported WIT functions and a [`Template`] or a [`Loader`]: not
//! public API.
//!
//! `export_template!` defines, in the template crate, a thread-local [`Runtime`] and a
//! small type implementing the generated `Guest` trait whose methods forward here. The
//! generic functions below are monomorphized in the template crate. `export_loader!` does
//! the same for a loader with [`loader_describe`] and [`loader_decode`], without state: each
//! decode runs in a fresh instance.
//!
//! The component is single-threaded and the host never calls into it re-entrantly, so a
//! `RefCell` is enough.

use std::cell::RefCell;
use std::sync::Once;

use crate::bindings::stream_manager::plugin::types as wit;
use crate::loader::{self, Decoded, Loader, LoaderInfo};
use crate::{Canvas, Frame, Info, Render, Template, log};

pub use crate::bindings::exports::stream_manager::plugin::template::{
    FrameInfo, Guest, Info as InfoWit, RenderOutput,
};
pub use crate::loader_bindings::exports::stream_manager::plugin::loader::{
    Decoded as DecodedWit, Guest as LoaderGuest, LoaderInfo as LoaderInfoWit,
};

/// The API version this SDK was built against, as a custom section of the core module.
/// The host reads it before compiling a component and refuses versions it does not serve.
///
/// `#[used]` keeps it through optimisation and LTO. Without LTO, the linker takes an
/// object file of the SDK only if something in it is called; this static sits in the same
/// module as `info_to_wit` and `loader_info_to_wit`, one of which every `describe` calls
/// (a template's or a loader's), and rustc never splits a module across object files, so
/// the section comes along. (Taking its address instead would be
/// meaningless: a custom section is not in linear memory.) Checked for release with and
/// without LTO, with `strip = true`, and for debug builds.
#[cfg_attr(
    target_arch = "wasm32",
    unsafe(link_section = "stream-manager:api-version")
)]
#[used]
pub static API_VERSION_SECTION: [u8; crate::API_VERSION.len()] = section_bytes(crate::API_VERSION);

/// The bytes of `s` as an array (a custom section's contents must be plain bytes).
const fn section_bytes<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// When the layer went on air and off, in layer time (ms).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Airing {
    /// The last `play`; `None` before the first.
    pub played_at: Option<f64>,
    /// The `stop` after it; `None` while on air.
    pub stopped_at: Option<f64>,
}

impl Airing {
    /// Whether the template is drawn at `now_ms`, its out animation lasting `out_ms`:
    /// from a `play` until `out_ms` after the `stop` that follows.
    pub fn drawn_at(&self, now_ms: f64, out_ms: f64) -> bool {
        match (self.played_at, self.stopped_at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(_), Some(stop)) => {
                let out = if out_ms.is_finite() {
                    out_ms.max(0.0)
                } else {
                    0.0
                };
                now_ms < stop + out
            }
        }
    }
}

/// One template instance and its reusable canvas.
pub struct Runtime<T> {
    instance: Option<T>,
    canvas: Canvas,
    /// When the layer went on air and off.
    airing: Airing,
    /// The last picture the template drew, for when it answers `Unchanged` after the
    /// SDK drew nothing off air.
    last: Vec<wit::DrawCommand>,
    /// Whether the last answer was the nothing of a template off air.
    blank: bool,
    /// Whether a picture has been sent: the first answer is always one.
    drawn: bool,
    /// Whether the "limits reached" warning was logged.
    warned_dropped: bool,
    /// Whether the "default params refused" error was logged.
    warned_default: bool,
}

impl<T> Runtime<T> {
    /// No instance yet.
    pub const fn new() -> Runtime<T> {
        Runtime {
            instance: None,
            canvas: Canvas::new(),
            airing: Airing {
                played_at: None,
                stopped_at: None,
            },
            last: Vec::new(),
            blank: false,
            drawn: false,
            warned_dropped: false,
            warned_default: false,
        }
    }
}

impl<T> Default for Runtime<T> {
    fn default() -> Runtime<T> {
        Runtime::new()
    }
}

/// Routes panics to the host log before the instance traps; `kind` is "template" or
/// "loader".
fn install_panic_hook(kind: &'static str) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(move |info| {
            log::error(&format!("{kind} panicked: {info}"));
        }));
    });
}

/// Converts what the template says about itself, with its params schema.
#[inline(never)]
fn info_to_wit(info: Info, params_schema: serde_json::Value) -> InfoWit {
    InfoWit {
        name: info.name,
        version: info.version,
        description: info.description,
        params_schema: params_schema.to_string(),
        default_params: info.default_params.to_string(),
        default_size: wit::Size {
            width: info.default_size.width,
            height: info.default_size.height,
        },
    }
}

/// `describe`: the params schema is derived from `T::Params`.
pub fn describe<T: Template>() -> InfoWit {
    install_panic_hook("template");
    let info = T::info();
    let schema = crate::schema::titled_params_schema::<T::Params>(&info.name);
    info_to_wit(info, schema)
}

fn parse_params<T: Template>(params: &str) -> Result<T::Params, String> {
    // serde would read a JSON array positionally into a struct; params are an object.
    if !params.trim_start().starts_with('{') {
        return Err("invalid params: expected a JSON object".to_owned());
    }
    serde_json::from_str(params).map_err(|e| format!("invalid params: {e}"))
}

/// `configure`: the first call creates the instance, later ones update it.
pub fn configure<T: Template>(rt: &RefCell<Runtime<T>>, params: String) -> Result<(), String> {
    install_panic_hook("template");
    let params = parse_params::<T>(&params)?;
    let mut rt = rt.borrow_mut();
    match rt.instance.as_mut() {
        Some(instance) => instance.configure(params),
        None => {
            rt.instance = Some(T::new(params)?);
            Ok(())
        }
    }
}

/// Creates the instance from the default params if there is none yet.
fn ensure_instance<T: Template>(rt: &mut Runtime<T>) {
    if rt.instance.is_some() {
        return;
    }
    let defaults = T::info().default_params.to_string();
    match parse_params::<T>(&defaults).and_then(T::new) {
        Ok(instance) => rt.instance = Some(instance),
        Err(e) => {
            if !rt.warned_default {
                rt.warned_default = true;
                log::error(&format!(
                    "not configured and the default params are refused: {e}"
                ));
            }
        }
    }
}

/// `render`: configures with the default params first if needed.
pub fn render<T: Template>(rt: &RefCell<Runtime<T>>, frame: FrameInfo) -> RenderOutput {
    install_panic_hook("template");
    let mut rt = rt.borrow_mut();
    let rt = &mut *rt;
    ensure_instance(rt);
    let Some(instance) = rt.instance.as_mut() else {
        return RenderOutput::Commands(Vec::new());
    };
    if !rt.airing.drawn_at(frame.time_ms, instance.out_ms()) {
        // Off air: nothing, without asking the template.
        if rt.blank && rt.drawn {
            return RenderOutput::Unchanged;
        }
        rt.blank = true;
        rt.drawn = true;
        return RenderOutput::Commands(Vec::new());
    }
    let frame = Frame {
        frame: frame.frame,
        time_ms: frame.time_ms,
        wall_clock_ms: frame.wall_clock_ms,
        utc_offset_minutes: frame.utc_offset_minutes,
        fps: frame.fps,
        width: frame.width,
        height: frame.height,
    };
    rt.canvas.clear();
    let answer = instance.render(&frame, &mut rt.canvas);
    if answer == Render::Unchanged && rt.drawn {
        rt.canvas.clear();
        if rt.blank {
            // Back on air after nothing was drawn: the host has nothing to reuse.
            rt.blank = false;
            return RenderOutput::Commands(rt.last.clone());
        }
        return RenderOutput::Unchanged;
    }
    if rt.canvas.dropped() > 0 && !rt.warned_dropped {
        rt.warned_dropped = true;
        log::warn(&format!(
            "frame {}: {} drawing operations dropped to stay within the host's limits",
            frame.frame,
            rt.canvas.dropped()
        ));
    }
    rt.drawn = true;
    rt.blank = false;
    let commands = rt.canvas.finish();
    rt.last.clone_from(&commands);
    RenderOutput::Commands(commands)
}

/// `play`: the layer goes on air at `at_ms`. Configures with the default params first if
/// needed.
pub fn play<T: Template>(rt: &RefCell<Runtime<T>>, at_ms: f64) {
    install_panic_hook("template");
    let mut rt = rt.borrow_mut();
    let rt = &mut *rt;
    let at_ms = if at_ms.is_finite() { at_ms } else { 0.0 };
    rt.airing = Airing {
        played_at: Some(at_ms),
        stopped_at: None,
    };
    ensure_instance(rt);
    if let Some(instance) = rt.instance.as_mut() {
        instance.play(at_ms);
    }
}

/// `stop`: the layer goes off air at `at_ms` (ignored before a `play`).
pub fn stop<T: Template>(rt: &RefCell<Runtime<T>>, at_ms: f64) {
    install_panic_hook("template");
    let mut rt = rt.borrow_mut();
    let rt = &mut *rt;
    if rt.airing.played_at.is_none() {
        return;
    }
    let at_ms = if at_ms.is_finite() { at_ms } else { 0.0 };
    rt.airing.stopped_at = Some(at_ms);
    ensure_instance(rt);
    if let Some(instance) = rt.instance.as_mut() {
        instance.stop(at_ms);
    }
}

/// `snapshot`.
pub fn snapshot<T: Template>(rt: &RefCell<Runtime<T>>) -> Option<String> {
    install_panic_hook("template");
    let rt = rt.borrow();
    rt.instance
        .as_ref()
        .and_then(Template::snapshot)
        .map(|state| state.to_string())
}

/// `restore`: configures with the default params first if needed.
pub fn restore<T: Template>(rt: &RefCell<Runtime<T>>, state: String) -> Result<(), String> {
    install_panic_hook("template");
    let state: serde_json::Value =
        serde_json::from_str(&state).map_err(|e| format!("invalid state: {e}"))?;
    let mut rt = rt.borrow_mut();
    ensure_instance(&mut rt);
    match rt.instance.as_mut() {
        Some(instance) => instance.restore(state),
        None => Err("the template could not be created with its default params".to_owned()),
    }
}

/// Converts what a loader says about itself. Not inlined, and in this module: it brings
/// the API version section along (see [`API_VERSION_SECTION`]).
#[inline(never)]
fn loader_info_to_wit(info: LoaderInfo) -> LoaderInfoWit {
    loader::info_to_wit(info)
}

/// A loader's `describe`.
pub fn loader_describe<L: Loader>() -> LoaderInfoWit {
    install_panic_hook("loader");
    loader_info_to_wit(L::info())
}

/// A loader's `decode`: the options are parsed first, and what the loader made is checked
/// as it is handed over.
pub fn loader_decode<L: Loader>(bytes: Vec<u8>, options: String) -> Result<DecodedWit, String> {
    install_panic_hook("loader");
    let options = loader::parse_options::<L::Options>(&options)?;
    let decoded = L::decode(&bytes, options)?;
    // The upload is no longer needed: its memory may hold what is handed over.
    drop(bytes);
    if let Decoded::Drawing { commands, .. } = &decoded
        && commands.dropped() > 0
    {
        log::warn(&format!(
            "{} drawing operations dropped to stay within the host's limits",
            commands.dropped()
        ));
    }
    loader::decoded_to_wit(decoded)
}

#[cfg(test)]
mod tests {
    use super::Airing;

    #[test]
    fn a_template_is_drawn_from_play_until_its_out_animation_is_over() {
        let never = Airing::default();
        assert!(!never.drawn_at(0.0, 500.0));
        let on = Airing {
            played_at: Some(100.0),
            stopped_at: None,
        };
        assert!(on.drawn_at(0.0, 0.0));
        assert!(on.drawn_at(1e9, 0.0));
        let off = Airing {
            played_at: Some(100.0),
            stopped_at: Some(1000.0),
        };
        assert!(off.drawn_at(999.0, 0.0));
        assert!(!off.drawn_at(1000.0, 0.0));
        assert!(off.drawn_at(1399.0, 400.0));
        assert!(!off.drawn_at(1400.0, 400.0));
        assert!(!off.drawn_at(1000.0, f64::NAN));
        assert!(!off.drawn_at(1000.0, -5.0));
    }
}
