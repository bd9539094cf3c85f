//! Live input routes (`/api/inputs`) and the media library they play from (`/api/media`).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use super::app::{AppState, json_body};
use super::assets::{UploadQuery, content_type};
use super::error::{ApiError, ErrorBody};
use crate::inputs::{InputManager, InputsError};
use crate::media::{MediaError, MediaInfo};
use serde::Serialize;
use sm_media::input::{Input, InputKind};

impl From<InputsError> for ApiError {
    fn from(e: InputsError) -> Self {
        let message = e.to_string();
        match e {
            InputsError::Invalid(e) => {
                let code = if e.field == "url" {
                    "invalid_url"
                } else {
                    "out_of_range"
                };
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            InputsError::Malformed(e) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, message)
            }
            InputsError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            InputsError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            InputsError::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "inputs_unavailable",
                message,
            ),
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            MediaError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_media"),
            MediaError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            MediaError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            MediaError::InUse { .. } => (StatusCode::CONFLICT, "conflict"),
            MediaError::Io(_) => (StatusCode::INSUFFICIENT_STORAGE, "storage_failed"),
        };
        Self::new(status, code, message)
    }
}

fn manager(s: &AppState) -> Result<&std::sync::Arc<InputManager>, ApiError> {
    s.scenes
        .inputs()
        .ok_or_else(|| InputsError::Unavailable.into())
}

/// Every input, with its state and stats (RTSP credentials and stream keys masked).
#[utoipa::path(get, path = "/api/inputs", tag = "inputs", responses((status = 200, body = Vec<Input>)))]
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<Input>>, ApiError> {
    Ok(Json(manager(&s)?.list()))
}

/// A new input as its creation answers it: an `rtmp` input also gets the URL to publish to.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInput {
    #[serde(flatten)]
    input: Input,
    /// `rtmp` inputs: `rtmp://<the host this request named>:<rtmp-port>/input/<streamKey>`,
    /// in this answer only (it holds the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_url: Option<String>,
}

/// Creates an input and starts it. An `rtmp` input's generated `streamKey` (and the
/// `publishUrl` that holds it) is in this answer only; it is masked everywhere afterwards.
#[utoipa::path(post, path = "/api/inputs", tag = "inputs",
    request_body(content = sm_media::input::InputConfig, content_type = "application/json"),
    responses((status = 201, body = CreatedInput), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    let body = json_body(&headers, body)?;
    if body.get("id").is_some_and(|id| id == "") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            "id: 1 to 64 of A-Z a-z 0-9 _ -; leave it out to have one made",
        ));
    }
    let input = manager(&s)?.create(body).await?;
    let publish_url = match (&input.config.kind, &input.config.stream_key, s.rtmp_port) {
        (InputKind::Rtmp, Some(key), Some(port)) => Some(format!(
            "rtmp://{}:{port}/input/{key}",
            request_host(&headers)
        )),
        _ => None,
    };
    let created = CreatedInput { input, publish_url };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The host name (or bracketed IPv6 address) the request was sent to, without its port;
/// 127.0.0.1 when the `Host` header is missing or holds anything else.
fn request_host(headers: &HeaderMap) -> &str {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-[]:".contains(c);
    if name.is_empty() || name.len() > 253 || !name.chars().all(plain) {
        "127.0.0.1"
    } else {
        name
    }
}

/// One input.
#[utoipa::path(get, path = "/api/inputs/{id}", tag = "inputs", params(("id" = String, Path)),
    responses((status = 200, body = Input), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Input>, ApiError> {
    manager(&s)?
        .get(&id)
        .map(Json)
        .ok_or_else(|| InputsError::NotFound(id).into())
}

/// Changes an input (JSON merge patch); a changed source reconnects, and the layers showing
/// the input hold their last picture meanwhile. `id` and `kind` cannot change.
#[utoipa::path(patch, path = "/api/inputs/{id}", tag = "inputs", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses((status = 200, body = Input), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Input>, ApiError> {
    let body = json_body(&headers, body)?;
    super::contract::check_patch("/api/inputs/{id}", &body)?;
    Ok(Json(manager(&s)?.patch(&id, &body).await?))
}

