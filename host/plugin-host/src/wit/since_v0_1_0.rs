//! `stream-manager:plugin@0.1.0`: bindings, the host imports (delegating to the newest
//! version's, [`super::since_v0_2_0`]) and the mapping of its draw commands onto the
//! composition engine's, one to one (its `types` serve 0.2.0 too).

use wasmtime::component::bindgen;

use crate::host_state::HostState;
use sm_compose::commands::{DrawCommand, Fill, GradientStopSpec, Segment, StrokeSpec};

bindgen!({
    path: "../../wit/since_v0.1.0",
    world: "scene-template",
});

pub use exports::stream_manager::plugin::template::{FrameInfo, Info, RenderOutput};
use stream_manager::plugin::host::LogLevel;
use stream_manager::plugin::types as wit;

impl stream_manager::plugin::types::Host for HostState {}

impl stream_manager::plugin::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        use super::since_v0_2_0::stream_manager::plugin::host::{Host, LogLevel as Newest};
        let level = match level {
            LogLevel::Debug => Newest::Debug,
            LogLevel::Info => Newest::Info,
            LogLevel::Warn => Newest::Warn,
            LogLevel::Error => Newest::Error,
        };
        Host::log(self, level, message);
    }

    fn measure_text(&mut self, text: String, size: f32, font: Option<String>) -> wit::TextMetrics {
        super::since_v0_2_0::stream_manager::plugin::host::Host::measure_text(
            self, text, size, font,
        )
    }

    fn asset_info(&mut self, id: String) -> Option<wit::AssetInfo> {
        super::since_v0_2_0::stream_manager::plugin::host::Host::asset_info(self, id)
    }
}

fn color(c: wit::Rgba) -> [u8; 4] {
    [c.r, c.g, c.b, c.a]
}

fn stops(stops: Vec<wit::GradientStop>) -> Vec<GradientStopSpec> {
    stops
        .into_iter()
        .map(|s| GradientStopSpec {
            offset: s.offset,
            color: color(s.color),
        })
        .collect()
}

fn fill(f: wit::Fill) -> Fill {
    match f {
        wit::Fill::Solid(c) => Fill::Solid { color: color(c) },
        wit::Fill::Linear(g) => Fill::LinearGradient {
            x0: g.x0,
            y0: g.y0,
            x1: g.x1,
            y1: g.y1,
            stops: stops(g.stops),
        },
        wit::Fill::Radial(g) => Fill::RadialGradient {
            cx: g.cx,
            cy: g.cy,
            radius: g.radius,
            stops: stops(g.stops),
        },
    }
}

fn segment(s: wit::Segment) -> Segment {
    match s {
        wit::Segment::MoveTo(p) => Segment::MoveTo { x: p.x, y: p.y },
        wit::Segment::LineTo(p) => Segment::LineTo { x: p.x, y: p.y },
        wit::Segment::QuadTo(q) => Segment::QuadTo {
            x1: q.x1,
            y1: q.y1,
            x: q.x,
            y: q.y,
        },
        wit::Segment::CubicTo(c) => Segment::CubicTo {
            x1: c.x1,
            y1: c.y1,
            x2: c.x2,
            y2: c.y2,
            x: c.x,
            y: c.y,
        },
        wit::Segment::Close => Segment::Close,
    }
}

/// The composition command for a WIT draw command.
pub fn command(c: wit::DrawCommand) -> DrawCommand {
    match c {
        wit::DrawCommand::Save => DrawCommand::Save,
        wit::DrawCommand::Restore => DrawCommand::Restore,
        wit::DrawCommand::Transform(m) => DrawCommand::Transform {
            matrix: [m.sx, m.ky, m.kx, m.sy, m.tx, m.ty],
        },
        wit::DrawCommand::Opacity(value) => DrawCommand::Opacity { value },
        wit::DrawCommand::ClipRect(r) => DrawCommand::ClipRect {
            x: r.x,
            y: r.y,
            width: r.width,
            height: r.height,
        },
        wit::DrawCommand::Rect(r) => DrawCommand::Rect {
            x: r.bounds.x,
            y: r.bounds.y,
            width: r.bounds.width,
            height: r.bounds.height,
            radius: r.radius,
            fill: fill(r.fill),
        },
        wit::DrawCommand::Ellipse(e) => DrawCommand::Ellipse {
            x: e.bounds.x,
            y: e.bounds.y,
            width: e.bounds.width,
            height: e.bounds.height,
            fill: fill(e.fill),
        },
        wit::DrawCommand::Path(p) => DrawCommand::Path {
            segments: p.segments.into_iter().map(segment).collect(),
            fill: p.fill.map(fill),
            stroke: p.stroke.map(|s| StrokeSpec {
                color: color(s.color),
                width: s.width,
            }),
        },
        wit::DrawCommand::Text(t) => DrawCommand::Text {
            x: t.x,
            y: t.y,
            text: t.text,
            size: t.size,
            fill: fill(t.fill),
            font: t.font,
        },
        wit::DrawCommand::Image(i) => DrawCommand::Image {
            asset: i.asset,
            x: i.bounds.x,
            y: i.bounds.y,
            width: i.bounds.width,
            height: i.bounds.height,
        },
    }
}

/// The `asset-loader` world of the same version: its imports are the template world's
/// (one linker serves both), its types the same draw commands.
pub mod loader_world {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "asset-loader",
        with: {
            "stream-manager:plugin/types": super::stream_manager::plugin::types,
            "stream-manager:plugin/host": super::stream_manager::plugin::host,
        },
    });
    pub use exports::stream_manager::plugin::loader::LoaderInfo;
}
