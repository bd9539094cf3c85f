//! Media files as inputs: demuxed and decoded with FFmpeg, played in real time by their
//! timestamps, looping without a gap (the next pass continues the timeline one frame after
//! the last), or ending on their last frame. A file's sound goes to the mixer on the same
//! timeline; a file with sound only (a jingle, a bed) is paced by its sound.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::decode::{DecodeError, VideoDecoder};
use super::present::Presented;
use super::{Outcome, Session, Source, SourceError};
use crate::audio::decode::AudioDecoder;

/// What probing a media file found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaProbe {
    /// Container, as FFmpeg names it (e.g. `mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    /// Video codec (e.g. `h264`); absent for a sound-only file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// Picture width (0 for a sound-only file).
    pub width: u32,
    /// Picture height (0 for a sound-only file).
    pub height: u32,
    /// Frames per second, as the file declares it (0 for a sound-only file).
    pub fps: f64,
    /// Duration in ms (0 when unknown).
    pub duration_ms: u64,
    /// Audio codec, if the file has sound.
    pub audio_codec: Option<String>,
}

/// Opens a file and checks that it is media this server can play: a container FFmpeg
/// reads, with a video stream (a decoder here, a picture within `max`, a first picture that
/// really decodes) or, for jingles and beds, only sound (whose first frame really decodes).
pub fn probe(path: &Path, max: (u32, u32)) -> Result<MediaProbe, String> {
    ffmpeg::init().map_err(|e| format!("ffmpeg: {e}"))?;
    let mut input = ffmpeg::format::input(path).map_err(|e| format!("not a media file: {e}"))?;
    let container = input.format().name().to_string();
    let duration_ms = u64::try_from(input.duration())
        .map(|d| d / 1000)
        .unwrap_or(0);
    let audio = input
        .streams()
        .best(ffmpeg::media::Type::Audio)
        .map(|a| (a.index(), a.parameters()));
    let audio_codec = audio
        .as_ref()
        .map(|(_, p)| format!("{:?}", p.id()).to_lowercase());
    let Some(stream) = input.streams().best(ffmpeg::media::Type::Video) else {
        let Some((index, parameters)) = audio else {
            return Err("the file has neither video nor sound".into());
        };
        let mut decoder = AudioDecoder::from_parameters(parameters).map_err(|e| e.to_string())?;
        let sound = first_decoded(&mut input, index, |packet| {
            match packet {
                Some(p) => decoder.send(p),
                None => decoder.flush(),
            }
            let decoded = decoder.receive().map_err(|e| e.to_string())?;
            Ok(decoded.filter(|d| !d.samples.is_empty()).map(|_| ()))
        })?;
        sound.ok_or("no sound of the audio stream decodes")?;
        return Ok(MediaProbe {
            container,
            video_codec: None,
            width: 0,
            height: 0,
            fps: 0.0,
            duration_ms,
            audio_codec,
        });
    };
    let index = stream.index();
    let parameters = stream.parameters();
    let codec = parameters.id();
    let rate = stream.avg_frame_rate();
    let fps = if rate.denominator() > 0 {
        f64::from(rate.numerator()) / f64::from(rate.denominator())
    } else {
        0.0
    };
    let mut decoder = VideoDecoder::from_parameters(parameters, max).map_err(|e| e.to_string())?;
    let found = |frame: &ffmpeg::frame::Video| MediaProbe {
        container: container.clone(),
        video_codec: Some(format!("{codec:?}").to_lowercase()),
        width: frame.width(),
        height: frame.height(),
        fps: (fps * 1000.0).round() / 1000.0,
        duration_ms,
        audio_codec: audio_codec.clone(),
    };
    // The first picture must decode (a file can claim a codec and hold garbage).
    let picture = first_decoded(&mut input, index, |packet| {
        match packet {
            Some(p) => decoder.send(p),
            None => decoder.flush(),
        }
        Ok(decoder.receive().map_err(|e| e.to_string())?.map(found))
    })?;
    picture.ok_or_else(|| "no picture of the video stream decodes".into())
}

/// Feeds the packets of stream `index` to `step` until it has decoded something (a few
/// hundred packets without is not playable media), then once more with `None` (flush).
fn first_decoded<T>(
    input: &mut ffmpeg::format::context::Input,
    index: usize,
    mut step: impl FnMut(Option<&ffmpeg::Packet>) -> Result<Option<T>, String>,
) -> Result<Option<T>, String> {
    let mut packets = 0u32;
    for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        packets += 1;
        if let Some(found) = step(Some(&packet))? {
            return Ok(Some(found));
        }
        if packets > 300 {
            break;
        }
    }
    step(None)
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

/// How far ahead of due a sound-only file is decoded (the mixer takes sound a little ahead).
const AUDIO_LEAD: Duration = Duration::from_millis(300);

/// One pass over a file: the timeline of the current pass starts at `offset` (seconds),
/// counted from the container's start; each pass continues where the one before ended.
struct Pass {
    offset: f64,
    start: f64,
    end: f64,
}

