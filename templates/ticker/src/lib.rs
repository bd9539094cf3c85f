//! Ticker: a line of text scrolling right to left in a seamless loop, with an optional
//! label box at the left.
//!
//! The run (the text, or the items joined by the separator, plus one separator) is
//! measured with the host's `measure_text` and drawn repeated side by side, as many times
//! as it takes to cover the strip, so there is never a gap. The scroll offset is kept
//! modulo the run's width; changing the text or the speed carries on from where the
//! scroll is, and a hot swap hands the offset over (`snapshot`/`restore`).
//!
//! It wipes in from the left over 400 ms when played and out towards the left when
//! stopped, scrolling all the while.

use serde::{Deserialize, Serialize};
use stream_manager_sdk::anim::{Presence, ease_in_out_cubic};
use stream_manager_sdk::canvas::{MAX_FRAME_TEXT_BYTES, MAX_TEXT_BYTES, truncate};
use stream_manager_sdk::{
    Canvas, Color, Frame, Info, JsonSchema, Render, Size, Template, TextMetrics, export_template,
    fit_text, measure_text,
};

// The params; the schema the host checks them against is derived from this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    /// The text, used when items is empty.
    #[schemars(length(max = 4000))]
    text: String,
    /// Headlines, joined by the separator; overrides text when not empty.
    #[schemars(length(max = 100), inner(length(max = 1000)))]
    items: Vec<String>,
    #[schemars(length(max = 32))]
    separator: String,
    /// Scroll speed in pixels per second; 0 stands still.
    #[schemars(range(min = 0, max = 5000))]
    speed: f64,
    /// Text of the box at the left; empty for none.
    #[schemars(length(max = 64))]
    label: String,
    /// Text size in pixels; null for 55 % of the layer height.
    #[schemars(range(max = 1000), extend("exclusiveMinimum" = 0))]
    #[serde(skip_serializing_if = "Option::is_none")]
    font_size: Option<f32>,
    text_color: Color,
    background_color: Color,
    /// Colour of the label box.
    accent_color: Color,
    label_color: Color,
    /// Family of an uploaded font; null for the default font.
    #[schemars(length(max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    font: Option<String>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            text: "Welcome to the stream — thanks for watching".into(),
            items: Vec::new(),
            separator: "  •  ".into(),
            speed: 120.0,
            label: "NEWS".into(),
            font_size: None,
            text_color: Color::WHITE,
            background_color: Color::rgba(0x0f, 0x17, 0x2a, 0xe6),
            accent_color: Color::rgb(0xe6, 0x39, 0x46),
            label_color: Color::WHITE,
            font: None,
        }
    }
}

impl Params {
    /// One period of the loop: the text (or the items joined by the separator) and a
    /// separator before the next repetition, cut to what one text command may hold.
    fn run(&self) -> String {
        let body = if self.items.iter().any(|i| !i.trim().is_empty()) {
            self.items
                .iter()
                .filter(|i| !i.trim().is_empty())
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(&self.separator)
        } else {
            self.text.clone()
        };
        if body.trim().is_empty() {
            return String::new();
        }
        let run = body + &self.separator;
        truncate(&run, MAX_TEXT_BYTES).to_owned()
    }
}

/// The scroll position: `offset` pixels at `anchor_ms`, growing at `speed` px/s, taken
/// modulo the run's width.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scroll {
    offset: f64,
    /// `None` until the next frame gives the anchor its time.
    anchor_ms: Option<f64>,
    speed: f64,
}

impl Scroll {
    /// The offset at `now_ms`, in 0..`period` (0 when the period is not positive).
    fn offset_at(&self, now_ms: f64, period: f64) -> f64 {
        if period.is_nan() || period <= 0.0 {
            return 0.0;
        }
        let elapsed = self
            .anchor_ms
            .map_or(0.0, |a| (now_ms - a).max(0.0) / 1000.0);
        let o = (self.offset + self.speed * elapsed).rem_euclid(period);
        // rem_euclid can round up to `period` itself for tiny negative values.
        if o >= period { 0.0 } else { o }
    }

    /// Starts moving at `speed` from where it is at `now_ms` (anchor at the next frame).
    fn set_speed(&mut self, speed: f64, now_ms: Option<f64>, period: f64) {
        if let Some(now) = now_ms {
            self.offset = self.offset_at(now, period.max(0.0));
        }
        self.anchor_ms = None;
        self.speed = speed;
    }
}

