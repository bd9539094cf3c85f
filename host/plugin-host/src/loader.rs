//! Asset loaders: components of the `asset-loader` world that decode uploaded bytes of a
//! format the host has no decoder for into a still image, an animation or a vector drawing.
//!
//! A loader runs in the same engine, linker and sandbox as templates (memory cap, no WASI
//! capability, an epoch deadline), in a fresh instance per decode. Its answer is copied out
//! whole when the call returns (the loader frees it right after), and what that copy may
//! take is bounded by the asset's byte limit before each list is copied, so lists that
//! declare more than they hold or alias one buffer cost the host at most that limit. The
//! copy is then checked against [`LoaderLimits`] (pixels per frame, frames, bytes for the
//! whole asset, draw commands). Blocking: call from a worker thread, never the render
//! thread.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::InstancePre;

use crate::faults::{Fault, FaultKind};
use crate::host_state::HostState;
use crate::runtime::{PluginError, Runtime, new_store};
use crate::wit;
use crate::wit::ApiVersion;
use crate::wit::since_v0_1_0 as v1;
use crate::wit::since_v0_1_0::loader_world::{AssetLoaderPre, LoaderInfo};
use crate::wit::since_v0_2_0::loader_world::AssetLoaderPre as AssetLoaderPreV2;
use sm_compose::Resources;
use sm_compose::commands::{DrawCommand, Limits, validate};

/// Bounds on one decode.
#[derive(Debug, Clone)]
pub struct LoaderLimits {
    /// Most pixels of one picture (a still or one frame).
    pub max_pixels: u64,
    /// Most frames of an animation.
    pub max_frames: usize,
    /// Most bytes of decoded pixels (4 per pixel) of the whole asset.
    pub max_bytes: u64,
    /// Time one decode may take (CPU time, and at most twice that in wall time).
    pub budget: Duration,
    /// Bounds on a drawing's commands.
    pub commands: Limits,
}

impl Default for LoaderLimits {
    fn default() -> Self {
        Self {
            max_pixels: 16_777_216,
            max_frames: 1000,
            max_bytes: 256 << 20,
            budget: Duration::from_secs(2),
            commands: Limits::default(),
        }
    }
}

/// One decoded picture: straight RGBA, `width × height × 4` bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels.
    pub rgba: Vec<u8>,
}

/// What a loader made of an upload.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A still image.
    Still(Picture),
    /// Frames with how long each shows, in milliseconds.
    Animation(Vec<(Picture, u32)>),
    /// A vector drawing of a natural size.
    Drawing {
        /// Natural width.
        width: f32,
        /// Natural height.
        height: f32,
        /// The drawing.
        commands: Vec<DrawCommand>,
    },
}

/// A loader compiled and described, ready to decode.
pub struct LoaderBuild {
    /// What it says about itself.
    pub name: String,
    /// Its own version.
    pub version: String,
    /// The media types it decodes.
    pub media_types: Vec<String>,
    /// The WIT version it was built against.
    pub api: ApiVersion,
    pre: InstancePre<HostState>,
    runtime: Arc<Runtime>,
}

impl std::fmt::Debug for LoaderBuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoaderBuild")
            .field("name", &self.name)
            .field("media_types", &self.media_types)
            .finish_non_exhaustive()
    }
}

// The loader's answer, lifted whole by wasmtime before the loader's post-return frees it.
use v1::loader_world::exports::stream_manager::plugin::loader::{
    AnimationFrame as WitFrame, Decoded as WitDecoded, Image as WitImage,
};

/// Longest name or version a loader may give, and most media types.
const MAX_NAME_BYTES: usize = 64;
const MAX_MEDIA_TYPES: usize = 16;

impl Runtime {
    /// Prepares an asset loader: checks and compiles it (or takes it from the cache), checks
    /// it is of the `asset-loader` world, instantiates it once and describes it. Blocking.
    pub fn prepare_loader(self: &Arc<Self>, bytes: Bytes) -> Result<Arc<LoaderBuild>, PluginError> {
        let memory = self.limits().loader_memory_bytes;
        let (component, version, _) = self.checked_compile(&bytes, memory)?;
        let exports = self.export_names(&component);
        let Some(api) = ApiVersion::of_loader(&exports) else {
            return Err(PluginError::WrongWorld(format!(
                "a component exporting [{}], not an asset loader: it must export {} (world \
                 asset-loader)",
                exports.join(", "),
                wit::any_of(ApiVersion::loader_export)
            )));
        };
        wit::agree(version.as_deref(), api).map_err(PluginError::UnsupportedVersion)?;
        let pre: InstancePre<HostState> = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Imports(crate::faults::first_line(&format!("{e:#}"))))?;
        let wrong = |e: wasmtime::Error| {
            PluginError::WrongWorld(crate::faults::first_line(&format!("{e:#}")))
        };
        let budget = self.limits().setup_budget;
        let mut store = new_store(self, "new loader", Arc::default(), (budget, memory));
        // The loader world is the same in every version; only `describe` is called through
        // the bindings (its record converted to 0.1.0's), `decode` by its export's name.
        let info = match api {
            ApiVersion::V0_1_0 => AssetLoaderPre::new(pre.clone())
                .map_err(wrong)?
                .instantiate(&mut store)
                .and_then(|l| l.stream_manager_plugin_loader().call_describe(&mut store)),
            ApiVersion::V0_2_0 => AssetLoaderPreV2::new(pre.clone())
                .map_err(wrong)?
                .instantiate(&mut store)
                .and_then(|l| l.stream_manager_plugin_loader().call_describe(&mut store))
                .map(|i| LoaderInfo {
                    name: i.name,
                    version: i.version,
                    media_types: i.media_types,
                }),
        };
        let info = info.map_err(|e| PluginError::Fault {
            stage: "describe",
            fault: Fault::from_call(&e, budget),
        })?;
        let info = check_info(info).map_err(PluginError::Info)?;
        Ok(Arc::new(LoaderBuild {
            name: info.name,
            version: info.version,
            media_types: info.media_types,
            api,
            pre,
            runtime: self.clone(),
        }))
    }
}

