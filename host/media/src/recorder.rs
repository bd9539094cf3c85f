//! Recordings of the program: the very packets the outputs get from the [`MediaHub`] (no
//! second encode), written to fragmented MP4 on the recording's own thread.
//!
//! A recording is a hub consumer like a player, with one difference: it may not skip. Its
//! packets go from the hub through its own bounded queue ([`QUEUE_PACKETS`]) to its writer
//! thread; a disk too slow to keep up fills the queue, and then the recording fails (a hole
//! in a recording is worse than a clear failure), while the encoder and every other output
//! never wait for it. A full disk fails it the same way, on the write that found it full.
//!
//! Files are fragmented MP4 (`frag_keyframe+empty_moov+default_base_moof`, and a fragment at
//! least every [`FRAGMENT`]): every complete fragment is playable, so a crash loses at most
//! the fragment being written. A recording starts on a key frame (the hub's current GOP)
//! and is cut into segments at key frames, each file starting at time 0; audio that belongs
//! before a cut still goes to the file before it, so no frame or sample is lost or doubled.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select};
use ffmpeg_next as ffmpeg;

use crate::hub::{MediaEvent, MediaHub, MediaPacket, StreamHeaders, Track};
use crate::recording::RecordingFile;

/// Packets a recording may be behind its stream before it fails: about 8 s of 30 fps
/// video with its audio.
pub const QUEUE_PACKETS: usize = 640;

/// The longest a fragment grows before it is written out, key frame or not.
pub const FRAGMENT: Duration = Duration::from_secs(1);

/// What to record, and where.
#[derive(Debug, Clone)]
pub struct RecordingPlan {
    /// Folder of the files.
    pub dir: PathBuf,
    /// File names are `<stem>-<n>.mp4`, `n` from 1.
    pub stem: String,
    /// Cut a new file at the first key frame this long after the last cut.
    pub segment: Option<Duration>,
}

/// What a recording has written so far, shared with its owner.
#[derive(Debug, Default)]
pub struct Progress {
    files: Mutex<Vec<RecordingFile>>,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordingFile>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files so far.
    pub fn files(&self) -> Vec<RecordingFile> {
        self.lock().clone()
    }

    fn set(&self, index: usize, file: RecordingFile) {
        let mut files = self.lock();
        if index < files.len() {
            files[index] = file;
        } else {
            files.push(file);
        }
    }
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Stopped on request; its files are finished.
    Stopped,
    /// The stream stopped; its files are finished.
    StreamEnded,
    /// It could not go on (a full or slow disk, a write error); what it wrote up to the last
    /// complete fragment plays.
    Failed(String),
}

/// A recording in progress. Dropping it stops it, like [`Recorder::stop`].
pub struct Recorder {
    stop: Sender<()>,
    progress: Arc<Progress>,
    forward: tokio::task::AbortHandle,
}

impl Recorder {
    /// Starts recording what `hub` publishes, from its current GOP on, on a thread of its
    /// own. `on_end` is called once with how it ended and its files: from that thread once
    /// they are closed, or, when the writer fell [`QUEUE_PACKETS`] behind (a disk that
    /// hangs), at once from the task that feeds it, whatever the writer is stuck in. Must be
    /// called within a tokio runtime (the hub's receiver is read by a task of it), and
    /// `on_end` must not block.
    pub fn start(
        hub: &MediaHub,
        plan: RecordingPlan,
        on_end: impl FnOnce(Ending, Vec<RecordingFile>) + Send + 'static,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&plan.dir)?;
        let subscription = hub.subscribe();
        let (tx, queue) = bounded(QUEUE_PACKETS);
        let overflow = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let finish = Finish::new(on_end, progress.clone());
        // The hub's current headers and GOP first: the recording starts on a key frame.
        let mut first = Vec::with_capacity(subscription.gop.len() + 1);
        if let Some(h) = subscription.headers {
            first.push(MediaEvent::Headers(h));
        }
        first.extend(subscription.gop.into_iter().map(MediaEvent::Packet));
        let forward = tokio::spawn(forward(
            first,
            subscription.rx,
            tx,
            overflow.clone(),
            finish.clone(),
        ));
        let (stop, stopped) = bounded(1);
        let shared = progress.clone();
        std::thread::Builder::new()
            .name(format!("record {}", plan.stem))
            .spawn(move || {
                let ending = record(&plan, &queue, &stopped, &overflow, &shared);
                finish.call(ending);
            })?;
        Ok(Self {
            stop,
            progress,
            forward: forward.abort_handle(),
        })
    }

