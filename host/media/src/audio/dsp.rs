//! Small signal-processing pieces of the mixer: a gain that moves without clicks and the
//! program's true-peak limiter.

use super::{CHANNELS, RATE, db_to_linear};

/// How long a gain change takes (no clicks, and well within a frame).
pub const RAMP_SECONDS: f64 = 0.010;

/// A gain that ramps linearly to a new value over [`RAMP_SECONDS`].
#[derive(Debug, Clone, Copy)]
pub struct Gain {
    current: f32,
    target: f32,
    step: f32,
}

impl Gain {
    /// A gain at `linear` already.
    pub fn new(linear: f32) -> Self {
        Self {
            current: linear,
            target: linear,
            step: 0.0,
        }
    }

    /// Moves toward `linear` from now on.
    pub fn set(&mut self, linear: f32) {
        if linear != self.target {
            self.target = linear;
            let steps = (RAMP_SECONDS * f64::from(RATE)) as f32;
            self.step = (linear - self.current) / steps;
        }
    }

    /// The gain now.
    pub fn current(&self) -> f32 {
        self.current
    }

    /// Whether the gain is at 0 and stays there.
    pub fn silent(&self) -> bool {
        self.current == 0.0 && self.target == 0.0
    }

    fn next(&mut self) -> f32 {
        if self.current != self.target {
            let next = self.current + self.step;
            let passed = (self.step > 0.0 && next >= self.target)
                || (self.step < 0.0 && next <= self.target)
                || self.step == 0.0;
            self.current = if passed { self.target } else { next };
        }
        self.current
    }

    /// Multiplies interleaved stereo `frames` by the gain, ramping as it goes.
    pub fn apply(&mut self, frames: &mut [f32]) {
        if self.current == self.target {
            if self.current != 1.0 {
                let g = self.current;
                frames.iter_mut().for_each(|s| *s *= g);
            }
            return;
        }
        for frame in frames.chunks_exact_mut(CHANNELS) {
            let g = self.next();
            frame.iter_mut().for_each(|s| *s *= g);
        }
    }

    /// Adds interleaved stereo `frames` times the gain into `bus`, ramping as it goes.
    pub fn mix_into(&mut self, frames: &[f32], bus: &mut [f32]) {
        for (src, dst) in frames
            .chunks_exact(CHANNELS)
            .zip(bus.chunks_exact_mut(CHANNELS))
        {
            let g = self.next();
            for (s, d) in src.iter().zip(dst) {
                *d += s * g;
            }
        }
    }
}

/// Frames the limiter looks ahead: gain comes down over this span before a peak.
pub const LOOKAHEAD: usize = 64;
/// Where the limiter holds the program: below -1 dBTP with room for what AAC adds.
pub const CEILING_DBTP: f64 = -1.5;
/// How fast the limiter lets go after a peak (time constant).
pub const RELEASE_SECONDS: f64 = 0.080;
/// Oversampling of the peak detector (4×: BS.1770's true peak).
const OVERSAMPLE: usize = 4;
/// Taps per phase of the oversampling interpolator.
const TAPS: usize = 12;

/// A look-ahead limiter on the true (inter-sample) peak: every output frame is delayed by
/// [`LOOKAHEAD`] frames, during which the gain ramps down to what the loudest coming peak
/// needs; afterwards it recovers with [`RELEASE_SECONDS`]. Off, it only delays (so turning it
/// on or off never moves the sound against the picture).
pub struct Limiter {
    enabled: bool,
    ceiling: f32,
    release: f32,
    /// Delayed input frames (a ring of LOOKAHEAD + 1 frames).
    delay: [[f32; CHANNELS]; LOOKAHEAD + 1],
    /// The gain each delayed frame needs on its own (same ring).
    needed: [f32; LOOKAHEAD + 1],
    /// The last TAPS input frames, for the interpolator.
    history: [[f32; CHANNELS]; TAPS],
    pos: usize,
    gain: f32,
    /// Windowed-sinc interpolation filters of the fractional phases.
    phases: [[f32; TAPS]; OVERSAMPLE - 1],
    /// The largest absolute sum of a phase's taps.
    spread: f32,
    /// Frames since a need below 1 was last written (none in the delay line: no work).
    calm: usize,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

impl Limiter {
    /// A limiter, on, at [`CEILING_DBTP`].
    pub fn new() -> Self {
        let mut phases = [[0.0f32; TAPS]; OVERSAMPLE - 1];
        for (p, phase) in phases.iter_mut().enumerate() {
            let frac = (p + 1) as f64 / OVERSAMPLE as f64;
            let mut sum = 0.0;
            for (k, tap) in phase.iter_mut().enumerate() {
                // Sample k of the history sits at TAPS/2 - 1 - k + frac from the point.
                let x = (TAPS / 2) as f64 - 1.0 - k as f64 + frac;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let w = 0.5 + 0.5 * (std::f64::consts::PI * x / (TAPS as f64 / 2.0 + 1.0)).cos();
                *tap = (sinc * w) as f32;
                sum += sinc * w;
            }
            phase.iter_mut().for_each(|t| *t /= sum as f32);
        }
        let spread = phases
            .iter()
            .map(|p| p.iter().map(|t| t.abs()).sum::<f32>())
            .fold(1.0, f32::max);
        Self {
            calm: usize::MAX,
            spread,
            enabled: true,
            ceiling: db_to_linear(CEILING_DBTP) as f32,
            release: 1.0 - (-1.0 / (RELEASE_SECONDS * f64::from(RATE))).exp() as f32,
            delay: [[0.0; CHANNELS]; LOOKAHEAD + 1],
            needed: [1.0; LOOKAHEAD + 1],
            history: [[0.0; CHANNELS]; TAPS],
            pos: 0,
            gain: 1.0,
            phases,
        }
    }

