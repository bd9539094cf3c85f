//! Lower third: a name and a title on a panel with an accent bar, near the bottom of the
//! picture.
//!
//! It slides and fades in over half a second when it appears and whenever `visible`
//! becomes true, and out when `visible` becomes false; a change that arrives mid-way
//! turns the animation round from where it is. The time of a change is taken at the next
//! render, since `configure` does not know the frame time. Between animations it answers
//! `Unchanged`.

use serde::{Deserialize, Serialize};
use stream_manager_sdk::anim::{clamp01, ease_out_cubic};
use stream_manager_sdk::{
    Canvas, Color, Frame, Info, JsonSchema, Render, Size, Template, export_template, fit_text,
};

/// How long a full slide in or out takes.
const DURATION_MS: f64 = 500.0;

// The params. The schema the host checks them against is derived from this type: the
// serde attributes, `#[schemars(...)]` for lengths and ranges, doc comments as the
// descriptions operators see.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    /// First line, large.
    #[schemars(length(max = 200))]
    name: String,
    /// Second line, smaller; empty for none.
    #[schemars(length(max = 200))]
    title: String,
    /// Slides in when it becomes true and out when it becomes false.
    visible: bool,
    accent_color: Color,
    background_color: Color,
    text_color: Color,
    /// Family of an uploaded font; null for the default font.
    #[schemars(length(max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    font: Option<String>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            name: "Jane Doe".into(),
            title: "Presenter".into(),
            visible: true,
            accent_color: Color::rgb(0xe6, 0x39, 0x46),
            background_color: Color::rgba(0x1d, 0x35, 0x57, 0xe6),
            text_color: Color::WHITE,
            font: None,
        }
    }
}

/// Where the panel is between hidden (0.0) and shown (1.0), and where it is going.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Visibility {
    /// Where it is heading: shown or hidden.
    shown: bool,
    /// Progress when the current movement started.
    from: f32,
    /// When the current movement started; `None` until the next render fixes it.
    start_ms: Option<f64>,
}

impl Visibility {
    fn new(shown: bool) -> Visibility {
        // Appearing visible animates in from hidden at the first frame.
        Visibility {
            shown,
            from: 0.0,
            start_ms: None,
        }
    }

    /// Progress (0.0 hidden – 1.0 shown) at `now_ms`.
    fn progress(&self, now_ms: f64) -> f32 {
        let start = self.start_ms.unwrap_or(now_ms);
        let moved = ((now_ms - start).max(0.0) / DURATION_MS) as f32;
        if self.shown {
            clamp01(self.from + moved)
        } else {
            clamp01(self.from - moved)
        }
    }

    /// Fixes the start of a pending movement at the first frame that sees it.
    fn start_if_pending(&mut self, now_ms: f64) {
        if self.start_ms.is_none() {
            self.start_ms = Some(now_ms);
        }
    }

    /// Heads for `shown` from wherever the panel is at the next render.
    fn set(&mut self, shown: bool, last_render_ms: Option<f64>) {
        if shown == self.shown {
            return;
        }
        // The movement so far ends at the last frame drawn; the new one starts at the next.
        self.from = match (self.start_ms, last_render_ms) {
            (Some(_), Some(t)) => self.progress(t),
            _ => self.from,
        };
        self.shown = shown;
        self.start_ms = None;
    }
}

/// Text widths at a layer height, measured once per configure.
#[derive(Clone, Debug, PartialEq)]
struct Layout {
    height: u32,
    width: u32,
    name_size: f32,
    title_size: f32,
    name_width: f32,
    title_width: f32,
}

struct LowerThird {
    params: Params,
    visibility: Visibility,
    last_render_ms: Option<f64>,
    layout: Option<Layout>,
    /// Progress and layer size of the last picture; `None` after a configure.
    last: Option<(f32, u32, u32)>,
}

impl Template for LowerThird {
    type Params = Params;

    fn info() -> Info {
        Info {
            name: "lower-third".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A name and a title that slide and fade in and out".into(),
            default_params: serde_json::to_value(Params::default()).unwrap_or_default(),
            default_size: Size::new(1280, 200),
        }
    }

    fn new(params: Params) -> Result<LowerThird, String> {
        Ok(LowerThird {
            visibility: Visibility::new(params.visible),
            params,
            last_render_ms: None,
            layout: None,
            last: None,
        })
    }

    fn configure(&mut self, params: Params) -> Result<(), String> {
        if params == self.params {
            return Ok(());
        }
        self.visibility.set(params.visible, self.last_render_ms);
        let same_text = params.name == self.params.name
            && params.title == self.params.title
            && params.font == self.params.font;
        if !same_text {
            self.layout = None;
        }
        self.params = params;
        self.last = None;
        Ok(())
    }

