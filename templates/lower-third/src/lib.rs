//! Lower third: a name and a title on a panel with an accent bar, near the bottom of the
//! picture.
//!
//! It slides in from the left and fades in over half a second when it is played (its
//! layer goes on air) and whenever `visible` becomes true while it plays, and out when it
//! is stopped or `visible` becomes false; a change that arrives mid-way turns the
//! animation round from where it is. Play and stop come with their time; a change of
//! `visible` takes effect at the next render, since `configure` does not know the frame
//! time. Between animations it answers `Unchanged`.

use serde::{Deserialize, Serialize};
use stream_manager_sdk::anim::{Presence, ease_out_cubic};
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
    /// Slides in when it becomes true and out when it becomes false (while played; a
    /// stopped lower third is hidden whatever this says).
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
    /// Whether it is played (on air).
    on_air: bool,
    /// Where the panel is between hidden (0.0) and shown (1.0): shown while on air and
    /// `visible`.
    presence: Presence,
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
            params,
            on_air: false,
            presence: Presence::new(DURATION_MS, DURATION_MS),
            layout: None,
            last: None,
        })
    }

    fn configure(&mut self, params: Params) -> Result<(), String> {
        if params == self.params {
            return Ok(());
        }
        self.presence.set(self.on_air && params.visible, None);
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
        let progress = self.presence.at(frame.time_ms);
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

    fn play(&mut self, at_ms: f64) {
        self.on_air = true;
        self.presence.set(self.params.visible, Some(at_ms));
    }

    fn stop(&mut self, at_ms: f64) {
        self.on_air = false;
        self.presence.set(false, Some(at_ms));
    }

    fn out_ms(&self) -> f64 {
        DURATION_MS
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

    fn lower_third(visible: bool) -> LowerThird {
        LowerThird::new(Params {
            visible,
            ..Params::default()
        })
        .unwrap()
    }

    fn with_visible(visible: bool) -> Params {
        Params {
            visible,
            ..Params::default()
        }
    }

    #[test]
    fn hidden_until_played_then_slides_in() {
        let mut lt = lower_third(true);
        assert_eq!(lt.presence.at(0.0), 0.0);
        assert_eq!(lt.presence.at(900.0), 0.0);
        lt.play(1000.0);
        assert_eq!(lt.presence.at(1000.0), 0.0);
        assert_eq!(lt.presence.at(1250.0), 0.5);
        assert_eq!(lt.presence.at(1500.0), 1.0);
        assert_eq!(lt.presence.at(9000.0), 1.0);
    }

    #[test]
    fn stop_slides_out_from_its_time() {
        let mut lt = lower_third(true);
        lt.play(0.0);
        assert_eq!(lt.presence.at(2000.0), 1.0);
        lt.stop(2040.0);
        assert_eq!(lt.presence.at(2040.0), 1.0);
        assert_eq!(lt.presence.at(2290.0), 0.5);
        assert_eq!(lt.presence.at(2540.0), 0.0);
        assert_eq!(lt.out_ms(), DURATION_MS);
        // Played again: in from where it is.
        lt.play(3000.0);
        assert_eq!(lt.presence.at(3250.0), 0.5);
    }

    #[test]
    fn a_replayed_play_shows_what_it_reached() {
        // A new instance (after a hot swap) is told of a play long past: no slide in.
        let mut lt = lower_third(true);
        lt.play(0.0);
        assert_eq!(lt.presence.at(60_000.0), 1.0);
    }

    #[test]
    fn visible_hides_and_shows_at_the_next_render_while_playing() {
        let mut lt = lower_third(true);
        lt.play(0.0);
        assert_eq!(lt.presence.at(2000.0), 1.0);
        lt.configure(with_visible(false)).unwrap();
        // The configure came at some point after frame 2000; the slide out starts at the
        // next frame, 2040.
        assert_eq!(lt.presence.at(2040.0), 1.0);
        assert_eq!(lt.presence.at(2290.0), 0.5);
        assert_eq!(lt.presence.at(2540.0), 0.0);
        // Reversal mid-way turns round where it is.
        lt.configure(with_visible(true)).unwrap();
        assert_eq!(lt.presence.at(2600.0), 0.0);
        assert_eq!(lt.presence.at(2700.0), 0.2);
        lt.configure(with_visible(false)).unwrap();
        assert!((lt.presence.at(2750.0) - 0.2).abs() < 1e-6);
        assert!((lt.presence.at(2800.0) - 0.1).abs() < 1e-6);
    }

    #[test]
    fn not_visible_stays_hidden_when_played_and_visible_waits_for_play() {
        let mut lt = lower_third(false);
        lt.play(0.0);
        assert_eq!(lt.presence.at(5000.0), 0.0);
        lt.stop(6000.0);
        lt.configure(with_visible(true)).unwrap();
        // Stopped: visible alone does not show it.
        assert_eq!(lt.presence.at(7000.0), 0.0);
        lt.play(8000.0);
        assert_eq!(lt.presence.at(8500.0), 1.0);
    }
}
