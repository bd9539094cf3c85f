//! Loudness meters (EBU R128 / ITU-R BS.1770, by the `ebur128` crate): the program's
//! momentary, short-term and integrated loudness and true peak, and each source's momentary
//! loudness and sample peak. Readings are published every [`PUBLISH_EVERY`] seconds.

use ebur128::{EbuR128, Mode};
use serde::Serialize;
use utoipa::ToSchema;

use super::{CHANNELS, RATE, linear_to_db};

/// Seconds between published readings (10 a second).
pub const PUBLISH_EVERY: f64 = 0.1;

/// The program's loudness. `null` while there is nothing to measure (silence, or not
/// enough audio yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgramLevels {
    /// Loudness over the last 400 ms, LUFS.
    pub momentary_lufs: Option<f64>,
    /// Loudness over the last 3 s, LUFS.
    pub short_term_lufs: Option<f64>,
    /// Gated loudness since the program started, LUFS.
    pub integrated_lufs: Option<f64>,
    /// The highest true peak (4× oversampled) of the last reading's span, dBTP.
    pub true_peak_dbtp: Option<f64>,
}

/// One source's level, before its fader and mute (what it sends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceLevels {
    /// Loudness over the last 400 ms, LUFS.
    pub momentary_lufs: Option<f64>,
    /// The highest sample of the last reading's span, dBFS.
    pub peak_dbfs: Option<f64>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then(|| (v * 10.0).round() / 10.0)
}

fn db(linear: f64) -> Option<f64> {
    finite(linear_to_db(linear))
}

/// The program meter.
pub struct ProgramMeter {
    r128: EbuR128,
    peak: f64,
}

impl Default for ProgramMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgramMeter {
    /// A meter for 48 kHz stereo. The integrated loudness keeps constant memory however
    /// long the program runs (histogram mode).
    pub fn new() -> Self {
        let r128 = EbuR128::new(
            CHANNELS as u32,
            RATE,
            Mode::I | Mode::S | Mode::TRUE_PEAK | Mode::HISTOGRAM,
        )
        .expect("a 48 kHz stereo meter");
        Self { r128, peak: 0.0 }
    }

    /// Measures interleaved stereo `frames`.
    pub fn add(&mut self, frames: &[f32]) {
        if self.r128.add_frames_f32(frames).is_ok() {
            for c in 0..CHANNELS as u32 {
                self.peak = self.peak.max(self.r128.prev_true_peak(c).unwrap_or(0.0));
            }
        }
    }

    /// The reading now; the peak starts again.
    pub fn read(&mut self) -> ProgramLevels {
        let levels = ProgramLevels {
            momentary_lufs: self.r128.loudness_momentary().ok().and_then(finite),
            short_term_lufs: self.r128.loudness_shortterm().ok().and_then(finite),
            integrated_lufs: self.r128.loudness_global().ok().and_then(finite),
            true_peak_dbtp: db(self.peak),
        };
        self.peak = 0.0;
        levels
    }
}

/// A source's meter.
pub struct SourceMeter {
    r128: EbuR128,
    peak: f64,
}

impl Default for SourceMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl SourceMeter {
    /// A meter for 48 kHz stereo.
    pub fn new() -> Self {
        let r128 = EbuR128::new(CHANNELS as u32, RATE, Mode::M | Mode::SAMPLE_PEAK)
            .expect("a 48 kHz stereo meter");
        Self { r128, peak: 0.0 }
    }

    /// Measures interleaved stereo `frames`.
    pub fn add(&mut self, frames: &[f32]) {
        if self.r128.add_frames_f32(frames).is_ok() {
            for c in 0..CHANNELS as u32 {
                self.peak = self.peak.max(self.r128.prev_sample_peak(c).unwrap_or(0.0));
            }
        }
    }

    /// The reading now; the peak starts again.
    pub fn read(&mut self) -> SourceLevels {
        let levels = SourceLevels {
            momentary_lufs: self.r128.loudness_momentary().ok().and_then(finite),
            peak_dbfs: db(self.peak),
        };
        self.peak = 0.0;
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 kHz stereo sine at -23 LUFS (the EBU test signal's level) reads -23 integrated.
    #[test]
    fn a_reference_tone_reads_its_loudness() {
        // A 997 Hz sine of amplitude A in both channels measures 20·log10(A) − 3.01 + 3.01
        // − 0.691 + K-weighting gain (~0.69 at 1 kHz) ≈ 20·log10(A) dB: −23 LUFS is A ≈ 0.0708.
        let a = super::super::db_to_linear(-23.0 + 0.0) as f32;
        let frames: Vec<f32> = (0..48_000 * 5)
            .flat_map(|i| {
                let v = a * (2.0 * std::f32::consts::PI * 997.0 * i as f32 / 48_000.0).sin();
                [v, v]
            })
            .collect();
        let mut m = ProgramMeter::new();
        for chunk in frames.chunks(2048) {
            m.add(chunk);
        }
        let r = m.read();
        let i = r.integrated_lufs.unwrap();
        assert!((i - -23.0).abs() < 0.3, "{r:?}");
        assert!((r.true_peak_dbtp.unwrap() - -23.0).abs() < 0.2, "{r:?}");
        let mut s = SourceMeter::new();
        s.add(&frames[..48_000]);
        let r = s.read();
        assert!((r.peak_dbfs.unwrap() - -23.0).abs() < 0.1, "{r:?}");
    }
}
