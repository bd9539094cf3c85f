//! Publishers into the embedded RTMP server as inputs: OBS, a phone app or
//! `ffmpeg -re … -f flv rtmp://host:1935/input/<streamKey>`.
//!
//! Each `rtmp` input registers its stream key with the [`IngestRegistry`]; the RTMP server
//! looks the key up when a peer publishes (an unknown key is refused, and so is a second
//! publisher while the first is live) and forwards the FLV video tags of the session to the
//! input's worker over a bounded channel: a worker that falls behind loses tags (counted),
//! never slows the socket task. The worker parses the tags (H.264: the decoder is opened
//! again on every new `AVCDecoderConfigurationRecord`, so a publisher may change its
//! resolution mid-stream), decodes and presents them by their timestamps. AAC audio tags
//! are decoded on the same thread and handed to the mixer on the same timeline (the decoder
//! is opened again on every new `AudioSpecificConfig`); other audio codecs are ignored, and
//! said so once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use ffmpeg_next as ffmpeg;

use super::decode::VideoDecoder;
use super::present::Presented;
use super::{InputState, Outcome, Session, Source, SourceError};
use crate::audio::decode::AudioDecoder;

/// The RTMP application publishers push to.
pub const INGEST_APP: &str = "input";
/// FLV tags queued per input before the oldest are dropped.
const QUEUE: usize = 512;

/// What the RTMP server hands an input's worker.
#[derive(Debug)]
pub enum IngestMessage {
    /// A publisher started.
    Start,
    /// A video tag body with its timestamp (ms).
    Video(Bytes, u32),
    /// An audio tag body with its timestamp (ms), for the mixer.
    Audio(Bytes, u32),
    /// The publisher left.
    End,
}

/// One input's place in the registry.
struct Slot {
    tx: Sender<IngestMessage>,
    live: Arc<AtomicBool>,
}

/// Stream keys of the `rtmp` inputs, for the RTMP server to route publishers.
#[derive(Default)]
pub struct IngestRegistry {
    slots: Mutex<HashMap<String, Slot>>,
}

/// A publisher's hold on its input: while it lives no one else may publish to the key.
pub struct Publishing {
    tx: Sender<IngestMessage>,
    live: Arc<AtomicBool>,
    dropped: u64,
}

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishRefusal {
    /// No input has this key.
    UnknownKey,
    /// Another publisher is live on this key.
    Busy,
}

impl IngestRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `key`; the receiver gets what publishers to it send.
    pub fn register(&self, key: &str) -> Receiver<IngestMessage> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        self.lock().insert(
            key.to_string(),
            Slot {
                tx,
                live: Arc::new(AtomicBool::new(false)),
            },
        );
        rx
    }

    /// Forgets `key` (its input was deleted or changed).
    pub fn unregister(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Lets a publisher in on `key`, unless the key is unknown or taken.
    pub fn publish(&self, key: &str) -> Result<Publishing, PublishRefusal> {
        let slots = self.lock();
        let slot = slots.get(key).ok_or(PublishRefusal::UnknownKey)?;
        if slot.live.swap(true, Ordering::AcqRel) {
            return Err(PublishRefusal::Busy);
        }
        let _ = slot.tx.try_send(IngestMessage::Start);
        Ok(Publishing {
            tx: slot.tx.clone(),
            live: slot.live.clone(),
            dropped: 0,
        })
    }
}

impl Publishing {
    /// Forwards a tag; when the worker's queue is full the tag is dropped (counted).
    pub fn send(&mut self, message: IngestMessage) {
        match self.tx.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped += 1,
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Tags dropped because the worker was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        let _ = self.tx.try_send(IngestMessage::End);
        self.live.store(false, Ordering::Release);
    }
}

/// An FLV video tag body: what kind of H.264 packet it carries.
#[derive(Debug, PartialEq, Eq)]
pub enum VideoTag<'a> {
    /// `AVCDecoderConfigurationRecord` (SPS/PPS): (re)open the decoder with it.
    Config(&'a [u8]),
    /// Length-prefixed NAL units, with the composition offset (ms) and the key flag.
    Picture {
        /// The NAL units.
        data: &'a [u8],
        /// pts − dts in ms.
        composition: i32,
        /// A key frame.
        key: bool,
    },
    /// End of sequence, a command frame, or a codec other than H.264.
    Other(u8),
}

