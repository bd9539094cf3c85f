//! Scoreboard: two teams with their colours and scores, the period, and a running game
//! clock.
//!
//! The game clock runs inside the template, from the frame time, so it keeps time to the
//! frame without the operator sending ticks. Live updates that leave the `clock` params as
//! they were (a goal, a new period) leave it running. Changing `clock.seconds` sets it;
//! changing only `clock.running` pauses or resumes it where it is; changing only
//! `clock.direction` turns it round where it is. Like any change, these take effect at
//! the next frame. A hot swap hands the clock over (`snapshot`/`restore`), so a new
//! version carries on where the old one was.
//!
//! It drops in from above and fades in over 400 ms when played, and rises and fades out
//! when stopped; the clock runs on regardless.

use serde::{Deserialize, Serialize};
use stream_manager_sdk::anim::{Presence, ease_out_cubic};
use stream_manager_sdk::schemars::Schema;
use stream_manager_sdk::{
    Canvas, Color, Frame, Info, JsonSchema, Render, Size, Template, export_template, fit_text,
};

#[derive(Clone, Debug, PartialEq, Serialize)]
struct Team {
    name: String,
    score: u32,
    color: Color,
}

/// A team as given in params: what is left out takes that side's default, so
/// `{"score": 2}` keeps the home team's name and colour defaults.
///
/// Its schema is inlined in `home` and `away`, each with that side's defaults (see
/// [`team_defaults`]). A field may be left out but not be `null`: the schema says the
/// plain type, and the fields have no default of their own.
#[derive(Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(inline)]
struct TeamParams {
    #[schemars(with = "String", length(max = 64))]
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[schemars(with = "u32", range(max = 99_999))]
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<u32>,
    #[schemars(with = "Color")]
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<Color>,
}

impl TeamParams {
    fn or(self, default: Team) -> Team {
        Team {
            name: self.name.unwrap_or(default.name),
            score: self.score.unwrap_or(default.score),
            color: self.color.unwrap_or(default.color),
        }
    }
}

fn home_team<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Team, D::Error> {
    Ok(TeamParams::deserialize(d)?.or(Params::default().home))
}

fn away_team<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Team, D::Error> {
    Ok(TeamParams::deserialize(d)?.or(Params::default().away))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Direction {
    #[default]
    Down,
    Up,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct ClockParams {
    /// Seconds on the clock when these params are set.
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    seconds: f64,
    running: bool,
    direction: Direction,
}

impl Default for ClockParams {
    fn default() -> ClockParams {
        ClockParams {
            seconds: 600.0,
            running: false,
            direction: Direction::Down,
        }
    }
}

// The params; the schema the host checks them against is derived from this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = team_defaults)]
struct Params {
    #[serde(deserialize_with = "home_team")]
    #[schemars(with = "TeamParams")]
    home: Team,
    #[serde(deserialize_with = "away_team")]
    #[schemars(with = "TeamParams")]
    away: Team,
    /// e.g. "1st", "HT"; empty for none.
    #[schemars(length(max = 32))]
    period: String,
    /// The game clock. Changing seconds sets it; changing only running pauses or resumes
    /// it where it is.
    clock: ClockParams,
    show_clock: bool,
    background_color: Color,
    text_color: Color,
    /// Family of an uploaded font; null for the default font.
    #[schemars(length(max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    font: Option<String>,
}

/// Gives the fields of `home` and `away` in the schema that side's defaults (the two
/// share the type `TeamParams`, whose fields have none), from the team's own default.
fn team_defaults(schema: &mut Schema) {
    for side in ["home", "away"] {
        let Some(team) = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut(side))
            .and_then(|t| t.as_object_mut())
        else {
            continue;
        };
        let Some(serde_json::Value::Object(default)) = team.get("default").cloned() else {
            continue;
        };
        let Some(fields) = team.get_mut("properties").and_then(|p| p.as_object_mut()) else {
            continue;
        };
        for (name, value) in default {
            if let Some(field) = fields.get_mut(&name).and_then(|f| f.as_object_mut()) {
                field.insert("default".into(), value);
            }
        }
    }
}

impl Default for Params {
    fn default() -> Params {
        Params {
            home: Team {
                name: "HOME".into(),
                score: 0,
                color: Color::rgb(0x1d, 0x4e, 0xd8),
            },
            away: Team {
                name: "AWAY".into(),
                score: 0,
                color: Color::rgb(0xdc, 0x26, 0x26),
            },
            period: "1st".into(),
            clock: ClockParams::default(),
            show_clock: true,
            background_color: Color::rgba(0x11, 0x18, 0x27, 0xe6),
            text_color: Color::WHITE,
            font: None,
        }
    }
}

/// The largest number of seconds the clock shows (99:59:59).
const MAX_SECONDS: f64 = 359_999.0;

/// A change to the game clock waiting for the next frame, which gives it its time.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Pending {
    /// The value to set, or `None` to carry on from where the clock is.
    seconds: Option<f64>,
    running: bool,
    direction: Direction,
}

