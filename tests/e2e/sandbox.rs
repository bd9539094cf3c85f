//! The template sandbox, limit by limit, against purpose-built guests: each limit is shown
//! obeyed (a well-behaved call succeeds under it) and violated (a hostile call becomes a
//! fault of the right kind, and the instance or the next one goes on working).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sm_compose::Resources;
use sm_compose::commands::DrawCommand;
use sm_plugin_host::{Build, FaultKind, FrameInfo, Instance, PluginError, PluginLimits, Runtime};

use crate::guests::test_guest;

fn runtime() -> Arc<Runtime> {
    Runtime::new(PluginLimits::default(), None).expect("runtime starts")
}

fn frame(n: u64) -> FrameInfo {
    FrameInfo {
        frame: n,
        time_ms: n as f64 * 1000.0 / 30.0,
        wall_clock_ms: 1_700_000_000_000,
        utc_offset_minutes: 0,
        fps: 30,
        width: 320,
        height: 180,
    }
}

fn hostile(rt: &Arc<Runtime>) -> Arc<Build> {
    rt.prepare(Bytes::from(test_guest("hostile")), 30)
        .expect("hostile guest prepares with its default params")
}

/// A hostile instance configured with `params`.
fn instance(rt: &Arc<Runtime>, build: &Arc<Build>, params: &str) -> Instance {
    let mut i = rt
        .instantiate(build, Arc::new(Resources::default()))
        .unwrap();
    i.configure(params, Duration::from_millis(100))
        .unwrap()
        .unwrap();
    i
}

fn budget() -> Duration {
    PluginLimits::default().render_budget(30)
}

fn render(i: &mut Instance, n: u64) -> Result<Option<Vec<DrawCommand>>, sm_plugin_host::Fault> {
    i.render(&frame(n), budget(), &PluginLimits::default().commands)
}

fn fill_of(commands: &[DrawCommand]) -> [u8; 4] {
    match commands.first() {
        Some(DrawCommand::Rect {
            fill: sm_compose::commands::Fill::Solid { color },
            ..
        }) => *color,
        other => panic!("expected a solid rect first, got {other:?}"),
    }
}

const GREEN: [u8; 4] = [0, 255, 0, 255];