    /// What it has written so far.
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Asks it to stop: what is queued is written, the files are finished, then `on_end`
    /// is called with [`Ending::Stopped`]. Returns at once.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        self.forward.abort();
    }
}

type OnEnd = Box<dyn FnOnce(Ending, Vec<RecordingFile>) + Send>;

/// The recording's `on_end`, called by whichever of the writer and its feeder ends first.
#[derive(Clone)]
struct Finish {
    on_end: Arc<Mutex<Option<OnEnd>>>,
    progress: Arc<Progress>,
}

impl Finish {
    fn new(
        on_end: impl FnOnce(Ending, Vec<RecordingFile>) + Send + 'static,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            on_end: Arc::new(Mutex::new(Some(Box::new(on_end)))),
            progress,
        }
    }

    /// Calls `on_end` unless it was called already.
    fn call(&self, ending: Ending) {
        let on_end = self.on_end.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(on_end) = on_end {
            on_end(ending, self.progress.files());
        }
    }
}

/// Why a recording that fell behind fails.
fn behind() -> String {
    format!("the recording fell {QUEUE_PACKETS} packets behind the stream (the disk is too slow)")
}

/// Moves the hub's events into the recording's queue. A full queue (the writer is behind)
/// or a receiver that lagged behind the hub fails the recording at once, even while the
/// writer is still stuck on the disk.
async fn forward(
    first: Vec<MediaEvent>,
    mut rx: tokio::sync::broadcast::Receiver<MediaEvent>,
    tx: Sender<MediaEvent>,
    overflow: Arc<AtomicBool>,
    finish: Finish,
) {
    use tokio::sync::broadcast::error::RecvError;
    let fell_behind = || {
        overflow.store(true, Ordering::Relaxed);
        finish.call(Ending::Failed(behind()));
    };
    let send = |event| match tx.try_send(event) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            fell_behind();
            false
        }
        Err(TrySendError::Disconnected(_)) => false,
    };
    for event in first {
        if !send(event) {
            return;
        }
    }
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => {
                fell_behind();
                return;
            }
            Err(RecvError::Closed) => return,
        };
        let end = matches!(event, MediaEvent::End);
        if !send(event) || end {
            return;
        }
    }
}

/// The writer thread: events from `queue` into files until stopped, ended or failed.
fn record(
    plan: &RecordingPlan,
    queue: &Receiver<MediaEvent>,
    stop: &Receiver<()>,
    overflow: &AtomicBool,
    progress: &Progress,
) -> Ending {
    let mut writer = Writer::new(plan, progress);
    let fail = |e: String| Ending::Failed(e);
    loop {
        let event = select! {
            recv(stop) -> _ => {
                // Write what was published before the stop, then finish.
                while let Ok(event) = queue.try_recv() {
                    if let Err(e) = writer.event(event) {
                        return fail(e);
                    }
                }
                return writer.finish().map_or_else(fail, |()| Ending::Stopped);
            }
            recv(queue) -> event => event,
        };
        match event {
            Ok(MediaEvent::End) => {
                return writer.finish().map_or_else(fail, |()| Ending::StreamEnded);
            }
            Ok(event) => {
                if let Err(e) = writer.event(event) {
                    return fail(e);
                }
            }
            Err(_) => {
                // The forwarder gave up: the disk did not keep up with the stream.
                let why = if overflow.load(Ordering::Relaxed) {
                    behind()
                } else {
                    "the stream's packets stopped".to_string()
                };
                let _ = writer.finish();
                return fail(why);
            }
        }
    }
}

/// Whether `ts` is at or after `base` (RTMP milliseconds, wrapping).
fn at_or_after(ts: u32, base: u32) -> bool {
    ts.wrapping_sub(base) < u32::MAX / 2
}

/// One open file.
struct Segment {
    out: ffmpeg::format::context::Output,
    index: usize,
    path: PathBuf,
    /// The stream timestamp its time 0 is at (its first key frame).
    base: u32,
    video: usize,
    audio: Option<usize>,
    frames: u64,
    /// End of its last video frame, in ms from `base`.
    end_ms: u64,
}

struct Writer<'a> {
    plan: &'a RecordingPlan,
    progress: &'a Progress,
    headers: Option<Arc<StreamHeaders>>,
    /// New headers came: the next key frame starts a new file.
    new_headers: bool,
    current: Option<Segment>,
    /// The file before the last cut, open until the audio passes the cut.
    previous: Option<Segment>,
    files: usize,
}

