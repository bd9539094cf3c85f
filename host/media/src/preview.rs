//! The live preview: small JPEG frames of the programme, for operators, over the WebSocket.
//!
//! The encoder thread offers each converted frame to a [`PreviewTap`]; the tap takes one
//! only when somebody watches, preview is enabled and the preview interval has passed, and
//! only when the preview worker is idle. It downsizes on the spot (fast_image_resize, into
//! one of two reused buffers) and hands the small frame to the worker thread, which encodes
//! the JPEG and publishes it as the latest preview. WebSocket sessions read the latest
//! preview from a `watch` channel: a slow client simply gets fewer frames, never a backlog,
//! and nothing at all is done while no client is connected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use crossbeam_channel::{Receiver, Sender, bounded};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use tokio::sync::watch;

use crate::config::PreviewConfig;

/// Preview state shared by the pipeline (producer) and the WebSocket sessions (viewers).
pub struct Preview {
    enabled: AtomicBool,
    fps: AtomicU32,
    width: AtomicU32,
    quality: AtomicU32,
    viewers: AtomicUsize,
    produced: AtomicU64,
    latest: watch::Sender<Option<Arc<str>>>,
}

impl Preview {
    /// Preview with `config`, no viewer yet.
    pub fn new(config: &PreviewConfig) -> Self {
        let p = Self {
            enabled: AtomicBool::new(false),
            fps: AtomicU32::new(1),
            width: AtomicU32::new(16),
            quality: AtomicU32::new(70),
            viewers: AtomicUsize::new(0),
            produced: AtomicU64::new(0),
            latest: watch::channel(None).0,
        };
        p.configure(config);
        p
    }

    /// Applies new settings (live).
    pub fn configure(&self, c: &PreviewConfig) {
        self.fps.store(c.fps.max(1), Ordering::Relaxed);
        self.width.store(c.width, Ordering::Relaxed);
        self.quality
            .store(c.quality.clamp(1, 100), Ordering::Relaxed);
        self.enabled.store(c.enabled, Ordering::Relaxed);
    }

    /// Registers a viewer until the returned guard is dropped, and gives it the stream of
    /// `previewFrame` messages (serialized once, shared by every viewer).
    pub fn watch(self: &Arc<Self>) -> (ViewerGuard, watch::Receiver<Option<Arc<str>>>) {
        self.viewers.fetch_add(1, Ordering::Relaxed);
        let mut rx = self.latest.subscribe();
        // Only frames made from now on.
        rx.mark_unchanged();
        (ViewerGuard(self.clone()), rx)
    }

    /// Preview frames produced so far.
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    fn wanted(&self) -> bool {
        self.enabled.load(Ordering::Relaxed) && self.viewers.load(Ordering::Relaxed) > 0
    }
}

/// Counts a viewer while alive.
pub struct ViewerGuard(Arc<Preview>);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Job {
    pixels: Vec<u8>,
    width: u32,
    height: u32,
    quality: u8,
    frame_number: u64,
}

/// The encoder thread's side of the preview: picks and downsizes frames.
pub struct PreviewTap {
    shared: Arc<Preview>,
    last: Option<Instant>,
    resizer: Resizer,
    options: ResizeOptions,
    free: Receiver<Vec<u8>>,
    work: Sender<Job>,
}

impl PreviewTap {
    /// A tap with its worker thread (which ends with the tap).
    pub fn new(shared: Arc<Preview>) -> std::io::Result<Self> {
        let (free_tx, free) = bounded::<Vec<u8>>(2);
        for _ in 0..2 {
            free_tx.send(Vec::new()).expect("room for two buffers");
        }
        let (work, jobs) = bounded::<Job>(1);
        let worker_shared = shared.clone();
        std::thread::Builder::new()
            .name("preview".into())
            .spawn(move || {
                crate::threads::yield_to_the_clock(crate::threads::Yield::Preview);
                encode_loop(&jobs, &free_tx, &worker_shared)
            })?;
        Ok(Self {
            shared,
            last: None,
            resizer: Resizer::new(),
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
            free,
            work,
        })
    }

