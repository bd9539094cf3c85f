//! Media files as inputs: demuxed and decoded with FFmpeg, played in real time by their
//! timestamps, looping without a gap (the next pass continues the timeline one frame after
//! the last), or ending on their last frame.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::decode::{DecodeError, VideoDecoder};
use super::present::Presented;
use super::{Outcome, Session, Source, SourceError};

/// What probing a media file found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaProbe {
    /// Container, as FFmpeg names it (e.g. `mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    /// Video codec (e.g. `h264`).
    pub video_codec: String,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second, as the file declares it.
    pub fps: f64,
    /// Duration in ms (0 when unknown).
    pub duration_ms: u64,
    /// Audio codec, if the file has sound.
    pub audio_codec: Option<String>,
}

/// Opens a file and checks that it is a video this server can play: a container FFmpeg
/// reads, a video stream with a decoder here, a picture within `max`, and a first picture
/// that really decodes.
pub fn probe(path: &Path, max: (u32, u32)) -> Result<MediaProbe, String> {
    ffmpeg::init().map_err(|e| format!("ffmpeg: {e}"))?;
    let mut input = ffmpeg::format::input(path).map_err(|e| format!("not a media file: {e}"))?;
    let container = input.format().name().to_string();
    let stream = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or("the file has no video stream")?;
    let index = stream.index();
    let parameters = stream.parameters();
    let codec = parameters.id();
    let rate = stream.avg_frame_rate();
    let fps = if rate.denominator() > 0 {
        f64::from(rate.numerator()) / f64::from(rate.denominator())
    } else {
        0.0
    };
    let audio_codec = input
        .streams()
        .best(ffmpeg::media::Type::Audio)
        .map(|a| format!("{:?}", a.parameters().id()).to_lowercase());
    let duration_ms = u64::try_from(input.duration())
        .map(|d| d / 1000)
        .unwrap_or(0);
    let mut decoder = VideoDecoder::from_parameters(parameters, max).map_err(|e| e.to_string())?;
    let found = |frame: &ffmpeg::frame::Video| MediaProbe {
        container: container.clone(),
        video_codec: format!("{codec:?}").to_lowercase(),
        width: frame.width(),
        height: frame.height(),
        fps: (fps * 1000.0).round() / 1000.0,
        duration_ms,
        audio_codec: audio_codec.clone(),
    };
    // The first picture must decode (a file can claim a codec and hold garbage); a few
    // hundred packets without one is not a playable video.
    let mut packets = 0u32;
    for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        packets += 1;
        decoder.send(&packet);
        if let Some(frame) = decoder.receive().map_err(|e| e.to_string())? {
            return Ok(found(frame));
        }
        if packets > 300 {
            break;
        }
    }
    decoder.flush();
    match decoder.receive().map_err(|e| e.to_string())? {
        Some(frame) => Ok(found(frame)),
        None => Err("no picture of the video stream decodes".into()),
    }
}

/// A media file played as an input.
pub struct FileSource {
    path: PathBuf,
    looping: bool,
}

impl FileSource {
    /// Plays `path`, looping or not.
    pub fn new(path: PathBuf, looping: bool) -> Self {
        Self { path, looping }
    }
}

fn decode_error(e: DecodeError) -> SourceError {
    match e {
        DecodeError::Open { .. } => SourceError::retry(e.to_string()),
        _ => SourceError::fatal(e.to_string()),
    }
}

impl Source for FileSource {
    fn run(&mut self, session: &mut Session<'_>) -> Result<Outcome, SourceError> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !self.path.is_file() {
            return Err(SourceError::fatal(format!("media file {name:?} not found")));
        }
        ffmpeg::init().map_err(|e| SourceError::retry(format!("ffmpeg: {e}")))?;
        let mut input = ffmpeg::format::input(&self.path)
            .map_err(|e| SourceError::fatal(format!("{name:?} cannot be read: {e}")))?;
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| SourceError::fatal(format!("{name:?} has no video stream")))?;
        let index = stream.index();
        let time_base = f64::from(stream.time_base());
        let rate = stream.avg_frame_rate();
        let frame_time = if rate.numerator() > 0 && rate.denominator() > 0 {
            f64::from(rate.denominator()) / f64::from(rate.numerator())
        } else {
            1.0 / 30.0
        };
        let max = session.settings().max_picture;
        let mut decoder =
            VideoDecoder::from_parameters(stream.parameters(), max).map_err(decode_error)?;
        // The timeline of the current pass starts at `offset`; each pass continues one
        // frame after the last picture of the one before.
        let mut offset = 0.0;
        let mut first: Option<f64> = None;
        let mut end = 0.0f64;
        let mut bytes = 0usize;
        let mut window = Instant::now();
        loop {
            let mut present = |decoder: &mut VideoDecoder,
                               session: &mut Session<'_>,
                               end: &mut f64|
             -> Result<bool, SourceError> {
                while let Some(frame) = decoder.receive().map_err(decode_error)? {
                    let ts = frame.timestamp().unwrap_or(0) as f64 * time_base;
                    let start = *first.get_or_insert(ts);
                    let pts = offset + (ts - start);
                    *end = end.max(pts + frame_time);
                    if session.present(frame, pts, Instant::now()) == Presented::Stopped {
                        return Ok(true);
                    }
                }
                Ok(false)
            };
            for (s, packet) in input.packets() {
                if session.stopping() {
                    return Ok(Outcome::Stopped);
                }
                if s.index() != index {
                    // Audio is demuxed here too; the mixer takes it in a later step.
                    continue;
                }
                bytes += packet.size();
                let elapsed = window.elapsed().as_secs_f64();
                if elapsed >= 1.0 {
                    session.received(bytes as f64 * 8.0 / 1000.0 / elapsed);
                    bytes = 0;
                    window = Instant::now();
                }
                decoder.send(&packet);
                if present(&mut decoder, session, &mut end)? {
                    return Ok(Outcome::Stopped);
                }
            }
            decoder.flush();
            if present(&mut decoder, session, &mut end)? {
                return Ok(Outcome::Stopped);
            }
            if !self.looping {
                return Ok(Outcome::Ended);
            }
            input.seek(0, ..).map_err(|e| {
                SourceError::retry(format!("{name:?}: seeking to the start failed: {e}"))
            })?;
            decoder.reset();
            offset = end;
            first = None;
        }
    }
}
