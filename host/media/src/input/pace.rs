//! When a decoded picture is due on air, from its timestamp: frame-rate differences between
//! a source and the program are resolved against timestamps, not arrival times, and the
//! delay stays flat over hours.
//!
//! A file is paced from a fixed anchor (its first picture at the moment it started), so it
//! plays at its own speed whatever the decoder does. A live source is anchored on the
//! earliest its pictures have arrived (the lower envelope of `arrival − timestamp`): a
//! burst after a network hiccup is spread out again by timestamp, a late picture is shown
//! at once, and a source whose clock runs fast (its timestamps advance quicker than ours)
//! pulls the anchor earlier with it, so no backlog builds. The envelope rises back slowly
//! ([`RISE_PER_SEC`]), which follows a slow clock (500 ppm is 0.5 ms a second) without
//! jumping on every late packet. Live pictures are held past that envelope, a small jitter
//! buffer: pictures ready within it go on air exactly a frame interval apart, later ones at
//! once. The hold is what this source needs: the 95th percentile of how long after the
//! envelope its recent pictures were ready to show (network jitter, decoding, scaling) plus
//! [`HOLD_MARGIN`], within [`MIN_HOLD`]..=[`MAX_HOLD`]; [`LIVE_DELAY`] until it is known.
//! A steady camera on a quiet network is held a few milliseconds, a jittery one longer.

use std::time::{Duration, Instant};

/// How long a live picture is held past the earliest it could have arrived, until the
/// source's own jitter is known.
pub const LIVE_DELAY: f64 = 0.020;
/// The shortest hold of a live source.
pub const MIN_HOLD: f64 = 0.003;
/// The longest hold of a live source (pictures later than this go on air as they come).
pub const MAX_HOLD: f64 = 0.060;
/// Added to the measured 95th percentile.
pub const HOLD_MARGIN: f64 = 0.002;
/// Pictures the hold is measured over (about 8 s at 30 fps).
const JITTER_WINDOW: usize = 256;
/// The hold is worked out again every this many pictures.
const HOLD_EVERY: usize = 32;
/// How fast a live source's anchor may move later: faster than any real clock drifts.
pub const RISE_PER_SEC: f64 = 0.002;
/// A timestamp this far from where it was expected is a jump (a new stream, a loop, a
/// camera restart): pacing starts again from it.
pub const JUMP: f64 = 2.0;

/// Paces one source's pictures.
#[derive(Debug)]
pub struct Pacer {
    live: bool,
    /// Our clock minus the source's, in seconds since `base`.
    offset: Option<f64>,
    base: Instant,
    last_arrival: Option<Instant>,
    last_pts: f64,
    /// The hold of a live source, in seconds.
    hold: f64,
    /// How long after the envelope recent pictures were ready (a ring), and how many so far.
    readiness: [f32; JITTER_WINDOW],
    measured: usize,
    /// The envelope time of the picture last paced, for [`Pacer::ready`].
    envelope: Option<Instant>,
}

impl Pacer {
    /// A pacer for a live source (`true`) or a file (`false`).
    pub fn new(live: bool) -> Self {
        Self {
            live,
            offset: None,
            base: Instant::now(),
            last_arrival: None,
            last_pts: 0.0,
            hold: LIVE_DELAY,
            readiness: [0.0; JITTER_WINDOW],
            measured: 0,
            envelope: None,
        }
    }

    /// How long live pictures are held past the envelope now, in seconds.
    pub fn hold(&self) -> f64 {
        self.hold
    }

    /// The picture last given to [`Pacer::due`] is ready to show at `at` (decoded and
    /// converted): measures the source's jitter and adapts the hold to it.
    pub fn ready(&mut self, at: Instant) {
        let (true, Some(envelope)) = (self.live, self.envelope) else {
            return;
        };
        let after = at.saturating_duration_since(envelope).as_secs_f64();
        self.readiness[self.measured % JITTER_WINDOW] = after as f32;
        self.measured += 1;
        if self.measured >= HOLD_EVERY && self.measured.is_multiple_of(HOLD_EVERY) {
            let n = self.measured.min(JITTER_WINDOW);
            let mut sorted = self.readiness;
            let window = &mut sorted[..n];
            let at = (n * 95 / 100).min(n - 1);
            let (_, p95, _) = window.select_nth_unstable_by(at, f32::total_cmp);
            self.hold = (f64::from(*p95) + HOLD_MARGIN).clamp(MIN_HOLD, MAX_HOLD);
        }
    }

    /// Starts again from the next picture (after a reconnect or a seek); the hold is
    /// measured again.
    pub fn reset(&mut self) {
        self.offset = None;
        self.last_arrival = None;
        self.envelope = None;
        self.measured = 0;
        self.hold = LIVE_DELAY;
    }

    /// The mapping of this source's timestamps onto our clock as it stands (the due time of
    /// timestamp `pts` is `base + pts + offset`), once the first picture is paced. Its sound
    /// is due on the same clock.
    pub fn clock(&self) -> Option<crate::audio::feed::Clock> {
        let hold = if self.live { self.hold } else { 0.0 };
        self.offset.map(|offset| crate::audio::feed::Clock {
            base: self.base,
            offset: offset + hold,
        })
    }