impl<'a> Writer<'a> {
    fn new(plan: &'a RecordingPlan, progress: &'a Progress) -> Self {
        Self {
            plan,
            progress,
            headers: None,
            new_headers: false,
            current: None,
            previous: None,
            files: 0,
        }
    }

    fn frame_ms(&self) -> u64 {
        let fps = self
            .headers
            .as_ref()
            .and_then(|h| h.metadata.video_frame_rate)
            .filter(|f| *f >= 1.0)
            .unwrap_or(30.0);
        (1000.0 / f64::from(fps)).round() as u64
    }

    fn event(&mut self, event: MediaEvent) -> Result<(), String> {
        match event {
            MediaEvent::Headers(h) => {
                self.new_headers = self.headers.is_some();
                self.headers = Some(h);
                Ok(())
            }
            MediaEvent::Packet(p) => match p.track {
                Track::Video => self.video(&p),
                Track::Audio => self.audio(&p),
            },
            MediaEvent::End => Ok(()),
        }
    }

    fn video(&mut self, p: &MediaPacket) -> Result<(), String> {
        // FLV: frame type and codec, AVC packet type (1: NAL units), composition time (24
        // bits, signed), then length-prefixed NAL units as MP4 stores them.
        if p.data.len() < 6 || p.data[1] != 1 {
            return Ok(());
        }
        let cts = i32::from_be_bytes([p.data[2], p.data[3], p.data[4], 0]) >> 8;
        let cut = match &self.current {
            None => p.keyframe,
            Some(seg) => {
                p.keyframe
                    && (self.new_headers
                        || self
                            .plan
                            .segment
                            .is_some_and(|s| seg.end_ms >= s.as_millis() as u64))
            }
        };
        if cut {
            self.cut(p.timestamp)?;
        }
        let frame_ms = self.frame_ms();
        let Some(seg) = self.current.as_mut() else {
            return Ok(()); // waiting for a key frame
        };
        let dts = i64::from(p.timestamp.wrapping_sub(seg.base));
        let mut packet = ffmpeg::Packet::copy(&p.data[5..]);
        packet.set_stream(seg.video);
        packet.set_dts(Some(dts));
        packet.set_pts(Some(dts + i64::from(cts)));
        packet.set_duration(frame_ms as i64);
        if p.keyframe {
            packet.set_flags(ffmpeg::packet::Flags::KEY);
        }
        write(seg, packet, seg.video)?;
        seg.frames += 1;
        seg.end_ms = dts as u64 + frame_ms;
        if p.keyframe {
            self.report_current();
        }
        Ok(())
    }

    fn audio(&mut self, p: &MediaPacket) -> Result<(), String> {
        // FLV: the audio header byte, AAC packet type (1: a raw frame), the frame.
        if p.data.len() < 3 || p.data[1] != 1 {
            return Ok(());
        }
        let before_cut = self
            .current
            .as_ref()
            .is_some_and(|c| !at_or_after(p.timestamp, c.base));
        let seg = match (&mut self.previous, before_cut) {
            (Some(previous), true) => previous,
            _ => {
                if let Some(previous) = self.previous.take() {
                    self.close(previous)?;
                }
                match self.current.as_mut() {
                    Some(seg) if at_or_after(p.timestamp, seg.base) => seg,
                    _ => return Ok(()), // before the first picture
                }
            }
        };
        let Some(stream) = seg.audio else {
            return Ok(());
        };
        let dts = i64::from(p.timestamp.wrapping_sub(seg.base));
        let mut packet = ffmpeg::Packet::copy(&p.data[2..]);
        packet.set_stream(stream);
        packet.set_dts(Some(dts));
        packet.set_pts(Some(dts));
        write(seg, packet, stream)
    }

    /// Starts a new file at key frame `ts`; the one before stays open for its late audio
    /// (when there is audio), else it is finished now.
    fn cut(&mut self, ts: u32) -> Result<(), String> {
        if let Some(previous) = self.previous.take() {
            self.close(previous)?;
        }
        if let Some(current) = self.current.take() {
            if current.audio.is_some() {
                self.previous = Some(current);
            } else {
                self.close(current)?;
            }
        }
        let headers = self
            .headers
            .clone()
            .ok_or_else(|| "packets before the stream's headers".to_string())?;
        self.files += 1;
        let index = self.files - 1;
        let name = format!("{}-{}.mp4", self.plan.stem, self.files);
        let path = self.plan.dir.join(&name);
        self.current = Some(open(&path, index, ts, &headers)?);
        self.new_headers = false;
        self.progress.set(
            index,
            RecordingFile {
                name,
                bytes: 0,
                duration_ms: 0,
                frames: 0,
            },
        );
        Ok(())
    }

