//! The Composition Engine's frame loop: draws the scene on air into each frame.
//!
//! Each layer is rasterized once into its own premultiplied raster (its content in its own
//! coordinates, at output scale) and composited per frame with its position, rotation and
//! opacity; it is rasterized again only when its content or size changes (or, for text with
//! `{{…}}` tokens, when the expanded text changes). The composed frame itself is kept: a
//! frame in which nothing changed is one copy. Moving, rotating or fading a layer (a tween)
//! re-composites the cached rasters without rasterizing anything.
//!
//! A scene activated with a `fade` or `slide` transition is drawn beside the outgoing one
//! for the transition's duration, each with its own caches, and the two composed frames
//! are mixed.
//!
//! A template layer's new picture is rasterized into a spare raster against a deadline
//! (what is left of the layer's share of the frame, with one share of slack for an
//! estimate that was too low, in the thread's CPU time): a picture that runs out of time is
//! abandoned between two draw commands, counted as a `rasterBudget` fault of its layer, and
//! the last good raster stays on air. One cut short only because the machine kept the
//! thread waiting is no fault: it is drawn again the next frame. The pipeline's stop flag
//! interrupts the same way, so a restart never leaves a render thread behind working, and
//! the thread names the template layer it is working on for the pipeline's watchdog
//! ([`RenderWatch`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiny_skia::{FilterQuality, Pixmap, PixmapMut, PixmapPaint, Transform};

use sm_scene::{
    DEFAULT_HOLD_MS, Layer, Position, Scene, Tokens, Transition, TransitionKind, Tween,
    layer_commands, parse_color,
};

use crate::slot::{OnAir, SceneSlot};
use sm_compose::Resources;
use sm_compose::blend;
use sm_compose::commands::{
    Deadline, DrawCommand, Interrupt, Interrupted, Limits, rasterize, rasterize_within, validate,
};
use sm_compose::text::FontBook;
use sm_compose::video::{FeedFrame, Fit, Want};
use sm_plugin_host::layer::{self as template_layer, LayerContext, TemplateLayer};
use sm_plugin_host::{Fault, FaultKind};

/// A layer raster larger than this many frames' worth of pixels is not cached: it is drawn
/// straight into the frame instead (a layer far bigger than the picture).
const MAX_RASTER_FRAMES: u64 = 4;

/// One layer's cached raster and the inputs it was made from.
struct CachedLayer {
    /// Content the raster shows (kind-specific parts; position ignored).
    content: Layer,
    /// The expanded text it shows (text layers).
    text: String,
    /// Scale it was rasterized at.
    scale: (f32, f32),
    /// The raster (an upright image layer drawn 1:1 shares the prepared image); `None`
    /// when the layer is drawn directly each frame.
    raster: Option<Arc<Pixmap>>,
    /// Pixels around the layer box in the raster (strokes, anti-aliasing).
    margin: f32,
    /// Every pixel of the raster is opaque (copied, not blended).
    opaque: bool,
    /// The part of the raster with anything in it (`left, top, width, height`); only that
    /// part is composited.
    part: (u32, u32, u32, u32),
    /// Made for drawing rotated (with a transparent margin for clean edges).
    rotated: bool,
    /// Where it was last composited: its position then, and the frame pixels it covered
    /// (`x0, y0, x1, y1`; `None` when drawn directly or rotated).
    drawn: Option<(Position, Option<Rect>)>,
    /// Seen in the current scene (others are dropped).
    seen: bool,
    /// A template layer's previous raster, drawn into next (so an abandoned picture never
    /// replaces the last good one, and no frame allocates).
    spare: Option<Pixmap>,
    /// The last picture of a template layer too big to cache, drawn straight into frames.
    picture: Vec<DrawCommand>,
    /// A template layer's picture whose rasterizing was cut short by the machine (the
    /// thread was preempted, not out of its CPU allowance): drawn again next frame unless
    /// the template has a newer one.
    retry: Option<(Vec<DrawCommand>, Duration)>,
    /// The input frame a video layer shows (0: none, its slate).
    video_seq: u64,
}

impl CachedLayer {
    /// A layer not rasterized yet, seen in the current scene.
    fn new(content: Layer) -> Self {
        Self {
            content,
            text: String::new(),
            scale: (0.0, 0.0),
            raster: None,
            margin: 0.0,
            opaque: false,
            part: (0, 0, 0, 0),
            rotated: false,
            drawn: None,
            seen: true,
            spare: None,
            picture: Vec::new(),
            retry: None,
            video_seq: 0,
        }
    }
}

/// How the pipeline watches its render thread: a flag that stops it between two draw
/// commands, and where it names the template layer it is working on (empty otherwise), for
/// the watchdog's message when the thread stalls.
#[derive(Debug, Clone, Default)]
pub struct RenderWatch {
    /// Set to stop: rasterizing a template's picture ends at the next command.
    pub stop: Option<Arc<AtomicBool>>,
    /// `layer "…" (template "…")` while the thread works for a template layer.
    pub busy: Option<Arc<Mutex<String>>>,
}

impl RenderWatch {
    /// Names the template layer being worked on (no allocation once the string has grown).
    fn working_on(&self, layer: &str, template: &str) {
        if let Some(busy) = &self.busy
            && let Ok(mut b) = busy.lock()
        {
            b.clear();
            let _ = write!(b, "layer \"{layer}\" (template \"{template}\")");
        }
    }

    fn idle(&self) {
        if let Some(busy) = &self.busy
            && let Ok(mut b) = busy.lock()
        {
            b.clear();
        }
    }
}

/// A template layer's new picture for this frame.
struct Picture {
    /// Index in `live`.
    index: usize,
    commands: Vec<DrawCommand>,
    /// Time it may take to rasterize before it is abandoned.
    allowance: Duration,
}

/// How rasterizing a template layer's new picture went.
#[derive(Debug)]
enum Rastered {
    /// Drawn in this long.
    Drawn(Duration),
    /// Abandoned after this long, out of its allowance (the last good raster stays).
    Abandoned(Interrupted, Duration),
    /// Cut short after this long by a busy machine, with its CPU allowance left: not the
    /// template's fault; the picture is drawn again next frame.
    Preempted(Duration),
}

/// A rectangle of frame pixels: `x0, y0, x1, y1` (end exclusive).
type Rect = [i32; 4];

fn union(a: Option<Rect>, b: Rect) -> Rect {
    match a {
        None => b,
        Some(a) => [
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ],
    }
}

/// Frame pixels an upright cached layer covers (its painted part), if it has a raster.
fn upright_rect(cached: &CachedLayer, p: &Position, scale: (f32, f32)) -> Option<Rect> {
    cached.raster.as_ref()?;
    if p.rotation != 0.0 {
        return None;
    }
    let (x, y) = sprite_origin(cached, p, scale);
    let (l, t, w, h) = cached.part;
    let (x0, y0) = (x + l as i32, y + t as i32);
    Some([x0, y0, x0 + w as i32, y0 + h as i32])
}

/// Frame pixels a rotated cached layer may touch (the bounding box of its turned raster).
fn rotated_rect(cached: &CachedLayer, p: &Position, scale: (f32, f32)) -> Option<Rect> {
    let raster = cached.raster.as_ref()?;
    let t = rotated_transform(cached, p, scale);
    let (w, h) = (raster.width() as f32, raster.height() as f32);
    let mut r: Option<Rect> = None;
    for (x, y) in [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)] {
        let (dx, dy) = (t.sx * x + t.kx * y + t.tx, t.ky * x + t.sy * y + t.ty);
        let corner = [
            dx.floor() as i32 - 1,
            dy.floor() as i32 - 1,
            dx.ceil() as i32 + 1,
            dy.ceil() as i32 + 1,
        ];
        r = Some(union(r, corner));
    }
    r
}

/// The transform that draws a layer's raster turned about its centre.
fn rotated_transform(cached: &CachedLayer, p: &Position, scale: (f32, f32)) -> Transform {
    let m = cached.margin;
    let (cx, cy) = (
        (p.x + p.width / 2.0) * scale.0,
        (p.y + p.height / 2.0) * scale.1,
    );
    let (rcx, rcy) = (m + p.width * scale.0 / 2.0, m + p.height * scale.1 / 2.0);
    Transform::from_translate(cx, cy)
        .pre_rotate(p.rotation)
        .pre_translate(-rcx, -rcy)
}

