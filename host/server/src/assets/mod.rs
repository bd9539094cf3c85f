//! The Asset Manager: uploaded images and fonts.
//!
//! An upload is checked before anything large is allocated: the body size is capped by the
//! HTTP layer, the declared Content-Type must match what the bytes are, and an image's
//! dimensions are read from its header and refused above the pixel limit before it is
//! decoded (no decompression bombs). Decoding runs on a blocking worker, never on the render
//! thread. Images are premultiplied once; copies resized to the size a layer draws them at
//! are made off the render thread too, when a scene goes on air, and kept in a bounded
//! cache. Uploaded bytes persist through the State Manager (`asset:{id}`, index `assets`)
//! and are decoded again at boot.
//!
//! Every decoded pixel, of an upload and of its resized copies, is counted against one
//! server-wide [`DecodedBudget`]: an image is reserved from it (by the size its header
//! declares) before it is decoded, resized copies give way to new uploads, and an upload
//! that still does not fit is refused (507), so small compressed files cannot add up to
//! more memory than the budget.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fast_image_resize::Resizer;
use serde::{Deserialize, Serialize};
use tiny_skia::{IntSize, Pixmap};
use utoipa::ToSchema;

use crate::state::StateManager;
use sm_compose::resources::{Animation, Drawing};
use sm_compose::text;
use sm_compose::{Resources, commands};
use sm_plugin_host::loader::{DecodeError, Decoded, Picture};
use sm_plugin_host::loaders::{LoaderChoice, LoaderRegistry};

pub mod redraw;

use redraw::{Redraw, Redrawer};

/// Key of the asset index (`{next, assets}`: the next id number and a list of
/// [`AssetInfo`]).
pub const KEY_ASSETS: &str = "assets";

/// Key of an asset's uploaded bytes.
pub fn asset_key(id: &str) -> String {
    format!("asset:{id}")
}

/// Most assets held at once.
pub const MAX_ASSETS: usize = 1024;

/// Bytes of resized copies kept for drawing.
const SIZED_CACHE_BYTES: usize = 512 << 20;

/// The stored index: the assets and the next id number.
#[derive(Serialize, Deserialize)]
struct AssetIndex {
    next: u64,
    assets: Vec<AssetInfo>,
}

/// Upload limits (configurable; see `docs/config.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssetLimits {
    /// Largest upload body in bytes (default 32 MiB; over it: 413).
    pub max_bytes: usize,
    /// Most decoded pixels of an image (default 64 Mpx; over it: 422).
    pub max_pixels: u64,
    /// Bytes of decoded pixels all images and their resized copies may hold at once
    /// (default 1 GiB; an upload beyond it: 507).
    pub max_decoded_bytes: u64,
}

impl Default for AssetLimits {
    fn default() -> Self {
        Self {
            max_bytes: 32 << 20,
            max_pixels: 64_000_000,
            max_decoded_bytes: 1 << 30,
        }
    }
}

/// The bytes of decoded pixels the server holds, against their limit.
#[derive(Debug)]
pub struct DecodedBudget {
    max: u64,
    used: AtomicU64,
}

/// Bytes taken from a [`DecodedBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<DecodedBudget>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl DecodedBudget {
    /// A budget of `max` bytes, none used.
    pub fn new(max: u64) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicU64::new(0),
        })
    }

    /// Takes `bytes`, if they fit.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.max)
            })
            .ok()
            .map(|_| Reservation {
                budget: self.clone(),
                bytes,
            })
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn max(&self) -> u64 {
        self.max
    }
}

/// What an asset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AssetKind {
    /// A still image (PNG, JPEG, WebP, or the first frame of a GIF).
    Image,
    /// A TrueType/OpenType font.
    Font,
}

/// An asset as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetInfo {
    /// Generated id, used by layers (`image.asset`) and draw commands.
    pub id: String,
    /// The `?name=` given at upload, else the id.
    pub name: String,
    /// `image` or `font`.
    pub kind: AssetKind,
    /// The Content-Type it was uploaded with.
    pub mime: String,
    /// Width in pixels (0 for fonts).
    pub width: u32,
    /// Height in pixels (0 for fonts).
    pub height: u32,
    /// Size of the upload in bytes.
    pub bytes: u64,
    /// The family a font declares (select it with `fontFamily`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Present when the image did not fit the decoded-pixel budget at its own size and is
    /// kept smaller: at the least size that still covers the stream's frame (aspect kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<KeptSize>,
    /// The asset loader that decoded it (absent: the host's own decoders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loader: Option<DecodedBy>,
    /// An animated image's frame count (absent for a still image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
    /// How long one run through an animated image's frames takes, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// True for a vector image (drawn sharp at the size a layer shows it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vector: bool,
}

impl AssetInfo {
    /// An image of `width` × `height` from an upload of `bytes` bytes, with nothing else
    /// to say.
    fn image(
        (id, name, mime): (&str, &str, &str),
        (width, height): (u32, u32),
        bytes: u64,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            kind: AssetKind::Image,
            mime: mime.into(),
            width,
            height,
            bytes,
            family: None,
            kept: None,
            loader: None,
            frames: None,
            duration_ms: None,
            vector: false,
        }
    }
}

/// The loader version that decoded an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DecodedBy {
    /// Loader id.
    pub id: String,
    /// SHA-256 of the loader's component (the exact version, kept while assets name it).
    pub hash: String,
}

