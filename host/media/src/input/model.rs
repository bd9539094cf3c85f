//! The `Input` resource: what an operator configures (persisted), and what the server
//! reports about it (state and stats, read-only). Credentials in RTSP URLs and RTMP stream
//! keys are masked in everything meant for display.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest URL or path of an input.
pub const MAX_URL_LEN: usize = 2048;
/// Largest number of inputs.
pub const MAX_INPUTS: usize = 64;

/// Where an input's pictures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// Pulled from an RTSP camera or server.
    Rtsp,
    /// Pushed by a publisher into the embedded RTMP server at `input/<streamKey>`.
    Rtmp,
    /// A media file, played in real time.
    File,
}

impl InputKind {
    /// `rtsp`, `rtmp` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rtsp => "rtsp",
            Self::Rtmp => "rtmp",
            Self::File => "file",
        }
    }
}

/// How RTSP media travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Interleaved in the RTSP connection (the default: works through NAT and firewalls).
    #[default]
    Tcp,
    /// RTP over UDP.
    Udp,
}

/// An input's sound in the program mix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputAudio {
    /// Gain in dB, -60..=12. Default 0.
    #[serde(default)]
    pub gain_db: f32,
    /// Left out of the mix. Default false.
    #[serde(default)]
    pub muted: bool,
}

impl Default for InputAudio {
    fn default() -> Self {
        Self {
            gain_db: 0.0,
            muted: false,
        }
    }
}

/// What an operator configures about an input (as stored; secrets unmasked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputConfig {
    /// 1–64 of `[A-Za-z0-9_-]`; generated when absent on creation.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub id: String,
    /// Display name (at most 256 bytes); slates show it. Defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `rtsp`, `rtmp` or `file`.
    pub kind: InputKind,
    /// `rtsp://[user:pass@]host[:port]/path` (credentials masked on read), or for `file`
    /// the id of a media upload or a path relative to the media directory. None for `rtmp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// RTSP transport, `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// `file`: start again at the end. Default true.
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub looping: Option<bool>,
    /// `rtmp`: the key a publisher pushes to (`rtmp://host:1935/input/<streamKey>`);
    /// generated, shown once at creation, masked afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_key: Option<String>,
    /// Sound in the program mix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<InputAudio>,
    /// A disabled input is kept but not connected (state `idle`). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// What an input is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputState {
    /// Disabled, or an RTMP input no publisher has pushed to yet.
    #[default]
    Idle,
    /// Opening the source, waiting for its first picture.
    Connecting,
    /// Pictures arriving.
    Playing,
    /// Connected, but no picture for the stall timeout.
    Stalled,
    /// Waiting to try again after a failure.
    Reconnecting,
    /// Refused for good (unauthorized, not found, unsupported codec): retried only after a
    /// change or a long back-off.
    Failed,
    /// A file that played to its end without `loop` (its last frame is held).
    Ended,
}

impl InputState {
    /// The state's name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Playing => "playing",
            Self::Stalled => "stalled",
            Self::Reconnecting => "reconnecting",
            Self::Failed => "failed",
            Self::Ended => "ended",
        }
    }

    /// A number for the `stream_input_state` gauge (the order of the states above).
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// Measurements of an input (read-only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputStats {
    /// Width of the decoded pictures.
    pub width: u32,
    /// Height of the decoded pictures.
    pub height: u32,
    /// Pictures decoded per second, over the last second or so.
    pub fps: f64,
    /// Compressed bit rate received, in kbit/s.
    pub bitrate_kbps: f64,
    /// Pictures decoded since the input was created.
    pub frames_decoded: u64,
    /// Pictures decoded but never shown (the program ran slower than the source, or the
    /// conversion fell behind).
    pub frames_dropped: u64,
    /// Times the source was opened again after a failure.
    pub reconnects: u64,
    /// Why the last attempt failed (credentials masked).
    pub last_error: Option<String>,
    /// From a picture's arrival to it being ready for the render thread, in ms.
    pub latency_ms: f64,
}

