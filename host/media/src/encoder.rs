//! The encoder stage: RGBA frames in, H.264 + AAC FLV packets out to the hub.
//!
//! Runs on its own OS thread and owns every FFmpeg object it uses. The video encoder is the
//! one [`video_encoder::select`] picks. Per frame it converts RGBA to what that encoder takes
//! (YUV 4:2:0 or NV12, BT.709, limited range, SIMD via the `yuv` crate) straight into the one
//! reused input frame (uploaded to a VA-API surface for that encoder), hands the RGBA buffer
//! back to the pool, encodes, and
//! publishes. Then it encodes the program sound up to where it is due: with `audio: mix`
//! every AAC frame comes from the [`Mixer`], [`LOOKBEHIND`] after its time on the render
//! clock (so a source's audio that arrives a little after its pictures is still in time;
//! the packets carry their program timestamps, in sync with the video), with `silent`
//! digital silence keeping pace with the video. The only per-frame allocations are the
//! packets themselves, which consumers share by reference count.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use ffmpeg_next as ffmpeg;
use rml_rtmp::sessions::StreamMetadata;

use crate::audio::CHANNELS;
use crate::audio::mixer::{AudioMix, Mixer};
use crate::config::{AudioMode, EncoderKind};
use crate::flv;
use crate::frames::{FrameMsg, PipelineStats};
use crate::hub::{MediaHub, MediaPacket, StreamHeaders, Track};
use crate::preview::PreviewTap;
use crate::video_encoder::{self, EncoderSelection, VideoEncoder, VideoInput};

const AUDIO_RATE: i32 = crate::audio::RATE as i32;

/// How long after its time on the render clock the program sound is mixed: a source's audio
/// may reach its input this much after its pictures and still be heard in sync.
pub const LOOKBEHIND: Duration = Duration::from_millis(100);

/// Encoder faults.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The configured encoder is not in this FFmpeg build or has no usable device.
    #[error("encoder {name} is not available: {reason}")]
    Unavailable {
        /// FFmpeg encoder name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Setting the encoder up failed.
    #[error("encoder set-up: {0}")]
    Setup(String),
    /// Encoding a frame failed.
    #[error("encoding frame {frame}: {source}")]
    Encode {
        /// Clock tick of the frame.
        frame: u64,
        /// FFmpeg's error.
        source: ffmpeg::Error,
    },
    /// Colour conversion failed.
    #[error("colour conversion: {0}")]
    Convert(String),
}

struct AudioTrack {
    encoder: ffmpeg::encoder::Audio,
    /// The frame handed to the encoder (planar float); silence unless mixed into.
    frame: ffmpeg::frame::Audio,
    next_pts: i64,
    frame_size: i64,
    /// The program mix (`audio: mix`), once given.
    mixer: Option<Mixer>,
    /// The mixer's interleaved output.
    interleaved: Vec<f32>,
}

/// What an encoder is opened with (the server derives it from its stream configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSettings {
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub target_fps: u32,
    /// Video bit rate, kbit/s (constant).
    pub video_bitrate_kbps: u32,
    /// The video encoder.
    pub encoder: EncoderKind,
    /// Encoder preset (x264 names).
    pub preset: String,
    /// Frames between key frames.
    pub gop_frames: u32,
    /// The audio track.
    pub audio: AudioMode,
    /// AAC bit rate, kbit/s.
    pub audio_bitrate_kbps: u32,
}

/// An opened encoder pair bound to a hub.
pub struct Encoder {
    video: ffmpeg::encoder::Video,
    audio: Option<AudioTrack>,
    input: VideoInput,
    selection: EncoderSelection,
    packet: ffmpeg::Packet,
    hub: Arc<MediaHub>,
    base_ms: u32,
    fps: u32,
    width: u32,
    height: u32,
    /// (pts, render time) of frames inside the encoder, for latency.
    in_flight: VecDeque<(i64, Instant)>,
    has_frame: bool,
    preview: Option<PreviewTap>,
    /// When tick 0 was due on the render clock (from the first frame's `due`).
    origin: Option<Instant>,
    /// The clock tick of the newest frame encoded.
    last_pts: Option<i64>,
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> EncodeError + '_ {
    move |e| EncodeError::Setup(format!("{what}: {e}"))
}

/// The codec extradata (global headers) of an opened encoder.
fn extradata(ctx: &ffmpeg::codec::Context) -> Vec<u8> {
    // SAFETY: the context is open; FFmpeg owns `extradata` of `extradata_size` bytes (or null).
    unsafe {
        let p = ctx.as_ptr();
        if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
    }
}

