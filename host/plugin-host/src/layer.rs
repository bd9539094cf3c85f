//! A template layer on the render thread: its instance, the params it was configured with,
//! its clock, and what its faults cost.
//!
//! Everything here runs at a frame boundary on the render thread. All template layers
//! together get [`PluginLimits::frame_budget`] per frame, split evenly: a layer's *share*
//! bounds its guest calls (setup calls included, and never more than the per-call budget)
//! plus the host's rasterizing of its picture, estimated before drawing
//! ([`sm_compose::cost`]) and enforced by a deadline while drawing. So N slow but legal
//! templates cannot starve the render clock: the layer over its share is the one that
//! faults.
//!
//! A fault costs the layer that frame (the compositor keeps its last good raster), is
//! reported as a [`TemplateEvent`], and the layer is quarantined (not called again until
//! the operator changes its params or the template gets a new version) after
//! [`PluginLimits::quarantine_after`] faulty frames in a row or
//! [`PluginLimits::fault_limit`] faults within [`PluginLimits::fault_window`] frames. A
//! new version (a hot swap) is instantiated here, configured with the layer's params and
//! handed the old instance's state; when it faults within [`SWAP_PROBATION`] of the swap,
//! an automatic rollback is asked for.
//!
//! A layer is played or stopped by its spec's `playing`. The layer records, on its own
//! clock (the `time-ms` templates see), when it last went on air and off; a template that
//! plays (plugin API 0.2.0 on) is told with `play` and `stop` before the frame's `render`,
//! under the same budget and fault handling, and a new instance (a hot swap, a restart
//! after a fault) is told the same times again, so an animation already over is not played
//! again. An older template is not called while its layer is stopped: the compositor hides
//! the layer ([`shows`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::faults::{FaultWindow, TemplateEvent, TemplateEventKind};
use crate::{Build, Fault, FaultKind, FrameInfo, Instance, PluginLimits, Runtime};
use sm_compose::Resources;
use sm_compose::commands::DrawCommand;
use sm_compose::cost;
use sm_scene::Layer;
use sm_scene::TemplateSpec;

/// A layer's picture may always take this part of its share to rasterize (1/4), whatever
/// its calls took.
pub const RASTER_FLOOR: u32 = 4;

/// How long after a hot swap a fault rolls the template back.
pub const SWAP_PROBATION: Duration = Duration::from_secs(3);

/// Whether the compositor shows template layer `layer` of template `build`: not when the
/// layer is stopped and its template predates play and stop (its last picture is kept for
/// when it plays again). A template that plays draws its own way off air.
pub fn shows(layer: &Layer, build: Option<&Build>) -> bool {
    match (&layer.template, build) {
        (Some(spec), Some(build)) => spec.playing || build.api().plays(),
        _ => true,
    }
}

/// When a layer last went on air and off, in layer time (ms).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Airing {
    /// The last `play`; `None` until the layer first plays.
    played_at: Option<f64>,
    /// The `stop` after it; `None` while playing.
    stopped_at: Option<f64>,
}

/// What a template layer needs each frame.
pub struct LayerContext<'a> {
    /// The runtime.
    pub runtime: &'a Arc<Runtime>,
    /// The build the layer's template id names now.
    pub build: &'a Arc<Build>,
    /// Images and fonts of the scene.
    pub resources: &'a Arc<Resources>,
    /// Frames per second.
    pub fps: u32,
    /// The render clock's tick.
    pub tick: u64,
    /// Layer size in pixels.
    pub size: (u32, u32),
    /// Wall clock, ms since the Unix epoch.
    pub wall_clock_ms: i64,
    /// This layer's share of the templates' frame budget.
    pub share: Duration,
}

/// What a template layer cost in its last frame (for `template check` and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerTiming {
    /// Time in guest calls.
    pub guest: Duration,
    /// Estimated rasterizing time of its new picture (zero when none).
    pub estimate: Duration,
    /// Measured rasterizing time of its new picture (zero when none).
    pub raster: Duration,
    /// Its share of the frame budget.
    pub share: Duration,
    /// It drew a new picture.
    pub drew: bool,
    /// It faulted.
    pub faulted: bool,
}

/// A template layer's instance and its state.
pub struct TemplateLayer {
    instance: Option<Instance>,
    hash: String,
    applied: Option<TemplateSpec>,
    frames: u64,
    start_tick: u64,
    /// Layer time carried over from before a swap.
    offset_ms: f64,
    faults_in_row: u32,
    window: Option<FaultWindow>,
    quarantined: bool,
    swapped_at: Option<u64>,
    /// Time left of this frame's share for rasterizing the new picture.
    raster_allowance: Duration,
    timing: LayerTiming,
    /// When the layer went on air and off.
    airing: Airing,
    /// What the current instance has been told of it.
    told: Airing,
    /// A stopped quarantined layer's picture has been emptied.
    blanked: bool,
}