/// An input as the API shows it: its configuration (secrets masked), state and stats.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// The configuration.
    #[serde(flatten)]
    pub config: InputConfig,
    /// What it is doing.
    pub state: InputState,
    /// Measurements.
    pub stats: InputStats,
}

/// A WS `inputUpdate`: an input's new state, with its stats.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputUpdate {
    /// The input.
    pub id: String,
    /// Its new state.
    pub state: InputState,
    /// Its stats.
    pub stats: InputStats,
}

/// Why an input configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InputError {
    /// JSON field at fault.
    pub field: &'static str,
    /// What is allowed.
    pub reason: String,
}

fn refuse(field: &'static str, reason: impl Into<String>) -> InputError {
    InputError {
        field,
        reason: reason.into(),
    }
}

/// Whether `s` is 1–64 of `[A-Za-z0-9_-]`.
pub fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl InputConfig {
    /// Whether the input should be connected.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// Whether a file input loops.
    pub fn loops(&self) -> bool {
        self.looping.unwrap_or(true)
    }

    /// The name slates show.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// Checks every field that does not need to look anything up (a file input's media is
    /// checked by the caller).
    pub fn validate(&self) -> Result<(), InputError> {
        if !valid_id(&self.id) {
            return Err(refuse("id", "1 to 64 of A-Z a-z 0-9 _ -"));
        }
        if self
            .name
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > 256)
        {
            return Err(refuse("name", "1 to 256 bytes"));
        }
        if let Some(a) = &self.audio
            && !(a.gain_db.is_finite() && (-60.0..=12.0).contains(&a.gain_db))
        {
            return Err(refuse("audio.gainDb", "-60..=12"));
        }
        let only = |field: &'static str, set: bool, kind: &str| {
            if set {
                Err(refuse(field, format!("only for {kind} inputs")))
            } else {
                Ok(())
            }
        };
        match self.kind {
            InputKind::Rtsp => {
                let url = self.url.as_deref().ok_or_else(|| {
                    refuse("url", "required: rtsp://[user:pass@]host[:port]/path")
                })?;
                check_rtsp_url(url)?;
                only("loop", self.looping.is_some(), "file")?;
                only("streamKey", self.stream_key.is_some(), "rtmp")?;
            }
            InputKind::Rtmp => {
                only("url", self.url.is_some(), "rtsp and file")?;
                only("transport", self.transport.is_some(), "rtsp")?;
                only("loop", self.looping.is_some(), "file")?;
                if let Some(k) = &self.stream_key
                    && (!(16..=128).contains(&k.len()) || !valid_id(&k[..k.len().min(64)]))
                {
                    return Err(refuse("streamKey", "16 to 128 of A-Z a-z 0-9 _ -"));
                }
            }
            InputKind::File => {
                let url = self
                    .url
                    .as_deref()
                    .ok_or_else(|| refuse("url", "required: a media id or a path"))?;
                check_media_path(url)?;
                only("transport", self.transport.is_some(), "rtsp")?;
                only("streamKey", self.stream_key.is_some(), "rtmp")?;
            }
        }
        Ok(())
    }

    /// The configuration as clients may see it: RTSP credentials and the stream key masked.
    pub fn masked(&self) -> Self {
        Self {
            url: self.url.as_deref().map(|u| match self.kind {
                InputKind::Rtsp => mask_rtsp_url(u),
                _ => u.to_string(),
            }),
            stream_key: self.stream_key.as_ref().map(|_| "****".into()),
            ..self.clone()
        }
    }
}

