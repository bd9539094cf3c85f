//! Clock: the time of day (the server's local time, or a fixed UTC offset) or a countdown
//! to a moment, in a rounded box with an optional label above.
//!
//! It fades in over 300 ms when played and out when stopped. It redraws only when the
//! displayed text changes (once a second, or once a minute without seconds) or while it
//! fades, and answers `Unchanged` in between.

use serde::{Deserialize, Serialize};
use stream_manager_sdk::anim::{Presence, ease_out_cubic};
use stream_manager_sdk::{
    Canvas, Color, Frame, Info, JsonSchema, Render, Size, Template, export_template, fit_text,
};

/// What the clock shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// The time of day.
    #[default]
    Time,
    /// The time left until `target`.
    Countdown,
}

// The params; the schema the host checks them against is derived from this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    /// "time": the time of day; "countdown": the time left until target.
    mode: Mode,
    /// Countdown target, milliseconds since the Unix epoch (UTC).
    #[schemars(range(min = 0, max = 8_640_000_000_000_000_i64))]
    target: i64,
    show_seconds: bool,
    /// Time zone of the time of day as an offset from UTC in minutes; null for the
    /// server's local time.
    #[schemars(range(min = -1080, max = 1080))]
    #[serde(skip_serializing_if = "Option::is_none")]
    utc_offset_minutes: Option<i32>,
    /// A line above the time, e.g. "Starts in"; empty for none.
    #[schemars(length(max = 200))]
    label: String,
    text_color: Color,
    label_color: Color,
    background_color: Color,
    /// Family of an uploaded font; null for the default font.
    #[schemars(length(max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    font: Option<String>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            mode: Mode::Time,
            target: 0,
            show_seconds: true,
            utc_offset_minutes: None,
            label: String::new(),
            text_color: Color::WHITE,
            label_color: Color::rgba(255, 255, 255, 179),
            background_color: Color::rgba(0, 0, 0, 179),
            font: None,
        }
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// How long fading in or out takes.
const FADE_MS: f64 = 300.0;

/// "HH:MM:SS" (or "HH:MM") of the time of day at `local_ms`, milliseconds since the
/// epoch already shifted to local time.
fn format_time_of_day(local_ms: i64, show_seconds: bool) -> String {
    let secs = local_ms.rem_euclid(MS_PER_DAY) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if show_seconds {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}")
    }
}

/// "HH:MM:SS" (or "HH:MM") left of `remaining_ms`, rounded up so that it reads zero
/// exactly when the target is reached, and zero after it. Hours may exceed 99.
fn format_countdown(remaining_ms: i64, show_seconds: bool) -> String {
    let remaining = remaining_ms.max(0);
    if show_seconds {
        let secs = div_ceil(remaining, 1000);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        let mins = div_ceil(remaining, 60_000);
        let (h, m) = (mins / 60, mins % 60);
        format!("{h:02}:{m:02}")
    }
}

/// `n / d` rounded up, for `n >= 0` and `d > 0` (without overflow near `i64::MAX`).
fn div_ceil(n: i64, d: i64) -> i64 {
    n / d + i64::from(n % d != 0)
}

/// What the clock reads for this frame.
fn display_text(params: &Params, frame: &Frame) -> String {
    match params.mode {
        Mode::Time => {
            let offset = params
                .utc_offset_minutes
                .unwrap_or(frame.utc_offset_minutes);
            let local = frame
                .wall_clock_ms
                .saturating_add(i64::from(offset) * 60_000);
            format_time_of_day(local, params.show_seconds)
        }
        Mode::Countdown => format_countdown(
            params.target.saturating_sub(frame.wall_clock_ms),
            params.show_seconds,
        ),
    }
}

struct Clock {
    params: Params,
    /// Faded in (1.0) or out (0.0) by play and stop.
    presence: Presence,
    /// The text, layer size and presence of the last picture; `None` after a configure.
    last: Option<(String, u32, u32, f32)>,
}

impl Template for Clock {
    type Params = Params;

    fn info() -> Info {
        Info {
            name: "clock".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The time of day or a countdown to a moment".into(),
            default_params: serde_json::to_value(Params::default()).unwrap_or_default(),
            default_size: Size::new(480, 160),
        }
    }

