//! The REST API (axum) and its OpenAPI document (utoipa, generated from these handlers, so
//! a route cannot be mounted without being documented), plus the WebSocket feed ([`ws`]).
//!
//! `fn router(state) -> Router` builds everything without a socket, so most API tests need
//! none.

pub mod assets;
pub mod error;
pub mod scene;
pub mod scenes;
pub mod templates;
pub mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::control::StreamController;
use crate::metrics;
use crate::output::destination::DestinationStatus;
use crate::scene::SceneManager;
use crate::state::model::{ConfigError, mask_url};
use crate::state::{StateManager, StreamConfig, StreamState};
use error::{ApiError, ErrorBody};

/// Largest accepted JSON body.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The stream.
    pub controller: Arc<StreamController>,
    /// The state manager.
    pub state: Arc<StateManager>,
    /// The scene.
    pub scenes: Arc<SceneManager>,
    /// Bearer token, when access is restricted.
    pub token: Option<Arc<str>>,
    /// Connected WebSocket clients.
    pub ws_clients: Arc<AtomicU64>,
}

impl AppState {
    /// State for the API over a controller.
    pub fn new(
        controller: Arc<StreamController>,
        scenes: Arc<SceneManager>,
        token: Option<String>,
    ) -> Self {
        Self {
            state: controller.state_manager().clone(),
            scenes,
            controller,
            token: token.map(Into::into),
            ws_clients: Arc::default(),
        }
    }

    /// Whether `presented` is the configured token (constant time), or no token is needed.
    pub fn authorized(&self, presented: Option<&str>) -> bool {
        match &self.token {
            None => true,
            Some(t) => presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(t.as_bytes()))),
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "stream-manager",
        description = "Live-graphics streaming server: stream control, configuration, health."
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(start_stream))
        .routes(routes!(stop_stream))
        .routes(routes!(pause_stream))
        .routes(routes!(resume_stream))
        .routes(routes!(get_state))
        .routes(routes!(get_config, patch_config))
        .routes(routes!(health))
        .routes(routes!(prometheus))
        .routes(routes!(openapi_json))
        .routes(routes!(scene::get_scene, scene::patch_scene))
        .routes(routes!(scene::get_canvas, scene::patch_canvas))
        .routes(routes!(scene::add_layer))
        .routes(routes!(
            scene::get_layer,
            scene::patch_layer,
            scene::delete_layer
        ))
        .routes(routes!(scene::get_position, scene::put_position))
        .routes(routes!(scenes::list, scenes::create))
        .routes(routes!(scenes::get, scenes::put, scenes::delete))
        .routes(routes!(scenes::activate))
        .routes(routes!(assets::list, assets::upload))
        .routes(routes!(assets::get, assets::delete))
        .routes(routes!(templates::list, templates::upload))
        .routes(routes!(templates::get, templates::put, templates::delete))
        .routes(routes!(templates::rollback))
}

/// The OpenAPI document of every mounted route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The REST router.
pub fn router(state: AppState) -> Router {
    api_routes()
        .split_for_parts()
        .0
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let open = req.method() == Method::GET && req.uri().path() == "/api/health";
    if open || state.authorized(bearer(req.headers())) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Start streaming.
#[utoipa::path(post, path = "/api/stream/start", tag = "stream",
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn start_stream(State(s): State<AppState>) -> ApiResult<StreamState> {
    Ok(Json(s.controller.start().await?))
}

/// Stop streaming: flush the encoder and close every output.
#[utoipa::path(post, path = "/api/stream/stop", tag = "stream",
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody)))]
async fn stop_stream(State(s): State<AppState>) -> ApiResult<StreamState> {
    Ok(Json(s.controller.stop().await?))
}

/// Pause: outputs stay connected and the last frame repeats.
#[utoipa::path(post, path = "/api/stream/pause", tag = "stream",
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody)))]
async fn pause_stream(State(s): State<AppState>) -> ApiResult<StreamState> {
    Ok(Json(s.controller.pause().await?))
}

/// Resume after a pause.
#[utoipa::path(post, path = "/api/stream/resume", tag = "stream",
    responses((status = 200, body = StreamState), (status = 409, body = ErrorBody)))]
async fn resume_stream(State(s): State<AppState>) -> ApiResult<StreamState> {
    Ok(Json(s.controller.resume().await?))
}

