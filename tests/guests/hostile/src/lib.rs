//! `hostile`: one scene template that misbehaves on demand. Its params choose how:
//! `{"mode": "...", ...}`; see `tests/guests/README.md` for every mode and what the host
//! should observe. Nothing here may take the stream down.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "scene-template",
});

#[allow(dead_code)]
#[path = "../../common.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};
use stream_manager::plugin::host::{self, LogLevel};
use stream_manager::plugin::types::{
    CubicSegment, DrawCommand, Fill, GradientStop, ImageCommand, Matrix, PathCommand, Point,
    RadialGradient, Rect, RectCommand, Rgba, Segment, Size, Stroke, TextCommand,
};

use common::{GREEN, RED};

const MODES: &[&str] = &[
    "ok",
    "alias",
    "loop",
    "hog",
    "panic",
    "stack",
    "million",
    "nan",
    "huge-string",
    "file",
    "env",
    "socket",
    "fault-after",
    "log-flood",
    "unchanged",
    "configure-error",
    "image",
    "glyph-bomb",
    "gradient-flood",
    "stroke-bomb",
    "spin",
    "panic-every",
    "leak",
    "clip-flood",
    "many-layers-text",
];

const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "mode": { "type": "string" },
    "color": { "type": "string" },
    "showRenders": { "type": "boolean" },
    "reject": { "type": "boolean" },
    "reason": { "type": "string" },
    "frames": { "type": "integer", "minimum": 0 },
    "port": { "type": "integer", "minimum": 0, "maximum": 65535 },
    "count": { "type": "integer", "minimum": 0 },
    "bytes": { "type": "integer", "minimum": 0 },
    "lines": { "type": "integer", "minimum": 0 },
    "animate": { "type": "boolean" },
    "ms": { "type": "number", "minimum": 0 },
    "every": { "type": "integer", "minimum": 1 }
  },
  "additionalProperties": true
}"##;

