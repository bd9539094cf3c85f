//! The REST API (axum) and its OpenAPI document (utoipa, generated from these handlers, so
//! a route cannot be mounted without being documented), plus the WebSocket feed ([`ws`]).
//!
//! `fn router(state) -> Router` builds everything without a socket, so most API tests need
//! none.

pub mod access;
mod app;
pub mod assets;
pub mod audio;
pub mod console;
pub mod contract;
pub mod error;
pub mod health;
pub mod inputs;
pub mod loaders;
pub mod ograf;
pub mod recordings;
pub mod scene;
pub mod scenes;
pub mod standby;
pub mod stream;
pub mod templates;
pub mod web_text;
pub mod ws;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use app::{AppState, DEFAULT_MAX_WS_CLIENTS, MAX_JSON_BODY, bearer, json_body};
use error::{ApiError, ErrorBody};
pub use health::{ComponentHealth, Health, HealthComponents, TemplateHealth, health_report};
pub use stream::merge_config;

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
        .routes(routes!(stream::start_stream))
        .routes(routes!(stream::stop_stream))
        .routes(routes!(stream::pause_stream))
        .routes(routes!(stream::resume_stream))
        .routes(routes!(stream::get_state))
        .routes(routes!(stream::get_config, stream::patch_config))
        .routes(routes!(health::health))
        .routes(routes!(health::prometheus))
        .routes(routes!(openapi_json))
        .routes(routes!(access::me))
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
        .routes(routes!(assets::thumbnail))
        .routes(routes!(templates::list, templates::upload))
        .routes(routes!(templates::get, templates::put, templates::delete))
        .routes(routes!(templates::rollback))
        .routes(routes!(loaders::list, loaders::upload))
        .routes(routes!(loaders::get, loaders::put, loaders::delete))
        .routes(routes!(inputs::list, inputs::create))
        .routes(routes!(inputs::get, inputs::patch, inputs::delete))
        .routes(routes!(inputs::thumbnail))
        .routes(routes!(inputs::list_media, inputs::upload_media))
        .routes(routes!(inputs::get_media, inputs::delete_media))
        .routes(routes!(recordings::list, recordings::start))
        .routes(routes!(recordings::get, recordings::delete))
        .routes(routes!(recordings::stop))
        .routes(routes!(recordings::file))
        .routes(routes!(recordings::link))
        .routes(routes!(audio::get, audio::patch))
}

/// The OpenAPI document of every mounted route, as JSON.
pub fn openapi() -> Value {
    let mut doc = api_routes().split_for_parts().1;
    access::document(&mut doc);
    let mut value = serde_json::to_value(&doc).expect("OpenAPI serializes");
    contract::finish(&mut value);
    value
}

/// The HTTP router: the REST API (each route behind the role [`access::ROUTE_ROLES`] gives
/// it), the OGraf facade at `/ograf/v1` (not in the OpenAPI document; its roles are
/// [`access::OGRAF_ROUTE_ROLES`]), the console and the WebSocket at `/ws` (which check their
/// own way).
pub fn router(state: AppState) -> Router {
    api_routes()
        .split_for_parts()
        .0
        .layer(middleware::from_fn_with_state(
            state.clone(),
            access::require_role,
        ))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state.clone())
        .merge(ograf::router(state.clone()))
        .merge(console::router())
        .merge(ws::route(state))
        .fallback(no_route)
}

