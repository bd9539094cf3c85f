//! Recording routes: `/api/recordings` (start, list, read, stop, delete, download a file).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower::ServiceExt as _;
use utoipa::ToSchema;

use super::app::{AppState, json_body};
use super::error::{ApiError, ErrorBody};
use super::scene::decode;
use crate::recordings::{RecordingError, RecordingManager};
use sm_media::recording::Recording;

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> Self {
        let (status, code) = match &e {
            RecordingError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            RecordingError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            RecordingError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "out_of_range"),
            RecordingError::Quota(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
            RecordingError::Storage(_) => (StatusCode::INSUFFICIENT_STORAGE, "storage_failed"),
        };
        Self::new(status, code, e.to_string())
    }
}

pub(super) fn manager(s: &AppState) -> Result<&std::sync::Arc<RecordingManager>, ApiError> {
    s.recordings.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "recordings_unavailable",
            "this server makes no recordings",
        )
    })
}

/// Body of `POST /api/recordings` (may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewRecording {
    /// Display name (1 to 256 characters, not only spaces); default the id.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    pub name: Option<String>,
    /// Cut a new file at the first key frame this many minutes after the last cut
    /// (1..=1440); default one file.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1440)]
    pub segment_minutes: Option<u32>,
}

/// A body that may be empty, else JSON of `T`.
pub(super) fn optional_body<T: Default + serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    if matches!(&body, Ok(b) if b.is_empty()) {
        return Ok(T::default());
    }
    decode(json_body(headers, body)?)
}

/// Starts recording the program, from the packets the outputs get (no second encode), to
/// fragmented MP4 under `--recordings-dir`. 409 while the stream is not live; 507
/// `insufficient_storage` once `--recordings-max-bytes` is used up.
#[utoipa::path(post, path = "/api/recordings", tag = "recordings",
    request_body(content = NewRecording, content_type = "application/json"),
    responses((status = 201, body = Recording), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 507, body = ErrorBody)))]
pub async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let new: NewRecording = optional_body(&headers, body)?;
    let rec = start_recording(&s, new).await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

/// How long a recording waits for a stream that is live but has not published yet.
const FIRST_PACKETS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts a recording (the stream must be live).
pub(super) async fn start_recording(
    s: &AppState,
    new: NewRecording,
) -> Result<Recording, ApiError> {
    let wait = if s.controller.state().is_live {
        FIRST_PACKETS_WAIT
    } else {
        std::time::Duration::ZERO
    };
    Ok(manager(s)?
        .start(new.name, new.segment_minutes, wait)
        .await?)
}

/// Every recording, newest first (running ones with what they have written so far).
#[utoipa::path(get, path = "/api/recordings", tag = "recordings", responses((status = 200, body = Vec<Recording>)))]
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<Recording>>, ApiError> {
    Ok(Json(manager(&s)?.list()))
}

/// One recording.
#[utoipa::path(get, path = "/api/recordings/{id}", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = Recording), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(manager(&s)?.get(&id)?))
}

/// Stops a recording; answers once its files are finished (`done`).
#[utoipa::path(post, path = "/api/recordings/{id}/stop", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = Recording), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(manager(&s)?.stop(&id).await?))
}

/// Deletes a recording and its files; 409 while it is running.
#[utoipa::path(delete, path = "/api/recordings/{id}", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = Recording), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(manager(&s)?.delete(&id).await?))
}

/// File `n` of recording `id` as a number: what is not one names no file (404, as an
/// unknown number does).
fn file_number(id: &str, n: &str) -> Result<usize, ApiError> {
    n.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("recording {id:?} has no file {n:?}"),
        )
    })
}

/// Downloads file `n` (from 0) of a recording as `video/mp4`, with HTTP Range requests
/// (206 Partial Content) for players and resumed downloads. A running recording's file can
/// be read as far as it is written.
#[utoipa::path(get, path = "/api/recordings/{id}/files/{n}", tag = "recordings",
    params(("id" = String, Path), ("n" = usize, Path)),
    responses((status = 200, description = "the file", content_type = "video/mp4", body = Vec<u8>),
        (status = 206, description = "the requested range", content_type = "video/mp4", body = Vec<u8>),
        (status = 404, body = ErrorBody), (status = 416, description = "a range outside the file")))]
pub async fn file(
    State(s): State<AppState>,
    Path((id, n)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let n = file_number(&id, &n)?;
    let (path, name) = manager(&s)?.file(&id, n)?;
    // Files are named `*.mp4`: served as video/mp4.
    let service = tower_http::services::ServeFile::new(&path);
    let mut response = match service.oneshot(request).await {
        Ok(r) => r.map(axum::body::Body::new),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("reading {name}: {e}"),
            ));
        }
    };
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the file {name} of recording {id} is gone from the disk"),
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Whether `req` is a GET of a recording file carrying a live download ticket.
pub(super) fn ticket_admits(s: &AppState, req: &Request) -> bool {
    let (Some(recordings), Some(query)) = (&s.recordings, req.uri().query()) else {
        return false;
    };
    let path = req.uri().path();
    if !path.starts_with("/api/recordings/") {
        return false;
    }
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("ticket="))
        .any(|ticket| recordings.admits(path, ticket))
}

/// A download link.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadLink {
    /// The file's path with a `?ticket=` that stands for the token, for this file only.
    pub url: String,
    /// Seconds it works for.
    pub expires_in_seconds: u64,
}

/// A link to download file `n` without the API token, for a browser's download or a
/// player: valid for 10 minutes and for this file only.
#[utoipa::path(post, path = "/api/recordings/{id}/files/{n}/link", tag = "recordings",
    params(("id" = String, Path), ("n" = usize, Path)),
    responses((status = 200, body = DownloadLink), (status = 404, body = ErrorBody)))]
pub async fn link(
    State(s): State<AppState>,
    Path((id, n)): Path<(String, String)>,
) -> Result<Json<DownloadLink>, ApiError> {
    let n = file_number(&id, &n)?;
    Ok(Json(DownloadLink {
        url: manager(&s)?.link(&id, n)?,
        expires_in_seconds: crate::recordings::LINK_TTL.as_secs(),
    }))
}
