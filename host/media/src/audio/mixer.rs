//! The mixer: each AAC frame of the program, from every source the audio due in its span,
//! at the source's gain, summed, through the master gain and the limiter, metered.
//!
//! **Sync and drift.** A source's audio is heard when its clock says it is due (the clock its
//! pictures are paced by: see [`crate::input::pace`]). For each frame the mixer compares
//! where it reads the source (the timestamp of the next sample out of the resampler) with
//! the timestamp due at the frame's start on our clock. The first time, and after a jump
//! of more than [`REANCHOR`], it skips late samples or puts silence before early ones,
//! exactly, and fades in. Otherwise it steers the source's resampling ratio with a PI
//! controller ([`KP`], [`KI`]; at most [`MAX_CORRECTION`] either way, [`CATCH_UP`] while the
//! error is past [`CATCH_UP_FROM`]), so a source whose clock runs fast or slow is played at
//! our rate with its read position on its clock: no drift, and no buffer that grows. Sound
//! is played half a frame after due, where its pictures go on air on average (see
//! [`Mixer::new`]). A source that runs dry fades out and its place is silence until it
//! sends again; one idle for half a second is neither measured nor mixed.
//!
//! **Control.** A fader moved at some moment is heard from that moment of the program on
//! (ramped over 10 ms), in step with a picture changed at the same moment, though the mixer
//! works a little behind the render clock.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Adjustable as _, Async, FixedAsync, PolynomialDegree, Resampler as _};

use super::dsp::{Gain, Limiter};
use super::feed::AudioFeed;
use super::meter::{PUBLISH_EVERY, ProgramLevels, ProgramMeter, SourceLevels, SourceMeter};
use super::{CHANNELS, RATE, db_to_linear};

/// A read position this far (seconds) from due is a jump: skipped or padded at once.
pub const REANCHOR: f64 = 0.03;
/// Proportional gain of the drift controller (ratio per second of error): a 5 ms error
/// corrects the rate by 0.1 %.
pub const KP: f64 = 0.2;
/// Integral gain of the drift controller (ratio per second² of error).
pub const KI: f64 = KP * KP / 4.0;
/// Largest correction of a source's rate (0.3 %: 5 cents, inaudible on speech and music).
pub const MAX_CORRECTION: f64 = 0.003;
/// An error past this (seconds) is caught up at up to [`CATCH_UP`].
pub const CATCH_UP_FROM: f64 = 0.005;
/// Proportional gain past [`CATCH_UP_FROM`]: 10 ms more is 1 % faster or slower.
pub const KP_FAST: f64 = 1.0;
/// Largest correction while catching up (1 %, for a second or two).
pub const CATCH_UP: f64 = 0.01;
/// AAC frames (about 0.5 s: past the momentary meter's 400 ms) a source may have nothing
/// before the mixer stops measuring and mixing it.
const IDLE_AFTER: u32 = 24;
/// Frames of a fade in or out (5 ms).
const FADE: usize = 240;
/// Smoothing of the measured error (per frame): the clock is updated per picture and
/// jitters by a few ms.
const SMOOTHING: f64 = 0.05;

/// A source's fader.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fader {
    /// Gain in dB (-60..=+12).
    pub gain_db: f64,
    /// Muted: not in the program.
    pub muted: bool,
}

impl Default for Fader {
    fn default() -> Self {
        Self {
            gain_db: 0.0,
            muted: false,
        }
    }
}

impl Fader {
    fn linear(&self) -> f32 {
        if self.muted {
            0.0
        } else {
            db_to_linear(self.gain_db) as f32
        }
    }
}

/// The latest meter readings.
#[derive(Debug, Clone, Default)]
pub struct Levels {
    /// The program.
    pub program: ProgramLevels,
    /// Each source by its id.
    pub sources: Vec<(String, SourceLevels)>,
    /// Readings published so far (0: none yet).
    pub seq: u64,
}

struct Control {
    version: u64,
    /// When the last change was made: it is heard from this moment of the program on, in
    /// step with a picture changed at the same moment (the mixer works behind the clock).
    changed_at: Instant,
    sources: Vec<(String, Arc<AudioFeed>, Fader)>,
    master: Fader,
    limiter: bool,
}

/// What the server controls and reads, shared with the mixer of every pipeline run.
pub struct AudioMix {
    control: Mutex<Control>,
    levels: Mutex<Levels>,
}

