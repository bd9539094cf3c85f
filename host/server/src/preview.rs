//! `stream-manager template preview FILE.wasm`: the template authors' loop. A small HTTP
//! server on 127.0.0.1 serves one page of the console (`web/template.html`): the template's
//! picture, its params form (generated from its JSON Schema by the console's own
//! `schema-form.js`), frame controls and what each frame cost the host; with `--watch` the
//! component is reloaded whenever its file changes and the page follows.
//!
//! Three parts, each on its own thread or task:
//! - the *loader* (a thread, with `--watch`) polls the file's size and modification time and
//!   prepares a changed file once it has held still for one poll, so a build still writing
//!   it is not read half-way; a file that does not load leaves the last good build in place
//!   and its error beside it, which the page shows;
//! - the *renderer* (a thread: wasmtime and rasterizing never run on tokio's workers) draws
//!   frames with `render::TemplateRun`, exactly as `template check` and `template render` do: the
//!   stream's compositor, limits and budgets. A picture is a function of (build, params,
//!   frame): frame N is what a layer that appeared at frame 0 with these params shows at
//!   frame N. The renderer keeps its run, so playing forwards costs one frame a request; a
//!   step back, new params or a new build start a run again from frame 0 and replay up to N;
//! - the HTTP API (axum on a small tokio runtime): `GET /api/template` (long-polled with
//!   `?after=REVISION`), `POST /api/render` (a PNG, its costs in headers), and the page.
//!
//! Errors have the main API's shape (`{"error":{"code","message"}}`, [`ApiError`]); a JSON
//! body is limited to [`MAX_JSON_BODY`]. The server binds loopback only and answers no
//! request from another site's page (an `Origin` must name the host it asks).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tiny_skia::Pixmap;
use tokio::sync::{oneshot, watch};

use crate::api::console;
use crate::api::error::ApiError;
use crate::api::{MAX_JSON_BODY, json_body};
use crate::render::{RunSetup, TemplateRun, now_ms, prepare_file};
use crate::scene_manager::template_accepts;
use sm_plugin_host::layer::LayerTiming;
use sm_plugin_host::{Build, PluginLimits, Runtime, TemplateInfo};

/// How often `--watch` looks at the file.
const POLL: Duration = Duration::from_millis(300);

/// Frames a render may ask for: `0..MAX_FRAMES` (20 minutes at 30 fps, as `template
/// render --frames` allows).
pub const MAX_FRAMES: u32 = 36_000;

/// How long `GET /api/template?after=N` waits for a change before it answers anyway.
const LONG_POLL: Duration = Duration::from_secs(20);

/// Render requests waiting for the renderer; more are refused (`503 busy`).
const QUEUE: usize = 8;

/// Arguments of `template preview`.
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// Reload the component whenever the file changes (polled every 300 ms); a file that
    /// does not load keeps the last good version on show, and the page shows the error.
    #[arg(long)]
    pub watch: bool,
    /// Port on 127.0.0.1; 0 picks a free one. The URL is the first line on stdout.
    #[arg(long, default_value_t = 4210)]
    pub port: u16,
    /// Frame rate of the preview, 1..=120 (budgets, `time_ms` and playback follow it).
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Wall-clock time of frame 0 for the template, ms since the Unix epoch (default: when
    /// the preview started), so every picture of a frame is the same.
    #[arg(long)]
    pub clock: Option<i64>,
    /// Background colour behind the template.
    #[arg(long, default_value = "#000000")]
    pub background: String,
    /// A directory of images and fonts, as for `render --assets`.
    #[arg(long)]
    pub assets: Option<PathBuf>,
}

/// The component on show, as the loader leaves it.
#[derive(Debug, Default)]
struct Loaded {
    /// The last build that loaded.
    build: Option<Arc<Build>>,
    /// Builds loaded so far (1 is the first); a new one is shown from frame 0.
    version: u64,
    /// Changes of this whole record (a build loaded, an error set or cleared), for the
    /// page's long poll.
    revision: u64,
    /// Why the file as it is now did not load (the last good build stays on show).
    error: Option<String>,
}