/// The x positions at which to draw copies of a run `period` pixels wide, scrolled by
/// `offset`, to cover `from`..`to` without a gap.
fn copy_positions(from: f32, to: f32, offset: f64, period: f32) -> impl Iterator<Item = f32> {
    let start = from - offset as f32;
    let count = if period > 0.0 {
        // Enough to reach `to`, bounded so a tiny run cannot flood the frame.
        (((to - start) / period).ceil().max(0.0) as usize).min(512)
    } else {
        0
    };
    (0..count).map(move |k| start + k as f32 * period)
}

/// Measurements of the run at a layer size.
#[derive(Clone, Debug, PartialEq)]
struct Layout {
    width: u32,
    height: u32,
    run: String,
    size: f32,
    run_metrics: TextMetrics,
    label_size: f32,
    label_metrics: TextMetrics,
    /// Width of the label box; 0 without a label.
    label_width: f32,
}

/// How long wiping in or out takes.
const WIPE_MS: f64 = 400.0;

struct Ticker {
    params: Params,
    /// Wiped in (1.0) or out (0.0) by play and stop.
    presence: Presence,
    scroll: Scroll,
    layout: Option<Layout>,
    last_render_ms: Option<f64>,
    /// Offset, layer size and presence of the last picture; `None` after a configure.
    last: Option<(f64, u32, u32, f32)>,
}

impl Ticker {
    fn period(&self) -> f64 {
        self.layout
            .as_ref()
            .map_or(0.0, |l| f64::from(l.run_metrics.width))
    }
}

impl Template for Ticker {
    type Params = Params;

    fn info() -> Info {
        Info {
            name: "ticker".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A line of text scrolling right to left in a seamless loop".into(),
            default_params: serde_json::to_value(Params::default()).unwrap_or_default(),
            default_size: Size::new(1920, 64),
        }
    }

    fn new(params: Params) -> Result<Ticker, String> {
        check(&params)?;
        Ok(Ticker {
            scroll: Scroll {
                offset: 0.0,
                anchor_ms: None,
                speed: params.speed,
            },
            params,
            presence: Presence::new(WIPE_MS, WIPE_MS),
            layout: None,
            last_render_ms: None,
            last: None,
        })
    }

    fn configure(&mut self, params: Params) -> Result<(), String> {
        check(&params)?;
        if params == self.params {
            return Ok(());
        }
        if params.speed != self.params.speed {
            let period = self.period();
            self.scroll
                .set_speed(params.speed, self.last_render_ms, period);
        }
        // Text, font or size changes are measured again at the next frame; the offset
        // carries on, wrapped into the new run.
        self.layout = None;
        self.params = params;
        self.last = None;
        Ok(())
    }

    fn render(&mut self, frame: &Frame, canvas: &mut Canvas) -> Render {
        if self.scroll.anchor_ms.is_none() {
            self.scroll.anchor_ms = Some(frame.time_ms);
        }
        self.last_render_ms = Some(frame.time_ms);
        let layout = match self.layout.take() {
            Some(l) if l.width == frame.width && l.height == frame.height => l,
            _ => measure(&self.params, frame),
        };
        let offset = self
            .scroll
            .offset_at(frame.time_ms, f64::from(layout.run_metrics.width));
        self.layout = Some(layout);
        let shown = self.presence.at(frame.time_ms);
        let key = (offset, frame.width, frame.height, shown);
        if self.last == Some(key) {
            return Render::Unchanged;
        }
        if let Some(layout) = &self.layout
            && shown > 0.0
        {
            // Wiping: only the part uncovered so far (at rest, no clip of its own).
            let wiping = shown < 1.0;
            if wiping {
                canvas.save();
                canvas.clip_rect(0.0, 0.0, wipe_width(shown, frame.w()), frame.h());
            }
            draw(&self.params, layout, offset, frame, canvas);
            if wiping {
                canvas.restore();
            }
        }
        self.last = Some(key);
        Render::Drawn
    }

    fn play(&mut self, at_ms: f64) {
        self.presence.set(true, Some(at_ms));
    }

    fn stop(&mut self, at_ms: f64) {
        self.presence.set(false, Some(at_ms));
    }

    fn out_ms(&self) -> f64 {
        WIPE_MS
    }