impl TemplateLayer {
    /// A layer that appears at `tick`.
    pub fn new(tick: u64) -> Self {
        Self {
            instance: None,
            hash: String::new(),
            applied: None,
            frames: 0,
            start_tick: tick,
            offset_ms: 0.0,
            faults_in_row: 0,
            window: None,
            quarantined: false,
            swapped_at: None,
            raster_allowance: Duration::ZERO,
            timing: LayerTiming::default(),
            airing: Airing::default(),
            told: Airing::default(),
            blanked: false,
        }
    }

    /// Records a change of the layer's play state at layer time `now_ms`.
    fn follow_playing(&mut self, playing: bool, now_ms: f64) {
        let on_air = self.airing.played_at.is_some() && self.airing.stopped_at.is_none();
        if playing && !on_air {
            self.airing = Airing {
                played_at: Some(now_ms),
                stopped_at: None,
            };
        } else if !playing && on_air {
            self.airing.stopped_at = Some(now_ms);
        }
        if playing {
            self.blanked = false;
        }
    }

    /// Tells the instance what it has not been told of the layer's airing: `play` and
    /// `stop`, each within `budget`.
    fn tell(&mut self, budget: Duration) -> Result<(), Fault> {
        let Some(instance) = self.instance.as_mut() else {
            return Ok(());
        };
        if self.told.played_at != self.airing.played_at {
            if let Some(at) = self.airing.played_at {
                instance.play(at, budget)?;
            }
            self.told = Airing {
                played_at: self.airing.played_at,
                stopped_at: None,
            };
        }
        if self.told.stopped_at != self.airing.stopped_at {
            if let Some(at) = self.airing.stopped_at {
                instance.stop(at, budget)?;
            }
            self.told.stopped_at = self.airing.stopped_at;
        }
        Ok(())
    }

    /// What a quarantined layer shows this frame: its last picture, except that a stopped
    /// one is emptied (once), so that a graphic taken off air does not stay.
    fn quarantined_picture(&mut self, spec: &TemplateSpec) -> Option<Vec<DrawCommand>> {
        if spec.playing || self.blanked {
            return None;
        }
        self.blanked = true;
        Some(Vec::new())
    }

    /// What the layer cost in its last frame.
    pub fn timing(&self) -> LayerTiming {
        self.timing
    }

    /// The time the compositor may spend rasterizing the picture [`Self::frame`] just
    /// returned.
    pub fn raster_allowance(&self) -> Duration {
        self.raster_allowance
    }

    /// Records how long rasterizing the new picture took.
    pub fn rasterized(&mut self, took: Duration) {
        self.timing.raster = took;
    }

    /// Whether the layer is quarantined.
    pub fn is_quarantined(&self) -> bool {
        self.quarantined
    }

    fn event(&self, id: &str, layer: &str, kind: TemplateEventKind) -> TemplateEvent {
        TemplateEvent {
            template: id.to_string(),
            hash: self.hash.clone(),
            layer: layer.to_string(),
            kind,
        }
    }

    /// Counts a fault; quarantines after too many in a row or in the window.
    pub fn fault(
        &mut self,
        (runtime, tick, fps): (&Runtime, u64, u32),
        spec: &TemplateSpec,
        layer: &str,
        fault: Fault,
        report: &mut dyn FnMut(TemplateEvent),
    ) {
        self.faults_in_row += 1;
        self.timing.faulted = true;
        let limits: &PluginLimits = runtime.limits();
        let window = self
            .window
            .get_or_insert_with(|| FaultWindow::new(limits.fault_limit, limits.fault_window));
        let too_many = window.record(tick);
        let on_probation = self.swapped_at.is_some_and(|t| {
            (tick - t) as f64 / f64::from(fps.max(1)) < SWAP_PROBATION.as_secs_f64()
        });
        if on_probation {
            self.swapped_at = None;
            report(self.event(
                &spec.id,
                layer,
                TemplateEventKind::RollbackWanted(fault.clone()),
            ));
        }
        if self.faults_in_row >= limits.quarantine_after.max(1) || too_many {
            self.quarantined = true;
            report(self.event(&spec.id, layer, TemplateEventKind::Quarantined(fault)));
        } else {
            report(self.event(&spec.id, layer, TemplateEventKind::Fault(fault)));
        }
    }