impl Encoder {
    /// Opens the video (and audio) encoders for `config` and announces their headers on
    /// the hub.
    pub fn open(config: &EncoderSettings, hub: Arc<MediaHub>) -> Result<Self, EncodeError> {
        let VideoEncoder {
            encoder: video,
            input,
            selection,
        } = video_encoder::select(config)?;
        let video_header =
            flv::avc_sequence_header(&extradata(&video)).map_err(setup("H.264 headers"))?;

        let audio = match config.audio {
            AudioMode::None => None,
            AudioMode::Silent | AudioMode::Mix => Some(open_audio(config.audio_bitrate_kbps)?),
        };
        let audio_header = audio
            .as_ref()
            .map(|a| flv::aac_sequence_header(&extradata(&a.encoder)));

        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(config.width);
        metadata.video_height = Some(config.height);
        metadata.video_codec_id = Some(flv::FLV_CODEC_AVC);
        metadata.video_frame_rate = Some(config.target_fps as f32);
        metadata.video_bitrate_kbps = Some(config.video_bitrate_kbps);
        if audio.is_some() {
            metadata.audio_codec_id = Some(flv::FLV_CODEC_AAC);
            metadata.audio_bitrate_kbps = Some(config.audio_bitrate_kbps);
            metadata.audio_sample_rate = Some(AUDIO_RATE as u32);
            metadata.audio_channels = Some(2);
            metadata.audio_is_stereo = Some(true);
        }
        metadata.encoder = Some(format!("stream-manager {}", env!("CARGO_PKG_VERSION")));

        let base_ms = hub.begin(StreamHeaders {
            metadata,
            video: video_header,
            audio: audio_header,
        });
        Ok(Self {
            video,
            audio,
            input,
            selection,
            packet: ffmpeg::Packet::empty(),
            hub,
            base_ms,
            fps: config.target_fps,
            width: config.width,
            height: config.height,
            in_flight: VecDeque::with_capacity(64),
            has_frame: false,
            preview: None,
            origin: None,
            last_pts: None,
        })
    }

    /// Which video encoder runs (and, with `auto`, what was skipped).
    pub fn selection(&self) -> &EncoderSelection {
        &self.selection
    }

    /// Mixes the program sound from `mix` (with `audio: mix`; otherwise the track stays
    /// silent or absent as configured).
    pub fn set_mix(&mut self, mix: Arc<AudioMix>, mode: AudioMode) {
        if let (Some(a), AudioMode::Mix) = (self.audio.as_mut(), mode) {
            a.mixer = Some(Mixer::new(mix, a.frame_size as usize, self.fps));
        }
    }

    /// Encodes every frame from `frames` until the render side closes the queue, then
    /// flushes the encoders.
    pub fn run(
        &mut self,
        frames: &Receiver<FrameMsg>,
        pool: &Sender<Vec<u8>>,
        stats: &PipelineStats,
    ) -> Result<(), EncodeError> {
        while let Ok(msg) = frames.recv() {
            stats.queued.store(frames.len() as u64, Ordering::Relaxed);
            let (index, due) = match &msg {
                FrameMsg::Rendered { index, due, .. } | FrameMsg::Repeat { index, due, .. } => {
                    (*index, *due)
                }
            };
            if self.origin.is_none() {
                let interval = Duration::from_secs(1) / self.fps.max(1);
                self.origin = due.checked_sub(interval * index as u32);
            }
            match msg {
                FrameMsg::Rendered {
                    buffer, index, at, ..
                } => {
                    let result = self.encode(Some(&buffer), index, at, stats);
                    let _ = pool.try_send(buffer);
                    result?;
                }
                FrameMsg::Repeat { index, at, .. } => self.encode(None, index, at, stats)?,
            }
        }
        // Flush: the queue closed because the stream stops or restarts.
        let _ = self.video.send_eof();
        self.drain_video(stats);
        self.finish_audio(stats)
    }

