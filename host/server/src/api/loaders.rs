//! Asset-loader routes: upload a WebAssembly component of the `asset-loader` world, list,
//! inspect, replace, delete. Uploads of the media types a loader claims go to it
//! (`POST /api/assets`).
//!
//! Replacing or deleting a loader never changes what is on air: assets keep the pixels
//! their loader made (and the version that made them is kept to decode them again after a
//! restart), so neither is refused because an asset is in use.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::app::AppState;
use super::error::{ApiError, ErrorBody};
use super::templates::{plugin_status, wasm_body};
use sm_plugin_host::loaders::{LoaderError, LoaderRegistry, LoaderUploaded, LoaderView};

impl From<LoaderError> for ApiError {
    fn from(e: LoaderError) -> Self {
        let (status, code) = match &e {
            LoaderError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            LoaderError::Exists(_) | LoaderError::Claimed { .. } | LoaderError::Full(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            LoaderError::Plugin(p) => plugin_status(p, "loader_failed"),
        };
        Self::new(status, code, e.to_string())
    }
}

fn registry(s: &AppState) -> Result<&std::sync::Arc<LoaderRegistry>, ApiError> {
    s.scenes.assets().loaders().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "loaders_disabled",
            "this server runs no asset loaders",
        )
    })
}

/// The component of an upload.
async fn component(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, Response> {
    let registry = registry(s).map_err(IntoResponse::into_response)?;
    let limit = registry.runtime().limits().max_component_bytes;
    wasm_body(headers, body, limit, "loader").await
}

/// Uploads an asset-loader component (`application/wasm`). It is checked, compiled and
/// described before the answer; its id is the name it gives. A name that is taken (replace
/// it with `PUT`) or a media type another loader decodes is refused (409). Bytes identical
/// to a loader held add nothing: 200 with that loader.
#[utoipa::path(post, path = "/api/loaders", tag = "loaders",
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "the component"),
    responses((status = 201, body = LoaderView, description = "a new loader"),
        (status = 200, body = LoaderView,
            description = "the same bytes (SHA-256) are this loader already: nothing changed"),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let data = match component(&s, &headers, body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let result = match registry(&s) {
        Ok(registry) => registry.upload(data).await,
        Err(e) => return e.into_response(),
    };
    match result {
        Ok(LoaderUploaded::Created(view)) => (StatusCode::CREATED, Json(view)).into_response(),
        Ok(LoaderUploaded::Existing(view)) => Json(view).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Every asset loader.
#[utoipa::path(get, path = "/api/loaders", tag = "loaders",
    responses((status = 200, body = Vec<LoaderView>)))]
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<LoaderView>>, ApiError> {
    Ok(Json(registry(&s)?.list()))
}

/// One asset loader.
#[utoipa::path(get, path = "/api/loaders/{id}", tag = "loaders", params(("id" = String, Path)),
    responses((status = 200, body = LoaderView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LoaderView>, ApiError> {
    registry(&s)?
        .get(&id)
        .map(Json)
        .ok_or_else(|| LoaderError::NotFound(id).into())
}

/// A new version of a loader, prepared like an upload: uploads from now on are decoded by
/// it. Assets decoded before keep their pixels. Its media types may not be another
/// loader's (409).
#[utoipa::path(put, path = "/api/loaders/{id}", tag = "loaders", params(("id" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "the new version"),
    responses((status = 200, body = LoaderView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let data = match component(&s, &headers, body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    match registry(&s) {
        Ok(registry) => match registry.replace(&id, data).await {
            Ok(view) => Json(view).into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Deletes a loader: uploads of its media types are refused from now on (or decoded by
/// the host, for the types it knows). Assets it decoded stay, on air and after a restart.
#[utoipa::path(delete, path = "/api/loaders/{id}", tag = "loaders", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    registry(&s)?.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
