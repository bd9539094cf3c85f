//! Choosing and opening the H.264 encoder, and the input path each one needs.
//!
//! `encoder: auto` probes [`PROBE_ORDER`] (h264_nvenc, h264_qsv, h264_vaapi): each is
//! really opened at the configured size and rate with the frames it takes (YUV 4:2:0 planes
//! for NVENC, NV12 planes for Quick Sync, NV12 uploaded to VA-API surfaces of a device and
//! frame pool of its own for VA-API). The first that opens is used; when none does, libx264
//! is, and the [`EncoderSelection`] says which one was picked and why each other was
//! skipped. An encoder configured by name is opened alone: if it cannot open, that is the
//! error (the API answers 503 `pipeline_unavailable` with its reason).

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use yuv::{
    BufferStoreMut, YuvBiPlanarImageMut, YuvConversionMode, YuvPlanarImageMut, YuvRange,
    YuvStandardMatrix,
};

use crate::config::EncoderKind;
use crate::encoder::{EncodeError, EncoderSettings};

/// The hardware encoders `auto` tries, in this order, before libx264.
pub const PROBE_ORDER: [EncoderKind; 3] =
    [EncoderKind::Nvenc, EncoderKind::Qsv, EncoderKind::Vaapi];

/// Which video encoder runs, and why the ones tried before it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncoderSelection {
    /// The FFmpeg encoder in use, e.g. `libx264`, `h264_nvenc`.
    pub name: String,
    /// Whether it encodes on a GPU or media engine.
    pub hardware: bool,
    /// With `auto`: the encoders tried before it, in order, with why each did not open.
    pub skipped: Vec<SkippedEncoder>,
}

/// An encoder `auto` tried and did not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SkippedEncoder {
    /// FFmpeg encoder name.
    pub name: String,
    /// Why it did not open.
    pub reason: String,
}

/// An opened video encoder with the input it takes.
pub struct VideoEncoder {
    /// The FFmpeg encoder.
    pub encoder: ffmpeg::encoder::Video,
    /// Where each RGBA frame is converted to, and what is sent.
    pub input: VideoInput,
    /// Which encoder it is, and what `auto` skipped.
    pub selection: EncoderSelection,
}

/// What an encoder takes: planes in memory, or surfaces on a device.
pub enum VideoInput {
    /// YUV 4:2:0, three planes (libx264, NVENC).
    Yuv420p(ffmpeg::frame::Video),
    /// NV12, luma and interleaved chroma (Quick Sync).
    Nv12(ffmpeg::frame::Video),
    /// NV12 in memory, uploaded to a VA-API surface from the encoder's pool per frame.
    Vaapi(Box<VaapiInput>),
}

/// The surface pool and frames of the VA-API path (the pool holds its device).
pub struct VaapiInput {
    frames: HwRef,
    staging: ffmpeg::frame::Video,
    surface: ffmpeg::frame::Video,
}

/// One owned reference to an FFmpeg buffer (a hardware device or frames context).
struct HwRef(*mut ffi::AVBufferRef);

// SAFETY: an AVBufferRef is reference counted atomically by FFmpeg; this handle is only
// used by the encoder thread that owns the encoder it belongs to.
unsafe impl Send for HwRef {}

impl Drop for HwRef {
    fn drop(&mut self) {
        // SAFETY: the pointer is an owned reference (or null, which unref accepts).
        unsafe { ffi::av_buffer_unref(&mut self.0) };
    }
}

impl VideoInput {
    /// Converts an opaque RGBA image of the frame's size in, ready to send.
    pub fn load(&mut self, rgba: &[u8]) -> Result<(), EncodeError> {
        match self {
            VideoInput::Yuv420p(frame) => rgba_to_yuv420p(rgba, frame),
            VideoInput::Nv12(frame) => rgba_to_nv12(rgba, frame),
            VideoInput::Vaapi(v) => {
                rgba_to_nv12(rgba, &mut v.staging)?;
                v.upload()
            }
        }
    }

