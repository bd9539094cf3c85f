//! The public data types of the stream (`StreamState`, `StreamConfig`, metrics) and the
//! validation of a configuration. Field names are part of the public contract: fields may be
//! added, never renamed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Live state of the stream, as served by `GET /api/stream/state` and `stateUpdate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamState {
    /// The stream is running (encoding and sending), paused or not.
    pub is_live: bool,
    /// The stream is paused: outputs stay connected and the last frame repeats.
    pub is_paused: bool,
    /// Frames per second measured over the last second.
    pub fps: f64,
    /// The configured frame rate.
    #[serde(rename = "targetFPS")]
    pub target_fps: u32,
    /// Frames rendered since the stream started.
    pub frame_count: u64,
    /// Frames lost since the stream started (late clock ticks, full queues).
    pub dropped_frames: u64,
    /// Mean render time of one frame, in milliseconds.
    pub average_render_time: f64,
    /// When the stream went live, in milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_time: Option<u64>,
    /// The last fault of the pipeline, or `null`.
    pub error: Option<String>,
}

impl StreamState {
    /// The state of a stream that is not running.
    pub fn idle(target_fps: u32) -> Self {
        Self {
            is_live: false,
            is_paused: false,
            fps: 0.0,
            target_fps,
            frame_count: 0,
            dropped_frames: 0,
            average_render_time: 0.0,
            start_time: None,
            error: None,
        }
    }
}

/// Measurements of the running stream, sent as `metricsUpdate` about once a second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamMetrics {
    /// Frames encoded per second over the last interval.
    pub fps: f64,
    /// Output bit rate (video + audio) over the last interval, in bits per second.
    pub bitrate: f64,
    /// Frames lost since the stream started.
    pub dropped_frames: u64,
    /// Mean time from a rendered frame to its encoded packet, in milliseconds.
    pub encoder_latency: f64,
    /// Free share of the frame queue between renderer and encoder, 0..1 (1 = empty queue).
    pub buffer_health: f64,
    /// CPU used by the process over the last interval, percent of all cores (0..100).
    pub cpu_usage: f64,
    /// Resident memory of the process, in bytes.
    pub memory_usage: u64,
}

/// Video encoders the configuration accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EncoderKind {
    /// The best available encoder; today libx264.
    #[serde(rename = "auto")]
    Auto,
    /// Software H.264 (x264).
    #[serde(rename = "libx264")]
    Libx264,
    /// NVIDIA NVENC.
    #[serde(rename = "h264_nvenc")]
    Nvenc,
    /// VA-API.
    #[serde(rename = "h264_vaapi")]
    Vaapi,
    /// Intel Quick Sync.
    #[serde(rename = "h264_qsv")]
    Qsv,
}

impl EncoderKind {
    /// The FFmpeg encoder name to open.
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            Self::Auto | Self::Libx264 => "libx264",
            Self::Nvenc => "h264_nvenc",
            Self::Vaapi => "h264_vaapi",
            Self::Qsv => "h264_qsv",
        }
    }
}

/// Whether the stream carries an audio track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AudioMode {
    /// A silent AAC track (most platforms require audio).
    Silent,
    /// Video only.
    None,
}

/// One RTMP destination the stream is pushed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Identifier chosen by the operator: 1–64 of `[A-Za-z0-9_-]`, unique.
    pub id: String,
    /// `rtmp://host[:port]/app/streamKey` or `rtmps://…`; the key is masked on read.
    pub url: String,
    /// Disabled destinations are kept but not pushed to. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl Destination {
    /// Whether the stream is pushed to this destination.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

/// Live preview settings (JPEG frames over the WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewConfig {
    /// Whether preview frames are produced. Default true.
    pub enabled: bool,
    /// Preview frames per second, 1..=30. Default 5.
    pub fps: u32,
    /// Preview width in pixels, 16..=1920. Default 640.
    pub width: u32,
    /// JPEG quality, 1..=100. Default 70.
    pub quality: u32,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            fps: 5,
            width: 640,
            quality: 70,
        }
    }
}