/// Where an upright layer's raster goes in the frame (snapped to whole pixels).
fn sprite_origin(cached: &CachedLayer, p: &Position, scale: (f32, f32)) -> (i32, i32) {
    let m = cached.margin as i32;
    (
        (p.x * scale.0).round() as i32 - m,
        (p.y * scale.1).round() as i32 - m,
    )
}

/// Whether two layers have the same content (everything but where they are).
fn same_content(a: &Layer, b: &Layer) -> bool {
    a.kind == b.kind
        && a.shape == b.shape
        && a.text == b.text
        && a.image == b.image
        && a.video == b.video
        && a.position.width == b.position.width
        && a.position.height == b.position.height
}

/// A scene being drawn: the scene, its live (animated) positions, layer caches and the last
/// composed frame.
struct SceneRender {
    on_air: OnAir,
    /// Layers with their positions as animated at the current frame.
    live: Vec<Layer>,
    /// Running animations: layer index, tween, start tick, length in ticks.
    tweens: Vec<(usize, Tween, u64, u64)>,
    layers: HashMap<String, CachedLayer>,
    /// Indices of `live` in drawing order.
    order: Vec<usize>,
    composed: Pixmap,
    /// `composed` shows the scene as it is now.
    valid: bool,
    /// Some text layer has tokens (checked every frame).
    has_tokens: bool,
    text: String,
    /// Template layers' instances, by layer id.
    runners: HashMap<String, TemplateLayer>,
    /// New pictures from template layers this frame.
    pictures: Vec<Picture>,
    /// How rasterizing each new picture went: index in `live`, outcome, command count.
    rastered: Vec<(usize, Rastered, usize)>,
    /// Where the animated images of image layers are, by layer id.
    playback: HashMap<String, PlayState>,
}

/// How far an image layer's animation has played.
struct PlayState {
    /// Render-clock ticks it has played (not counting pauses).
    played: u64,
    /// The tick it was last advanced at.
    tick: u64,
}

impl SceneRender {
    fn new(width: u32, height: u32) -> Self {
        Self {
            on_air: OnAir::default(),
            live: Vec::new(),
            tweens: Vec::new(),
            layers: HashMap::new(),
            order: Vec::new(),
            composed: Pixmap::new(width, height).expect("non-empty frame"),
            valid: false,
            has_tokens: false,
            text: String::new(),
            runners: HashMap::new(),
            pictures: Vec::new(),
            rastered: Vec::new(),
            playback: HashMap::new(),
        }
    }

    /// Animated images: every image layer showing an animated asset names the frame its
    /// playback has reached, timed by render-clock ticks (a late frame skips ahead; it does
    /// not slow the animation down). A paused layer keeps its frame; resuming goes on from
    /// there.
    fn advance_playback(&mut self, tick: u64, fps: u32) {
        let resources = &self.on_air.resources;
        for (layer, live) in self.on_air.scene.layers.iter().zip(self.live.iter_mut()) {
            let (Some(image), Some(shown)) = (&layer.image, &mut live.image) else {
                continue;
            };
            let Some(animation) = resources.animation(&image.asset) else {
                continue;
            };
            let playback = image.playback.unwrap_or_default();
            let state = match self.playback.get_mut(&layer.id) {
                Some(s) => s,
                None => self
                    .playback
                    .entry(layer.id.clone())
                    .or_insert(PlayState { played: 0, tick }),
            };
            if playback.playing {
                state.played += tick.saturating_sub(state.tick);
            }
            state.tick = tick;
            let ms = state.played * 1000 / u64::from(fps.max(1));
            let frame = &animation.ids[animation.frame_at(ms, playback.looping)];
            if shown.asset != *frame {
                shown.asset.clone_from(frame);
            }
        }
    }

    /// Runs the template layers for this frame: their new pictures go to `self.pictures`.
    fn run_templates(&mut self, clock: &FrameClock, scale: (f32, f32), watch: &RenderWatch) {
        let FrameClock {
            tick,
            fps,
            wall_clock_ms,
        } = *clock;
        self.pictures.clear();
        let Some(runtime) = &self.on_air.templates.runtime else {
            return;
        };
        // Every running template layer gets an equal share of the templates' frame budget.
        let running = self
            .live
            .iter()
            .filter(|l| {
                l.visible
                    && l.template.is_some()
                    && self.runners.get(&l.id).is_none_or(|r| !r.is_quarantined())
            })
            .count();
        let share = runtime.limits().share(fps, running);
        for (i, layer) in self.live.iter().enumerate() {
            let Some(spec) = &layer.template else {
                continue;
            };
            if !layer.visible {
                continue;
            }
            let Some(build) = self.on_air.templates.builds.get(&spec.id) else {
                continue;
            };
            let runner = match self.runners.get_mut(&layer.id) {
                Some(r) => r,
                None => self
                    .runners
                    .entry(layer.id.clone())
                    .or_insert_with(|| TemplateLayer::new(tick)),
            };
            let p = &layer.position;
            let ctx = LayerContext {
                runtime,
                build,
                resources: &self.on_air.resources,
                fps,
                tick,
                size: (
                    (p.width * scale.0).ceil().max(1.0) as u32,
                    (p.height * scale.1).ceil().max(1.0) as u32,
                ),
                wall_clock_ms,
                share,
            };
            watch.working_on(&layer.id, &spec.id);
            if let Some(commands) = runner.frame(&ctx, spec, &layer.id, &mut |e| runtime.report(e))
            {
                // One share of slack over what is left of it: the estimate may be low.
                let allowance = runner.raster_allowance() + share;
                self.pictures.push(Picture {
                    index: i,
                    commands,
                    allowance,
                });
            }
        }
        watch.idle();
    }

    /// Tells each template layer how rasterizing its new picture went: its time, or a
    /// `rasterBudget` fault when it was abandoned.
    fn report_rastered(&mut self, clock: &FrameClock) {
        let Some(runtime) = &self.on_air.templates.runtime else {
            self.rastered.clear();
            return;
        };
        for (i, outcome, count) in self.rastered.drain(..) {
            let Some(layer) = self.live.get(i) else {
                continue;
            };
            let (Some(spec), Some(runner)) = (&layer.template, self.runners.get_mut(&layer.id))
            else {
                continue;
            };
            match outcome {
                Rastered::Drawn(took) | Rastered::Preempted(took) => runner.rasterized(took),
                Rastered::Abandoned(at, took) => {
                    runner.rasterized(took);
                    let timing = runner.timing();
                    let fault = Fault {
                        kind: FaultKind::RasterBudget,
                        message: format!(
                            "rasterizing its picture took over {:.1} ms (estimated {:.1} ms; \
                             its share of the frame is {:.1} ms) and was abandoned at command \
                             {} of {count}; the last good picture stays",
                            took.as_secs_f64() * 1000.0,
                            timing.estimate.as_secs_f64() * 1000.0,
                            timing.share.as_secs_f64() * 1000.0,
                            at.index,
                        ),
                    };
                    runner.fault(
                        (runtime, clock.tick, clock.fps),
                        spec,
                        &layer.id,
                        fault,
                        &mut |e| runtime.report(e),
                    );
                }
            }
        }
    }