/// Parses an FLV video tag body (legacy AVC).
pub fn parse_video_tag(body: &[u8]) -> VideoTag<'_> {
    let Some((&head, rest)) = body.split_first() else {
        return VideoTag::Other(0);
    };
    let (frame_type, codec) = (head >> 4, head & 0x0f);
    if codec != 7 || rest.len() < 4 {
        return VideoTag::Other(codec);
    }
    let composition = {
        let c = i32::from(rest[1]) << 16 | i32::from(rest[2]) << 8 | i32::from(rest[3]);
        (c << 8) >> 8
    };
    match rest[0] {
        0 => VideoTag::Config(&rest[4..]),
        1 => VideoTag::Picture {
            data: &rest[4..],
            composition,
            key: frame_type == 1,
        },
        _ => VideoTag::Other(codec),
    }
}

/// An FLV audio tag body: what kind of AAC packet it carries.
#[derive(Debug, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// `AudioSpecificConfig`: (re)open the decoder with it.
    Config(&'a [u8]),
    /// One raw AAC frame.
    Frame(&'a [u8]),
    /// A codec other than AAC (its FLV sound format id).
    Other(u8),
}

/// Parses an FLV audio tag body (legacy; AAC is sound format 10).
pub fn parse_audio_tag(body: &[u8]) -> AudioTag<'_> {
    let Some((&head, rest)) = body.split_first() else {
        return AudioTag::Other(0);
    };
    let format = head >> 4;
    match (format, rest.split_first()) {
        (10, Some((0, config))) => AudioTag::Config(config),
        (10, Some((1, frame))) => AudioTag::Frame(frame),
        _ => AudioTag::Other(format),
    }
}

/// How far ahead a publisher that sends sound only is decoded.
const AUDIO_ONLY_LEAD: Duration = Duration::from_secs(1);

/// An `rtmp` input's source: waits for its publisher, decodes what it sends.
pub struct RtmpSource {
    rx: Receiver<IngestMessage>,
}

impl RtmpSource {
    /// A source fed by `rx` (from [`IngestRegistry::register`]).
    pub fn new(rx: Receiver<IngestMessage>) -> Self {
        Self { rx }
    }
}

