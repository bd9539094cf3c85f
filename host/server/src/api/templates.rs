//! Template routes: upload a WebAssembly component, list and inspect templates, hot-swap a
//! new version, roll back, delete.
//!
//! Preparing a component (compiling, describing, test-rendering under the limits) runs off
//! the render thread; a new version goes on air at one frame boundary, and the answer comes
//! once it is there (`appliedAtFrame`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::app::AppState;
use super::assets::read_limited;
use super::error::{ApiError, ErrorBody};
use crate::scene_manager::TemplateDeleteError;
use sm_plugin_host::PluginError;
use sm_plugin_host::registry::{
    RegistryError, SWAP_SETTLE_FRAMES, TemplateRegistry, TemplateView, Uploaded,
};

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let (status, code) = match &e {
            RegistryError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            RegistryError::NoPrevious(_) | RegistryError::Full(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            RegistryError::SwapFailed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "template_failed"),
            RegistryError::Plugin(p) => plugin_status(p, "template_failed"),
        };
        Self::new(status, code, e.to_string())
    }
}

/// Status and code of a refused component; `failed` is the code of a component that
/// failed its checks by running (`template_failed`, `loader_failed`).
pub(super) fn plugin_status(p: &PluginError, failed: &'static str) -> (StatusCode, &'static str) {
    match p {
        PluginError::Runtime(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        PluginError::NotWasm | PluginError::CoreModule | PluginError::Invalid(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_component")
        }
        PluginError::WrongWorld(_) | PluginError::Imports(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "wrong_world")
        }
        PluginError::UnsupportedVersion(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_version")
        }
        PluginError::Info(_)
        | PluginError::Rejected(_)
        | PluginError::Fault { .. }
        | PluginError::TooMuchMemory { .. } => (StatusCode::UNPROCESSABLE_ENTITY, failed),
    }
}

impl From<TemplateDeleteError> for ApiError {
    fn from(e: TemplateDeleteError) -> Self {
        match e {
            TemplateDeleteError::Registry(e) => e.into(),
            e @ TemplateDeleteError::InUse { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
        }
    }
}

/// A template after a change, with the first frame that shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateChange {
    /// The template.
    #[serde(flatten)]
    pub template: TemplateView,
    /// First frame on air with this version (absent while the stream is not live).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at_frame: Option<u64>,
}

fn registry(s: &AppState) -> Result<&std::sync::Arc<TemplateRegistry>, ApiError> {
    s.scenes.templates().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "templates_disabled",
            "this server runs no templates",
        )
    })
}

/// The component of a template upload: `application/wasm`, within the size limit.
async fn component(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, Response> {
    let registry = registry(s).map_err(IntoResponse::into_response)?;
    let limit = registry.runtime().limits().max_component_bytes;
    wasm_body(headers, body, limit, "template").await
}

/// A WebAssembly component in a request body: `application/wasm`, not empty, within
/// `limit` bytes (`what`: "template" or "loader", for the messages).
pub(super) async fn wasm_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<bytes::Bytes, Response> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::assets::media_type)
        .unwrap_or_default();
    if mime != "application/wasm" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("{what}s are uploaded as application/wasm, not {mime:?}"),
        )
        .into_response());
    }
    let data = read_limited(headers, body, limit, what)
        .await
        .map_err(|r| *r)?;
    if data.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_component",
            "the body is empty",
        )
        .into_response());
    }
    Ok(data)
}

/// Uploads a scene-template component (`application/wasm`). It is checked, compiled,
/// described, configured with its default params and test-rendered under the limits before
/// the answer; its id is its name. Bytes identical to a version of a template already held
/// (current or kept) add nothing: 200 with that template.
#[utoipa::path(post, path = "/api/templates", tag = "templates",
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "the component"),
    responses((status = 201, body = TemplateView, description = "a new template"),
        (status = 200, body = TemplateView,
            description = "the same bytes (SHA-256) are a version of this template already: nothing changed"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn upload(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let data = match component(&s, &headers, body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Ok(registry) = registry(&s) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match registry.upload(data).await {
        Ok(Uploaded::Created(view)) => {
            s.scenes.templates_changed().await;
            (StatusCode::CREATED, Json(view)).into_response()
        }
        Ok(Uploaded::Existing(view)) => Json(view).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Every template.
#[utoipa::path(get, path = "/api/templates", tag = "templates",
    responses((status = 200, body = Vec<TemplateView>)))]
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<TemplateView>>, ApiError> {
    Ok(Json(registry(&s)?.list()))
}

/// One template, with its versions.
#[utoipa::path(get, path = "/api/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TemplateView>, ApiError> {
    registry(&s)?
        .get(&id)
        .map(Json)
        .ok_or_else(|| RegistryError::NotFound(id).into())
}

/// Hot swap: a new version of the template. It is prepared exactly like an upload; then
/// every layer using the template switches to it at one frame boundary, with its params and
/// the state the old version hands over. The previous version stays for a rollback. When a
/// layer on air faults with the new version at its swap or in its first frames, the
/// version is rolled back automatically and the answer is 422 `template_failed`, naming
/// the layer, the fault and the version now current.
#[utoipa::path(put, path = "/api/templates/{id}", tag = "templates", params(("id" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "the new version"),
    responses((status = 200, body = TemplateChange), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody,
            description = "refused like an upload, or faulted on a layer at its swap and rolled back")))]
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
    let Ok(registry) = registry(&s) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let (template, new_hash) = match registry.replace(&id, data).await {
        Ok(replaced) => replaced,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let applied_at_frame = s.scenes.templates_changed().await;
    if let (Some(_), Some(hash)) = (applied_at_frame, &new_hash)
        && on_air_uses(&s, &id)
        && let Err(e) = registry.swap_outcome(&id, hash, swap_settle(&s)).await
    {
        // The rolled-back version is on air before the answer, as after a rollback.
        s.scenes.templates_changed().await;
        return ApiError::from(e).into_response();
    }
    Json(TemplateChange {
        template,
        applied_at_frame,
    })
    .into_response()
}

/// Whether a visible layer of the scene on air runs template `id`.
fn on_air_uses(s: &AppState, id: &str) -> bool {
    s.scenes
        .scene()
        .layers
        .iter()
        .any(|l| l.visible && l.template.as_ref().is_some_and(|t| t.id == id))
}

/// How long after its frame is on air a swap is watched for faults: the swap frame's
/// events are queued by then, so this covers the next few frames (bounded, so a low frame
/// rate does not hold the answer long), plus time for the events thread.
fn swap_settle(s: &AppState) -> std::time::Duration {
    let fps = s.state.config().target_fps.max(1);
    let frames = std::time::Duration::from_secs_f64(f64::from(SWAP_SETTLE_FRAMES) / f64::from(fps));
    frames.min(std::time::Duration::from_millis(300)) + std::time::Duration::from_millis(50)
}

/// Makes the previous version current again (on air at the next frame boundary).
#[utoipa::path(post, path = "/api/templates/{id}/rollback", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateChange), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rollback(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TemplateChange>, ApiError> {
    let template = registry(&s)?.rollback(&id).await?;
    let applied_at_frame = s.scenes.templates_changed().await;
    Ok(Json(TemplateChange {
        template,
        applied_at_frame,
    }))
}

/// Deletes a template and all its versions; 409 while a layer of any scene uses it.
#[utoipa::path(delete, path = "/api/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    registry(&s)?;
    s.scenes.delete_template(&id).await?;
    s.scenes.templates_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
