//! What the render thread hands to the encoder thread, and the counters the two share with
//! the API and metrics.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A message from the render thread to the encoder.
pub enum FrameMsg {
    /// A newly rendered RGBA frame (premultiplied, opaque) for clock tick `index`.
    Rendered {
        /// Pooled RGBA buffer; goes back to the pool after conversion.
        buffer: Vec<u8>,
        /// Clock tick of this frame since the run started.
        index: u64,
        /// When the tick was due on the render clock.
        due: Instant,
        /// When rendering finished (for encoder latency).
        at: Instant,
    },
    /// Paused: encode the previous frame again at tick `index`.
    Repeat {
        /// Clock tick.
        index: u64,
        /// When the tick was due on the render clock.
        due: Instant,
        /// When the tick happened.
        at: Instant,
    },
}

/// Counters shared by the pipeline threads and read by the API and metrics.
/// They outlive pipeline restarts (a config change while live keeps counting).
#[derive(Default)]
pub struct PipelineStats {
    /// Frames rendered (or repeated while paused) and queued.
    pub frames: AtomicU64,
    /// Frames lost: late ticks and full queues.
    pub dropped: AtomicU64,
    /// Sum of render times, nanoseconds.
    pub render_nanos: AtomicU64,
    /// The latest render times (see [`PipelineStats::recent_renders`]).
    recent: RecentRenders,
    /// Frames whose render time is in `render_nanos`.
    pub rendered: AtomicU64,
    /// Frames encoded.
    pub encoded: AtomicU64,
    /// Encoded bytes (video + audio).
    pub encoded_bytes: AtomicU64,
    /// Last render → packet latency, microseconds.
    pub encoder_latency_us: AtomicU64,
    /// Frames waiting in the queue.
    pub queued: AtomicU64,
    /// The last pipeline fault.
    pub error: Mutex<Option<String>>,
    /// The template layer the render thread works on now (empty when none), named by the
    /// watchdog when the thread stalls.
    pub busy: Arc<Mutex<String>>,
    /// The video encoder the running pipeline opened.
    pub encoder: Mutex<Option<crate::video_encoder::EncoderSelection>>,
}

/// Render times of the last [`RECENT_RENDERS`] frames kept.
pub const RECENT_RENDERS: usize = 256;

/// A ring of the latest render times in microseconds, written by the render thread without
/// a lock or an allocation, read by the API and metrics.
struct RecentRenders(Box<[AtomicU32]>);

impl Default for RecentRenders {
    fn default() -> Self {
        Self((0..RECENT_RENDERS).map(|_| AtomicU32::new(0)).collect())
    }
}

/// Render times over a recent window of frames, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RenderWindow {
    /// Frames in the window (0: nothing rendered yet; every figure is then 0).
    pub frames: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Longest.
    pub max: f64,
}

impl PipelineStats {
    /// Counts one rendered frame that took `nanos`.
    pub fn record_render(&self, nanos: u64) {
        self.render_nanos.fetch_add(nanos, Ordering::Relaxed);
        let n = self.rendered.fetch_add(1, Ordering::Relaxed);
        let us = u32::try_from(nanos / 1000).unwrap_or(u32::MAX);
        self.recent.0[(n % RECENT_RENDERS as u64) as usize].store(us, Ordering::Relaxed);
    }

    /// Render times of the last `frames` frames rendered (at most [`RECENT_RENDERS`]):
    /// pass the frame rate for the last second, as `fps` is measured.
    pub fn recent_renders(&self, frames: usize) -> RenderWindow {
        let total = self.rendered.load(Ordering::Relaxed);
        let k = frames
            .min(RECENT_RENDERS)
            .min(usize::try_from(total).unwrap_or(usize::MAX));
        if k == 0 {
            return RenderWindow::default();
        }
        let mut samples = [0u32; RECENT_RENDERS];
        for (i, slot) in samples[..k].iter_mut().enumerate() {
            let at = (total - 1 - i as u64) % RECENT_RENDERS as u64;
            *slot = self.recent.0[at as usize].load(Ordering::Relaxed);
        }
        let samples = &mut samples[..k];
        samples.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        // Nearest rank: the smallest sample with at least q of the window at or below it.
        let rank = |q: f64| ms(samples[((q * k as f64).ceil() as usize).clamp(1, k) - 1]);
        RenderWindow {
            frames: k,
            mean: samples.iter().map(|&us| ms(us)).sum::<f64>() / k as f64,
            p50: rank(0.5),
            p95: rank(0.95),
            p99: rank(0.99),
            max: ms(samples[k - 1]),
        }
    }

    /// Resets the counters for a new stream (not for a restart of a running one).
    pub fn reset(&self) {
        for c in [
            &self.frames,
            &self.dropped,
            &self.render_nanos,
            &self.rendered,
            &self.encoded,
            &self.encoded_bytes,
            &self.encoder_latency_us,
            &self.queued,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self.error.lock().expect("stats lock") = None;
    }

    /// Mean render time in milliseconds since the counters were reset.
    pub fn average_render_ms(&self) -> f64 {
        let n = self.rendered.load(Ordering::Relaxed);
        if n == 0 {
            return 0.0;
        }
        self.render_nanos.load(Ordering::Relaxed) as f64 / n as f64 / 1e6
    }

    /// Records a fault.
    pub fn set_error(&self, e: impl Into<String>) {
        *self.error.lock().expect("stats lock") = Some(e.into());
    }

    /// Forgets the last fault (after a successful restart).
    pub fn clear_error(&self) {
        *self.error.lock().expect("stats lock") = None;
    }

    /// The last fault.
    pub fn error(&self) -> Option<String> {
        self.error.lock().expect("stats lock").clone()
    }

    /// The template layer the render thread works on now, if any.
    pub fn busy(&self) -> Option<String> {
        let busy = self.busy.lock().ok()?;
        (!busy.is_empty()).then(|| busy.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recent_window_forgets_old_frames() {
        let stats = PipelineStats::default();
        assert_eq!(stats.recent_renders(30), RenderWindow::default());
        // A slow start (100 ms frames), then 100 frames of 1..=100 ms... then fast ones.
        for _ in 0..50 {
            stats.record_render(100_000_000);
        }
        for ms in 1..=100u64 {
            stats.record_render(ms * 1_000_000);
        }
        let w = stats.recent_renders(100);
        assert_eq!(w.frames, 100);
        assert_eq!((w.p50, w.p95, w.p99, w.max), (50.0, 95.0, 99.0, 100.0));
        assert!((w.mean - 50.5).abs() < 1e-9, "{w:?}");
        // The cumulative mean still remembers the slow start; the window does not.
        assert!(stats.average_render_ms() > 60.0);
        for _ in 0..RECENT_RENDERS * 2 {
            stats.record_render(2_000_000);
        }
        let w = stats.recent_renders(1000);
        assert_eq!(w.frames, RECENT_RENDERS);
        assert_eq!((w.mean, w.p99, w.max), (2.0, 2.0, 2.0));
    }
}
