//! Scene routes: the scene, its canvas, its layers and their positions. Every edit goes
//! through the Scene Manager and is answered once it is on air, with `appliedAtFrame`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::app::{AppState, json_body};
use super::error::{ApiError, ErrorBody};
use crate::state::model::from_json;
use sm_scene::{Animate, CanvasProperties, Layer, Position, Scene, SceneError, Tween, valid_id};

impl From<SceneError> for ApiError {
    fn from(e: SceneError) -> Self {
        let code = match e {
            SceneError::OutOfRange { .. } => "out_of_range",
            SceneError::UnknownKind { .. } => "unknown_kind",
            SceneError::UnknownAsset { .. } => "unknown_asset",
            SceneError::UnknownTemplate { .. } => "unknown_template",
            SceneError::UnknownInput { .. } => "unknown_input",
            SceneError::InvalidParams { .. } => "invalid_params",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}

/// A changed item and the first frame that shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Applied<T> {
    /// The item as it now is.
    #[serde(flatten)]
    pub item: T,
    /// Number of the first frame that shows the change (frames counted from 0, as
    /// `frameCount` counts them); `null` while the stream is not live.
    pub applied_at_frame: Option<u64>,
}

/// A deleted layer and the first frame without it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// The id of the deleted layer.
    pub id: String,
    /// First frame without it; `null` while not live.
    pub applied_at_frame: Option<u64>,
}

/// Decodes a request body, which is always a JSON object (serde would take an array for a
/// struct, field by field: refused here).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "the body must be a JSON object",
        ));
    }
    from_json(value).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message))
}

fn merge<T: Serialize + serde::de::DeserializeOwned>(
    current: &T,
    patch: &Value,
) -> Result<T, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "the patch must be a JSON object",
        ));
    }
    let mut doc = serde_json::to_value(current).expect("scene items serialize");
    json_patch::merge(&mut doc, patch);
    decode(doc)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no layer {id:?}"),
    )
}

fn layer_mut<'a>(scene: &'a mut Scene, id: &str) -> Result<&'a mut Layer, ApiError> {
    scene
        .layers
        .iter_mut()
        .find(|l| l.id == id)
        .ok_or_else(|| not_found(id))
}

/// Gives a layer without id one (`layer-N`) and a name (its id).
pub(crate) fn complete(layer: &mut Layer, others: &[Layer]) {
    if layer.id.is_empty() {
        layer.id = (1..)
            .map(|n| format!("layer-{n}"))
            .find(|id| others.iter().all(|l| &l.id != id))
            .expect("an unused id");
    }
    if layer.name.is_empty() {
        layer.name = layer.id.clone();
    }
}

/// Completes every layer of a scene (ids and names where absent).
pub(crate) fn complete_all(scene: &mut Scene) {
    for i in 0..scene.layers.len() {
        let (before, rest) = scene.layers.split_at_mut(i);
        complete(&mut rest[0], before);
    }
}

/// The scene.
#[utoipa::path(get, path = "/api/scene", tag = "scene", responses((status = 200, body = Scene)))]
pub async fn get_scene(State(s): State<AppState>) -> Json<Scene> {
    Json(s.scenes.scene())
}