    /// Takes a new version of the scene: keeps the caches of layers whose content did not
    /// change, starts its animations at `tick`.
    fn set(&mut self, on_air: OnAir, tick: u64, fps: u32) {
        // The same layers in the same stacking on the same canvas: only what changed in
        // them is recomposed (a move, a new text); anything else redraws the whole frame.
        let old = &self.on_air.scene;
        let new = &on_air.scene;
        // A stopped template layer whose template predates play and stop is hidden (its
        // cache kept for when it plays again); `live` holds what is drawn.
        let shown = |l: &Layer| {
            l.visible
                && template_layer::shows(
                    l,
                    l.template
                        .as_ref()
                        .and_then(|t| on_air.templates.builds.get(&t.id))
                        .map(|b| &**b),
                )
        };
        let same_stack = old.canvas == new.canvas
            && old.layers.len() == new.layers.len()
            && self.live.len() == new.layers.len()
            && old
                .layers
                .iter()
                .zip(&new.layers)
                .zip(&self.live)
                .all(|((a, b), drawn)| {
                    a.id == b.id
                        && drawn.visible == shown(b)
                        && a.position.z_index == b.position.z_index
                        && (a.position.opacity > 0.0) == (b.position.opacity > 0.0)
                });
        if !same_stack {
            self.valid = false;
        }
        self.live.clone_from(&on_air.scene.layers);
        for l in &mut self.live {
            l.visible = shown(l);
        }
        for t in &on_air.tweens {
            let Some(i) = self.live.iter().position(|l| l.id == t.layer) else {
                continue;
            };
            // A new animation of a layer replaces one still running.
            self.tweens.retain(|(j, ..)| *j != i);
            let ticks = (u64::from(t.duration_ms) * u64::from(fps))
                .div_ceil(1000)
                .max(1);
            self.tweens.push((i, t.clone(), tick, ticks));
        }
        // Indices of running tweens must still name the same layers.
        let live = &self.live;
        self.tweens
            .retain(|(i, t, ..)| live.get(*i).is_some_and(|l| l.id == t.layer));
        self.has_tokens = self
            .live
            .iter()
            .any(|l| l.text.as_ref().is_some_and(|t| Tokens::any_in(&t.content)));
        let live = &self.live;
        self.runners
            .retain(|id, _| live.iter().any(|l| l.id == *id && l.template.is_some()));
        self.playback
            .retain(|id, _| live.iter().any(|l| l.id == *id && l.image.is_some()));
        // An image layer whose pictures changed (one drawn again at the layer's size, a copy
        // prepared anew) is rasterized again, though its layer is the same.
        let (before, after) = (&self.on_air.resources, &on_air.resources);
        if !Arc::ptr_eq(before, after) {
            for l in &on_air.scene.layers {
                if let Some(image) = &l.image
                    && !before.same_image(after, &image.asset)
                {
                    self.layers.remove(&l.id);
                }
            }
        }
        self.on_air = on_air;
    }

    /// Advances animations to `tick`; true if any ran.
    fn animate(&mut self, tick: u64) -> bool {
        if self.tweens.is_empty() {
            return false;
        }
        for (i, t, start, ticks) in &self.tweens {
            let progress = (tick - start) as f32 / *ticks as f32;
            self.live[*i].position = t.from.lerp(&t.to, t.easing.apply(progress));
        }
        self.tweens
            .retain(|(_, _, start, ticks)| tick - start < *ticks);
        self.valid = false;
        true
    }

    /// Brings `composed` up to date; true if it changed.
    fn compose(
        &mut self,
        fonts: &mut FontBook,
        tokens: &Tokens,
        limits: &Limits,
        clock: &FrameClock,
        watch: &RenderWatch,
    ) -> bool {
        let changed = self.compose_inner(fonts, tokens, limits, clock, watch);
        watch.idle();
        self.report_rastered(clock);
        changed
    }

    fn compose_inner(
        &mut self,
        fonts: &mut FontBook,
        tokens: &Tokens,
        limits: &Limits,
        clock: &FrameClock,
        watch: &RenderWatch,
    ) -> bool {
        let scene = self.on_air.scene.clone();
        let resources = self.on_air.resources.clone();
        let now = Instant::now();
        let (w, h) = (self.composed.width(), self.composed.height());
        let scale = scene.scale_to(w, h);
        self.run_templates(clock, scale, watch);
        self.advance_playback(clock.tick, clock.fps);
        // What changed since the last composition: everything (a new scene version), or
        // some layers' content (rasterized again below) or position (tweens).
        let mut full = !self.valid;
        let mut changed = false;
        let mut dirty: Option<Rect> = None;
        for (i, layer) in self.live.iter().enumerate() {
            let Some(cached) = self.layers.get(&layer.id) else {
                full = true;
                continue;
            };
            let mut differs = !same_content(&cached.content, layer)
                || cached.scale != scale
                // A picture to draw again, only where it would be seen (a hidden layer's
                // waits without recomposing every frame).
                || (cached.retry.is_some() && layer.visible && layer.position.opacity > 0.0)
                || self.pictures.iter().any(|p| p.index == i);
            if layer.video.is_some() && layer.visible {
                // Asked every frame: this is also how the input learns the size it is
                // drawn at.
                differs |= match video_view(layer, &self.on_air, scale, now, &mut self.text) {
                    Some(f) => f.seq != cached.video_seq,
                    None => cached.video_seq != 0 || self.text != cached.text,
                };
            }
            if !differs
                && self.has_tokens
                && let Some(t) = &layer.text
            {
                self.text.clear();
                tokens.expand(&t.content, &mut self.text);
                differs = self.text != cached.text;
            }
            let moved = cached
                .drawn
                .as_ref()
                .is_none_or(|(p, _)| *p != layer.position);
            if differs || moved {
                changed = true;
                // Only upright cached layers can be recomposed in part.
                match cached.drawn.as_ref().and_then(|(_, r)| *r) {
                    Some(r) if layer.position.rotation == 0.0 => dirty = Some(union(dirty, r)),
                    _ => full = true,
                }
            }
        }
        if !full && !changed {
            return false;
        }
        for c in self.layers.values_mut() {
            c.seen = false;
        }
        self.order.clear();
        self.order.extend(
            (0..self.live.len())
                .filter(|&i| self.live[i].visible && self.live[i].position.opacity > 0.0),
        );
        let live = &self.live;
        self.order.sort_by_key(|&i| live[i].position.z_index);

        for &i in &self.order {
            let layer = &self.live[i];
            let cached = match self.layers.get_mut(&layer.id) {
                Some(c) => {
                    c.seen = true;
                    c
                }
                None => self
                    .layers
                    .entry(layer.id.clone())
                    .or_insert_with(|| CachedLayer::new(layer.clone())),
            };
            let retry = cached.retry.take();
            let picture = self
                .pictures
                .iter_mut()
                .find(|p| p.index == i)
                .map(|p| (std::mem::take(&mut p.commands), p.allowance))
                .or(retry);
            if picture.is_some()
                && let Some(spec) = &layer.template
            {
                watch.working_on(&layer.id, &spec.id);
            }
            let count = picture.as_ref().map_or(0, |(c, _)| c.len());
            let stop = watch.stop.as_deref();
            self.text.clear();
            if layer.video.is_some() {
                if let Some(frame) = video_view(layer, &self.on_air, scale, now, &mut self.text) {
                    show_frame(cached, layer, frame, scale);
                    continue;
                }
                cached.video_seq = 0;
            }
            if let Some(outcome) = refresh(
                cached,
                layer,
                picture,
                scale,
                (w, h),
                fonts,
                (&resources, tokens, limits, stop),
                &self.text,
            ) {
                self.rastered.push((i, outcome, count));
            }
        }
        if !full {
            // Add where the changed layers are now; recompose that rectangle only.
            for layer in &self.live {
                if let Some(c) = self.layers.get(&layer.id)
                    && c.drawn.as_ref().is_none_or(|(p, r)| {
                        *p != layer.position || *r != upright_rect(c, &layer.position, scale)
                    })
                {
                    match upright_rect(c, &layer.position, scale) {
                        Some(r) => dirty = Some(union(dirty, r)),
                        None if layer.visible && layer.position.opacity > 0.0 => full = true,
                        None => {}
                    }
                }
            }
        }
        let region = match dirty {
            Some(r) if !full => {
                let r = [
                    r[0].max(0),
                    r[1].max(0),
                    r[2].min(w as i32),
                    r[3].min(h as i32),
                ];
                // Rotated or directly drawn layers over the region cannot be redrawn in part.
                let blocked = self.order.iter().any(|&i| {
                    let l = &self.live[i];
                    self.layers.get(&l.id).is_some_and(|c| {
                        upright_rect(c, &l.position, scale).is_none()
                            && rotated_rect(c, &l.position, scale).is_none_or(|b| {
                                b[0] < r[2] && r[0] < b[2] && b[1] < r[3] && r[1] < b[3]
                            })
                    })
                });
                if blocked || !scene.canvas.background.starts_with('#') {
                    None
                } else {
                    Some(r)
                }
            }
            _ => None,
        };
        // Hidden template layers keep their last picture: a template may well answer
        // `unchanged` when shown again.
        for layer in self.live.iter().filter(|l| l.template.is_some()) {
            if let Some(c) = self.layers.get_mut(&layer.id) {
                c.seen = true;
            }
        }
        if let Some(r) = region {
            self.recompose_part(r, scale, &scene);
            self.layers.retain(|_, c| c.seen);
            self.valid = true;
            return true;
        }
        // Background: not needed under a first layer that covers the frame opaquely.
        let covered = self.order.first().is_some_and(|&i| {
            let layer = &self.live[i];
            let p = &layer.position;
            self.layers.get(&layer.id).is_some_and(|c| {
                c.opaque
                    && p.opacity >= 1.0
                    && upright_rect(c, p, scale).is_some_and(|r| {
                        r[0] <= 0 && r[1] <= 0 && r[2] >= w as i32 && r[3] >= h as i32
                    })
            })
        });
        let mut frame = self.composed.as_mut();
        match parse_color(&scene.canvas.background) {
            _ if covered => {}
            Some(c) => blend::fill_opaque(&mut frame, c),
            None => {
                blend::fill_opaque(&mut frame, [0, 0, 0, 255]);
                let mut commands = vec![DrawCommand::Transform {
                    matrix: [scale.0, 0.0, 0.0, scale.1, 0.0, 0.0],
                }];
                commands.extend(scene.background_commands());
                rasterize(&commands, &mut frame, fonts, &*resources);
            }
        }
        for &i in &self.order {
            let layer = &self.live[i];
            if let Some(cached) = self.layers.get_mut(&layer.id) {
                draw_layer(&mut frame, cached, layer, scale, fonts, &resources, limits);
                let rect = upright_rect(cached, &layer.position, scale);
                cached.drawn = Some((layer.position.clone(), rect));
            }
        }
        self.layers.retain(|_, c| c.seen);
        self.valid = true;
        true
    }
}