/// The game clock: `seconds` at `anchor_ms`, moving one second per second from there
/// while running, down to 0 or up to 99:59:59.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GameClock {
    seconds: f64,
    anchor_ms: f64,
    running: bool,
    direction: Direction,
    pending: Option<Pending>,
}

impl GameClock {
    fn new(p: &ClockParams) -> GameClock {
        GameClock {
            seconds: p.seconds,
            anchor_ms: 0.0,
            running: false,
            direction: p.direction,
            pending: Some(Pending {
                seconds: Some(p.seconds),
                running: p.running,
                direction: p.direction,
            }),
        }
    }

    /// Seconds on the clock at `now_ms`, pending changes aside.
    fn value_at(&self, now_ms: f64) -> f64 {
        if !self.running {
            return self.seconds;
        }
        let elapsed = (now_ms - self.anchor_ms).max(0.0) / 1000.0;
        match self.direction {
            Direction::Down => (self.seconds - elapsed).max(0.0),
            Direction::Up => (self.seconds + elapsed).min(MAX_SECONDS),
        }
    }

    /// Records a change of the clock params from `old` to `new`, to apply at the next
    /// frame. Unchanged params change nothing.
    fn update(&mut self, old: &ClockParams, new: &ClockParams) {
        if old == new {
            return;
        }
        let earlier = self.pending.and_then(|p| p.seconds);
        let seconds = if new.seconds != old.seconds {
            Some(new.seconds)
        } else {
            earlier
        };
        self.pending = Some(Pending {
            seconds,
            running: new.running,
            direction: new.direction,
        });
    }

    /// Applies a pending change at `now_ms`, the time of the frame being drawn.
    fn tick(&mut self, now_ms: f64) {
        if let Some(p) = self.pending.take() {
            self.seconds = p.seconds.unwrap_or_else(|| self.value_at(now_ms));
            self.anchor_ms = now_ms;
            self.running = p.running;
            self.direction = p.direction;
        }
    }

    /// The clock as it will stand at the next frame after `now_ms`: value and running.
    fn state_at(&self, now_ms: f64) -> (f64, bool) {
        match self.pending {
            Some(p) => (
                p.seconds.unwrap_or_else(|| self.value_at(now_ms)),
                p.running,
            ),
            None => (self.value_at(now_ms), self.running),
        }
    }
}

/// Opacity and vertical offset of the board `shown` (0.0–1.0) of the way in, on a layer
/// `height` high: it drops from half its height above.
fn entrance(shown: f32, height: f32) -> (f32, f32) {
    let eased = ease_out_cubic(shown);
    (eased, -(1.0 - eased) * height * 0.5)
}

/// "MM:SS", or "H:MM:SS" from an hour up. Counting down rounds up (it reads 00:00 only
/// at the end), counting up rounds down.
fn format_clock(seconds: f64, direction: Direction) -> String {
    let secs = match direction {
        Direction::Down => seconds.ceil(),
        Direction::Up => seconds.floor(),
    }
    .clamp(0.0, MAX_SECONDS) as u32;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// What `snapshot` hands over.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockState {
    /// Seconds on the clock at `time_ms`.
    seconds: f64,
    running: bool,
    /// The frame time the value belongs to (frame time runs on across a hot swap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_ms: Option<f64>,
}

/// How long coming in or going out takes.
const IN_OUT_MS: f64 = 400.0;

struct Scoreboard {
    params: Params,
    clock: GameClock,
    /// In (1.0) or out (0.0), by play and stop.
    presence: Presence,
    last_render_ms: Option<f64>,
    /// Clock text, layer size and presence of the last picture; `None` after a configure.
    last: Option<(String, u32, u32, f32)>,
}

impl Template for Scoreboard {
    type Params = Params;

    fn info() -> Info {
        Info {
            name: "scoreboard".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Two teams, their scores, the period and a running game clock".into(),
            default_params: serde_json::to_value(Params::default()).unwrap_or_default(),
            default_size: Size::new(960, 120),
        }
    }