fn check_info(mut info: LoaderInfo) -> Result<LoaderInfo, String> {
    if info.name.is_empty() || info.name.len() > MAX_NAME_BYTES {
        return Err(format!("name must be 1–{MAX_NAME_BYTES} bytes"));
    }
    if info.version.len() > MAX_NAME_BYTES {
        return Err(format!("version must be at most {MAX_NAME_BYTES} bytes"));
    }
    if info.media_types.is_empty() || info.media_types.len() > MAX_MEDIA_TYPES {
        return Err(format!("it must name 1–{MAX_MEDIA_TYPES} media types"));
    }
    for t in &mut info.media_types {
        *t = t.trim().to_ascii_lowercase();
        let valid = t.len() <= 127
            && t.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && t.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"/+-.".contains(&c))
            });
        if !valid {
            return Err(format!("{t:?} is not a media type (type/subtype)"));
        }
    }
    Ok(info)
}

/// Why a decode failed.
#[derive(Debug)]
pub enum DecodeError<E> {
    /// The loader trapped, overran its budget, refused, or returned output out of bounds
    /// (a refusal is `invalidOutput` with the loader's message).
    Fault(Fault),
    /// `reserve` refused the decoded size.
    Refused(E),
}

impl<E> From<Fault> for DecodeError<E> {
    fn from(f: Fault) -> Self {
        Self::Fault(f)
    }
}

impl LoaderBuild {
    /// Decodes `bytes` in a fresh instance within `limits`; `options` is a JSON object.
    /// Once the answer is checked, and before it is kept, `reserve` is asked for the
    /// bytes the decoded pixels will take (for a drawing: its raster at its natural
    /// size); what it answers comes back with the result. The copy of the answer (at most
    /// `limits.max_bytes` of pixels) lives only until then: call one decode at a time.
    pub fn decode<R, E>(
        &self,
        bytes: &[u8],
        options: &str,
        limits: &LoaderLimits,
        reserve: impl FnOnce(u64) -> Result<R, E>,
    ) -> Result<(Decoded, R), DecodeError<E>> {
        let memory = self.runtime.limits().loader_memory_bytes;
        let mut store = new_store(
            &self.runtime,
            &self.name,
            Arc::<Resources>::default(),
            (limits.budget, memory),
        );
        store.set_hostcall_fuel(answer_fuel(limits));
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| Fault::from_call(&e, limits.budget))?;
        let iface = instance
            .get_export_index(&mut store, None, self.api.loader_export())
            .ok_or_else(|| Fault::invalid("no loader export"))?;
        let func = instance
            .get_export_index(&mut store, Some(&iface), "decode")
            .ok_or_else(|| Fault::invalid("no decode function"))?;
        let decode = instance
            .get_typed_func::<(&[u8], &str), (Result<WitDecoded, String>,)>(&mut store, &func)
            .map_err(|e| Fault::invalid(format!("decode has another signature: {e}")))?;
        let (result,) = decode.call(&mut store, (bytes, options)).map_err(|e| {
            if crate::faults::is_oversized(&e) {
                Fault::invalid(format!(
                    "handed over more than the {} MiB a decode may (lists too long, or \
                     aliased)",
                    limits.max_bytes >> 20
                ))
            } else {
                Fault::from_call(&e, limits.budget)
            }
        })?;
        let answer = result.map_err(|message| Fault {
            kind: FaultKind::InvalidOutput,
            message: format!("refused: {}", message.chars().take(500).collect::<String>()),
        })?;
        let mut total = 0u64;
        match answer {
            WitDecoded::Still(image) => {
                check_size(&image, limits, &mut total)?;
                let r = reserve(total).map_err(DecodeError::Refused)?;
                Ok((Decoded::Still(picture(image)), r))
            }
            WitDecoded::Animation(frames) => {
                if frames.is_empty() || frames.len() > limits.max_frames {
                    return Err(Fault::invalid(format!(
                        "{} frames (1 to {})",
                        frames.len(),
                        limits.max_frames
                    ))
                    .into());
                }
                let (w, h) = (frames[0].image.width, frames[0].image.height);
                for (i, frame) in frames.iter().enumerate() {
                    check_size(&frame.image, limits, &mut total)?;
                    if (frame.image.width, frame.image.height) != (w, h) {
                        return Err(Fault::invalid(format!(
                            "frame {i} is {}x{}, frame 0 {w}x{h}: all frames must be one size",
                            frame.image.width, frame.image.height
                        ))
                        .into());
                    }
                }
                let r = reserve(total).map_err(DecodeError::Refused)?;
                let out = frames
                    .into_iter()
                    .map(|f| (picture(f.image), f.duration_ms.clamp(10, 60_000)))
                    .collect();
                Ok((Decoded::Animation(out), r))
            }
            WitDecoded::Drawing(v) => {
                let n = v.commands.len();
                if n > limits.commands.max_commands {
                    return Err(Fault::invalid(format!(
                        "{n} draw commands (at most {})",
                        limits.commands.max_commands
                    ))
                    .into());
                }
                let pixels = raster_pixels(v.width, v.height);
                if !(1..=limits.max_pixels).contains(&pixels) {
                    return Err(Fault::invalid(format!(
                        "a drawing of {}x{} (its size must be finite, above 0 and at most {} \
                         pixels)",
                        v.width, v.height, limits.max_pixels
                    ))
                    .into());
                }
                let commands: Vec<_> = v.commands.into_iter().map(v1::command).collect();
                validate(&commands, &limits.commands).map_err(|e| Fault::invalid(e.to_string()))?;
                let r = reserve(pixels * 4).map_err(DecodeError::Refused)?;
                let drawing = Decoded::Drawing {
                    width: v.width,
                    height: v.height,
                    commands,
                };
                Ok((drawing, r))
            }
        }
    }
}