    /// The frame to send (the last one loaded).
    pub fn frame_mut(&mut self) -> &mut ffmpeg::frame::Video {
        match self {
            VideoInput::Yuv420p(f) | VideoInput::Nv12(f) => f,
            VideoInput::Vaapi(v) => &mut v.surface,
        }
    }
}

impl VaapiInput {
    /// Opens the default VA-API device and a pool of NV12 surfaces of `width`×`height`.
    fn new(width: u32, height: u32) -> Result<Self, String> {
        // SAFETY: plain FFmpeg C calls on pointers this function owns; every reference is
        // wrapped in an `HwRef` as soon as it exists, so an early return frees it.
        unsafe {
            let mut device = std::ptr::null_mut();
            let r = ffi::av_hwdevice_ctx_create(
                &mut device,
                ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
                std::ptr::null(),
                std::ptr::null_mut(),
                0,
            );
            if r < 0 {
                return Err(format!(
                    "no VA-API device ({}); it needs {}",
                    ffmpeg::Error::from(r),
                    EncoderKind::Vaapi.needs()
                ));
            }
            let device = HwRef(device);
            let frames = HwRef(ffi::av_hwframe_ctx_alloc(device.0));
            if frames.0.is_null() {
                return Err("no VA-API frame pool".into());
            }
            let ctx = (*frames.0).data.cast::<ffi::AVHWFramesContext>();
            (*ctx).format = ffi::AVPixelFormat::AV_PIX_FMT_VAAPI;
            (*ctx).sw_format = ffi::AVPixelFormat::AV_PIX_FMT_NV12;
            (*ctx).width = width as i32;
            (*ctx).height = height as i32;
            (*ctx).initial_pool_size = 8;
            let r = ffi::av_hwframe_ctx_init(frames.0);
            if r < 0 {
                return Err(format!(
                    "VA-API surfaces of {width}x{height} NV12: {}",
                    ffmpeg::Error::from(r)
                ));
            }
            Ok(Self {
                frames,
                staging: ffmpeg::frame::Video::new(ffmpeg::format::Pixel::NV12, width, height),
                surface: ffmpeg::frame::Video::empty(),
            })
        }
    }

    /// Copies the staging frame to a surface from the pool.
    fn upload(&mut self) -> Result<(), EncodeError> {
        // SAFETY: `surface` is a frame we own; it is unreferenced, then given a pool surface
        // of the frames context, then filled from `staging` (same size and format).
        unsafe {
            let surface = self.surface.as_mut_ptr();
            ffi::av_frame_unref(surface);
            let r = ffi::av_hwframe_get_buffer(self.frames.0, surface, 0);
            if r < 0 {
                return Err(EncodeError::Convert(format!(
                    "no free VA-API surface: {}",
                    ffmpeg::Error::from(r)
                )));
            }
            let r = ffi::av_hwframe_transfer_data(surface, self.staging.as_ptr(), 0);
            if r < 0 {
                return Err(EncodeError::Convert(format!(
                    "upload to a VA-API surface: {}",
                    ffmpeg::Error::from(r)
                )));
            }
        }
        Ok(())
    }
}

impl EncoderKind {
    /// Whether this encoder runs on a GPU or media engine.
    pub fn is_hardware(self) -> bool {
        !matches!(self, EncoderKind::Auto | EncoderKind::Libx264)
    }

    /// What a machine needs for this encoder to open (said when it does not).
    fn needs(self) -> &'static str {
        match self {
            EncoderKind::Nvenc => "an NVIDIA GPU with its driver (libcuda, libnvidia-encode)",
            EncoderKind::Qsv => "an Intel GPU with Quick Sync and the oneVPL or Media SDK runtime",
            EncoderKind::Vaapi => "a VA-API render device (/dev/dri/renderD*) and its driver",
            EncoderKind::Auto | EncoderKind::Libx264 => "FFmpeg built with libx264",
        }
    }
}

