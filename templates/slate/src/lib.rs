//! Slate: a full-frame card ("We'll be right back") with a message, a smaller line under
//! it, and three dots that pulse in turn below.
//!
//! The dots are the only thing that moves; their brightness is computed from the frame
//! time and rounded to whole alpha steps, and the template answers `Unchanged` whenever
//! the rounded picture is the same (always, with `animate: false`). It fades in over
//! 300 ms when played and out when stopped.

use serde::{Deserialize, Serialize};
use stream_manager_sdk::anim::{Presence, ease_in_out_cubic, pulse};
use stream_manager_sdk::{
    Canvas, Color, Fill, Frame, Info, JsonSchema, Render, Size, Template, export_template, fit_text,
};

// The params; the schema the host checks them against is derived from this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    #[schemars(length(max = 200))]
    message: String,
    /// A smaller line under the message; empty for none.
    #[schemars(length(max = 400))]
    submessage: String,
    /// Whether the dots pulse.
    animate: bool,
    background_color: Color,
    /// Colour of the rule and the dots.
    accent_color: Color,
    text_color: Color,
    /// Family of an uploaded font; null for the default font.
    #[schemars(length(max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    font: Option<String>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            message: "We'll be right back".into(),
            submessage: "Stay tuned".into(),
            animate: true,
            background_color: Color::rgb(0x0b, 0x13, 0x20),
            accent_color: Color::rgb(0xe6, 0x39, 0x46),
            text_color: Color::WHITE,
            font: None,
        }
    }
}

/// One pulse of a dot takes this long; the three dots follow each other a sixth of it
/// apart.
const PULSE_MS: f64 = 1800.0;

/// Alpha of each of the three dots at `time_ms`: from dim (70) to full (255).
fn dot_alphas(time_ms: f64, animate: bool) -> [u8; 3] {
    std::array::from_fn(|i| {
        let level = if animate {
            pulse(time_ms - i as f64 * PULSE_MS / 6.0, PULSE_MS)
        } else {
            1.0
        };
        (70.0 + 185.0 * level).round() as u8
    })
}

/// How long fading in or out takes.
const FADE_MS: f64 = 300.0;

struct Slate {
    params: Params,
    /// Faded in (1.0) or out (0.0) by play and stop.
    presence: Presence,
    /// Dot alphas, layer size and presence of the last picture; `None` after a configure.
    last: Option<([u8; 3], u32, u32, f32)>,
}

impl Template for Slate {
    type Params = Params;

    fn info() -> Info {
        Info {
            name: "slate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A full-frame \"We'll be right back\" card with a gentle animation".into(),
            default_params: serde_json::to_value(Params::default()).unwrap_or_default(),
            default_size: Size::new(1920, 1080),
        }
    }

    fn new(params: Params) -> Result<Slate, String> {
        Ok(Slate {
            params,
            presence: Presence::new(FADE_MS, FADE_MS),
            last: None,
        })
    }

    fn configure(&mut self, params: Params) -> Result<(), String> {
        if params != self.params {
            self.params = params;
            self.last = None;
        }
        Ok(())
    }

    fn render(&mut self, frame: &Frame, canvas: &mut Canvas) -> Render {
        let shown = self.presence.at(frame.time_ms);
        let key = (
            dot_alphas(frame.time_ms, self.params.animate),
            frame.width,
            frame.height,
            shown,
        );
        if self.last == Some(key) {
            return Render::Unchanged;
        }
        if shown > 0.0 {
            canvas.save();
            canvas.opacity(ease_in_out_cubic(shown));
            draw(&self.params, key.0, frame, canvas);
            canvas.restore();
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
        FADE_MS
    }
}

fn draw(p: &Params, dots: [u8; 3], frame: &Frame, canvas: &mut Canvas) {
    let (w, h) = (frame.w(), frame.h());
    let font = p.font.as_deref();
    let bg = p.background_color;
    let lighter = bg.mix(Color::WHITE, 0.08);
    canvas.rect(
        0.0,
        0.0,
        w,
        h,
        Fill::radial(
            w / 2.0,
            h * 0.4,
            w.max(h) * 0.75,
            [(0.0, lighter), (1.0, bg)],
        ),
    );

    let max_w = w * 0.84;
    let (size, m) = fit_text(&p.message, h * 0.085, max_w, font);
    let message_y = h * 0.44;
    canvas.text_with_font(
        (w - m.width) / 2.0,
        message_y,
        &p.message,
        size,
        p.text_color,
        font,
    );

    let rule_w = w * 0.12;
    let rule_h = (h * 0.006).max(2.0);
    let rule_y = message_y + h * 0.045;
    canvas.rounded_rect(
        (w - rule_w) / 2.0,
        rule_y,
        rule_w,
        rule_h,
        rule_h / 2.0,
        p.accent_color,
    );

    if !p.submessage.is_empty() {
        let (size, m) = fit_text(&p.submessage, h * 0.04, max_w, font);
        canvas.text_with_font(
            (w - m.width) / 2.0,
            rule_y + h * 0.09,
            &p.submessage,
            size,
            p.text_color.faded(0.75),
            font,
        );
    }

    let r = h * 0.012;
    let gap = r * 4.0;
    let dots_y = h * 0.72;
    for (i, alpha) in dots.into_iter().enumerate() {
        let cx = w / 2.0 + (i as f32 - 1.0) * gap;
        canvas.circle(
            cx,
            dots_y,
            r,
            p.accent_color.faded(f32::from(alpha) / 255.0),
        );
    }
}

export_template!(Slate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_consistent() {
        stream_manager_sdk::testing::check_info::<Slate>().unwrap();
    }

    #[test]
    fn dots_pulse_in_turn_and_repeat() {
        let a = dot_alphas(0.0, true);
        assert_eq!(a[0], 70);
        assert!(a[1] > a[0] || a[2] > a[0]);
        assert_eq!(dot_alphas(PULSE_MS, true), a);
        assert_eq!(dot_alphas(PULSE_MS / 2.0, true)[0], 255);
        assert_eq!(dot_alphas(12_345.0, false), [255; 3]);
    }

    #[test]
    fn still_dots_answer_unchanged() {
        let p = Params {
            animate: false,
            ..Params::default()
        };
        let mut s = Slate::new(p).unwrap();
        s.play(0.0);
        s.last = Some(([255; 3], 1920, 1080, 1.0));
        let frame = Frame {
            frame: 7,
            time_ms: 700.0,
            wall_clock_ms: 0,
            utc_offset_minutes: 0,
            fps: 30,
            width: 1920,
            height: 1080,
        };
        assert_eq!(s.render(&frame, &mut Canvas::new()), Render::Unchanged);
    }

    #[test]
    fn fades_in_when_played_and_out_when_stopped() {
        let mut slate = Slate::new(Params::default()).unwrap();
        assert_eq!(slate.presence.at(0.0), 0.0);
        slate.play(0.0);
        assert_eq!(slate.presence.at(150.0), 0.5);
        assert_eq!(slate.presence.at(300.0), 1.0);
        // Stopped half-way back in after a stop: turns round from where it is.
        slate.stop(500.0);
        assert_eq!(slate.presence.at(650.0), 0.5);
        slate.play(650.0);
        assert_eq!(slate.presence.at(725.0), 0.75);
        assert_eq!(slate.presence.at(800.0), 1.0);
        assert_eq!(slate.out_ms(), FADE_MS);
    }
}