    fn render(&mut self, frame: &Frame, canvas: &mut Canvas) -> Render {
        self.visibility.start_if_pending(frame.time_ms);
        self.last_render_ms = Some(frame.time_ms);
        let progress = self.visibility.progress(frame.time_ms);
        let key = (progress, frame.width, frame.height);
        if self.last == Some(key) {
            return Render::Unchanged;
        }
        self.last = Some(key);
        if progress > 0.0 {
            let layout = match self.layout.take() {
                Some(l) if l.width == frame.width && l.height == frame.height => l,
                _ => measure(&self.params, frame),
            };
            draw(
                &self.params,
                &layout,
                ease_out_cubic(progress),
                frame,
                canvas,
            );
            self.layout = Some(layout);
        }
        Render::Drawn
    }
}

/// Design units: the layout is drawn for a 200-pixel-high layer and scaled.
const DESIGN_HEIGHT: f32 = 200.0;

fn measure(p: &Params, frame: &Frame) -> Layout {
    let s = frame.h() / DESIGN_HEIGHT;
    let font = p.font.as_deref();
    // Text may take the layer's width less the margins, the accent bar and padding.
    let max_text = (frame.w() - s * (40.0 * 2.0 + 12.0 + 28.0 * 2.0)).max(0.0);
    let (name_size, name) = fit_text(&p.name, 52.0 * s, max_text, font);
    let (title_size, title) = if p.title.is_empty() {
        (0.0, Default::default())
    } else {
        fit_text(&p.title, 30.0 * s, max_text, font)
    };
    Layout {
        height: frame.height,
        width: frame.width,
        name_size,
        title_size,
        name_width: name.width,
        title_width: title.width,
    }
}

fn draw(p: &Params, l: &Layout, shown: f32, frame: &Frame, canvas: &mut Canvas) {
    let s = frame.h() / DESIGN_HEIGHT;
    let font = p.font.as_deref();
    let (margin, bar, pad) = (40.0 * s, 12.0 * s, 28.0 * s);
    let has_title = !p.title.is_empty();
    let panel_h = if has_title { 128.0 * s } else { 84.0 * s };
    let panel_w = l.name_width.max(l.title_width) + 2.0 * pad;
    let y = (frame.h() - panel_h) / 2.0;

    canvas.save();
    canvas.opacity(shown);
    canvas.translate(-(1.0 - shown) * 80.0 * s, 0.0);
    canvas.rounded_rect(
        margin,
        y,
        bar + panel_w,
        panel_h,
        6.0 * s,
        p.background_color,
    );
    canvas.rect(margin, y, bar, panel_h, p.accent_color);
    let x = margin + bar + pad;
    let name_baseline = if has_title {
        y + 64.0 * s
    } else {
        y + 58.0 * s
    };
    canvas.text_with_font(x, name_baseline, &p.name, l.name_size, p.text_color, font);
    if has_title {
        canvas.text_with_font(
            x,
            y + 106.0 * s,
            &p.title,
            l.title_size,
            p.text_color.faded(0.8),
            font,
        );
    }
    canvas.restore();
}

export_template!(LowerThird);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_consistent() {
        stream_manager_sdk::testing::check_info::<LowerThird>().unwrap();
    }

    #[test]
    fn animates_in_from_the_first_frame() {
        let mut v = Visibility::new(true);
        v.start_if_pending(1000.0);
        assert_eq!(v.progress(1000.0), 0.0);
        assert_eq!(v.progress(1250.0), 0.5);
        assert_eq!(v.progress(1500.0), 1.0);
        assert_eq!(v.progress(9000.0), 1.0);
    }

    #[test]
    fn hiding_starts_at_the_next_render() {
        let mut v = Visibility::new(true);
        v.start_if_pending(0.0);
        v.set(false, Some(2000.0));
        // The configure came at some point after frame 2000; the slide out starts at the
        // next frame, 2040.
        v.start_if_pending(2040.0);
        assert_eq!(v.progress(2040.0), 1.0);
        assert_eq!(v.progress(2290.0), 0.5);
        assert_eq!(v.progress(2540.0), 0.0);
    }

    #[test]
    fn reversal_mid_way_turns_round_where_it_is() {
        let mut v = Visibility::new(true);
        v.start_if_pending(0.0);
        v.set(false, Some(100.0)); // 0.2 in
        v.start_if_pending(100.0);
        assert!((v.progress(100.0) - 0.2).abs() < 1e-6);
        v.set(true, Some(150.0)); // back to 0.1
        v.start_if_pending(150.0);
        assert!((v.progress(150.0) - 0.1).abs() < 1e-6);
        assert_eq!(v.progress(600.0), 1.0);
    }

    #[test]
    fn hidden_from_the_start_stays_hidden() {
        let mut v = Visibility::new(false);
        v.start_if_pending(0.0);
        assert_eq!(v.progress(0.0), 0.0);
        assert_eq!(v.progress(5000.0), 0.0);
    }
}