    fn new(params: Params) -> Result<Clock, String> {
        Ok(Clock {
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
        let text = display_text(&self.params, frame);
        let key = (text, frame.width, frame.height, shown);
        if self.last.as_ref() == Some(&key) {
            return Render::Unchanged;
        }
        if shown > 0.0 {
            canvas.save();
            canvas.opacity(ease_out_cubic(shown));
            draw(&self.params, &key.0, frame, canvas);
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

fn draw(p: &Params, text: &str, frame: &Frame, canvas: &mut Canvas) {
    let (w, h) = (frame.w(), frame.h());
    let font = p.font.as_deref();
    canvas.rounded_rect(0.0, 0.0, w, h, h * 0.12, p.background_color);
    let max_width = w * 0.88;
    if p.label.is_empty() {
        let (size, m) = fit_text(text, h * 0.6, max_width, font);
        let y = m.baseline_centered_on(h * 0.5);
        canvas.text_with_font((w - m.width) / 2.0, y, text, size, p.text_color, font);
    } else {
        let (label_size, lm) = fit_text(&p.label, h * 0.2, max_width, font);
        canvas.text_with_font(
            (w - lm.width) / 2.0,
            lm.baseline_centered_on(h * 0.24),
            &p.label,
            label_size,
            p.label_color,
            font,
        );
        let (size, m) = fit_text(text, h * 0.48, max_width, font);
        let y = m.baseline_centered_on(h * 0.64);
        canvas.text_with_font((w - m.width) / 2.0, y, text, size, p.text_color, font);
    }
}

export_template!(Clock);

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(wall_clock_ms: i64, utc_offset_minutes: i32) -> Frame {
        Frame {
            frame: 0,
            time_ms: 0.0,
            wall_clock_ms,
            utc_offset_minutes,
            fps: 30,
            width: 480,
            height: 160,
        }
    }

    #[test]
    fn info_is_consistent() {
        stream_manager_sdk::testing::check_info::<Clock>().unwrap();
    }

    #[test]
    fn time_of_day() {
        // 2024-01-01T13:04:05.678Z
        let t = 1_704_114_245_678;
        assert_eq!(format_time_of_day(t, true), "13:04:05");
        assert_eq!(format_time_of_day(t, false), "13:04");
        assert_eq!(format_time_of_day(0, true), "00:00:00");
        assert_eq!(format_time_of_day(-1, true), "23:59:59");
        assert_eq!(format_time_of_day(MS_PER_DAY - 1, true), "23:59:59");
    }

    #[test]
    fn offsets_apply() {
        let t = 1_704_114_245_678; // 13:04:05 UTC
        let p = Params::default();
        assert_eq!(display_text(&p, &frame(t, 60)), "14:04:05");
        assert_eq!(display_text(&p, &frame(t, -330)), "07:34:05");
        let p = Params {
            utc_offset_minutes: Some(-600),
            ..Params::default()
        };
        assert_eq!(display_text(&p, &frame(t, 60)), "03:04:05");
    }

    #[test]
    fn countdown() {
        assert_eq!(format_countdown(3_723_000, true), "01:02:03");
        assert_eq!(format_countdown(3_722_001, true), "01:02:03");
        assert_eq!(format_countdown(1, true), "00:00:01");
        assert_eq!(format_countdown(0, true), "00:00:00");
        assert_eq!(format_countdown(-5_000, true), "00:00:00");
        assert_eq!(format_countdown(30_000, false), "00:01");
        assert_eq!(format_countdown(0, false), "00:00");
        assert_eq!(format_countdown(360_000_000, true), "100:00:00");
        assert_eq!(format_countdown(i64::MAX, true), "2562047788015:12:56");
        let p = Params {
            mode: Mode::Countdown,
            target: 10_000,
            ..Params::default()
        };
        assert_eq!(display_text(&p, &frame(0, 0)), "00:00:10");
        assert_eq!(display_text(&p, &frame(20_000, 0)), "00:00:00");
    }

    #[test]
    fn unchanged_until_the_text_changes() {
        let mut clock = Clock::new(Params::default()).unwrap();
        // The first render measures text through the host, which a native test lacks;
        // mark the picture of 00:00:00 as drawn instead.
        // Played long enough before frame time 0 to be fully faded in.
        clock.play(-FADE_MS);
        clock.last = Some(("00:00:00".into(), 480, 160, 1.0));
        let mut canvas = Canvas::new();
        assert_eq!(clock.render(&frame(999, 0), &mut canvas), Render::Unchanged);
        clock.configure(Params::default()).unwrap();
        assert!(clock.last.is_some(), "the same params keep the picture");
        let changed = Params {
            label: "Local".into(),
            ..Params::default()
        };
        clock.configure(changed).unwrap();
        assert!(clock.last.is_none(), "new params redraw");
    }

    #[test]
    fn params_reject_unknown_fields_and_bad_colours() {
        let e = serde_json::from_str::<Params>(r##"{"colour":"#fff"}"##).unwrap_err();
        assert!(e.to_string().contains("unknown field"));
        let e = serde_json::from_str::<Params>(r##"{"textColor":"#ff"}"##).unwrap_err();
        assert!(e.to_string().contains("invalid colour"));
        let p: Params =
            serde_json::from_str(r#"{"mode":"countdown","target":5,"utcOffsetMinutes":null}"#)
                .unwrap();
        assert_eq!(p.mode, Mode::Countdown);
    }

    #[test]
    fn fades_in_when_played_and_out_when_stopped() {
        let mut clock = Clock::new(Params::default()).unwrap();
        assert_eq!(clock.presence.at(0.0), 0.0);
        clock.play(100.0);
        assert_eq!(clock.presence.at(100.0), 0.0);
        assert_eq!(clock.presence.at(250.0), 0.5);
        assert_eq!(clock.presence.at(400.0), 1.0);
        clock.stop(1000.0);
        assert_eq!(clock.presence.at(1150.0), 0.5);
        assert_eq!(clock.presence.at(1300.0), 0.0);
        assert_eq!(clock.out_ms(), FADE_MS);
        // Params do not play or stop it.
        clock.configure(Params::default()).unwrap();
        assert_eq!(clock.presence.at(2000.0), 0.0);
    }
}