thread_local! {
    /// The params last accepted by `configure` (a JSON object).
    static PARAMS: RefCell<serde_json::Value> = RefCell::new(serde_json::json!({ "mode": "ok" }));
    /// Render calls made on this instance (not carried over by `restore`).
    static CALLS: Cell<u64> = const { Cell::new(0) };
    /// Where `hog` keeps what it allocates, so nothing is freed.
    static HOARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn params() -> serde_json::Value {
    PARAMS.with(|p| p.borrow().clone())
}

fn u64_param(params: &serde_json::Value, key: &str, default: u64) -> u64 {
    params
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(default)
}

/// The `ok` picture: a rectangle in `color` filling the layer, or only `renders` pixels
/// wide when `showRenders` is set.
fn ok_picture(params: &serde_json::Value, frame: &FrameInfo, renders: u64) -> RenderOutput {
    let color = params
        .get("color")
        .and_then(serde_json::Value::as_str)
        .and_then(common::parse_color)
        .unwrap_or(GREEN);
    if common::show_renders(params) {
        common::fill_width(renders as f32, frame.width, frame.height, color)
    } else {
        common::fill_layer(frame.width, frame.height, color)
    }
}

/// GREEN when everything was refused, RED when anything got through.
fn verdict(frame: &FrameInfo, what: &str, got_through: &[(&str, bool)]) -> RenderOutput {
    let leaked: Vec<&str> = got_through
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(n, _)| *n)
        .collect();
    if leaked.is_empty() {
        host::log(
            LogLevel::Info,
            &format!("hostile {what}: everything refused"),
        );
        common::fill_layer(frame.width, frame.height, GREEN)
    } else {
        host::log(
            LogLevel::Error,
            &format!("hostile {what}: allowed {}", leaked.join(", ")),
        );
        common::fill_layer(frame.width, frame.height, RED)
    }
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn hog() -> ! {
    loop {
        let block = vec![0xA5_u8; 1 << 20];
        HOARD.with(|h| h.borrow_mut().push(black_box(block)));
    }
}

fn many_rects(count: u64) -> RenderOutput {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut commands = Vec::with_capacity(count);
    for i in 0..count {
        commands.push(common::solid_rect((i % 320) as f32, 0.0, 1.0, 1.0, GREEN));
    }
    RenderOutput::Commands(commands)
}

fn nan_rect(frame: &FrameInfo) -> RenderOutput {
    RenderOutput::Commands(vec![DrawCommand::Rect(RectCommand {
        bounds: Rect {
            x: f32::NAN,
            y: 0.0,
            width: frame.width as f32,
            height: frame.height as f32,
        },
        radius: 0.0,
        fill: Fill::Solid(GREEN),
    })])
}

/// The image asset named by the `asset` param, filling the layer.
fn image(params: &serde_json::Value, frame: &FrameInfo) -> RenderOutput {
    let asset = params
        .get("asset")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("no-such-image")
        .to_string();
    RenderOutput::Commands(vec![DrawCommand::Image(ImageCommand {
        asset,
        bounds: Rect {
            x: 0.0,
            y: 0.0,
            width: frame.width as f32,
            height: frame.height as f32,
        },
    })])
}

fn huge_text(bytes: u64) -> RenderOutput {
    let text = "A".repeat(usize::try_from(bytes).unwrap_or(usize::MAX));
    RenderOutput::Commands(vec![DrawCommand::Text(TextCommand {
        x: 0.0,
        y: 20.0,
        text,
        size: 16.0,
        fill: Fill::Solid(GREEN),
        font: None,
    })])
}

/// `count` text commands whose strings all point at one buffer of `bytes`: the canonical
/// ABI lets lists and strings alias, so lifting them naively would copy `count × bytes`
/// into the host (8 MiB × 10 000 = 80 GiB) from 8 MiB of guest memory.
fn aliased_texts(bytes: u64, count: u64) -> RenderOutput {
    let mut text = "A".repeat(usize::try_from(bytes).unwrap_or(usize::MAX));
    let (ptr, len, cap) = (text.as_mut_ptr(), text.len(), text.capacity());
    std::mem::forget(text);
    let commands = (0..count)
        .map(|_| {
            DrawCommand::Text(TextCommand {
                x: 0.0,
                y: 20.0,
                // SAFETY: not safe, on purpose: every string owns the same buffer. The
                // host must lift them without trusting that they are distinct.
                text: unsafe { String::from_raw_parts(ptr, len, cap) },
                size: 16.0,
                fill: Fill::Solid(GREEN),
                font: None,
            })
        })
        .collect();
    RenderOutput::Commands(commands)
}

fn try_files(frame: &FrameInfo) -> RenderOutput {
    let read = std::fs::read("/etc/passwd").is_ok();
    let list = std::fs::read_dir("/").is_ok();
    let create = std::fs::File::create("/tmp/hostile-was-here").is_ok();
    verdict(
        frame,
        "file",
        &[
            ("read /etc/passwd", read),
            ("read_dir /", list),
            ("create /tmp/hostile-was-here", create),
        ],
    )
}

fn try_env(frame: &FrameInfo) -> RenderOutput {
    let vars = std::env::vars_os().count();
    let args = std::env::args_os().count();
    verdict(
        frame,
        "env",
        &[("environment variables", vars > 0), ("arguments", args > 0)],
    )
}

fn try_sockets(params: &serde_json::Value, frame: &FrameInfo) -> RenderOutput {
    let port = u16::try_from(u64_param(params, "port", 80)).unwrap_or(80);
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").is_ok();
    verdict(frame, "socket", &[("tcp connect", tcp), ("udp bind", udp)])
}

fn flood(lines: u64) {
    let message = "x".repeat(1024);
    for _ in 0..lines {
        host::log(LogLevel::Info, &message);
    }
    // Write errors are ignored: the point is the volume, not whether anyone listens.
    let mut out = std::io::stdout().lock();
    for i in 0..lines {
        let _ = writeln!(out, "hostile stdout flood line {i}");
    }
    drop(out);
    let mut err = std::io::stderr().lock();
    for i in 0..lines {
        let _ = writeln!(err, "hostile stderr flood line {i}");
    }
}

// Raster bombs: output that passes every documented validation limit (wit/limits.rs) but
// costs the host a lot to draw. Each varies a little with the frame number, so a host
// cannot reuse the previous raster.

/// Opaque white.
const WHITE: Rgba = Rgba {
    r: 255,
    g: 255,
    b: 255,
    a: 255,
};

fn bool_param(params: &serde_json::Value, key: &str) -> bool {
    params
        .get(key)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

fn count_param(params: &serde_json::Value, default: u64) -> usize {
    usize::try_from(u64_param(params, "count", default)).unwrap_or(usize::MAX)
}

/// A uniform scale by `s`.
fn scale(s: f32) -> DrawCommand {
    DrawCommand::Transform(Matrix {
        sx: s,
        ky: 0.0,
        kx: 0.0,
        sy: s,
        tx: 0.0,
        ty: 0.0,
    })
}

/// `glyph-bomb`: scale 15 (or 10–19.75 changing every frame with `animate`), then the
/// alphabet at the largest text size, so glyphs are 30 000 px per em on the layer.
fn glyph_bomb(params: &serde_json::Value, frame: &FrameInfo) -> RenderOutput {
    let s = if bool_param(params, "animate") {
        10.0 + (frame.frame % 40) as f32 * 0.25
    } else {
        15.0
    };
    RenderOutput::Commands(vec![
        scale(s),
        DrawCommand::Text(TextCommand {
            x: 0.0,
            y: 100.0,
            text: "ABCDEFGHIJKLMNOPQRSTUVWXYZ".to_string(),
            size: 2000.0,
            fill: Fill::Solid(WHITE),
            font: None,
        }),
    ])
}

/// `gradient-flood`: `count` full-layer rounded rects, each with a translucent radial
/// gradient whose radius (half the layer width, plus up to 9 %) changes every frame.
fn gradient_flood(params: &serde_json::Value, frame: &FrameInfo) -> RenderOutput {
    let (w, h) = (frame.width as f32, frame.height as f32);
    let radius = (w / 2.0).max(1.0) * (1.0 + (frame.frame % 10) as f32 * 0.01);
    let stop = |offset: f32, r: u8, g: u8, b: u8| GradientStop {
        offset,
        color: Rgba { r, g, b, a: 128 },
    };
    let fill = Fill::Radial(RadialGradient {
        cx: w / 2.0,
        cy: h / 2.0,
        radius,
        stops: vec![
            stop(0.0, 255, 255, 255),
            stop(0.5, 0, 255, 0),
            stop(1.0, 0, 0, 255),
        ],
    });
    let count = count_param(params, 5000);
    let mut commands = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        commands.push(DrawCommand::Rect(RectCommand {
            bounds: Rect {
                x: 0.0,
                y: 0.0,
                width: w,
                height: h,
            },
            radius: 40.0,
            fill: fill.clone(),
        }));
    }
    RenderOutput::Commands(commands)
}

/// `stroke-bomb`: one path, a move-to and `count` cubics zig-zagging between the left and
/// right edges while stepping down the layer, stroked 1000 px wide, not filled. The bulge
/// of the curves changes every frame.
fn stroke_bomb(params: &serde_json::Value, frame: &FrameInfo) -> RenderOutput {
    let (w, h) = (frame.width as f32, frame.height as f32);
    let count = count_param(params, 99_999);
    let bulge = h * (0.1 + (frame.frame % 10) as f32 * 0.01);
    let mut segments = Vec::with_capacity(count.saturating_add(1).min(1 << 20));
    segments.push(Segment::MoveTo(Point { x: 0.0, y: 0.0 }));
    let step = h / count.max(1) as f32;
    let mut y0 = 0.0_f32;
    for i in 0..count {
        let (x0, x) = if i % 2 == 0 { (0.0, w) } else { (w, 0.0) };
        let y = (i + 1) as f32 * step;
        segments.push(Segment::CubicTo(CubicSegment {
            x1: x0 + (x - x0) / 3.0,
            y1: y0 - bulge,
            x2: x0 + (x - x0) * 2.0 / 3.0,
            y2: y + bulge,
            x,
            y,
        }));
        y0 = y;
    }
    RenderOutput::Commands(vec![DrawCommand::Path(PathCommand {
        segments,
        fill: None,
        stroke: Some(Stroke {
            color: Rgba {
                r: 255,
                g: 255,
                b: 255,
                a: 200,
            },
            width: 1000.0,
        }),
    })])
}

/// `clip-flood`: a clip over the layer, then `count` of `save`, a 4×4 rect, `restore`
/// (3 commands each), the rects spread over the layer and moving 1 px a frame.
fn clip_flood(params: &serde_json::Value, frame: &FrameInfo) -> RenderOutput {
    let (w, h) = (frame.width.max(1) as u64, frame.height.max(1) as u64);
    let count = count_param(params, 3333);
    let mut commands = Vec::with_capacity(count.saturating_mul(3).saturating_add(1).min(1 << 20));
    commands.push(DrawCommand::ClipRect(Rect {
        x: 0.0,
        y: 0.0,
        width: frame.width as f32,
        height: frame.height as f32,
    }));
    for i in 0..count as u64 {
        let x = (i * 7 + frame.frame) % w;
        let y = (i * 13) % h;
        commands.push(DrawCommand::Save);
        commands.push(common::solid_rect(x as f32, y as f32, 4.0, 4.0, GREEN));
        commands.push(DrawCommand::Restore);
    }
    RenderOutput::Commands(commands)
}

/// `many-layers-text`: `count` runs of "WWWWWWWW" at size 300, spread over the layer and
/// moving 1 px a frame.
fn many_texts(params: &serde_json::Value, frame: &FrameInfo) -> RenderOutput {
    let (w, h) = (frame.width.max(1) as u64, frame.height.max(1) as u64);
    let count = count_param(params, 2000);
    let mut commands = Vec::with_capacity(count.min(1 << 20));
    for i in 0..count as u64 {
        let x = (i * 37 + frame.frame) % w;
        let y = (i * 53) % h;
        commands.push(DrawCommand::Text(TextCommand {
            // Start up to a run's width left of the layer so the layer is covered.
            x: x as f32 - 1200.0 * ((i % 2) as f32),
            // A baseline 300 px down: the glyphs' tops at `y`.
            y: y as f32 + 300.0,
            text: "WWWWWWWW".to_string(),
            size: 300.0,
            fill: Fill::Solid(Rgba {
                r: 255,
                g: 255,
                b: 255,
                a: 64,
            }),
            font: None,
        }));
    }
    RenderOutput::Commands(commands)
}

/// `spin`: busy-waits `ms` milliseconds of wall time on the WASI monotonic clock.
fn spin_for(params: &serde_json::Value) {
    let ms = params
        .get("ms")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(7.5)
        .max(0.0);
    // Too long to represent: as good as forever.
    let wait = Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX);
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < wait {
        n = black_box(n.wrapping_add(1));
    }
}