/// The size an image is kept at when it does not fit the decoded budget whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeptSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The least size at or below `w`×`h` (aspect kept) that covers `bw`×`bh`; `None` when that
/// is not smaller than the image.
pub fn covering_size(w: u32, h: u32, (bw, bh): (u32, u32)) -> Option<(u32, u32)> {
    let scale = (f64::from(bw) / f64::from(w)).max(f64::from(bh) / f64::from(h));
    if !(scale > 0.0 && scale < 1.0) {
        return None;
    }
    let side = |v: u32| ((f64::from(v) * scale).ceil() as u32).clamp(1, v);
    Some((side(w), side(h)))
}

/// One image at a time is decoded whole only to be kept smaller: the transient full-size
/// pixels (at most `--max-asset-pixels` × 4 bytes) are never held by two uploads at once.
static REDUCING: Mutex<()> = Mutex::new(());

/// Why an upload or a deletion was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssetError {
    /// A Content-Type that is not an image or font type we take, and no loader claims (415).
    #[error(
        "unsupported Content-Type {0:?}: use image/png, image/jpeg, image/webp, image/gif, \
         font/ttf, font/otf or a type an asset loader decodes (GET /api/loaders)"
    )]
    UnsupportedType(String),
    /// The asset loader for the type trapped, overran its budget, refused the upload or
    /// returned output out of bounds (422 `loader_failed`).
    #[error("asset loader {loader:?} failed: {message}")]
    LoaderFailed {
        /// The loader's id.
        loader: String,
        /// What went wrong.
        message: String,
    },
    /// The body is not what its Content-Type says, or it is corrupt (422).
    #[error("{0}")]
    Invalid(String),
    /// The image is larger than the pixel limit (422).
    #[error("the image is {width}x{height} = {pixels} pixels; the limit is {limit}")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Their product.
        pixels: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many assets (409).
    #[error("there are already {0} assets; delete some first")]
    Full(usize),
    /// Decoding would exceed the server's budget of decoded pixels (507).
    #[error(
        "decoding this image takes {} MiB; {} MiB of the {} MiB for decoded images \
         (--max-decoded-bytes) are in use: delete images first",
        mib(*.needed), mib(*.used), mib(*.budget)
    )]
    OverBudget {
        /// Bytes the decoded image takes.
        needed: u64,
        /// Bytes in use.
        used: u64,
        /// The budget.
        budget: u64,
    },
    /// No such asset (404).
    #[error("no asset {0:?}")]
    NotFound(String),
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1u32 << 20))
}

/// A decoded asset.
pub struct Asset {
    /// What the API shows.
    pub info: AssetInfo,
    /// Premultiplied pixels of an image.
    pub pixmap: Option<Arc<Pixmap>>,
    /// The image has no transparent pixel.
    pub opaque: bool,
    /// The bytes of a font.
    pub font: Option<Bytes>,
    /// An animated image's frames (its first frame is `pixmap`).
    pub animation: Option<Arc<Animation>>,
    /// A vector image's drawing (`pixmap` is its raster at its natural size).
    pub drawing: Option<Arc<Drawing>>,
    /// A loader's still, which it may draw again at the size a layer shows it.
    pub redraw: Option<Redraw>,
    /// The share of the decoded budget the image holds.
    _decoded: Option<Reservation>,
}

/// The image formats taken, by Content-Type.
fn image_format(mime: &str) -> Option<image::ImageFormat> {
    Some(match mime {
        "image/png" => image::ImageFormat::Png,
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/webp" => image::ImageFormat::WebP,
        "image/gif" => image::ImageFormat::Gif,
        _ => return None,
    })
}

fn format_name(f: image::ImageFormat) -> &'static str {
    f.extensions_str()
        .first()
        .copied()
        .unwrap_or("unknown format")
}