/// The stream's configuration, served by `GET /api/stream/config`, changed by `PATCH`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamConfig {
    /// Frame width in pixels, even, 16..=7680. Default 1920.
    pub width: u32,
    /// Frame height in pixels, even, 16..=4320. Default 1080.
    pub height: u32,
    /// Frames per second, 1..=120. Default 30.
    #[serde(rename = "targetFPS")]
    pub target_fps: u32,
    /// Video bit rate in kbit/s, 100..=100000. Default 4500.
    pub video_bitrate_kbps: u32,
    /// Video encoder. Default `auto`.
    pub encoder: EncoderKind,
    /// Encoder preset (x264 names: ultrafast … veryslow). Default `veryfast`.
    pub preset: String,
    /// Seconds between keyframes, 0.25..=20. Default 2.
    pub keyframe_interval_sec: f64,
    /// Audio track. Default `silent`.
    pub audio: AudioMode,
    /// Where the stream is pushed. Default none.
    pub destinations: Vec<Destination>,
    /// Live preview settings.
    pub preview: PreviewConfig,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            width: 1920,
            height: 1080,
            target_fps: 30,
            video_bitrate_kbps: 4500,
            encoder: EncoderKind::Auto,
            preset: "veryfast".into(),
            keyframe_interval_sec: 2.0,
            audio: AudioMode::Silent,
            destinations: Vec::new(),
            preview: PreviewConfig::default(),
        }
    }
}

/// x264 preset names.
pub const PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

/// Why a configuration was refused; each names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value outside its allowed range or set.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// JSON path of the field, e.g. `destinations[1].id`.
        field: String,
        /// What is allowed.
        reason: String,
    },
    /// A destination URL that is not a usable RTMP URL.
    #[error("{field}: {reason}")]
    InvalidUrl {
        /// JSON path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn out_of_range(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::OutOfRange {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(out_of_range(
            field,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(())
}

impl StreamConfig {
    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("width", self.width, 16, 7680)?;
        check_range("height", self.height, 16, 4320)?;
        if !self.width.is_multiple_of(2) {
            return Err(out_of_range("width", "must be even"));
        }
        if !self.height.is_multiple_of(2) {
            return Err(out_of_range("height", "must be even"));
        }
        check_range("targetFPS", self.target_fps, 1, 120)?;
        check_range("videoBitrateKbps", self.video_bitrate_kbps, 100, 100_000)?;
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(out_of_range(
                "preset",
                format!(
                    "unknown preset {:?}; one of {}",
                    self.preset,
                    PRESETS.join(", ")
                ),
            ));
        }
        if !self.keyframe_interval_sec.is_finite() {
            return Err(out_of_range(
                "keyframeIntervalSec",
                "must be a finite number",
            ));
        }
        check_range(
            "keyframeIntervalSec",
            self.keyframe_interval_sec,
            0.25,
            20.0,
        )?;
        check_range("preview.fps", self.preview.fps, 1, 30)?;
        check_range("preview.width", self.preview.width, 16, 1920)?;
        check_range("preview.quality", self.preview.quality, 1, 100)?;
        if self.destinations.len() > 16 {
            return Err(out_of_range("destinations", "at most 16 destinations"));
        }
        for (i, d) in self.destinations.iter().enumerate() {
            let field = format!("destinations[{i}].id");
            let id_ok = (1..=64).contains(&d.id.len())
                && d.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok {
                return Err(out_of_range(field, "1 to 64 of A-Z a-z 0-9 _ -"));
            }
            if self.destinations[..i].iter().any(|o| o.id == d.id) {
                return Err(out_of_range(field, format!("duplicate id {:?}", d.id)));
            }
            RtmpUrl::parse(&d.url).map_err(|reason| ConfigError::InvalidUrl {
                field: format!("destinations[{i}].url"),
                reason,
            })?;
        }
        Ok(())
    }

    /// Number of frames between keyframes.
    pub fn gop_frames(&self) -> u32 {
        ((self.keyframe_interval_sec * f64::from(self.target_fps)).round() as u32).max(1)
    }

    /// This configuration with every destination's stream key masked.
    pub fn masked(&self) -> Self {
        let mut c = self.clone();
        for d in &mut c.destinations {
            d.url = mask_url(&d.url);
        }
        c
    }

    /// Whether `other` differs only in what applies without restarting the pipeline
    /// (destinations and preview).
    pub fn same_pipeline(&self, other: &Self) -> bool {
        let strip = |c: &Self| Self {
            destinations: Vec::new(),
            preview: PreviewConfig::default(),
            ..c.clone()
        };
        strip(self) == strip(other)
    }
}

/// Why a merge patch could not be applied: an unknown field or a value of the wrong type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PatchError {
    /// `unknown_field`, `invalid_type`, or `out_of_range` for a string outside its set.
    pub code: &'static str,
    /// Names the field.
    pub message: String,
}

impl StreamConfig {
    /// This config with a JSON merge patch (RFC 7386) applied; not yet validated.
    pub fn merged(&self, patch: &serde_json::Value) -> Result<Self, PatchError> {
        if !patch.is_object() {
            return Err(PatchError {
                code: "invalid_type",
                message: "the patch must be a JSON object".into(),
            });
        }
        let mut doc = serde_json::to_value(self).expect("config serializes");
        json_patch::merge(&mut doc, patch);
        from_json(doc)
    }
}

