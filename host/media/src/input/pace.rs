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
//! jumping on every late packet. Live pictures are held [`LIVE_DELAY`] past that envelope,
//! a small jitter buffer: pictures arriving within it go on air exactly a frame interval
//! apart, later ones at once.

use std::time::{Duration, Instant};

/// How long a live picture is held past the earliest it could have arrived.
pub const LIVE_DELAY: f64 = 0.020;
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
        }
    }

    /// Starts again from the next picture (after a reconnect or a seek).
    pub fn reset(&mut self) {
        self.offset = None;
        self.last_arrival = None;
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
        let due = pts + offset + if self.live { LIVE_DELAY } else { 0.0 };
        self.base + Duration::from_secs_f64(due.max(0.0))
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
