//! The program sound: `GET/PATCH /api/audio` (the master fader and the limiter). Each
//! source's fader is its input's `audio` (`PATCH /api/inputs/{id}`); the meters go out over
//! the WebSocket as `audioLevels`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};

use super::app::{ApiResult, AppState, json_body};
use super::error::{ApiError, ErrorBody};
use crate::audio::AudioSettings;

/// The master fader and the limiter.
#[utoipa::path(get, path = "/api/audio", tag = "audio", responses((status = 200, body = AudioSettings)))]
pub(super) async fn get(State(s): State<AppState>) -> Json<AudioSettings> {
    Json(s.audio.settings())
}

/// Change the master fader or the limiter with a JSON merge patch, e.g.
/// `{"master": {"gainDb": -6}}`. Applies within 10 ms (ramped), live, and is kept.
#[utoipa::path(patch, path = "/api/audio", tag = "audio",
    request_body(content = Object, content_type = "application/json", description = "JSON merge patch of AudioSettings"),
    responses((status = 200, body = AudioSettings), (status = 400, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn patch(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<AudioSettings> {
    let patch = json_body(&headers, body)?;
    super::contract::check_patch("/api/audio", &patch)?;
    s.audio
        .patch(&patch)
        .await
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message))
}