/// `leak`: allocates `bytes` that are never freed, writing one byte in every 4 KiB so the
/// pages are really committed.
fn leak(bytes: u64) {
    // Grown and never touched: the host counts what `memory.grow` declares, and writing the
    // pages would cost a busy machine more than the layer's time budget at times. That fault
    // replaces the instance, fresh memory and all, before the leak ever reached the limit.
    let pages = usize::try_from(bytes.div_ceil(65_536)).unwrap_or(usize::MAX);
    core::arch::wasm32::memory_grow(0, pages);
}

struct Hostile;

impl Guest for Hostile {
    fn describe() -> Info {
        Info {
            name: "hostile".to_string(),
            version: "0.1.0".to_string(),
            description: "Test guest that misbehaves as its `mode` param says".to_string(),
            params_schema: SCHEMA.to_string(),
            default_params: r#"{"mode":"ok"}"#.to_string(),
            default_size: Size {
                width: 320,
                height: 180,
            },
        }
    }

    fn configure(params: String) -> Result<(), String> {
        let params = common::parse_object(&params)?;
        if params.get("reject").and_then(serde_json::Value::as_bool) == Some(true) {
            let reason = params
                .get("reason")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("the params asked to be rejected");
            return Err(format!("rejected: {reason}"));
        }
        let mode = match params.get("mode") {
            None => "ok",
            Some(serde_json::Value::String(mode)) => mode.as_str(),
            Some(_) => return Err("mode must be a string".to_string()),
        };
        if !MODES.contains(&mode) {
            return Err(format!("unknown mode \"{mode}\""));
        }
        if let Some(color) = params.get("color")
            && color.as_str().and_then(common::parse_color).is_none()
        {
            return Err("color must be \"#rrggbb\"".to_string());
        }
        PARAMS.with(|p| *p.borrow_mut() = params);
        Ok(())
    }

