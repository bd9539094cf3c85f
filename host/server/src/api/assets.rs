//! Asset routes: upload images and fonts as raw bodies, list, inspect, delete.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;

use super::app::AppState;
use super::error::{ApiError, ErrorBody};
use crate::assets::{AssetError, AssetInfo};
use crate::scene_manager::AssetDeleteError;

impl From<AssetError> for ApiError {
    fn from(e: AssetError) -> Self {
        let (status, code) = match &e {
            AssetError::UnsupportedType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AssetError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_asset"),
            AssetError::TooManyPixels { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "too_many_pixels")
            }
            AssetError::Full(_) => (StatusCode::CONFLICT, "conflict"),
            AssetError::OverBudget { .. } => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            AssetError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AssetError::LoaderFailed { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "loader_failed"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<AssetDeleteError> for ApiError {
    fn from(e: AssetDeleteError) -> Self {
        match e {
            AssetDeleteError::Asset(e) => e.into(),
            e @ AssetDeleteError::InUse { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
        }
    }
}

/// Query of an upload.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// Display name (at most 256 bytes); defaults to the id.
    pub name: Option<String>,
}

impl UploadQuery {
    /// Checks the name's length.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        match &self.name {
            Some(name) if name.is_empty() || name.len() > 256 => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_range",
                "name: 1 to 256 bytes",
            )),
            _ => Ok(()),
        }
    }
}

/// The media type of a request's body (lower case, without parameters; empty if none).
pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::assets::media_type)
        .unwrap_or_default()
}

/// Reads an upload body of at most `limit` bytes. Over the limit (by Content-Length, before
/// reading, or while reading a chunked body) the answer is a 413 that closes the connection:
/// the rest of the body is not read.
pub(super) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<bytes::Bytes, Box<axum::response::Response>> {
    let too_large = || {
        let mut r = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds the {what} limit of {limit} bytes"),
        )
        .into_response();
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        Box::new(r)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

/// Uploads an image (`image/png`, `image/jpeg`, `image/webp`, `image/gif`: first frame, or
/// all frames when an asset loader decodes the type), a font (`font/ttf`, `font/otf`), or a
/// file of a type an asset loader decodes (`GET /api/loaders`), as the raw body. The size
/// limit is checked before the body is read, the pixel limit before the image is decoded;
/// a loader that fails the upload is 422 `loader_failed`, naming it.
#[utoipa::path(post, path = "/api/assets", tag = "assets", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file; Content-Type names its type"),
    responses((status = 201, body = AssetInfo), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
pub async fn upload(
    State(s): State<AppState>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::response::Response, ApiError> {
    let limit = s.scenes.assets().limits().max_bytes;
    let mime = content_type(&headers);
    if !s.scenes.assets().takes(&mime) {
        return Err(AssetError::UnsupportedType(mime).into());
    }
    query.check()?;
    let data = match read_limited(&headers, body, limit, "asset").await {
        Ok(d) => d,
        Err(r) => return Ok(*r),
    };
    if data.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_asset",
            "the body is empty",
        ));
    }
    let info = s
        .scenes
        .assets()
        .upload(&mime, query.name.as_deref(), data)
        .await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// Every asset.
#[utoipa::path(get, path = "/api/assets", tag = "assets", responses((status = 200, body = Vec<AssetInfo>)))]
pub async fn list(State(s): State<AppState>) -> Json<Vec<AssetInfo>> {
    Json(s.scenes.assets().list())
}

/// One asset.
#[utoipa::path(get, path = "/api/assets/{id}", tag = "assets", params(("id" = String, Path)),
    responses((status = 200, body = AssetInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AssetInfo>, ApiError> {
    s.scenes
        .assets()
        .get(&id)
        .map(|a| Json(a.info.clone()))
        .ok_or_else(|| AssetError::NotFound(id).into())
}

/// Deletes an asset; 409 while a layer or canvas of any scene uses it.
#[utoipa::path(delete, path = "/api/assets/{id}", tag = "assets", params(("id" = String, Path)),
    responses((status = 200, body = AssetInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AssetInfo>, ApiError> {
    Ok(Json(s.scenes.delete_asset(&id).await?))
}

/// A thumbnail of an image asset: a PNG of at most 320 × 180, its aspect and transparency
/// kept. Fonts have none (404 `no_picture`).
#[utoipa::path(get, path = "/api/assets/{id}/thumbnail", tag = "assets", params(("id" = String, Path)),
    responses((status = 200, description = "a PNG", content_type = "image/png", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
pub async fn thumbnail(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let assets = s.scenes.assets().clone();
    let wanted = id.clone();
    let png = tokio::task::spawn_blocking(move || assets.thumbnail(&wanted))
        .await
        .map_err(|e| thumbnail_failed(e.to_string()))??
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_picture",
                format!("asset {id:?} is a font: fonts have no thumbnail"),
            )
        })?;
    Ok(picture("image/png", "private, no-cache", png))
}

/// A thumbnail that could not be made (500).
pub(super) fn thumbnail_failed(why: String) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("thumbnail: {why}"),
    )
}

/// A picture answer.
pub(super) fn picture(
    content_type: &'static str,
    cache: &'static str,
    bytes: impl Into<Bytes>,
) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        bytes.into(),
    )
        .into_response()
}
