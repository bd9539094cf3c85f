//! The hand-over point between a live input and the render thread: a latest-frame mailbox
//! per size the input is drawn at.
//!
//! The render thread asks a [`VideoFeed`] for the frame to show at a layer's drawn size
//! ([`VideoFeed::frame`]) every frame it composes, and never waits: it gets the newest frame
//! published for that size (a shared, already converted raster) or none. Asking also tells
//! the input which sizes are wanted: the input's worker converts each decoded frame only to
//! the sizes asked for within [`WANT_TTL`] ([`VideoFeed::wanted`]), so an input no layer
//! shows is not converted at all, and a layer that changed size stops costing its old size
//! soon after.
//!
//! The worker converts into rasters of its own pool and publishes them
//! ([`VideoFeed::publish`]); a raster is reused once neither the feed nor the render thread
//! holds it any more (see [`FramePool`]), so steady state allocates nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiny_skia::Pixmap;

/// How long a size stays wanted after the render thread last asked for it.
pub const WANT_TTL: Duration = Duration::from_secs(2);

/// How a picture fills the box it is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Whole picture, aspect kept, centred (bars stay transparent).
    #[default]
    Contain,
    /// Box covered, aspect kept, the overflow cropped evenly.
    Cover,
    /// Stretched to the box.
    Fill,
}

impl Fit {
    /// `contain`, `cover` or `fill`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contain" => Some(Self::Contain),
            "cover" => Some(Self::Cover),
            "fill" => Some(Self::Fill),
            _ => None,
        }
    }

    /// For a `src_w` × `src_h` picture in a `box_w` × `box_h` box: the part of the source
    /// shown (`x, y, w, h`, in source pixels) and where it goes in the box (`x, y, w, h`).
    pub fn place(
        self,
        (src_w, src_h): (u32, u32),
        (box_w, box_h): (u32, u32),
    ) -> ([u32; 4], [u32; 4]) {
        let whole_src = [0, 0, src_w, src_h];
        let whole_box = [0, 0, box_w, box_h];
        if src_w == 0 || src_h == 0 || box_w == 0 || box_h == 0 {
            return (whole_src, whole_box);
        }
        // Compare aspect ratios exactly: src_w / src_h against box_w / box_h.
        let (sw, sh, bw, bh) = (
            u64::from(src_w),
            u64::from(src_h),
            u64::from(box_w),
            u64::from(box_h),
        );
        let wider = sw * bh > bw * sh;
        match self {
            Self::Fill => (whole_src, whole_box),
            Self::Contain => {
                let (w, h) = if wider {
                    (bw, (bw * sh).div_ceil(sw).min(bh))
                } else {
                    ((bh * sw).div_ceil(sh).min(bw), bh)
                };
                let (w, h) = (w.max(1) as u32, h.max(1) as u32);
                (whole_src, [(box_w - w) / 2, (box_h - h) / 2, w, h])
            }
            Self::Cover => {
                let (w, h) = if wider {
                    ((bw * sh).div_ceil(bh).min(sw), sh)
                } else {
                    (sw, (bh * sw).div_ceil(bw).min(sh))
                };
                let (w, h) = (w.max(1) as u32, h.max(1) as u32);
                ([(src_w - w) / 2, (src_h - h) / 2, w, h], whole_box)
            }
        }
    }
}

/// A size a layer draws an input at: its box in output pixels and how the picture fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Want {
    /// Box width in output pixels.
    pub width: u32,
    /// Box height in output pixels.
    pub height: u32,
    /// How the picture fills the box.
    pub fit: Fit,
}

/// A converted frame: a box-sized premultiplied raster with the picture in `part`
/// (`left, top, width, height`; opaque there, transparent around it).
#[derive(Debug, Clone)]
pub struct FeedFrame {
    /// The raster, `Want::width` × `Want::height`.
    pub pixmap: Arc<Pixmap>,
    /// Where the picture is in it.
    pub part: (u32, u32, u32, u32),
    /// Increases with every frame the input publishes.
    pub seq: u64,
}

/// What an input is doing, as layers showing it need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStatus {
    /// The input's state name (`connecting`, `playing`, `stalled`, …).
    pub state: &'static str,
    /// When its picture last started or stopped being current.
    pub since: Instant,
}

impl FeedStatus {
    /// Its picture is current: frames are arriving, or a file ended on its last frame
    /// (which stays).
    pub fn playing(&self) -> bool {
        self.state == "playing" || self.state == "ended"
    }
}

struct Output {
    want: Want,
    used: Instant,
    frame: Option<FeedFrame>,
}