    fn report_current(&self) {
        if let Some(seg) = &self.current {
            self.progress.set(seg.index, describe(seg));
        }
    }

    fn close(&self, mut seg: Segment) -> Result<(), String> {
        seg.out
            .write_trailer()
            .map_err(|e| format!("finishing {}: {e}", seg.path.display()))?;
        self.progress.set(seg.index, describe(&seg));
        Ok(())
    }

    /// Finishes every open file.
    fn finish(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        for seg in [self.previous.take(), self.current.take()]
            .into_iter()
            .flatten()
        {
            result = result.and(self.close(seg));
        }
        result
    }
}

fn describe(seg: &Segment) -> RecordingFile {
    RecordingFile {
        name: seg
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes: std::fs::metadata(&seg.path).map_or(0, |m| m.len()),
        duration_ms: seg.end_ms,
        frames: seg.frames,
    }
}

/// Writes `packet` (timestamps in ms) to `seg`'s `stream`.
fn write(seg: &mut Segment, mut packet: ffmpeg::Packet, stream: usize) -> Result<(), String> {
    let time_base = seg
        .out
        .stream(stream)
        .map(|s| s.time_base())
        .ok_or("no such stream")?;
    packet.rescale_ts((1, 1000), time_base);
    packet
        .write(&mut seg.out)
        .map(|_| ())
        .map_err(|e| format!("writing {}: {e}", seg.path.display()))
}

/// Opens `path` as fragmented MP4 with the streams `headers` describe.
fn open(path: &Path, index: usize, base: u32, headers: &StreamHeaders) -> Result<Segment, String> {
    let fail = |what: &str, e: ffmpeg::Error| format!("{what} {}: {e}", path.display());
    let avcc = headers
        .video
        .get(5..)
        .filter(|r| !r.is_empty())
        .ok_or("no H.264 sequence header")?;
    let width = headers.metadata.video_width.unwrap_or(0);
    let height = headers.metadata.video_height.unwrap_or(0);
    let mut out = ffmpeg::format::output_as(path, "mp4").map_err(|e| fail("creating", e))?;
    let video = {
        let mut s = out
            .add_stream(None::<ffmpeg::Codec>)
            .map_err(|e| fail("adding video to", e))?;
        s.set_time_base((1, 1000));
        s.set_parameters(parameters(Kind::Video { width, height }, avcc)?);
        s.index()
    };
    let audio = match headers.audio.as_ref().and_then(|a| a.get(2..)) {
        Some(asc) if !asc.is_empty() => {
            let rate = headers.metadata.audio_sample_rate.unwrap_or(48_000);
            let channels = headers.metadata.audio_channels.unwrap_or(2);
            let mut s = out
                .add_stream(None::<ffmpeg::Codec>)
                .map_err(|e| fail("adding audio to", e))?;
            s.set_time_base((1, 1000));
            s.set_parameters(parameters(Kind::Audio { rate, channels }, asc)?);
            Some(s.index())
        }
        _ => None,
    };
    let mut options = ffmpeg::Dictionary::new();
    options.set("movflags", "frag_keyframe+empty_moov+default_base_moof");
    options.set("frag_duration", &FRAGMENT.as_micros().to_string());
    options.set("flush_packets", "1");
    out.write_header_with(options)
        .map_err(|e| fail("writing the header of", e))?;
    Ok(Segment {
        out,
        index,
        path: path.to_path_buf(),
        base,
        video,
        audio,
        frames: 0,
        end_ms: 0,
    })
}

enum Kind {
    Video { width: u32, height: u32 },
    Audio { rate: u32, channels: u32 },
}