impl Pass {
    /// A stream timestamp on the input's timeline.
    fn pts(&self, ts: i64, time_base: f64) -> f64 {
        self.offset + (ts as f64 * time_base - self.start)
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
        let max = session.settings().max_picture;
        let mut video = match input.streams().best(ffmpeg::media::Type::Video) {
            Some(stream) => {
                let rate = stream.avg_frame_rate();
                let frame_time = if rate.numerator() > 0 && rate.denominator() > 0 {
                    f64::from(rate.denominator()) / f64::from(rate.numerator())
                } else {
                    1.0 / 30.0
                };
                Some((
                    stream.index(),
                    f64::from(stream.time_base()),
                    frame_time,
                    VideoDecoder::from_parameters(stream.parameters(), max)
                        .map_err(decode_error)?,
                ))
            }
            None => None,
        };
        let mut audio = match input.streams().best(ffmpeg::media::Type::Audio) {
            Some(stream) => {
                let decoder = AudioDecoder::from_parameters(stream.parameters());
                match decoder {
                    Ok(d) => Some((stream.index(), f64::from(stream.time_base()), d)),
                    // Pictures play without their sound rather than not at all.
                    Err(e) if video.is_some() => {
                        tracing::warn!(file = %name, error = %e, "the file's sound is not played");
                        None
                    }
                    Err(e) => return Err(decode_error(e)),
                }
            }
            None => None,
        };
        if video.is_none() && audio.is_none() {
            return Err(SourceError::fatal(format!(
                "{name:?} has neither video nor sound"
            )));
        }
        // SAFETY: a plain field of the open context.
        let start_time = unsafe { (*input.as_ptr()).start_time };
        let start = if start_time == ffmpeg::ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            start_time as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
        };
        let mut pass = Pass {
            offset: 0.0,
            start,
            end: 0.0,
        };
        let mut bytes = 0usize;
        let mut window = Instant::now();
        loop {
            for (s, packet) in input.packets() {
                if session.stopping() {
                    return Ok(Outcome::Stopped);
                }
                bytes += packet.size();
                let elapsed = window.elapsed().as_secs_f64();
                if elapsed >= 1.0 {
                    session.received(bytes as f64 * 8.0 / 1000.0 / elapsed);
                    bytes = 0;
                    window = Instant::now();
                }
                if let Some((index, time_base, frame_time, decoder)) = video.as_mut()
                    && s.index() == *index
                {
                    decoder.send(&packet);
                    if present(decoder, session, &mut pass, *time_base, *frame_time)? {
                        return Ok(Outcome::Stopped);
                    }
                } else if let Some((index, time_base, decoder)) = audio.as_mut()
                    && s.index() == *index
                {
                    decoder.send(&packet);
                    let paced = video.is_none();
                    if sound(decoder, session, &mut pass, *time_base, paced)? {
                        return Ok(Outcome::Stopped);
                    }
                }
            }
            if let Some((_, time_base, frame_time, decoder)) = video.as_mut() {
                decoder.flush();
                if present(decoder, session, &mut pass, *time_base, *frame_time)? {
                    return Ok(Outcome::Stopped);
                }
            }
            if let Some((_, time_base, decoder)) = audio.as_mut() {
                decoder.flush();
                if sound(decoder, session, &mut pass, *time_base, video.is_none())? {
                    return Ok(Outcome::Stopped);
                }
            }
            if !self.looping {
                return Ok(Outcome::Ended);
            }
            input.seek(0, ..).map_err(|e| {
                SourceError::retry(format!("{name:?}: seeking to the start failed: {e}"))
            })?;
            if let Some((.., decoder)) = video.as_mut() {
                decoder.reset();
            }
            if let Some((.., decoder)) = audio.as_mut() {
                decoder.reset();
            }
            pass.offset = pass.end;
        }
    }
}

/// Presents the pictures the decoder has ready; true when the input is being stopped.
fn present(
    decoder: &mut VideoDecoder,
    session: &mut Session<'_>,
    pass: &mut Pass,
    time_base: f64,
    frame_time: f64,
) -> Result<bool, SourceError> {
    while let Some(frame) = decoder.receive().map_err(decode_error)? {
        let pts = pass.pts(frame.timestamp().unwrap_or(0), time_base);
        pass.end = pass.end.max(pts + frame_time);
        if session.present(frame, pts, Instant::now()) == Presented::Stopped {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Hands the sound the decoder has ready to the mixer, paced by itself when the file has
/// no pictures; true when the input is being stopped.
fn sound(
    decoder: &mut AudioDecoder,
    session: &mut Session<'_>,
    pass: &mut Pass,
    time_base: f64,
    paced: bool,
) -> Result<bool, SourceError> {
    loop {
        let decoded = decoder
            .receive()
            .map_err(|e| SourceError::fatal(e.to_string()))?;
        let Some(d) = decoded else {
            return Ok(false);
        };
        let Some(ts) = d.pts else {
            continue;
        };
        let pts = pass.pts(ts, time_base);
        let frames = d.samples.len() / crate::audio::CHANNELS;
        let end = pts + frames as f64 / f64::from(crate::audio::RATE);
        if paced {
            if !session.pace_audio(pts, Instant::now(), AUDIO_LEAD) {
                return Ok(true);
            }
            pass.end = pass.end.max(end);
        }
        session.audio(pts, d.samples);
    }
}