impl Default for AudioMix {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioMix {
    /// No sources, master at 0 dB, limiter on.
    pub fn new() -> Self {
        Self {
            control: Mutex::new(Control {
                version: 1,
                changed_at: Instant::now(),
                sources: Vec::new(),
                master: Fader::default(),
                limiter: true,
            }),
            levels: Mutex::new(Levels::default()),
        }
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds source `id` reading `feed`, or changes its fader.
    pub fn set_source(&self, id: &str, feed: &Arc<AudioFeed>, fader: Fader) {
        let mut c = self.control();
        match c.sources.iter_mut().find(|(i, ..)| i == id) {
            Some(s) => {
                s.1 = feed.clone();
                s.2 = fader;
            }
            None => c.sources.push((id.to_string(), feed.clone(), fader)),
        }
        c.version += 1;
        c.changed_at = Instant::now();
    }

    /// Takes source `id` out of the mix.
    pub fn remove_source(&self, id: &str) {
        let mut c = self.control();
        c.sources.retain(|(i, ..)| i != id);
        c.version += 1;
        c.changed_at = Instant::now();
    }

    /// Sets the master fader and whether the limiter is on.
    pub fn set_master(&self, master: Fader, limiter: bool) {
        let mut c = self.control();
        c.master = master;
        c.limiter = limiter;
        c.version += 1;
        c.changed_at = Instant::now();
    }

    /// The sequence number of the latest readings (0: none yet).
    pub fn levels_seq(&self) -> u64 {
        self.levels.lock().unwrap_or_else(|e| e.into_inner()).seq
    }

    /// The latest meter readings.
    pub fn levels(&self) -> Levels {
        self.levels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The drift controller of one source: from how far its read position is from due, the
/// correction of its resampling ratio (PI, on a smoothed error).
#[derive(Debug, Clone, Copy, Default)]
pub struct Steering {
    filtered: f64,
    integral: f64,
}

impl Steering {
    /// The relative rate correction after a frame of `step` seconds whose read position was
    /// `error` seconds ahead of due (negative: behind). Ahead: the source is read slower
    /// (fewer of its samples per frame), a ratio above 1.
    pub fn correction(&mut self, error: f64, step: f64) -> f64 {
        self.filtered += (error - self.filtered) * SMOOTHING;
        self.integral =
            (self.integral + self.filtered * step).clamp(-MAX_CORRECTION / KI, MAX_CORRECTION / KI);
        // A step of the clock (a source's jitter hold settling) is caught up quickly; drift,
        // which only ever needs a little, is followed at inaudible rates.
        let beyond = (self.filtered.abs() - CATCH_UP_FROM).max(0.0);
        let (fast, limit) = if beyond > 0.0 {
            ((KP_FAST - KP) * beyond * self.filtered.signum(), CATCH_UP)
        } else {
            (0.0, MAX_CORRECTION)
        };
        (KP * self.filtered + fast + KI * self.integral).clamp(-limit, limit)
    }
}

/// One source in the mixer.
struct Channel {
    id: String,
    feed: Arc<AudioFeed>,
    gain: Gain,
    resampler: Async<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
    /// The feed generation the read position is anchored in.
    generation: Option<u64>,
    steering: Steering,
    fade_in: bool,
    meter: SourceMeter,
    /// The last measured error (seconds; > 0: read ahead of due).
    error: f64,
    /// Times the read position was set afresh (a start, a jump).
    anchors: u64,
    /// Frames pulled (for the periodic debug line).
    pulls: u64,
    /// How much later than due the sound is played (seconds): see [`Mixer::new`].
    align: f64,
    /// Frames in a row the source had nothing (past [`IDLE_AFTER`] it costs nothing).
    idle: u32,
}

impl Channel {
    /// Whether the source has been silent long enough that its meter has fallen silent
    /// too: it is neither measured nor mixed until it sends again.
    fn asleep(&self) -> bool {
        self.idle > IDLE_AFTER
    }
}

impl Channel {
    fn new(id: &str, feed: Arc<AudioFeed>, fader: Fader, frames: usize) -> Self {
        let resampler = Async::<f32>::new_poly(
            1.0,
            1.0 + CATCH_UP * 2.0,
            PolynomialDegree::Cubic,
            frames,
            CHANNELS,
            FixedAsync::Output,
        )
        .expect("a resampler for 48 kHz stereo");
        let max_in = resampler.input_frames_max();
        Self {
            id: id.to_string(),
            feed,
            gain: Gain::new(fader.linear()),
            resampler,
            input: vec![0.0; max_in * CHANNELS],
            output: vec![0.0; frames * CHANNELS],
            generation: None,
            steering: Steering::default(),
            fade_in: true,
            meter: SourceMeter::new(),
            error: 0.0,
            anchors: 0,
            pulls: 0,
            align: 0.0,
            idle: 0,
        }
    }

    /// Fills `self.output` with the source's audio due from `wall` on.
    fn pull(&mut self, wall: Instant) {
        let frames = self.output.len() / CHANNELS;
        let rate = f64::from(RATE);
        let mut held = self.feed.lock();
        let Some(clock) = held.clock.filter(|_| held.frames() > 0) else {
            drop(held);
            if self.idle < IDLE_AFTER {
                self.output.fill(0.0);
            }
            self.idle = self.idle.saturating_add(1);
            self.generation = None;
            return;
        };
        self.idle = 0;
        let due = clock.pts_at(wall) - self.align;
        let delay = self.resampler.output_delay() as f64 / rate;
        let mut error = held.front_pts - delay - due;
        if self.generation != Some(held.generation) || error.abs() > REANCHOR {
            let n = (error.abs() * rate).round() as usize;
            if error < 0.0 {
                held.skip(n);
            } else {
                held.pad(n);
            }
            self.generation = Some(held.generation);
            self.anchors += 1;
            self.resampler.reset();
            self.steering = Steering::default();
            self.fade_in = true;
            error = held.front_pts - delay - due;
        }
        self.error = error;
        let correction = self.steering.correction(error, frames as f64 / rate);
        self.pulls += 1;
        if self.pulls.is_multiple_of(100) {
            tracing::debug!(
                source = %self.id,
                error_ms = error * 1000.0,
                held_ms = held.frames() as f64 * 1000.0 / rate,
                correction_ppm = correction * 1e6,
                "audio source"
            );
        }
        let _ = self
            .resampler
            .set_resample_ratio_relative(1.0 + correction, true);
        let need = self.resampler.input_frames_next();
        let got = held.take(&mut self.input[..need * CHANNELS]);
        drop(held);
        self.input[got * CHANNELS..need * CHANNELS].fill(0.0);
        let (Ok(input), Ok(mut output)) = (
            InterleavedSlice::new(&self.input[..need * CHANNELS], CHANNELS, need),
            InterleavedSlice::new_mut(&mut self.output, CHANNELS, frames),
        ) else {
            self.output.fill(0.0);
            return;
        };
        if self
            .resampler
            .process_into_buffer(&input, &mut output, None)
            .is_err()
        {
            self.output.fill(0.0);
            return;
        }
        if self.fade_in {
            fade(&mut self.output[..FADE.min(frames) * CHANNELS], true);
            self.fade_in = false;
        }
        if got < need {
            // Ran dry: what there was fades out, then silence until the source sends again.
            let end = (got * frames / need.max(1)).min(frames);
            let start = end.saturating_sub(FADE);
            fade(&mut self.output[start * CHANNELS..end * CHANNELS], false);
            self.output[end * CHANNELS..].fill(0.0);
            self.fade_in = true;
        }
    }
}

/// A linear fade of interleaved stereo frames, in or out.
fn fade(frames: &mut [f32], rising: bool) {
    let n = frames.len() / CHANNELS;
    for (i, frame) in frames.chunks_exact_mut(CHANNELS).enumerate() {
        let x = (i + 1) as f32 / (n + 1) as f32;
        let g = if rising { x } else { 1.0 - x };
        frame.iter_mut().for_each(|s| *s *= g);
    }
}

/// The mixer of one pipeline run, on the encoder thread.
pub struct Mixer {
    mix: Arc<AudioMix>,
    align: f64,
    version: u64,
    channels: Vec<Channel>,
    bus: Vec<f32>,
    master: Gain,
    limiter: Limiter,
    program: ProgramMeter,
    since_publish: usize,
    published: u64,
}

impl Mixer {
    /// A mixer producing `frames` frames at a time (the AAC frame size), for a program of
    /// `fps` frames a second: a picture goes on air at the first frame after it is due, on
    /// average half a frame late, so sound is played half a frame after due too (picture
    /// and sound then meet within half a frame either way).
    pub fn new(mix: Arc<AudioMix>, frames: usize, fps: u32) -> Self {
        let master = mix.control().master;
        Self {
            align: 0.5 / f64::from(fps.max(1)),
            mix,
            version: 0,
            channels: Vec::new(),
            bus: vec![0.0; frames * CHANNELS],
            master: Gain::new(master.linear()),
            limiter: Limiter::new(),
            program: ProgramMeter::new(),
            since_publish: 0,
            published: 0,
        }
    }

    /// Takes the latest control changes once the program reaches the moment they were made.
    fn sync(&mut self, wall: Instant) {
        let frames = self.bus.len() / CHANNELS;
        let c = self.mix.control();
        if c.version == self.version || (self.version != 0 && wall < c.changed_at) {
            return;
        }
        self.version = c.version;
        self.channels.retain(|ch| {
            c.sources
                .iter()
                .any(|(id, f, _)| *id == ch.id && Arc::ptr_eq(f, &ch.feed))
        });
        for (id, feed, fader) in &c.sources {
            match self.channels.iter_mut().find(|ch| ch.id == *id) {
                Some(ch) => ch.gain.set(fader.linear()),
                None => {
                    let mut ch = Channel::new(id, feed.clone(), *fader, frames);
                    ch.align = self.align;
                    self.channels.push(ch);
                }
            }
        }
        self.master.set(c.master.linear());
        self.limiter.set_enabled(c.limiter);
    }

    /// Mixes the program's next frames, due on our clock from `wall`, into `out`
    /// (interleaved stereo, the mixer's frame count).
    pub fn mix(&mut self, wall: Instant, out: &mut [f32]) {
        self.sync(wall);
        self.bus.fill(0.0);
        for ch in &mut self.channels {
            ch.pull(wall);
            if ch.asleep() {
                continue;
            }
            ch.meter.add(&ch.output);
            ch.gain.mix_into(&ch.output, &mut self.bus);
        }
        self.master.apply(&mut self.bus);
        self.limiter.process(&mut self.bus);
        self.program.add(&self.bus);
        let n = out.len().min(self.bus.len());
        out[..n].copy_from_slice(&self.bus[..n]);
        self.since_publish += self.bus.len() / CHANNELS;
        if self.since_publish as f64 >= PUBLISH_EVERY * f64::from(RATE) {
            self.since_publish = 0;
            self.publish();
        }
    }

    fn publish(&mut self) {
        self.published += 1;
        let program = self.program.read();
        let mut levels = self.mix.levels.lock().unwrap_or_else(|e| e.into_inner());
        levels.program = program;
        levels.seq = self.published;
        let same = levels.sources.len() == self.channels.len()
            && levels
                .sources
                .iter()
                .zip(&self.channels)
                .all(|((id, _), ch)| *id == ch.id);
        if !same {
            levels.sources = self
                .channels
                .iter()
                .map(|ch| (ch.id.clone(), SourceLevels::default()))
                .collect();
        }
        for ((_, l), ch) in levels.sources.iter_mut().zip(&mut self.channels) {
            *l = ch.meter.read();
        }
    }

    /// How far each source's read position is from due, seconds (> 0: ahead).
    pub fn errors(&self) -> impl Iterator<Item = (&str, f64)> {
        self.channels.iter().map(|c| (c.id.as_str(), c.error))
    }
}

/// The program duration of `frames` frames.
pub fn frames_duration(frames: usize) -> Duration {
    Duration::from_secs_f64(frames as f64 / f64::from(RATE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::feed::Clock;

    /// Six hours of a source 500 ppm fast or slow, its clock read with up to 2 ms of jitter:
    /// the read position settles within a millisecond of due in a minute and stays there,
    /// the correction matching the drift.
    #[test]
    fn the_drift_controller_holds_a_drifting_source_for_hours() {
        for ppm in [500.0, -500.0, 100.0] {
            let eps = ppm * 1e-6;
            let step = 1024.0 / 48_000.0;
            let mut s = Steering::default();
            let (mut read, mut due, mut ratio) = (0.0f64, 0.0f64, 1.0f64);
            let mut worst = 0.0f64;
            for k in 0..(6.0 * 3600.0 / step) as u64 {
                let jitter = ((k * 7919) % 5) as f64 * 0.0005 - 0.001;
                let error = read - due;
                ratio = 1.0 + s.correction(error + jitter, step);
                // A frame consumes step / ratio seconds of the source's audio, while due
                // moves on by step on the source's (faster or slower) clock.
                read += step / ratio;
                due += step * (1.0 + eps);
                if k as f64 * step > 60.0 {
                    worst = worst.max(error.abs());
                }
            }
            assert!(worst < 0.001, "{ppm} ppm: {worst} s off");
            assert!(
                ((1.0 / ratio - 1.0) - eps).abs() < 50e-6,
                "{ppm} ppm: ratio {ratio}"
            );
        }
    }

    /// A source whose clock runs 500 ppm fast or slow, delivered in real time in 1024-sample
    /// packets, its clock updated with every picture (30 a second) from its newest
    /// timestamp, through the whole mixer: after a minute the read position stays within a
    /// millisecond of due, the source is anchored once, and the feed holds what it held at
    /// the start (no growing buffer, no underrun).
    #[test]
    fn a_drifting_source_stays_on_its_clock_in_the_mix() {
        for ppm in [500.0, -500.0] {
            let eps: f64 = ppm * 1e-6;
            let base = Instant::now();
            let delay = 0.05;
            let lookbehind = 0.1;
            let feed = Arc::new(AudioFeed::new());
            let mix = Arc::new(AudioMix::new());
            mix.set_source("cam", &feed, Fader::default());
            // The limiter has nothing to do here (and costs a debug build most of the time).
            mix.set_master(Fader::default(), false);
            let mut mixer = Mixer::new(mix.clone(), 1024, 30);
            let mut out = vec![0.0f32; 2048];
            let packet: Vec<f32> = (0..1024)
                .flat_map(|i| {
                    let v = (i as f32 * 0.05).sin() * 0.1;
                    [v, v]
                })
                .collect();
            let mut sent = 0u64; // source samples sent
            let mut next_picture = 0.0;
            let chunks = (300.0 * 48_000.0 / 1024.0) as u64;
            let (mut worst, mut most_held, mut least_held) = (0.0f64, 0usize, usize::MAX);
            for k in 0..chunks {
                let t = lookbehind + k as f64 * 1024.0 / 48_000.0;
                // Everything the source emitted by now (its clock: s = (1 + eps) t).
                while (sent + 1024) as f64 / 48_000.0 / (1.0 + eps) <= t {
                    let pts = sent as f64 / 48_000.0;
                    feed.push(pts, &packet);
                    sent += 1024;
                }
                while next_picture <= t {
                    let pts = next_picture * (1.0 + eps);
                    feed.set_clock(Clock {
                        base,
                        offset: next_picture + delay - pts,
                    });
                    next_picture += 1.0 / 30.0;
                }
                let wall = base + Duration::from_secs_f64(t - lookbehind);
                mixer.mix(wall, &mut out);
                if t > 60.0 {
                    let (_, e) = mixer.errors().next().unwrap();
                    worst = worst.max(e.abs());
                    let held = feed.lock().frames();
                    most_held = most_held.max(held);
                    least_held = least_held.min(held);
                }
            }
            assert!(worst < 0.001, "{ppm} ppm: {worst} s off");
            assert_eq!(mixer.channels[0].anchors, 1, "{ppm} ppm");
            // About lookbehind + delay of audio waits, give or take one packet and a frame.
            let expected = ((lookbehind + delay + 0.5 / 30.0) * 48_000.0) as usize;
            assert!(
                most_held <= expected + 2100 && least_held + 2100 >= expected,
                "{ppm} ppm: held {least_held}..={most_held}, expected about {expected}"
            );
        }
    }

    /// A source that starts again (a publisher back with timestamps from 0, on a new
    /// clock) is anchored afresh at once: the read position is on its new clock within a
    /// millisecond from the next frame on, and the sound fades in rather than clicking.
    #[test]
    fn a_restarted_source_is_anchored_afresh() {
        let base = Instant::now();
        let feed = Arc::new(AudioFeed::new());
        let mix = Arc::new(AudioMix::new());
        mix.set_source("cam", &feed, Fader::default());
        let mut mixer = Mixer::new(mix, 1024, 30);
        let mut out = vec![0.0f32; 2048];
        let packet = vec![0.5f32; 2048];
        let step = 1024.0 / 48_000.0;
        // (source pts of the first packet, our time of it) for each session.
        let sessions = [(100.0, 0.0), (0.0, 3.0)];
        let mut sent = 0u64;
        for k in 0..(6.0 / step) as u64 {
            let t = k as f64 * step;
            let (pts0, t0) = if t < 3.0 { sessions[0] } else { sessions[1] };
            if t >= 3.0 && sent > 0 && t - step < 3.0 {
                sent = 0;
            }
            while t0 + (sent as f64 * step) <= t + 0.2 {
                feed.push(pts0 + sent as f64 * step, &packet);
                feed.set_clock(Clock {
                    base,
                    offset: t0 + 0.05 - pts0,
                });
                sent += 1;
            }
            mixer.mix(base + Duration::from_secs_f64(t), &mut out);
            if (3.05..3.06).contains(&t) {
                // Just after the restart: fading in from silence.
                assert!(out[0].abs() < 0.5, "{}", out[0]);
            }
            if t > 3.5 {
                let (_, e) = mixer.errors().next().unwrap();
                assert!(e.abs() < 0.001, "{t:.2} s: {e} s off");
            }
        }
        assert_eq!(mixer.channels[0].anchors, 2);
    }
}
