//! The EBU OGraf Server API at `/ograf/v1`: a facade over the templates and the live scene,
//! for OGraf controllers (automation, graphics GUIs). It implements the Server API of
//! ebu/ograf at [`SPEC_COMMIT`] ([`SPEC_DATE`], a draft at that revision).
//!
//! - Graphics are the installed templates; a graphic's id is the template id and its
//!   manifest is generated ([`manifest`]).
//! - There is one renderer, [`RENDERER_ID`]: the program. Its render targets are layer ids
//!   (`{"layerId": "…"}`).
//! - A graphic instance is a template layer of the live scene that `load` made; the layer's
//!   name, `ograf:<graphicInstanceId>`, is what marks it (so the facade knows its layers after
//!   a restart, and a layer made through `/api` is never the facade's to replace or clear).
//!   `playAction` and `stopAction` put it on and off air (the one function that decides
//!   what that means is `set_on_air`); `updateAction` merges data into its params; `clear`
//!   removes facade layers.
//!
//! Every edit is a scene edit through the Scene Manager, like `/api/scene/layers`, and is
//! answered once on air. Errors are RFC 7807 problems ([`problem`]); a template that refuses
//! or faults on the data is 550. The routes are not in `/api/openapi.json` (they follow the
//! OGraf document); [`access::OGRAF_ROUTE_ROLES`] gives each its role.

pub mod manifest;
pub mod problem;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::{self, Refusal};
use super::app::{AppState, MAX_JSON_BODY, json_body};
use crate::auth::Role;
use crate::state::model::from_json;
use manifest::{Manifest, STEP_COUNT};
use problem::Problem;
use sm_scene::{Layer, Scene, SceneError, valid_id};

/// The revision of the OGraf specification implemented: this commit of ebu/ograf.
pub const SPEC_COMMIT: &str = "33366df2f00ba87119ad221cea987a7c464733d0";
/// The date of [`SPEC_COMMIT`].
pub const SPEC_DATE: &str = "2026-04-15";
/// The id of the one renderer: the program (the stream output).
pub const RENDERER_ID: &str = "program";
/// The name of a layer the facade loaded begins with this, followed by its
/// `graphicInstanceId`.
pub const NAME_PREFIX: &str = "ograf:";
/// Where the facade is mounted: the first segment of its paths.
pub const OGRAF_PREFIX: &str = "/ograf/";

/// Every other path below `/ograf/v1`: answered 404 as a problem.
const OTHER_PATHS: &str = "/ograf/v1/{*rest}";

/// The routes, each behind its role in [`access::OGRAF_ROUTE_ROLES`], with the API's body
/// limit.
pub fn router(state: AppState) -> Router {
    const GI: &str = "/ograf/v1/renderers/{rendererId}/target/graphicInstance";
    Router::new()
        .route("/ograf/v1", get(server_info).fallback(not_allowed))
        .route("/ograf/v1/", get(server_info).fallback(not_allowed))
        .route(
            "/ograf/v1/graphics",
            get(list_graphics).fallback(not_allowed),
        )
        .route(
            "/ograf/v1/graphics/{graphicId}",
            get(get_graphic).fallback(not_allowed),
        )
        .route(
            "/ograf/v1/renderers",
            get(list_renderers).fallback(not_allowed),
        )
        .route(
            "/ograf/v1/renderers/{rendererId}",
            get(get_renderer).fallback(not_allowed),
        )
        .route(
            "/ograf/v1/renderers/{rendererId}/target",
            get(get_target).fallback(not_allowed),
        )
        .route(&format!("{GI}/clear"), put(clear).fallback(not_allowed))
        .route(&format!("{GI}/load"), post(load).fallback(not_allowed))
        .route(
            &format!("{GI}/playAction"),
            post(play).fallback(not_allowed),
        )
        .route(
            &format!("{GI}/stopAction"),
            post(stop).fallback(not_allowed),
        )
        .route(
            &format!("{GI}/updateAction"),
            post(update).fallback(not_allowed),
        )
        .route(OTHER_PATHS, any(no_route))
        .layer(middleware::from_fn_with_state(state.clone(), require_role))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

/// The role check of `/api` ([`access::authorize`] with [`access::required_role`]), its
/// refusals as problems. A path no route takes needs a viewer (anyone with a token hears
/// that it is not found).
async fn require_role(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let need = match req.extensions().get::<MatchedPath>() {
        Some(path) if path.as_str() != OTHER_PATHS => {
            access::required_role(req.method(), path.as_str())
        }
        _ => Some(Role::Viewer),
    };
    match access::admit(&state, &mut req, need) {
        Ok(()) => next.run(req).await,
        Err(Refusal::Denied(e)) => Problem::from(e).into_response(),
        Err(Refusal::RetryAfter(secs)) => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("too many failed authentications from this address; retry in {secs} s"),
            );
            p.retry_after = Some(secs);
            p.into_response()
        }
    }
}

async fn no_route(uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no OGraf route {}",
            uri.path().chars().take(200).collect::<String>()
        ),
    )
}

async fn not_allowed(method: axum::http::Method) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this OGraf route does not take {method}"),
    )
}

// ---------------------------------------------------------------------------------------
// On air
//
// The one place that decides what "on air" is for a graphic instance: its template is
// playing (`template.playing`), so a template of plugin API 0.2.0 animates in on
// `playAction` and out on `stopAction`, and one of 0.1.0 is shown and hidden. The layer
// itself stays visible.

/// Whether the graphic instance of `layer` is on air.
fn on_air(layer: &Layer) -> bool {
    layer.visible && layer.template.as_ref().is_some_and(|t| t.playing)
}