impl Source for RtmpSource {
    fn run(&mut self, session: &mut Session<'_>) -> Result<Outcome, SourceError> {
        let max = session.settings().max_picture;
        let stall = session.settings().stall_after;
        let mut decoder: Option<VideoDecoder> = None;
        let mut sound: Option<AudioDecoder> = None;
        let mut told_codec = false;
        let mut publishing = false;
        let mut published_before = false;
        let mut last_picture = Instant::now();
        let mut bytes = 0usize;
        let mut window = Instant::now();
        session.set_state(InputState::Idle);
        loop {
            if session.stopping() {
                return Ok(Outcome::Stopped);
            }
            let message = match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    if publishing && last_picture.elapsed() >= stall {
                        session.set_state(InputState::Stalled);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(Outcome::Stopped),
            };
            let arrival = Instant::now();
            match message {
                IngestMessage::Start => {
                    if published_before {
                        session.count_reconnect();
                    }
                    published_before = true;
                    publishing = true;
                    last_picture = arrival;
                    decoder = None;
                    sound = None;
                    session.restart();
                    session.set_state(InputState::Connecting);
                }
                IngestMessage::End => {
                    publishing = false;
                    // Waiting for the publisher to come back.
                    session.set_state(InputState::Reconnecting);
                }
                IngestMessage::Audio(body, timestamp) => match parse_audio_tag(&body) {
                    AudioTag::Config(config) => {
                        sound = AudioDecoder::for_codec(ffmpeg::codec::Id::AAC, Some(config))
                            .map_err(|e| tracing::warn!(error = %e, "the publisher's sound is not played"))
                            .ok();
                    }
                    AudioTag::Frame(data) => {
                        let Some(sound) = sound.as_mut() else {
                            continue;
                        };
                        let mut packet = ffmpeg::Packet::copy(data);
                        packet.set_pts(Some(i64::from(timestamp)));
                        packet.set_dts(Some(i64::from(timestamp)));
                        sound.send(&packet);
                        while let Some(d) = sound
                            .receive()
                            .map_err(|e| SourceError::fatal(e.to_string()))?
                        {
                            let pts = d.pts.unwrap_or(i64::from(timestamp)) as f64 / 1000.0;
                            // Without pictures the sound sets the clock.
                            if decoder.is_none()
                                && !session.pace_audio(pts, arrival, AUDIO_ONLY_LEAD)
                            {
                                return Ok(Outcome::Stopped);
                            }
                            session.audio(pts, d.samples);
                        }
                    }
                    AudioTag::Other(format) => {
                        if !told_codec {
                            told_codec = true;
                            tracing::warn!(
                                flv_sound_format = format,
                                "the publisher's sound is not AAC; it is not played"
                            );
                        }
                    }
                },
                IngestMessage::Video(body, timestamp) => {
                    bytes += body.len();
                    let elapsed = window.elapsed().as_secs_f64();
                    if elapsed >= 1.0 {
                        session.received(bytes as f64 * 8.0 / 1000.0 / elapsed);
                        bytes = 0;
                        window = Instant::now();
                    }
                    match parse_video_tag(&body) {
                        VideoTag::Config(record) => {
                            decoder = Some(
                                VideoDecoder::for_codec(ffmpeg::codec::Id::H264, Some(record), max)
                                    .map_err(|e| SourceError::fatal(e.to_string()))?,
                            );
                        }
                        VideoTag::Picture {
                            data, composition, ..
                        } => {
                            let Some(decoder) = decoder.as_mut() else {
                                continue;
                            };
                            let mut packet = ffmpeg::Packet::copy(data);
                            let pts = i64::from(timestamp) + i64::from(composition);
                            packet.set_pts(Some(pts));
                            packet.set_dts(Some(i64::from(timestamp)));
                            decoder.send(&packet);
                            while let Some(frame) = decoder
                                .receive()
                                .map_err(|e| SourceError::fatal(e.to_string()))?
                            {
                                let pts = frame.timestamp().unwrap_or(pts) as f64 / 1000.0;
                                last_picture = Instant::now();
                                if session.present(frame, pts, arrival) == Presented::Stopped {
                                    return Ok(Outcome::Stopped);
                                }
                            }
                        }
                        VideoTag::Other(codec) if codec != 7 => {
                            return Err(SourceError::fatal(format!(
                                "the publisher sends video codec {codec} (FLV id); only H.264 is taken"
                            )));
                        }
                        VideoTag::Other(_) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_publisher_per_known_key() {
        let registry = IngestRegistry::default();
        let rx = registry.register("k1");
        assert_eq!(
            registry.publish("nope").err(),
            Some(PublishRefusal::UnknownKey)
        );
        let first = registry.publish("k1").unwrap();
        assert_eq!(registry.publish("k1").err(), Some(PublishRefusal::Busy));
        assert!(matches!(rx.try_recv(), Ok(IngestMessage::Start)));
        drop(first);
        assert!(matches!(rx.try_recv(), Ok(IngestMessage::End)));
        assert!(registry.publish("k1").is_ok());
    }

    #[test]
    fn flv_audio_tags_are_told_apart() {
        assert_eq!(
            parse_audio_tag(&[0xaf, 0, 0x12, 0x10]),
            AudioTag::Config(&[0x12, 0x10])
        );
        assert_eq!(parse_audio_tag(&[0xaf, 1, 7]), AudioTag::Frame(&[7]));
        assert_eq!(parse_audio_tag(&[0x2f, 1, 7]), AudioTag::Other(2));
        assert_eq!(parse_audio_tag(&[0xaf]), AudioTag::Other(10));
        assert_eq!(parse_audio_tag(&[]), AudioTag::Other(0));
    }

    #[test]
    fn flv_video_tags_are_told_apart() {
        assert_eq!(
            parse_video_tag(&[0x17, 0, 0, 0, 0, 1, 2]),
            VideoTag::Config(&[1, 2])
        );
        assert_eq!(
            parse_video_tag(&[0x27, 1, 0xff, 0xff, 0xfe, 9]),
            VideoTag::Picture {
                data: &[9],
                composition: -2,
                key: false
            }
        );
        assert_eq!(parse_video_tag(&[0x12, 0]), VideoTag::Other(2));
        assert_eq!(parse_video_tag(&[]), VideoTag::Other(0));
    }
}
