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

#[cfg(test)]
mod tests {
    use super::*;

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
