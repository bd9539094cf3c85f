//! The hand-over point between an input's audio and the mixer: a bounded buffer of 48 kHz
//! stereo samples with the source timestamp of the first one, and the clock that says when a
//! source timestamp is due on ours.
//!
//! The input's thread appends what it decodes ([`AudioFeed::push`]); timestamps within
//! [`CONTIGUOUS`] of where the held audio ends continue it (packet timestamps are rounded to
//! milliseconds by RTMP), a gap up to [`MAX_GAP`] is filled with silence, and anything else
//! (a new publisher, a jump) starts the feed again, which the mixer sees as a new
//! generation. The mixer takes samples from the front. The buffer holds at most
//! [`MAX_SECONDS`]; what does not fit pushes out the oldest (a source far ahead of its clock,
//! which the mixer would skip anyway). Nothing allocates after the feed is made.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::{CHANNELS, RATE};

/// Most audio a feed holds, in seconds.
pub const MAX_SECONDS: usize = 4;
/// A timestamp this close to where the held audio ends continues it (seconds).
pub const CONTIGUOUS: f64 = 0.05;
/// A gap up to this long is filled with silence; a longer one starts the feed again.
pub const MAX_GAP: f64 = 1.0;

/// When a source timestamp is due on our clock: `base + pts + offset` (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// The instant source timestamps are counted from, with `offset`.
    pub base: Instant,
    /// Our clock minus the source's, seconds since `base`.
    pub offset: f64,
}

impl Clock {
    /// The source timestamp due at `wall`.
    pub fn pts_at(&self, wall: Instant) -> f64 {
        let since = match wall.checked_duration_since(self.base) {
            Some(d) => d.as_secs_f64(),
            None => -self.base.duration_since(wall).as_secs_f64(),
        };
        since - self.offset
    }
}

/// What a feed holds, for the mixer (under the feed's lock).
pub struct Held {
    /// Interleaved stereo samples, oldest first.
    pub samples: VecDeque<f32>,
    /// Source timestamp of the first frame held (seconds).
    pub front_pts: f64,
    /// The clock of the source, once known.
    pub clock: Option<Clock>,
    /// Bumped whenever the feed starts again (the mixer anchors afresh).
    pub generation: u64,
    /// Whether anything was pushed since the feed (re)started.
    started: bool,
}

impl Held {
    /// Frames held.
    pub fn frames(&self) -> usize {
        self.samples.len() / CHANNELS
    }

    /// Forgets the first `n` frames (they are late).
    pub fn skip(&mut self, n: usize) {
        let n = n.min(self.frames());
        self.samples.drain(..n * CHANNELS);
        self.front_pts += n as f64 / f64::from(RATE);
    }

    /// Puts `n` frames of silence before the held audio (it is early), as far as there is
    /// room.
    pub fn pad(&mut self, n: usize) {
        let room = (self.samples.capacity() - self.samples.len()) / CHANNELS;
        let n = n.min(room);
        for _ in 0..n * CHANNELS {
            self.samples.push_front(0.0);
        }
        self.front_pts -= n as f64 / f64::from(RATE);
    }

    /// Moves up to `out.len() / 2` frames into `out` (interleaved); returns the frames moved.
    pub fn take(&mut self, out: &mut [f32]) -> usize {
        let n = (out.len() / CHANNELS).min(self.frames());
        let (a, b) = self.samples.as_slices();
        let from_a = a.len().min(n * CHANNELS);
        out[..from_a].copy_from_slice(&a[..from_a]);
        out[from_a..n * CHANNELS].copy_from_slice(&b[..n * CHANNELS - from_a]);
        self.samples.drain(..n * CHANNELS);
        self.front_pts += n as f64 / f64::from(RATE);
        n
    }
}

/// One source's audio on its way to the mixer.
pub struct AudioFeed {
    held: Mutex<Held>,
}

impl Default for AudioFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioFeed {
    /// An empty feed, its buffer allocated once.
    pub fn new() -> Self {
        Self {
            held: Mutex::new(Held {
                samples: VecDeque::with_capacity(MAX_SECONDS * RATE as usize * CHANNELS),
                front_pts: 0.0,
                clock: None,
                generation: 0,
                started: false,
            }),
        }
    }