/// Puts the graphic instance of `layer` on air, or takes it off.
fn set_on_air(layer: &mut Layer, on: bool) {
    layer.visible = true;
    if let Some(template) = layer.template.as_mut() {
        template.playing = on;
    }
}

// ---------------------------------------------------------------------------------------
// Types of the Server API

/// `GET /ograf/v1`.
#[derive(Debug, Serialize)]
struct ServerInfo {
    name: &'static str,
    description: String,
    version: &'static str,
}

/// Minimal information about a graphic (`GraphicListInfo`).
#[derive(Debug, Clone, Serialize)]
struct GraphicListInfo {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
}

/// `GET /ograf/v1/graphics`.
#[derive(Debug, Serialize)]
struct GraphicList {
    graphics: Vec<GraphicListInfo>,
}

/// `GET /ograf/v1/graphics/{graphicId}`: the manifest under both names the pinned schema
/// asks for (its properties name `graphic`, its `required` names `graphic` and `manifest`).
#[derive(Debug, Serialize)]
struct GraphicInfo {
    graphic: Manifest,
    manifest: Manifest,
}

/// A render target of the program: a layer id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RenderTarget {
    layer_id: String,
}

impl RenderTarget {
    /// The layer id, if it is a valid one (400 if not).
    fn checked(self) -> Result<String, Problem> {
        if valid_id(&self.layer_id) {
            Ok(self.layer_id)
        } else {
            Err(Problem::bad_request(format!(
                "renderTarget.layerId {:?}: 1 to 64 of A-Z a-z 0-9 _ -",
                self.layer_id.chars().take(80).collect::<String>()
            )))
        }
    }
}

/// A renderer in the list.
#[derive(Debug, Serialize)]
struct RendererSummary {
    id: &'static str,
    name: &'static str,
    description: &'static str,
}

/// `GET /ograf/v1/renderers`.
#[derive(Debug, Serialize)]
struct RendererList {
    renderers: Vec<RendererSummary>,
}

/// `GET /ograf/v1/renderers/{rendererId}`.
#[derive(Debug, Serialize)]
struct RendererAnswer {
    renderer: RendererInfo,
}

/// The program renderer (`RendererInfo`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RendererInfo {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    custom_actions: Vec<Value>,
    render_characteristics: RenderCharacteristics,
    render_target_schema: Value,
    status: RendererStatus,
    render_targets: Vec<RenderTargetInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RenderCharacteristics {
    resolution: Resolution,
    frame_rate: u32,
}

#[derive(Debug, Serialize)]
struct Resolution {
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct RendererStatus {
    /// `OK`, `WARNING` or `ERROR`.
    status: &'static str,
    message: String,
}

/// A render target and what is loaded on it (`RenderTargetInfo`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RenderTargetInfo {
    render_target: RenderTarget,
    name: String,
    graphic_instances: Vec<InstanceInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceInfo {
    graphic_instance_id: String,
    graphic: GraphicListInfo,
}

/// `?renderTarget=<JSON>` of `GET …/target`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetQuery {
    render_target: Option<String>,
}

/// The body of `load`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadRequest {
    render_target: RenderTarget,
    graphic_id: String,
    params: DataParams,
}

/// `params` of `load` and `updateAction`. Other fields (`skipAnimation`, vendor fields)
/// are taken and ignored: a change is on air at once.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataParams {
    data: Value,
}

/// The body of an action on a graphic instance, with the action's `params`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionRequest<P> {
    render_target: RenderTarget,
    graphic_instance_id: String,
    params: P,
}

/// `params` of `playAction` (`skipAnimation` is taken and ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlayParams {
    #[serde(default)]
    delta: Option<f64>,
    #[serde(default)]
    goto: Option<f64>,
}

/// `params` of `stopAction`: an object, whose fields (`skipAnimation`) are ignored.
#[derive(Debug, Deserialize)]
struct StopParams {}

/// What `load`, `updateAction` and `stopAction` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionAnswer {
    graphic_instance_id: String,
    status_code: u16,
    status_message: String,
}

/// What `playAction` answers: with the step now shown (`-1`: none, the graphic went to its
/// end).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlayAnswer {
    #[serde(flatten)]
    action: ActionAnswer,
    current_step: i64,
}

/// The body of `clear`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClearRequest {
    filters: Vec<GraphicFilter>,
}

/// Which graphic instances a `clear` removes: those matching every field given.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphicFilter {
    #[serde(default)]
    render_target: Option<RenderTarget>,
    #[serde(default)]
    graphic_id: Option<String>,
    #[serde(default)]
    graphic_instance_id: Option<String>,
}

impl GraphicFilter {
    fn matches(&self, layer: &Layer, instance: &str) -> bool {
        self.render_target
            .as_ref()
            .is_none_or(|t| t.layer_id == layer.id)
            && self
                .graphic_id
                .as_ref()
                .is_none_or(|g| layer.template.as_ref().is_some_and(|t| &t.id == g))
            && self
                .graphic_instance_id
                .as_ref()
                .is_none_or(|i| i == instance)
    }
}

