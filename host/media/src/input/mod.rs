//! Live inputs: cameras over RTSP, publishers into the embedded RTMP server, media files.
//!
//! Each input is a long-lived worker on its own OS thread (never the render thread or a
//! tokio worker): it opens its source, decodes with FFmpeg, converts each picture to the
//! sizes its layers draw it at and publishes it to the input's [`VideoFeed`], from which the
//! render thread takes the newest frame due at each tick without waiting. When the source
//! fails the worker reports it, backs off (0.5 s doubling to 10 s, with jitter) and tries
//! again until the input is stopped; a source that refuses for good (unauthorized, not
//! found, unsupported) is `failed` and retried only after a long back-off or a change.
//!
//! Every state change goes out through the input's [`UpdateFn`]; the server turns it into
//! a WS `inputUpdate`, health and metrics.

pub mod convert;
pub mod decode;
pub mod file;
pub mod model;
pub mod pace;
pub mod present;
pub mod rtmp;
pub mod rtsp;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sm_compose::video::VideoFeed;

use crate::audio::feed::AudioFeed;

pub use model::{Input, InputConfig, InputKind, InputState, InputStats, InputUpdate};
use present::Presenter;

/// Called on every state change of an input, from its worker thread.
pub type UpdateFn = Arc<dyn Fn(InputUpdate) + Send + Sync>;

/// Limits and timings every input shares.
#[derive(Debug, Clone)]
pub struct InputSettings {
    /// Largest decoded picture (`width, height`); larger is refused before allocation.
    pub max_picture: (u32, u32),
    /// No picture for this long: `stalled`.
    pub stall_after: Duration,
    /// Where media files are.
    pub media_dir: PathBuf,
}

impl Default for InputSettings {
    fn default() -> Self {
        Self {
            max_picture: decode::DEFAULT_MAX_PICTURE,
            stall_after: Duration::from_secs(2),
            media_dir: PathBuf::from("media"),
        }
    }
}

/// Shortest wait before trying a failed source again.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest wait before trying a failed source again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Wait before trying a `failed` source again (unless it is changed).
pub const FAILED_RETRY: Duration = Duration::from_secs(60);

/// Why a source stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// Retrying soon will not help (unauthorized, not found, unsupported).
    pub fatal: bool,
    /// What happened (credentials masked).
    pub message: String,
}

impl SourceError {
    /// A failure worth retrying soon.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            fatal: false,
            message: message.into(),
        }
    }

    /// A failure retrying will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            fatal: true,
            message: message.into(),
        }
    }
}

/// How a source's run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A file reached its end (no loop).
    Ended,
    /// The input is being stopped.
    Stopped,
}

/// Where an input's pictures come from: opened, read until it fails or ends.
pub trait Source: Send {
    /// Opens the source and presents its pictures through `session` until it ends, fails
    /// or the input is stopped.
    fn run(&mut self, session: &mut Session<'_>) -> Result<Outcome, SourceError>;
}

/// What the worker shares with the server: state, stats, the stop flag.
pub struct Shared {
    id: String,
    feed: Arc<VideoFeed>,
    status: Mutex<(InputState, InputStats)>,
    /// Set to stop the worker.
    pub stop: AtomicBool,
    /// Bumped to cut a back-off short.
    poke: (Mutex<u64>, Condvar),
    on_update: UpdateFn,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, (InputState, InputStats)> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state; announces it when it differs.
    pub fn set_state(&self, state: InputState) {
        let update = {
            let mut s = self.lock();
            if s.0 == state {
                return;
            }
            s.0 = state;
            if state != InputState::Playing {
                s.1.fps = 0.0;
            }
            InputUpdate {
                id: self.id.clone(),
                state,
                stats: s.1.clone(),
            }
        };
        self.feed.set_state(state.as_str());
        tracing::info!(input = %self.id, state = state.as_str(), "input state");
        (self.on_update)(update);
    }

    /// The current state.
    pub fn state(&self) -> InputState {
        self.lock().0
    }

    /// Changes the stats.
    pub fn update_stats(&self, f: impl FnOnce(&mut InputStats)) {
        f(&mut self.lock().1);
    }

    /// Waits up to `timeout` or until poked or stopped.
    fn pause(&self, timeout: Duration) -> Wake {
        let (lock, cvar) = &self.poke;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let seen = *guard;
        let (guard, _) = cvar
            .wait_timeout_while(guard, timeout, |n| {
                *n == seen && !self.stop.load(Ordering::Relaxed)
            })
            .unwrap_or_else(|e| e.into_inner());
        if self.stop.load(Ordering::Relaxed) {
            Wake::Stopped
        } else if *guard != seen {
            Wake::Poked
        } else {
            Wake::Timeout
        }
    }

    fn wake(&self) {
        let (lock, cvar) = &self.poke;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cvar.notify_all();
    }
}

/// Why a pause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Stopped,
    Poked,
    Timeout,
}

/// A source's view of its input while it runs.
pub struct Session<'a> {
    shared: &'a Shared,
    presenter: &'a mut Presenter,
    settings: &'a InputSettings,
}

