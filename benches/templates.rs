//! Template runtime benchmarks (criterion):
//! - `guest_call/{10,200}_commands`: one `render` call of a guest returning that many draw
//!   commands, lifted, converted and validated (target: ≤ 20 µs + 0.2 µs per command);
//! - `guest_call/unchanged`: a call answered `unchanged`;
//! - `prepare/compile` and `prepare/cached`: a bundled template (clock) prepared by a new
//!   runtime, compiled, or loaded from the compiled-component cache on disk (a restart).
//!
//! The reference scene with three templates is measured by the `compose` bench.
//!
//! ```sh
//! cargo bench -p stream-manager --bench templates
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use sm_plugin_host::{FrameInfo, PluginLimits, Runtime};

#[path = "../tests/e2e/guests.rs"]
#[allow(dead_code)]
mod guests;

fn frame(n: u64) -> FrameInfo {
    FrameInfo {
        frame: n,
        time_ms: n as f64 * 33.3,
        wall_clock_ms: 1_767_268_245_000,
        utc_offset_minutes: 0,
        fps: 30,
        width: 320,
        height: 180,
    }
}

fn guest_call(c: &mut Criterion) {
    let runtime = Runtime::new(PluginLimits::default(), None).expect("runtime");
    let build = runtime
        .prepare(Bytes::from(guests::test_guest("hostile")), 30)
        .expect("hostile guest");
    let limits = PluginLimits::default();
    let budget = Duration::from_secs(1);
    let mut g = c.benchmark_group("guest_call");
    for (name, params) in [
        ("10_commands", r#"{"mode":"million","count":10}"#),
        ("200_commands", r#"{"mode":"million","count":200}"#),
        ("unchanged", r#"{"mode":"unchanged"}"#),
    ] {
        let mut instance = runtime.instantiate(&build, Arc::default()).unwrap();
        instance.configure(params, budget).unwrap().unwrap();
        let mut n = 0;
        instance
            .render(&frame(0), budget, &limits.commands)
            .unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                instance
                    .render(&frame(n), budget, &limits.commands)
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn prepare(c: &mut Criterion) {
    let bytes =
        Bytes::from(std::fs::read(guests::templates_dir().join("clock.wasm")).expect("clock.wasm"));
    let cache = std::env::temp_dir().join(format!("sm-bench-cache-{}", std::process::id()));
    let mut g = c.benchmark_group("prepare");
    g.sample_size(10);
    g.bench_function("compile", |b| {
        b.iter(|| {
            let runtime = Runtime::new(PluginLimits::default(), None).unwrap();
            runtime.prepare(bytes.clone(), 30).unwrap()
        })
    });
    Runtime::new(PluginLimits::default(), Some(cache.clone()))
        .unwrap()
        .prepare(bytes.clone(), 30)
        .unwrap();
    g.bench_function("cached", |b| {
        b.iter(|| {
            let runtime = Runtime::new(PluginLimits::default(), Some(cache.clone())).unwrap();
            runtime.prepare(bytes.clone(), 30).unwrap()
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&cache);
}

criterion_group!(benches, guest_call, prepare);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
