//! Health and metrics: `/api/health` and `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::app::AppState;
use crate::auth::Caller;
use crate::metrics;
use crate::state::lease::InstanceStatus;
use sm_media::config::EncoderKind;
use sm_media::destination::DestinationStatus;
use sm_media::video_encoder::EncoderSelection;

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
    /// `ok`, `degraded` (running with a fault), `down` (not able to stream) or `standby`
    /// (a hot standby: following the primary, not streaming).
    pub status: &'static str,
    /// This instance's part in the channel: `primary` or `standby`, and the lease epoch.
    pub instance: InstanceStatus,
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
    /// Live inputs: `degraded` while an input shown on air is not playing.
    pub inputs: InputsHealth,
    /// The video encoder: which one runs while live, and with `encoder: auto` why the
    /// hardware encoders tried before it did not open.
    pub encoder: EncoderHealth,
}

/// Health of the video encoder.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncoderHealth {
    /// `ok` while live, `idle` while not.
    pub status: &'static str,
    /// The configured encoder (`auto`, `libx264`, `h264_nvenc`, …).
    pub configured: EncoderKind,
    /// The encoder that runs, while live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<EncoderSelection>,
}

/// Health of the live inputs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputsHealth {
    /// `ok`, or `degraded` while an input a layer of the scene on air shows is not
    /// `playing` (an ended file is fine).
    pub status: &'static str,
    /// Every input's state, by id.
    pub states: BTreeMap<String, sm_media::input::InputState>,
    /// The shown inputs that are not playing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_playing: Vec<String>,
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

impl Health {
    /// Keeps only the states, for a caller without a token: no store address, error text,
    /// destination address or template fault.
    pub fn redact(&mut self) {
        let c = &mut self.components;
        c.store.detail = None;
        c.pipeline.detail = None;
        for d in c.destinations.values_mut() {
            d.url = None;
            d.last_error = None;
        }
        c.templates.last_fault = None;
        self.instance.primary = None;
        if let Some(selected) = &mut c.encoder.selected {
            for s in &mut selected.skipped {
                s.reason.clear();
            }
        }
    }
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
    let inputs = inputs_health(s);
    let encoder = EncoderHealth {
        status: if state.encoder.is_some() {
            "ok"
        } else {
            "idle"
        },
        configured: s.state.config().encoder,
        selected: state.encoder.clone(),
    };
    let status = if pipeline.status == "down" {
        "down"
    } else if store.status != "ok"
        || pipeline.status != "ok"
        || !destinations_ok
        || templates.status != "ok"
        || inputs.status != "ok"
    {
        "degraded"
    } else {
        "ok"
    };
    Health {
        status,
        instance: s.instance.borrow().clone(),
        components: HealthComponents {
            store,
            pipeline,
            destinations,
            templates,
            inputs,
            encoder,
        },
    }
}

fn inputs_health(s: &AppState) -> InputsHealth {
    use sm_media::input::InputState;
    let statuses = s.scenes.inputs().map(|i| i.statuses()).unwrap_or_default();
    let scene = s.scenes.scene();
    let not_playing: Vec<String> = statuses
        .iter()
        .filter(|(id, state, _)| {
            !matches!(state, InputState::Playing | InputState::Ended)
                && scene
                    .layers
                    .iter()
                    .any(|l| l.visible && l.video.as_ref().is_some_and(|v| v.input == *id))
        })
        .map(|(id, ..)| id.clone())
        .collect();
    InputsHealth {
        status: if not_playing.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        states: statuses
            .into_iter()
            .map(|(id, state, _)| (id, state))
            .collect(),
        not_playing,
    }
}

/// Health of the server and its components. Open without a token, which shows the states
/// alone (no addresses or error texts). 200 unless `down` (503).
#[utoipa::path(get, path = "/api/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(super) async fn health(
    State(s): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let mut report = health_report(&s);
    if caller.is_none() {
        report.redact();
    }
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
pub(super) async fn prometheus(State(s): State<AppState>) -> Response {
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
        render: s.controller.render_window(),
        bytes_out: hub.bytes_out.load(Ordering::Relaxed),
        bytes_in: hub.bytes_in.load(Ordering::Relaxed),
        cpu_percent: m.cpu_usage,
        rss_bytes: m.memory_usage,
        store_up: s.state.store_error().is_none(),
        audio: s.audio.levels().1.program,
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
        decoded_asset_bytes: s.scenes.assets().budget().used(),
        decoded_asset_budget_bytes: s.scenes.assets().budget().max(),
        instance: s.instance.borrow().clone(),
        inputs: s
            .scenes
            .inputs()
            .map(|i| i.statuses())
            .unwrap_or_default()
            .into_iter()
            .map(|(id, state, stats)| metrics::InputSample {
                id,
                state: state.code(),
                fps: stats.fps,
                reconnects: stats.reconnects,
                latency_ms: stats.latency_ms,
            })
            .collect(),
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
