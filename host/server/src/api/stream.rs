//! Stream control and configuration: `/api/stream/*`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::app::{ApiResult, AppState, json_body};
use super::error::{ApiError, ErrorBody};
use crate::state::model::{ConfigError, mask_url};
use crate::state::{StreamConfig, StreamState};

/// Body of `POST /api/stream/start` (may be empty).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartStream {
    /// Also start a recording of the program ("go live and record"); its location is in
    /// the answer's `Location` header.
    #[serde(default)]
    pub record: bool,
}

/// Start streaming; with `{"record": true}` also record. A recording that cannot start
/// (quota, disk) leaves the stream live and answers its error.
#[utoipa::path(post, path = "/api/stream/start", tag = "stream",
    request_body(content = StartStream, content_type = "application/json"),
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody),
        (status = 507, body = ErrorBody)))]
pub(super) async fn start_stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let start: StartStream = super::recordings::optional_body(&headers, body)?;
    let state = s.controller.start().await?;
    if !start.record {
        return Ok(Json(state).into_response());
    }
    let rec = super::recordings::start_recording(&s, Default::default()).await?;
    let location = format!("/api/recordings/{}", rec.id);
    Ok((
        [(axum::http::header::LOCATION, location)],
        Json(s.controller.state()),
    )
        .into_response())
}

/// Stop streaming: flush the encoder and close every output.
#[utoipa::path(post, path = "/api/stream/stop", tag = "stream",
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody)))]
pub(super) async fn stop_stream(State(s): State<AppState>) -> ApiResult<StreamState> {
    Ok(Json(s.controller.stop().await?))
}

/// Pause: outputs stay connected and the last frame repeats.
#[utoipa::path(post, path = "/api/stream/pause", tag = "stream",
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody)))]
pub(super) async fn pause_stream(State(s): State<AppState>) -> ApiResult<StreamState> {
    Ok(Json(s.controller.pause().await?))
}

/// Resume after a pause.
#[utoipa::path(post, path = "/api/stream/resume", tag = "stream",
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody)))]
pub(super) async fn resume_stream(State(s): State<AppState>) -> ApiResult<StreamState> {
    Ok(Json(s.controller.resume().await?))
}

/// The current stream state.
#[utoipa::path(get, path = "/api/stream/state", tag = "stream", responses((status = 200, body = StreamState)))]
pub(super) async fn get_state(State(s): State<AppState>) -> Json<StreamState> {
    Json(s.controller.state())
}

/// The stream configuration; destination stream keys are masked.
#[utoipa::path(get, path = "/api/stream/config", tag = "stream", responses((status = 200, body = StreamConfig)))]
pub(super) async fn get_config(State(s): State<AppState>) -> Json<StreamConfig> {
    Json(s.state.config().masked())
}

/// Change the configuration with a JSON merge patch (RFC 7386). Destinations and preview
/// apply live; other changes restart the pipeline while the stream stays live. A destination
/// URL sent back masked, as read, keeps its stored stream key.
#[utoipa::path(patch, path = "/api/stream/config", tag = "stream",
    request_body(content = Object, content_type = "application/json", description = "JSON merge patch of StreamConfig"),
    responses((status = 200, body = StreamConfig), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn patch_config(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StreamConfig> {
    let patch = json_body(&headers, body)?;
    super::contract::check_patch("/api/stream/config", &patch)?;
    let before = s.state.config();
    let next = s
        .controller
        .update_config(|current| merge_config(current, &patch))
        .await?;
    if (before.width, before.height) != (next.width, next.height) {
        // Images are prepared at the size they are drawn: prepare them for the new frame.
        s.scenes.resize().await;
    }
    Ok(Json(next.masked()))
}

/// Applies a merge patch to `current` and validates the result.
pub fn merge_config(current: &StreamConfig, patch: &Value) -> Result<StreamConfig, ApiError> {
    let mut next = current
        .merged(patch)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message))?;
    // A URL sent back exactly as it was read (masked) keeps the stored key.
    for (i, d) in next.destinations.iter_mut().enumerate() {
        if !d.url.contains("****") {
            continue;
        }
        match current.destinations.iter().find(|c| c.id == d.id) {
            Some(c) if mask_url(&c.url) == d.url => d.url = c.url.clone(),
            _ => {
                return Err(ConfigError::InvalidUrl {
                    field: format!("destinations[{i}].url"),
                    reason: "a masked URL can only be sent back for the destination it was read from; send the full URL".into(),
                }
                .into());
            }
        }
    }
    next.validate()?;
    Ok(next)
}
