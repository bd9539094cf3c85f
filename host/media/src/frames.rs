//! What the render thread hands to the encoder thread, and the counters the two share with
//! the API and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl PipelineStats {
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

    /// Mean render time in milliseconds.
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