    /// Turns limiting on or off (the delay stays).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// The gain reduction now, in dB (0 when not limiting).
    pub fn reduction_db(&self) -> f64 {
        -super::linear_to_db(f64::from(self.gain))
    }

    /// Takes the newest input frame; returns its sample peak and the largest interpolated
    /// point between the two frames half the filter behind it ([`TAPS`] / 2 and one less).
    fn peaks(&mut self, frame: [f32; CHANNELS]) -> (f32, f32) {
        self.history.copy_within(1.., 0);
        self.history[TAPS - 1] = frame;
        let sample = frame.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        // No interpolated point exceeds the largest sample in reach times the filter's
        // largest absolute sum: quiet stretches need no interpolation.
        let reach = self
            .history
            .iter()
            .flatten()
            .fold(0.0f32, |m, s| m.max(s.abs()));
        if reach * self.spread <= self.ceiling {
            return (sample, 0.0);
        }
        let mut between = 0.0f32;
        for c in 0..CHANNELS {
            for phase in &self.phases {
                let v: f32 = phase
                    .iter()
                    .zip(self.history.iter().rev())
                    .map(|(t, h)| t * h[c])
                    .sum();
                between = between.max(v.abs());
            }
        }
        (sample, between)
    }

    fn need(&self, peak: f32) -> f32 {
        if peak > self.ceiling {
            self.ceiling / peak
        } else {
            1.0
        }
    }

    /// Limits interleaved stereo `frames` in place (output delayed by [`LOOKAHEAD`]).
    pub fn process(&mut self, frames: &mut [f32]) {
        let len = LOOKAHEAD + 1;
        for frame in frames.chunks_exact_mut(CHANNELS) {
            let input = [frame[0], frame[1]];
            let newest = self.pos;
            self.delay[newest] = input;
            self.needed[newest] = 1.0;
            if self.enabled {
                let (sample, between) = self.peaks(input);
                self.needed[newest] = self.need(sample);
                // The interpolated points lie between the frames TAPS/2 and TAPS/2 - 1
                // behind the newest: both are still in the delay line.
                let need = self.need(between);
                for back in [TAPS / 2 - 1, TAPS / 2] {
                    let slot = (newest + len - back) % len;
                    self.needed[slot] = self.needed[slot].min(need);
                }
                if self.needed[newest] < 1.0 || need < 1.0 {
                    self.calm = 0;
                }
            }
            self.calm = self.calm.saturating_add(1);
            self.pos = (self.pos + 1) % len;
            // The gain that reaches every coming peak's need by the time it leaves: a
            // straight line down from 1, LOOKAHEAD frames long, to each need.
            let mut target = 1.0f32;
            let limiting = self.calm <= len;
            for k in (0..len).filter(|_| limiting) {
                let need = self.needed[(self.pos + k) % len];
                if need < 1.0 {
                    let reach = k as f32 / LOOKAHEAD as f32;
                    target = target.min(need + (1.0 - need) * reach);
                }
            }
            self.gain = if target < self.gain {
                target
            } else {
                self.gain + (target - self.gain) * self.release
            };
            let out = self.delay[self.pos];
            let g = if self.enabled { self.gain } else { 1.0 };
            frame[0] = out[0] * g;
            frame[1] = out[1] * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gain_change_ramps_over_ten_ms() {
        let mut g = Gain::new(1.0);
        g.set(0.0);
        let mut frames = vec![1.0f32; 2 * 1024];
        g.apply(&mut frames);
        // Down by 1/480 a frame: no step, silent after 480 frames.
        assert!((frames[0] - (1.0 - 1.0 / 480.0)).abs() < 1e-6);
        for pair in frames.chunks_exact(2).collect::<Vec<_>>().windows(2) {
            assert!((pair[0][0] - pair[1][0]).abs() <= 1.0 / 480.0 + 1e-6);
        }
        assert_eq!(frames[2 * 480], 0.0);
        assert!(g.silent());
    }

    fn tone(freq: f64, amplitude: f64, n: usize, phase: f64) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let v = (amplitude
                    * (2.0 * std::f64::consts::PI * freq * i as f64 / 48_000.0 + phase).sin())
                    as f32;
                [v, v]
            })
            .collect()
    }

    /// A tone 12 dB too loud comes out at the ceiling, measured as BS.1770 true peak (4×
    /// oversampled, by the ebur128 crate) for tones whose peaks fall between samples; a
    /// quiet one passes untouched (after the look-ahead delay).
    #[test]
    fn the_limiter_holds_the_true_peak_and_leaves_quiet_sound_alone() {
        for freq in [997.0, 5_000.0, 11_025.0, 15_000.0] {
            let mut l = Limiter::new();
            let mut x = tone(freq, 4.0, 48_000, 0.3);
            l.process(&mut x);
            let mut meter =
                ebur128::EbuR128::new(2, 48_000, ebur128::Mode::TRUE_PEAK).expect("meter");
            meter.add_frames_f32(&x[4800 * 2..]).unwrap();
            let tp = crate::audio::linear_to_db(meter.true_peak(0).unwrap());
            assert!(
                tp <= CEILING_DBTP + 0.3 && tp > CEILING_DBTP - 1.0,
                "{freq} Hz: {tp} dBTP"
            );
        }
        let mut l = Limiter::new();
        let quiet = tone(1000.0, 0.5, 4800, 0.0);
        let mut x = quiet.clone();
        l.process(&mut x);
        assert_eq!(&x[LOOKAHEAD * 2..], &quiet[..quiet.len() - LOOKAHEAD * 2]);
        assert_eq!(l.reduction_db(), 0.0);
    }
}