impl SceneRender {
    /// Recomposes the rectangle `r` of the frame: the background there, then every layer's
    /// part inside it (all upright and cached).
    fn recompose_part(&mut self, r: Rect, scale: (f32, f32), scene: &Scene) {
        if r[0] >= r[2] || r[1] >= r[3] {
            return;
        }
        let mut frame = self.composed.as_mut();
        let (rw, rh) = ((r[2] - r[0]) as u32, (r[3] - r[1]) as u32);
        if let Some(c) = parse_color(&scene.canvas.background) {
            blend::fill_rect_opaque(&mut frame, r[0], r[1], rw, rh, c);
        }
        for &i in &self.order {
            let layer = &self.live[i];
            let Some(cached) = self.layers.get_mut(&layer.id) else {
                continue;
            };
            let Some(at) = upright_rect(cached, &layer.position, scale) else {
                continue;
            };
            cached.drawn = Some((layer.position.clone(), Some(at)));
            let (x0, y0) = (at[0].max(r[0]), at[1].max(r[1]));
            let (x1, y1) = (at[2].min(r[2]), at[3].min(r[3]));
            let Some(raster) = &cached.raster else {
                continue;
            };
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            let (l, t, _, _) = cached.part;
            let part = (
                l + (x0 - at[0]) as u32,
                t + (y0 - at[1]) as u32,
                (x1 - x0) as u32,
                (y1 - y0) as u32,
            );
            let p = &layer.position;
            let opacity = (p.opacity.clamp(0.0, 1.0) * 255.0).round() as u8;
            blend::draw_sprite(&mut frame, raster, part, x0, y0, opacity, cached.opaque);
        }
    }
}

/// What a video layer shows now: its input's newest frame at the layer's drawn size, or
/// `None` when its slate is due (no frame yet, or the input stopped playing longer than the
/// layer holds its last frame), with what the slate says in `label`.
fn video_view(
    layer: &Layer,
    on_air: &OnAir,
    scale: (f32, f32),
    now: Instant,
    label: &mut String,
) -> Option<FeedFrame> {
    let spec = layer.video.as_ref()?;
    let Some(feed) = on_air.inputs.get(&spec.input) else {
        label.clear();
        label.push_str(&spec.input);
        label.push_str(" · removed");
        return None;
    };
    let p = &layer.position;
    let want = Want {
        width: (p.width * scale.0).round().max(1.0) as u32,
        height: (p.height * scale.1).round().max(1.0) as u32,
        fit: spec.fit.as_deref().and_then(Fit::parse).unwrap_or_default(),
    };
    let frame = feed.frame(want, now);
    let status = feed.status();
    let hold = Duration::from_millis(u64::from(spec.hold_ms.unwrap_or(DEFAULT_HOLD_MS)));
    match frame {
        Some(f) if status.playing() || now.saturating_duration_since(status.since) < hold => {
            Some(f)
        }
        _ => {
            feed.describe(label);
            None
        }
    }
}

/// Makes an input's frame the layer's raster: shared, not copied; only its picture part is
/// composited, and that part is opaque.
fn show_frame(cached: &mut CachedLayer, layer: &Layer, frame: FeedFrame, scale: (f32, f32)) {
    cached.content.clone_from(layer);
    cached.scale = scale;
    cached.rotated = layer.position.rotation != 0.0;
    cached.text.clear();
    cached.part = frame.part;
    cached.opaque = true;
    cached.margin = 0.0;
    cached.video_seq = frame.seq;
    cached.raster = Some(frame.pixmap);
}

/// Rasterizes a layer again if its content, size, scale or text changed. A template layer's
/// new `picture` (with the time it may take) is drawn into the layer's spare raster and
/// replaces the cached one only when drawn to the end; how that went is returned. `label`
/// is what a video layer's slate says.
#[allow(clippy::too_many_arguments)]
fn refresh(
    cached: &mut CachedLayer,
    layer: &Layer,
    picture: Option<(Vec<DrawCommand>, Duration)>,
    scale: (f32, f32),
    frame: (u32, u32),
    fonts: &mut FontBook,
    (resources, tokens, limits, stop): (&Resources, &Tokens, &Limits, Option<&AtomicBool>),
    label: &str,
) -> Option<Rastered> {
    let mut text = std::mem::take(&mut cached.text);
    text.clear();
    if let Some(t) = &layer.text {
        tokens.expand(&t.content, &mut text);
    } else if layer.video.is_some() {
        text.push_str(label);
    }
    let rotated = layer.position.rotation != 0.0;
    let fresh = cached.scale == scale
        && cached.rotated == rotated
        && same_content(&cached.content, layer)
        && cached.text == text
        && (cached.raster.is_some() || cached.margin < 0.0);
    cached.text = text;
    if fresh && picture.is_none() {
        return None;
    }
    if layer.template.is_some() && picture.is_none() {
        // A template layer changes only with a new picture from its template (which is
        // asked at the layer's new pixel size when the size or scale changes); until then
        // the last picture stays, taken as current.
        cached.content.clone_from(layer);
        cached.scale = scale;
        cached.rotated = rotated;
        return None;
    }
    cached.content.clone_from(layer);
    cached.scale = scale;
    cached.rotated = rotated;
    let p = &layer.position;
    let stroke = layer
        .shape
        .as_ref()
        .and_then(|s| s.stroke.as_ref())
        .map_or(0.0, |s| s.width);
    // Images drawn upright need no room around them; anything else gets a margin for
    // strokes and anti-aliased edges.
    let margin = if layer.image.is_some() && !rotated {
        0.0
    } else {
        (stroke / 2.0 * scale.0.max(scale.1)).ceil() + 2.0
    };
    let rw = (p.width * scale.0).ceil() + 2.0 * margin;
    let rh = (p.height * scale.1).ceil() + 2.0 * margin;
    let frame_px = u64::from(frame.0) * u64::from(frame.1);
    if (rw as u64) * (rh as u64) > MAX_RASTER_FRAMES * frame_px {
        // Too big to cache: drawn straight into each composed frame (a template layer from
        // its last picture, whose cost was estimated at the whole layer's size).
        cached.raster = None;
        cached.margin = -1.0;
        cached.spare = None;
        if let Some((commands, _)) = picture {
            cached.picture = commands;
        }
        return None;
    }
    cached.picture = Vec::new();
    if let Some((image, opaque)) = image_as_raster(layer, scale, resources) {
        cached.part = (0, 0, image.width(), image.height());
        cached.raster = Some(image);
        cached.opaque = opaque;
        cached.margin = 0.0;
        return None;
    }
    if let Some((commands, allowance)) = picture {
        let outcome = draw_picture(
            cached,
            &commands,
            (rw as u32, rh as u32, margin),
            fonts,
            resources,
            Interrupt {
                deadline: Some(Deadline::start(allowance)),
                stop,
            },
        );
        if matches!(outcome, Rastered::Preempted(_)) {
            cached.retry = Some((commands, allowance));
        }
        return Some(outcome);
    }
    // The previous raster's memory is reused when the size is the same.
    let reused = cached
        .raster
        .take()
        .and_then(|r| Arc::try_unwrap(r).ok())
        .filter(|r| (r.width(), r.height()) == (rw as u32, rh as u32));
    let Some(mut raster) = cleared(reused).or_else(|| Pixmap::new(rw as u32, rh as u32)) else {
        cached.margin = -1.0;
        return None;
    };
    let mut commands = vec![DrawCommand::Transform {
        matrix: [scale.0, 0.0, 0.0, scale.1, margin, margin],
    }];
    layer_commands(layer, &cached.text, fonts, resources, &mut commands);
    if validate(&commands, limits).is_ok() {
        rasterize(&commands, &mut raster.as_mut(), fonts, resources);
    }
    keep_raster(cached, raster, margin);
    None
}