    /// Offers a frame (premultiplied, opaque RGBA of `width` × `height`).
    pub fn offer(&mut self, rgba: &[u8], width: u32, height: u32, frame_number: u64) {
        if !self.shared.wanted() {
            return;
        }
        let interval = Duration::from_secs(1) / self.shared.fps.load(Ordering::Relaxed).max(1);
        if self.last.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        // The worker still has both buffers: it is behind, skip this one.
        let Ok(mut pixels) = self.free.try_recv() else {
            return;
        };
        let pw = self.shared.width.load(Ordering::Relaxed).min(width).max(2) & !1;
        let ph = ((u64::from(height) * u64::from(pw) / u64::from(width.max(1))) as u32).max(2) & !1;
        pixels.resize(pw as usize * ph as usize * 4, 0);
        let resized = ImageRef::new(width, height, rgba, PixelType::U8x4)
            .ok()
            .and_then(|src| {
                let mut dst = Image::from_slice_u8(pw, ph, &mut pixels, PixelType::U8x4).ok()?;
                self.resizer.resize(&src, &mut dst, &self.options).ok()
            });
        if resized.is_none() {
            tracing::warn!(width, height, pw, ph, "preview resize failed");
            return;
        }
        self.last = Some(Instant::now());
        let quality = self.shared.quality.load(Ordering::Relaxed) as u8;
        let job = Job {
            pixels,
            width: pw,
            height: ph,
            quality,
            frame_number,
        };
        // Cannot be full: with two buffers, one being encoded and one queued, there is no
        // free buffer and this point is not reached.
        let _ = self.work.try_send(job);
    }
}

fn encode_loop(jobs: &Receiver<Job>, free: &Sender<Vec<u8>>, shared: &Preview) {
    let mut jpeg = Vec::new();
    let mut text = String::new();
    for job in jobs {
        jpeg.clear();
        let encoder = jpeg_encoder::Encoder::new(&mut jpeg, job.quality);
        let (w, h) = (job.width as u16, job.height as u16);
        match encoder.encode(&job.pixels, w, h, jpeg_encoder::ColorType::Rgba) {
            Ok(()) => {
                text.clear();
                base64::engine::general_purpose::STANDARD.encode_string(&jpeg, &mut text);
                let timestamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis() as u64;
                let message = serde_json::json!({
                    "type": "previewFrame",
                    "payload": {
                        "frameNumber": job.frame_number,
                        "timestamp": timestamp,
                        "width": job.width,
                        "height": job.height,
                        "format": "jpeg",
                        "data": text,
                    }
                });
                shared
                    .latest
                    .send_replace(Some(Arc::from(message.to_string())));
                shared.produced.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "preview JPEG encoding failed"),
        }
        let _ = free.try_send(job.pixels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_only_while_watched_and_at_the_preview_size() {
        let preview = Arc::new(Preview::new(&PreviewConfig {
            enabled: true,
            fps: 30,
            width: 64,
            quality: 80,
        }));
        let mut tap = PreviewTap::new(preview.clone()).unwrap();
        let frame = vec![200u8; 320 * 180 * 4];
        tap.offer(&frame, 320, 180, 1);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(preview.produced(), 0, "no viewer, no work");

        let (guard, mut rx) = preview.watch();
        tap.offer(&frame, 320, 180, 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        while preview.produced() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(rx.has_changed().unwrap());
        let text = rx.borrow_and_update().clone().unwrap();
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(msg["type"], "previewFrame");
        assert_eq!(
            (
                msg["payload"]["width"].as_u64(),
                msg["payload"]["height"].as_u64()
            ),
            (Some(64), Some(36))
        );
        assert_eq!(msg["payload"]["frameNumber"], 2);
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(msg["payload"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
        drop(guard);
        assert!(!preview.wanted());
    }
}