/// Changes the scene with a JSON merge patch: `canvas` is merged, `layers` replaces the
/// whole list. Everything in one request goes on air in the same frame.
#[utoipa::path(patch, path = "/api/scene", tag = "scene",
    request_body(content = Object, content_type = "application/json", description = "merge patch of Scene"),
    responses((status = 200, body = Applied<Scene>), (status = 400, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn patch_scene(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Applied<Scene>>, ApiError> {
    let patch = json_body(&headers, body)?;
    super::contract::check_patch("/api/scene", &patch)?;
    let ((), scene, frame) = s
        .scenes
        .update(|scene| {
            let mut next: Scene = merge(scene, &patch)?;
            complete_all(&mut next);
            *scene = next;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(Json(Applied {
        item: scene,
        applied_at_frame: frame,
    }))
}

/// The canvas.
#[utoipa::path(get, path = "/api/scene/canvas", tag = "scene", responses((status = 200, body = CanvasProperties)))]
pub async fn get_canvas(State(s): State<AppState>) -> Json<CanvasProperties> {
    Json(s.scenes.scene().canvas)
}

/// Changes the canvas (merge patch).
#[utoipa::path(patch, path = "/api/scene/canvas", tag = "scene",
    request_body(content = Object, content_type = "application/json", description = "merge patch of CanvasProperties"),
    responses((status = 200, body = Applied<CanvasProperties>), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_canvas(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Applied<CanvasProperties>>, ApiError> {
    let patch = json_body(&headers, body)?;
    super::contract::check_patch("/api/scene/canvas", &patch)?;
    let ((), scene, frame) = s
        .scenes
        .update(|scene| {
            scene.canvas = merge(&scene.canvas, &patch)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(Json(Applied {
        item: scene.canvas,
        applied_at_frame: frame,
    }))
}

/// Adds a layer (201); an id is generated when none is given.
#[utoipa::path(post, path = "/api/scene/layers", tag = "scene",
    request_body(content = Layer, content_type = "application/json"),
    responses((status = 201, body = Applied<Layer>), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add_layer(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = json_body(&headers, body)?;
    let mut layer: Layer = decode(body)?;
    let (layer, _, frame) = s
        .scenes
        .update(|scene| {
            complete(&mut layer, &scene.layers);
            if scene.layers.iter().any(|l| l.id == layer.id) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("layer {:?} exists", layer.id),
                ));
            }
            scene.layers.push(layer.clone());
            Ok(layer)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Applied {
            item: layer,
            applied_at_frame: frame,
        }),
    ))
}

/// One layer.
#[utoipa::path(get, path = "/api/scene/layers/{id}", tag = "scene", params(("id" = String, Path)),
    responses((status = 200, body = Layer), (status = 404, body = ErrorBody)))]
pub async fn get_layer(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Layer>, ApiError> {
    let scene = s.scenes.scene();
    scene
        .layers
        .into_iter()
        .find(|l| l.id == id)
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

/// Changes a layer (merge patch); its id cannot change. With `"animate": {"durationMs",
/// "easing"}` in the body, position, size, rotation and opacity move from the old values to
/// the new ones over that time; `appliedAtFrame` is then the first frame of the movement.
#[utoipa::path(patch, path = "/api/scene/layers/{id}", tag = "scene", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json", description = "merge patch of Layer, optionally with animate"),
    responses((status = 200, body = Applied<Layer>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_layer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Applied<Layer>>, ApiError> {
    let mut patch = json_body(&headers, body)?;
    super::contract::check_patch("/api/scene/layers/{id}", &patch)?;
    let animate: Option<Animate> = match patch.as_object_mut().and_then(|o| o.remove("animate")) {
        Some(v) => Some(decode(v).map_err(|e| prefixed("animate", e))?),
        None => None,
    };
    if let Some(a) = &animate
        && a.duration_ms > 60_000
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            "animate.durationMs: 0..=60000",
        ));
    }
    let (layer, _, frame) = s
        .scenes
        .update_animated(|scene| {
            let layer = layer_mut(scene, &id)?;
            let next: Layer = merge(layer, &patch)?;
            if next.id != id {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "out_of_range",
                    "id: a layer's id cannot change",
                ));
            }
            let tweens = match &animate {
                Some(a) if a.duration_ms > 0 && layer.position != next.position => vec![Tween {
                    layer: id.clone(),
                    from: layer.position.clone(),
                    to: next.position.clone(),
                    duration_ms: a.duration_ms,
                    easing: a.easing,
                }],
                _ => Vec::new(),
            };
            *layer = next.clone();
            Ok((next, tweens))
        })
        .await?;
    Ok(Json(Applied {
        item: layer,
        applied_at_frame: frame,
    }))
}

fn prefixed(field: &str, mut e: ApiError) -> ApiError {
    e.message = format!("{field}.{}", e.message);
    e
}

/// Removes a layer.
#[utoipa::path(delete, path = "/api/scene/layers/{id}", tag = "scene", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete_layer(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let ((), _, frame) = s
        .scenes
        .update(|scene| {
            let before = scene.layers.len();
            scene.layers.retain(|l| l.id != id);
            if scene.layers.len() == before {
                return Err(not_found(&id));
            }
            Ok(())
        })
        .await?;
    Ok(Json(Deleted {
        id,
        applied_at_frame: frame,
    }))
}

/// A layer's position.
#[utoipa::path(get, path = "/api/scene/layers/{id}/position", tag = "scene", params(("id" = String, Path)),
    responses((status = 200, body = Position), (status = 404, body = ErrorBody)))]
pub async fn get_position(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Position>, ApiError> {
    get_layer(State(s), Path(id))
        .await
        .map(|l| Json(l.0.position))
}

/// Replaces a layer's position.
#[utoipa::path(put, path = "/api/scene/layers/{id}/position", tag = "scene", params(("id" = String, Path)),
    request_body(content = Position, content_type = "application/json"),
    responses((status = 200, body = Applied<Position>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_position(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Applied<Position>>, ApiError> {
    let position: Position = decode(json_body(&headers, body)?)?;
    if !valid_id(&id) {
        return Err(not_found(&id));
    }
    let (position, _, frame) = s
        .scenes
        .update(|scene| {
            let layer = layer_mut(scene, &id)?;
            layer.position = position;
            Ok::<_, ApiError>(layer.position.clone())
        })
        .await?;
    Ok(Json(Applied {
        item: position,
        applied_at_frame: frame,
    }))
}