/// What `clear` answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClearAnswer {
    graphic_instances: Vec<Cleared>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Cleared {
    render_target: RenderTarget,
    graphic_instance_id: String,
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A request body: JSON within the API's limit (415, 413, 400 as problems), decoded into
/// `T` (400 naming the field).
fn body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<T, Problem> {
    let value = json_body(headers, bytes)?;
    if !value.is_object() {
        return Err(Problem::bad_request("the body must be a JSON object"));
    }
    from_json(value).map_err(|e| Problem::bad_request(e.message))
}

/// The renderer id of the path: the program, or 404.
fn renderer(path: Result<Path<String>, PathRejection>) -> Result<(), Problem> {
    let Path(id) = path.map_err(|e| Problem::bad_request(e.body_text()))?;
    if id == RENDERER_ID {
        Ok(())
    } else {
        Err(Problem::not_found(format!(
            "no renderer {:?}; the one renderer is {RENDERER_ID:?}",
            id.chars().take(80).collect::<String>()
        )))
    }
}

/// The graphic instance id of a layer the facade loaded; `None` for any other layer.
fn instance_of(layer: &Layer) -> Option<&str> {
    layer.template.as_ref()?;
    layer.name.strip_prefix(NAME_PREFIX)
}

/// A new graphic instance id for a layer: the layer id and 8 random hex digits.
fn new_instance_id(layer_id: &str) -> Result<String, Problem> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(Problem::internal)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{layer_id}-{hex}"))
}

/// The list entry of graphic `id` (its name when the template is still installed).
fn graphic_info(s: &AppState, id: &str) -> GraphicListInfo {
    let view = s.scenes.templates().and_then(|r| r.get(id));
    GraphicListInfo {
        id: id.to_string(),
        name: view
            .as_ref()
            .map_or_else(|| id.to_string(), |v| v.info.name.clone()),
        description: view.map(|v| v.info.description).unwrap_or_default(),
    }
}

/// The render target of layer `layer_id` and the graphic instance on it, if the facade
/// loaded one there.
fn target_info(s: &AppState, layer_id: &str, layer: Option<&Layer>) -> RenderTargetInfo {
    let graphic_instances = layer
        .and_then(|l| Some((instance_of(l)?, l.template.as_ref()?)))
        .map(|(instance, template)| InstanceInfo {
            graphic_instance_id: instance.to_string(),
            graphic: graphic_info(s, &template.id),
        })
        .into_iter()
        .collect();
    RenderTargetInfo {
        render_target: RenderTarget {
            layer_id: layer_id.to_string(),
        },
        name: format!("layer {layer_id}"),
        graphic_instances,
    }
}

/// The index of the layer holding graphic instance `instance` on render target `layer_id`
/// (404 naming what is there instead).
fn find_instance(scene: &Scene, layer_id: &str, instance: &str) -> Result<usize, Problem> {
    let i = scene
        .layers
        .iter()
        .position(|l| l.id == layer_id && instance_of(l).is_some())
        .ok_or_else(|| {
            Problem::not_found(format!("no graphic instance on render target {layer_id:?}"))
        })?;
    match instance_of(&scene.layers[i]) {
        Some(there) if there == instance => Ok(i),
        there => Err(Problem::not_found(format!(
            "render target {layer_id:?} holds graphic instance {:?}, not {:?}",
            there.unwrap_or_default(),
            instance.chars().take(80).collect::<String>()
        ))),
    }
}

/// Why a scene edit of the facade failed.
enum EditError {
    /// The facade refused the request.
    Refused(Problem),
    /// The scene refused the edited scene.
    Scene(SceneError),
}

impl From<SceneError> for EditError {
    fn from(e: SceneError) -> Self {
        Self::Scene(e)
    }
}

/// Applies `edit` to the live scene and waits until it is on air. `edit` returns its result
/// and the index of the layer whose params it set, if any: when the template of that layer
/// refuses (or faults on) them, the answer is 550 naming `graphic`.
async fn edit_scene<T>(
    s: &AppState,
    graphic: &str,
    edit: impl FnOnce(&mut Scene) -> Result<(T, Option<usize>), Problem>,
) -> Result<T, Problem> {
    let mut configured = None;
    let outcome = s
        .scenes
        .update(|scene| {
            let (out, index) = edit(scene).map_err(EditError::Refused)?;
            configured = index;
            Ok::<_, EditError>(out)
        })
        .await;
    match outcome {
        Ok((out, _, _)) => Ok(out),
        Err(EditError::Refused(p)) => Err(p),
        Err(EditError::Scene(SceneError::InvalidParams { field, message }))
            if configured.is_some_and(|i| field.starts_with(&format!("layers[{i}]."))) =>
        {
            Err(Problem::graphic_failed(format!(
                "graphic {graphic:?} refused the data: {message}"
            )))
        }
        Err(EditError::Scene(e)) => Err(e.into()),
    }
}

/// The template's params for `load`: `data` (an object, or null for none) merged over the
/// template's default params.
fn load_params(defaults: &Value, data: Value) -> Result<Value, Problem> {
    match data {
        Value::Null => Ok(defaults.clone()),
        Value::Object(_) => {
            let mut params = defaults.clone();
            json_patch::merge(&mut params, &data);
            Ok(params)
        }
        _ => Err(Problem::bad_request(
            "params.data: must be a JSON object (the graphic's data) or null",
        )),
    }
}

/// The step a play goes to (OGraf's step model, zero-based), from `current` (`None`: not
/// playing): `goto` if given, else `current` (or -1) plus `delta` (default 1). `None`: past
/// the last step, i.e. the graphic's end. 400 for a step that is not a whole number or is
/// below 0.
fn target_step(
    current: Option<i64>,
    goto: Option<f64>,
    delta: Option<f64>,
    step_count: i64,
) -> Result<Option<i64>, Problem> {
    let whole = |name: &str, v: f64| {
        if v.fract() == 0.0 && v.abs() <= 1e9 {
            Ok(v as i64)
        } else {
            Err(Problem::bad_request(format!(
                "params.{name}: {v} is not a whole number of steps"
            )))
        }
    };
    let target = match (goto, delta) {
        (Some(g), _) => whole("goto", g)?,
        (None, d) => current.unwrap_or(-1) + whole("delta", d.unwrap_or(1.0))?,
    };
    if target < 0 {
        return Err(Problem::bad_request(format!(
            "params: step {target} does not exist (steps count from 0)"
        )));
    }
    Ok((target < step_count).then_some(target))
}