/// Deletes an input and disconnects it; 409 while a layer of any scene shows it.
#[utoipa::path(delete, path = "/api/inputs/{id}", tag = "inputs", params(("id" = String, Path)),
    responses((status = 200, body = Input), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Input>, ApiError> {
    Ok(Json(s.scenes.delete_input(&id).await?))
}

/// Uploads a video file (MP4, MOV, MKV, WebM) for `file` inputs as the raw body, streamed
/// to the media folder (never held in memory) and probed with FFmpeg: 413 over
/// `--max-media-bytes`, 422 `invalid_media` when it is not a video this server plays.
#[utoipa::path(post, path = "/api/media", tag = "inputs", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file (video/*, application/octet-stream)"),
    responses((status = 201, body = MediaInfo), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn upload_media(
    State(s): State<AppState>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::response::Response, ApiError> {
    let library = manager(&s)?.library().clone();
    let mime = content_type(&headers);
    if !(mime.starts_with("video/")
        || mime.starts_with("audio/")
        || mime == "application/octet-stream"
        || mime == "application/mp4"
        || mime == "application/ogg")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "{mime:?} is not a video or sound type (video/*, audio/*, application/octet-stream)"
            ),
        ));
    }
    query.check()?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match library.upload(query.name.as_deref(), declared, body).await {
        Ok(info) => Ok((StatusCode::CREATED, Json(info)).into_response()),
        Err(e @ MediaError::TooLarge(_)) => {
            // The rest of the body is not read: close the connection.
            let mut r = ApiError::from(e).into_response();
            r.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

/// Every media file.
#[utoipa::path(get, path = "/api/media", tag = "inputs", responses((status = 200, body = Vec<MediaInfo>)))]
pub async fn list_media(State(s): State<AppState>) -> Result<Json<Vec<MediaInfo>>, ApiError> {
    Ok(Json(manager(&s)?.library().list()))
}

/// One media file.
#[utoipa::path(get, path = "/api/media/{id}", tag = "inputs", params(("id" = String, Path)),
    responses((status = 200, body = MediaInfo), (status = 404, body = ErrorBody)))]
pub async fn get_media(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MediaInfo>, ApiError> {
    manager(&s)?
        .library()
        .get(&id)
        .map(Json)
        .ok_or_else(|| MediaError::NotFound(id).into())
}

/// Deletes a media file; 409 while an input plays it.
#[utoipa::path(delete, path = "/api/media/{id}", tag = "inputs", params(("id" = String, Path)),
    responses((status = 200, body = MediaInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_media(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MediaInfo>, ApiError> {
    Ok(Json(manager(&s)?.delete_media(&id).await?))
}

/// How long a thumbnail request waits for an input that no layer shows to convert a
/// picture at the thumbnail's size.
const THUMBNAIL_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The input's latest picture as a JPEG of at most 320 × 180 (its aspect kept), for the
/// console. While the input has no picture yet (connecting, or stopped before its first
/// frame) the answer is 404 `no_picture`; a stalled input shows its last picture.
#[utoipa::path(get, path = "/api/inputs/{id}/thumbnail", tag = "inputs", params(("id" = String, Path)),
    responses((status = 200, description = "a JPEG", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
pub async fn thumbnail(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use crate::thumbnail;
    use sm_compose::video::{Fit, Want};
    use std::time::Instant;

    let feed = manager(&s)?.feed(&id)?;
    let deadline = Instant::now() + THUMBNAIL_WAIT;
    let frame = loop {
        if let Some(frame) = feed.newest() {
            break frame;
        }
        if Instant::now() >= deadline {
            let state = feed.status().state;
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no_picture",
                format!("input {id:?} has no picture yet ({state})"),
            ));
        }
        // No layer shows it: ask its worker for a picture at the thumbnail's size (wanted
        // for a couple of seconds, then forgotten).
        let want = Want {
            width: thumbnail::MAX_WIDTH,
            height: thumbnail::MAX_HEIGHT,
            fit: Fit::Contain,
        };
        let _ = feed.frame(want, Instant::now());
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    };
    let jpeg = tokio::task::spawn_blocking(move || {
        thumbnail::shrink(&frame.pixmap, frame.part)
            .ok_or_else(|| "empty picture".to_string())
            .and_then(|small| thumbnail::jpeg(&small))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(super::assets::thumbnail_failed)?;
    Ok(super::assets::picture("image/jpeg", "no-store", jpeg))
}