/// A raster cleared for drawing again.
fn cleared(raster: Option<Pixmap>) -> Option<Pixmap> {
    raster.map(|mut r| {
        r.fill(tiny_skia::Color::TRANSPARENT);
        r
    })
}

/// Makes `raster` the layer's cached raster, with its painted part and opacity.
fn keep_raster(cached: &mut CachedLayer, raster: Pixmap, margin: f32) {
    cached.part = painted_part(&raster);
    let (l, t, pw, _) = cached.part;
    cached.opaque = pw > 0
        && raster
            .pixels()
            .chunks_exact(raster.width() as usize)
            .skip(t as usize)
            .take(cached.part.3 as usize)
            .all(|row| {
                row[l as usize..(l + pw) as usize]
                    .iter()
                    .all(|p| p.alpha() == 255)
            });
    cached.raster = Some(Arc::new(raster));
    cached.margin = margin;
}

/// Draws a template layer's picture (validated by the plugin host, in layer pixels) into
/// the layer's spare raster (`width` × `height` with `margin` around the layer box); it
/// becomes the cached raster only when drawn to the end before `interrupt` fires.
fn draw_picture(
    cached: &mut CachedLayer,
    picture: &[DrawCommand],
    (width, height, margin): (u32, u32, f32),
    fonts: &mut FontBook,
    resources: &Resources,
    interrupt: Interrupt<'_>,
) -> Rastered {
    let started = Instant::now();
    let spare = cached
        .spare
        .take()
        .filter(|r| (r.width(), r.height()) == (width, height));
    let Some(mut raster) = cleared(spare).or_else(|| Pixmap::new(width, height)) else {
        return Rastered::Drawn(Duration::ZERO);
    };
    let outcome = rasterize_within(
        picture,
        &mut raster.as_mut(),
        fonts,
        resources,
        (Transform::from_translate(margin, margin), 1.0, interrupt),
    );
    let took = started.elapsed();
    match outcome {
        Ok(()) => {
            let previous = cached.raster.take().and_then(|r| Arc::try_unwrap(r).ok());
            keep_raster(cached, raster, margin);
            cached.spare = previous;
            Rastered::Drawn(took)
        }
        Err(at) => {
            cached.spare = Some(raster);
            let stopping = interrupt.stop.is_some_and(|s| s.load(Ordering::Relaxed));
            match interrupt.deadline {
                Some(d) if !stopping && d.cpu_used() < d.allowance() => Rastered::Preempted(took),
                _ => Rastered::Abandoned(at, took),
            }
        }
    }
}

/// The bounding box of the pixels that are not fully transparent (`(0, 0, 0, 0)` when none).
fn painted_part(p: &Pixmap) -> (u32, u32, u32, u32) {
    let w = p.width() as usize;
    let (mut left, mut top, mut right, mut bottom) = (usize::MAX, usize::MAX, 0, 0);
    for (y, row) in p.pixels().chunks_exact(w).enumerate() {
        let Some(first) = row.iter().position(|px| px.alpha() != 0) else {
            continue;
        };
        let last = row.iter().rposition(|px| px.alpha() != 0).unwrap_or(first);
        (left, right) = (left.min(first), right.max(last));
        (top, bottom) = (top.min(y), y);
    }
    if left == usize::MAX {
        return (0, 0, 0, 0);
    }
    (
        left as u32,
        top as u32,
        (right - left + 1) as u32,
        (bottom - top + 1) as u32,
    )
}

/// An upright image layer whose image fills its box exactly at a prepared size is its own
/// raster: the prepared image is shared, not copied.
fn image_as_raster(
    layer: &Layer,
    scale: (f32, f32),
    resources: &Resources,
) -> Option<(Arc<Pixmap>, bool)> {
    let image = layer.image.as_ref()?;
    let p = &layer.position;
    if p.rotation != 0.0 {
        return None;
    }
    let (w, h) = (p.width * scale.0, p.height * scale.1);
    let (dw, dh) = (w.round(), h.round());
    if (w - dw).abs() > 1e-3 || (h - dh).abs() > 1e-3 || dw < 1.0 || dh < 1.0 {
        return None;
    }
    let original = sm_compose::commands::ImageSource::image(resources, &image.asset)?;
    let (fx, fy, fw, fh) = sm_scene::fit_rect(
        image.fit.as_deref(),
        p.width,
        p.height,
        original.width(),
        original.height(),
    );
    if fx != 0.0 || fy != 0.0 || fw != p.width || fh != p.height {
        return None;
    }
    resources.prepared(&image.asset, dw as u32, dh as u32)
}

/// Composites one layer's raster (or draws it directly when it has none).
fn draw_layer(
    frame: &mut PixmapMut<'_>,
    cached: &CachedLayer,
    layer: &Layer,
    scale: (f32, f32),
    fonts: &mut FontBook,
    resources: &Resources,
    limits: &Limits,
) {
    let p = &layer.position;
    let opacity = (p.opacity.clamp(0.0, 1.0) * 255.0).round() as u8;
    let Some(raster) = &cached.raster else {
        if layer.template.is_some() {
            // The picture is in layer pixels: moved to the layer's place, upright.
            let at = Transform::from_translate(p.x * scale.0, p.y * scale.1);
            let base = (at, p.opacity.clamp(0.0, 1.0), Interrupt::NONE);
            let _ = rasterize_within(&cached.picture, frame, fonts, resources, base);
            return;
        }
        let mut commands = Vec::new();
        let layered = Scene {
            canvas: sm_scene::CanvasProperties {
                background: "#00000000".into(),
                ..Default::default()
            },
            layers: vec![layer.clone()],
        };
        // The same commands as the whole-scene path, at this scale.
        commands.push(DrawCommand::Transform {
            matrix: [scale.0, 0.0, 0.0, scale.1, 0.0, 0.0],
        });
        let full = layered.to_commands(1, 1, fonts, resources, &Tokens::default());
        commands.extend(full.into_iter().skip(1));
        if validate(&commands, limits).is_ok() {
            rasterize(&commands, frame, fonts, resources);
        }
        return;
    };
    if p.rotation == 0.0 {
        let (x, y) = sprite_origin(cached, p, scale);
        let (l, t, _, _) = cached.part;
        blend::draw_sprite(
            frame,
            raster,
            cached.part,
            x + l as i32,
            y + t as i32,
            opacity,
            cached.opaque,
        );
        return;
    }
    let t = rotated_transform(cached, p, scale);
    let paint = PixmapPaint {
        opacity: p.opacity,
        quality: FilterQuality::Bilinear,
        ..PixmapPaint::default()
    };
    frame.draw_pixmap(0, 0, raster.as_ref().as_ref(), &paint, t, None);
}