impl Session<'_> {
    /// Presents a decoded picture (see [`Presenter::present`]); the first one makes the
    /// input `playing`.
    pub fn present(
        &mut self,
        frame: &ffmpeg_next::frame::Video,
        pts: f64,
        arrival: Instant,
    ) -> present::Presented {
        let presented = self.presenter.present(frame, pts, arrival, self.shared);
        if presented == present::Presented::Shown {
            self.shared.set_state(InputState::Playing);
        }
        presented
    }

    /// Starts pacing again from the next picture (a new publisher, a reconnect).
    pub fn restart(&mut self) {
        self.presenter.restart();
    }

    /// Hands decoded sound (interleaved 48 kHz stereo float) whose first sample has
    /// timestamp `pts` (seconds, the pictures' timeline) to the mixer.
    pub fn audio(&mut self, pts: f64, samples: &[f32]) {
        if !samples.is_empty() {
            self.presenter.audio().push(pts, samples);
        }
    }

    /// For a source with sound only: paces it (see [`Presenter::pace_audio`]), makes the
    /// input `playing`, and waits until `pts` is due less `lead` (the mixer takes sound a
    /// little ahead); false when the input is being stopped.
    pub fn pace_audio(&mut self, pts: f64, arrival: Instant, lead: Duration) -> bool {
        let due = self.presenter.pace_audio(pts, arrival);
        self.shared.set_state(InputState::Playing);
        !present::wait_until(due.checked_sub(lead).unwrap_or(due), &self.shared.stop)
    }

    /// Counts a reconnect that happened within the source's run (a publisher came back).
    pub fn count_reconnect(&self) {
        self.shared.update_stats(|s| s.reconnects += 1);
    }

    /// Whether the input is being stopped.
    pub fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Changes the input's state (e.g. `stalled`).
    pub fn set_state(&self, state: InputState) {
        self.shared.set_state(state);
    }

    /// The shared limits.
    pub fn settings(&self) -> &InputSettings {
        self.settings
    }

    /// Counts received bytes toward the bit rate.
    pub fn received(&self, kbps: f64) {
        self.shared.update_stats(|s| s.bitrate_kbps = kbps);
    }
}

/// A running input: its worker thread and what it shares.
pub struct InputWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl InputWorker {
    /// Starts a worker for `source` that publishes its pictures into `feed` and its sound
    /// into `audio`.
    pub fn spawn(
        id: &str,
        (feed, audio): (Arc<VideoFeed>, Arc<AudioFeed>),
        source: Box<dyn Source>,
        live: bool,
        settings: InputSettings,
        on_update: UpdateFn,
    ) -> Self {
        let shared = Arc::new(Shared {
            id: id.to_string(),
            feed: feed.clone(),
            status: Mutex::new((InputState::Idle, InputStats::default())),
            stop: AtomicBool::new(false),
            poke: (Mutex::new(0), Condvar::new()),
            on_update,
        });
        let thread =
            {
                let shared = shared.clone();
                std::thread::Builder::new()
                .name(format!("input-{id}"))
                .spawn(move || {
                    crate::threads::yield_to_the_clock(crate::threads::Yield::Input);
                    run(&shared, source, Presenter::new(feed, audio, live), &settings)
                })
                .map_err(
                    |e| tracing::error!(input = id, error = %e, "cannot start the input's thread"),
                )
                .ok()
            };
        Self { shared, thread }
    }

    /// State and stats now.
    pub fn status(&self) -> (InputState, InputStats) {
        self.shared.lock().clone()
    }

    /// Cuts a back-off short (the input was changed or asked to retry).
    pub fn poke(&self) {
        self.shared.wake();
    }

    /// Asks the worker to stop, without waiting (to stop several at once).
    pub fn signal_stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake();
    }

    /// Stops the worker, waiting up to `wait` for it to finish (a source stuck in a call
    /// that cannot be interrupted is left to end on its own, detached).
    pub fn stop(mut self, wait: Duration) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + wait;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!(input = %self.shared.id, "input did not stop in time; left to finish on its own");
        }
    }
}

impl Drop for InputWorker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake();
    }
}

/// A little randomness for back-off jitter (not for secrets).
fn jitter(seed: &mut u64, max: Duration) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    max.mul_f64((*seed % 1000) as f64 / 1000.0)
}

/// The worker: run the source, and on failure back off and run it again, until stopped.
fn run(
    shared: &Shared,
    mut source: Box<dyn Source>,
    mut presenter: Presenter,
    settings: &InputSettings,
) {
    let mut backoff = BACKOFF_MIN;
    let mut seed = Instant::now().elapsed().as_nanos() as u64 | 1;
    for b in shared.id.bytes() {
        seed = seed.wrapping_mul(31).wrapping_add(u64::from(b));
    }
    let mut first = true;
    while !shared.stop.load(Ordering::Relaxed) {
        if !first {
            shared.update_stats(|s| s.reconnects += 1);
        }
        first = false;
        shared.set_state(InputState::Connecting);
        presenter.restart();
        let started = Instant::now();
        let result = {
            let mut session = Session {
                shared,
                presenter: &mut presenter,
                settings,
            };
            source.run(&mut session)
        };
        let played = shared.state() == InputState::Playing;
        match result {
            Ok(Outcome::Stopped) => break,
            Ok(Outcome::Ended) => {
                shared.set_state(InputState::Ended);
                // The last frame is held until the input is asked to play again or stopped.
                loop {
                    match shared.pause(Duration::from_secs(3600)) {
                        Wake::Stopped => break,
                        Wake::Poked => break,
                        Wake::Timeout => continue,
                    }
                }
                backoff = BACKOFF_MIN;
            }
            Err(e) => {
                tracing::warn!(input = %shared.id, fatal = e.fatal, error = %e.message, "input failed");
                shared.update_stats(|s| s.last_error = Some(e.message.clone()));
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                if e.fatal {
                    shared.set_state(InputState::Failed);
                    if shared.pause(FAILED_RETRY) == Wake::Stopped {
                        break;
                    }
                    continue;
                }
                // A source that played a while starts its back-off again from the bottom.
                if played && started.elapsed() > BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
                shared.set_state(InputState::Reconnecting);
                presenter.audio().reset();
                let wait = backoff + jitter(&mut seed, backoff / 4);
                if shared.pause(wait) == Wake::Stopped {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    presenter.audio().reset();
    shared.set_state(InputState::Idle);
}