    fn new(params: Params) -> Result<Scoreboard, String> {
        check_clock(&params.clock)?;
        Ok(Scoreboard {
            clock: GameClock::new(&params.clock),
            params,
            presence: Presence::new(IN_OUT_MS, IN_OUT_MS),
            last_render_ms: None,
            last: None,
        })
    }

    fn configure(&mut self, params: Params) -> Result<(), String> {
        check_clock(&params.clock)?;
        if params == self.params {
            return Ok(());
        }
        self.clock.update(&self.params.clock, &params.clock);
        self.params = params;
        self.last = None;
        Ok(())
    }

    fn render(&mut self, frame: &Frame, canvas: &mut Canvas) -> Render {
        self.clock.tick(frame.time_ms);
        self.last_render_ms = Some(frame.time_ms);
        let text = if self.params.show_clock {
            format_clock(self.clock.value_at(frame.time_ms), self.clock.direction)
        } else {
            String::new()
        };
        let shown = self.presence.at(frame.time_ms);
        let key = (text, frame.width, frame.height, shown);
        if self.last.as_ref() == Some(&key) {
            return Render::Unchanged;
        }
        if shown > 0.0 {
            let (opacity, dy) = entrance(shown, frame.h());
            canvas.save();
            canvas.opacity(opacity);
            canvas.translate(0.0, dy);
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
        IN_OUT_MS
    }

    fn snapshot(&self) -> Option<serde_json::Value> {
        // Before the first frame the clock is still the pending one from the params.
        let now = self.last_render_ms;
        let (seconds, running) = self.clock.state_at(now.unwrap_or(0.0));
        let time_ms = if self.clock.pending.is_none() {
            now
        } else {
            None
        };
        serde_json::to_value(ClockState {
            seconds,
            running,
            time_ms,
        })
        .ok()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let state: ClockState =
            serde_json::from_value(state).map_err(|e| format!("invalid clock state: {e}"))?;
        if !(state.seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&state.seconds)) {
            return Err(format!("clock seconds out of range: {}", state.seconds));
        }
        let direction = self.params.clock.direction;
        match state.time_ms.filter(|t| t.is_finite()) {
            Some(time_ms) => {
                self.clock = GameClock {
                    seconds: state.seconds,
                    anchor_ms: time_ms,
                    running: state.running,
                    direction,
                    pending: None,
                };
            }
            None => {
                self.clock.pending = Some(Pending {
                    seconds: Some(state.seconds),
                    running: state.running,
                    direction,
                });
            }
        }
        self.last = None;
        Ok(())
    }
}

fn check_clock(c: &ClockParams) -> Result<(), String> {
    if c.seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&c.seconds) {
        Ok(())
    } else {
        Err(format!(
            "clock.seconds must be within 0–{MAX_SECONDS}, not {}",
            c.seconds
        ))
    }
}

fn draw(p: &Params, clock: &str, frame: &Frame, canvas: &mut Canvas) {
    let (w, h) = (frame.w(), frame.h());
    let font = p.font.as_deref();
    let radius = h * 0.1;
    canvas.rounded_rect(0.0, 0.0, w, h, radius, p.background_color);

    let side_w = w * 0.38;
    let score_w = w * 0.1;
    draw_team(&p.home, 0.0, side_w, score_w, true, p, frame, canvas);
    draw_team(
        &p.away,
        w - side_w,
        side_w,
        score_w,
        false,
        p,
        frame,
        canvas,
    );

    let (mid_x, mid_w) = (side_w, w - 2.0 * side_w);
    let max_w = mid_w * 0.9;
    let center = mid_x + mid_w / 2.0;
    let has_period = !p.period.is_empty();
    if !clock.is_empty() {
        let clock_y = if has_period { h * 0.42 } else { h * 0.5 };
        let (size, m) = fit_text(clock, h * 0.42, max_w, font);
        canvas.text_with_font(
            center - m.width / 2.0,
            m.baseline_centered_on(clock_y),
            clock,
            size,
            p.text_color,
            font,
        );
    }
    if has_period {
        let (period_y, max_size) = if clock.is_empty() {
            (h * 0.5, h * 0.36)
        } else {
            (h * 0.8, h * 0.2)
        };
        let (size, m) = fit_text(&p.period, max_size, max_w, font);
        canvas.text_with_font(
            center - m.width / 2.0,
            m.baseline_centered_on(period_y),
            &p.period,
            size,
            p.text_color.faded(0.75),
            font,
        );
    }
}