    /// The feed's contents, locked (the mixer; briefly).
    pub fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends decoded frames (interleaved stereo) whose first has source timestamp `pts`.
    pub fn push(&self, pts: f64, frames: &[f32]) {
        let mut held = self.lock();
        let rate = f64::from(RATE);
        if held.started {
            let end = held.front_pts + held.frames() as f64 / rate;
            let gap = pts - end;
            if gap.abs() <= CONTIGUOUS {
                // Continues the held audio (timestamp rounding and jitter are ignored).
            } else if gap > 0.0 && gap <= MAX_GAP {
                let silence = (gap * rate).round() as usize;
                append(&mut held, silence, None);
            } else {
                restart(&mut held, pts);
            }
        } else {
            restart(&mut held, pts);
        }
        append(&mut held, frames.len() / CHANNELS, Some(frames));
    }

    /// Sets the clock that maps this source's timestamps onto ours.
    pub fn set_clock(&self, clock: Clock) {
        self.lock().clock = Some(clock);
    }

    /// The source starts again (a reconnect, a new publisher, a stop): what is held is
    /// dropped and the clock forgotten.
    pub fn reset(&self) {
        let mut held = self.lock();
        held.samples.clear();
        held.clock = None;
        held.started = false;
        held.generation += 1;
    }
}

fn restart(held: &mut Held, pts: f64) {
    held.samples.clear();
    held.front_pts = pts;
    held.started = true;
    held.generation += 1;
}

/// Appends `n` frames of `frames` (silence when `None`), pushing out the oldest when full.
fn append(held: &mut Held, n: usize, frames: Option<&[f32]>) {
    let capacity = held.samples.capacity() / CHANNELS;
    let n_kept = n.min(capacity);
    let over = (held.frames() + n_kept).saturating_sub(capacity);
    if over > 0 {
        held.skip(over);
    }
    let skipped_new = n - n_kept;
    match frames {
        Some(f) => held
            .samples
            .extend(f[skipped_new * CHANNELS..n * CHANNELS].iter()),
        None => held
            .samples
            .extend(std::iter::repeat_n(0.0, n_kept * CHANNELS)),
    }
    if skipped_new > 0 {
        // More than the whole buffer at once: only its newest part is kept.
        held.front_pts += skipped_new as f64 / f64::from(RATE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, v: f32) -> Vec<f32> {
        vec![v; n * CHANNELS]
    }

    #[test]
    fn timestamps_continue_fill_gaps_or_start_again() {
        let feed = AudioFeed::new();
        feed.push(10.0, &frames(480, 0.5));
        let g = feed.lock().generation;
        // 1 ms of rounding: continues.
        feed.push(10.011, &frames(480, 0.5));
        assert_eq!(feed.lock().frames(), 960);
        // A 100 ms gap is silence.
        feed.push(10.12, &frames(480, 0.5));
        {
            let held = feed.lock();
            assert_eq!(held.frames(), 960 + 4800 + 480);
            assert_eq!(held.generation, g);
            assert_eq!(held.samples[960 * 2], 0.0);
        }
        // Backwards: a new start.
        feed.push(3.0, &frames(100, 0.25));
        let held = feed.lock();
        assert_eq!((held.frames(), held.front_pts), (100, 3.0));
        assert_eq!(held.generation, g + 1);
    }

    #[test]
    fn a_full_feed_keeps_the_newest_audio_and_its_timestamps() {
        let feed = AudioFeed::new();
        let cap = MAX_SECONDS * RATE as usize;
        feed.push(0.0, &frames(cap, 0.1));
        feed.push(MAX_SECONDS as f64, &frames(RATE as usize, 0.2));
        let mut held = feed.lock();
        assert_eq!(held.frames(), cap);
        assert!((held.front_pts - 1.0).abs() < 1e-9, "{}", held.front_pts);
        let mut out = vec![0.0; 4];
        held.skip(cap - RATE as usize);
        assert_eq!(held.take(&mut out), 2);
        assert_eq!(out, [0.2; 4]);
        held.pad(10);
        assert_eq!(held.samples[0], 0.0);
        assert!(
            (held.front_pts - (MAX_SECONDS as f64 + 2.0 / 48_000.0 - 10.0 / 48_000.0)).abs() < 1e-9
        );
    }
}