/// Codec parameters of an H.264 (`avcC` record) or AAC (`AudioSpecificConfig`) stream.
fn parameters(kind: Kind, extradata: &[u8]) -> Result<ffmpeg::codec::Parameters, String> {
    use ffmpeg::ffi;
    let size = i32::try_from(extradata.len()).map_err(|_| "codec headers too large")?;
    let mut p = ffmpeg::codec::Parameters::new();
    // SAFETY: `p` owns a valid, zeroed AVCodecParameters. Its extradata is allocated with
    // FFmpeg's allocator, padded as FFmpeg requires, and freed by FFmpeg with `p`.
    unsafe {
        let raw = p.as_mut_ptr();
        let padded = extradata.len() + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffi::av_mallocz(padded).cast::<u8>();
        if buf.is_null() {
            return Err("out of memory for codec headers".into());
        }
        std::ptr::copy_nonoverlapping(extradata.as_ptr(), buf, extradata.len());
        (*raw).extradata = buf;
        (*raw).extradata_size = size;
        match kind {
            Kind::Video { width, height } => {
                (*raw).codec_type = ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
                (*raw).codec_id = ffi::AVCodecID::AV_CODEC_ID_H264;
                (*raw).width = width as i32;
                (*raw).height = height as i32;
            }
            Kind::Audio { rate, channels } => {
                (*raw).codec_type = ffi::AVMediaType::AVMEDIA_TYPE_AUDIO;
                (*raw).codec_id = ffi::AVCodecID::AV_CODEC_ID_AAC;
                (*raw).sample_rate = rate as i32;
                (*raw).frame_size = 1024;
                ffi::av_channel_layout_default(&mut (*raw).ch_layout, channels as i32);
            }
        }
    }
    Ok(p)
}

