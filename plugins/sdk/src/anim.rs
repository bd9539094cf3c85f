//! Small helpers for animating from `frame.time_ms`.
//!
//! Animate from time, not from counting frames: the host may skip frames, and `time_ms`
//! runs on across a hot swap.

/// `t` clamped to 0.0–1.0 (0.0 when not finite).
pub fn clamp01(t: f32) -> f32 {
    if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The value `t` of the way from `a` to `b`.
pub fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// How far (0.0–1.0) an animation that started at `start_ms` and lasts `duration_ms` has
/// got at `now_ms`. A duration of 0 or less is finished at once.
pub fn progress(now_ms: f64, start_ms: f64, duration_ms: f64) -> f32 {
    if duration_ms <= 0.0 {
        return 1.0;
    }
    clamp01(((now_ms - start_ms) / duration_ms) as f32)
}

/// Starts fast, ends slowly (cubic).
pub fn ease_out_cubic(t: f32) -> f32 {
    let u = 1.0 - clamp01(t);
    1.0 - u * u * u
}

/// Starts slowly, ends fast (cubic).
pub fn ease_in_cubic(t: f32) -> f32 {
    let t = clamp01(t);
    t * t * t
}

/// Starts and ends slowly (cubic).
pub fn ease_in_out_cubic(t: f32) -> f32 {
    let t = clamp01(t);
    if t < 0.5 {
        4.0 * t * t * t
    } else {
        let u = -2.0 * t + 2.0;
        1.0 - u * u * u / 2.0
    }
}

/// A smooth oscillation between 0.0 and 1.0 with the given period, 0.0 at time 0.
pub fn pulse(now_ms: f64, period_ms: f64) -> f32 {
    if period_ms <= 0.0 || !now_ms.is_finite() {
        return 0.0;
    }
    let phase = (now_ms / period_ms).rem_euclid(1.0);
    (0.5 - 0.5 * (phase * std::f64::consts::TAU).cos()) as f32
}

/// Where something is between hidden (0.0) and shown (1.0) as it moves, at a steady
/// speed, towards where it is heading: the in and out animation of a template.
///
/// Set where it heads with [`Presence::set`], at a known time (a [`play`](crate::Template::play)
/// or [`stop`](crate::Template::stop)) or at the next frame (a change of params, whose time
/// `configure` does not know); read where it is with [`Presence::at`] in `render`. A
/// change mid-way turns round from where it has got to. Ease the result for drawing
/// ([`ease_out_cubic`] and the like).
///
/// ```
/// use stream_manager_sdk::anim::Presence;
///
/// let mut p = Presence::new(400.0, 300.0);
/// p.set(true, Some(1000.0)); // play at 1000 ms
/// assert_eq!(p.at(1200.0), 0.5);
/// p.set(false, Some(1400.0)); // stop when fully in
/// assert_eq!(p.at(1550.0), 0.5);
/// assert_eq!(p.at(1700.0), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Presence {
    /// Where it heads: shown or hidden.
    shown: bool,
    /// Where it was when the current movement started.
    from: f32,
    /// When the current movement started; `None` until the next frame fixes it.
    start_ms: Option<f64>,
    /// The last frame's time seen by [`Presence::at`].
    last_ms: Option<f64>,
    /// How long a whole movement in takes, ms.
    in_ms: f64,
    /// How long a whole movement out takes, ms.
    out_ms: f64,
}

impl Presence {
    /// Hidden and still; moving in takes `in_ms`, out `out_ms` (0 or less: at once).
    pub const fn new(in_ms: f64, out_ms: f64) -> Presence {
        Presence {
            shown: false,
            from: 0.0,
            start_ms: Some(0.0),
            last_ms: None,
            in_ms,
            out_ms,
        }
    }

    /// Whether it is heading for shown.
    pub fn heading_in(&self) -> bool {
        self.shown
    }

    /// Heads for shown (`true`) or hidden from `at_ms`, or from the next frame given to
    /// [`Presence::at`] when `None`. Heading where it already heads changes nothing.
    pub fn set(&mut self, shown: bool, at_ms: Option<f64>) {
        if shown == self.shown {
            return;
        }
        // The movement so far ends where it is at the change (or at the last frame seen,
        // when the change's time is not known).
        let until = at_ms.or(self.last_ms);
        self.from = match (self.start_ms, until) {
            (Some(_), Some(t)) => self.progress(t),
            _ => self.from,
        };
        self.shown = shown;
        self.start_ms = at_ms.filter(|t| t.is_finite());
    }