/// The Content-Type's media type, lower case, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes an upload: checks the type against the bytes and the pixel limit against the
/// header, takes the decoded size from the budget with `reserve`, then decodes and
/// premultiplies. An image that does not fit the budget whole is kept at the least size
/// that covers `frame` (the stream's size) when that fits (see [`covering_size`]); it is
/// decoded whole first, one such image at a time. Blocking; call from a blocking worker.
pub fn decode(
    id: &str,
    name: &str,
    mime: &str,
    data: &Bytes,
    limits: &AssetLimits,
    frame: (u32, u32),
    reserve: impl Fn(u64) -> Result<Reservation, AssetError>,
) -> Result<Asset, AssetError> {
    let mime = media_type(mime);
    let bytes = data.len() as u64;
    if mime == "font/ttf" || mime == "font/otf" {
        let facts = text::inspect(data).map_err(|e| {
            AssetError::Invalid(format!("the body is not a usable {mime} font: {e}"))
        })?;
        return Ok(Asset {
            info: AssetInfo {
                id: id.into(),
                name: name.into(),
                kind: AssetKind::Font,
                mime,
                width: 0,
                height: 0,
                bytes,
                family: Some(facts.family),
                kept: None,
                loader: None,
                frames: None,
                duration_ms: None,
                vector: false,
            },
            pixmap: None,
            opaque: false,
            font: Some(data.clone()),
            animation: None,
            drawing: None,
            redraw: None,
            _decoded: None,
        });
    }
    let declared = image_format(&mime).ok_or_else(|| AssetError::UnsupportedType(mime.clone()))?;
    let actual = image::guess_format(data).map_err(|_| {
        AssetError::Invalid(format!("the body is not a {mime} image: unrecognised data"))
    })?;
    if actual != declared {
        return Err(AssetError::Invalid(format!(
            "Content-Type says {mime} but the body is {}",
            format_name(actual)
        )));
    }
    let corrupt = |e: image::ImageError| {
        AssetError::Invalid(format!("the {mime} image cannot be decoded: {e}"))
    };
    let (width, height) = image::ImageReader::with_format(Cursor::new(&data[..]), declared)
        .into_dimensions()
        .map_err(corrupt)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(AssetError::TooManyPixels {
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(AssetError::Invalid(format!("the {mime} image is empty")));
    }
    let (reservation, kept) = match reserve(pixels * 4) {
        Ok(r) => (r, None),
        Err(whole) => {
            let Some((kw, kh)) = covering_size(width, height, frame) else {
                return Err(whole);
            };
            let r = reserve(u64::from(kw) * u64::from(kh) * 4).map_err(|_| whole)?;
            (r, Some((kw, kh)))
        }
    };
    let _one_at_a_time = kept.map(|_| REDUCING.lock().unwrap_or_else(|e| e.into_inner()));
    let mut reader = image::ImageReader::with_format(Cursor::new(&data[..]), declared);
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(width);
    bounds.max_image_height = Some(height);
    // The RGBA result plus the decoder's own buffers.
    bounds.max_alloc = Some(pixels * 4 * 2 + (16 << 20));
    reader.limits(bounds);
    let rgba = reader.decode().map_err(corrupt)?.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut raw = rgba.into_raw();
    premultiply(&mut raw);
    let size =
        IntSize::from_wh(w, h).ok_or_else(|| AssetError::Invalid("the image is empty".into()))?;
    let mut pixmap = Pixmap::from_vec(raw, size)
        .ok_or_else(|| AssetError::Invalid(format!("a {w}x{h} image cannot be drawn")))?;
    if let Some((kw, kh)) = kept {
        let mut resizer = Resizer::new();
        pixmap = crate::thumbnail::scale(&mut resizer, &pixmap, (0, 0, w, h), kw, kh)
            .ok_or_else(|| AssetError::Invalid(format!("a {w}x{h} image cannot be reduced")))?;
    }
    let opaque = is_opaque(&pixmap);
    Ok(Asset {
        opaque,
        info: AssetInfo {
            kept: kept.map(|(width, height)| KeptSize { width, height }),
            ..AssetInfo::image((id, name, &mime), (w, h), bytes)
        },
        pixmap: Some(Arc::new(pixmap)),
        font: None,
        animation: None,
        drawing: None,
        redraw: None,
        _decoded: Some(reservation),
    })
}

/// Decodes an upload with `loader` when it has one, else natively (see [`decode`]).
fn decode_upload(
    loader: Option<(Arc<LoaderRegistry>, LoaderChoice)>,
    (id, name, mime): (&str, &str, &str),
    data: &Bytes,
    (limits, frame): (&AssetLimits, (u32, u32)),
    reserve: impl Fn(u64) -> Result<Reservation, AssetError>,
) -> Result<Asset, AssetError> {
    match loader {
        Some((registry, choice)) => {
            decode_with_loader((id, name, mime), data, &choice, &registry, reserve)
        }
        None => decode(id, name, mime, data, limits, frame, reserve),
    }
}

/// Runs a decode on a thread of its own that yields to the render clock (an asset loader may
/// use its whole time budget; a native decode of a large image takes a while too).
async fn off_the_clock<T: Send + 'static>(
    decode: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("asset-decode".into())
        .spawn(move || {
            sm_media::threads::yield_to_the_clock(sm_media::threads::Yield::Loader);
            let _ = tx.send(decode());
        })
        .map_err(|e| format!("no thread to decode on: {e}"))?;
    rx.await.map_err(|_| "the decode thread ended".to_string())
}

/// Whether an upload of `mime` is a still image the host decodes itself (PNG, JPEG, WebP:
/// the fast path) even when a loader claims the type: APNG and animated WebP go to the
/// loader.
pub fn native_still(mime: &str, data: &[u8]) -> bool {
    match mime {
        "image/jpeg" => true,
        "image/png" => image::codecs::png::PngDecoder::new(Cursor::new(data))
            .and_then(|d| d.is_apng())
            .is_ok_and(|apng| !apng),
        "image/webp" => image::codecs::webp::WebPDecoder::new(Cursor::new(data))
            .is_ok_and(|d| !d.has_animation()),
        _ => false,
    }
}

/// Decodes an upload with an asset loader, in its sandbox: the decoded size is taken from
/// the budget with `reserve` before the loader's answer is kept. A still or the
/// frames of an animation are premultiplied; a drawing is also rasterized at its natural
/// size (what template `image` commands and thumbnails draw). Blocking.
pub fn decode_with_loader(
    (id, name, mime): (&str, &str, &str),
    data: &Bytes,
    loader: &LoaderChoice,
    registry: &LoaderRegistry,
    reserve: impl Fn(u64) -> Result<Reservation, AssetError>,
) -> Result<Asset, AssetError> {
    let failed = |message: String| AssetError::LoaderFailed {
        loader: loader.id.clone(),
        message,
    };
    let (decoded, reservation) = registry
        .one_at_a_time(|| loader.build.decode(data, "{}", registry.limits(), reserve))
        .map_err(|e| match e {
            DecodeError::Fault(f) => failed(f.to_string()),
            DecodeError::Refused(e) => e,
        })?;
    let to_pixmap = |p: Picture| {
        let (w, h) = (p.width, p.height);
        picture_pixmap(p).ok_or_else(|| failed(format!("a {w}x{h} picture cannot be drawn")))
    };
    let (mut animation, mut drawing, mut redraw) = (None, None, None);
    let pixmap = match decoded {
        Decoded::Still(p) => {
            redraw = Some(Redraw::new(&loader.id, loader.build.clone(), data.clone()));
            to_pixmap(p)?
        }
        Decoded::Animation(frames) => {
            let frames = frames
                .into_iter()
                .map(|(p, ms)| Ok((to_pixmap(p)?, ms)))
                .collect::<Result<Vec<_>, AssetError>>()?;
            let a = Animation::new(id, frames)
                .ok_or_else(|| failed("an animation's frames must be one size".into()))?;
            let first = a.frames[0].clone();
            animation = Some(Arc::new(a));
            first
        }
        Decoded::Drawing {
            width,
            height,
            commands: list,
        } => {
            let d = Drawing {
                width,
                height,
                commands: list,
            };
            let (w, h) = (width.ceil() as u32, height.ceil() as u32);
            let mut raster =
                Pixmap::new(w, h).ok_or_else(|| failed(format!("a {w}x{h} drawing")))?;
            let mut fonts = text::FontBook::default();
            commands::rasterize(
                &d.commands,
                &mut raster.as_mut(),
                &mut fonts,
                &commands::NoImages,
            );
            drawing = Some(Arc::new(d));
            Arc::new(raster)
        }
    };
    let opaque = drawing.is_none()
        && animation.as_ref().map_or(is_opaque(&pixmap), |a| {
            a.frames.iter().all(|f| is_opaque(f))
        });
    Ok(Asset {
        opaque,
        info: AssetInfo {
            loader: Some(DecodedBy {
                id: loader.id.clone(),
                hash: loader.hash.clone(),
            }),
            frames: animation.as_ref().map(|a| a.frames.len() as u32),
            duration_ms: animation.as_ref().map(|a| a.duration_ms()),
            vector: drawing.is_some(),
            ..AssetInfo::image(
                (id, name, mime),
                (pixmap.width(), pixmap.height()),
                data.len() as u64,
            )
        },
        pixmap: Some(pixmap),
        font: None,
        animation,
        drawing,
        redraw,
        _decoded: Some(reservation),
    })
}