/// Runs `template preview` until interrupted (Ctrl-C).
pub fn run(args: &PreviewArgs) -> anyhow::Result<()> {
    if !(1..=120).contains(&args.fps) {
        bail!("--fps: 1..=120");
    }
    check_background(&args.background)?;
    let runtime = Runtime::new(PluginLimits::default(), None)?;
    let (loaded_tx, loaded) = watch::channel(Loaded::default());
    // Without --watch the file never changes: one that does not load is the answer.
    if let Some(error) = load(&runtime, &args.file, args.fps, &loaded_tx) {
        if !args.watch {
            bail!("{error}");
        }
        eprintln!("template preview: {error}");
    }
    let setup = Setup {
        fps: args.fps,
        clock: args.clock.unwrap_or_else(now_ms),
        background: args.background.clone(),
        assets: args.assets.clone(),
    };
    let (requests, queue) = std::sync::mpsc::sync_channel(QUEUE);
    {
        let (runtime, loaded) = (runtime.clone(), loaded.clone());
        std::thread::Builder::new()
            .name("template-preview".into())
            .spawn(move || render_thread(&runtime, &loaded, &setup, &queue))
            .context("starting the renderer")?;
    }
    if args.watch {
        let (runtime, file, fps) = (runtime.clone(), args.file.clone(), args.fps);
        std::thread::Builder::new()
            .name("template-watch".into())
            .spawn(move || watch_file(&runtime, &file, fps, &loaded_tx))
            .context("starting the watcher")?;
    }
    let state = Preview {
        file: args.file.display().to_string(),
        watch: args.watch,
        fps: args.fps,
        loaded,
        requests,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("runtime")?;
    tokio.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("--port {}", args.port))?;
        let addr = listener.local_addr()?;
        // The first line on stdout, for people and for scripts.
        println!("template preview: http://{addr}/");
        eprintln!(
            "template preview: {}{}; Ctrl-C stops it",
            args.file.display(),
            if args.watch {
                ", reloaded when it changes"
            } else {
                ""
            }
        );
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}

/// Refuses a `--background` that is not a colour before anything is served.
fn check_background(background: &str) -> anyhow::Result<()> {
    let scene: sm_scene::Scene = serde_json::from_value(serde_json::json!({
        "canvas": {"width": 16, "height": 16, "background": background},
        "layers": []
    }))
    .with_context(|| format!("--background {background:?}"))?;
    scene
        .validate(&sm_scene::NoAssets)
        .with_context(|| format!("--background {background:?}"))
}

/// Prepares `file` and puts the build on show (saying so on stderr), or its error beside
/// the last good one; returns the error.
fn load(
    runtime: &Arc<Runtime>,
    file: &Path,
    fps: u32,
    loaded: &watch::Sender<Loaded>,
) -> Option<String> {
    match prepare_file(runtime, file, fps) {
        Ok(build) => {
            let mut news = None;
            loaded.send_if_modified(|l| {
                if l.build.as_ref().is_some_and(|b| b.hash == build.hash) {
                    // The same bytes again (a touch, a rebuild that changed nothing).
                    let cleared = l.error.take().is_some();
                    l.revision += u64::from(cleared);
                    return cleared;
                }
                l.version += 1;
                l.revision += 1;
                l.error = None;
                news = Some(format!(
                    "template preview: loaded {} {} (version {})",
                    build.info.name, build.info.version, l.version
                ));
                l.build = Some(build);
                true
            });
            if let Some(news) = news {
                eprintln!("{news}");
            }
            None
        }
        Err(e) => {
            let error = format!("{e:#}");
            loaded.send_modify(|l| {
                l.error = Some(error.clone());
                l.revision += 1;
            });
            Some(error)
        }
    }
}

/// What identifies a version of the file: its size and modification time (`None`: it is
/// not there).
fn stamp(file: &Path) -> Option<(u64, Option<SystemTime>)> {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.len(), meta.modified().ok()))
}