    fn render(frame: FrameInfo) -> RenderOutput {
        let renders = common::count_render();
        let calls = CALLS.with(|c| {
            let n = c.get() + 1;
            c.set(n);
            n
        });
        let params = params();
        let mode = params
            .get("mode")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("ok");
        match mode {
            "loop" => spin_forever(),
            "hog" => hog(),
            "panic" => panic!("hostile panic"),
            "stack" => {
                let depth = common::dive(0);
                // Unreachable in practice; keeps the result observable.
                common::fill_width(depth as f32, frame.width, frame.height, RED)
            }
            "million" => many_rects(u64_param(&params, "count", 1_000_000)),
            "nan" => nan_rect(&frame),
            "image" => image(&params, &frame),
            "huge-string" => huge_text(u64_param(&params, "bytes", 10 << 20)),
            "alias" => aliased_texts(
                u64_param(&params, "bytes", 8 << 20),
                u64_param(&params, "count", 10_000),
            ),
            "file" => try_files(&frame),
            "env" => try_env(&frame),
            "socket" => try_sockets(&params, &frame),
            "fault-after" => {
                let frames = u64_param(&params, "frames", 10);
                if calls > frames {
                    panic!("hostile fault after {frames} frames (call {calls})");
                }
                ok_picture(&params, &frame, renders)
            }
            "log-flood" => {
                flood(u64_param(&params, "lines", 100_000));
                ok_picture(&params, &frame, renders)
            }
            "unchanged" if calls > 1 => RenderOutput::Unchanged,
            "glyph-bomb" => glyph_bomb(&params, &frame),
            "gradient-flood" => gradient_flood(&params, &frame),
            "stroke-bomb" => stroke_bomb(&params, &frame),
            "clip-flood" => clip_flood(&params, &frame),
            "many-layers-text" => many_texts(&params, &frame),
            "spin" => {
                spin_for(&params);
                ok_picture(&params, &frame, renders)
            }
            "panic-every" => {
                // Counted by the host's frame number: a trapped instance is replaced with
                // fresh memory, so no counter of ours would survive the panic.
                let every = u64_param(&params, "every", 7).max(1);
                if frame.frame % every == every - 1 {
                    panic!(
                        "hostile panic on call {} (frame {}, every {every})",
                        frame.frame + 1,
                        frame.frame
                    );
                }
                ok_picture(&params, &frame, renders)
            }
            "leak" => {
                leak(u64_param(&params, "bytes", 4 << 20));
                ok_picture(&params, &frame, renders)
            }
            // "ok", "unchanged" (first call), "configure-error".
            _ => ok_picture(&params, &frame, renders),
        }
    }

    fn snapshot() -> Option<String> {
        common::snapshot()
    }

    fn restore(state: String) -> Result<(), String> {
        common::restore(&state)
    }
}

export!(Hostile);