    fn snapshot(&self) -> Option<serde_json::Value> {
        let now = self.last_render_ms?;
        let offset = self.scroll.offset_at(now, self.period());
        Some(serde_json::json!({ "offset": offset, "timeMs": now }))
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct State {
            offset: f64,
            #[serde(default)]
            time_ms: Option<f64>,
        }
        let state: State =
            serde_json::from_value(state).map_err(|e| format!("invalid scroll state: {e}"))?;
        if !state.offset.is_finite() {
            return Err("scroll offset is not a finite number".into());
        }
        self.scroll.offset = state.offset;
        self.scroll.anchor_ms = state.time_ms.filter(|t| t.is_finite());
        self.last = None;
        Ok(())
    }
}

/// How much of a layer `width` wide is uncovered, from the left, when it is `shown`
/// (0.0–1.0) of the way in.
fn wipe_width(shown: f32, width: f32) -> f32 {
    ease_in_out_cubic(shown) * width
}

fn check(p: &Params) -> Result<(), String> {
    if !(p.speed.is_finite() && (0.0..=5000.0).contains(&p.speed)) {
        return Err(format!("speed must be within 0–5000, not {}", p.speed));
    }
    if let Some(size) = p.font_size
        && !(size.is_finite() && size > 0.0 && size <= 1000.0)
    {
        return Err(format!("fontSize must be within 0–1000, not {size}"));
    }
    Ok(())
}

/// The label box: its text size and metrics, and the box's width.
fn label_box(p: &Params, frame: &Frame) -> (f32, TextMetrics, f32) {
    if p.label.is_empty() {
        return (0.0, TextMetrics::default(), 0.0);
    }
    let h = frame.h();
    let (size, m) = fit_text(&p.label, h * 0.5, frame.w() * 0.3, p.font.as_deref());
    (size, m, m.width + h * 0.8)
}

fn measure(p: &Params, frame: &Frame) -> Layout {
    let run = p.run();
    let size = p.font_size.unwrap_or(frame.h() * 0.55);
    let run_metrics = if run.is_empty() {
        TextMetrics::default()
    } else {
        measure_text(&run, size, p.font.as_deref())
    };
    let (label_size, label_metrics, label_width) = label_box(p, frame);
    Layout {
        width: frame.width,
        height: frame.height,
        run,
        size,
        run_metrics,
        label_size,
        label_metrics,
        label_width,
    }
}

fn draw(p: &Params, l: &Layout, offset: f64, frame: &Frame, canvas: &mut Canvas) {
    let (w, h) = (frame.w(), frame.h());
    let font = p.font.as_deref();
    canvas.rect(0.0, 0.0, w, h, p.background_color);

    let strip_x = l.label_width;
    if l.run_metrics.width > 0.0 {
        let y = l.run_metrics.baseline_centered_on(h / 2.0);
        canvas.save();
        canvas.clip_rect(strip_x, 0.0, w - strip_x, h);
        // Within the frame's text budget, leaving room for the label.
        let budget = (MAX_FRAME_TEXT_BYTES - MAX_TEXT_BYTES) / l.run.len().max(1);
        for x in copy_positions(strip_x, w, offset, l.run_metrics.width).take(budget) {
            canvas.text_with_font(x, y, &l.run, l.size, p.text_color, font);
        }
        canvas.restore();
    }

    if l.label_width > 0.0 {
        canvas.rect(0.0, 0.0, l.label_width, h, p.accent_color);
        let m = l.label_metrics;
        canvas.text_with_font(
            (l.label_width - m.width) / 2.0,
            m.baseline_centered_on(h / 2.0),
            &p.label,
            l.label_size,
            p.label_color,
            font,
        );
    }
}

