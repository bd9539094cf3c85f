//! A template's faults: what went wrong in a guest call ([`Fault`], [`FaultKind`], with the
//! classification of wasmtime's errors), what happened to a layer ([`TemplateEvent`]), and
//! counting a layer's faults: when a layer is quarantined (a streak of faulty
//! frames, or too many faults in a sliding window of frames, so that a template faulting
//! every 7th frame is caught as surely as one faulting every frame), and how often the same
//! fault is reported to operators.
//!
//! The counting works on plain numbers (frame ticks, instants passed in), so they are tested with a
//! simulated clock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::Trap;

/// What kind of fault a guest call had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// A trap other than those below.
    Trap,
    /// A Rust panic (an `unreachable` instruction).
    Panic,
    /// Ran over its time budget.
    Budget,
    /// Hit its memory limit.
    Memory,
    /// Recursed past the stack limit.
    StackOverflow,
    /// Returned draw commands that failed validation.
    InvalidOutput,
    /// Returned draw commands whose rasterizing would take (or took) the host longer than
    /// the layer's share of the frame.
    RasterBudget,
}

impl FaultKind {
    /// The name used in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::Panic => "panic",
            Self::Budget => "budget",
            Self::Memory => "memory",
            Self::StackOverflow => "stackOverflow",
            Self::InvalidOutput => "invalidOutput",
            Self::RasterBudget => "rasterBudget",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed guest call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Fault {
    /// The kind.
    pub kind: FaultKind,
    /// What happened, for operators.
    pub message: String,
}

impl Fault {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: FaultKind::InvalidOutput,
            message: message.into(),
        }
    }

    /// Classifies an error from a guest call.
    pub(crate) fn from_call(err: &wasmtime::Error, budget: Duration) -> Self {
        let memory = err
            .chain()
            .any(|e| e.to_string().contains("forcing trap when growing memory"));
        let oversized = is_oversized(err);
        let (kind, message) = match err.downcast_ref::<Trap>() {
            _ if memory => (FaultKind::Memory, "hit its memory limit".to_string()),
            _ if oversized => (
                FaultKind::InvalidOutput,
                format!(
                    "handed over more than {} MiB in one call (lists or strings too long, or \
                     aliased)",
                    crate::runtime::HOSTCALL_FUEL >> 20
                ),
            ),
            Some(Trap::Interrupt) => (
                FaultKind::Budget,
                format!("ran over its time budget of {budget:?}"),
            ),
            Some(Trap::StackOverflow) => (FaultKind::StackOverflow, STACK_OVERFLOW.into()),
            // A Rust guest keeps its stack in linear memory below its data: running off it
            // wraps the stack pointer and the next access is out of bounds.
            Some(Trap::MemoryOutOfBounds) if deep_recursion(err) => {
                (FaultKind::StackOverflow, STACK_OVERFLOW.into())
            }
            Some(Trap::UnreachableCodeReached) => (
                FaultKind::Panic,
                "panicked (its stderr is in the server log)".into(),
            ),
            Some(trap) => (FaultKind::Trap, trap.to_string()),
            None => (FaultKind::Trap, first_line(&err.root_cause().to_string())),
        };
        Self { kind, message }
    }
}

/// Whether wasmtime's hostcall fuel ran out while copying what a guest handed over (its
/// error type is private).
pub(crate) fn is_oversized(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|e| e.to_string().contains("fuel allocated for hostcalls"))
}

/// The message of a [`FaultKind::StackOverflow`].
const STACK_OVERFLOW: &str = "stack overflow (deep or unbounded recursion)";

/// Whether the wasm backtrace of `err` shows deep recursion: a full backtrace (wasmtime
/// keeps the innermost 20 frames, the default `wasm_backtrace_max_frames`) made of a few
/// functions called again and again. An out-of-bounds access in a shallow or varied stack
/// stays a plain trap.
fn deep_recursion(err: &wasmtime::Error) -> bool {
    /// Fewer frames than this is not deep.
    const MIN_FRAMES: usize = 16;
    let Some(trace) = err.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return false;
    };
    let frames = trace.frames();
    if frames.len() < MIN_FRAMES {
        return false;
    }
    let mut distinct: Vec<(&wasmtime::Module, u32)> = Vec::new();
    for f in frames {
        if !distinct
            .iter()
            .any(|(m, i)| *i == f.func_index() && wasmtime::Module::same(m, f.module()))
        {
            distinct.push((f.module(), f.func_index()));
        }
    }
    distinct.len() * 4 <= frames.len()
}

/// The first line of `s`, at most 300 bytes.
pub(crate) fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    let mut end = line.len().min(300);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

/// What happened to a template layer, for the event bus, metrics and health.
#[derive(Debug, Clone)]
pub struct TemplateEvent {
    /// Template id.
    pub template: String,
    /// Hash of the build concerned.
    pub hash: String,
    /// Layer id.
    pub layer: String,
    /// What happened.
    pub kind: TemplateEventKind,
}