// ---------------------------------------------------------------------------------------
// Handlers

/// Server information.
async fn server_info() -> Json<ServerInfo> {
    Json(ServerInfo {
        name: "stream-manager",
        description: format!(
            "Live-graphics streaming server: its templates as OGraf graphics on the program \
             (OGraf Server API of ebu/ograf {}, {SPEC_DATE})",
            &SPEC_COMMIT[..12]
        ),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The installed templates.
async fn list_graphics(State(s): State<AppState>) -> Json<GraphicList> {
    let graphics = s
        .scenes
        .templates()
        .map(|r| r.list())
        .unwrap_or_default()
        .into_iter()
        .map(|t| GraphicListInfo {
            id: t.id,
            name: t.info.name,
            description: t.info.description,
        })
        .collect();
    Json(GraphicList { graphics })
}

/// One template's manifest.
async fn get_graphic(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<GraphicInfo>, Problem> {
    let Path(id) = path.map_err(|e| Problem::bad_request(e.body_text()))?;
    let view = s
        .scenes
        .templates()
        .and_then(|r| r.get(&id))
        .ok_or_else(|| Problem::not_found(format!("no graphic {id:?}")))?;
    let m = manifest::manifest(&view);
    Ok(Json(GraphicInfo {
        graphic: m.clone(),
        manifest: m,
    }))
}

const RENDERER_NAME: &str = "Program";
const RENDERER_DESCRIPTION: &str = "The stream output: graphic instances are template layers \
    of the live scene, on render targets named by layer id";

/// The one renderer.
async fn list_renderers() -> Json<RendererList> {
    Json(RendererList {
        renderers: vec![RendererSummary {
            id: RENDERER_ID,
            name: RENDERER_NAME,
            description: RENDERER_DESCRIPTION,
        }],
    })
}

/// The program renderer, its render target schema and the render targets the facade uses.
async fn get_renderer(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RendererAnswer>, Problem> {
    renderer(path)?;
    let config = s.state.config();
    let state = s.state.state();
    let status = match (&state.error, state.is_live) {
        (Some(e), _) => RendererStatus {
            status: "ERROR",
            message: e.chars().take(500).collect(),
        },
        (None, true) if state.is_paused => RendererStatus {
            status: "WARNING",
            message: "the stream is paused: the last frame repeats".into(),
        },
        (None, true) => RendererStatus {
            status: "OK",
            message: "live".into(),
        },
        (None, false) => RendererStatus {
            status: "OK",
            message: "not live: graphics are loaded and played, seen once the stream starts".into(),
        },
    };
    let scene = s.scenes.scene();
    let render_targets = scene
        .layers
        .iter()
        .filter(|l| instance_of(l).is_some())
        .map(|l| target_info(&s, &l.id, Some(l)))
        .collect();
    Ok(Json(RendererAnswer {
        renderer: RendererInfo {
            id: RENDERER_ID,
            name: RENDERER_NAME,
            description: RENDERER_DESCRIPTION,
            custom_actions: Vec::new(),
            render_characteristics: RenderCharacteristics {
                resolution: Resolution {
                    width: config.width,
                    height: config.height,
                },
                frame_rate: config.target_fps,
            },
            render_target_schema: json!({
                "type": "object",
                "properties": {
                    "layerId": {
                        "type": "string",
                        "description": "Id of a layer of the live scene: the facade's own, or a new one",
                        "pattern": "^[A-Za-z0-9_-]{1,64}$"
                    }
                },
                "required": ["layerId"]
            }),
            status,
            render_targets,
        },
    }))
}

/// One render target: `?renderTarget={"layerId": "…"}`. A layer id no layer has is an
/// empty target; a layer made through `/api` is no target of the facade (404).
async fn get_target(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<TargetQuery>, QueryRejection>,
) -> Result<Json<RenderTargetInfo>, Problem> {
    renderer(path)?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let raw = query
        .render_target
        .ok_or_else(|| Problem::bad_request("the query needs renderTarget (JSON)"))?;
    let target: RenderTarget = serde_json::from_str(&raw)
        .map_err(|e| Problem::bad_request(format!("renderTarget: {e}")))?;
    let layer_id = target.checked()?;
    let scene = s.scenes.scene();
    let layer = scene.layers.iter().find(|l| l.id == layer_id);
    if layer.is_some_and(|l| instance_of(l).is_none()) {
        return Err(foreign(&layer_id));
    }
    Ok(Json(target_info(&s, &layer_id, layer)))
}

/// 404 for a layer id that a layer made through `/api` holds.
fn foreign(layer_id: &str) -> Problem {
    Problem::not_found(format!(
        "render target {layer_id:?} is a layer made through /api, not one of the OGraf \
         facade's; use another layerId"
    ))
}

/// Loads a graphic onto a render target: a template layer with that id, not on air, with
/// the data over the template's defaults. A layer the facade loaded there before is
/// replaced (keeping its position); a new one gets the template's default size, centred,
/// above every other layer.
async fn load(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<ActionAnswer>, Problem> {
    renderer(path)?;
    let req: LoadRequest = body(&headers, bytes)?;
    let layer_id = req.render_target.checked()?;
    let graphic = req.graphic_id;
    let build = s
        .scenes
        .templates()
        .and_then(|r| r.build(&graphic))
        .ok_or_else(|| Problem::not_found(format!("no graphic {graphic:?}")))?;
    let params = load_params(&build.info.default_params, req.params.data)?;
    build
        .check_params(&params)
        .map_err(|m| Problem::bad_request(format!("params.data: {m}")))?;
    let instance = new_instance_id(&layer_id)?;
    let [w, h] = build.info.default_size;
    edit_scene(&s, &graphic, |scene| {
        let existing = scene.layers.iter().position(|l| l.id == layer_id);
        let position = match existing {
            Some(i) if instance_of(&scene.layers[i]).is_none() => return Err(foreign(&layer_id)),
            Some(i) => {
                serde_json::to_value(&scene.layers[i].position).map_err(Problem::internal)?
            }
            None => {
                let c = &scene.canvas;
                let (width, height) = (w.min(c.width).max(1), h.min(c.height).max(1));
                let top = scene.layers.iter().map(|l| l.position.z_index).max();
                json!({
                    "x": (c.width - width) / 2, "y": (c.height - height) / 2,
                    "width": width, "height": height,
                    "zIndex": top.map_or(0, |z| z.saturating_add(1))
                })
            }
        };
        let mut layer: Layer = serde_json::from_value(json!({
            "id": layer_id,
            "name": format!("{NAME_PREFIX}{instance}"),
            "kind": "template",
            "position": position,
            "template": {"id": graphic, "params": params}
        }))
        .map_err(Problem::internal)?;
        set_on_air(&mut layer, false);
        let index = match existing {
            Some(i) => {
                scene.layers[i] = layer;
                i
            }
            None => {
                scene.layers.push(layer);
                scene.layers.len() - 1
            }
        };
        Ok(((), Some(index)))
    })
    .await?;
    Ok(Json(ActionAnswer {
        graphic_instance_id: instance,
        status_code: 200,
        status_message: format!("loaded on layer {layer_id:?}, not on air"),
    }))
}

/// The template id of the graphic instance `instance` on `layer_id` in the live scene.
fn graphic_of(s: &AppState, layer_id: &str, instance: &str) -> Result<String, Problem> {
    let scene = s.scenes.scene();
    let i = find_instance(&scene, layer_id, instance)?;
    let template = scene.layers[i].template.as_ref();
    Ok(template.map(|t| t.id.clone()).unwrap_or_default())
}

/// An action on a graphic instance, checked: the renderer, the body, the render target,
/// and the instance's template id in the live scene.
struct InstanceAction<P> {
    layer_id: String,
    instance: String,
    params: P,
    graphic: String,
}

impl<P: serde::de::DeserializeOwned> InstanceAction<P> {
    fn read(
        s: &AppState,
        path: Result<Path<String>, PathRejection>,
        headers: &HeaderMap,
        bytes: Result<Bytes, BytesRejection>,
    ) -> Result<Self, Problem> {
        renderer(path)?;
        let req: ActionRequest<P> = body(headers, bytes)?;
        let layer_id = req.render_target.checked()?;
        let instance = req.graphic_instance_id;
        let graphic = graphic_of(s, &layer_id, &instance)?;
        Ok(Self {
            layer_id,
            instance,
            params: req.params,
            graphic,
        })
    }
}

/// Plays the graphic instance: on air at step 0, or (played again: past its one step) off
/// air.
async fn play(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<PlayAnswer>, Problem> {
    let InstanceAction {
        layer_id,
        instance,
        params,
        graphic,
    } = InstanceAction::<PlayParams>::read(&s, path, &headers, bytes)?;
    let step = edit_scene(&s, &graphic, |scene| {
        let i = find_instance(scene, &layer_id, &instance)?;
        let layer = &mut scene.layers[i];
        let current = on_air(layer).then_some(0);
        let step = target_step(current, params.goto, params.delta, STEP_COUNT)?;
        set_on_air(layer, step.is_some());
        Ok((step, None))
    })
    .await?;
    let status_message = match step {
        Some(n) => format!("on air at step {n}"),
        None => "past its last step: off air".to_string(),
    };
    Ok(Json(PlayAnswer {
        action: ActionAnswer {
            graphic_instance_id: instance,
            status_code: 200,
            status_message,
        },
        current_step: step.unwrap_or(-1),
    }))
}

/// Takes the graphic instance off air (it stays loaded).
async fn stop(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<ActionAnswer>, Problem> {
    let InstanceAction {
        layer_id,
        instance,
        params: StopParams {},
        graphic,
    } = InstanceAction::<StopParams>::read(&s, path, &headers, bytes)?;
    edit_scene(&s, &graphic, |scene| {
        let i = find_instance(scene, &layer_id, &instance)?;
        set_on_air(&mut scene.layers[i], false);
        Ok(((), None))
    })
    .await?;
    Ok(Json(ActionAnswer {
        graphic_instance_id: instance,
        status_code: 200,
        status_message: "off air".into(),
    }))
}

/// Merges `params.data` into the graphic instance's params (a JSON merge patch: `null`
/// removes a field, so it takes its default), live.
async fn update(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<ActionAnswer>, Problem> {
    let InstanceAction {
        layer_id,
        instance,
        params: DataParams { data },
        graphic,
    } = InstanceAction::<DataParams>::read(&s, path, &headers, bytes)?;
    if !data.is_object() {
        return Err(Problem::bad_request(
            "params.data: must be a JSON object (the fields to change)",
        ));
    }
    let build = s
        .scenes
        .templates()
        .and_then(|r| r.build(&graphic))
        .ok_or_else(|| Problem::not_found(format!("graphic {graphic:?} was removed")))?;
    edit_scene(&s, &graphic, |scene| {
        let i = find_instance(scene, &layer_id, &instance)?;
        let Some(spec) = scene.layers[i].template.as_mut() else {
            return Err(Problem::internal("a facade layer without a template"));
        };
        let mut params = spec.params_or(&build.info.default_params).clone();
        json_patch::merge(&mut params, &data);
        build
            .check_params(&params)
            .map_err(|m| Problem::bad_request(format!("params.data: {m}")))?;
        spec.params = params;
        Ok(((), Some(i)))
    })
    .await?;
    Ok(Json(ActionAnswer {
        graphic_instance_id: instance,
        status_code: 200,
        status_message: "updated".into(),
    }))
}

/// Removes the graphic instances (the facade's layers) that match any of the filters; no
/// filters: all of them. Layers made through `/api` stay.
async fn clear(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<ClearAnswer>, Problem> {
    renderer(path)?;
    let req: ClearRequest = body(&headers, bytes)?;
    let cleared = edit_scene(&s, "", |scene| {
        let mut cleared = Vec::new();
        scene.layers.retain(|l| {
            let Some(instance) = instance_of(l) else {
                return true;
            };
            if req.filters.is_empty() || req.filters.iter().any(|f| f.matches(l, instance)) {
                cleared.push(Cleared {
                    render_target: RenderTarget {
                        layer_id: l.id.clone(),
                    },
                    graphic_instance_id: instance.to_string(),
                });
                return false;
            }
            true
        });
        Ok((cleared, None))
    })
    .await?;
    Ok(Json(ClearAnswer {
        graphic_instances: cleared,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Access, TokenEntry, digest_hex};
    use axum::body::Body;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// The operations of the pinned Server API this facade implements, as
    /// `(method, path below /ograf/v1)`.
    const IMPLEMENTED: &[(&str, &str)] = &[
        ("get", "/"),
        ("get", "/graphics"),
        ("get", "/graphics/{graphicId}"),
        ("get", "/renderers"),
        ("get", "/renderers/{rendererId}"),
        ("get", "/renderers/{rendererId}/target"),
        (
            "put",
            "/renderers/{rendererId}/target/graphicInstance/clear",
        ),
        (
            "post",
            "/renderers/{rendererId}/target/graphicInstance/load",
        ),
        (
            "post",
            "/renderers/{rendererId}/target/graphicInstance/playAction",
        ),
        (
            "post",
            "/renderers/{rendererId}/target/graphicInstance/stopAction",
        ),
        (
            "post",
            "/renderers/{rendererId}/target/graphicInstance/updateAction",
        ),
    ];

    /// An API state whose tokens are `adm` (admin), `op` (operator) and `view` (viewer).
    fn app() -> AppState {
        let mut app = crate::api::tests::app(None);
        let token = |name: &str, role| TokenEntry {
            name: name.into(),
            role,
            sha256: digest_hex(name),
        };
        app.access = Arc::new(
            Access::new(
                Some("adm"),
                &[token("op", Role::Operator), token("view", Role::Viewer)],
            )
            .unwrap(),
        );
        app
    }

    /// A request through the whole HTTP router: status, content type and JSON body.
    async fn call(
        app: &AppState,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, String, Value) {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = crate::api::router(app.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            ct,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// An operation's path as the router matches it.
    fn full(path: &str) -> String {
        format!("/ograf/v1{}", path.trim_end_matches('/'))
    }

    /// An operation's path with its parameters filled in.
    fn uri(path: &str) -> String {
        full(path)
            .replace("{graphicId}", "nope")
            .replace("{rendererId}", RENDERER_ID)
    }

    /// The role table names exactly the implemented operations (under `/ograf/v1`, plus the
    /// server information at `/ograf/v1/` too), none of them also in `/api`'s table; reads
    /// are a viewer's, actions an operator's.
    #[test]
    fn every_implemented_operation_has_its_role() {
        let mut want: Vec<(String, String)> = IMPLEMENTED
            .iter()
            .map(|(m, p)| (m.to_string(), full(p)))
            .collect();
        want.push(("get".into(), "/ograf/v1/".into()));
        want.sort();
        let mut table: Vec<(String, String)> = access::OGRAF_ROUTE_ROLES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        table.sort();
        assert_eq!(table, want);
        for (method, path, role) in access::OGRAF_ROUTE_ROLES {
            let want = if *method == "get" {
                Role::Viewer
            } else {
                Role::Operator
            };
            assert_eq!(*role, Some(want), "{method} {path}");
            assert!(
                !access::ROUTE_ROLES.iter().any(|(_, p, _)| p == path),
                "{path} is in both tables"
            );
            assert_eq!(
                access::required_role(&method.parse().unwrap(), path),
                Some(want)
            );
        }
    }

    /// Every operation is mounted behind its role: no token is a 401, a viewer's token on
    /// an action a 403 naming the role, both as problems; an operator gets past the check.
    #[tokio::test]
    async fn every_route_is_guarded_and_refusals_are_problems() {
        let app = app();
        for (method, path) in IMPLEMENTED {
            let m = method.to_uppercase();
            let path = uri(path);
            let body = (*method != "get").then_some("{}");
            let (status, ct, problem) = call(&app, &m, &path, body, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{m} {path}");
            assert_eq!(ct, problem::PROBLEM_JSON, "{m} {path}");
            assert_eq!(problem["status"], 401);
            assert_eq!(problem["type"], "urn:stream-manager:problem:unauthorized");
            let (status, _, problem) = call(&app, &m, &path, body, Some("view")).await;
            if *method == "get" {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{m} {path}");
                assert_ne!(status, StatusCode::FORBIDDEN, "{m} {path}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{m} {path}");
                let detail = problem["detail"].as_str().unwrap();
                assert!(detail.contains("operator"), "{detail}");
                // An operator passes the check: the empty body is what is refused.
                let (status, ct, problem) = call(&app, &m, &path, body, Some("op")).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{m} {path}: {problem}");
                assert_eq!(ct, problem::PROBLEM_JSON);
            }
        }
        // Unknown paths below /ograf/v1 and other methods are problems too.
        let (status, ct, problem) =
            call(&app, "GET", "/ograf/v1/nothing", None, Some("view")).await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::NOT_FOUND, problem::PROBLEM_JSON)
        );
        assert_eq!(problem["type"], "urn:stream-manager:problem:no_route");
        let (status, _, _) = call(&app, "GET", "/ograf/v1/nothing", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, ct, _) = call(&app, "DELETE", "/ograf/v1/graphics/x", None, Some("adm")).await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, problem::PROBLEM_JSON)
        );
        // Fail closed: a method the table does not know needs an admin.
        let (status, _, _) = call(&app, "DELETE", "/ograf/v1/graphics/x", None, Some("op")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    /// Without templates the facade still answers: no graphics, the program renderer with
    /// its target schema, 404s as problems, and bodies refused with 400/413/415 problems.
    #[tokio::test]
    async fn reads_and_refusals_without_templates() {
        let app = app();
        let get = |path: &'static str| {
            let app = app.clone();
            async move { call(&app, "GET", path, None, Some("view")).await }
        };
        let (status, ct, info) = get("/ograf/v1").await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
        assert_eq!(info["name"], "stream-manager");
        assert_eq!(get("/ograf/v1/").await.2, info);
        assert_eq!(get("/ograf/v1/graphics").await.2, json!({"graphics": []}));
        let (status, _, problem) = get("/ograf/v1/graphics/lower-third").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(problem["detail"].as_str().unwrap().contains("lower-third"));
        let renderers = get("/ograf/v1/renderers").await.2;
        assert_eq!(renderers["renderers"][0]["id"], RENDERER_ID);
        let r = get("/ograf/v1/renderers/program").await.2;
        let r = &r["renderer"];
        assert_eq!(r["renderTargetSchema"]["required"], json!(["layerId"]));
        assert_eq!(r["renderTargets"], json!([]));
        assert_eq!(r["status"]["status"], "OK");
        assert_eq!(r["renderCharacteristics"]["resolution"]["width"], 1920);
        assert_eq!(
            get("/ograf/v1/renderers/other").await.0,
            StatusCode::NOT_FOUND
        );
        // A render target no layer has is empty; one without the query is a bad request.
        let (status, _, target) =
            get("/ograf/v1/renderers/program/target?renderTarget=%7B%22layerId%22%3A%22x%22%7D")
                .await;
        assert_eq!(status, StatusCode::OK, "{target}");
        assert_eq!(target["graphicInstances"], json!([]));
        assert_eq!(target["renderTarget"], json!({"layerId": "x"}));
        assert_eq!(
            get("/ograf/v1/renderers/program/target").await.0,
            StatusCode::BAD_REQUEST
        );
        // A layer made through /api is no target of the facade.
        let logo = r##"{"id":"logo","kind":"shape","position":{"x":0,"y":0,"width":9,"height":9},"shape":{"type":"rect","fill":"#ff0000"}}"##;
        let (status, _, _) = call(&app, "POST", "/api/scene/layers", Some(logo), Some("op")).await;
        assert_eq!(status, StatusCode::CREATED);
        let scene = app.scenes.scene();
        let path =
            "/ograf/v1/renderers/program/target?renderTarget=%7B%22layerId%22%3A%22logo%22%7D";
        assert_eq!(
            call(&app, "GET", path, None, Some("view")).await.0,
            StatusCode::NOT_FOUND
        );
        let onto_logo =
            r#"{"renderTarget":{"layerId":"logo"},"graphicId":"x","params":{"data":null}}"#;
        let load = "/ograf/v1/renderers/program/target/graphicInstance/load";
        let (status, _, _) = call(&app, "POST", load, Some(onto_logo), Some("op")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let cases: &[(&str, StatusCode, &str)] = &[
            (
                "{\"renderTarget\":",
                StatusCode::BAD_REQUEST,
                "malformed_json",
            ),
            ("[1]", StatusCode::BAD_REQUEST, "invalid_body"),
            (
                "{\"graphicId\":\"x\",\"params\":{\"data\":{}}}",
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
            (
                "{\"renderTarget\":{\"layerId\":\"a b\"},\"graphicId\":\"x\",\"params\":{\"data\":{}}}",
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
            (
                "{\"renderTarget\":{\"layerId\":\"l3\",\"bank\":1},\"graphicId\":\"x\",\"params\":{\"data\":{}}}",
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
            (
                "{\"renderTarget\":{\"layerId\":\"l3\"},\"graphicId\":\"x\",\"params\":{}}",
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
            (
                "{\"renderTarget\":{\"layerId\":\"l3\"},\"graphicId\":\"x\",\"params\":{\"data\":{}}}",
                StatusCode::NOT_FOUND,
                "not_found",
            ),
        ];
        for (body, status, code) in cases {
            let (got, ct, problem) = call(&app, "POST", load, Some(body), Some("op")).await;
            assert_eq!(
                (got, problem["type"].as_str().unwrap_or_default()),
                (
                    *status,
                    format!("urn:stream-manager:problem:{code}").as_str()
                ),
                "{body}: {problem}"
            );
            assert_eq!(ct, problem::PROBLEM_JSON);
            assert_eq!(problem["status"], status.as_u16());
        }
        let big = format!("{{\"graphicId\":\"{}\"}}", "x".repeat(MAX_JSON_BODY));
        let (status, ct, _) = call(&app, "POST", load, Some(&big), Some("op")).await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, problem::PROBLEM_JSON)
        );
        // Actions on an instance that is not there are 404s.
        let play = "/ograf/v1/renderers/program/target/graphicInstance/playAction";
        let body = r#"{"renderTarget":{"layerId":"l3"},"graphicInstanceId":"l3-0","params":{}}"#;
        let (status, _, problem) = call(&app, "POST", play, Some(body), Some("op")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
        // Clearing nothing clears nothing, and keeps the layers made through /api.
        let clear = "/ograf/v1/renderers/program/target/graphicInstance/clear";
        let (status, _, answer) =
            call(&app, "PUT", clear, Some(r#"{"filters":[]}"#), Some("op")).await;
        assert_eq!(
            (status, answer),
            (StatusCode::OK, json!({"graphicInstances": []}))
        );
        assert_eq!(app.scenes.scene(), scene);
        let (status, _, _) = call(&app, "PUT", clear, Some("{}"), Some("op")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    /// The facade's layers are the template layers named `ograf:<id>`: play, stop and clear
    /// find them by render target and instance id, and a layer of `/api` is never theirs.
    #[tokio::test]
    async fn instances_are_the_facades_own_template_layers() {
        let layer = |id: &str, name: &str| -> Layer {
            serde_json::from_value(json!({
                "id": id, "name": name, "kind": "template", "visible": false,
                "position": {"x": 0, "y": 0, "width": 10, "height": 10},
                "template": {"id": "t"}
            }))
            .unwrap()
        };
        let scene = Scene {
            layers: vec![
                layer("a", "ograf:a-1"),
                layer("b", "mine"),
                layer("c", "ograf:c-1"),
            ],
            ..Scene::default()
        };
        assert_eq!(instance_of(&scene.layers[0]), Some("a-1"));
        assert_eq!(instance_of(&scene.layers[1]), None);
        assert_eq!(find_instance(&scene, "a", "a-1").unwrap(), 0);
        let wrong = find_instance(&scene, "a", "a-2").unwrap_err();
        assert_eq!(wrong.status, StatusCode::NOT_FOUND);
        assert!(wrong.detail.contains("a-1"), "{}", wrong.detail);
        assert!(find_instance(&scene, "b", "b").is_err());
        let filter = |v: Value| -> GraphicFilter { serde_json::from_value(v).unwrap() };
        assert!(filter(json!({})).matches(&scene.layers[0], "a-1"));
        assert!(
            filter(json!({"renderTarget": {"layerId": "a"}, "graphicId": "t"}))
                .matches(&scene.layers[0], "a-1")
        );
        assert!(
            !filter(json!({"renderTarget": {"layerId": "c"}})).matches(&scene.layers[0], "a-1")
        );
        assert!(!filter(json!({"graphicId": "u"})).matches(&scene.layers[0], "a-1"));
        assert!(!filter(json!({"graphicInstanceId": "c-1"})).matches(&scene.layers[0], "a-1"));
        let ids = [
            new_instance_id("l3").unwrap(),
            new_instance_id("l3").unwrap(),
        ];
        assert_ne!(ids[0], ids[1]);
        assert!(
            ids.iter().all(|i| i.starts_with("l3-") && i.len() == 11),
            "{ids:?}"
        );
        // On air is the template playing, on a visible layer.
        let mut l = layer("x", "ograf:x-1");
        set_on_air(&mut l, true);
        assert!(on_air(&l) && l.visible && l.template.as_ref().unwrap().playing);
        set_on_air(&mut l, false);
        assert!(!on_air(&l) && l.visible && !l.template.as_ref().unwrap().playing);
    }

    /// OGraf's step model for a one-step graphic, with the spec's examples.
    #[test]
    fn play_steps_follow_the_step_model() {
        let step = |current, goto, delta| target_step(current, goto, delta, 1);
        assert_eq!(step(None, None, None).unwrap(), Some(0));
        assert_eq!(step(None, Some(0.0), None).unwrap(), Some(0));
        assert_eq!(step(None, None, Some(1.0)).unwrap(), Some(0));
        assert_eq!(step(Some(0), None, Some(1.0)).unwrap(), None);
        assert_eq!(step(Some(0), None, None).unwrap(), None);
        assert_eq!(step(Some(0), Some(0.0), None).unwrap(), Some(0));
        assert_eq!(target_step(Some(2), None, Some(-2.0), 3).unwrap(), Some(0));
        assert_eq!(target_step(Some(0), None, Some(2.0), 3).unwrap(), Some(2));
        assert!(step(None, Some(-1.0), None).is_err());
        assert!(step(None, None, Some(0.5)).is_err());
        assert!(step(None, Some(f64::INFINITY), None).is_err());
    }

    #[test]
    fn load_data_goes_over_the_defaults() {
        let defaults = json!({"name": "Jane", "visible": true});
        assert_eq!(load_params(&defaults, Value::Null).unwrap(), defaults);
        assert_eq!(
            load_params(&defaults, json!({"name": "Ada", "extra": null})).unwrap(),
            json!({"name": "Ada", "visible": true})
        );
        assert_eq!(
            load_params(&defaults, json!("Ada")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