/// Decodes a JSON value into `T`, naming the field at fault: an unknown field is
/// `unknown_field`, a string outside an enum's set or a number outside its type (a negative
/// size) `out_of_range`, anything else of the wrong shape `invalid_type`.
pub fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, PatchError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let code = if inner.starts_with("unknown field") {
            "unknown_field"
        } else if inner.starts_with("unknown variant") || inner.starts_with("invalid value") {
            // A string outside an enum's set (encoder, audio), or a number outside its type's
            // range (a negative size): the JSON type is right, the value is not.
            "out_of_range"
        } else {
            "invalid_type"
        };
        PatchError {
            code,
            message: format!("{path}: {inner}"),
        }
    })
}

/// A parsed destination URL: where to connect, which app and which stream key to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `true` for `rtmps://`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// TCP port (1935 for rtmp, 443 for rtmps by default).
    pub port: u16,
    /// Application path, e.g. `live` or `live2/sub`.
    pub app: String,
    /// Stream key (last path segment, with any query string).
    pub key: String,
    /// The `tcUrl` sent in `connect`: the URL without the stream key.
    pub tc_url: String,
}

impl RtmpUrl {
    /// Parses `rtmp[s]://host[:port]/app[/…]/key[?query]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > 2048 {
            return Err("URL longer than 2048 bytes".into());
        }
        let url = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
        let tls = match url.scheme() {
            "rtmp" => false,
            "rtmps" => true,
            other => return Err(format!("scheme {other:?} is not rtmp:// or rtmps://")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("missing host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(if tls { 443 } else { 1935 });
        let path = url.path().trim_matches('/');
        let (app, key) = path
            .rsplit_once('/')
            .ok_or("needs an application and a stream key: rtmp://host/app/key")?;
        if app.is_empty() || key.is_empty() {
            return Err("needs an application and a stream key: rtmp://host/app/key".into());
        }
        let key = match url.query() {
            Some(q) => format!("{key}?{q}"),
            None => key.to_string(),
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        Ok(Self {
            tls,
            tc_url: format!("{}://{authority}/{app}", url.scheme()),
            host,
            port,
            app: app.to_string(),
            key,
        })
    }
}

/// Replaces the stream key (last path segment and query) and any password with `****`.
/// Anything that does not parse as a URL is masked whole.
pub fn mask_url(s: &str) -> String {
    let Ok(mut url) = url::Url::parse(s) else {
        return "****".into();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("****"));
    }
    url.set_query(None);
    let path = url.path().trim_end_matches('/').to_string();
    match path.rsplit_once('/') {
        Some((head, last)) if !last.is_empty() && !head.is_empty() => {
            url.set_path(&format!("{head}/****"));
        }
        _ => {}
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        StreamConfig::default().validate().unwrap();
    }

    #[test]
    fn rtmp_url_parts() {
        let u = RtmpUrl::parse("rtmp://a.example.com/live2/abc-123").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.app.as_str(), u.key.as_str()),
            ("a.example.com", 1935, "live2", "abc-123")
        );
        assert_eq!(u.tc_url, "rtmp://a.example.com/live2");
        let u = RtmpUrl::parse("rtmps://h:4443/a/b/key?x=1").unwrap();
        assert!(u.tls);
        assert_eq!(
            (u.port, u.app.as_str(), u.key.as_str()),
            (4443, "a/b", "key?x=1")
        );
        assert!(RtmpUrl::parse("http://h/live/x").is_err());
        assert!(RtmpUrl::parse("rtmp://h/live").is_err());
        assert!(RtmpUrl::parse("rtmp:///live/x").is_err());
    }

    #[test]
    fn masking_hides_key_and_password() {
        assert_eq!(mask_url("rtmp://h:1/live/secret"), "rtmp://h:1/live/****");
        assert_eq!(
            mask_url("rtmp://u:pw@h/live/secret?k=v"),
            "rtmp://u:****@h/live/****"
        );
        assert_eq!(mask_url("garbage secret"), "****");
    }

    #[test]
    fn validation_names_the_field() {
        let c = StreamConfig {
            width: 641,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().starts_with("width"));
        let c = StreamConfig {
            target_fps: 0,
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("targetFPS")
        );
        let d = Destination {
            id: "a".into(),
            url: "rtmp://h/live/x".into(),
            enabled: None,
        };
        let c = StreamConfig {
            destinations: vec![d.clone(), d],
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("duplicate"));
    }
}