/// Reads a recording's file as it is on disk (after a crash: up to its last complete
/// fragment): its size, its video frames and their duration. Reads every packet header (no
/// decoding); blocking.
pub fn probe(path: &Path) -> Result<RecordingFile, String> {
    let fail = |e: ffmpeg::Error| format!("{}: {e}", path.display());
    let bytes = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut input = ffmpeg::format::input(path).map_err(fail)?;
    let (video, time_base) = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .map(|s| (s.index(), s.time_base()))
        .ok_or_else(|| format!("{}: no video", path.display()))?;
    let (mut frames, mut first, mut end) = (0u64, None::<i64>, 0i64);
    let mut packet = ffmpeg::Packet::empty();
    // Until the end, or the first error (a fragment cut short): never retried, so a damaged
    // tail cannot loop.
    while packet.read(&mut input).is_ok() {
        if packet.stream() != video {
            continue;
        }
        frames += 1;
        let Some(pts) = packet.pts().or(packet.dts()) else {
            continue;
        };
        first = Some(first.map_or(pts, |f: i64| f.min(pts)));
        end = end.max(pts + packet.duration().max(0));
    }
    let ticks = end - first.unwrap_or(0);
    let ms = ticks as f64 * f64::from(time_base.numerator()) * 1000.0
        / f64::from(time_base.denominator().max(1));
    Ok(RecordingFile {
        name,
        bytes,
        duration_ms: ms.round().max(0.0) as u64,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AudioMode, EncoderKind};
    use crate::encoder::{Encoder, EncoderSettings};
    use crate::frames::PipelineStats;

    const SIDE: u32 = 64;

    /// The greys of frame `i` (< 64): its left half counts `i % 8`, its right half `i / 8`.
    fn frame(i: u64) -> Vec<u8> {
        let grey = |n: u64| (20 + 28 * n) as u8;
        let (left, right) = (grey(i % 8), grey(i / 8));
        let mut rgba = vec![0u8; (SIDE * SIDE * 4) as usize];
        for (p, px) in rgba.chunks_exact_mut(4).enumerate() {
            let g = if (p as u32 % SIDE) < SIDE / 2 {
                left
            } else {
                right
            };
            px.copy_from_slice(&[g, g, g, 255]);
        }
        rgba
    }

    /// Which frame a decoded luma pair names (BT.709 limited range: Y = 16 + 219·g/255).
    fn index_of(left_y: u8, right_y: u8) -> u64 {
        let n = |y: u8| {
            let g = (f64::from(y) - 16.0) * 255.0 / 219.0;
            ((g - 20.0) / 28.0).round().clamp(0.0, 7.0) as u64
        };
        n(right_y) * 8 + n(left_y)
    }

    /// The frames of a recorded file, as the indices their pictures name, and whether its
    /// first packet is a key frame; also its audio packet count.
    fn read_back(path: &Path) -> (Vec<u64>, bool, usize) {
        let mut input = ffmpeg::format::input(path).unwrap();
        let video = input.streams().best(ffmpeg::media::Type::Video).unwrap();
        let index = video.index();
        let mut decoder = ffmpeg::codec::Context::from_parameters(video.parameters())
            .unwrap()
            .decoder()
            .video()
            .unwrap();
        let (mut seen, mut first_key, mut audio) = (Vec::new(), None, 0);
        let mut decoded = ffmpeg::frame::Video::empty();
        let mut take = |decoder: &mut ffmpeg::decoder::Video, seen: &mut Vec<u64>| {
            while decoder.receive_frame(&mut decoded).is_ok() {
                let (y, stride) = (decoded.data(0), decoded.stride(0));
                let row = (SIDE / 2) as usize * stride;
                seen.push(index_of(y[row + 8], y[row + SIDE as usize - 8]));
            }
        };
        for (stream, packet) in input.packets() {
            if stream.index() != index {
                audio += 1;
                continue;
            }
            first_key.get_or_insert(packet.is_key());
            decoder.send_packet(&packet).unwrap();
            take(&mut decoder, &mut seen);
        }
        decoder.send_eof().unwrap();
        take(&mut decoder, &mut seen);
        (seen, first_key == Some(true), audio)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_cut_at_key_frames_lose_and_double_no_frame() {
        ffmpeg::init().unwrap();
        let hub = Arc::new(MediaHub::new());
        let settings = EncoderSettings {
            width: SIDE,
            height: SIDE,
            target_fps: 30,
            video_bitrate_kbps: 800,
            encoder: EncoderKind::Libx264,
            preset: "ultrafast".into(),
            gop_frames: 10,
            audio: AudioMode::Silent,
            audio_bitrate_kbps: 128,
        };
        let mut encoder = Encoder::open(&settings, hub.clone()).unwrap();
        let dir = std::env::temp_dir().join(format!("sm-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let plan = RecordingPlan {
            dir: dir.clone(),
            stem: "t".into(),
            // 12 frames: cuts at the key frames after them (frames 20 and 40).
            segment: Some(Duration::from_millis(400)),
        };
        let (tx, ended) = std::sync::mpsc::channel();
        let recorder = Recorder::start(&hub, plan, move |ending, files| {
            tx.send((ending, files)).unwrap();
        })
        .unwrap();
        let published = tokio::task::spawn_blocking(move || {
            let stats = PipelineStats::default();
            for i in 0..60 {
                encoder
                    .encode(Some(&frame(i)), i, std::time::Instant::now(), &stats)
                    .unwrap();
            }
            stats.encoded.load(Ordering::Relaxed)
        })
        .await
        .unwrap();
        assert_eq!(published, 60);
        // Everything published is queued by now or soon: give the forwarder a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        recorder.stop();
        let (ending, files) = ended.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(ending, Ending::Stopped);
        // Cut at the first key frame (every 10th: a fixed GOP) 400 ms after the last cut.
        let cuts: Vec<(&str, u64)> = files.iter().map(|f| (f.name.as_str(), f.frames)).collect();
        assert_eq!(cuts, [("t-1.mp4", 20), ("t-2.mp4", 20), ("t-3.mp4", 20)]);
        let mut all = Vec::new();
        for file in &files {
            let path = dir.join(&file.name);
            let (frames, starts_on_key, audio) = read_back(&path);
            assert!(starts_on_key, "{} starts on a key frame", file.name);
            assert!(audio > 0, "{} has its audio", file.name);
            assert_eq!(
                frames.len() as u64,
                file.frames,
                "{}: {frames:?}",
                file.name
            );
            assert!(
                file.duration_ms.abs_diff(file.frames * 1000 / 30) <= 1,
                "{file:?}"
            );
            let probed = probe(&path).unwrap();
            assert_eq!(
                (probed.frames, probed.bytes),
                (file.frames, file.bytes),
                "{probed:?}"
            );
            assert!(
                probed.duration_ms.abs_diff(file.duration_ms) <= 34,
                "{probed:?} {file:?}"
            );
            all.extend(frames);
        }
        // The files in order hold the frames that went out, each once, in order.
        assert_eq!(all, (0..60).collect::<Vec<u64>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn timestamps_compare_across_the_wrap() {
        assert!(at_or_after(10, 10));
        assert!(at_or_after(11, 10));
        assert!(!at_or_after(9, 10));
        assert!(at_or_after(5, u32::MAX - 5));
        assert!(!at_or_after(u32::MAX - 5, 5));
    }
}