    /// Where it is (0.0 hidden – 1.0 shown) at `now_ms`, fixing a movement waiting for
    /// its start there. Call it with each frame's time.
    pub fn at(&mut self, now_ms: f64) -> f32 {
        if self.start_ms.is_none() && now_ms.is_finite() {
            self.start_ms = Some(now_ms);
        }
        self.last_ms = Some(now_ms);
        self.progress(now_ms)
    }

    /// Where it is at `now_ms`, changing nothing.
    pub fn progress(&self, now_ms: f64) -> f32 {
        let start = self.start_ms.unwrap_or(now_ms);
        let duration = if self.shown { self.in_ms } else { self.out_ms };
        let moved = if duration > 0.0 {
            clamp01(((now_ms - start).max(0.0) / duration) as f32)
        } else {
            1.0
        };
        // `moved` is a share of a whole movement: the way left takes its share of time.
        if self.shown {
            clamp01(self.from + moved)
        } else {
            clamp01(self.from - moved)
        }
    }

    /// Whether it has arrived where it heads at `now_ms` (nothing moves from then on).
    pub fn settled(&self, now_ms: f64) -> bool {
        let p = self.progress(now_ms);
        if self.shown { p >= 1.0 } else { p <= 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_moves_in_and_out_at_its_times() {
        let mut p = Presence::new(400.0, 200.0);
        assert_eq!(p.at(0.0), 0.0);
        assert!(p.settled(0.0));
        p.set(true, Some(100.0));
        assert!(p.heading_in());
        assert_eq!(p.at(100.0), 0.0);
        assert_eq!(p.at(300.0), 0.5);
        assert_eq!(p.at(500.0), 1.0);
        assert!(p.settled(500.0));
        p.set(false, Some(1000.0));
        assert_eq!(p.at(1100.0), 0.5);
        assert_eq!(p.at(1200.0), 0.0);
        assert_eq!(p.at(5000.0), 0.0);
    }

    #[test]
    fn presence_turns_round_mid_way_and_waits_for_a_frame_when_the_time_is_unknown() {
        let mut p = Presence::new(400.0, 400.0);
        p.set(true, Some(0.0));
        assert_eq!(p.at(100.0), 0.25);
        // Turned round at 200 ms (0.5 in): out from there.
        p.set(false, Some(200.0));
        assert_eq!(p.at(300.0), 0.25);
        // A change at an unknown time starts at the next frame, from the last one seen.
        p.set(true, None);
        assert_eq!(p.progress(300.0), 0.25);
        assert_eq!(p.at(340.0), 0.25);
        assert_eq!(p.at(440.0), 0.5);
        assert_eq!(p.at(740.0), 1.0);
    }

    #[test]
    fn a_play_replayed_late_shows_what_it_reached() {
        let mut p = Presence::new(400.0, 400.0);
        p.set(true, Some(0.0));
        assert_eq!(p.at(10_000.0), 1.0);
        let mut q = Presence::new(0.0, 0.0);
        q.set(true, Some(5.0));
        assert_eq!(q.at(5.0), 1.0);
        q.set(false, Some(6.0));
        assert_eq!(q.at(6.0), 0.0);
    }

    #[test]
    fn easings_hit_their_ends() {
        for f in [ease_out_cubic, ease_in_cubic, ease_in_out_cubic] {
            assert_eq!(f(0.0), 0.0);
            assert_eq!(f(1.0), 1.0);
            assert_eq!(f(-3.0), 0.0);
            assert_eq!(f(f32::NAN), 0.0);
        }
        assert!((ease_in_out_cubic(0.5) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn progress_and_pulse() {
        assert_eq!(progress(250.0, 0.0, 500.0), 0.5);
        assert_eq!(progress(900.0, 0.0, 500.0), 1.0);
        assert_eq!(progress(0.0, 100.0, 500.0), 0.0);
        assert_eq!(progress(0.0, 0.0, 0.0), 1.0);
        assert!(pulse(0.0, 1000.0).abs() < 1e-6);
        assert!((pulse(500.0, 1000.0) - 1.0).abs() < 1e-6);
        assert!((pulse(-500.0, 1000.0) - 1.0).abs() < 1e-6);
    }
}
