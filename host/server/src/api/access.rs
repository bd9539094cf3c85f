//! Who may call what: the role every route needs ([`ROUTE_ROLES`], and
//! [`OGRAF_ROUTE_ROLES`] for the OGraf facade: the one place it is decided), the middleware
//! that enforces it, `GET /api/me`, and the security section of
//! the OpenAPI document, which is generated from the same table.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};

use super::app::{AppState, bearer};
use super::error::ApiError;
use crate::auth::{Access, Caller, Identity, Role};

/// The role each route needs, by method and path as the OpenAPI document writes them.
/// `None`: no token needed. A route missing here needs `admin` (and a test fails).
pub const ROUTE_ROLES: &[(&str, &str, Option<Role>)] = {
    use Role::{Admin as A, Operator as O, Viewer as V};
    &[
        ("get", "/api/health", None),
        ("get", "/api/me", Some(V)),
        ("get", "/metrics", Some(V)),
        ("get", "/api/openapi.json", Some(V)),
        ("get", "/api/stream/state", Some(V)),
        ("post", "/api/stream/start", Some(O)),
        ("post", "/api/stream/stop", Some(O)),
        ("post", "/api/stream/pause", Some(O)),
        ("post", "/api/stream/resume", Some(O)),
        ("get", "/api/stream/config", Some(V)),
        ("patch", "/api/stream/config", Some(A)),
        ("get", "/api/scene", Some(V)),
        ("patch", "/api/scene", Some(O)),
        ("get", "/api/scene/canvas", Some(V)),
        ("patch", "/api/scene/canvas", Some(O)),
        ("post", "/api/scene/layers", Some(O)),
        ("get", "/api/scene/layers/{id}", Some(V)),
        ("patch", "/api/scene/layers/{id}", Some(O)),
        ("delete", "/api/scene/layers/{id}", Some(O)),
        ("get", "/api/scene/layers/{id}/position", Some(V)),
        ("put", "/api/scene/layers/{id}/position", Some(O)),
        ("get", "/api/scenes", Some(V)),
        ("post", "/api/scenes", Some(O)),
        ("get", "/api/scenes/{id}", Some(V)),
        ("put", "/api/scenes/{id}", Some(O)),
        ("delete", "/api/scenes/{id}", Some(O)),
        ("post", "/api/scenes/{id}/activate", Some(O)),
        ("get", "/api/assets", Some(V)),
        ("post", "/api/assets", Some(O)),
        ("get", "/api/assets/{id}", Some(V)),
        ("delete", "/api/assets/{id}", Some(A)),
        ("get", "/api/assets/{id}/thumbnail", Some(V)),
        ("get", "/api/templates", Some(V)),
        ("post", "/api/templates", Some(A)),
        ("get", "/api/templates/{id}", Some(V)),
        ("put", "/api/templates/{id}", Some(A)),
        ("delete", "/api/templates/{id}", Some(A)),
        ("post", "/api/templates/{id}/rollback", Some(A)),
        ("get", "/api/loaders", Some(V)),
        ("post", "/api/loaders", Some(A)),
        ("get", "/api/loaders/{id}", Some(V)),
        ("put", "/api/loaders/{id}", Some(A)),
        ("delete", "/api/loaders/{id}", Some(A)),
        ("get", "/api/inputs", Some(V)),
        ("post", "/api/inputs", Some(A)),
        ("get", "/api/inputs/{id}", Some(V)),
        ("patch", "/api/inputs/{id}", Some(O)),
        ("delete", "/api/inputs/{id}", Some(A)),
        ("get", "/api/inputs/{id}/thumbnail", Some(V)),
        ("get", "/api/media", Some(V)),
        ("post", "/api/media", Some(O)),
        ("get", "/api/media/{id}", Some(V)),
        ("delete", "/api/media/{id}", Some(A)),
        ("get", "/api/recordings", Some(V)),
        ("post", "/api/recordings", Some(O)),
        ("get", "/api/recordings/{id}", Some(V)),
        ("delete", "/api/recordings/{id}", Some(O)),
        ("post", "/api/recordings/{id}/stop", Some(O)),
        ("get", "/api/recordings/{id}/files/{n}", Some(V)),
        ("post", "/api/recordings/{id}/files/{n}/link", Some(O)),
        ("get", "/api/audio", Some(V)),
        ("patch", "/api/audio", Some(O)),
    ]
};

/// The role each route of the OGraf facade needs ([`super::ograf`], `/ograf/v1`). Those
/// routes follow the OGraf Server API's document, not ours, so they are kept apart from
/// [`ROUTE_ROLES`] (the OpenAPI document's table); [`required_role`] reads both. Reads
/// need a viewer, actions on graphics an operator (as the scene's layers do).
pub const OGRAF_ROUTE_ROLES: &[(&str, &str, Option<Role>)] = {
    use Role::{Operator as O, Viewer as V};
    &[
        ("get", "/ograf/v1", Some(V)),
        ("get", "/ograf/v1/", Some(V)),
        ("get", "/ograf/v1/graphics", Some(V)),
        ("get", "/ograf/v1/graphics/{graphicId}", Some(V)),
        ("get", "/ograf/v1/renderers", Some(V)),
        ("get", "/ograf/v1/renderers/{rendererId}", Some(V)),
        ("get", "/ograf/v1/renderers/{rendererId}/target", Some(V)),
        (
            "put",
            "/ograf/v1/renderers/{rendererId}/target/graphicInstance/clear",
            Some(O),
        ),
        (
            "post",
            "/ograf/v1/renderers/{rendererId}/target/graphicInstance/load",
            Some(O),
        ),
        (
            "post",
            "/ograf/v1/renderers/{rendererId}/target/graphicInstance/playAction",
            Some(O),
        ),
        (
            "post",
            "/ograf/v1/renderers/{rendererId}/target/graphicInstance/stopAction",
            Some(O),
        ),
        (
            "post",
            "/ograf/v1/renderers/{rendererId}/target/graphicInstance/updateAction",
            Some(O),
        ),
    ]
};