/// The time of a frame, as template layers see it.
#[derive(Debug, Clone, Copy)]
struct FrameClock {
    tick: u64,
    fps: u32,
    wall_clock_ms: i64,
}

/// A transition in progress: the outgoing scene and how far along it is.
struct Outgoing {
    render: SceneRender,
    kind: TransitionKind,
    start: u64,
    ticks: u64,
}

/// Draws the scene on air into frames of a fixed size; owned by the render thread.
pub struct Compositor {
    fps: u32,
    fonts: FontBook,
    limits: Limits,
    version: u64,
    current: SceneRender,
    outgoing: Option<Outgoing>,
    /// A second scene render, kept after a transition for the next one.
    spare: Option<SceneRender>,
    tick: u64,
    /// A version drawn but not yet confirmed on a queued frame.
    unconfirmed: Option<u64>,
    /// The previous output frame showed exactly the current composed frame.
    steady: bool,
    /// Wall-clock time of tick 0 for offline rendering (`None`: the real clock).
    start_ms: Option<i64>,
    watch: RenderWatch,
}

impl Compositor {
    /// A compositor for `width` × `height` frames at `fps`.
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self {
            fps: fps.max(1),
            fonts: FontBook::default(),
            limits: Limits::default(),
            version: 0,
            current: SceneRender::new(width, height),
            outgoing: None,
            spare: None,
            tick: 0,
            unconfirmed: None,
            steady: false,
            start_ms: None,
            watch: RenderWatch::default(),
        }
    }

    /// Lets the pipeline stop this compositor between draw commands and see which template
    /// layer it is working on.
    pub fn set_watch(&mut self, watch: RenderWatch) {
        self.watch = watch;
    }

    /// Makes templates see a wall clock that starts at `start_ms` (ms since the Unix epoch)
    /// and advances one frame interval per frame, for reproducible offline renders.
    pub fn set_wall_clock(&mut self, start_ms: i64) {
        self.start_ms = Some(start_ms);
    }

    /// Shows `on_air` from the next frame (offline rendering, tests); the compositor of the
    /// stream takes its scenes from a [`SceneSlot`] instead.
    pub fn set(&mut self, on_air: OnAir) {
        let first = self.version == 0;
        self.version += 1;
        self.take(on_air, first);
    }

    /// Takes a new scene; a transition only plays from a scene this compositor has drawn
    /// (a new pipeline starts on the scene as it is, not replaying how it came on air).
    fn take(&mut self, on_air: OnAir, first: bool) {
        self.fonts.sync(on_air.resources.fonts.iter());
        let transition = on_air
            .transition
            .filter(|t| !first && t.kind != TransitionKind::Cut && t.duration_ms > 0);
        if let Some(Transition { kind, duration_ms }) = transition {
            let (w, h) = (
                self.current.composed.width(),
                self.current.composed.height(),
            );
            let incoming = self.spare.take().unwrap_or_else(|| SceneRender::new(w, h));
            let outgoing = std::mem::replace(&mut self.current, incoming);
            self.current.layers.clear();
            self.current.tweens.clear();
            if let Some(old) = self.outgoing.take() {
                self.spare = Some(old.render);
            }
            self.outgoing = Some(Outgoing {
                render: outgoing,
                kind,
                start: self.tick,
                ticks: (u64::from(duration_ms) * u64::from(self.fps))
                    .div_ceil(1000)
                    .max(1),
            });
        }
        let runners = self.current.runners.len();
        self.current.set(on_air, self.tick, self.fps);
        if self.current.runners.len() < runners {
            // Glyph masks a removed template layer made are not kept for the next one.
            self.fonts.trim();
        }
        self.steady = false;
    }

    /// Whether `slot` holds a scene version this compositor has not drawn yet.
    pub fn pending(&self, slot: &SceneSlot) -> bool {
        slot.version() != self.version
    }

    /// Draws the next frame into `target`: takes a newer scene from `slot` if there is one
    /// (at this frame boundary), advances animations and transitions. Returns true if the
    /// picture may differ from the previous frame's.
    pub fn render_from(
        &mut self,
        slot: &SceneSlot,
        target: &mut PixmapMut<'_>,
        frame: u64,
    ) -> bool {
        if slot.version() != self.version {
            let first = self.version == 0;
            let (version, on_air) = slot.on_air();
            self.version = version;
            self.unconfirmed = Some(version);
            self.take(on_air, first);
        }
        self.render(target, frame)
    }

    /// Draws the next frame of what was [`Compositor::set`] into `target`.
    pub fn render(&mut self, target: &mut PixmapMut<'_>, frame: u64) -> bool {
        self.tick += 1;
        let tokens = Tokens::now(frame, self.fps);
        let tick = self.tick;
        let clock = FrameClock {
            tick,
            fps: self.fps,
            wall_clock_ms: match self.start_ms {
                Some(start) => start + (tick as i64 - 1) * 1000 / i64::from(self.fps),
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
            },
        };
        let mut changed = self.current.animate(tick);
        changed |=
            self.current
                .compose(&mut self.fonts, &tokens, &self.limits, &clock, &self.watch);
        let Some(out) = &mut self.outgoing else {
            // Nothing changed and the target held the previous frame: a copy anyway, as
            // pooled buffers rotate.
            target
                .data_mut()
                .copy_from_slice(self.current.composed.data());
            let steady = self.steady && !changed;
            self.steady = true;
            return !steady;
        };
        out.render.animate(tick);
        out.render
            .compose(&mut self.fonts, &tokens, &self.limits, &clock, &self.watch);
        let progress = ((tick - out.start) as f32 / out.ticks as f32).clamp(0.0, 1.0);
        let (a, b) = (out.render.composed.data(), self.current.composed.data());
        match out.kind {
            TransitionKind::Slide => {
                let w = self.current.composed.width();
                let offset = (progress * w as f32).round() as u32;
                blend::slide(target.data_mut(), a, b, w, offset);
            }
            _ => blend::mix(target.data_mut(), a, b, (progress * 255.0).round() as u8),
        }
        if tick - out.start >= out.ticks
            && let Some(done) = self.outgoing.take()
        {
            self.spare = Some(done.render);
        }
        self.steady = false;
        true
    }

    /// Called when the frame just rendered was queued as frame `number`: confirms the
    /// scene version it showed to the API.
    pub fn shown(&mut self, slot: &SceneSlot, number: u64) {
        if let Some(v) = self.unconfirmed.take() {
            slot.applied(v, number);
        }
    }

    /// Forgets every cached raster and the composed frame, so the next frame is drawn from
    /// scratch (benchmarks of the uncached path).
    pub fn clear_caches(&mut self) {
        for c in self.current.layers.values_mut() {
            c.scale = (0.0, 0.0);
        }
        // Template layers start again too, so their first picture is drawn.
        self.current.runners.clear();
        self.current.valid = false;
    }

    /// What template layer `layer` of the scene on air cost in its last frame.
    pub fn template_timing(&self, layer: &str) -> Option<sm_plugin_host::layer::LayerTiming> {
        self.current.runners.get(layer).map(TemplateLayer::timing)
    }

    /// Layers with a cached raster (tests, metrics).
    pub fn cached_layers(&self) -> usize {
        self.current
            .layers
            .values()
            .filter(|c| c.raster.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm_scene::CanvasProperties;

    /// A 40x40 box at (`x`, 10).
    pub(super) fn rect_at(x: f32) -> Position {
        Position {
            x,
            y: 10.0,
            width: 40.0,
            height: 40.0,
            rotation: 0.0,
            opacity: 1.0,
            z_index: 0,
        }
    }

    fn rect(id: &str, x: f32, color: &str) -> Layer {
        Layer::rect(id, rect_at(x), color)
    }

    fn scene(layers: Vec<Layer>) -> OnAir {
        OnAir {
            scene: Arc::new(Scene {
                canvas: CanvasProperties {
                    width: 200,
                    height: 100,
                    background: "#000000".into(),
                },
                layers,
            }),
            ..OnAir::default()
        }
    }

    fn px(p: &Pixmap, x: u32, y: u32) -> [u8; 3] {
        let c = p.pixel(x, y).unwrap();
        [c.red(), c.green(), c.blue()]
    }

    /// An animated image layer shows the frame its playback has reached, timed by render
    /// ticks: at 10 fps, frames of 200 and 300 ms show for 2 and 3 ticks, looping; paused, it
    /// stays; not looping, it holds the last frame.
    #[test]
    fn an_animated_image_plays_by_the_render_clock() {
        use sm_compose::resources::Animation;
        let solid = |rgb: [u8; 3]| {
            let mut p = Pixmap::new(4, 4).unwrap();
            p.fill(tiny_skia::Color::from_rgba8(rgb[0], rgb[1], rgb[2], 255));
            Arc::new(p)
        };
        let frames = vec![(solid([255, 0, 0]), 200), (solid([0, 0, 255]), 300)];
        let mut resources = Resources::default();
        resources.add_animation(
            "gif",
            Arc::new(Animation::new("gif", frames).unwrap()),
            true,
        );
        let mut layer = rect("a", 10.0, "#000000");
        layer.kind = "image".into();
        layer.shape = None;
        layer.image = Some(sm_scene::ImageSpec {
            asset: "gif".into(),
            fit: Some("fill".into()),
            playback: None,
        });
        let mut on_air = scene(vec![layer.clone()]);
        on_air.resources = Arc::new(resources);
        let mut c = Compositor::new(200, 100, 10);
        c.set(on_air.clone());
        let mut frame = Pixmap::new(200, 100).unwrap();
        let mut shown = String::new();
        for n in 0..12 {
            c.render(&mut frame.as_mut(), n);
            shown.push(match px(&frame, 30, 30) {
                [255, 0, 0] => 'r',
                [0, 0, 255] => 'b',
                _ => '?',
            });
        }
        assert_eq!(shown, "rrbbbrrbbbrr");
        let mut paused = layer.clone();
        paused.image.as_mut().unwrap().playback = Some(sm_scene::Playback {
            looping: true,
            playing: false,
        });
        let mut next = on_air.clone();
        next.scene = scene(vec![paused]).scene;
        c.set(next.clone());
        shown.clear();
        for n in 0..5 {
            c.render(&mut frame.as_mut(), n);
            shown.push(if px(&frame, 30, 30)[0] == 255 {
                'r'
            } else {
                'b'
            });
        }
        assert_eq!(shown, "rrrrr");
        let mut once = layer;
        once.image.as_mut().unwrap().playback = Some(sm_scene::Playback {
            looping: false,
            playing: true,
        });
        next.scene = scene(vec![once]).scene;
        c.set(next);
        shown.clear();
        for n in 0..10 {
            c.render(&mut frame.as_mut(), n);
            shown.push(if px(&frame, 30, 30)[0] == 255 {
                'r'
            } else {
                'b'
            });
        }
        assert_eq!(
            shown, "bbbbbbbbbb",
            "past its end already: held on the last frame"
        );
    }

    /// A video layer shows its input's newest frame at its place, holds it for `holdMs`
    /// after the input stops playing, then shows its slate; the input learns the size the
    /// layer draws it at from the render thread asking.
    #[test]
    fn a_video_layer_shows_frames_then_holds_then_its_slate() {
        use sm_compose::video::{FeedFrame, FramePool, VideoFeed};
        let feed = Arc::new(VideoFeed::new("Cam"));
        let mut layer = Layer::rect("v", rect_at(100.0), "#000000");
        layer.kind = "video".into();
        layer.shape = None;
        layer.video = Some(sm_scene::VideoSpec {
            input: "cam".into(),
            fit: Some("fill".into()),
            hold_ms: Some(0),
            placeholder: None,
        });
        let mut on_air = scene(vec![layer]);
        on_air.inputs = Arc::new(HashMap::from([("cam".to_string(), feed.clone())]));
        let mut c = Compositor::new(200, 100, 25);
        c.set(on_air);
        let mut frame = Pixmap::new(200, 100).unwrap();
        c.render(&mut frame.as_mut(), 0);
        // No picture yet: the slate's grey, and the feed now knows the wanted size.
        assert_eq!(px(&frame, 102, 12), [0x20, 0x20, 0x24]);
        let mut wanted = Vec::new();
        feed.wanted(Instant::now(), &mut wanted);
        assert_eq!(wanted.len(), 1);
        let want = wanted[0];
        assert_eq!((want.width, want.height), (40, 40));
        let mut pool = FramePool::default();
        let mut publish = |seq: u64, color: tiny_skia::Color| {
            let pixmap = pool
                .fill((40, 40), [0, 0, 40, 40], |r| {
                    r.fill(color);
                    true
                })
                .unwrap();
            feed.publish(
                want,
                FeedFrame {
                    pixmap,
                    part: (0, 0, 40, 40),
                    seq,
                },
            );
        };
        feed.set_state("playing");
        publish(1, tiny_skia::Color::from_rgba8(255, 0, 0, 255));
        c.render(&mut frame.as_mut(), 1);
        assert_eq!(px(&frame, 120, 30), [255, 0, 0]);
        assert_eq!(px(&frame, 90, 30), [0, 0, 0]);
        publish(2, tiny_skia::Color::from_rgba8(0, 0, 255, 255));
        c.render(&mut frame.as_mut(), 2);
        assert_eq!(px(&frame, 120, 30), [0, 0, 255]);
        // The input drops: with no hold, the slate at once.
        feed.set_state("reconnecting");
        c.render(&mut frame.as_mut(), 3);
        assert_eq!(px(&frame, 102, 12), [0x20, 0x20, 0x24]);
    }

    #[test]
    fn cached_layers_match_the_uncached_scene() {
        let mut layers = vec![rect("a", 10.0, "#ff0000"), rect("b", 30.0, "#00ff0080")];
        layers[1].position.rotation = 30.0;
        layers[1].position.z_index = 1;
        let on_air = scene(layers);
        let mut c = Compositor::new(100, 50, 25);
        c.set(on_air.clone());
        let mut cached = Pixmap::new(100, 50).unwrap();
        assert!(c.render(&mut cached.as_mut(), 0));
        let mut direct = Pixmap::new(100, 50).unwrap();
        let commands = on_air.scene.to_commands(
            100,
            50,
            &mut FontBook::default(),
            &*on_air.resources,
            &Tokens::default(),
        );
        rasterize(
            &commands,
            &mut direct.as_mut(),
            &mut FontBook::default(),
            &*on_air.resources,
        );
        let worst = cached
            .data()
            .iter()
            .zip(direct.data())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 40, "cached and direct differ by up to {worst}");
        assert_eq!(c.cached_layers(), 2);
        // Nothing changed: the next frame reports so.
        assert!(!c.render(&mut cached.as_mut(), 1));
    }

    #[test]
    fn fade_and_slide_mix_the_two_scenes() {
        let mut c = Compositor::new(100, 50, 10);
        let red = scene(vec![]);
        let mut red_scene = (*red.scene).clone();
        red_scene.canvas.background = "#ff0000".into();
        c.set(OnAir {
            scene: Arc::new(red_scene),
            ..OnAir::default()
        });
        let mut frame = Pixmap::new(100, 50).unwrap();
        c.render(&mut frame.as_mut(), 0);
        assert_eq!(px(&frame, 50, 25), [255, 0, 0]);
        let mut blue = (*red.scene).clone();
        blue.canvas.background = "#0000ff".into();
        c.set(OnAir {
            scene: Arc::new(blue.clone()),
            transition: Some(Transition {
                kind: TransitionKind::Fade,
                duration_ms: 1000,
            }),
            ..OnAir::default()
        });
        for f in 1..=5 {
            c.render(&mut frame.as_mut(), f);
        }
        let mid = px(&frame, 50, 25);
        assert!(
            (100..=155).contains(&mid[0]) && (100..=155).contains(&mid[2]),
            "{mid:?}"
        );
        for f in 6..=12 {
            c.render(&mut frame.as_mut(), f);
        }
        assert_eq!(px(&frame, 50, 25), [0, 0, 255], "fade over");

        let mut green = blue;
        green.canvas.background = "#00ff00".into();
        c.set(OnAir {
            scene: Arc::new(green),
            transition: Some(Transition {
                kind: TransitionKind::Slide,
                duration_ms: 1000,
            }),
            ..OnAir::default()
        });
        for f in 13..=17 {
            c.render(&mut frame.as_mut(), f);
        }
        assert_eq!(px(&frame, 10, 25), [0, 0, 255], "old scene on the left");
        assert_eq!(px(&frame, 90, 25), [0, 255, 0], "new scene from the right");
    }

    #[test]
    fn a_tween_recomposes_only_where_layers_moved_and_leaves_no_trail() {
        let mut layers = vec![
            rect("still", 10.0, "#00ff00"),
            rect("mover", 60.0, "#ff0000"),
        ];
        layers[1].position.z_index = 1;
        let start = scene(layers.clone());
        let mut c = Compositor::new(200, 100, 10);
        c.set(start.clone());
        let mut frame = Pixmap::new(200, 100).unwrap();
        c.render(&mut frame.as_mut(), 0);
        let mut to = layers[1].position.clone();
        to.x = 140.0;
        let mut end_layers = layers.clone();
        end_layers[1].position = to.clone();
        c.set(OnAir {
            scene: Arc::new(Scene {
                canvas: start.scene.canvas.clone(),
                layers: end_layers.clone(),
            }),
            tweens: vec![Tween {
                layer: "mover".into(),
                from: layers[1].position.clone(),
                to,
                duration_ms: 1000,
                easing: sm_scene::Easing::Linear,
            }],
            ..OnAir::default()
        });
        for f in 1..=12 {
            c.render(&mut frame.as_mut(), f);
        }
        // The end state equals drawing the final scene from scratch: no trail of the mover.
        let mut direct = Compositor::new(200, 100, 10);
        direct.set(scene(end_layers));
        let mut want = Pixmap::new(200, 100).unwrap();
        direct.render(&mut want.as_mut(), 0);
        assert_eq!(
            frame.data(),
            want.data(),
            "partial recomposition left a difference"
        );
        assert_eq!(px(&frame, 70, 30), [0, 0, 0], "where the mover started");
        assert_eq!(px(&frame, 150, 30), [255, 0, 0], "where it ended");
        assert_eq!(px(&frame, 20, 30), [0, 255, 0], "the still layer");
    }

    #[test]
    fn moving_a_layer_does_not_rasterize_it_again() {
        let mut c = Compositor::new(200, 100, 25);
        c.set(scene(vec![rect("a", 10.0, "#ff0000")]));
        let mut frame = Pixmap::new(200, 100).unwrap();
        c.render(&mut frame.as_mut(), 0);
        let before = c.current.layers["a"]
            .raster
            .as_ref()
            .unwrap()
            .data()
            .as_ptr();
        c.set(scene(vec![rect("a", 100.0, "#ff0000")]));
        c.render(&mut frame.as_mut(), 1);
        assert_eq!(px(&frame, 120, 30), [255, 0, 0]);
        assert_eq!(px(&frame, 20, 30), [0, 0, 0]);
        let after = c.current.layers["a"]
            .raster
            .as_ref()
            .unwrap()
            .data()
            .as_ptr();
        assert_eq!(before, after, "the raster was reused");
    }
}