/// The kinds of [`TemplateEvent`].
#[derive(Debug, Clone)]
pub enum TemplateEventKind {
    /// A guest call failed; the layer shows its last good picture.
    Fault(Fault),
    /// Too many faults in a row: the layer is no longer called.
    Quarantined(Fault),
    /// The layer's template got a new version that fails right after its swap.
    RollbackWanted(Fault),
    /// The layer runs a new version.
    Swapped,
    /// A quarantined layer runs again (the operator changed its params or version).
    Resumed,
}

/// The faults of one layer in the last `window` frames.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    limit: u32,
    window: u64,
    ticks: VecDeque<u64>,
}

impl FaultWindow {
    /// Quarantine at `limit` faults within `window` frames.
    pub fn new(limit: u32, window: u32) -> Self {
        Self {
            limit: limit.max(1),
            window: u64::from(window.max(1)),
            ticks: VecDeque::new(),
        }
    }

    /// Records a fault at frame `tick`; true when the layer has now had `limit` faults
    /// within the window.
    pub fn record(&mut self, tick: u64) -> bool {
        while self
            .ticks
            .front()
            .is_some_and(|&t| tick.saturating_sub(t) >= self.window)
        {
            self.ticks.pop_front();
        }
        self.ticks.push_back(tick);
        if self.ticks.len() > self.limit as usize {
            self.ticks.pop_front();
        }
        self.ticks.len() >= self.limit as usize
    }

    /// Faults counted in the window.
    pub fn count(&self) -> usize {
        self.ticks.len()
    }

    /// Forgets every fault (the operator changed the layer).
    pub fn clear(&mut self) {
        self.ticks.clear();
    }
}

/// Lets the first report of a fault through, then at most one per `interval` for the same
/// key (a layer and kind of fault), counting what it held back.
#[derive(Debug)]
pub struct FaultThrottle {
    interval: Duration,
    last: HashMap<String, (Instant, u64)>,
}

/// Most keys remembered; older ones are forgotten first.
const MAX_KEYS: usize = 4096;

impl FaultThrottle {
    /// A throttle letting one report per key through each `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: HashMap::new(),
        }
    }

    /// Whether a report with `key` at `now` goes out: `Some(n)` with the `n` reports held
    /// back since the last one that went out, `None` when this one is held back.
    pub fn admit(&mut self, key: &str, now: Instant) -> Option<u64> {
        if let Some((at, held)) = self.last.get_mut(key) {
            if now.saturating_duration_since(*at) < self.interval {
                *held += 1;
                return None;
            }
            let n = std::mem::take(held);
            *at = now;
            return Some(n);
        }
        if self.last.len() >= MAX_KEYS {
            let interval = self.interval;
            self.last
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < interval);
            if self.last.len() >= MAX_KEYS {
                self.last.clear();
            }
        }
        self.last.insert(key.to_string(), (now, 0));
        Some(0)
    }

    /// Forgets the keys that start with `prefix` (a layer that went away).
    pub fn forget(&mut self, prefix: &str) {
        self.last.retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intermittent_faults_reach_the_limit_within_the_window() {
        // 10 faults in 300 frames: a fault every 7th frame is caught at its 10th.
        let mut w = FaultWindow::new(10, 300);
        let caught = (0..1000u64)
            .filter(|t| t % 7 == 6)
            .position(|t| w.record(t))
            .map(|i| i + 1);
        assert_eq!(caught, Some(10));
        // Every 16th frame (a leak that traps): 10 faults span 144 frames, still caught.
        let mut w = FaultWindow::new(10, 300);
        assert!((0..1000u64).filter(|t| t % 16 == 15).any(|t| w.record(t)));
    }

    #[test]
    fn rare_faults_never_reach_the_limit() {
        // Ten faults 34 frames apart span 306 frames: never 10 within 300. Spaced 31 apart
        // they span 279: caught.
        let mut w = FaultWindow::new(10, 300);
        assert!(!(0..100_000u64).filter(|t| t % 34 == 0).any(|t| w.record(t)));
        let mut w = FaultWindow::new(10, 300);
        assert!((0..100_000u64).filter(|t| t % 31 == 0).any(|t| w.record(t)));
        assert!(w.count() <= 10, "the window keeps at most `limit` ticks");
    }

    #[test]
    fn clearing_forgets_earlier_faults() {
        let mut w = FaultWindow::new(3, 100);
        assert!(!w.record(1));
        assert!(!w.record(2));
        w.clear();
        assert!(!w.record(3));
        assert!(!w.record(4));
        assert!(w.record(5));
    }

    #[test]
    fn the_throttle_lets_one_report_through_per_interval_and_counts_the_rest() {
        let mut t = FaultThrottle::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(t.admit("a/panic", at(0)), Some(0));
        assert_eq!(t.admit("a/panic", at(250)), None);
        assert_eq!(t.admit("a/panic", at(4999)), None);
        // Another layer or kind is its own key.
        assert_eq!(t.admit("b/panic", at(300)), Some(0));
        assert_eq!(t.admit("a/trap", at(300)), Some(0));
        assert_eq!(t.admit("a/panic", at(5000)), Some(2));
        assert_eq!(t.admit("a/panic", at(5001)), None);
        t.forget("a/");
        assert_eq!(t.admit("a/panic", at(5002)), Some(0));
    }
}
