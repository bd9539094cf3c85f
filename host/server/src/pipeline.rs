//! The frame pipeline: a render thread driven by a drift-free clock, a bounded queue, and the
//! encoder thread (see [`sm_media::encoder`]).
//!
//! Rendering and encoding run on dedicated OS threads, never on tokio workers: both are
//! CPU-bound for milliseconds per frame and would starve the async runtime that serves the
//! API. The clock never waits on anything downstream: a frame that finds no free buffer in
//! the pool (the encoder is behind) is dropped and counted, and a tick the render thread
//! itself missed is counted too.
//!
//! Buffers: a fixed set of RGBA buffers circulates between the two threads (render fills,
//! encoder converts and hands back), so the steady state allocates no pixel memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use tiny_skia::PixmapMut;

use sm_media::audio::mixer::AudioMix;
use sm_media::encoder::{EncodeError, Encoder};
pub use sm_media::frames::{FrameMsg, PipelineStats};
use sm_media::hub::MediaHub;
use sm_media::preview::{Preview, PreviewTap};
use sm_render::SceneSlot;
use sm_render::compositor::{Compositor, RenderWatch};

use crate::state::StreamConfig;

/// Frames that may wait between renderer and encoder.
pub const QUEUE_CAPACITY: usize = 3;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The encoder could not be opened.
    #[error(transparent)]
    Encoder(#[from] EncodeError),
    /// A thread could not be spawned.
    #[error("could not spawn the {0} thread: {1}")]
    Spawn(&'static str, std::io::Error),
}

/// A running pipeline: render and encoder threads. Dropping it without [`Pipeline::stop`]
/// also stops it.
pub struct Pipeline {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    render: Option<JoinHandle<()>>,
    encoder: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Opens the encoder, then starts the threads. Fails without side effects on the hub
    /// when the encoder cannot be opened.
    pub fn start(
        config: &StreamConfig,
        hub: Arc<MediaHub>,
        stats: Arc<PipelineStats>,
        preview: Arc<Preview>,
        layers: Arc<SceneSlot>,
        mix: Arc<AudioMix>,
        paused: bool,
    ) -> Result<Self, PipelineError> {
        let (frame_tx, frame_rx) = bounded::<FrameMsg>(QUEUE_CAPACITY);
        let pool_size = QUEUE_CAPACITY + 2;
        let (pool_tx, pool_rx) = bounded::<Vec<u8>>(pool_size);
        let frame_bytes = config.width as usize * config.height as usize * 4;
        for _ in 0..pool_size {
            pool_tx.send(vec![0u8; frame_bytes]).expect("pool has room");
        }

        // The encoder is opened on its own thread (FFmpeg objects stay on it) and reports
        // whether opening worked before anything is rendered.
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), EncodeError>>(1);
        let pool_tx_render = pool_tx.clone();
        let enc_config = config.encoder_settings();
        let enc_stats = stats.clone();
        let encoder = std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || {
                // Before x264 starts its own threads, which inherit this priority.
                sm_media::threads::yield_to_the_clock(sm_media::threads::Yield::Encoder);
                let opened = Encoder::open(&enc_config, hub).and_then(|mut e| {
                    let tap = PreviewTap::new(preview)
                        .map_err(|err| EncodeError::Setup(format!("preview thread: {err}")))?;
                    e.set_preview(tap);
                    e.set_mix(mix, enc_config.audio);
                    Ok(e)
                });
                let mut enc = match opened {
                    Ok(e) => {
                        let chosen = e.selection().clone();
                        let skipped: Vec<String> = chosen
                            .skipped
                            .iter()
                            .map(|s| format!("{}: {}", s.name, s.reason))
                            .collect();
                        tracing::info!(
                            encoder = %chosen.name,
                            hardware = chosen.hardware,
                            skipped = %skipped.join("; "),
                            "video encoder opened"
                        );
                        *enc_stats.encoder.lock().expect("stats lock") = Some(chosen);
                        let _ = ready_tx.send(Ok(()));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _span = tracing::info_span!("encoder").entered();
                if let Err(e) = enc.run(&frame_rx, &pool_tx, &enc_stats) {
                    tracing::error!(error = %e, "encoder failed");
                    enc_stats.set_error(e.to_string());
                }
            })
            .map_err(|e| PipelineError::Spawn("encoder", e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = encoder.join();
                return Err(e.into());
            }
            Err(_) => {
                let _ = encoder.join();
                return Err(EncodeError::Setup("encoder thread ended during set-up".into()).into());
            }
        }

        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(paused));
        let render = {
            let (stop, paused, config) = (stop.clone(), paused.clone(), config.clone());
            let pool = (pool_tx_render, pool_rx);
            std::thread::Builder::new()
                .name("render".into())
                .spawn(move || {
                    let _span = tracing::info_span!("render").entered();
                    render_loop(&config, &stop, &paused, &frame_tx, &pool, &stats, &layers);
                    stats.busy.lock().map(|mut b| b.clear()).ok();
                })
                .map_err(|e| PipelineError::Spawn("render", e))?
        };
        Ok(Self {
            stop,
            paused,
            render: Some(render),
            encoder: Some(encoder),
        })
    }

    /// Pauses (repeat the last frame) or resumes rendering.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Whether a thread ended on its own (a fault).
    pub fn has_failed(&self) -> bool {
        self.render.as_ref().is_some_and(|h| h.is_finished())
            || self.encoder.as_ref().is_some_and(|h| h.is_finished())
    }

    /// Stops rendering, lets the encoder drain and flush, and joins both threads.
    /// Blocks: call from a blocking context.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (name, handle) in [
            ("render", self.render.take()),
            ("encoder", self.encoder.take()),
        ] {
            if let Some(h) = handle
                && h.join().is_err()
            {
                tracing::error!(thread = name, "pipeline thread panicked");
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The render clock: tick `n` is due at `start + n / fps`, so sleeping late never
/// accumulates drift; ticks missed entirely are counted as dropped.
fn render_loop(
    config: &StreamConfig,
    stop: &Arc<AtomicBool>,
    paused: &AtomicBool,
    frame_tx: &Sender<FrameMsg>,
    (pool_tx, pool_rx): &(Sender<Vec<u8>>, Receiver<Vec<u8>>),
    stats: &PipelineStats,
    layers: &SceneSlot,
) {
    let (w, h, fps) = (config.width, config.height, config.target_fps);
    let interval = Duration::from_secs(1) / fps;
    let mut compositor = Compositor::new(w, h, fps);
    // A stop (a restart, a config change) ends a template's picture between two commands.
    compositor.set_watch(RenderWatch {
        stop: Some(stop.clone()),
        busy: Some(stats.busy.clone()),
    });
    let start = Instant::now();
    let mut tick: u64 = 0;
    // The scene's own frame counter continues across restarts and stands still while paused.
    let mut scene_frame: u64 = stats.rendered.load(Ordering::Relaxed);
    let mut rendered_any = false;
    while !stop.load(Ordering::Relaxed) {
        let due = start + interval * tick as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due >= interval {
            let missed = ((now - due).as_nanos() / interval.as_nanos()) as u64;
            stats.dropped.fetch_add(missed, Ordering::Relaxed);
            tracing::debug!(missed, "render clock late: ticks dropped");
            tick += missed;
        }

        let due = start + interval * tick as u32;
        // A new scene is taken at this frame boundary.
        let scene_changed = compositor.pending(layers);
        // A pipeline (re)started while paused still renders its first frame, so there is a
        // picture to repeat and the outputs keep receiving media; so does a scene change.
        let msg = if paused.load(Ordering::Relaxed) && rendered_any && !scene_changed {
            FrameMsg::Repeat {
                index: tick,
                due,
                at: Instant::now(),
            }
        } else {
            let Ok(mut buffer) = pool_rx.try_recv() else {
                // Every buffer is downstream: the encoder is behind. Drop this frame.
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("encoder behind (no free buffer): frame dropped");
                tick += 1;
                continue;
            };
            let t0 = Instant::now();
            let mut pixmap =
                PixmapMut::from_bytes(&mut buffer, w, h).expect("pool buffer matches frame size");
            compositor.render_from(layers, &mut pixmap, scene_frame);
            scene_frame += 1;
            rendered_any = true;
            let at = Instant::now();
            stats.record_render((at - t0).as_nanos() as u64);
            FrameMsg::Rendered {
                buffer,
                index: tick,
                due,
                at,
            }
        };
        match frame_tx.try_send(msg) {
            Ok(()) => {
                let number = stats.frames.fetch_add(1, Ordering::Relaxed);
                stats.queued.store(frame_tx.len() as u64, Ordering::Relaxed);
                compositor.shown(layers, number);
            }
            Err(TrySendError::Full(msg)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("encoder behind (queue full): frame dropped");
                if let FrameMsg::Rendered { buffer, .. } = msg {
                    let _ = pool_tx.try_send(buffer);
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("encoder gone; render thread stops");
                return;
            }
        }
        tick += 1;
    }
}