/// What no route answers: 404 `no_route` in the API's error shape (the method and path are
/// the client's own; nothing else is said).
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no route {method} {}",
            uri.path().chars().take(200).collect::<String>()
        ),
    )
    .into_response()
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system", responses((status = 200, body = Object)))]
async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(openapi)).into_response()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::control::StreamController;
    use crate::scene_manager::SceneManager;
    use crate::state::store::MemoryStore;
    use crate::state::{StateManager, StreamConfig};
    use axum::body::Body;
    use axum::http::Request;
    use axum::http::StatusCode;
    use sm_media::hub::MediaHub;
    use tower::ServiceExt;

    /// An API state over a memory store, for tests.
    pub(crate) fn app(token: Option<&str>) -> AppState {
        let state = Arc::new(StateManager::new(
            Arc::new(MemoryStore::default()),
            "",
            StreamConfig::default(),
        ));
        let tls = sm_media::destination::tls_connector(None).unwrap();
        let assets = Arc::new(crate::assets::AssetManager::new(
            state.clone(),
            crate::assets::AssetLimits::default(),
        ));
        let scenes = Arc::new(SceneManager::new(
            state.clone(),
            assets,
            sm_scene::Scene::default(),
        ));
        let controller = Arc::new(StreamController::new(
            state,
            Arc::new(MediaHub::new()),
            tls,
            scenes.slot().clone(),
            Arc::default(),
        ));
        AppState::new(
            controller,
            scenes,
            crate::auth::Access::new(token, &[]).unwrap(),
        )
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
        let doc = openapi();
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
            ("get", "/api/me"),
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
            ("get", "/api/loaders"),
            ("post", "/api/loaders"),
            ("get", "/api/loaders/{id}"),
            ("put", "/api/loaders/{id}"),
            ("delete", "/api/loaders/{id}"),
            ("get", "/api/inputs"),
            ("post", "/api/inputs"),
            ("get", "/api/inputs/{id}"),
            ("patch", "/api/inputs/{id}"),
            ("delete", "/api/inputs/{id}"),
            ("get", "/api/media"),
            ("post", "/api/media"),
            ("get", "/api/media/{id}"),
            ("delete", "/api/media/{id}"),
            ("get", "/api/assets/{id}/thumbnail"),
            ("get", "/api/inputs/{id}/thumbnail"),
            ("get", "/api/recordings"),
            ("post", "/api/recordings"),
            ("get", "/api/recordings/{id}"),
            ("delete", "/api/recordings/{id}"),
            ("post", "/api/recordings/{id}/stop"),
            ("get", "/api/recordings/{id}/files/{n}"),
            ("post", "/api/recordings/{id}/files/{n}/link"),
            ("get", "/api/audio"),
            ("patch", "/api/audio"),
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
                let uri = path.replace("{id}", "no-such-layer").replace("{n}", "0");
                let (status, body) = call(&app, &method.to_uppercase(), &uri, body, None).await;
                // A mounted route may answer 404 `not_found` for an unknown id; what no route
                // takes is 404 `no_route`.
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

    /// The role table names every documented operation once and nothing else, and follows
    /// DESIGN.md's table: every GET is a viewer's (health is open), the stream config and
    /// template uploads are an admin's, going live is an operator's.
    #[test]
    fn every_documented_operation_has_exactly_one_role() {
        use crate::auth::Role;
        let doc = openapi();
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                documented.insert((method.clone(), path.clone()));
                assert!(op["security"].is_array(), "{method} {path} has no security");
            }
        }
        let table: std::collections::BTreeSet<_> = access::ROUTE_ROLES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(table.len(), access::ROUTE_ROLES.len(), "a route twice");
        assert_eq!(table, documented);
        for (method, path, role) in access::ROUTE_ROLES {
            if *method == "get" {
                let want = (*path != "/api/health").then_some(Role::Viewer);
                assert_eq!(*role, want, "{method} {path}");
            } else {
                assert!(role.is_some_and(|r| r > Role::Viewer), "{method} {path}");
            }
        }
        let role = |m: &str, p: &str| access::required_role(&m.parse().unwrap(), p);
        assert_eq!(role("PATCH", "/api/stream/config"), Some(Role::Admin));
        assert_eq!(role("POST", "/api/templates"), Some(Role::Admin));
        assert_eq!(role("POST", "/api/stream/start"), Some(Role::Operator));
        assert_eq!(role("PATCH", "/api/inputs/{id}"), Some(Role::Operator));
        assert_eq!(role("DELETE", "/api/inputs/{id}"), Some(Role::Admin));
        // Fail closed: what the table does not know needs an admin.
        assert_eq!(role("POST", "/api/new-thing"), Some(Role::Admin));
        let op = &doc["paths"]["/api/stream/config"]["patch"];
        assert_eq!(op["security"], serde_json::json!([{"bearer": ["admin"]}]));
        assert!(op["responses"]["403"].is_object() && op["responses"]["401"].is_object());
    }

    #[tokio::test]
    async fn roles_refuse_with_403_naming_the_role() {
        use crate::auth::{Access, Role, TokenEntry, digest_hex};
        let mut app = app(None);
        app.access = Arc::new(
            Access::new(
                Some("adm"),
                &[TokenEntry {
                    name: "wall".into(),
                    role: Role::Viewer,
                    sha256: digest_hex("view"),
                }],
            )
            .unwrap(),
        );
        let (status, body) = call(&app, "POST", "/api/stream/start", None, Some("view")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], "forbidden");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("operator") && message.contains("wall"),
            "{message}"
        );
        assert!(!message.contains("view\""), "{message}");
        let (status, _) = call(&app, "GET", "/api/stream/state", None, Some("view")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(&app, "GET", "/api/stream/state", None, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str().unwrap()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let (status, _) = call(&app, "GET", "/metrics", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = call(&app, "GET", "/api/health", None, None).await;
        assert_eq!(
            (status, body["status"].as_str().unwrap()),
            (StatusCode::OK, "ok")
        );
        assert!(
            body["components"]["store"].get("detail").is_none(),
            "{body}"
        );
        let (_, body) = call(&app, "GET", "/api/health", None, Some("view")).await;
        assert!(body["components"]["store"]["detail"].is_string(), "{body}");
        let (_, body) = call(&app, "GET", "/api/me", None, Some("adm")).await;
        assert_eq!(
            body,
            serde_json::json!({"name": "api-token", "role": "admin"})
        );
        // Open access: everyone is an admin.
        let (_, body) = call(&crate::api::tests::app(None), "GET", "/api/me", None, None).await;
        assert_eq!(body["role"], "admin");
    }
}