#[cfg(test)]
mod picture_tests {
    use super::*;
    use sm_compose::commands::Fill;

    fn fill(color: [u8; 4]) -> Vec<DrawCommand> {
        vec![DrawCommand::Rect {
            x: 0.0,
            y: 0.0,
            width: 40.0,
            height: 20.0,
            radius: 0.0,
            fill: Fill::Solid { color },
        }]
    }

    fn layer() -> CachedLayer {
        CachedLayer::new(Layer::rect("t", tests::rect_at(0.0), "#000000"))
    }

    fn centre(c: &CachedLayer) -> [u8; 4] {
        let p = c.raster.as_ref().expect("a raster").pixel(22, 12).unwrap();
        [p.red(), p.green(), p.blue(), p.alpha()]
    }

    #[test]
    fn an_abandoned_picture_keeps_the_last_good_one_and_a_finished_one_replaces_it() {
        let (mut fonts, resources) = (FontBook::default(), Resources::default());
        let mut c = layer();
        let mut draw = |c: &mut CachedLayer, color, interrupt| {
            draw_picture(
                c,
                &fill(color),
                (44, 24, 2.0),
                &mut fonts,
                &resources,
                interrupt,
            )
        };
        let drawn = draw(&mut c, [0, 255, 0, 255], Interrupt::NONE);
        assert!(matches!(drawn, Rastered::Drawn(_)));
        assert_eq!(centre(&c), [0, 255, 0, 255]);
        assert!(c.opaque || c.part.2 > 0);

        // The pipeline stops: the next picture is abandoned before its first command.
        let stop = AtomicBool::new(true);
        let stopping = Interrupt {
            deadline: None,
            stop: Some(&stop),
        };
        let stopped = draw(&mut c, [255, 0, 0, 255], stopping);
        assert!(matches!(
            stopped,
            Rastered::Abandoned(Interrupted { index: 0 }, _)
        ));
        assert_eq!(centre(&c), [0, 255, 0, 255], "the last good picture stays");

        // Out of time: abandoned too.
        let past = Interrupt {
            deadline: Some(Deadline::start(Duration::ZERO)),
            stop: None,
        };
        let late = draw(&mut c, [255, 0, 0, 255], past);
        assert!(matches!(late, Rastered::Abandoned(..)));
        assert_eq!(centre(&c), [0, 255, 0, 255]);

        // Off the CPU past twice its allowance (a busy machine): cut short, but it is not
        // the picture's fault.
        let deadline = Deadline::start(Duration::from_millis(2));
        std::thread::sleep(Duration::from_millis(5));
        let starved = Interrupt {
            deadline: Some(deadline),
            stop: None,
        };
        let preempted = draw(&mut c, [255, 0, 0, 255], starved);
        assert!(matches!(preempted, Rastered::Preempted(_)), "{preempted:?}");
        assert_eq!(centre(&c), [0, 255, 0, 255]);

        // In time: the new picture replaces it, drawn in the spare (no new raster).
        let spare = c.spare.as_ref().map(|s| s.data().as_ptr());
        let blue = draw(&mut c, [0, 0, 255, 255], Interrupt::NONE);
        assert!(matches!(blue, Rastered::Drawn(_)));
        assert_eq!(centre(&c), [0, 0, 255, 255]);
        assert_eq!(
            c.raster.as_ref().map(|r| r.data().as_ptr()),
            spare,
            "drawn into the spare raster"
        );
        assert!(c.spare.is_some(), "the old raster is the next spare");
    }