/// Reloads `file` whenever it changes, once it has held still for one poll (a build or a
/// copy still writing it would not load). Runs until the process ends.
fn watch_file(runtime: &Arc<Runtime>, file: &Path, fps: u32, loaded: &watch::Sender<Loaded>) {
    let mut seen = stamp(file);
    let mut settling = None;
    loop {
        std::thread::sleep(POLL);
        let now = stamp(file);
        if now == seen {
            settling = None;
            continue;
        }
        if settling != Some(now) {
            settling = Some(now);
            continue;
        }
        seen = now;
        settling = None;
        if let Some(error) = load(runtime, file, fps, loaded) {
            eprintln!("template preview: {error}; the last good version stays on show");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The renderer

/// How the renderer draws, from the command line.
struct Setup {
    fps: u32,
    clock: i64,
    background: String,
    assets: Option<PathBuf>,
}

/// One picture asked for.
struct RenderRequest {
    params: Option<Value>,
    frame: u32,
    reply: oneshot::Sender<Result<Rendered, ApiError>>,
}

/// One picture and what it cost.
struct Rendered {
    png: Vec<u8>,
    frame: u32,
    version: u64,
    timing: LayerTiming,
    /// Frames drawn to reach it (1 when it was the next one; 0 when it was drawn already).
    drawn: u32,
    /// The first fault of the frames drawn on the way to it (frame, message).
    earlier_fault: Option<(u32, String)>,
    took: Duration,
}

/// The renderer's run: its build and params, and the last frame it drew.
struct Session {
    hash: String,
    params: Value,
    run: TemplateRun,
    pixmap: Pixmap,
    last: Option<(u32, LayerTiming)>,
}

/// Serves render requests one after the other until the HTTP side is gone.
fn render_thread(
    runtime: &Arc<Runtime>,
    loaded: &watch::Receiver<Loaded>,
    setup: &Setup,
    queue: &Receiver<RenderRequest>,
) {
    let mut session: Option<Session> = None;
    while let Ok(request) = queue.recv() {
        let (build, version, error) = {
            let l = loaded.borrow();
            (l.build.clone(), l.version, l.error.clone())
        };
        let answer = match build {
            None => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_loaded",
                format!(
                    "the template has not loaded yet: {}",
                    error.as_deref().unwrap_or("loading")
                ),
            )),
            Some(build) => {
                let params = request
                    .params
                    .unwrap_or_else(|| build.info.default_params.clone());
                render_frame(
                    (runtime, &build, version),
                    params,
                    request.frame,
                    setup,
                    &mut session,
                )
            }
        };
        // The page may have gone meanwhile.
        let _ = request.reply.send(answer);
    }
}

/// Draws `frame` of `build` (the loader's `version`) with `params`, continuing `session`
/// when it can.
fn render_frame(
    (runtime, build, version): (&Arc<Runtime>, &Arc<Build>, u64),
    params: Value,
    frame: u32,
    setup: &Setup,
    session: &mut Option<Session>,
) -> Result<Rendered, ApiError> {
    let started = Instant::now();
    let same = session
        .as_ref()
        .is_some_and(|s| s.hash == build.hash && s.params == params);
    if !same {
        build
            .check_params(&params)
            .map_err(|e| invalid_params(&e))?;
        template_accepts(runtime, build, &params.to_string()).map_err(|e| invalid_params(&e))?;
    }
    let behind = session
        .as_ref()
        .is_some_and(|s| s.last.is_some_and(|(n, _)| frame < n));
    if !same || behind || session.is_none() {
        *session = None;
        let [w, h] = build.info.default_size;
        let run = TemplateRun::new(
            (runtime, build),
            params.clone(),
            &RunSetup {
                size: (w, h),
                fps: setup.fps,
                clock: setup.clock,
                background: &setup.background,
                assets: setup.assets.as_deref(),
            },
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_setup",
                format!("{e:#}"),
            )
        })?;
        let pixmap = Pixmap::new(w, h).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_setup",
                format!("no canvas of {w}x{h}"),
            )
        })?;
        *session = Some(Session {
            hash: build.hash.clone(),
            params,
            run,
            pixmap,
            last: None,
        });
    }
    let s = session.as_mut().expect("made above");
    let (mut drawn, mut earlier_fault) = (0, None);
    while s.run.next_frame() <= frame {
        let n = s.run.next_frame();
        let (timing, fault) = s.run.step(&mut s.pixmap);
        drawn += 1;
        s.last = Some((n, timing));
        match fault {
            Some(fault) if n == frame => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "template_failed",
                    format!("frame {n}: {fault}"),
                ));
            }
            Some(fault) if earlier_fault.is_none() => earlier_fault = Some((n, fault.to_string())),
            Some(_) | None => {}
        }
    }
    let timing = s.last.map(|(_, t)| t).unwrap_or_default();
    let png = s.pixmap.encode_png().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("PNG encoding: {e}"),
        )
    })?;
    Ok(Rendered {
        png,
        frame,
        version,
        timing,
        drawn,
        earlier_fault,
        took: started.elapsed(),
    })
}

/// 422 `invalid_params`, worded as the main API words it (`…params: /field: what`), so the
/// console's form puts it next to its field.
fn invalid_params(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_params",
        format!("params: {message}"),
    )
}

// ---------------------------------------------------------------------------------------
// HTTP

