//! RTSP cameras as inputs, pulled with retina and decoded with FFmpeg.
//!
//! The RTSP session (DESCRIBE, SETUP, PLAY, keepalives, TEARDOWN when it ends) runs as a
//! task on the server's tokio runtime; it hands each H.264/H.265 access unit (Annex B, with
//! the parameter sets before every key frame, so a camera that changes its resolution is
//! followed in band) to the input's own thread over a bounded channel, and that thread
//! decodes and presents it. A camera's AAC sound (`mpeg4-generic`) is set up too, on the
//! same timeline (RTP-Info's `rtptime` maps both streams to the same play time when the
//! camera sends it), and decoded on the same thread for the mixer; a camera whose sound
//! cannot be set up plays without it. Nothing of this runs on the render thread or blocks a tokio
//! worker.
//!
//! A camera that still answers keepalives but sends no pictures is not noticed by RTSP for
//! half a minute or more: the input keeps its own watchdog instead. No picture for
//! `stall_after` makes it `stalled`; for twice that, the session is dropped and opened again.
//! A 401 or 404 from the camera, or a codec FFmpeg does not decode, makes the input
//! `failed`, and so does a picture over the size limit, declared in the session description
//! or in band (checked on the parameter sets retina parses, before FFmpeg sees them).
//! Credentials are taken out of the URL before it reaches retina, so no message or log line
//! can carry them.
//!
//! What a camera may cost is bounded too: over [`MAX_BYTES_PER_SEC`] or
//! [`MAX_UNITS_PER_SEC`] the session stops reading until the second is over (TCP pushes
//! back on the sender), so a camera flooding the connection spends its own second, not the
//! host's CPU.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use ffmpeg_next as ffmpeg;
use futures_util::StreamExt as _;
use retina::client::{
    Credentials, InitialTimestampPolicy, PlayOptions, SessionGroup, SessionOptions, SetupOptions,
    Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};

use super::decode::{self, VideoDecoder};
use super::model::{Transport as InputTransport, mask_rtsp_url};
use super::present::Presented;
use super::{InputState, Outcome, Session, Source, SourceError};
use crate::audio::decode::AudioDecoder;

/// Access units queued for the decoder before new ones are dropped.
const QUEUE: usize = 120;
/// Longest the RTSP set-up (DESCRIBE, SETUP, PLAY) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most a camera may send a second: 200 Mbit/s, over twice what a 4K camera sends.
pub const MAX_BYTES_PER_SEC: usize = 25_000_000;
/// Most access units a camera may send a second (120 fps plus its bursts).
pub const MAX_UNITS_PER_SEC: u32 = 240;

/// What the session task hands the input's thread.
enum Item {
    /// The stream's codec, once set up.
    Codec(ffmpeg::codec::Id),
    /// The sound's AAC `AudioSpecificConfig`, once set up.
    SoundConfig(Vec<u8>),
    /// One AAC frame, timestamp in seconds.
    Sound(Vec<u8>, f64),
    /// One access unit: Annex B data, timestamp in seconds, key frame.
    Picture(Vec<u8>, f64, bool),
    /// The session ended or failed.
    Failed(SourceError),
}

/// The RTSP sessions of every camera input, so that shutdown can wait for their
/// TEARDOWNs (bounded) before the runtime goes away.
#[derive(Clone, Default)]
pub struct RtspSessions(std::sync::Arc<SessionGroup>);

impl RtspSessions {
    /// Waits up to `wait` for every ended session's TEARDOWN.
    pub async fn await_teardown(&self, wait: Duration) {
        if tokio::time::timeout(wait, self.0.await_teardown())
            .await
            .is_err()
        {
            tracing::warn!("RTSP sessions not torn down within {wait:?}; leaving them");
        }
    }
}

/// An RTSP camera.
pub struct RtspSource {
    url: url::Url,
    credentials: Option<Credentials>,
    transport: InputTransport,
    runtime: tokio::runtime::Handle,
    sessions: RtspSessions,
}

