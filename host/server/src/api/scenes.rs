//! Named scene routes: list, create, read, replace, delete, and activate with a transition.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::app::{AppState, json_body};
use super::error::{ApiError, ErrorBody};
use super::scene::{Applied, complete_all, decode};
use crate::scene_manager::{NamedScene, SceneSummary, ScenesError};
use sm_scene::{Scene, Transition, TransitionKind};

impl From<ScenesError> for ApiError {
    fn from(e: ScenesError) -> Self {
        match e {
            ScenesError::Invalid(e) => e.into(),
            e @ ScenesError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            e @ ScenesError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
        }
    }
}

/// Body of an activation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// How the scene replaces the one on air; default a cut.
    #[serde(default)]
    pub transition: Option<Transition>,
}

/// Body of `PUT /api/scenes/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutScene {
    /// New display name; unchanged when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The scene.
    pub scene: Scene,
}

/// An activated scene and the first frame of its transition.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activated {
    /// The scene now on air.
    pub id: String,
    /// The transition used.
    pub transition: Transition,
    /// First frame of the transition; `null` while not live.
    pub applied_at_frame: Option<u64>,
}

/// Every named scene.
#[utoipa::path(get, path = "/api/scenes", tag = "scenes", responses((status = 200, body = Vec<SceneSummary>)))]
pub async fn list(State(s): State<AppState>) -> Json<Vec<SceneSummary>> {
    Json(s.scenes.list())
}

/// Adds a named scene (`{id?, name?, scene?}`; an id is generated when absent); it is not
/// on air until activated.
#[utoipa::path(post, path = "/api/scenes", tag = "scenes",
    request_body(content = NamedScene, content_type = "application/json"),
    responses((status = 201, body = NamedScene), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let mut value = json_body(&headers, body)?;
    if let Some(o) = value.as_object_mut()
        && !o.contains_key("id")
    {
        o.insert("id".into(), Value::String(s.scenes.fresh_id()));
    }
    let mut named: NamedScene = decode(value)?;
    complete_all(&mut named.scene);
    let created = s.scenes.create(named).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One named scene.
#[utoipa::path(get, path = "/api/scenes/{id}", tag = "scenes", params(("id" = String, Path)),
    responses((status = 200, body = NamedScene), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<NamedScene>, ApiError> {
    s.scenes
        .get(&id)
        .map(Json)
        .ok_or_else(|| ScenesError::NotFound(id).into())
}

/// Replaces a named scene; when it is on air the change shows at once.
#[utoipa::path(put, path = "/api/scenes/{id}", tag = "scenes", params(("id" = String, Path)),
    request_body(content = PutScene, content_type = "application/json"),
    responses((status = 200, body = Applied<NamedScene>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Applied<NamedScene>>, ApiError> {
    let mut put: PutScene = decode(json_body(&headers, body)?)?;
    complete_all(&mut put.scene);
    let current = s
        .scenes
        .get(&id)
        .ok_or_else(|| ScenesError::NotFound(id.clone()))?;
    let named = NamedScene {
        id,
        name: put.name.unwrap_or(current.name),
        scene: put.scene,
    };
    let (named, frame) = s.scenes.replace(named).await?;
    Ok(Json(Applied {
        item: named,
        applied_at_frame: frame,
    }))
}

/// Deletes a named scene; 409 for the one on air.
#[utoipa::path(delete, path = "/api/scenes/{id}", tag = "scenes", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.scenes.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts a named scene on air: `{"transition": {"kind": "cut"|"fade"|"slide", "durationMs"}}`.
/// Both scenes are drawn for the duration of a fade or slide; the answer comes with the
/// transition's first frame.
#[utoipa::path(post, path = "/api/scenes/{id}/activate", tag = "scenes", params(("id" = String, Path)),
    request_body(content = Activate, content_type = "application/json"),
    responses((status = 200, body = Activated), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn activate(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Activated>, ApiError> {
    let empty = matches!(&body, Ok(b) if b.is_empty());
    let activate: Activate = if empty {
        Activate::default()
    } else {
        decode(json_body(&headers, body)?)?
    };
    let transition = activate.transition.unwrap_or(Transition {
        kind: TransitionKind::Cut,
        duration_ms: 0,
    });
    if transition.duration_ms > 10_000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            "transition.durationMs: 0..=10000",
        ));
    }
    let (_, frame) = s.scenes.activate(&id, transition).await?;
    Ok(Json(Activated {
        id,
        transition,
        applied_at_frame: frame,
    }))
}