    #[test]
    fn the_watch_names_the_template_layer_being_worked_on() {
        let busy = Arc::new(Mutex::new(String::new()));
        let watch = RenderWatch {
            stop: None,
            busy: Some(busy.clone()),
        };
        watch.working_on("lower", "lower-third");
        assert_eq!(
            *busy.lock().unwrap(),
            r#"layer "lower" (template "lower-third")"#
        );
        let capacity = busy.lock().unwrap().capacity();
        watch.working_on("a", "b");
        assert_eq!(*busy.lock().unwrap(), r#"layer "a" (template "b")"#);
        assert_eq!(
            busy.lock().unwrap().capacity(),
            capacity,
            "no new allocation"
        );
        watch.idle();
        assert!(busy.lock().unwrap().is_empty());
    }

    #[test]
    fn a_picture_at_the_command_limit_is_drawn() {
        // The host adds nothing to a template's picture: one at exactly the limit is drawn
        // (it used to be refused silently, one command over with the host's transform).
        let (mut fonts, resources) = (FontBook::default(), Resources::default());
        let mut c = layer();
        let max = Limits::default().max_commands;
        let picture: Vec<_> = (0..max).flat_map(|_| fill([0, 255, 0, 255])).collect();
        assert!(validate(&picture, &Limits::default()).is_ok());
        let drawn = draw_picture(
            &mut c,
            &picture,
            (44, 24, 2.0),
            &mut fonts,
            &resources,
            Interrupt::NONE,
        );
        assert!(matches!(drawn, Rastered::Drawn(_)));
        assert_eq!(centre(&c), [0, 255, 0, 255]);
    }
}