/// What the handlers share.
#[derive(Clone)]
struct Preview {
    file: String,
    watch: bool,
    fps: u32,
    loaded: watch::Receiver<Loaded>,
    requests: SyncSender<RenderRequest>,
}

/// The preview's routes: the page at `/` (and the console's files it imports), the API.
fn router(state: Preview) -> Router {
    Router::new()
        .route("/api/template", get(get_template))
        .route("/api/render", post(render))
        .layer(middleware::from_fn(same_origin_only))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
        .merge(console::pages("template.html"))
}

async fn same_origin_only(req: Request, next: Next) -> Response {
    if console::same_origin(req.headers()) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "requests from another site's page are refused",
        )
        .into_response()
    }
}

/// `GET /api/template`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateView {
    /// The file given on the command line.
    file: String,
    /// Whether it is reloaded when it changes.
    watch: bool,
    /// Changes so far of this answer (see `?after=`).
    revision: u64,
    /// Builds loaded so far; 0 while none has.
    version: u64,
    /// Frame rate of the preview.
    fps: u32,
    /// Frames a render may ask for: `0..maxFrames`.
    max_frames: u32,
    /// What the template on show describes (`null` while none has loaded).
    info: Option<TemplateInfo>,
    /// Why the file as it is now did not load (`null` when it did).
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    /// Answer once the revision differs from this one (or after a while).
    after: Option<u64>,
}

/// The template on show; with `?after=REVISION`, once there is a newer revision (at most
/// [`LONG_POLL`] later).
async fn get_template(
    State(state): State<Preview>,
    query: Result<Query<After>, QueryRejection>,
) -> Result<Json<TemplateView>, ApiError> {
    let Query(After { after }) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let mut loaded = state.loaded.clone();
    if let Some(seen) = after {
        // A closed channel (the loader is gone) or the time running out answers as it is.
        let _ = tokio::time::timeout(LONG_POLL, loaded.wait_for(|l| l.revision != seen)).await;
    }
    let l = loaded.borrow();
    Ok(Json(TemplateView {
        file: state.file.clone(),
        watch: state.watch,
        revision: l.revision,
        version: l.version,
        fps: state.fps,
        max_frames: MAX_FRAMES,
        info: l.build.as_ref().map(|b| b.info.clone()),
        error: l.error.clone(),
    }))
}

/// `POST /api/render`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderBody {
    /// The params (default: the template's default params).
    #[serde(default)]
    params: Option<Value>,
    /// The frame, from 0 (the layer's first).
    #[serde(default)]
    frame: u32,
}

/// Draws one frame: a PNG, with what it cost in `X-…` headers.
async fn render(
    State(state): State<Preview>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: RenderBody = crate::api::scene::decode(json_body(&headers, body)?)?;
    if body.frame >= MAX_FRAMES {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            format!("frame: 0..{MAX_FRAMES}, not {}", body.frame),
        ));
    }
    let (reply, answer) = oneshot::channel();
    let request = RenderRequest {
        params: body.params,
        frame: body.frame,
        reply,
    };
    state.requests.try_send(request).map_err(|e| match e {
        TrySendError::Full(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the renderer has too many frames to draw; ask again",
        ),
        TrySendError::Disconnected(_) => renderer_gone(),
    })?;
    let r = answer.await.map_err(|_| renderer_gone())??;
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    let mut headers = vec![
        (header::CONTENT_TYPE, "image/png".to_string()),
        (header::CACHE_CONTROL, "no-store".to_string()),
        (name("x-preview-frame"), r.frame.to_string()),
        (name("x-preview-version"), r.version.to_string()),
        (name("x-guest-ms"), ms(r.timing.guest)),
        (name("x-raster-ms"), ms(r.timing.raster)),
        (name("x-raster-estimate-ms"), ms(r.timing.estimate)),
        (name("x-budget-ms"), ms(r.timing.share)),
        (name("x-drew"), r.timing.drew.to_string()),
        (name("x-frames-drawn"), r.drawn.to_string()),
        (name("x-render-ms"), ms(r.took)),
    ];
    if let Some((frame, message)) = r.earlier_fault {
        headers.push((name("x-earlier-fault"), format!("frame {frame}: {message}")));
    }
    let mut response = r.png.into_response();
    for (key, value) in headers {
        // A fault message may hold what a header cannot: shown as `?`.
        let value: String = value
            .chars()
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(key, v);
        }
    }
    Ok(response)
}

fn name(s: &'static str) -> HeaderName {
    HeaderName::from_static(s)
}

fn renderer_gone() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the renderer stopped",
    )
}