/// The role `method path` needs (`path` as the router matched it, e.g.
/// `/api/scenes/{id}`); `admin` for a route the tables do not know.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    ROUTE_ROLES
        .iter()
        .chain(OGRAF_ROUTE_ROLES)
        .find(|(m, p, _)| method.as_str().eq_ignore_ascii_case(m) && *p == path)
        .map_or(Some(Role::Admin), |(_, _, role)| *role)
}

/// [`required_role`] of an operation as the document names it (`"get"`, `/api/scene`).
fn documented_role(method: &str, path: &str) -> Option<Role> {
    method
        .to_ascii_uppercase()
        .parse::<Method>()
        .map_or(Some(Role::Admin), |m| required_role(&m, path))
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// 401 or 403.
    Denied(ApiError),
    /// 429: the address made too many failed authentications; retry after this many
    /// seconds.
    RetryAfter(u64),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Denied(e) => e.into_response(),
            Refusal::RetryAfter(secs) => {
                let mut res = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    format!("too many failed authentications from this address; retry in {secs} s"),
                )
                .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                res
            }
        }
    }
}

/// Decides a request that presents `presented` from `addr` and needs `need`: the caller
/// (none when anonymous and `need` is `None`), or why it is refused. Counts a wrong token
/// against `addr`, and refuses tokens from an address that made too many.
pub fn authorize(
    access: &Access,
    addr: IpAddr,
    presented: Option<&str>,
    need: Option<Role>,
) -> Result<Option<Caller>, Refusal> {
    if presented.is_some()
        && access.restricted()
        && let Some(wait) = access.blocked(addr, Instant::now())
    {
        return Err(Refusal::RetryAfter(wait.as_secs().max(1)));
    }
    match access.identify(presented) {
        Identity::Known(caller) => match need {
            Some(role) if caller.role < role => Err(Refusal::Denied(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this needs the {role} role; the token {:?} has the {} role",
                    caller.name, caller.role
                ),
            ))),
            _ => Ok(Some(caller)),
        },
        Identity::Anonymous if need.is_none() => Ok(None),
        Identity::Anonymous => Err(Refusal::Denied(ApiError::unauthorized())),
        Identity::Rejected => {
            if access.record_failure(addr, Instant::now()) {
                tracing::warn!(
                    client = %addr,
                    failures = access.failure_limit(),
                    window_s = crate::auth::FAILURE_WINDOW.as_secs(),
                    "too many failed authentications; refusing tokens from this address for the rest of the window"
                );
            }
            Err(Refusal::Denied(ApiError::unauthorized()))
        }
    }
}

/// The client's address (unspecified when the server was not given it, as in tests).
pub fn client_addr(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The middleware over `/api` and `/metrics`: the table's role, or a recording's download
/// ticket. The caller, when known, goes into the request's extensions.
pub async fn require_role(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let need = match req.extensions().get::<MatchedPath>() {
        Some(path) => required_role(req.method(), path.as_str()),
        // Not a route: anyone with a token hears that it is not found.
        None => Some(Role::Viewer),
    };
    let need = if super::recordings::ticket_admits(&state, &req) {
        None
    } else {
        need
    };
    match admit(&state, &mut req, need) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// [`authorize`]s `req` (its token and address) for `need`; the caller, when known, goes
/// into its extensions. The check of every middleware that guards routes by role.
pub fn admit(state: &AppState, req: &mut Request, need: Option<Role>) -> Result<(), Refusal> {
    let presented = bearer(req.headers());
    let caller = authorize(
        &state.access,
        client_addr(req.extensions()),
        presented,
        need,
    )?;
    if let Some(caller) = caller {
        req.extensions_mut().insert(caller);
    }
    Ok(())
}

/// The caller of `GET /api/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The token's name (`api-token` for `--api-token`, `anonymous` when access is open).
    pub name: String,
    /// What the token may do.
    pub role: Role,
}

/// Who the token belongs to and what it may do (the console shows only what the role may
/// use).
#[utoipa::path(get, path = "/api/me", tag = "system",
    responses((status = 200, body = Me)))]
pub async fn me(axum::Extension(caller): axum::Extension<Caller>) -> Json<Me> {
    // The route needs a viewer, so the middleware always names the caller (with open
    // access: `anonymous`, admin).
    Json(Me {
        name: caller.name.to_string(),
        role: caller.role,
    })
}

/// Writes the table into the document: a `bearer` scheme, and per operation the role it
/// needs (OpenAPI 3.1 lets a non-OAuth requirement list role names) and the 401, 403 and 429
/// answers it can give.
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    let error = || {
        Content::new(Some(RefOr::<utoipa::openapi::schema::Schema>::Ref(
            Ref::from_schema_name("ErrorBody"),
        )))
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let need = documented_role(method, path);
            let Some(role) = need else {
                // Open, and shows more to a caller with a token.
                op.security = Some(vec![
                    SecurityRequirement::default(),
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                ]);
                continue;
            };
            op.security = Some(vec![SecurityRequirement::new("bearer", [role.as_str()])]);
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, what: &str| {
                responses.entry(status.to_string()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(what)
                            .content("application/json", error())
                            .build(),
                    )
                });
            };
            add("401", "No token, or a token that is not configured");
            if role > Role::Viewer {
                add("403", "The token's role may not do this (`forbidden`)");
            }
            add(
                "429",
                "Too many failed authentications from this address; see `Retry-After`",
            );
        }
    }
}
