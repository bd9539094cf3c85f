//! What every handler shares: the application state (with who may do what), the bearer
//! token of a request, and the parsing of a JSON body (content type, size, syntax).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use tokio::sync::watch;

use super::error::ApiError;
use crate::audio::AudioManager;
use crate::auth::Access;
use crate::control::StreamController;
use crate::recordings::RecordingManager;
use crate::scene_manager::SceneManager;
use crate::state::StateManager;
use crate::state::lease::InstanceStatus;

/// Largest accepted JSON body.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// The most WebSocket clients admitted at once, unless configured.
pub const DEFAULT_MAX_WS_CLIENTS: usize = 64;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The stream.
    pub controller: Arc<StreamController>,
    /// The state manager.
    pub state: Arc<StateManager>,
    /// The scene.
    pub scenes: Arc<SceneManager>,
    /// The tokens and their roles.
    pub access: Arc<Access>,
    /// Connected WebSocket clients.
    pub ws_clients: Arc<AtomicU64>,
    /// The most WebSocket clients admitted at once.
    pub max_ws_clients: usize,
    /// The embedded RTMP server's port, for the publish URL of a new `rtmp` input.
    pub rtmp_port: Option<u16>,
    /// The recordings, when this server makes them.
    pub recordings: Option<Arc<RecordingManager>>,
    /// The program sound's settings and meters.
    pub audio: Arc<AudioManager>,
    /// This instance's part in the channel (primary, or standby with a lease).
    pub instance: watch::Receiver<InstanceStatus>,
}

impl AppState {
    /// State for the API over a controller.
    pub fn new(
        controller: Arc<StreamController>,
        scenes: Arc<SceneManager>,
        access: Access,
    ) -> Self {
        let audio = Arc::new(AudioManager::new(
            controller.state_manager().clone(),
            controller.mix().clone(),
        ));
        Self {
            state: controller.state_manager().clone(),
            audio,
            scenes,
            controller,
            access: Arc::new(access),
            ws_clients: Arc::default(),
            max_ws_clients: DEFAULT_MAX_WS_CLIENTS,
            rtmp_port: None,
            instance: watch::channel(InstanceStatus::alone("stream-manager")).1,
            recordings: None,
        }
    }

    /// The same state, with the audio settings of `audio` (loaded from the store).
    pub fn with_audio(mut self, audio: Arc<AudioManager>) -> Self {
        self.audio = audio;
        self
    }

    /// The same state, reporting `instance` as this instance's part in the channel.
    pub fn with_instance(mut self, instance: watch::Receiver<InstanceStatus>) -> Self {
        self.instance = instance;
        self
    }

    /// The same state, making recordings with `recordings`.
    pub fn with_recordings(mut self, recordings: Arc<RecordingManager>) -> Self {
        self.recordings = Some(recordings);
        self
    }

    /// The same state, admitting at most `max` WebSocket clients at once.
    pub fn with_max_ws_clients(mut self, max: usize) -> Self {
        self.max_ws_clients = max;
        self
    }

    /// The same state, telling clients that the embedded RTMP server listens on `port`.
    pub fn with_rtmp_port(mut self, port: u16) -> Self {
        self.rtmp_port = Some(port);
        self
    }
}

/// The bearer token of a request, if any (the scheme's name in any case, RFC 7235).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

/// Checks the content type and size, and parses the body as JSON.
pub fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("application/json")
                || m.eq_ignore_ascii_case("application/merge-patch+json")
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body exceeds {MAX_JSON_BODY} bytes"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.body_text())
        }
    })?;
    let mut value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    integral_numbers(&mut value, 0);
    Ok(value)
}

/// Writes every number with no fractional part as an integer (`3.0` as `3`): JSON, and
/// the API's schemas, do not tell them apart, and an integer field takes either.
fn integral_numbers(value: &mut Value, depth: usize) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) if depth < 128 => {
            for v in items {
                integral_numbers(v, depth + 1);
            }
        }
        Value::Object(map) if depth < 128 => {
            for (_, v) in map.iter_mut() {
                integral_numbers(v, depth + 1);
            }
        }
        _ => {}
    }
}