/// A loader's picture, premultiplied; `None` when its size cannot be drawn.
fn picture_pixmap(p: Picture) -> Option<Arc<Pixmap>> {
    let (w, h) = (p.width, p.height);
    let mut rgba = p.rgba;
    premultiply(&mut rgba);
    IntSize::from_wh(w, h)
        .and_then(|size| Pixmap::from_vec(rgba, size))
        .map(Arc::new)
}

/// Whether every pixel is opaque.
fn is_opaque(p: &Pixmap) -> bool {
    p.pixels().iter().all(|px| px.alpha() == 255)
}

/// Straight RGBA to premultiplied, in place.
fn premultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        if a < 255 {
            for c in &mut px[..3] {
                *c = ((u16::from(*c) * a + 127) / 255) as u8;
            }
        }
    }
}

impl sm_scene::AssetLookup for AssetManager {
    fn is_image(&self, id: &str) -> bool {
        AssetManager::is_image(self, id)
    }
    fn has_family(&self, family: &str) -> bool {
        AssetManager::has_family(self, family)
    }
}

/// A resized copy, when it was last used, and its share of the decoded budget.
type SizedCopy = (Arc<Pixmap>, u64, Reservation);

/// Resized copies by (asset, width, height).
#[derive(Default)]
struct SizedCache {
    entries: HashMap<(String, u32, u32), SizedCopy>,
    bytes: usize,
    clock: u64,
}

/// Owner of the uploaded assets.
pub struct AssetManager {
    state: Arc<StateManager>,
    limits: AssetLimits,
    assets: Mutex<HashMap<String, Arc<Asset>>>,
    budget: Arc<DecodedBudget>,
    sized: Arc<Mutex<SizedCache>>,
    /// PNG thumbnails made so far, by asset id.
    thumbnails: Mutex<HashMap<String, Bytes>>,
    next: std::sync::atomic::AtomicU64,
    /// The asset loaders, for types the host does not decode (none in offline renders).
    loaders: std::sync::OnceLock<Arc<LoaderRegistry>>,
    /// Loader stills drawn again at the sizes layers show them.
    redrawer: Arc<Redrawer>,
}

impl AssetManager {
    /// An empty manager.
    pub fn new(state: Arc<StateManager>, limits: AssetLimits) -> Self {
        let budget = DecodedBudget::new(limits.max_decoded_bytes);
        let sized = Arc::<Mutex<SizedCache>>::default();
        Self {
            state,
            limits,
            assets: Mutex::new(HashMap::new()),
            redrawer: Arc::new(Redrawer::new(sized.clone(), budget.clone())),
            budget,
            sized,
            thumbnails: Mutex::new(HashMap::new()),
            next: std::sync::atomic::AtomicU64::new(1),
            loaders: std::sync::OnceLock::new(),
        }
    }

    /// Changes whenever a loader has drawn a still again at the size a layer shows it: the
    /// scene on air should be prepared again to show it (see [`redraw`]).
    pub fn redrawn(&self) -> tokio::sync::watch::Receiver<u64> {
        self.redrawer.ready()
    }

    /// The asset loaders, when this server runs them.
    pub fn loaders(&self) -> Option<&Arc<LoaderRegistry>> {
        self.loaders.get()
    }

    /// Whether uploads of media type `mime` are taken: the host's image and font types,
    /// and those an asset loader claims.
    pub fn takes(&self, mime: &str) -> bool {
        matches!(
            mime,
            "image/png" | "image/jpeg" | "image/webp" | "image/gif" | "font/ttf" | "font/otf"
        ) || self
            .loaders
            .get()
            .is_some_and(|l| l.for_type(mime).is_some())
    }

    /// Uploads of the types these loaders claim go to them (set once, before [`Self::load`]).
    pub fn set_loaders(&self, loaders: Arc<LoaderRegistry>) {
        let _ = self.loaders.set(loaders);
    }

    /// The loader an upload goes to: the one claiming its type, unless the host decodes it
    /// itself (a still PNG, JPEG or WebP).
    fn loader_for(&self, mime: &str, data: &[u8]) -> Option<(Arc<LoaderRegistry>, LoaderChoice)> {
        let registry = self.loaders.get()?;
        let mime = media_type(mime);
        let choice = registry.for_type(&mime)?;
        (!native_still(&mime, data)).then(|| (registry.clone(), choice))
    }