struct Inner {
    outputs: Vec<Output>,
    status: FeedStatus,
    label: String,
}

/// One input's frames for the render thread, by the size they are drawn at.
pub struct VideoFeed {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for VideoFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("VideoFeed")
            .field("label", &inner.label)
            .field("status", &inner.status)
            .field("outputs", &inner.outputs.len())
            .finish()
    }
}

impl VideoFeed {
    /// A feed with no frame yet, `idle`, shown on slates as `label`.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                outputs: Vec::new(),
                status: FeedStatus {
                    state: "idle",
                    since: Instant::now(),
                },
                label: label.into(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest frame for `want` (none yet: `None`), and marks `want` as wanted at `now`.
    /// Never waits for the input; allocates only the first time a size is asked for.
    pub fn frame(&self, want: Want, now: Instant) -> Option<FeedFrame> {
        let mut inner = self.lock();
        match inner.outputs.iter_mut().find(|o| o.want == want) {
            Some(o) => {
                o.used = now;
                o.frame.clone()
            }
            None => {
                inner.outputs.push(Output {
                    want,
                    used: now,
                    frame: None,
                });
                None
            }
        }
    }

    /// The newest frame published at any size (none yet, or none wanted: `None`). Does not
    /// mark anything as wanted.
    pub fn newest(&self) -> Option<FeedFrame> {
        self.lock()
            .outputs
            .iter()
            .filter_map(|o| o.frame.as_ref())
            .max_by_key(|f| f.seq)
            .cloned()
    }

    /// The input's state.
    pub fn status(&self) -> FeedStatus {
        self.lock().status
    }

    /// The name slates show, and the state: `"Camera 1 · reconnecting"`, into `out`.
    pub fn describe(&self, out: &mut String) {
        use std::fmt::Write as _;
        let inner = self.lock();
        out.clear();
        let _ = write!(out, "{} · {}", inner.label, inner.status.state);
    }

    /// Renames the feed (the input was renamed).
    pub fn set_label(&self, label: &str) {
        let mut inner = self.lock();
        if inner.label != label {
            inner.label = label.to_string();
        }
    }

    /// Sets the state. `since` moves only when the picture stops or starts being current,
    /// so an input cycling through `reconnecting` and `connecting` still ends its layers'
    /// hold on time.
    pub fn set_state(&self, state: &'static str) {
        let mut inner = self.lock();
        let was = inner.status.playing();
        inner.status.state = state;
        if inner.status.playing() != was {
            inner.status.since = Instant::now();
        }
    }

    /// The sizes wanted within [`WANT_TTL`] of `now`, into `out`; sizes not wanted any
    /// more are forgotten, with their frames.
    pub fn wanted(&self, now: Instant, out: &mut Vec<Want>) {
        let mut inner = self.lock();
        inner
            .outputs
            .retain(|o| now.saturating_duration_since(o.used) <= WANT_TTL);
        out.clear();
        out.extend(inner.outputs.iter().map(|o| o.want));
    }

    /// Makes `frame` the newest for `want` (ignored when the size is not wanted any more).
    pub fn publish(&self, want: Want, frame: FeedFrame) {
        let mut inner = self.lock();
        if let Some(o) = inner.outputs.iter_mut().find(|o| o.want == want) {
            o.frame = Some(frame);
        }
    }

    /// Forgets every frame (the input's picture is gone; layers fall back to their slate).
    pub fn clear(&self) {
        for o in &mut self.lock().outputs {
            o.frame = None;
        }
    }
}

/// Rasters of one size for a worker to convert into, reused once nobody else holds them.
#[derive(Default)]
pub struct FramePool {
    rasters: Vec<Arc<Pixmap>>,
    /// The geometry the rasters were cleared for (`width, height, part`).
    shape: (u32, u32, [u32; 4]),
}

/// Most rasters a pool keeps: one on air, one published, one being written, and one spare.
const POOL_SIZE: usize = 4;

impl FramePool {
    /// Fills a raster of `width` × `height` that nobody else holds (transparent outside
    /// `part`) with `fill`, and returns it shared for publishing; `None` when every raster
    /// is still in use (the frame is skipped), the size cannot be allocated, or `fill`
    /// fails.
    pub fn fill(
        &mut self,
        (width, height): (u32, u32),
        part: [u32; 4],
        fill: impl FnOnce(&mut Pixmap) -> bool,
    ) -> Option<Arc<Pixmap>> {
        if self.shape != (width, height, part) {
            // A new size or placement: the old rasters' bars are in the wrong place.
            self.rasters.clear();
            self.shape = (width, height, part);
        }
        let free = self.rasters.iter().position(|r| Arc::strong_count(r) == 1);
        let index = match free {
            Some(i) => i,
            None if self.rasters.len() < POOL_SIZE => {
                self.rasters.push(Arc::new(Pixmap::new(width, height)?));
                self.rasters.len() - 1
            }
            None => return None,
        };
        let raster = Arc::get_mut(&mut self.rasters[index])?;
        fill(raster).then(|| self.rasters[index].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(w: u32, h: u32) -> Want {
        Want {
            width: w,
            height: h,
            fit: Fit::Contain,
        }
    }

    #[test]
    fn contain_centres_and_cover_crops() {
        // 16:9 into a 4:3 box.
        let (src, dst) = Fit::Contain.place((1920, 1080), (400, 300));
        assert_eq!(src, [0, 0, 1920, 1080]);
        assert_eq!(dst, [0, 37, 400, 225]);
        let (src, dst) = Fit::Cover.place((1920, 1080), (400, 300));
        assert_eq!(dst, [0, 0, 400, 300]);
        assert_eq!(src, [240, 0, 1440, 1080]);
        let (src, dst) = Fit::Fill.place((1920, 1080), (400, 300));
        assert_eq!((src, dst), ([0, 0, 1920, 1080], [0, 0, 400, 300]));
        // A tall source in a wide box.
        let (_, dst) = Fit::Contain.place((1080, 1920), (1920, 1080));
        assert_eq!(dst, [656, 0, 608, 1080]);
    }

    #[test]
    fn only_recently_wanted_sizes_are_converted() {
        let feed = VideoFeed::new("cam");
        let t0 = Instant::now();
        assert!(feed.frame(want(64, 36), t0).is_none());
        let _ = feed.frame(want(32, 18), t0 + Duration::from_secs(1));
        let mut out = Vec::new();
        feed.wanted(t0 + Duration::from_millis(2500), &mut out);
        assert_eq!(out, vec![want(32, 18)]);
        // A frame for a size nobody wants is dropped.
        let mut pool = FramePool::default();
        let frame = FeedFrame {
            pixmap: pool.fill((64, 36), [0, 0, 64, 36], |_| true).unwrap(),
            part: (0, 0, 64, 36),
            seq: 1,
        };
        feed.publish(want(64, 36), frame.clone());
        assert!(feed.frame(want(64, 36), t0).is_none());
        assert!(feed.newest().is_none());
        // The newest frame of any size, whichever size was published last.
        let _ = feed.frame(want(64, 36), t0);
        feed.publish(
            want(32, 18),
            FeedFrame {
                seq: 3,
                ..frame.clone()
            },
        );
        feed.publish(want(64, 36), FeedFrame { seq: 2, ..frame });
        assert_eq!(feed.newest().map(|f| f.seq), Some(3));
    }

    #[test]
    fn the_pool_reuses_rasters_nobody_holds() {
        let feed = VideoFeed::new("cam");
        let w = want(8, 8);
        let now = Instant::now();
        feed.frame(w, now);
        let mut pool = FramePool::default();
        let mut addresses = Vec::new();
        let mut on_air = None;
        for seq in 0..20 {
            let shared = pool
                .fill((8, 8), [0, 0, 8, 8], |r| {
                    r.fill(tiny_skia::Color::from_rgba8(seq as u8, 0, 0, 255));
                    true
                })
                .expect("a free raster");
            addresses.push(Arc::as_ptr(&shared) as usize);
            feed.publish(
                w,
                FeedFrame {
                    pixmap: shared,
                    part: (0, 0, 8, 8),
                    seq,
                },
            );
            // The render thread holds every other frame for a while.
            if seq % 2 == 0 {
                on_air = feed.frame(w, now);
            }
            assert_eq!(
                feed.frame(w, now)
                    .unwrap()
                    .pixmap
                    .pixel(0, 0)
                    .unwrap()
                    .red(),
                seq as u8
            );
        }
        drop(on_air);
        addresses.sort_unstable();
        addresses.dedup();
        assert!(addresses.len() <= POOL_SIZE, "{} rasters", addresses.len());
    }

    #[test]
    fn slates_name_the_input_and_its_state() {
        let feed = VideoFeed::new("Camera 1");
        feed.set_state("reconnecting");
        let mut s = String::new();
        feed.describe(&mut s);
        assert_eq!(s, "Camera 1 · reconnecting");
        assert!(!feed.status().playing());
    }
}