    /// Encodes the RGBA frame `rgba` (or, with `None`, the previous frame again) as clock
    /// tick `index`, rendered at `at`, and publishes the packets that come out.
    pub fn encode(
        &mut self,
        rgba: Option<&[u8]>,
        index: u64,
        at: Instant,
        stats: &PipelineStats,
    ) -> Result<(), EncodeError> {
        match rgba {
            Some(rgba) => {
                self.convert(rgba)?;
                self.has_frame = true;
                if let Some(tap) = &mut self.preview {
                    let number = stats.encoded.load(Ordering::Relaxed);
                    tap.offer(rgba, self.width, self.height, number);
                }
            }
            None if !self.has_frame => return Ok(()),
            None => {}
        }
        let pts = index as i64;
        if self.in_flight.len() == self.in_flight.capacity() {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back((pts, at));
        let frame = self.input.frame_mut();
        frame.set_pts(Some(pts));
        self.video
            .send_frame(frame)
            .map_err(|source| EncodeError::Encode {
                frame: index,
                source,
            })?;
        self.drain_video(stats);
        self.last_pts = Some(pts);
        self.encode_audio_until(self.video_ms(pts), stats)?;
        stats.encoded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Offers every new frame to the live preview.
    pub fn set_preview(&mut self, tap: PreviewTap) {
        self.preview = Some(tap);
    }

    fn video_ms(&self, pts: i64) -> u32 {
        self.base_ms
            .wrapping_add((pts * 1000 / i64::from(self.fps)) as u32)
    }

    fn convert(&mut self, rgba: &[u8]) -> Result<(), EncodeError> {
        self.input.load(rgba)
    }

    fn drain_video(&mut self, stats: &PipelineStats) {
        while self.video.receive_packet(&mut self.packet).is_ok() {
            let Some(data) = self.packet.data() else {
                continue;
            };
            let dts = self.packet.dts().or(self.packet.pts()).unwrap_or(0);
            let pts = self.packet.pts().unwrap_or(dts);
            let keyframe = self.packet.is_key();
            let cts = ((pts - dts) * 1000 / i64::from(self.fps)) as i32;
            let body = flv::avc_frame(data, keyframe, cts);
            while let Some(&(p, at)) = self.in_flight.front() {
                if p > pts {
                    break;
                }
                self.in_flight.pop_front();
                if p == pts {
                    stats
                        .encoder_latency_us
                        .store(at.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
            }
            stats
                .encoded_bytes
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            self.hub.publish(MediaPacket {
                track: Track::Video,
                timestamp: self.video_ms(dts.max(0)),
                keyframe,
                data: body,
            });
        }
    }

    /// Encodes the program sound: mixed up to [`LOOKBEHIND`] before now on the render clock,
    /// or (silent, or no clock yet) silence up to `until_ms` of video.
    fn encode_audio_until(
        &mut self,
        until_ms: u32,
        stats: &PipelineStats,
    ) -> Result<(), EncodeError> {
        let limit = Instant::now().checked_sub(LOOKBEHIND);
        self.encode_audio(until_ms, limit, stats)
    }

    /// At the end of the stream or before a restart: the program sound up to the end of the
    /// last frame without waiting out the look-behind (what has not arrived by now is
    /// silence), then the AAC encoder's last packets. The sound ends with the pictures, and
    /// the next pipeline continues it after the same pause as the pictures.
    fn finish_audio(&mut self, stats: &PipelineStats) -> Result<(), EncodeError> {
        let Some(last) = self.last_pts else {
            return Ok(());
        };
        let end = last + 1;
        let limit = self.origin.map(|origin| {
            origin + Duration::from_nanos(end as u64 * 1_000_000_000 / u64::from(self.fps.max(1)))
        });
        self.encode_audio(self.video_ms(end), limit, stats)?;
        if let Some(a) = self.audio.as_mut() {
            let _ = a.encoder.send_eof();
            publish_audio(a, &mut self.packet, &self.hub, self.base_ms, stats);
        }
        Ok(())
    }

    /// Encodes AAC frames: mixed ones whose end is due by `limit` on the render clock, or
    /// (silent, or no clock yet) silent ones starting by `until_ms` of video.
    fn encode_audio(
        &mut self,
        until_ms: u32,
        limit: Option<Instant>,
        stats: &PipelineStats,
    ) -> Result<(), EncodeError> {
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        let rate = i64::from(AUDIO_RATE);
        let span =
            |pts: i64| Duration::from_nanos((pts.max(0) as u64) * 1_000_000_000 / rate as u64);
        let mixing = match (&a.mixer, self.origin) {
            (Some(_), Some(origin)) => Some(origin),
            _ => None,
        };
        loop {
            match mixing {
                Some(origin) => {
                    let end = origin + span(a.next_pts + a.frame_size);
                    if limit.is_none_or(|l| end > l) {
                        break;
                    }
                    let wall = origin + span(a.next_pts);
                    if let Some(mixer) = a.mixer.as_mut() {
                        mixer.mix(wall, &mut a.interleaved);
                        deinterleave(&a.interleaved, &mut a.frame);
                    }
                }
                None => {
                    if audio_ms(self.base_ms, a.next_pts) > until_ms {
                        break;
                    }
                }
            }
            a.frame.set_pts(Some(a.next_pts));
            a.next_pts += a.frame_size;
            a.encoder
                .send_frame(&a.frame)
                .map_err(|source| EncodeError::Encode { frame: 0, source })?;
            publish_audio(a, &mut self.packet, &self.hub, self.base_ms, stats);
        }
        Ok(())
    }
}

/// The RTMP timestamp of audio sample `pts` of a stream that began at `base` ms.
fn audio_ms(base: u32, pts: i64) -> u32 {
    base.wrapping_add((pts.max(0) * 1000 / i64::from(AUDIO_RATE)) as u32)
}

/// Publishes every AAC packet the encoder has ready.
fn publish_audio(
    a: &mut AudioTrack,
    packet: &mut ffmpeg::Packet,
    hub: &MediaHub,
    base_ms: u32,
    stats: &PipelineStats,
) {
    while a.encoder.receive_packet(packet).is_ok() {
        // The encoder's priming packet (before time 0): players that do not know to skip it
        // would play it first and hear everything a frame (21 ms) late.
        if packet.pts().is_some_and(|p| p < 0) {
            continue;
        }
        let Some(data) = packet.data() else {
            continue;
        };
        let body = flv::aac_frame(data);
        stats
            .encoded_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        hub.publish(MediaPacket {
            track: Track::Audio,
            timestamp: audio_ms(base_ms, packet.pts().unwrap_or(0)),
            keyframe: false,
            data: body,
        });
    }
}

/// Copies interleaved stereo samples into a planar float frame's two planes.
fn deinterleave(interleaved: &[f32], frame: &mut ffmpeg::frame::Audio) {
    let n = frame.samples().min(interleaved.len() / CHANNELS);
    for c in 0..CHANNELS {
        let plane = frame.plane_mut::<f32>(c);
        for (dst, src) in plane[..n]
            .iter_mut()
            .zip(interleaved.chunks_exact(CHANNELS))
        {
            *dst = src[c];
        }
    }
}

/// Converts an opaque RGBA image of the frame's size into a YUV 4:2:0 FFmpeg frame (BT.709,
/// limited range), in place.
pub fn rgba_to_frame(rgba: &[u8], frame: &mut ffmpeg::frame::Video) -> Result<(), EncodeError> {
    video_encoder::rgba_to_yuv420p(rgba, frame)
}

/// Opens an H.264 encoder for YUV 4:2:0 input, for offline rendering and the benchmarks:
/// `auto` is libx264 here (no probe), and an encoder that needs other frames is refused.
/// Constant frame rate, fixed GOP, no B-frames (lowest latency, what RTMP ingest expects),
/// CBR-like rate control, global headers (the sequence header travels separately in FLV).
pub fn open_video(config: &EncoderSettings) -> Result<ffmpeg::encoder::Video, EncodeError> {
    let config = EncoderSettings {
        encoder: match config.encoder {
            EncoderKind::Auto => EncoderKind::Libx264,
            other => other,
        },
        ..config.clone()
    };
    let v = video_encoder::select(&config)?;
    match v.input {
        VideoInput::Yuv420p(_) => Ok(v.encoder),
        _ => Err(EncodeError::Unavailable {
            name: v.selection.name,
            reason: "it takes frames other than YUV 4:2:0 planes; use libx264 or h264_nvenc here"
                .into(),
        }),
    }
}

fn open_audio(bitrate_kbps: u32) -> Result<AudioTrack, EncodeError> {
    let codec =
        ffmpeg::encoder::find(ffmpeg::codec::Id::AAC).ok_or_else(|| EncodeError::Unavailable {
            name: "aac".into(),
            reason: "not in this FFmpeg build".into(),
        })?;
    let mut a = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(setup("audio context"))?;
    let format = ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar);
    a.set_rate(AUDIO_RATE);
    a.set_channel_layout(ffmpeg::ChannelLayout::STEREO);
    a.set_channels(2);
    a.set_format(format);
    a.set_bit_rate(bitrate_kbps as usize * 1000);
    a.set_time_base((1, AUDIO_RATE));
    a.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    let encoder = a
        .open_with(ffmpeg::Dictionary::new())
        .map_err(setup("AAC encoder"))?;
    let frame_size = encoder.frame_size().max(1);
    let mut frame =
        ffmpeg::frame::Audio::new(format, frame_size as usize, ffmpeg::ChannelLayout::STEREO);
    frame.set_rate(AUDIO_RATE as u32);
    for plane in 0..frame.planes() {
        frame.data_mut(plane).fill(0);
    }
    Ok(AudioTrack {
        encoder,
        frame,
        next_pts: 0,
        frame_size: i64::from(frame_size),
        mixer: None,
        interleaved: vec![0.0; frame_size as usize * CHANNELS],
    })
}
