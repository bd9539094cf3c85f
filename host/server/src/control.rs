//! Stream control: the state machine (idle → live ⇄ paused → idle) over the pipeline and the
//! outputs, the live application of config changes, and the once-a-second measurements.
//!
//! Every transition goes through one async mutex, so concurrent API calls are serialized and
//! each sees the state the previous one left. Joining pipeline threads happens on the
//! blocking pool, never on a runtime worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::metrics::ProcessSampler;
use crate::pipeline::{Pipeline, PipelineError, PipelineStats, QUEUE_CAPACITY};
use crate::state::{
    Event, KEY_STREAM_METRICS, KEY_SYSTEM_HEALTH, KEY_SYSTEM_METRICS, StateManager, StreamConfig,
    StreamMetrics, StreamState, SystemMetrics,
};
use sm_media::audio::mixer::AudioMix;
use sm_media::destination::{DestinationStatus, Destinations};
use sm_media::hub::MediaHub;
use sm_media::preview::Preview;
use sm_render::SceneSlot;

/// Why a control request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request does not fit the current state (→ 409).
    #[error("{0}")]
    InvalidState(&'static str),
    /// The pipeline could not start (→ 503).
    #[error("the pipeline could not start: {0}")]
    Pipeline(#[from] PipelineError),
}

struct Control {
    /// The operator wants the stream live (it may be between pipeline restarts).
    live: bool,
    pipeline: Option<Pipeline>,
    destinations: Destinations,
    /// Pipeline restarts since the stream started.
    restarts: u32,
    /// When the encoded-frame counter last moved, and its value then.
    progress: (Instant, u64),
}

/// A live pipeline that encodes nothing for this long is restarted.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for pipeline threads to finish; a thread that does not (a hung driver
/// call) is left behind rather than blocking stream control.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Owner of the running stream.
pub struct StreamController {
    state: Arc<StateManager>,
    hub: Arc<MediaHub>,
    stats: Arc<PipelineStats>,
    preview: Arc<Preview>,
    scene: Arc<SceneSlot>,
    mix: Arc<AudioMix>,
    control: Mutex<Control>,
    destination_status:
        Box<dyn Fn() -> std::collections::HashMap<String, DestinationStatus> + Send + Sync>,
    metrics: std::sync::Mutex<StreamMetrics>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

async fn stop_pipeline(p: Pipeline) {
    let join = tokio::task::spawn_blocking(move || p.stop());
    if tokio::time::timeout(JOIN_TIMEOUT, join).await.is_err() {
        tracing::error!("pipeline threads did not finish in time; left behind");
    }
}

impl StreamController {
    /// A controller with the stream stopped.
    pub fn new(
        state: Arc<StateManager>,
        hub: Arc<MediaHub>,
        tls: TlsConnector,
        scene: Arc<SceneSlot>,
        mix: Arc<AudioMix>,
    ) -> Self {
        let faults = {
            let state = state.clone();
            Arc::new(move |code: &str, component: &str, message: String| {
                state.fault(code, Some(component), message);
            })
        };
        let destinations = Destinations::new(hub.clone(), faults, tls);
        let config = state.config();
        Self {
            destination_status: Box::new(destinations.status_handle()),
            state,
            hub,
            stats: Arc::default(),
            preview: Arc::new(Preview::new(&config.preview)),
            scene,
            mix,
            control: Mutex::new(Control {
                live: false,
                pipeline: None,
                destinations,
                restarts: 0,
                progress: (Instant::now(), 0),
            }),
            metrics: std::sync::Mutex::default(),
        }
    }

    /// The program mix the pipeline's encoder takes its sound from.
    pub fn mix(&self) -> &Arc<AudioMix> {
        &self.mix
    }

    /// The media hub (for the RTMP server).
    pub fn hub(&self) -> &Arc<MediaHub> {
        &self.hub
    }

    /// The state manager.
    pub fn state_manager(&self) -> &Arc<StateManager> {
        &self.state
    }

    /// The live preview.
    pub fn preview(&self) -> &Arc<Preview> {
        &self.preview
    }

    /// The stream state with live counters filled in.
    pub fn state(&self) -> StreamState {
        let mut s = self.state.state();
        if s.is_live {
            s.frame_count = self.stats.frames.load(Ordering::Relaxed);
            s.dropped_frames = self.stats.dropped.load(Ordering::Relaxed);
            s.average_render_time = self.stats.recent_renders(s.target_fps as usize).mean;
            s.fps = self.metrics.lock().expect("metrics lock").fps;
            if s.error.is_none() {
                s.error = self.stats.error();
            }
            s.encoder = self.stats.encoder.lock().expect("stats lock").clone();
        } else {
            s.encoder = None;
        }
        s
    }

    /// Render times over the last second (the last `targetFPS` frames) of the running stream.
    pub fn render_window(&self) -> sm_media::frames::RenderWindow {
        let state = self.state.state();
        if !state.is_live {
            return Default::default();
        }
        self.stats.recent_renders(state.target_fps as usize)
    }

    /// The last measurements.
    pub fn metrics(&self) -> StreamMetrics {
        self.metrics.lock().expect("metrics lock").clone()
    }

    /// Status of every destination of the running stream.
    pub fn destinations(&self) -> std::collections::HashMap<String, DestinationStatus> {
        (self.destination_status)()
    }

    async fn announce(&self, f: impl FnOnce(&mut StreamState)) -> StreamState {
        self.state.update_state(f).await;
        let state = self.state();
        self.state.publish(Event::StateUpdate(state.clone()));
        state
    }

    /// Starts streaming.
    pub async fn start(&self) -> Result<StreamState, ControlError> {
        let mut c = self.control.lock().await;
        if c.live {
            return Err(ControlError::InvalidState("the stream is already live"));
        }
        let config = self.state.config();
        self.stats.reset();
        match self.open_pipeline(&config, false).await {
            Ok(p) => c.pipeline = Some(p),
            Err(e) => {
                let msg = e.to_string();
                self.state
                    .fault("pipeline_failed", Some("encoder"), msg.clone());
                self.announce(|s| s.error = Some(msg)).await;
                return Err(e.into());
            }
        }
        c.live = true;
        c.restarts = 0;
        c.progress = (Instant::now(), 0);
        c.destinations.reconcile(&config.destinations).await;
        tracing::info!(
            width = config.width,
            height = config.height,
            fps = config.target_fps,
            "stream started"
        );
        Ok(self
            .announce(|s| {
                s.is_live = true;
                s.is_paused = false;
                s.start_time = Some(now_ms());
                s.error = None;
                s.target_fps = config.target_fps;
            })
            .await)
    }

    async fn open_pipeline(
        &self,
        config: &StreamConfig,
        paused: bool,
    ) -> Result<Pipeline, PipelineError> {
        let (config, hub, stats) = (config.clone(), self.hub.clone(), self.stats.clone());
        let (preview, scene, mix) = (self.preview.clone(), self.scene.clone(), self.mix.clone());
        tokio::task::spawn_blocking(move || {
            Pipeline::start(&config, hub, stats, preview, scene, mix, paused)
        })
        .await
        .map_err(|e| PipelineError::Spawn("pipeline", std::io::Error::other(e.to_string())))?
    }

    /// Stops streaming: flushes the encoder and closes every output.
    pub async fn stop(&self) -> Result<StreamState, ControlError> {
        let mut c = self.control.lock().await;
        if !c.live {
            return Err(ControlError::InvalidState("the stream is not live"));
        }
        c.live = false;
        if let Some(p) = c.pipeline.take() {
            stop_pipeline(p).await;
        }
        self.hub.end();
        self.scene.abandon_waiters();
        c.destinations.close_all().await;
        let (frames, dropped) = (
            self.stats.frames.load(Ordering::Relaxed),
            self.stats.dropped.load(Ordering::Relaxed),
        );
        let fps = self.state.state().target_fps as usize;
        let avg = self.stats.recent_renders(fps).mean;
        tracing::info!(frames, dropped, "stream stopped");
        self.metrics.lock().expect("metrics lock").fps = 0.0;
        Ok(self
            .announce(|s| {
                s.is_live = false;
                s.is_paused = false;
                s.fps = 0.0;
                s.frame_count = frames;
                s.dropped_frames = dropped;
                s.average_render_time = avg;
            })
            .await)
    }

    /// Pauses: outputs stay connected, the last frame repeats.
    pub async fn pause(&self) -> Result<StreamState, ControlError> {
        self.set_paused(true).await
    }

    /// Resumes after a pause.
    pub async fn resume(&self) -> Result<StreamState, ControlError> {
        self.set_paused(false).await
    }

    async fn set_paused(&self, paused: bool) -> Result<StreamState, ControlError> {
        let c = self.control.lock().await;
        if !c.live {
            return Err(ControlError::InvalidState("the stream is not live"));
        }
        let current = self.state.state().is_paused;
        if paused && current {
            return Err(ControlError::InvalidState("the stream is already paused"));
        }
        if !paused && !current {
            return Err(ControlError::InvalidState("the stream is not paused"));
        }
        if let Some(p) = &c.pipeline {
            p.set_paused(paused);
        }
        Ok(self.announce(|s| s.is_paused = paused).await)
    }

    /// Replaces the configuration with `change(current)` and applies it to the running
    /// stream: destinations change in place; anything else restarts the pipeline while the
    /// outputs stay connected (the stream stays live). Read, change and apply happen under
    /// the control lock, so concurrent updates never lose one another.
    pub async fn update_config<E: From<ControlError>>(
        &self,
        change: impl FnOnce(&StreamConfig) -> Result<StreamConfig, E>,
    ) -> Result<StreamConfig, E> {
        let mut c = self.control.lock().await;
        let old = self.state.config();
        let new = change(&old)?;
        self.state.set_config(new.clone()).await;
        self.preview.configure(&new.preview);
        if c.live && !old.same_pipeline(&new) {
            let paused = self.state.state().is_paused;
            if let Some(p) = c.pipeline.take() {
                stop_pipeline(p).await;
            }
            match self.open_pipeline(&new, paused).await {
                Ok(p) => c.pipeline = Some(p),
                Err(e) => {
                    // The old settings worked: go back to them rather than off air. Should
                    // that fail too, the supervisor keeps retrying.
                    tracing::error!(error = %e, "new settings failed; restoring the previous ones");
                    self.state
                        .fault("pipeline_failed", Some("encoder"), e.to_string());
                    self.state.set_config(old.clone()).await;
                    c.pipeline = self.open_pipeline(&old, paused).await.ok();
                    return Err(ControlError::from(e).into());
                }
            }
        }
        if c.live {
            c.destinations.reconcile(&new.destinations).await;
        }
        self.announce(|s| s.target_fps = new.target_fps).await;
        Ok(new)
    }

    /// Replaces the configuration (see [`StreamController::update_config`]).
    pub async fn apply_config(&self, new: StreamConfig) -> Result<(), ControlError> {
        self.update_config(|_| Ok::<_, ControlError>(new))
            .await
            .map(drop)
    }

    /// Keeps a live stream on air: restarts a pipeline whose thread died or that stopped
    /// making progress (a hung encoder), and retries one that could not be opened, at most
    /// once per tick, for as long as the stream should be live.
    async fn supervise(&self) {
        let mut c = self.control.lock().await;
        if !c.live {
            return;
        }
        let encoded = self.stats.encoded.load(Ordering::Relaxed);
        if encoded != c.progress.1 {
            c.progress = (Instant::now(), encoded);
        }
        let stalled = c.progress.0.elapsed() > STALL_TIMEOUT;
        let healthy = c.pipeline.as_ref().is_some_and(|p| !p.has_failed()) && !stalled;
        if healthy {
            return;
        }
        let error = match (&c.pipeline, stalled) {
            (None, _) => "the pipeline is not running".to_string(),
            (Some(_), true) => match self.stats.busy() {
                // The render thread is stuck in a template layer: name it.
                Some(busy) => format!(
                    "no frame encoded for {} s: the render thread is stuck in {busy}",
                    STALL_TIMEOUT.as_secs()
                ),
                None => format!("no frame encoded for {} s", STALL_TIMEOUT.as_secs()),
            },
            (Some(_), false) => self
                .stats
                .error()
                .unwrap_or_else(|| "a pipeline thread ended".into()),
        };
        c.restarts += 1;
        self.state.fault(
            "pipeline_failed",
            Some("encoder"),
            format!("{error}; restarting (attempt {})", c.restarts),
        );
        if let Some(p) = c.pipeline.take() {
            stop_pipeline(p).await;
        }
        let config = self.state.config();
        let paused = self.state.state().is_paused;
        c.progress = (Instant::now(), encoded);
        match self.open_pipeline(&config, paused).await {
            Ok(p) => {
                c.pipeline = Some(p);
                self.stats.clear_error();
                drop(c);
                self.announce(|s| s.error = None).await;
            }
            Err(e) => {
                drop(c);
                self.announce(|s| s.error = Some(e.to_string())).await;
            }
        }
    }

    /// Once a second: measure, publish `metricsUpdate`, persist metrics and health, and
    /// restart a failed pipeline. Runs until the process ends.
    pub async fn run_metrics(
        self: Arc<Self>,
        health: impl Fn() -> serde_json::Value + Send + 'static,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sampler = ProcessSampler::new();
        let mut last = (Instant::now(), 0u64, 0u64);
        loop {
            tick.tick().await;
            self.supervise().await;
            let now = Instant::now();
            let encoded = self.stats.encoded.load(Ordering::Relaxed);
            let bytes = self.stats.encoded_bytes.load(Ordering::Relaxed);
            let secs = (now - last.0).as_secs_f64().max(1e-3);
            let live = self.state.state().is_live;
            let process = sampler.sample();
            let metrics = StreamMetrics {
                fps: if live {
                    encoded.saturating_sub(last.1) as f64 / secs
                } else {
                    0.0
                },
                bitrate: if live {
                    bytes.saturating_sub(last.2) as f64 * 8.0 / secs
                } else {
                    0.0
                },
                dropped_frames: self.stats.dropped.load(Ordering::Relaxed),
                encoder_latency: self.stats.encoder_latency_us.load(Ordering::Relaxed) as f64
                    / 1000.0,
                buffer_health: 1.0
                    - self.stats.queued.load(Ordering::Relaxed) as f64 / QUEUE_CAPACITY as f64,
                cpu_usage: process.cpu_percent,
                memory_usage: process.rss_bytes,
            };
            last = (now, encoded, bytes);
            *self.metrics.lock().expect("metrics lock") = metrics.clone();
            self.state.publish(Event::MetricsUpdate(metrics.clone()));
            let system = SystemMetrics {
                cpu: crate::state::CpuMetrics {
                    usage: process.cpu_percent,
                    cores: process.cores,
                },
                memory: crate::state::MemoryMetrics {
                    used: process.rss_bytes,
                    total: process.total_memory,
                },
                network: crate::state::NetworkMetrics {
                    bytes_in: self.hub.bytes_in.load(Ordering::Relaxed),
                    bytes_out: self.hub.bytes_out.load(Ordering::Relaxed),
                },
            };
            if live {
                // Counters change every frame; they are persisted with the metrics tick.
                let state = self.state();
                self.state
                    .update_state(|s| {
                        s.frame_count = state.frame_count;
                        s.dropped_frames = state.dropped_frames;
                        s.average_render_time = state.average_render_time;
                        s.fps = state.fps;
                    })
                    .await;
            }
            self.state
                .write_ephemeral(KEY_STREAM_METRICS, &metrics, Duration::from_secs(60))
                .await;
            self.state
                .write_ephemeral(KEY_SYSTEM_METRICS, &system, Duration::from_secs(300))
                .await;
            self.state
                .write_ephemeral(KEY_SYSTEM_HEALTH, &health(), Duration::from_secs(60))
                .await;
        }
    }
}