    /// Forgets retired loader versions that no asset names any more.
    async fn prune_loaders(&self) {
        let Some(registry) = self.loaders.get() else {
            return;
        };
        let named = self
            .lock()
            .values()
            .filter_map(|a| a.info.loader.as_ref().map(|l| l.hash.clone()))
            .collect();
        registry.prune(&named).await;
    }

    /// The upload limits.
    pub fn limits(&self) -> AssetLimits {
        self.limits
    }

    /// The budget of decoded pixels.
    pub fn budget(&self) -> &Arc<DecodedBudget> {
        &self.budget
    }

    /// What takes a decoded image's bytes from the budget: resized copies give way first
    /// (they are made again when drawn), then it is refused.
    fn reserver(&self) -> impl Fn(u64) -> Result<Reservation, AssetError> + Send + 'static {
        let (budget, sized) = (self.budget.clone(), self.sized.clone());
        move |bytes| {
            reserve_evicting(&budget, &sized, bytes).ok_or_else(|| AssetError::OverBudget {
                needed: bytes,
                used: budget.used(),
                budget: budget.max(),
            })
        }
    }

    /// The stream's frame size: what an image too large for the budget is kept to cover.
    fn frame(&self) -> (u32, u32) {
        let c = self.state.config();
        (c.width, c.height)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Asset>>> {
        self.assets.lock().expect("asset lock")
    }

    /// Restores the stored assets (decoding each again); unreadable ones are skipped with
    /// a warning.
    pub async fn load(&self) {
        let Some(index) = self.state.load_doc(KEY_ASSETS).await else {
            return;
        };
        let Ok(index) = serde_json::from_slice::<AssetIndex>(&index) else {
            tracing::warn!("ignoring the stored asset index: it is not valid");
            return;
        };
        // Ids are never reused, not even those of deleted assets.
        self.next
            .fetch_max(index.next, std::sync::atomic::Ordering::Relaxed);
        let infos = index.assets;
        for info in infos.into_iter().take(MAX_ASSETS) {
            let Some(data) = self.state.load_doc(&asset_key(&info.id)).await else {
                tracing::warn!(asset = %info.id, "stored asset bytes are missing");
                continue;
            };
            let limits = AssetLimits {
                max_bytes: usize::MAX,
                max_pixels: u64::MAX,
                ..self.limits
            };
            let data = Bytes::from(data);
            let loader = match &info.loader {
                Some(by) => {
                    let build = match self.loaders.get() {
                        Some(registry) => registry.by_hash(&by.hash).await,
                        None => None,
                    };
                    let Some(build) = build else {
                        tracing::warn!(asset = %info.id, loader = %by.id,
                            "stored asset not restored: its loader version is gone");
                        continue;
                    };
                    let choice = LoaderChoice {
                        id: by.id.clone(),
                        hash: by.hash.clone(),
                        build,
                    };
                    self.loaders.get().cloned().map(|r| (r, choice))
                }
                None => None,
            };
            let (id, name, mime) = (info.id.clone(), info.name.clone(), info.mime.clone());
            let (reserve, frame) = (self.reserver(), self.frame());
            match off_the_clock(move || {
                decode_upload(
                    loader,
                    (&id, &name, &mime),
                    &data,
                    (&limits, frame),
                    reserve,
                )
            })
            .await
            {
                Ok(Ok(asset)) => {
                    self.bump_counter(&asset.info.id);
                    self.lock().insert(info.id.clone(), Arc::new(asset));
                }
                Ok(Err(e)) => {
                    tracing::warn!(asset = %info.id, error = %e, "stored asset not restored")
                }
                Err(e) => tracing::warn!(asset = %info.id, error = %e, "stored asset not restored"),
            }
        }
        tracing::info!(assets = self.lock().len(), "assets restored");
        self.prune_loaders().await;
    }

    fn bump_counter(&self, id: &str) {
        if let Some(n) = id
            .strip_prefix("asset-")
            .and_then(|n| n.parse::<u64>().ok())
        {
            self.next
                .fetch_max(n + 1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Decodes and stores an upload; the bytes are persisted before this returns.
    pub async fn upload(
        &self,
        mime: &str,
        name: Option<&str>,
        data: Bytes,
    ) -> Result<AssetInfo, AssetError> {
        if self.lock().len() >= MAX_ASSETS {
            return Err(AssetError::Full(MAX_ASSETS));
        }
        let id = format!(
            "asset-{}",
            self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let name = name.map_or_else(|| id.clone(), str::to_string);
        self.store(id, name, mime, data).await
    }

    /// Adds an asset under a chosen id (the offline renderer names assets by file name).
    pub async fn insert(&self, id: &str, mime: &str, data: Bytes) -> Result<AssetInfo, AssetError> {
        if !sm_scene::valid_id(id) {
            return Err(AssetError::Invalid(format!(
                "{id:?} is not an asset id: 1 to 64 of A-Z a-z 0-9 _ -"
            )));
        }
        self.store(id.to_string(), id.to_string(), mime, data).await
    }

    async fn store(
        &self,
        id: String,
        name: String,
        mime: &str,
        data: Bytes,
    ) -> Result<AssetInfo, AssetError> {
        let (limits, mime_owned, id2, bytes) =
            (self.limits, media_type(mime), id.clone(), data.clone());
        let (reserve, frame) = (self.reserver(), self.frame());
        let loader = self.loader_for(mime, &data);
        let asset = off_the_clock(move || {
            let names = (id2.as_str(), name.as_str(), mime_owned.as_str());
            decode_upload(loader, names, &bytes, (&limits, frame), reserve)
        })
        .await
        .map_err(|e| AssetError::Invalid(format!("decoding failed: {e}")))??;
        let info = asset.info.clone();
        self.state.set_doc(&asset_key(&id), data).await;
        self.lock().insert(id, Arc::new(asset));
        self.write_index().await;
        Ok(info)
    }

    async fn write_index(&self) {
        let mut infos: Vec<AssetInfo> = self.lock().values().map(|a| a.info.clone()).collect();
        infos.sort_by(|a, b| natural(&a.id).cmp(&natural(&b.id)));
        let index = AssetIndex {
            next: self.next.load(std::sync::atomic::Ordering::Relaxed),
            assets: infos,
        };
        let json = serde_json::to_vec(&index).expect("asset index serializes");
        self.state.set_doc(KEY_ASSETS, json).await;
    }

    /// Every asset, oldest first.
    pub fn list(&self) -> Vec<AssetInfo> {
        let mut infos: Vec<AssetInfo> = self.lock().values().map(|a| a.info.clone()).collect();
        infos.sort_by(|a, b| natural(&a.id).cmp(&natural(&b.id)));
        infos
    }

    /// One asset.
    pub fn get(&self, id: &str) -> Option<Arc<Asset>> {
        self.lock().get(id).cloned()
    }

    /// A thumbnail of image asset `id`: a PNG of at most
    /// [`MAX_WIDTH`](crate::thumbnail::MAX_WIDTH) × [`MAX_HEIGHT`](crate::thumbnail::MAX_HEIGHT),
    /// its aspect and transparency kept; made once and kept while the asset is. `Ok(None)`
    /// for a font. Blocking (call it from a blocking worker).
    pub fn thumbnail(&self, id: &str) -> Result<Option<Bytes>, AssetError> {
        let asset = self
            .get(id)
            .ok_or_else(|| AssetError::NotFound(id.to_string()))?;
        let Some(pixmap) = &asset.pixmap else {
            return Ok(None);
        };
        if let Some(png) = self.thumbnails.lock().expect("thumbnail lock").get(id) {
            return Ok(Some(png.clone()));
        }
        let whole = (0, 0, pixmap.width(), pixmap.height());
        let png = crate::thumbnail::shrink(pixmap, whole)
            .ok_or_else(|| "an empty image".to_string())
            .and_then(|small| crate::thumbnail::png(&small))
            .map(Bytes::from)
            .map_err(|e| AssetError::Invalid(format!("no thumbnail: {e}")))?;
        // Kept only if the asset is still there: checked under the lock that `delete` takes
        // after removing the asset, so a thumbnail never outlives its asset.
        let mut thumbnails = self.thumbnails.lock().expect("thumbnail lock");
        if self.get(id).is_some_and(|a| Arc::ptr_eq(&a, &asset)) {
            thumbnails.insert(id.to_string(), png.clone());
        }
        Ok(Some(png))
    }

    /// Whether `id` is an image asset.
    pub fn is_image(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|a| a.pixmap.is_some())
    }

    /// Whether a font of `family` was uploaded (case-insensitive).
    pub fn has_family(&self, family: &str) -> bool {
        self.lock().values().any(|a| {
            a.info
                .family
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(family))
        })
    }

    /// Deletes an asset (the caller has checked that nothing uses it).
    pub async fn delete(&self, id: &str) -> Result<AssetInfo, AssetError> {
        let asset = self
            .lock()
            .remove(id)
            .ok_or_else(|| AssetError::NotFound(id.to_string()))?;
        {
            let mut cache = self.sized.lock().expect("sized cache lock");
            let cache = &mut *cache;
            // The asset's copies, and those of its frames (`{id}@{n}`).
            cache.entries.retain(|(a, _, _), (p, _, _)| {
                let keep = a
                    .strip_prefix(id)
                    .is_none_or(|rest| !(rest.is_empty() || rest.starts_with('@')));
                if !keep {
                    cache.bytes -= p.data().len();
                }
                keep
            });
        }
        self.thumbnails.lock().expect("thumbnail lock").remove(id);
        self.state.remove_doc(&asset_key(id)).await;
        self.write_index().await;
        if asset.info.loader.is_some() {
            self.prune_loaders().await;
        }
        Ok(asset.info.clone())
    }

    /// The resources to draw with: `images` at the given drawn sizes (device pixels), and
    /// every uploaded font. Resizes what is not cached yet; blocking (call it from a
    /// blocking worker).
    /// Every image of the scene's template layers' reach: all uploaded images, at their own
    /// size, added to `images` when `scene` has a template layer (templates draw images by
    /// id, decided at run time).
    pub fn with_template_images(
        &self,
        scene: &sm_scene::Scene,
        mut images: Vec<(String, u32, u32)>,
    ) -> Vec<(String, u32, u32)> {
        if scene.layers.iter().any(|l| l.template.is_some()) {
            images.extend(
                self.lock()
                    .values()
                    .filter(|a| a.pixmap.is_some())
                    .map(|a| (a.info.id.clone(), 0, 0)),
            );
        }
        images
    }

    pub fn resources(&self, images: &[(String, u32, u32)]) -> Resources {
        let mut out = Resources::default();
        let assets: Vec<Arc<Asset>> = self.lock().values().cloned().collect();
        for a in &assets {
            if let (Some(font), Some(family)) = (&a.font, &a.info.family) {
                out.add_font(font.clone(), family);
            }
        }
        let mut resizer = Resizer::new();
        for (id, w, h) in images {
            let Some(asset) = assets.iter().find(|a| &a.info.id == id) else {
                continue;
            };
            let Some(original) = asset.pixmap.clone() else {
                continue;
            };
            if let Some(drawing) = &asset.drawing {
                // Drawn from its commands at the size it is shown: no copies.
                out.add_drawing(id, drawing.clone(), original);
                continue;
            }
            if let Some(animation) = &asset.animation {
                out.add_animation(id, animation.clone(), asset.opaque);
                if (*w, *h) != (original.width(), original.height()) && *w > 0 && *h > 0 {
                    for (frame_id, frame) in animation.ids.iter().zip(&animation.frames) {
                        self.prepare_copy(&mut resizer, &mut out, frame_id, frame, (*w, *h));
                    }
                }
                continue;
            }
            out.add_image(id, original.clone(), asset.opaque);
            if (*w, *h) == (original.width(), original.height()) || *w == 0 || *h == 0 {
                continue;
            }
            if let (Some(redraw), Some(registry)) = (&asset.redraw, self.loaders.get())
                && redraw.wanted()
            {
                // Scaled as it is drawn until the loader's picture at this size is here.
                match self.cached(&(id.clone(), *w, *h)) {
                    Some(p) => out.add_sized(id, *w, *h, p),
                    None => self.redrawer.ask(registry, asset, (*w, *h)),
                }
                continue;
            }
            // Only downscales get a prepared copy: bilinear upscaling per frame looks the same.
            if u64::from(*w) * u64::from(*h)
                > u64::from(original.width()) * u64::from(original.height())
            {
                continue;
            }
            self.prepare_copy(&mut resizer, &mut out, id, &original, (*w, *h));
        }
        out
    }

    /// Adds image `id` resized to `w`×`h` to `out` (from the cache, or made now), when the
    /// budget takes it (older copies give way); without one the original is scaled as it
    /// is drawn.
    fn prepare_copy(
        &self,
        resizer: &mut Resizer,
        out: &mut Resources,
        id: &str,
        original: &Pixmap,
        (w, h): (u32, u32),
    ) {
        let key = (id.to_string(), w, h);
        if let Some(p) = self.cached(&key) {
            out.add_sized(id, w, h, p);
            return;
        }
        let whole = (0, 0, original.width(), original.height());
        let Some(reservation) = self.reserve_copy(u64::from(w) * u64::from(h) * 4) else {
            return;
        };
        if let Some(p) = crate::thumbnail::scale(resizer, original, whole, w, h) {
            let p = Arc::new(p);
            self.remember(key, p.clone(), reservation);
            out.add_sized(id, w, h, p);
        }
    }

    fn cached(&self, key: &(String, u32, u32)) -> Option<Arc<Pixmap>> {
        let mut cache = self.sized.lock().expect("sized cache lock");
        cache.clock += 1;
        let clock = cache.clock;
        cache.entries.get_mut(key).map(|(p, used, _)| {
            *used = clock;
            p.clone()
        })
    }

    /// Budget for a resized copy of `bytes`, older copies evicted to make room.
    fn reserve_copy(&self, bytes: u64) -> Option<Reservation> {
        reserve_evicting(&self.budget, &self.sized, bytes)
    }

    fn remember(&self, key: (String, u32, u32), pixmap: Arc<Pixmap>, reservation: Reservation) {
        self.sized
            .lock()
            .expect("sized cache lock")
            .insert(key, pixmap, reservation);
    }
}

/// Takes `bytes` from `budget`, evicting resized copies (least recently used first) until
/// they fit; `None` when they do not fit even with no copy left.
fn reserve_evicting(
    budget: &Arc<DecodedBudget>,
    sized: &Mutex<SizedCache>,
    bytes: u64,
) -> Option<Reservation> {
    loop {
        if let Some(r) = budget.try_reserve(bytes) {
            return Some(r);
        }
        if !sized.lock().expect("sized cache lock").evict_oldest() {
            return None;
        }
    }
}

impl SizedCache {
    /// Keeps a copy, as the most recently used, evicting the oldest beyond the cache's size.
    fn insert(&mut self, key: (String, u32, u32), pixmap: Arc<Pixmap>, reservation: Reservation) {
        self.clock += 1;
        self.bytes += pixmap.data().len();
        if let Some((old, _, _)) = self.entries.insert(key, (pixmap, self.clock, reservation)) {
            self.bytes -= old.data().len();
        }
        while self.bytes > SIZED_CACHE_BYTES && self.entries.len() > 1 && self.evict_oldest() {}
    }

    /// Drops the least recently used copy; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, (_, used, _))| *used)
            .map(|(k, _)| k.clone())
        else {
            return false;
        };
        if let Some((p, _, _)) = self.entries.remove(&oldest) {
            self.bytes -= p.data().len();
        }
        true
    }
}

/// Orders `asset-2` before `asset-10`.
fn natural(id: &str) -> (u64, &str) {
    (
        id.strip_prefix("asset-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX),
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, rgba: [u8; 4]) -> Bytes {
        let mut buf = Vec::new();
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba(rgba));
        img.write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png)
            .unwrap();
        Bytes::from(buf)
    }

    /// Decodes with an unbounded budget.
    fn decode(
        id: &str,
        name: &str,
        mime: &str,
        data: &Bytes,
        limits: &AssetLimits,
    ) -> Result<Asset, AssetError> {
        let budget = DecodedBudget::new(u64::MAX);
        super::decode(id, name, mime, data, limits, (1920, 1080), move |b| {
            Ok(budget.try_reserve(b).unwrap())
        })
    }

    #[test]
    fn images_are_checked_decoded_and_premultiplied() {
        let limits = AssetLimits::default();
        let a = decode(
            "a",
            "a",
            "image/png",
            &png(4, 3, [200, 100, 0, 128]),
            &limits,
        )
        .unwrap();
        assert_eq!(
            (a.info.width, a.info.height, a.info.kind),
            (4, 3, AssetKind::Image)
        );
        let p = a.pixmap.unwrap();
        let px = p.pixel(0, 0).unwrap();
        assert_eq!((px.red(), px.green(), px.alpha()), (100, 50, 128));

        let lying = decode("b", "b", "image/jpeg", &png(4, 3, [0; 4]), &limits);
        assert!(matches!(lying, Err(AssetError::Invalid(m)) if m.contains("png")));
        assert!(matches!(
            decode("c", "c", "text/plain", &png(1, 1, [0; 4]), &limits),
            Err(AssetError::UnsupportedType(_))
        ));
        let small = AssetLimits {
            max_pixels: 11,
            ..limits
        };
        assert!(matches!(
            decode("d", "d", "image/png", &png(4, 3, [0; 4]), &small),
            Err(AssetError::TooManyPixels { pixels: 12, .. })
        ));
        let truncated = png(64, 64, [1, 2, 3, 255]).slice(..60);
        assert!(matches!(
            decode("e", "e", "image/png", &truncated, &limits),
            Err(AssetError::Invalid(_))
        ));
    }

    #[test]
    fn resized_copies_are_premultiplied_and_bounded() {
        let mut src = Pixmap::new(40, 20).unwrap();
        src.fill(tiny_skia::Color::from_rgba8(255, 0, 0, 255));
        let out =
            crate::thumbnail::scale(&mut Resizer::new(), &src, (0, 0, 40, 20), 10, 5).unwrap();
        let px = out.pixel(5, 2).unwrap();
        assert_eq!((px.red(), px.alpha()), (255, 255));
    }

    /// An asset manager over a memory store, for a stream of `frame`, with a decoded budget.
    fn manager((width, height): (u32, u32), max_decoded_bytes: u64) -> AssetManager {
        let config = crate::state::StreamConfig {
            width,
            height,
            ..Default::default()
        };
        let store = Arc::new(crate::state::store::MemoryStore::default());
        let limits = AssetLimits {
            max_decoded_bytes,
            ..AssetLimits::default()
        };
        AssetManager::new(Arc::new(StateManager::new(store, "", config)), limits)
    }

    #[tokio::test]
    async fn an_image_too_large_for_the_budget_is_kept_at_the_size_that_covers_the_frame() {
        let assets = manager((64, 36), 100_000);
        for _ in 0..2 {
            assets
                .upload("image/png", None, png(100, 100, [9; 4]))
                .await
                .unwrap();
        }
        // 400x300 takes 480 000 bytes whole; 64x48 (covering 64x36) takes 12 288.
        let big = assets
            .upload("image/png", None, png(400, 300, [200, 100, 50, 255]))
            .await
            .unwrap();
        assert_eq!((big.width, big.height), (400, 300));
        assert_eq!(
            big.kept,
            Some(KeptSize {
                width: 64,
                height: 48
            })
        );
        let kept = assets.get(&big.id).unwrap();
        let pixmap = kept.pixmap.as_ref().unwrap();
        assert_eq!((pixmap.width(), pixmap.height()), (64, 48));
        let p = pixmap.pixel(10, 10).unwrap();
        assert_eq!(
            (p.red(), p.green(), p.blue(), p.alpha()),
            (200, 100, 50, 255)
        );
        assert_eq!(assets.budget().used(), 80_000 + 12_288);
        // Not even that fits now: refused with the whole image's size.
        let e = assets
            .upload("image/png", None, png(400, 300, [1; 4]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                AssetError::OverBudget {
                    needed: 480_000,
                    ..
                }
            ),
            "{e:?}"
        );
        // An image no larger than the frame is never reduced.
        assert_eq!(covering_size(64, 36, (64, 36)), None);
        assert_eq!(covering_size(32, 18, (64, 36)), None);
        assert_eq!(covering_size(6400, 100, (64, 36)), Some((2304, 36)));
    }

    #[tokio::test]
    async fn decoded_pixels_are_bounded_server_wide_and_copies_give_way() {
        // Room for two 100x100 images (40 000 bytes each) and a little more.
        let assets = manager((1920, 1080), 85_000);
        let a = assets
            .upload("image/png", None, png(100, 100, [9; 4]))
            .await
            .unwrap();
        let b = assets
            .upload("image/png", None, png(100, 100, [9; 4]))
            .await
            .unwrap();
        assert_eq!(assets.budget().used(), 80_000);
        // A copy drawn at 50x50 (10 000 bytes) does not fit beside them: drawn unprepared.
        let res = assets.resources(&[(a.id.clone(), 50, 50)]);
        assert!(res.prepared(&a.id, 50, 50).is_none());
        assert_eq!(assets.budget().used(), 80_000);
        // A third image is refused before it is decoded, naming the budget.
        let e = assets
            .upload("image/png", None, png(100, 100, [9; 4]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                AssetError::OverBudget {
                    needed: 40_000,
                    used: 80_000,
                    budget: 85_000
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("--max-decoded-bytes"), "{e}");
        // Deleting one gives its bytes back; now a copy fits, and a new upload makes it
        // give way.
        assets.delete(&b.id).await.unwrap();
        assert_eq!(assets.budget().used(), 40_000);
        let res = assets.resources(&[(a.id.clone(), 50, 50)]);
        assert!(res.prepared(&a.id, 50, 50).is_some());
        drop(res);
        assert_eq!(assets.budget().used(), 50_000);
        assets
            .upload("image/png", None, png(100, 100, [9; 4]))
            .await
            .unwrap();
        assert_eq!(assets.budget().used(), 80_000, "the copy gave way");
    }
}