    /// When a picture with timestamp `pts` (seconds) that arrived at `arrival` is due.
    pub fn due(&mut self, pts: f64, arrival: Instant) -> Instant {
        let at = arrival.saturating_duration_since(self.base).as_secs_f64();
        let seen = at - pts;
        let offset = match self.offset {
            None => seen,
            // A jump in timestamps (either way) or in time: start again from here.
            Some(o) if (pts + o - at).abs() > JUMP => seen,
            Some(o) if self.live => {
                let since = self
                    .last_arrival
                    .map_or(0.0, |l| arrival.saturating_duration_since(l).as_secs_f64());
                (o + since * RISE_PER_SEC).min(seen)
            }
            Some(o) => o,
        };
        self.offset = Some(offset);
        self.last_arrival = Some(arrival);
        self.last_pts = pts;
        let envelope = self.base + Duration::from_secs_f64((pts + offset).max(0.0));
        self.envelope = Some(envelope);
        if self.live {
            envelope + Duration::from_secs_f64(self.hold)
        } else {
            envelope
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_plays_at_its_own_speed() {
        let mut p = Pacer::new(false);
        let t0 = Instant::now();
        // Decoded all at once: due 40 ms apart.
        let d0 = p.due(10.0, t0);
        let d1 = p.due(10.04, t0);
        let d2 = p.due(10.08, t0 + Duration::from_millis(1));
        assert_eq!(d1 - d0, Duration::from_millis(40));
        assert_eq!(d2 - d0, Duration::from_millis(80));
        // A loop back to 0 starts again.
        let d3 = p.due(0.0, t0 + Duration::from_millis(120));
        assert!(d3 >= t0 + Duration::from_millis(119));
    }

    /// The hold settles on what the source needs: the 95th percentile of how late after
    /// the envelope its pictures are ready (arrival jitter plus decoding and scaling), plus
    /// the margin; a quiet source is held less than the starting delay, a jittery one more,
    /// within the bounds. Once settled, 95 % of the pictures are due after they are ready.
    #[test]
    fn the_hold_follows_the_sources_own_jitter() {
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        for (jitter, work, low, high) in [
            (2u64, 3.0, 6.0, 8.0),
            (15, 5.0, 20.0, 23.0),
            (40, 10.0, 48.0, 53.0),
            (90, 10.0, 60.0, 60.0),
        ] {
            let mut p = Pacer::new(true);
            assert_eq!(p.hold(), LIVE_DELAY);
            let t0 = Instant::now();
            let (mut on_time, mut counted) = (0, 0);
            for n in 0..(30 * 20u64) {
                let real = n as f64 / 30.0;
                // Jitter spread evenly over 0..=jitter ms, deterministic.
                let late = ((n * 7919) % (jitter + 1)) as f64;
                let arrival = t0 + ms(real * 1000.0 + late);
                let due = p.due(real, arrival);
                let ready = arrival + ms(work);
                p.ready(ready);
                if n >= 30 * 10 {
                    counted += 1;
                    on_time += usize::from(due >= ready);
                }
            }
            let hold = p.hold() * 1000.0;
            assert!(
                (low..=high).contains(&hold),
                "jitter {jitter} ms, work {work} ms: held {hold} ms"
            );
            if hold < MAX_HOLD * 1000.0 {
                assert!(
                    on_time * 100 >= counted * 94,
                    "{on_time} of {counted} on time"
                );
            }
            p.reset();
            assert_eq!(p.hold(), LIVE_DELAY, "measured again after a reconnect");
        }
    }

    /// A source 500 ppm fast or slow for an hour at 30 fps, with arrival jitter: the delay
    /// from arrival to due stays within a few ms, never growing.
    #[test]
    fn live_delay_stays_flat_with_a_drifting_clock() {
        for ppm in [-500.0, 500.0] {
            let mut p = Pacer::new(true);
            let t0 = Instant::now();
            let mut worst = 0.0f64;
            let mut lead = 0.0f64;
            for n in 0..(30 * 3600u64) {
                let real = n as f64 / 30.0;
                let pts = real * (1.0 + ppm * 1e-6);
                // Up to 8 ms of network jitter, deterministic.
                let jitter = ((n * 7919) % 9) as f64 * 0.001;
                let arrival = t0 + Duration::from_secs_f64(real + jitter);
                let due = p.due(pts, arrival);
                let late = due.saturating_duration_since(arrival).as_secs_f64();
                let early = arrival.saturating_duration_since(due).as_secs_f64();
                if n > 30 * 60 {
                    worst = worst.max(late);
                    lead = lead.max(early);
                }
            }
            // Held at most the jitter buffer (plus what the anchor rose since the earliest
            // arrival), never released after it arrived.
            assert!(worst <= LIVE_DELAY + 0.001, "{ppm} ppm: held {worst}");
            assert_eq!(lead, 0.0, "{ppm} ppm: late");
        }
    }
}
