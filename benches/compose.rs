//! The Composition Engine on the reference scene of `benches/reference/scene.json` at 1080p
//! (a full-frame background image, 3 alpha images, 4 text layers, 3 gradient shapes, one
//! layer rotated): a frame composed from scratch (every layer rasterized), a frame in which
//! nothing changed (the cached composed frame), and a frame in which one layer moves (the
//! cached layer rasters composited again).
//!
//! `cargo bench --bench compose` runs the criterion benchmarks.
//! `cargo bench --bench compose -- --reference-summary N` renders N frames of each kind and
//! prints `RESULT full_ms=… unchanged_ms=…` (CPU ms per frame) for
//! `benches/compare_reference.py`, which runs the same scene as an FFmpeg filter graph and a
//! GStreamer compositor pipeline.
//!
//! Assets come from `REFERENCE_ASSETS` (default `target/reference-assets`, made by
//! `benches/reference/make_assets.py` when missing).

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use reference::{H, W, reference, reference_with_templates, root};
use sm_render::OnAir;
use sm_render::compositor::Compositor;
use stream_manager::metrics::cpu_seconds;
use tiny_skia::Pixmap;

#[path = "../tests/e2e/guests.rs"]
#[allow(dead_code)]
mod guests;

#[path = "reference/scene.rs"]
#[allow(dead_code)]
mod reference;

/// The same scene with the `sponsor` layer moved by `dx` (a position-only change).
fn moved(on_air: &OnAir, dx: f32) -> OnAir {
    let mut scene = (*on_air.scene).clone();
    if let Some(l) = scene.layers.iter_mut().find(|l| l.id == "sponsor") {
        l.position.x += dx;
    }
    OnAir {
        scene: Arc::new(scene),
        ..on_air.clone()
    }
}

fn compose(c: &mut Criterion) {
    let on_air = reference();
    let mut compositor = Compositor::new(W, H, 30);
    compositor.set(on_air.clone());
    let mut frame = Pixmap::new(W, H).unwrap();
    let mut n = 0u64;
    let mut g = c.benchmark_group("reference 1080p");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    g.bench_function("composed from scratch", |b| {
        b.iter(|| {
            compositor.clear_caches();
            compositor.render(&mut frame.as_mut(), n);
            n += 1;
        })
    });
    g.bench_function("nothing changed", |b| {
        b.iter(|| {
            compositor.render(&mut frame.as_mut(), n);
            n += 1;
        })
    });
    let (a, b2) = (moved(&on_air, 0.0), moved(&on_air, 7.0));
    let mut flip = false;
    g.bench_function("one layer moved", |b| {
        b.iter(|| {
            flip = !flip;
            compositor.set(if flip { b2.clone() } else { a.clone() });
            compositor.render(&mut frame.as_mut(), n);
            n += 1;
        })
    });
    g.finish();
}

/// CPU milliseconds per call of `f`, over `frames` calls.
fn cpu_ms(frames: u32, mut f: impl FnMut(u64)) -> f64 {
    let c0 = cpu_seconds().unwrap_or(0.0);
    for i in 0..frames {
        f(u64::from(i));
    }
    (cpu_seconds().unwrap_or(0.0) - c0) * 1000.0 / f64::from(frames)
}

fn reference_summary(frames: u32) {
    let base_on_air = reference();
    let mut compositor = Compositor::new(W, H, 30);
    compositor.set(base_on_air.clone());
    let mut frame = Pixmap::new(W, H).unwrap();
    // Warm up: glyph outlines, resized images.
    for i in 0..5 {
        compositor.render(&mut frame.as_mut(), i);
    }
    let full = cpu_ms(frames, |i| {
        compositor.clear_caches();
        compositor.render(&mut frame.as_mut(), i);
    });
    let unchanged = cpu_ms(frames, |i| {
        compositor.render(&mut frame.as_mut(), i);
    });
    let (a, b) = (moved(&base_on_air, 0.0), moved(&base_on_air, 7.0));
    let one_moved = cpu_ms(frames, |i| {
        compositor.set(if i % 2 == 0 { b.clone() } else { a.clone() });
        compositor.render(&mut frame.as_mut(), i);
    });
    let _ = frame.save_png(root().join("target/reference-out-ours.png"));
    let mut with_templates = Compositor::new(W, H, 30);
    with_templates.set(reference_with_templates());
    for i in 0..30 {
        with_templates.render(&mut frame.as_mut(), i);
    }
    let templates_full = cpu_ms(frames, |i| {
        with_templates.clear_caches();
        with_templates.render(&mut frame.as_mut(), 30 + i);
    });
    let templates_steady = cpu_ms(frames, |i| {
        with_templates.render(&mut frame.as_mut(), 30 + u64::from(frames) + i);
    });
    let _ = frame.save_png(root().join("target/reference-out-templates.png"));
    if std::env::var_os("REFERENCE_BREAKDOWN").is_some() {
        // Each layer alone, from scratch (includes the frame fill and copy of each run).
        let base = reference();
        for layer in &base.scene.layers {
            let mut scene = (*base.scene).clone();
            scene.layers.retain(|l| l.id == layer.id);
            let mut c = Compositor::new(W, H, 30);
            c.set(OnAir {
                scene: Arc::new(scene),
                ..base.clone()
            });
            c.render(&mut frame.as_mut(), 0);
            let ms = cpu_ms(frames, |i| {
                c.clear_caches();
                c.render(&mut frame.as_mut(), i);
            });
            println!("  only {:<12} {ms:.2} CPU ms/frame", layer.id);
        }
    }
    println!("reference scene 1080p, {frames} frames each, one thread:");
    println!("  composed from scratch: {full:.2} CPU ms/frame (target <= 4)");
    println!("  nothing changed:       {unchanged:.2} CPU ms/frame (target <= 1)");
    println!("  one layer moved:       {one_moved:.2} CPU ms/frame");
    println!(
        "  with 3 templates (lower third, clock, scrolling ticker): from scratch \
         {templates_full:.2}, running {templates_steady:.2} CPU ms/frame (target <= 4)"
    );
    println!("RESULT full_ms={full:.3} unchanged_ms={unchanged:.3}");
}

criterion_group!(benches, compose);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--reference-summary") {
        let frames = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(300);
        reference_summary(frames);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