export_template!(Ticker);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_consistent() {
        stream_manager_sdk::testing::check_info::<Ticker>().unwrap();
    }

    #[test]
    fn the_schema_bounds_what_check_bounds() {
        let schema = stream_manager_sdk::params_schema::<Params>();
        let p = &schema["properties"];
        assert_eq!(
            (&p["speed"]["minimum"], &p["speed"]["maximum"]),
            (&0.into(), &5000.into())
        );
        assert_eq!(p["fontSize"]["exclusiveMinimum"], 0);
        assert_eq!(p["fontSize"]["maximum"], 1000);
        assert_eq!(p["items"]["maxItems"], 100);
        assert_eq!(p["items"]["items"]["maxLength"], 1000);
    }

    #[test]
    fn the_run_joins_items_and_ends_with_a_separator() {
        let p = Params {
            items: vec!["a".into(), " ".into(), "b".into()],
            separator: " | ".into(),
            ..Params::default()
        };
        assert_eq!(p.run(), "a | b | ");
        let p = Params {
            text: "hello".into(),
            separator: " - ".into(),
            ..Params::default()
        };
        assert_eq!(p.run(), "hello - ");
        let p = Params {
            text: "  ".into(),
            ..Params::default()
        };
        assert_eq!(p.run(), "");
        let p = Params {
            text: "é".repeat(5000),
            ..Params::default()
        };
        assert!(p.run().len() <= MAX_TEXT_BYTES);
    }

    #[test]
    fn offset_wraps() {
        let s = Scroll {
            offset: 0.0,
            anchor_ms: Some(1000.0),
            speed: 100.0,
        };
        assert_eq!(s.offset_at(1000.0, 300.0), 0.0);
        assert_eq!(s.offset_at(2000.0, 300.0), 100.0);
        assert_eq!(s.offset_at(4000.0, 300.0), 0.0);
        assert_eq!(s.offset_at(4500.0, 300.0), 50.0);
        assert_eq!(s.offset_at(4500.0, 0.0), 0.0);
        // Hours on air keep the offset within one period.
        let o = s.offset_at(1000.0 + 3.6e7, 333.3);
        assert!((0.0..333.3).contains(&o));
    }

    #[test]
    fn speed_change_carries_on_from_where_it_is() {
        let mut s = Scroll {
            offset: 0.0,
            anchor_ms: Some(0.0),
            speed: 100.0,
        };
        s.set_speed(10.0, Some(1500.0), 1000.0);
        assert_eq!(s.offset, 150.0);
        s.anchor_ms = Some(1540.0);
        assert_eq!(s.offset_at(2540.0, 1000.0), 160.0);
    }

    #[test]
    fn copies_cover_the_strip_without_a_gap() {
        let xs: Vec<f32> = copy_positions(100.0, 1000.0, 250.0, 400.0).collect();
        assert_eq!(xs, vec![-150.0, 250.0, 650.0]);
        // The last copy reaches past the right edge.
        assert!(xs.last().unwrap() + 400.0 >= 1000.0);
        assert_eq!(copy_positions(0.0, 1000.0, 0.0, 0.0).count(), 0);
        assert_eq!(copy_positions(0.0, 1e5, 0.0, 0.01).count(), 512);
    }

    #[test]
    fn snapshot_and_restore_hand_the_offset_over() {
        let mut t = Ticker::new(Params::default()).unwrap();
        assert_eq!(t.snapshot(), None);
        t.layout = Some(Layout {
            width: 1920,
            height: 64,
            run: "x".into(),
            size: 10.0,
            run_metrics: TextMetrics {
                width: 1000.0,
                ascent: 8.0,
                descent: 2.0,
            },
            label_size: 0.0,
            label_metrics: TextMetrics::default(),
            label_width: 0.0,
        });
        t.scroll.anchor_ms = Some(0.0);
        t.last_render_ms = Some(2500.0);
        let state = t.snapshot().unwrap();
        assert_eq!(
            state,
            serde_json::json!({ "offset": 300.0, "timeMs": 2500.0 })
        );
        let mut u = Ticker::new(Params::default()).unwrap();
        u.restore(state).unwrap();
        assert_eq!(u.scroll.offset_at(3500.0, 1000.0), 420.0);
        assert!(u.restore(serde_json::json!({ "offset": "x" })).is_err());
    }

    #[test]
    fn wipes_in_when_played_and_out_when_stopped() {
        let mut ticker = Ticker::new(Params::default()).unwrap();
        assert_eq!(ticker.presence.at(0.0), 0.0);
        assert_eq!(wipe_width(ticker.presence.at(0.0), 1920.0), 0.0);
        ticker.play(40.0);
        assert_eq!(wipe_width(ticker.presence.at(240.0), 1920.0), 960.0);
        assert_eq!(wipe_width(ticker.presence.at(440.0), 1920.0), 1920.0);
        ticker.stop(2000.0);
        assert_eq!(ticker.presence.at(2200.0), 0.5);
        assert_eq!(wipe_width(ticker.presence.at(2400.0), 1920.0), 0.0);
        assert_eq!(ticker.out_ms(), WIPE_MS);
    }
}