    /// A new instance of the current build, configured with `params` (and handed `state`).
    fn start(
        &mut self,
        ctx: &LayerContext<'_>,
        params: &str,
        state: Option<&str>,
    ) -> Result<Instance, Fault> {
        // On the render thread every call gets the layer's budget, setup calls included.
        let budget = call_budget(ctx);
        let mut instance = ctx.runtime.instantiate(ctx.build, ctx.resources.clone())?;
        if let Err(refusal) = instance.configure(params, budget)? {
            tracing::warn!(template = %ctx.build.info.name, "params refused: {refusal}");
        }
        if let Some(state) = state
            && let Err(refusal) = instance.restore(state, budget)?
        {
            tracing::warn!(template = %ctx.build.info.name, "state not taken over: {refusal}");
        }
        Ok(instance)
    }

    /// Runs the layer for this frame: follows a new version or new params, then renders.
    /// Returns the new picture, or `None` when the last one stays (unchanged, a fault, or
    /// quarantine).
    pub fn frame(
        &mut self,
        ctx: &LayerContext<'_>,
        spec: &TemplateSpec,
        layer: &str,
        report: &mut dyn FnMut(TemplateEvent),
    ) -> Option<Vec<DrawCommand>> {
        let started = Instant::now();
        self.timing = LayerTiming {
            share: ctx.share,
            ..LayerTiming::default()
        };
        let picture = self.frame_inner(ctx, spec, layer, report);
        self.timing.guest = started.elapsed();
        let picture = picture?;
        // The host's own cost of the picture counts against the layer's share too.
        // Images are costed as resampled unless drawn at their own size (only that is
        // prepared for templates).
        let estimate = cost::estimate_with(&picture, ctx.size.0, ctx.size.1, &|a, w, h| {
            ctx.resources.image_size(a) == Some((w, h))
        });
        self.timing.estimate = estimate.time();
        // What is left of the share after the calls, and never less than a quarter of it:
        // the calls are bounded by their own deadline (the share, to the epoch tick), so a
        // call that ran a little long on a busy machine does not fault a cheap picture.
        let left = ctx
            .share
            .saturating_sub(self.timing.guest)
            .max(ctx.share / RASTER_FLOOR);
        if self.timing.estimate > left {
            let message = format!(
                "its draw commands would take about {:.1} ms to rasterize (most: command {}, \
                 {}), {:.1} ms more than it may take of its {:.1} ms share of the frame after \
                 {:.1} ms in the template",
                ms(self.timing.estimate),
                estimate.worst,
                picture
                    .get(estimate.worst)
                    .map_or_else(String::new, cost::describe),
                ms(self.timing.estimate - left),
                ms(ctx.share),
                ms(self.timing.guest),
            );
            let fault = Fault {
                kind: FaultKind::RasterBudget,
                message,
            };
            self.fault((ctx.runtime, ctx.tick, ctx.fps), spec, layer, fault, report);
            return None;
        }
        self.timing.drew = true;
        self.raster_allowance = left;
        Some(picture)
    }