/// Opens the encoder `config.encoder` names, or with `auto` the first of [`PROBE_ORDER`]
/// that opens, else libx264.
pub fn select(config: &EncoderSettings) -> Result<VideoEncoder, EncodeError> {
    ffmpeg::init().map_err(|e| EncodeError::Setup(format!("ffmpeg init: {e}")))?;
    if config.encoder != EncoderKind::Auto {
        return open(config.encoder, config, Vec::new());
    }
    let mut skipped = Vec::new();
    for kind in PROBE_ORDER {
        match open(kind, config, Vec::new()) {
            Ok(mut v) => {
                v.selection.skipped = skipped;
                return Ok(v);
            }
            Err(e) => skipped.push(SkippedEncoder {
                name: kind.ffmpeg_name().into(),
                reason: match e {
                    EncodeError::Unavailable { reason, .. } => reason,
                    other => other.to_string(),
                },
            }),
        }
    }
    open(EncoderKind::Libx264, config, skipped)
}

/// Opens encoder `kind` at the configured size, rate and bit rate with its input path.
fn open(
    kind: EncoderKind,
    config: &EncoderSettings,
    skipped: Vec<SkippedEncoder>,
) -> Result<VideoEncoder, EncodeError> {
    let name = kind.ffmpeg_name();
    let unavailable = |reason: String| EncodeError::Unavailable {
        name: name.into(),
        reason,
    };
    let codec = ffmpeg::encoder::find_by_name(name)
        .ok_or_else(|| unavailable("not in this FFmpeg build".into()))?;
    let (w, h) = (config.width, config.height);
    let (input, format) = match kind {
        EncoderKind::Auto | EncoderKind::Libx264 | EncoderKind::Nvenc => (
            VideoInput::Yuv420p(ffmpeg::frame::Video::new(
                ffmpeg::format::Pixel::YUV420P,
                w,
                h,
            )),
            ffmpeg::format::Pixel::YUV420P,
        ),
        EncoderKind::Qsv => (
            VideoInput::Nv12(ffmpeg::frame::Video::new(ffmpeg::format::Pixel::NV12, w, h)),
            ffmpeg::format::Pixel::NV12,
        ),
        EncoderKind::Vaapi => (
            VideoInput::Vaapi(Box::new(VaapiInput::new(w, h).map_err(unavailable)?)),
            ffmpeg::format::Pixel::VAAPI,
        ),
    };
    let mut v = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| EncodeError::Setup(format!("video context: {e}")))?;
    v.set_width(w);
    v.set_height(h);
    v.set_format(format);
    v.set_time_base((1, config.target_fps as i32));
    v.set_frame_rate(Some((config.target_fps as i32, 1)));
    v.set_bit_rate(config.video_bitrate_kbps as usize * 1000);
    v.set_max_bit_rate(config.video_bitrate_kbps as usize * 1000);
    v.set_gop(config.gop_frames);
    v.set_max_b_frames(0);
    v.set_colorspace(ffmpeg::color::Space::BT709);
    v.set_color_range(ffmpeg::color::Range::MPEG);
    v.set_color_primaries(ffmpeg::color::Primaries::BT709);
    v.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    if let VideoInput::Vaapi(vaapi) = &input {
        // SAFETY: the context is not opened yet; it takes its own reference to the pool.
        unsafe {
            (*v.as_mut_ptr()).hw_frames_ctx = ffi::av_buffer_ref(vaapi.frames.0);
        }
    }
    let mut opts = ffmpeg::Dictionary::new();
    // VBV buffer of one second keeps the bit rate near the target (CBR-like).
    opts.set("bufsize", &format!("{}k", config.video_bitrate_kbps));
    match kind {
        EncoderKind::Auto | EncoderKind::Libx264 => {
            opts.set("preset", &config.preset);
            opts.set("tune", "zerolatency");
            // Fixed GOP: keyframes exactly every keyframeIntervalSec, as platforms ask.
            opts.set(
                "x264-params",
                &format!("scenecut=0:keyint-min={}:nal-hrd=cbr", config.gop_frames),
            );
        }
        EncoderKind::Nvenc => {
            opts.set("preset", nvenc_preset(&config.preset));
            opts.set("tune", "ll");
            opts.set("rc", "cbr");
            opts.set("zerolatency", "1");
            opts.set("no-scenecut", "1");
            opts.set("forced-idr", "1");
        }
        EncoderKind::Qsv => {
            opts.set("preset", qsv_preset(&config.preset));
            opts.set("look_ahead", "0");
            opts.set("async_depth", "1");
            opts.set("forced_idr", "1");
        }
        EncoderKind::Vaapi => {
            opts.set("rc_mode", "CBR");
            opts.set("async_depth", "1");
        }
    }
    let encoder = v.open_with(opts).map_err(|e| {
        unavailable(if kind.is_hardware() {
            format!("it did not open ({e}); it needs {}", kind.needs())
        } else {
            e.to_string()
        })
    })?;
    Ok(VideoEncoder {
        encoder,
        input,
        selection: EncoderSelection {
            name: name.into(),
            hardware: kind.is_hardware(),
            skipped,
        },
    })
}

