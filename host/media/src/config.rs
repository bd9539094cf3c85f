//! The media plane's share of the stream configuration: encoders, audio mode, destinations,
//! preview settings, and RTMP URLs with their stream keys masked for display.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Video encoders the configuration accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EncoderKind {
    /// The first hardware encoder that opens (NVENC, Quick Sync, VA-API, in that order),
    /// else libx264: see `video_encoder`.
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
    /// The program mix of the inputs' sound (silence while there is none).
    Mix,
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
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
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
    #[schema(minimum = 1, maximum = 30)]
    pub fps: u32,
    /// Preview width in pixels, 16..=1920. Default 640.
    #[schema(minimum = 16, maximum = 1920)]
    pub width: u32,
    /// JPEG quality, 1..=100. Default 70.
    #[schema(minimum = 1, maximum = 100)]
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

/// Whether `s` is exactly one `${NAME}` reference.
fn is_reference(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(valid_var_name)
}

/// `NAME` of a `${NAME}` reference: an upper-case letter or `_`, then up to 63 of
/// `A-Z 0-9 _`.
fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Replaces each `${NAME}` in a destination URL with the value `lookup` gives (the server
/// passes its environment), so a stream key need not be stored: only its variable's name
/// is. A reference to nothing, or a malformed one, is an error naming it (never a value).
pub fn expand_references(
    url: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or("an unclosed ${ in the URL: write ${NAME}")?;
        let name = &after[..end];
        if !valid_var_name(name) {
            return Err(format!(
                "${{{name}}} is not a variable reference: NAME is A-Z, 0-9 and _, starting with a letter or _"
            ));
        }
        let value = lookup(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("environment variable {name} is not set"))?;
        if value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '/')
        {
            return Err(format!(
                "environment variable {name} holds characters a stream key cannot have"
            ));
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl RtmpUrl {
    /// Checks a configured URL whose `${NAME}` references are filled in only when it is
    /// pushed to: valid whatever the variables will hold.
    pub fn check_configured(s: &str) -> Result<(), String> {
        let sample = expand_references(s, |_| Some("key".into()))?;
        Self::parse(&sample).map(|_| ())
    }

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
    // A key given as an environment variable's name is no secret: shown as written.
    if let Some((_, last)) = s.rsplit_once('/')
        && is_reference(last)
        && !s.contains('@')
    {
        return s.to_string();
    }
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
    fn stream_keys_can_be_environment_references() {
        let env = |k: &str| (k == "YT_KEY").then(|| "abc-123".to_string());
        assert_eq!(
            expand_references("rtmp://h/live2/${YT_KEY}", env).unwrap(),
            "rtmp://h/live2/abc-123"
        );
        let e = expand_references("rtmp://h/live2/${NOPE}", env).unwrap_err();
        assert_eq!(e, "environment variable NOPE is not set");
        assert!(expand_references("rtmp://h/live2/${yt}", env).is_err());
        assert!(expand_references("rtmp://h/live2/${YT_KEY", env).is_err());
        assert!(RtmpUrl::check_configured("rtmp://h/live2/${ANY_KEY}").is_ok());
        assert!(RtmpUrl::check_configured("rtmp://h/${APP_ONLY}").is_err());
        // A reference is shown as written; a key is masked.
        assert_eq!(
            mask_url("rtmp://h/live2/${YT_KEY}"),
            "rtmp://h/live2/${YT_KEY}"
        );
        assert_eq!(mask_url("rtmp://h/live2/abc"), "rtmp://h/live2/****");
        let evil = |_: &str| Some("a/b".to_string());
        assert!(expand_references("rtmp://h/live2/${K}", evil).is_err());
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
}
