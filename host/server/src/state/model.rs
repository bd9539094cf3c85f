//! The public data types of the stream (`StreamState`, `StreamConfig`, metrics) and the
//! validation of a configuration. Field names are part of the public contract: fields may be
//! added, never renamed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use sm_media::config::{AudioMode, Destination, EncoderKind, PreviewConfig, RtmpUrl, mask_url};

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
    /// Mean render time of one frame over the last second (the last `targetFPS` frames), in
    /// milliseconds.
    pub average_render_time: f64,
    /// When the stream went live, in milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_time: Option<u64>,
    /// The last fault of the pipeline, or `null`.
    pub error: Option<String>,
    /// The video encoder while live; with `encoder: auto`, also the encoders tried before
    /// it and why each did not open.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub encoder: Option<sm_media::video_encoder::EncoderSelection>,
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
            encoder: None,
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

/// The stream's configuration, served by `GET /api/stream/config`, changed by `PATCH`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamConfig {
    /// Frame width in pixels, even, 16..=7680. Default 1920.
    #[schema(minimum = 16, maximum = 7680, multiple_of = 2)]
    pub width: u32,
    /// Frame height in pixels, even, 16..=4320. Default 1080.
    #[schema(minimum = 16, maximum = 4320, multiple_of = 2)]
    pub height: u32,
    /// Frames per second, 1..=120. Default 30.
    #[serde(rename = "targetFPS")]
    #[schema(minimum = 1, maximum = 120)]
    pub target_fps: u32,
    /// Video bit rate in kbit/s, 100..=100000. Default 4500.
    #[schema(minimum = 100, maximum = 100_000)]
    pub video_bitrate_kbps: u32,
    /// Video encoder. Default `auto`.
    pub encoder: EncoderKind,
    /// Encoder preset (x264 names: ultrafast … veryslow). Default `veryfast`.
    #[schema(pattern = "^(ultrafast|superfast|veryfast|faster|fast|medium|slow|slower|veryslow)$")]
    pub preset: String,
    /// Seconds between keyframes, 0.25..=20. Default 2.
    #[schema(minimum = 0.25, maximum = 20.0)]
    pub keyframe_interval_sec: f64,
    /// Audio track: `mix` (the inputs' sound, mixed; silence while there is none),
    /// `silent` or `none`. Default `mix`.
    pub audio: AudioMode,
    /// AAC bit rate in kbit/s, 32..=512. Default 160.
    #[serde(default = "default_audio_bitrate")]
    #[schema(minimum = 32, maximum = 512)]
    pub audio_bitrate_kbps: u32,
    /// Where the stream is pushed. Default none.
    #[schema(max_items = 16)]
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
            audio: AudioMode::Mix,
            audio_bitrate_kbps: default_audio_bitrate(),
            destinations: Vec::new(),
            preview: PreviewConfig::default(),
        }
    }
}

fn default_audio_bitrate() -> u32 {
    160
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
        check_range("audioBitrateKbps", self.audio_bitrate_kbps, 32, 512)?;
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
            RtmpUrl::check_configured(&d.url).map_err(|reason| ConfigError::InvalidUrl {
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

    /// What the encoder is opened with.
    pub fn encoder_settings(&self) -> sm_media::encoder::EncoderSettings {
        sm_media::encoder::EncoderSettings {
            width: self.width,
            height: self.height,
            target_fps: self.target_fps,
            video_bitrate_kbps: self.video_bitrate_kbps,
            encoder: self.encoder,
            preset: self.preset.clone(),
            gop_frames: self.gop_frames(),
            audio: self.audio,
            audio_bitrate_kbps: self.audio_bitrate_kbps,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        StreamConfig::default().validate().unwrap();
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