/// The NVENC preset (p1 fastest … p7 best) nearest an x264 preset name.
fn nvenc_preset(x264: &str) -> &'static str {
    match x264 {
        "ultrafast" | "superfast" => "p1",
        "veryfast" => "p2",
        "faster" => "p3",
        "fast" => "p4",
        "medium" => "p5",
        "slow" => "p6",
        _ => "p7",
    }
}

/// The Quick Sync preset nearest an x264 preset name (it has no ultrafast or superfast).
fn qsv_preset(x264: &str) -> &'static str {
    match x264 {
        "ultrafast" | "superfast" | "veryfast" => "veryfast",
        "faster" => "faster",
        "fast" => "fast",
        "medium" => "medium",
        "slow" => "slow",
        "slower" => "slower",
        _ => "veryslow",
    }
}

/// The planes of a writable frame: (pointer, stride, rows) of each.
///
/// # Safety
/// `frame` must be an allocated video frame of its width, height and format, with `planes`
/// planes whose heights are given by `rows`.
unsafe fn planes<const N: usize>(
    frame: &mut ffmpeg::frame::Video,
    rows: [usize; N],
) -> Result<[(&mut [u8], u32); N], EncodeError> {
    // SAFETY: `make_writable` keeps the frame's buffers private to us (the encoder copies
    // or references a frame it is sent, never a writable one we keep writing); the planes
    // are disjoint ranges of sizes computed from FFmpeg's own strides.
    unsafe {
        let f = frame.as_mut_ptr();
        if ffi::av_frame_make_writable(f) < 0 {
            return Err(EncodeError::Convert("frame not writable".into()));
        }
        let ls = (*f).linesize;
        Ok(std::array::from_fn(|i| {
            (
                std::slice::from_raw_parts_mut((*f).data[i], ls[i] as usize * rows[i]),
                ls[i] as u32,
            )
        }))
    }
}

fn check_size(rgba: &[u8], frame: &ffmpeg::frame::Video) -> Result<(u32, u32), EncodeError> {
    let (w, h) = (frame.width(), frame.height());
    if rgba.len() < w as usize * h as usize * 4 {
        return Err(EncodeError::Convert(
            "RGBA buffer smaller than the frame".into(),
        ));
    }
    Ok((w, h))
}

/// Converts an opaque RGBA image of the frame's size into a YUV 4:2:0 frame (BT.709,
/// limited range), in place.
pub fn rgba_to_yuv420p(rgba: &[u8], frame: &mut ffmpeg::frame::Video) -> Result<(), EncodeError> {
    let (width, height) = check_size(rgba, frame)?;
    let (h, ch) = (height as usize, (height as usize).div_ceil(2));
    // SAFETY: a YUV420P frame of its own size has three planes of h, h/2, h/2 rows.
    let [(y, ys), (u, us), (v, vs)] = unsafe { planes(frame, [h, ch, ch])? };
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: ys,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: us,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: vs,
        width,
        height,
    };
    yuv::rgba_to_yuv420(
        &mut planar,
        rgba,
        width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt709,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| EncodeError::Convert(e.to_string()))
}