/// Checks an RTSP URL: scheme, host, length.
pub fn check_rtsp_url(s: &str) -> Result<url::Url, InputError> {
    if s.len() > MAX_URL_LEN {
        return Err(refuse("url", format!("at most {MAX_URL_LEN} bytes")));
    }
    let url = url::Url::parse(s).map_err(|e| refuse("url", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "rtsp" | "rtsps") {
        return Err(refuse(
            "url",
            format!("scheme {:?} is not rtsp:// or rtsps://", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("url", "missing host"));
    }
    Ok(url)
}

/// Checks a file input's `url`: a media id, or a relative path that stays inside the media
/// directory.
pub fn check_media_path(s: &str) -> Result<(), InputError> {
    let bad = s.is_empty()
        || s.len() > MAX_URL_LEN
        || s.starts_with('/')
        || s.contains('\\')
        || s.contains('\0')
        || s.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(refuse(
            "url",
            "a media id or a relative path under the media directory (no `..`)",
        ));
    }
    Ok(())
}

/// An RTSP URL with its user name, password and any secret-looking query values replaced by
/// `****`; anything that does not parse is masked whole.
pub fn mask_rtsp_url(s: &str) -> String {
    let Ok(mut url) = url::Url::parse(s) else {
        return "****".into();
    };
    if !url.username().is_empty() {
        let _ = url.set_username("****");
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("****"));
    }
    if url.query().is_some() {
        let secret = |k: &str| {
            let k = k.to_ascii_lowercase();
            [
                "pass", "pwd", "token", "key", "auth", "user", "secret", "sig",
            ]
            .iter()
            .any(|s| k.contains(s))
        };
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "****".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// A fresh random stream key: 24 characters of `[A-Za-z0-9]` (143 bits).
pub fn new_stream_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 24];
    random_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Fills `out` from the operating system's random source.
fn random_bytes(out: &mut [u8]) {
    use std::io::Read as _;
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(out));
    if filled.is_err() {
        // No /dev/urandom: the standard library's randomly keyed hasher still gives bits
        // no client can predict.
        use std::hash::{BuildHasher as _, Hasher as _};
        for chunk in out.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            let bytes = h.finish().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtsp(url: &str) -> InputConfig {
        InputConfig {
            id: "cam".into(),
            name: None,
            kind: InputKind::Rtsp,
            url: Some(url.into()),
            transport: None,
            looping: None,
            stream_key: None,
            audio: None,
            enabled: None,
        }
    }

    #[test]
    fn credentials_are_masked() {
        assert_eq!(
            mask_rtsp_url("rtsp://admin:hunter2@10.0.0.5:554/stream1?channel=1&password=x"),
            "rtsp://****:****@10.0.0.5:554/stream1?channel=1&password=****"
        );
        assert_eq!(mask_rtsp_url("rtsp://cam/live"), "rtsp://cam/live");
        assert_eq!(mask_rtsp_url("not a url"), "****");
        let masked = rtsp("rtsp://u:p@cam/live").masked();
        assert_eq!(masked.url.as_deref(), Some("rtsp://****:****@cam/live"));
    }

    #[test]
    fn validation_names_the_field() {
        assert!(rtsp("rtsp://cam:554/live").validate().is_ok());
        assert_eq!(rtsp("http://cam/live").validate().unwrap_err().field, "url");
        assert_eq!(rtsp("rtsp:///live").validate().unwrap_err().field, "url");
        let mut c = rtsp("rtsp://cam/x");
        c.looping = Some(true);
        assert_eq!(c.validate().unwrap_err().field, "loop");
        c = rtsp("rtsp://cam/x");
        c.audio = Some(InputAudio {
            gain_db: 13.0,
            muted: false,
        });
        assert_eq!(c.validate().unwrap_err().field, "audio.gainDb");
        let file = |u: &str| InputConfig {
            kind: InputKind::File,
            url: Some(u.into()),
            ..rtsp("rtsp://x/y")
        };
        assert!(file("clips/intro.mp4").validate().is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../b", "a//b", ""] {
            assert_eq!(file(bad).validate().unwrap_err().field, "url", "{bad}");
        }
        let key = new_stream_key();
        assert_eq!(key.len(), 24);
        assert_ne!(key, new_stream_key());
    }
}