/// One team's side: a panel in its colour with the name, and the score in a box at the
/// inner end (towards the clock).
#[allow(clippy::too_many_arguments)]
fn draw_team(
    team: &Team,
    x: f32,
    width: f32,
    score_w: f32,
    home: bool,
    p: &Params,
    frame: &Frame,
    canvas: &mut Canvas,
) {
    let h = frame.h();
    let font = p.font.as_deref();
    let inset = h * 0.1;
    canvas.rounded_rect(
        x + inset,
        inset,
        width - 2.0 * inset,
        h - 2.0 * inset,
        h * 0.08,
        team.color,
    );

    let score_x = if home {
        x + width - inset - score_w
    } else {
        x + inset
    };
    canvas.rect(
        score_x,
        inset,
        score_w,
        h - 2.0 * inset,
        Color::rgba(0, 0, 0, 90),
    );
    let score = team.score.to_string();
    let (size, m) = fit_text(&score, h * 0.5, score_w * 0.85, font);
    canvas.text_with_font(
        score_x + (score_w - m.width) / 2.0,
        m.baseline_centered_on(h / 2.0),
        &score,
        size,
        p.text_color,
        font,
    );

    if team.name.is_empty() {
        return;
    }
    let pad = h * 0.15;
    let name_w = (width - 2.0 * inset - score_w - 2.0 * pad).max(0.0);
    let (size, m) = fit_text(&team.name, h * 0.34, name_w, font);
    let name_x = if home {
        x + inset + pad
    } else {
        x + width - inset - pad - m.width
    };
    canvas.text_with_font(
        name_x,
        m.baseline_centered_on(h / 2.0),
        &team.name,
        size,
        p.text_color,
        font,
    );
}

