//! What a hot standby answers on its HTTP and WebSocket ports while it follows the primary:
//! `GET /api/health` (status `standby`, the lease epoch and, for a caller with a token, the
//! primary's name), `GET /metrics` (role, epoch, store), and 503 `standby` for everything
//! else: a standby changes nothing, so no write can reach the store twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use super::access::{authorize, client_addr};
use super::app::bearer;
use super::error::ApiError;
use super::health::{
    ComponentHealth, EncoderHealth, Health, HealthComponents, InputsHealth, TemplateHealth,
};
use super::ograf::OGRAF_PREFIX;
use super::ograf::problem::Problem;
use crate::auth::{Access, Role};
use crate::metrics;
use crate::state::lease::InstanceStatus;
use sm_media::config::EncoderKind;

/// What the standby's handlers share.
#[derive(Clone)]
pub struct StandbyState {
    /// This instance's status (standby, the epoch seen, the primary).
    pub instance: watch::Receiver<InstanceStatus>,
    /// Whether the store answered the last look at the lease.
    pub store_up: Arc<AtomicBool>,
    /// The tokens and their roles.
    pub access: Arc<Access>,
    /// The configured encoder (reported idle).
    pub encoder: EncoderKind,
}

/// The standby's router.
pub fn router(state: StandbyState) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/metrics", get(prometheus))
        .fallback(refuse)
        .with_state(state)
}

/// The health of a standby: 200 with status `standby`.
pub fn report(s: &StandbyState) -> Health {
    let instance = s.instance.borrow().clone();
    let store_up = s.store_up.load(Ordering::Relaxed);
    let following = match (&instance.primary, instance.epoch) {
        (Some(p), Some(e)) => format!("standby: following {p} (lease epoch {e})"),
        _ => "standby: no primary holds the lease; taking it over".into(),
    };
    Health {
        status: "standby",
        instance,
        components: HealthComponents {
            store: ComponentHealth {
                status: if store_up { "ok" } else { "down" },
                detail: Some("redis".into()),
            },
            pipeline: ComponentHealth {
                status: "standby",
                detail: Some(following),
            },
            destinations: BTreeMap::new(),
            templates: TemplateHealth {
                status: "ok",
                faults: 0,
                quarantined: BTreeMap::new(),
                last_fault: None,
            },
            inputs: InputsHealth {
                status: "ok",
                states: BTreeMap::new(),
                not_playing: Vec::new(),
            },
            encoder: EncoderHealth {
                status: "idle",
                configured: s.encoder,
                selected: None,
            },
        },
    }
}

async fn health(State(s): State<StandbyState>, req: Request) -> Response {
    let mut report = report(&s);
    let known = authorize(
        &s.access,
        client_addr(req.extensions()),
        bearer(req.headers()),
        Some(Role::Viewer),
    )
    .is_ok();
    if !known {
        report.redact();
    }
    Json(report).into_response()
}

async fn prometheus(State(s): State<StandbyState>, req: Request) -> Response {
    let presented = bearer(req.headers());
    if let Err(refusal) = authorize(
        &s.access,
        client_addr(req.extensions()),
        presented,
        Some(Role::Viewer),
    ) {
        return refusal.into_response();
    }
    let text = metrics::render_standby(&s.instance.borrow(), s.store_up.load(Ordering::Relaxed));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn refuse(State(s): State<StandbyState>, req: Request) -> Response {
    let epoch = s.instance.borrow().epoch;
    let message = match epoch {
        Some(e) => format!(
            "this instance is a hot standby (lease epoch {e}); the primary serves the channel \
             and its API"
        ),
        None => "this instance is a hot standby; the primary serves the channel and its API".into(),
    };
    let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "standby", message);
    // OGraf controllers get the facade's problem documents (RFC 7807), the rest the API's
    // error shape.
    let mut res = if req.uri().path().starts_with(OGRAF_PREFIX) {
        Problem::from(error).into_response()
    } else {
        error.into_response()
    };
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    res
}
