//! From a decoded picture to the render thread: paced by its timestamp, converted to every
//! size its layers draw it at, published to the input's [`VideoFeed`], and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use sm_compose::video::{FeedFrame, FramePool, VideoFeed, Want};

use super::Shared;
use super::convert::Converter;
use super::pace::Pacer;
use crate::audio::feed::AudioFeed;

/// One size an input is converted to, with its rasters and swscale context.
struct Output {
    want: Want,
    pool: FramePool,
    converter: Converter,
}

/// Paces, converts and publishes one input's pictures; lives as long as the input, across
/// reconnects (its frame numbers keep increasing). Its sound is due on the same clock: each
/// paced picture gives the input's [`AudioFeed`] the clock.
pub struct Presenter {
    feed: Arc<VideoFeed>,
    audio: Arc<AudioFeed>,
    pacer: Pacer,
    wants: Vec<Want>,
    outputs: Vec<Output>,
    ready: Vec<(Want, FeedFrame)>,
    seq: u64,
    /// Pictures presented in the current second, and when it started.
    window: (u32, Instant),
}

/// What became of a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// Published (or not wanted by any layer: nothing to convert).
    Shown,
    /// The input is being stopped.
    Stopped,
}

impl Presenter {
    /// A presenter for `feed`, pacing a live source or a file.
    pub fn new(feed: Arc<VideoFeed>, audio: Arc<AudioFeed>, live: bool) -> Self {
        Self {
            feed,
            audio,
            pacer: Pacer::new(live),
            wants: Vec::new(),
            outputs: Vec::new(),
            ready: Vec::new(),
            seq: 0,
            window: (0, Instant::now()),
        }
    }

    /// Starts pacing again from the next picture (a reconnect); the sound held for the old
    /// session is dropped.
    pub fn restart(&mut self) {
        self.pacer.reset();
        self.audio.reset();
    }

    /// The input's sound.
    pub fn audio(&self) -> &Arc<AudioFeed> {
        &self.audio
    }

    /// Paces a source that has sound only: when its audio with timestamp `pts` (seconds),
    /// arrived at `arrival`, is due; the feed gets the clock.
    pub fn pace_audio(&mut self, pts: f64, arrival: Instant) -> Instant {
        let due = self.pacer.due(pts, arrival);
        if let Some(clock) = self.pacer.clock() {
            self.audio.set_clock(clock);
        }
        due
    }

    /// Presents a picture with timestamp `pts` (seconds) that arrived at `arrival`: converts
    /// it to the wanted sizes now, waits until it is due (or `stop`), then publishes it.
    pub fn present(
        &mut self,
        frame: &ffmpeg::frame::Video,
        pts: f64,
        arrival: Instant,
        shared: &Shared,
    ) -> Presented {
        let due = self.pacer.due(pts, arrival);
        if let Some(clock) = self.pacer.clock() {
            self.audio.set_clock(clock);
        }
        let now = Instant::now();
        self.feed.wanted(now, &mut self.wants);
        let wants = &self.wants;
        self.outputs.retain(|o| wants.contains(&o.want));
        self.ready.clear();
        self.seq += 1;
        let mut skipped = false;
        for &want in &self.wants {
            let index = match self.outputs.iter().position(|o| o.want == want) {
                Some(i) => i,
                None => {
                    self.outputs.push(Output {
                        want,
                        pool: FramePool::default(),
                        converter: Converter::default(),
                    });
                    self.outputs.len() - 1
                }
            };
            let out = &mut self.outputs[index];
            let (src, dst) = want
                .fit
                .place((frame.width(), frame.height()), (want.width, want.height));
            let converter = &mut out.converter;
            match out.pool.fill((want.width, want.height), dst, |raster| {
                converter.convert(frame, src, raster, dst)
            }) {
                Some(pixmap) => self.ready.push((
                    want,
                    FeedFrame {
                        pixmap,
                        part: (dst[0], dst[1], dst[2], dst[3]),
                        seq: self.seq,
                    },
                )),
                None => skipped = true,
            }
        }
        // Decoded and converted: how late after its envelope this picture is ready tells
        // the pacer how long this source's pictures must be held.
        self.pacer.ready(Instant::now());
        if wait_until(due, &shared.stop) {
            return Presented::Stopped;
        }
        for (want, frame) in self.ready.drain(..) {
            self.feed.publish(want, frame);
        }
        let shown = Instant::now();
        let (count, since) = &mut self.window;
        *count += 1;
        let elapsed = shown.saturating_duration_since(*since);
        let fps =
            (elapsed >= Duration::from_secs(1)).then(|| f64::from(*count) / elapsed.as_secs_f64());
        if fps.is_some() {
            *count = 0;
            *since = shown;
        }
        shared.update_stats(|s| {
            s.frames_decoded += 1;
            s.frames_dropped += u64::from(skipped);
            s.width = frame.width();
            s.height = frame.height();
            s.latency_ms = shown.saturating_duration_since(arrival).as_secs_f64() * 1000.0;
            if let Some(fps) = fps {
                s.fps = (fps * 100.0).round() / 100.0;
            }
        });
        Presented::Shown
    }
}

/// Sleeps until `due` in short steps; true if `stop` was set meanwhile.
pub(super) fn wait_until(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= due {
            return false;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(50)));
    }
}