/// What wasmtime may copy out of a loader for one answer (its hostcall fuel): the pixels of
/// a whole asset, the host's record of each frame and command, and the lists and strings
/// inside commands. wasmtime counts a list against it before copying the list, so a loader
/// that declares more than it holds, or hands one buffer over as many frames, stops there.
fn answer_fuel(limits: &LoaderLimits) -> usize {
    let records = limits.max_frames * std::mem::size_of::<WitFrame>()
        + limits.commands.max_commands * std::mem::size_of::<DrawCommand>();
    usize::try_from(limits.max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(records)
        .saturating_add(crate::runtime::HOSTCALL_FUEL)
}

/// Pixels of a drawing's raster at its natural size (0 when the size is not finite and
/// positive).
pub fn raster_pixels(width: f32, height: f32) -> u64 {
    if !(width.is_finite() && height.is_finite() && width > 0.0 && height > 0.0) {
        return 0;
    }
    let side = |v: f32| (f64::from(v).ceil() as u64).min(1 << 32);
    side(width) * side(height)
}

/// Checks one picture's declared size and its bytes, and counts them into `total`.
fn check_size(image: &WitImage, limits: &LoaderLimits, total: &mut u64) -> Result<(), Fault> {
    let (w, h) = (image.width, image.height);
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 || pixels > limits.max_pixels {
        return Err(Fault::invalid(format!(
            "a {w}x{h} picture (1 to {} pixels)",
            limits.max_pixels
        )));
    }
    if image.rgba.len() as u64 != pixels * 4 {
        return Err(Fault::invalid(format!(
            "a {w}x{h} picture with {} bytes of RGBA (it needs {})",
            image.rgba.len(),
            pixels * 4
        )));
    }
    *total += pixels * 4;
    if *total > limits.max_bytes {
        return Err(Fault::invalid(format!(
            "more than {} MiB of decoded pixels",
            limits.max_bytes >> 20
        )));
    }
    Ok(())
}

/// A checked picture.
fn picture(image: WitImage) -> Picture {
    Picture {
        width: image.width,
        height: image.height,
        rgba: image.rgba,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, types: &[&str]) -> LoaderInfo {
        LoaderInfo {
            name: name.into(),
            version: "1".into(),
            media_types: types.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn describe_info_is_checked_and_media_types_normalised() {
        let ok = check_info(info("gif", &[" Image/GIF "])).unwrap();
        assert_eq!(ok.media_types, ["image/gif"]);
        assert!(check_info(info("", &["image/gif"])).is_err());
        assert!(check_info(info("gif", &[])).is_err());
        assert!(check_info(info("gif", &["gif"])).is_err());
        assert!(check_info(info("gif", &["image/g if"])).is_err());
        assert!(check_info(info(&"x".repeat(65), &["image/gif"])).is_err());
    }
}