    fn frame_inner(
        &mut self,
        ctx: &LayerContext<'_>,
        spec: &TemplateSpec,
        layer: &str,
        report: &mut dyn FnMut(TemplateEvent),
    ) -> Option<Vec<DrawCommand>> {
        // On the render thread every call gets the layer's budget, setup calls included.
        let budget = call_budget(ctx);
        let new_build = self.hash != ctx.build.hash;
        let new_params = self.applied.as_ref().is_none_or(|a| !a.same_config(spec));
        if new_build || new_params || self.instance.as_ref().is_none_or(Instance::is_broken) {
            if self.quarantined && !(new_build || new_params) {
                return self.quarantined_picture(spec);
            }
            let params = spec.params_or(&ctx.build.info.default_params).to_string();
            let started = if new_build || self.instance.as_ref().is_none_or(Instance::is_broken) {
                // A hot swap hands the running state over; a broken instance has none.
                let old = self.instance.take().filter(|i| !i.is_broken());
                let swap = old.is_some() && new_build;
                let state = old.and_then(|mut i| i.snapshot(budget).ok().flatten());
                if new_build && !self.hash.is_empty() {
                    self.offset_ms += self.elapsed_ms(ctx);
                    self.start_tick = ctx.tick;
                }
                self.hash.clone_from(&ctx.build.hash);
                let started = self.start(ctx, &params, state.as_deref());
                if swap {
                    // On probation even when it fails to start: that rolls it back too.
                    self.swapped_at = Some(ctx.tick);
                    if started.is_ok() {
                        report(self.event(&spec.id, layer, TemplateEventKind::Swapped));
                    }
                }
                started
            } else {
                let instance = self.instance.as_mut().expect("checked above");
                match instance.configure(&params, budget) {
                    Ok(Ok(())) => Ok(self.instance.take().expect("checked above")),
                    Ok(Err(refusal)) => {
                        tracing::warn!(template = %spec.id, layer, "params refused: {refusal}");
                        Ok(self.instance.take().expect("checked above"))
                    }
                    Err(fault) => Err(fault),
                }
            };
            self.applied = Some(spec.clone());
            if new_build || new_params {
                // The operator acted: a quarantined layer gets another chance.
                if self.quarantined {
                    report(self.event(&spec.id, layer, TemplateEventKind::Resumed));
                }
                self.quarantined = false;
                self.faults_in_row = 0;
                if let Some(w) = &mut self.window {
                    w.clear();
                }
            }
            match started {
                Ok(instance) => {
                    self.instance = Some(instance);
                    // A new instance has been told nothing yet.
                    self.told = Airing::default();
                }
                Err(fault) => {
                    self.fault((ctx.runtime, ctx.tick, ctx.fps), spec, layer, fault, report);
                    return None;
                }
            }
        }
        if self.quarantined {
            return self.quarantined_picture(spec);
        }
        let time_ms = self.offset_ms + self.elapsed_ms(ctx);
        self.follow_playing(spec.playing, time_ms);
        let plays = self.instance.as_ref()?.api().plays();
        if !spec.playing && !plays {
            // An older template is not called off air: the compositor hides the layer.
            return None;
        }
        let told = Instant::now();
        if let Err(fault) = self.tell(budget) {
            self.fault((ctx.runtime, ctx.tick, ctx.fps), spec, layer, fault, report);
            return None;
        }
        // `play` and `stop` come out of the frame's budget; `render` keeps at least a
        // quarter of it.
        let budget = budget.saturating_sub(told.elapsed()).max(budget / 4);
        let instance = self.instance.as_mut()?;
        instance.set_resources(ctx.resources);
        let frame = FrameInfo {
            frame: self.frames,
            time_ms,
            wall_clock_ms: ctx.wall_clock_ms,
            utc_offset_minutes: 0,
            fps: ctx.fps,
            width: ctx.size.0,
            height: ctx.size.1,
        };
        self.frames += 1;
        let limits = ctx.runtime.limits();
        match instance.render(&frame, budget, &limits.commands) {
            Ok(picture) => {
                self.faults_in_row = 0;
                picture
            }
            Err(fault) => {
                self.fault((ctx.runtime, ctx.tick, ctx.fps), spec, layer, fault, report);
                None
            }
        }
    }

    fn elapsed_ms(&self, ctx: &LayerContext<'_>) -> f64 {
        (ctx.tick.saturating_sub(self.start_tick)) as f64 * 1000.0 / f64::from(ctx.fps.max(1))
    }
}

/// A guest call's budget on the render thread: the per-call budget, or the layer's share
/// of the frame when that is smaller.
fn call_budget(ctx: &LayerContext<'_>) -> Duration {
    ctx.runtime.limits().render_budget(ctx.fps).min(ctx.share)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn airing(played_at: Option<f64>, stopped_at: Option<f64>) -> Airing {
        Airing {
            played_at,
            stopped_at,
        }
    }

    #[test]
    fn the_airing_records_each_play_and_stop_once_at_its_frame() {
        let mut layer = TemplateLayer::new(0);
        layer.follow_playing(false, 0.0);
        assert_eq!(layer.airing, Airing::default(), "never played");
        layer.follow_playing(true, 100.0);
        layer.follow_playing(true, 133.0);
        assert_eq!(layer.airing, airing(Some(100.0), None));
        layer.follow_playing(false, 500.0);
        layer.follow_playing(false, 533.0);
        assert_eq!(layer.airing, airing(Some(100.0), Some(500.0)));
        layer.follow_playing(true, 900.0);
        assert_eq!(layer.airing, airing(Some(900.0), None));
    }

    #[test]
    fn a_stopped_quarantined_layer_is_emptied_once() {
        let mut layer = TemplateLayer::new(0);
        let mut spec = TemplateSpec::new("t", serde_json::Value::Null);
        assert_eq!(layer.quarantined_picture(&spec), None, "playing: kept");
        spec.playing = false;
        assert_eq!(layer.quarantined_picture(&spec), Some(Vec::new()));
        assert_eq!(layer.quarantined_picture(&spec), None, "already empty");
        layer.follow_playing(true, 10.0);
        layer.follow_playing(false, 20.0);
        assert_eq!(layer.quarantined_picture(&spec), Some(Vec::new()));
    }
}
