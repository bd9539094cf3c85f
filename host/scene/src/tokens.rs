//! The `{{…}}` tokens of text layers (frame, time, date), expanded per frame.

/// Values of the `{{…}}` tokens of text layers at one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokens {
    /// The scene's frame number.
    pub frame: u64,
    /// Frames per second (for `{{timecode}}`).
    pub fps: u32,
    /// Wall-clock time, seconds since the Unix epoch (UTC).
    pub unix_secs: u64,
    /// Milliseconds within that second.
    pub millis: u32,
}

impl Tokens {
    /// The tokens now, at `frame` of a stream at `fps`.
    pub fn now(frame: u64, fps: u32) -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            frame,
            fps,
            unix_secs: since.as_secs(),
            millis: since.subsec_millis(),
        }
    }

    /// Whether `content` has a token (its text then changes as the stream runs).
    pub fn any_in(content: &str) -> bool {
        ["{{time}}", "{{date}}", "{{timecode}}", "{{frame}}"]
            .iter()
            .any(|t| content.contains(t))
    }

    /// Appends `content` with its tokens replaced to `out` (no allocation once `out` has
    /// grown to fit).
    pub fn expand(&self, content: &str, out: &mut String) {
        use std::fmt::Write as _;
        let secs = self.unix_secs % 86_400;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let mut rest = content;
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            let token = ["{{time}}", "{{date}}", "{{timecode}}", "{{frame}}"]
                .into_iter()
                .find(|t| after.starts_with(t));
            let _ = match token {
                Some("{{time}}") => write!(out, "{h:02}:{m:02}:{s:02}"),
                Some("{{date}}") => {
                    let (y, mo, d) = civil_date(self.unix_secs / 86_400);
                    write!(out, "{y:04}-{mo:02}-{d:02}")
                }
                Some("{{timecode}}") => {
                    let ff = u64::from(self.millis) * u64::from(self.fps.max(1)) / 1000;
                    write!(out, "{h:02}:{m:02}:{s:02}:{ff:02}")
                }
                Some(_) => write!(out, "{}", self.frame),
                None => {
                    out.push_str("{{");
                    rest = &after[2..];
                    continue;
                }
            };
            rest = &after[token.map_or(2, str::len)..];
        }
        out.push_str(rest);
    }
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_date(days: u64) -> (i64, u32, u32) {
    // Howard Hinnant's days_from_civil, inverted.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