#[test]
fn well_behaved_render_draws_and_unchanged_is_reported() {
    let rt = runtime();
    let build = hostile(&rt);
    assert_eq!(build.info.name, "hostile");
    let mut ok = instance(&rt, &build, r#"{"mode":"ok"}"#);
    let commands = render(&mut ok, 0).unwrap().expect("a picture");
    assert_eq!(fill_of(&commands), GREEN);
    let mut same = instance(&rt, &build, r#"{"mode":"unchanged"}"#);
    assert!(render(&mut same, 0).unwrap().is_some());
    assert_eq!(
        render(&mut same, 1).unwrap(),
        None,
        "unchanged after the first frame"
    );
}

#[test]
fn time_budget_violated_by_an_infinite_loop_then_replaced() {
    let rt = runtime();
    let build = hostile(&rt);
    let mut spin = instance(&rt, &build, r#"{"mode":"loop"}"#);
    let t0 = Instant::now();
    let fault = render(&mut spin, 0).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(fault.kind, FaultKind::Budget, "{fault}");
    assert!(
        took < Duration::from_millis(500),
        "interrupted promptly, took {took:?}"
    );
    assert!(spin.is_broken(), "a trapped instance is not called again");
    // A fresh instance of the same build works.
    let mut ok = instance(&rt, &build, r#"{"mode":"ok"}"#);
    assert!(render(&mut ok, 0).unwrap().is_some());
}

#[test]
fn memory_limit_violated_by_a_hog_obeyed_by_normal_use() {
    let rt = runtime();
    let build = hostile(&rt);
    let mut hog = instance(&rt, &build, r#"{"mode":"hog"}"#);
    // Time enough to touch 64 MiB: the memory limit, not the budget, stops it.
    let fault = hog
        .render(
            &frame(0),
            Duration::from_secs(5),
            &PluginLimits::default().commands,
        )
        .unwrap_err();
    assert_eq!(fault.kind, FaultKind::Memory, "memory hog: {fault}");
    let mut ok = instance(&rt, &build, r#"{"mode":"ok"}"#);
    for n in 0..5 {
        assert!(render(&mut ok, n).unwrap().is_some());
    }
}

#[test]
fn panics_and_stack_overflows_are_faults() {
    let rt = runtime();
    let build = hostile(&rt);
    let mut p = instance(&rt, &build, r#"{"mode":"panic"}"#);
    assert_eq!(render(&mut p, 0).unwrap_err().kind, FaultKind::Panic);
    // Rust keeps its stack in linear memory: running off it is an out-of-bounds access,
    // told from other traps by the recursion in its backtrace (or a stack overflow proper
    // when the wasm call stack runs out first).
    let mut s = instance(&rt, &build, r#"{"mode":"stack"}"#);
    let fault = render(&mut s, 0).unwrap_err();
    assert_eq!(fault.kind, FaultKind::StackOverflow, "{fault}");
    assert_eq!(
        fault.message, "stack overflow (deep or unbounded recursion)",
        "{fault}"
    );
    assert!(s.is_broken());
}

#[test]
fn output_limits_violated_by_too_many_commands_nan_and_huge_text() {
    let rt = runtime();
    let build = hostile(&rt);
    for (params, what) in [
        (r#"{"mode":"million","count":10001}"#, "draw commands"),
        (r#"{"mode":"nan"}"#, "finite"),
        (r#"{"mode":"huge-string","bytes":100000}"#, "text"),
    ] {
        let mut i = instance(&rt, &build, params);
        let fault = render(&mut i, 0).unwrap_err();
        assert_eq!(fault.kind, FaultKind::InvalidOutput, "{params}: {fault}");
        assert!(fault.message.contains(what), "{params}: {fault}");
        assert!(!i.is_broken(), "invalid output does not break the instance");
    }
    let mut at_limit = instance(&rt, &build, r#"{"mode":"million","count":10000}"#);
    assert_eq!(render(&mut at_limit, 0).unwrap().unwrap().len(), 10_000);
    // A million commands do not fit in the guest's memory: a fault, not a host allocation.
    let mut million = instance(&rt, &build, r#"{"mode":"million"}"#);
    assert!(render(&mut million, 0).is_err());
}

/// Peak resident memory of this test process (nextest runs each test in its own).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

/// Lists and strings in a guest's output may alias: 10 000 strings over one 8 MiB buffer
/// would lift into 80 GiB of host memory. The host copies at most its hostcall fuel of a
/// call's output: a fault, with the host's memory as it was.
#[test]
fn aliased_output_is_a_fault_not_a_host_allocation() {
    let rt = runtime();
    let build = hostile(&rt);
    let mut i = instance(&rt, &build, r#"{"mode":"alias"}"#);
    let before = peak_rss();
    let started = std::time::Instant::now();
    let fault = render(&mut i, 0).unwrap_err();
    let took = started.elapsed();
    let grew = peak_rss().saturating_sub(before);
    assert_eq!(fault.kind, FaultKind::InvalidOutput, "{fault}");
    assert!(fault.message.contains("16 MiB"), "{fault}");
    assert!(
        grew < 48 << 20,
        "the host's peak memory grew by {} MiB lifting aliased output",
        grew >> 20
    );
    eprintln!(
        "aliased output: {fault} after {took:?}; peak memory +{} MiB",
        grew >> 20
    );
}

#[test]
fn files_environment_and_sockets_are_out_of_reach() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rt = runtime();
    let build = hostile(&rt);
    for params in [
        r#"{"mode":"file"}"#.to_string(),
        r#"{"mode":"env"}"#.to_string(),
        format!(r#"{{"mode":"socket","port":{port}}}"#),
    ] {
        let mut i = instance(&rt, &build, &params);
        let commands = render(&mut i, 0).unwrap().expect("a picture");
        assert_eq!(fill_of(&commands), GREEN, "{params}: green means refused");
    }
    assert!(!std::path::Path::new("/tmp/hostile-was-here").exists());
}

#[test]
fn a_log_flood_is_rate_limited_not_fatal() {
    let rt = runtime();
    let build = hostile(&rt);
    let mut i = instance(&rt, &build, r#"{"mode":"log-flood","lines":2000}"#);
    let commands = i
        .render(
            &frame(0),
            Duration::from_secs(5),
            &PluginLimits::default().commands,
        )
        .unwrap()
        .expect("draws after flooding");
    assert_eq!(fill_of(&commands), GREEN);
}

#[test]
fn template_rejection_carries_its_message() {
    let rt = runtime();
    let build = hostile(&rt);
    let mut i = rt
        .instantiate(&build, Arc::new(Resources::default()))
        .unwrap();
    let refused = i
        .configure(
            r#"{"mode":"ok","reject":true,"reason":"score must be positive"}"#,
            Duration::from_millis(100),
        )
        .unwrap()
        .unwrap_err();
    assert!(refused.contains("score must be positive"), "{refused}");
    assert!(build.check_params(&serde_json::json!({"mode": 3})).is_err());
}

#[test]
fn state_is_handed_to_a_new_version() {
    let rt = runtime();
    let a = rt.prepare(Bytes::from(test_guest("colour_a")), 30).unwrap();
    let b = rt.prepare(Bytes::from(test_guest("colour_b")), 30).unwrap();
    let mut old = instance(&rt, &a, "{}");
    for n in 0..7 {
        render(&mut old, n).unwrap();
    }
    let state = old
        .snapshot(Duration::from_millis(100))
        .unwrap()
        .expect("a snapshot");
    let mut new = instance(&rt, &b, "{}");
    new.restore(&state, Duration::from_millis(100))
        .unwrap()
        .unwrap();
    let next = new.snapshot(Duration::from_millis(100)).unwrap().unwrap();
    assert!(next.contains("7"), "the counter went on: {next}");
    let commands = render(&mut new, 7).unwrap().unwrap();
    assert_eq!(
        fill_of(&commands),
        [0, 0, 255, 255],
        "the new version draws blue"
    );
}

#[test]
fn bad_components_are_refused_with_a_reason() {
    let rt = runtime();
    let hostile = test_guest("hostile");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"definitely not wasm".to_vec(), "magic"),
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (hostile[..hostile.len() / 2].to_vec(), "invalid component"),
        (test_guest("loader_stub"), "asset loader"),
        (test_guest("trap_init"), "describe"),
        (test_guest("slow_default"), "test render"),
        (
            test_guest("big_memory"),
            "declares 4 GiB of initial memory; templates get 64 MiB",
        ),
        (
            test_guest("external_ref"),
            "external `$ref` is not supported",
        ),
        (
            test_guest("deep_stack"),
            "test render: stackOverflow: stack overflow (deep or unbounded recursion)",
        ),
    ];
    for (bytes, expected) in cases {
        let err = rt.prepare(Bytes::from(bytes), 30).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected {expected:?} in {err}"
        );
        if expected == "test render" {
            assert!(matches!(err, PluginError::Fault { .. }), "{err:?}");
        }
    }
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = crate::harness::TempDir::new("component-cache");
    let bytes = Bytes::from(test_guest("colour_a"));
    let first = Runtime::new(PluginLimits::default(), Some(dir.path().to_path_buf())).unwrap();
    first.prepare(bytes.clone(), 30).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "one compiled component in the cache");
    // A new runtime (a restart) loads it instead of compiling.
    let second = Runtime::new(PluginLimits::default(), Some(dir.path().to_path_buf())).unwrap();
    let build = second.prepare(bytes, 30).unwrap();
    assert_eq!(build.info.name, "colour");
}