export_template!(Scoreboard);

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(seconds: f64, running: bool, direction: Direction) -> ClockParams {
        ClockParams {
            seconds,
            running,
            direction,
        }
    }

    #[test]
    fn info_is_consistent() {
        stream_manager_sdk::testing::check_info::<Scoreboard>().unwrap();
    }

    #[test]
    fn the_schema_gives_each_side_its_defaults() {
        let schema = stream_manager_sdk::params_schema::<Params>();
        let (home, away) = (&schema["properties"]["home"], &schema["properties"]["away"]);
        assert_eq!(home["default"]["name"], "HOME");
        assert_eq!(home["properties"]["name"]["default"], "HOME");
        assert_eq!(away["properties"]["name"]["default"], "AWAY");
        assert_eq!(away["properties"]["color"]["default"], "#dc2626");
        assert_eq!(home["additionalProperties"], false);
        // Left out is fine, null is not.
        assert_eq!(home["properties"]["name"]["type"], "string");
        assert!(home.get("required").is_none(), "{home}");
    }

    #[test]
    fn a_partial_team_keeps_that_sides_defaults() {
        let p: Params =
            serde_json::from_str(r#"{"home":{"score":2},"away":{"name":"Visitors"}}"#).unwrap();
        let d = Params::default();
        assert_eq!(p.home.score, 2);
        assert_eq!(p.home.color, d.home.color);
        assert_eq!(p.home.name, d.home.name);
        assert_eq!(p.away.name, "Visitors");
        assert_eq!(p.away.color, d.away.color);
        assert!(serde_json::from_str::<Params>(r#"{"home":{"goals":2}}"#).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_clock(600.0, Direction::Down), "10:00");
        assert_eq!(format_clock(599.2, Direction::Down), "10:00");
        assert_eq!(format_clock(0.4, Direction::Down), "00:01");
        assert_eq!(format_clock(0.0, Direction::Down), "00:00");
        assert_eq!(format_clock(59.9, Direction::Up), "00:59");
        assert_eq!(format_clock(3600.0, Direction::Up), "1:00:00");
        assert_eq!(format_clock(1e12, Direction::Up), "99:59:59");
        assert_eq!(format_clock(-3.0, Direction::Down), "00:00");
    }

    #[test]
    fn runs_down_from_the_first_frame_and_stops_at_zero() {
        let mut c = GameClock::new(&clock(10.0, true, Direction::Down));
        c.tick(5000.0);
        assert_eq!(c.value_at(5000.0), 10.0);
        assert_eq!(c.value_at(8500.0), 6.5);
        assert_eq!(c.value_at(60_000.0), 0.0);
    }

    #[test]
    fn runs_up() {
        let mut c = GameClock::new(&clock(0.0, true, Direction::Up));
        c.tick(0.0);
        assert_eq!(c.value_at(90_000.0), 90.0);
    }

    #[test]
    fn same_clock_params_keep_it_running() {
        let p = clock(600.0, true, Direction::Down);
        let mut c = GameClock::new(&p);
        c.tick(0.0);
        c.update(&p, &p);
        c.tick(10_000.0);
        assert_eq!(c.value_at(10_000.0), 590.0);
    }

    #[test]
    fn pause_and_resume_keep_the_value() {
        let running = clock(600.0, true, Direction::Down);
        let paused = clock(600.0, false, Direction::Down);
        let mut c = GameClock::new(&running);
        c.tick(0.0);
        c.update(&running, &paused);
        c.tick(30_000.0);
        assert_eq!(c.value_at(30_000.0), 570.0);
        assert_eq!(c.value_at(90_000.0), 570.0);
        c.update(&paused, &running);
        c.tick(100_000.0);
        assert_eq!(c.value_at(110_000.0), 560.0);
    }

    #[test]
    fn new_seconds_set_the_clock() {
        let a = clock(600.0, true, Direction::Down);
        let b = clock(300.0, true, Direction::Down);
        let mut c = GameClock::new(&a);
        c.tick(0.0);
        c.update(&a, &b);
        // A second update before the next frame that only pauses keeps the new value.
        let b_paused = clock(300.0, false, Direction::Down);
        c.update(&b, &b_paused);
        c.tick(50_000.0);
        assert_eq!(c.value_at(80_000.0), 300.0);
    }

    #[test]
    fn live_score_update_keeps_the_clock() {
        let mut p = Params {
            clock: clock(600.0, true, Direction::Down),
            ..Params::default()
        };
        let mut s = Scoreboard::new(p.clone()).unwrap();
        s.clock.tick(0.0);
        s.last_render_ms = Some(0.0);
        p.home.score = 1;
        s.configure(p).unwrap();
        s.clock.tick(20_000.0);
        assert_eq!(s.clock.value_at(20_000.0), 580.0);
    }

    #[test]
    fn snapshot_and_restore_hand_the_clock_over() {
        let p = Params {
            clock: clock(600.0, true, Direction::Down),
            ..Params::default()
        };
        let mut old = Scoreboard::new(p.clone()).unwrap();
        old.clock.tick(0.0);
        old.last_render_ms = Some(45_000.0);
        let state = old.snapshot().unwrap();
        assert_eq!(
            state,
            serde_json::json!({ "seconds": 555.0, "running": true, "timeMs": 45_000.0 })
        );

        let mut new = Scoreboard::new(p).unwrap();
        new.restore(state).unwrap();
        new.clock.tick(46_000.0);
        assert_eq!(new.clock.value_at(46_000.0), 554.0);

        // Without a time the value applies at the next frame.
        new.restore(serde_json::json!({ "seconds": 100, "running": false }))
            .unwrap();
        new.clock.tick(50_000.0);
        assert_eq!(new.clock.value_at(99_000.0), 100.0);

        assert!(
            new.restore(serde_json::json!({ "seconds": -1, "running": true }))
                .is_err()
        );
        assert!(new.restore(serde_json::json!("nonsense")).is_err());
    }

    #[test]
    fn snapshot_before_the_first_frame_has_no_time() {
        let s = Scoreboard::new(Params::default()).unwrap();
        assert_eq!(
            s.snapshot(),
            Some(serde_json::json!({ "seconds": 600.0, "running": false }))
        );
    }

    #[test]
    fn drops_in_when_played_and_rises_out_when_stopped() {
        let mut board = Scoreboard::new(Params::default()).unwrap();
        assert_eq!(board.presence.at(0.0), 0.0);
        board.play(0.0);
        assert_eq!(entrance(board.presence.at(0.0), 120.0), (0.0, -60.0));
        let (opacity, dy) = entrance(board.presence.at(200.0), 120.0);
        assert!(opacity > 0.5 && opacity < 1.0 && dy < 0.0 && dy > -60.0);
        assert_eq!(entrance(board.presence.at(400.0), 120.0), (1.0, 0.0));
        board.stop(1000.0);
        assert_eq!(board.presence.at(1400.0), 0.0);
        assert_eq!(board.out_ms(), IN_OUT_MS);
    }
}
