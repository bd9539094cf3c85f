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

use exports::stream_manager::plugin::template::{FrameInfo, Guest, Info, RenderOutput};
use stream_manager::plugin::host::{self, LogLevel};
use stream_manager::plugin::types::{
    DrawCommand, Fill, ImageCommand, Rect, RectCommand, Size, TextCommand,
};

use common::{GREEN, RED};

const MODES: &[&str] = &[
    "ok",
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
    "lines": { "type": "integer", "minimum": 0 }
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

/// Recursion the optimiser can neither turn into a loop nor shrink: each frame keeps a
/// 4 KiB array alive across the call, and the caller uses the result.
#[inline(never)]
fn dive(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let mut pad = [0_u8; 4096];
    pad[(depth % 4096) as usize] = depth as u8;
    black_box(&mut pad);
    let below = dive(black_box(depth + 1));
    below.wrapping_add(u64::from(pad[(below % 4096) as usize]))
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
                let depth = dive(0);
                // Unreachable in practice; keeps the result observable.
                common::fill_width(depth as f32, frame.width, frame.height, RED)
            }
            "million" => many_rects(u64_param(&params, "count", 1_000_000)),
            "nan" => nan_rect(&frame),
            "image" => image(&params, &frame),
            "huge-string" => huge_text(u64_param(&params, "bytes", 10 << 20)),
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