impl RtspSource {
    /// A camera at `url` (credentials in it are used, not shown), pulled over `transport`,
    /// its session running on `runtime`.
    pub fn new(
        url: &str,
        transport: InputTransport,
        runtime: tokio::runtime::Handle,
        sessions: RtspSessions,
    ) -> Result<Self, SourceError> {
        let mut url = url::Url::parse(url)
            .map_err(|e| SourceError::fatal(format!("{}: {e}", mask_rtsp_url(url))))?;
        let credentials = (!url.username().is_empty()).then(|| Credentials {
            username: percent_decode(url.username()),
            password: percent_decode(url.password().unwrap_or_default()),
        });
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(Self {
            url,
            credentials,
            transport,
            runtime,
            sessions,
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A retina error as a source error: 401/403/404 are for good; the rest worth retrying.
fn classify(stage: &str, e: &retina::Error) -> SourceError {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = format!("{stage}: {first}");
    match e.status_code() {
        Some(401 | 403 | 404) => SourceError::fatal(message),
        _ => SourceError::retry(message),
    }
}

/// Runs one RTSP session until it fails, `cancel` fires, or the receiver goes away.
async fn pull(
    (url, credentials, transport): (url::Url, Option<Credentials>, InputTransport),
    max: (u32, u32),
    sessions: RtspSessions,
    tx: Sender<Item>,
    cancel: tokio::sync::oneshot::Receiver<()>,
) {
    let fail = |e: SourceError| {
        let _ = tx.try_send(Item::Failed(e));
    };
    let setup = async {
        let options = SessionOptions::default()
            .creds(credentials)
            .session_group(sessions.0.clone())
            .user_agent("stream-manager".into());
        let mut described = retina::client::Session::describe(url, options)
            .await
            .map_err(|e| classify("DESCRIBE", &e))?;
        let (index, codec) = described
            .streams()
            .iter()
            .enumerate()
            .find_map(|(i, s)| {
                (s.media() == "video").then(|| (i, s.encoding_name().to_ascii_lowercase()))
            })
            .ok_or_else(|| SourceError::fatal("the camera offers no video stream"))?;
        let codec = match codec.as_str() {
            "h264" => ffmpeg::codec::Id::H264,
            "h265" => ffmpeg::codec::Id::HEVC,
            other => {
                return Err(SourceError::fatal(format!(
                    "the camera sends {other} video; H.264 and H.265 are taken"
                )));
            }
        };
        let transport_choice = transport;
        let transport = transport_of(transport);
        described
            .setup(
                index,
                SetupOptions::default()
                    .transport(transport)
                    .frame_format(FrameFormat::SIMPLE),
            )
            .await
            .map_err(|e| classify("SETUP", &e))?;
        // A size declared in the session description is refused before anything plays.
        check_size(described.streams()[index].parameters(), max)?;
        let sound = setup_sound(&mut described, transport_of(transport_choice)).await;
        let playing = described
            .play(PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive))
            .await
            .map_err(|e| classify("PLAY", &e))?;
        let demuxed = playing.demuxed().map_err(|e| classify("PLAY", &e))?;
        Ok::<_, SourceError>((demuxed, codec, sound))
    };
    let mut cancel = cancel;
    let (mut demuxed, codec, sound) = tokio::select! {
        r = tokio::time::timeout(SETUP_TIMEOUT, setup) => match r {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) => return fail(e),
            Err(_) => return fail(SourceError::retry(format!(
                "the camera did not set up a session within {} s", SETUP_TIMEOUT.as_secs()))),
        },
        _ = &mut cancel => return,
    };
    if tx.try_send(Item::Codec(codec)).is_err() {
        return;
    }
    let sound_stream = sound.map(|(index, config)| {
        let _ = tx.try_send(Item::SoundConfig(config));
        index
    });
    let mut budget = Budget::new();
    loop {
        let item = tokio::select! {
            item = demuxed.next() => item,
            _ = &mut cancel => return,
        };
        match item {
            None => return fail(SourceError::retry("the camera ended the session")),
            Some(Err(e)) => return fail(classify("RTSP", &e)),
            Some(Ok(CodecItem::VideoFrame(frame))) => {
                if frame.has_new_parameters() {
                    let stream = &demuxed.streams()[frame.stream_id()];
                    if let Err(e) = check_size(stream.parameters(), max) {
                        return fail(e);
                    }
                }
                if let Some(rest) = budget.spend(frame.data().len()) {
                    tokio::select! {
                        () = tokio::time::sleep(rest) => {}
                        _ = &mut cancel => return,
                    }
                }
                let at = frame.timestamp().elapsed_secs();
                let key = frame.is_random_access_point();
                match tx.try_send(Item::Picture(frame.into_data(), at, key)) {
                    Ok(()) | Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Some(Ok(CodecItem::AudioFrame(frame))) if Some(frame.stream_id()) == sound_stream => {
                if let Some(rest) = budget.spend(frame.data().len()) {
                    tokio::select! {
                        () = tokio::time::sleep(rest) => {}
                        _ = &mut cancel => return,
                    }
                }
                let at = frame.timestamp().elapsed_secs();
                match tx.try_send(Item::Sound(frame.data().to_vec(), at)) {
                    Ok(()) | Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

fn transport_of(transport: InputTransport) -> Transport {
    match transport {
        InputTransport::Tcp => Transport::Tcp(Default::default()),
        InputTransport::Udp => Transport::Udp(Default::default()),
    }
}

/// Sets up the camera's AAC sound, if it offers one: its stream index and its
/// `AudioSpecificConfig`. Sound that is not AAC or does not set up is left out (logged).
async fn setup_sound(
    described: &mut retina::client::Session<retina::client::Described>,
    transport: Transport,
) -> Option<(usize, Vec<u8>)> {
    let index = described.streams().iter().position(|s| {
        s.media() == "audio" && s.encoding_name().eq_ignore_ascii_case("mpeg4-generic")
    })?;
    let config = match described.streams()[index].parameters() {
        Some(ParametersRef::Audio(a)) if !a.extra_data().is_empty() => a.extra_data().to_vec(),
        _ => {
            tracing::info!("the camera's sound has no AAC configuration; playing without it");
            return None;
        }
    };
    match described
        .setup(index, SetupOptions::default().transport(transport))
        .await
    {
        Ok(_) => Some((index, config)),
        Err(e) => {
            tracing::warn!(error = %e, "the camera's sound did not set up; playing without it");
            None
        }
    }
}

/// A picture size over `max` in the stream's parameters, as a lasting failure.
fn check_size(parameters: Option<ParametersRef<'_>>, max: (u32, u32)) -> Result<(), SourceError> {
    match parameters {
        Some(ParametersRef::Video(video)) => decode::check_size(video.pixel_dimensions(), max)
            .map_err(|e| SourceError::fatal(format!("the camera: {e}"))),
        _ => Ok(()),
    }
}

/// What one camera may send in a second ([`MAX_BYTES_PER_SEC`], [`MAX_UNITS_PER_SEC`]).
struct Budget {
    since: tokio::time::Instant,
    bytes: usize,
    units: u32,
}

impl Budget {
    fn new() -> Self {
        Self {
            since: tokio::time::Instant::now(),
            bytes: 0,
            units: 0,
        }
    }

    /// Counts one access unit of `len` bytes; over budget, how long to stop reading.
    fn spend(&mut self, len: usize) -> Option<Duration> {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.since) >= Duration::from_secs(1) {
            *self = Self::new();
        }
        self.bytes += len;
        self.units += 1;
        (self.bytes > MAX_BYTES_PER_SEC || self.units > MAX_UNITS_PER_SEC)
            .then(|| (self.since + Duration::from_secs(1)).saturating_duration_since(now))
    }
}

impl Source for RtspSource {
    fn run(&mut self, session: &mut Session<'_>) -> Result<Outcome, SourceError> {
        let (tx, rx): (Sender<Item>, Receiver<Item>) = crossbeam_channel::bounded(QUEUE);
        let (cancel, cancelled) = tokio::sync::oneshot::channel();
        let max = session.settings().max_picture;
        self.runtime.spawn(pull(
            (self.url.clone(), self.credentials.clone(), self.transport),
            max,
            self.sessions.clone(),
            tx,
            cancelled,
        ));
        // Dropping `cancel` (any return below) ends the session task, which tears down.
        let _cancel = cancel;
        let stall = session.settings().stall_after;
        let mut decoder: Option<VideoDecoder> = None;
        let mut sound: Option<AudioDecoder> = None;
        let mut codec = None;
        let mut keyed = false;
        let mut last_picture = Instant::now();
        let mut bytes = 0usize;
        let mut window = Instant::now();
        loop {
            if session.stopping() {
                return Ok(Outcome::Stopped);
            }
            let item = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => {
                    let silent = last_picture.elapsed();
                    if codec.is_some() && silent >= stall {
                        session.set_state(InputState::Stalled);
                    }
                    if silent >= stall * 2 + SETUP_TIMEOUT * u32::from(codec.is_none()) {
                        return Err(SourceError::retry(format!(
                            "no picture for {:.1} s",
                            silent.as_secs_f64()
                        )));
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(SourceError::retry("the RTSP session ended"));
                }
            };
            let arrival = Instant::now();
            match item {
                Item::Failed(e) => return Err(e),
                Item::SoundConfig(config) => {
                    sound = AudioDecoder::for_codec(ffmpeg::codec::Id::AAC, Some(&config))
                        .map_err(|e| tracing::warn!(error = %e, "the camera's sound is not played"))
                        .ok();
                }
                Item::Sound(data, at) => {
                    let Some(sound) = sound.as_mut() else {
                        continue;
                    };
                    let mut packet = ffmpeg::Packet::copy(&data);
                    let pts = (at * 1e6).round() as i64;
                    packet.set_pts(Some(pts));
                    packet.set_dts(Some(pts));
                    sound.send(&packet);
                    while let Some(d) = sound
                        .receive()
                        .map_err(|e| SourceError::fatal(e.to_string()))?
                    {
                        session.audio(d.pts.map_or(at, |t| t as f64 / 1e6), d.samples);
                    }
                }
                Item::Codec(id) => {
                    codec = Some(id);
                    last_picture = arrival;
                    decoder = Some(
                        VideoDecoder::for_codec(id, None, max)
                            .map_err(|e| SourceError::fatal(e.to_string()))?,
                    );
                }
                Item::Picture(data, at, key) => {
                    bytes += data.len();
                    let elapsed = window.elapsed().as_secs_f64();
                    if elapsed >= 1.0 {
                        session.received(bytes as f64 * 8.0 / 1000.0 / elapsed);
                        bytes = 0;
                        window = Instant::now();
                    }
                    // Decoding starts at the first key frame (no grey smear before it).
                    keyed |= key;
                    let Some(decoder) = decoder.as_mut().filter(|_| keyed) else {
                        continue;
                    };
                    let mut packet = ffmpeg::Packet::copy(&data);
                    let pts = (at * 90_000.0).round() as i64;
                    packet.set_pts(Some(pts));
                    packet.set_dts(Some(pts));
                    decoder.send(&packet);
                    while let Some(frame) = decoder
                        .receive()
                        .map_err(|e| SourceError::fatal(e.to_string()))?
                    {
                        let pts = frame.timestamp().map_or(at, |t| t as f64 / 90_000.0);
                        last_picture = Instant::now();
                        if session.present(frame, pts, arrival) == Presented::Stopped {
                            return Ok(Outcome::Stopped);
                        }
                    }
                }
            }
        }
    }
}