/// Converts an opaque RGBA image of the frame's size into an NV12 frame (BT.709, limited
/// range), in place.
pub fn rgba_to_nv12(rgba: &[u8], frame: &mut ffmpeg::frame::Video) -> Result<(), EncodeError> {
    let (width, height) = check_size(rgba, frame)?;
    let (h, ch) = (height as usize, (height as usize).div_ceil(2));
    // SAFETY: an NV12 frame of its own size has two planes of h and h/2 rows.
    let [(y, ys), (uv, uvs)] = unsafe { planes(frame, [h, ch])? };
    let mut bi = YuvBiPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: ys,
        uv_plane: BufferStoreMut::Borrowed(uv),
        uv_stride: uvs,
        width,
        height,
    };
    yuv::rgba_to_yuv_nv12(
        &mut bi,
        rgba,
        width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt709,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| EncodeError::Convert(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AudioMode;

    fn settings(encoder: EncoderKind) -> EncoderSettings {
        EncoderSettings {
            width: 320,
            height: 180,
            target_fps: 30,
            video_bitrate_kbps: 500,
            gop_frames: 60,
            preset: "ultrafast".into(),
            encoder,
            audio: AudioMode::None,
            audio_bitrate_kbps: 128,
        }
    }

    /// This machine has no GPU: `auto` tries the three hardware encoders in order, says why
    /// each did not open, and uses libx264. Where a GPU is present the first that opens is
    /// used instead, which this test accepts too.
    #[test]
    fn auto_probes_in_order_and_falls_back_to_libx264() {
        let v = select(&settings(EncoderKind::Auto)).unwrap();
        let tried: Vec<&str> = v
            .selection
            .skipped
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let order: Vec<&str> = PROBE_ORDER.iter().map(|k| k.ffmpeg_name()).collect();
        assert_eq!(
            tried,
            order[..tried.len()],
            "skipped out of order: {:?}",
            v.selection
        );
        if v.selection.name == "libx264" {
            assert_eq!(tried, order, "{:?}", v.selection);
            assert!(!v.selection.hardware);
            assert!(matches!(v.input, VideoInput::Yuv420p(_)));
        } else {
            assert_eq!(v.selection.name, order[tried.len()]);
        }
        for s in &v.selection.skipped {
            assert!(!s.reason.is_empty(), "{s:?}");
        }
    }

    /// A hardware encoder asked for by name that cannot open is an error naming it and the
    /// reason (where it can open, it is used).
    #[test]
    fn a_named_hardware_encoder_that_cannot_open_is_an_error() {
        for kind in PROBE_ORDER {
            match select(&settings(kind)) {
                Ok(v) => assert_eq!(v.selection.name, kind.ffmpeg_name()),
                Err(EncodeError::Unavailable { name, reason }) => {
                    assert_eq!(name, kind.ffmpeg_name());
                    assert!(!reason.is_empty());
                }
                Err(e) => panic!("{kind:?}: {e}"),
            }
        }
    }

    /// NV12 conversion (the Quick Sync and VA-API input) gives the same luma and chroma as
    /// the planar one.
    #[test]
    fn nv12_matches_planar_yuv() {
        let (w, h) = (16u32, 8u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i * 7) as u8, (i * 3) as u8, 200, 255])
            .collect();
        let mut planar = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, w, h);
        let mut nv12 = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::NV12, w, h);
        rgba_to_yuv420p(&rgba, &mut planar).unwrap();
        rgba_to_nv12(&rgba, &mut nv12).unwrap();
        for row in 0..h as usize {
            let a = &planar.data(0)[row * planar.stride(0)..][..w as usize];
            let b = &nv12.data(0)[row * nv12.stride(0)..][..w as usize];
            assert_eq!(a, b, "luma row {row}");
        }
        for row in 0..(h / 2) as usize {
            for x in 0..(w / 2) as usize {
                let u = planar.data(1)[row * planar.stride(1) + x];
                let v = planar.data(2)[row * planar.stride(2) + x];
                let uv = &nv12.data(1)[row * nv12.stride(1) + 2 * x..][..2];
                assert_eq!((u, v), (uv[0], uv[1]), "chroma {x},{row}");
            }
        }
    }
}