/// The current stream state.
#[utoipa::path(get, path = "/api/stream/state", tag = "stream", responses((status = 200, body = StreamState)))]
async fn get_state(State(s): State<AppState>) -> Json<StreamState> {
    Json(s.controller.state())
}

/// The stream configuration; destination stream keys are masked.
#[utoipa::path(get, path = "/api/stream/config", tag = "stream", responses((status = 200, body = StreamConfig)))]
async fn get_config(State(s): State<AppState>) -> Json<StreamConfig> {
    Json(s.state.config().masked())
}

/// Change the configuration with a JSON merge patch (RFC 7386). Destinations and preview
/// apply live; other changes restart the pipeline while the stream stays live. A destination
/// URL sent back masked, as read, keeps its stored stream key.
#[utoipa::path(patch, path = "/api/stream/config", tag = "stream",
    request_body(content = Object, content_type = "application/json", description = "JSON merge patch of StreamConfig"),
    responses((status = 200, body = StreamConfig), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn patch_config(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StreamConfig> {
    let patch = json_body(&headers, body)?;
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

/// Checks the content type and size, and parses the body as JSON.
pub fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("application/json")
                || m.eq_ignore_ascii_case("application/merge-patch+json")
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body exceeds {MAX_JSON_BODY} bytes"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
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

/// Health of one component.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentHealth {
    /// `ok`, `degraded` or `down`.
    pub status: &'static str,
    /// Details (store kind, last error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /api/health` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `degraded` (running with a fault) or `down` (not able to stream).
    pub status: &'static str,
    /// Per component: `store`, `pipeline`, `destinations`.
    pub components: HealthComponents,
}

/// Components of [`Health`].
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthComponents {
    /// The state store.
    pub store: ComponentHealth,
    /// Render and encode.
    pub pipeline: ComponentHealth,
    /// Pushed destinations of the running stream, by id.
    pub destinations: BTreeMap<String, DestinationStatus>,
    /// Template layers: `degraded` while any is quarantined; detail names the newest fault.
    pub templates: TemplateHealth,
}

/// Health of the template layers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateHealth {
    /// `ok`, or `degraded` while a layer is quarantined.
    pub status: &'static str,
    /// Faulty calls since the server started, all templates.
    pub faults: u64,
    /// Quarantined layers: layer id → template id.
    pub quarantined: BTreeMap<String, String>,
    /// The newest fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fault: Option<String>,
}

/// Builds the health report.
pub fn health_report(s: &AppState) -> Health {
    let store = match s.state.store_error() {
        None => ComponentHealth {
            status: "ok",
            detail: Some(s.state.store_kind().into()),
        },
        Some(e) => ComponentHealth {
            status: "down",
            detail: Some(format!("{}: {e}", s.state.store_kind())),
        },
    };
    let state = s.controller.state();
    let pipeline = match &state.error {
        Some(e) if !state.is_live => ComponentHealth {
            status: "down",
            detail: Some(e.clone()),
        },
        Some(e) => ComponentHealth {
            status: "degraded",
            detail: Some(e.clone()),
        },
        None => ComponentHealth {
            status: "ok",
            detail: None,
        },
    };
    let destinations: BTreeMap<_, _> = s.controller.destinations().into_iter().collect();
    let destinations_ok = destinations.values().all(|d| d.state != "retrying");
    let stats = s.scenes.template_stats();
    let templates = TemplateHealth {
        status: if stats.quarantined.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        faults: stats.faults.values().sum(),
        quarantined: stats.quarantined,
        last_fault: stats.last_fault,
    };
    let status = if pipeline.status == "down" {
        "down"
    } else if store.status != "ok"
        || pipeline.status != "ok"
        || !destinations_ok
        || templates.status != "ok"
    {
        "degraded"
    } else {
        "ok"
    };
    Health {
        status,
        components: HealthComponents {
            store,
            pipeline,
            destinations,
            templates,
        },
    }
}

/// Health of the server and its components. Open without a token. 200 unless `down` (503).
#[utoipa::path(get, path = "/api/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(s): State<AppState>) -> Response {
    let report = health_report(&s);
    let code = if report.status == "down" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(report)).into_response()
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn prometheus(State(s): State<AppState>) -> Response {
    let state = s.controller.state();
    let m = s.controller.metrics();
    let hub = s.controller.hub();
    let template_stats = s.scenes.template_stats();
    let snapshot = metrics::Snapshot {
        live: state.is_live,
        paused: state.is_paused,
        frames: state.frame_count,
        dropped: state.dropped_frames,
        fps: m.fps,
        bitrate: m.bitrate,
        encoder_latency_ms: m.encoder_latency,
        render_ms: state.average_render_time,
        bytes_out: hub.bytes_out.load(Ordering::Relaxed),
        bytes_in: hub.bytes_in.load(Ordering::Relaxed),
        cpu_percent: m.cpu_usage,
        rss_bytes: m.memory_usage,
        store_up: s.state.store_error().is_none(),
        ws_clients: s.ws_clients.load(Ordering::Relaxed),
        preview_frames: s.controller.preview().produced(),
        destinations: s
            .controller
            .destinations()
            .into_iter()
            .map(|(id, d)| (id, d.state == "live", d.failures))
            .collect(),
        template_faults: template_stats
            .faults
            .iter()
            .map(|((t, k), n)| (t.clone(), k.clone(), *n))
            .collect(),
        quarantined_layers: template_stats.quarantined.len() as u64,
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&snapshot),
    )
        .into_response()
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system", responses((status = 200, body = Object)))]
async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(|| serde_json::to_value(openapi()).expect("OpenAPI serializes")))
        .into_response()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::hub::MediaHub;
    use crate::state::store::MemoryStore;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// An API state over a memory store, for tests.
    pub(crate) fn app(token: Option<&str>) -> AppState {
        let state = Arc::new(StateManager::new(
            Arc::new(MemoryStore::default()),
            "",
            StreamConfig::default(),
        ));
        let tls = crate::output::destination::tls_connector(None).unwrap();
        let assets = Arc::new(crate::assets::AssetManager::new(
            state.clone(),
            crate::assets::AssetLimits::default(),
        ));
        let scenes = Arc::new(SceneManager::new(
            state.clone(),
            assets,
            crate::scene::Scene::default(),
        ));
        let controller = Arc::new(StreamController::new(
            state,
            Arc::new(MediaHub::new()),
            tls,
            scenes.slot().clone(),
        ));
        AppState::new(controller, scenes, token.map(Into::into))
    }

    async fn call(
        app: &AppState,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some((ct, b)) => req
                .header("content-type", ct)
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = router(app.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Every route of the public contract is documented, and every documented route is
    /// mounted (answers something other than 404/405).
    #[tokio::test]
    async fn openapi_covers_every_mounted_route() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let expected = [
            ("post", "/api/stream/start"),
            ("post", "/api/stream/stop"),
            ("post", "/api/stream/pause"),
            ("post", "/api/stream/resume"),
            ("get", "/api/stream/state"),
            ("get", "/api/stream/config"),
            ("patch", "/api/stream/config"),
            ("get", "/api/health"),
            ("get", "/metrics"),
            ("get", "/api/openapi.json"),
            ("get", "/api/scene"),
            ("patch", "/api/scene"),
            ("get", "/api/scene/canvas"),
            ("patch", "/api/scene/canvas"),
            ("post", "/api/scene/layers"),
            ("get", "/api/scene/layers/{id}"),
            ("patch", "/api/scene/layers/{id}"),
            ("delete", "/api/scene/layers/{id}"),
            ("get", "/api/scene/layers/{id}/position"),
            ("put", "/api/scene/layers/{id}/position"),
            ("get", "/api/scenes"),
            ("post", "/api/scenes"),
            ("get", "/api/scenes/{id}"),
            ("put", "/api/scenes/{id}"),
            ("delete", "/api/scenes/{id}"),
            ("post", "/api/scenes/{id}/activate"),
            ("get", "/api/assets"),
            ("post", "/api/assets"),
            ("get", "/api/assets/{id}"),
            ("delete", "/api/assets/{id}"),
            ("get", "/api/templates"),
            ("post", "/api/templates"),
            ("get", "/api/templates/{id}"),
            ("put", "/api/templates/{id}"),
            ("delete", "/api/templates/{id}"),
            ("post", "/api/templates/{id}/rollback"),
        ];
        for (method, path) in expected {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} missing from the document"
            );
        }
        let app = app(None);
        let mut documented = 0;
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                documented += 1;
                let body = (method == "patch").then_some(("application/json", "{}"));
                let uri = path.replace("{id}", "no-such-layer");
                let (status, body) = call(&app, &method.to_uppercase(), &uri, body, None).await;
                // A mounted route may answer 404 for an unknown id, in our error shape; the
                // router's own 404 has no body.
                let unrouted =
                    status == StatusCode::NOT_FOUND && body["error"]["code"] != "not_found";
                assert!(
                    !unrouted && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but not mounted ({status})"
                );
            }
        }
        assert_eq!(
            documented,
            expected.len(),
            "documented routes beyond the contract list: update the test"
        );
        assert!(doc["components"]["schemas"].get("StreamConfig").is_some());
        assert!(doc["components"]["schemas"].get("StreamState").is_some());
    }

    #[tokio::test]
    async fn state_conflicts_are_409() {
        let app = app(None);
        for action in ["stop", "pause", "resume"] {
            let (status, body) =
                call(&app, "POST", &format!("/api/stream/{action}"), None, None).await;
            assert_eq!(status, StatusCode::CONFLICT, "{action}");
            assert_eq!(body["error"]["code"], "invalid_state");
        }
    }

    #[tokio::test]
    async fn bad_config_patches_get_their_codes() {
        let app = app(None);
        let json = "application/json";
        let cases: &[(&str, &str, StatusCode, &str)] = &[
            (
                json,
                "{\"width\":",
                StatusCode::BAD_REQUEST,
                "malformed_json",
            ),
            (
                "text/plain",
                "{}",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                json,
                "{\"bogus\":1}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_field",
            ),
            (
                json,
                "{\"width\":\"wide\"}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_type",
            ),
            (
                json,
                "[1]",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_type",
            ),
            (
                json,
                "{\"width\":641}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_range",
            ),
            (
                json,
                "{\"targetFPS\":0}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_range",
            ),
            (
                json,
                "{\"encoder\":\"x265\"}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_range",
            ),
            (
                json,
                "{\"preset\":\"warp\"}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_range",
            ),
            (
                json,
                "{\"destinations\":[{\"id\":\"a\",\"url\":\"http://h/live/k\"}]}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_url",
            ),
            (
                json,
                "{\"destinations\":[{\"id\":\"a\",\"url\":\"rtmp://h/live/****\"}]}",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_url",
            ),
        ];
        for (ct, body, status, code) in cases {
            let (got, resp) =
                call(&app, "PATCH", "/api/stream/config", Some((ct, body)), None).await;
            assert_eq!(
                (got, resp["error"]["code"].as_str().unwrap_or_default()),
                (*status, *code),
                "{body}: {resp}"
            );
        }
        let big = format!("{{\"preset\":\"{}\"}}", "x".repeat(MAX_JSON_BODY));
        let (got, resp) = call(
            &app,
            "PATCH",
            "/api/stream/config",
            Some((json, &big)),
            None,
        )
        .await;
        assert_eq!(
            (got, resp["error"]["code"].as_str().unwrap()),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        );
        // Nothing above changed the config.
        assert_eq!(app.state.config(), StreamConfig::default());
    }

    #[tokio::test]
    async fn masked_url_round_trips_keep_the_key() {
        let app = app(None);
        let set = "{\"destinations\":[{\"id\":\"a\",\"url\":\"rtmp://h/live/secret\"}]}";
        let (status, body) = call(
            &app,
            "PATCH",
            "/api/stream/config",
            Some(("application/json", set)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["destinations"][0]["url"], "rtmp://h/live/****");
        let back =
            serde_json::json!({"destinations": body["destinations"], "videoBitrateKbps": 3000})
                .to_string();
        let (status, _) = call(
            &app,
            "PATCH",
            "/api/stream/config",
            Some(("application/json", &back)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            app.state.config().destinations[0].url,
            "rtmp://h/live/secret"
        );
    }

    #[tokio::test]
    async fn token_guards_everything_but_health() {
        let app = app(Some("s3cret"));
        let (status, body) = call(&app, "GET", "/api/stream/state", None, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str().unwrap()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let (status, _) = call(&app, "GET", "/api/stream/state", None, Some("wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&app, "GET", "/api/stream/state", None, Some("s3cret")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(&app, "GET", "/api/health", None, None).await;
        assert_eq!(
            (status, body["status"].as_str().unwrap()),
            (StatusCode::OK, "ok")
        );
        let (status, _) = call(&app, "GET", "/metrics", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
