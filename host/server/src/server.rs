//! Wiring of the running server: store, state, controller, listeners, and the two-phase
//! shutdown (first signal: stop accepting, stop the stream cleanly, persist, exit 0; a
//! second signal exits at once).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::assets::AssetManager;
use crate::audio::AudioManager;
use crate::config::Settings;
use crate::control::StreamController;
use crate::inputs::InputManager;
use crate::media::MediaLibrary;
use crate::recordings::RecordingManager;
use crate::scene_manager::SceneManager;
use crate::state::KEY_INSTANCE;
use crate::state::StateManager;
use crate::state::lease::{InstanceStatus, Lease};
use crate::state::store::{MemoryStore, RedisStore, StateStore};
use crate::state::{Event, FaultEvent};
use sm_media::audio::mixer::AudioMix;
use sm_media::destination::tls_connector;
use sm_media::hub::MediaHub;
use sm_media::rtmp_server;
use sm_plugin_host::PluginError;
use sm_plugin_host::Runtime;
use sm_plugin_host::TemplateEventKind;
use sm_plugin_host::faults::FaultThrottle;
use sm_plugin_host::loaders::LoaderRegistry;
use sm_plugin_host::registry::{RegistryError, TemplateRegistry};

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let (store, lease): (Arc<dyn StateStore>, _) = match &settings.redis_url {
        Some(url) => {
            let redis = Arc::new(RedisStore::new(url).context("redis-url")?);
            let lease = Arc::new(Lease::new(
                redis.clone(),
                &settings.key_prefix,
                &settings.instance_name,
                KEY_INSTANCE,
            ));
            (redis, Some(lease))
        }
        None => (Arc::new(MemoryStore::default()), None),
    };
    let runtime = Runtime::new(settings.plugin_limits.clone(), settings.cache_dir.clone())
        .context("template runtime")?;
    let instance = match &lease {
        Some(lease) => {
            if !take_the_channel(&settings, lease, &store, &runtime).await? {
                return Ok(());
            }
            // Renewed from now on, also while loading (which may take longer than the TTL).
            tokio::spawn(lease.clone().keep(restart_as_standby));
            lease.status()
        }
        None => watch::channel(InstanceStatus::alone(&settings.instance_name)).1,
    };
    let state = Arc::new(StateManager::new(
        store,
        settings.key_prefix.clone(),
        settings.stream.clone(),
    ));
    let previous = state.load().await;
    let hub = Arc::new(MediaHub::new());
    let tls = tls_connector(settings.tls_ca_file.as_deref())?;
    let templates = Arc::new(TemplateRegistry::new(runtime.clone(), state.clone()));
    templates.load().await;
    let loaders = Arc::new(LoaderRegistry::new(
        runtime,
        state.clone(),
        settings.loader_limits.clone(),
    ));
    loaders.load().await;
    if let Some(dir) = &settings.templates_dir {
        install_templates(&templates, &loaders, dir, &mut HashMap::new()).await;
    }
    // Assets after the loaders: those a loader decoded are decoded by it again.
    let assets = Arc::new(AssetManager::new(state.clone(), settings.asset_limits));
    assets.set_loaders(loaders.clone());
    assets.load().await;
    let redrawn = assets.redrawn();
    let library = Arc::new(MediaLibrary::new(
        settings.inputs.media_dir.clone(),
        settings.max_media_bytes,
        settings.inputs.max_picture,
    ));
    let mix = Arc::new(AudioMix::new());
    let audio = Arc::new(AudioManager::new(state.clone(), mix.clone()));
    audio.load().await;
    let inputs = Arc::new(InputManager::new(
        state.clone(),
        settings.inputs.clone(),
        library,
        mix.clone(),
    ));
    inputs.load().await;
    let scenes = Arc::new(
        SceneManager::load(
            state.clone(),
            assets,
            Some(templates.clone()),
            Some(inputs.clone()),
        )
        .await,
    );
    report_template_events(&templates, &scenes, &state);
    tokio::spawn(show_redrawn_images(redrawn, Arc::downgrade(&scenes)));
    if let (Some(dir), true) = (&settings.templates_dir, settings.watch_templates) {
        tokio::spawn(watch_templates(
            (templates.clone(), loaders),
            scenes.clone(),
            dir.clone(),
        ));
    }
    let controller = Arc::new(StreamController::new(
        state.clone(),
        hub.clone(),
        tls,
        scenes.slot().clone(),
        mix,
    ));
    let recordings = Arc::new(RecordingManager::new(
        state.clone(),
        hub.clone(),
        settings.recordings.clone(),
    ));
    recordings.load().await;
    // Everything is loaded: from now on a store without the marker has lost its data.
    state.claim_store().await;
    let access = settings.access()?;
    let app = AppState::new(controller.clone(), scenes, access)
        .with_max_ws_clients(settings.max_ws_clients)
        .with_rtmp_port(settings.rtmp_port)
        .with_recordings(recordings.clone())
        .with_audio(audio)
        .with_instance(instance);

    let http = bind(
        SocketAddr::new(settings.bind, settings.http_port),
        "http-port",
    )
    .await?;
    let ws = bind(SocketAddr::new(settings.bind, settings.ws_port), "ws-port").await?;
    let rtmp = bind(
        SocketAddr::new(settings.bind, settings.rtmp_port),
        "rtmp-port",
    )
    .await?;
    let (shutdown_tx, shutdown) = watch::channel(false);

    tokio::spawn(state.clone().run_reconnect());
    {
        let app = app.clone();
        tokio::spawn(controller.clone().run_metrics(move || {
            serde_json::to_value(api::health_report(&app)).unwrap_or_default()
        }));
    }
    {
        // Config that Redis could not give at boot is applied when it comes back.
        let (controller, mut restored) = (controller.clone(), state.restored_config());
        tokio::spawn(async move {
            while restored.changed().await.is_ok() {
                let config = restored.borrow_and_update().clone();
                if let Some(c) = config
                    && let Err(e) = controller.apply_config(c).await
                {
                    tracing::warn!(error = %e, "restored config could not be applied");
                }
            }
        });
    }
    tokio::spawn(rtmp_server::serve(
        rtmp,
        hub.clone(),
        Some(inputs.ingest().clone()),
        shutdown.clone(),
    ));
    let http_task = tokio::spawn(serve_http(http, api::router(app.clone()), shutdown.clone()));
    let ws_task = tokio::spawn(serve_http(
        ws,
        api::ws::router(app.clone()),
        shutdown.clone(),
    ));

    let host = if settings.bind.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        settings.bind.to_string()
    };
    tracing::info!(
        http = %format!("http://{host}:{}", settings.http_port),
        ws = %format!("ws://{host}:{}", settings.ws_port),
        store = state.store_kind(),
        "stream-manager ready; play with: ffplay rtmp://{host}:{}/live/main",
        settings.rtmp_port
    );

    let was_live = previous.is_some_and(|s| s.is_live);
    if settings.autostart || was_live {
        if was_live {
            tracing::info!("the stream was live when the previous process ended; going live again");
        }
        if let Err(e) = controller.start().await {
            tracing::error!(error = %e, "could not start the stream");
        }
    }

    wait_for_signal().await;
    tracing::info!("shutting down: stopping the stream (a second signal exits at once)");
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    let _ = shutdown_tx.send(true);
    recordings.stop_all().await;
    if controller.state().is_live {
        let _ = controller.stop().await;
    }
    inputs.shutdown().await;
    let _ = http_task.await;
    let _ = ws_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// How often a standby looks for new templates of the primary.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Makes this instance the primary: at once when the lease is free (or, without
/// `--standby`, when Redis cannot be reached: the lease is taken once it answers), else after
/// serving as a standby until the lease lapses. `false`: a signal ended the wait.
///
/// While it waits, a standby compiles the primary's templates as they appear in the store
/// (every [`FOLLOW_EVERY`]), so that taking over does not compile them.
async fn take_the_channel(
    settings: &Settings,
    lease: &Arc<Lease>,
    store: &Arc<dyn StateStore>,
    runtime: &Arc<Runtime>,
) -> anyhow::Result<bool> {
    if !settings.standby {
        match lease.try_acquire().await {
            Ok(true) => return Ok(true),
            Ok(false) => {
                let s = lease.status().borrow().clone();
                tracing::info!(
                    primary = s.primary.as_deref().unwrap_or(""),
                    epoch = ?s.epoch,
                    "another instance holds the channel's lease; starting as a standby"
                );
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "the lease cannot be read; starting as primary (it is taken once Redis answers)"
                );
                lease.assume_primary();
                return Ok(true);
            }
        }
    }
    lease.refresh().await;
    let state = api::standby::StandbyState {
        instance: lease.status(),
        store_up: lease.reachable(),
        access: Arc::new(settings.access()?),
        encoder: settings.stream.encoder,
    };
    let http = bind(
        SocketAddr::new(settings.bind, settings.http_port),
        "http-port",
    )
    .await?;
    let ws = bind(SocketAddr::new(settings.bind, settings.ws_port), "ws-port").await?;
    let (stop, stopped) = watch::channel(false);
    let router = api::standby::router(state);
    let servers = [
        tokio::spawn(serve_http(http, router.clone(), stopped.clone())),
        tokio::spawn(serve_http(ws, router, stopped)),
    ];
    tracing::info!(
        http = %format!("http://{}:{}", settings.bind, settings.http_port),
        instance = %settings.instance_name,
        "standby: following the primary; taking the channel over when its lease lapses"
    );
    let follow = {
        let (store, runtime, prefix) =
            (store.clone(), runtime.clone(), settings.key_prefix.clone());
        tokio::spawn(async move {
            loop {
                let read = |key: String| {
                    let (store, key) = (store.clone(), format!("{prefix}{key}"));
                    async move { store.get(&key).await.ok().flatten() }
                };
                let compiled = TemplateRegistry::precompile_stored(&runtime, read).await;
                if compiled > 0 {
                    tracing::info!(compiled, "standby: compiled the primary's new templates");
                }
                let compiled = LoaderRegistry::precompile_stored(&runtime, read).await;
                if compiled > 0 {
                    tracing::info!(compiled, "standby: compiled the primary's new loaders");
                }
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        })
    };
    let took = tokio::select! {
        () = lease.acquire_when_free(settings.standby) => true,
        () = wait_for_signal() => false,
    };
    follow.abort();
    let _ = stop.send(true);
    for server in servers {
        // Idle keep-alive connections end at once; a slow client is not waited for.
        let abort = server.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_millis(500), server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    if took {
        let s = lease.status().borrow().clone();
        tracing::warn!(
            epoch = ?s.epoch,
            "the primary's lease lapsed: this instance takes the channel over"
        );
    } else {
        tracing::info!("standby stopped");
    }
    Ok(took)
}

/// Called when another instance holds the lease this primary held (it was frozen, or cut
/// off from Redis for longer than the lease): stops at once, without writing anything, by
/// executing itself again with the same arguments, which starts it as a standby.
fn restart_as_standby(holder: &str) {
    tracing::error!(
        holder,
        "another instance holds the channel's lease: stopping at once (no more output or \
         writes) and starting again as a standby"
    );
    use std::os::unix::process::CommandExt as _;
    let error = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .exec(),
        Err(e) => e,
    };
    tracing::error!(error = %error, "could not start again; exiting");
    std::process::exit(75);
}

async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    // The client's address, for the limit on failed authentications.
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "http server failed");
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Installs every `*.wasm` of `dir` whose modification time differs from `seen`: a
/// template under its file stem as id (a new version when the template exists), an asset
/// loader under its name. Returns whether any template changed.
async fn install_templates(
    templates: &TemplateRegistry,
    loaders: &LoaderRegistry,
    dir: &Path,
    seen: &mut HashMap<PathBuf, SystemTime>,
) -> bool {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "templates folder unreadable: {e}");
            return false;
        }
    };
    let mut changed = false;
    for path in entries.flatten().map(|e| e.path()) {
        let Some(id) = path
            .extension()
            .filter(|x| *x == "wasm")
            .and(path.file_stem())
            .and_then(|s| s.to_str())
            .map(|s| s.replace('_', "-"))
        else {
            continue;
        };
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if modified.is_some() && seen.get(&path) == modified.as_ref() {
            continue;
        }
        if let Some(m) = modified {
            seen.insert(path.clone(), m);
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                tracing::warn!(file = %path.display(), "template unreadable: {e}");
                continue;
            }
        };
        match templates.install(&id, bytes.clone()).await {
            Ok(view) => {
                changed = true;
                tracing::info!(template = %id, version = view.version, "template installed");
            }
            // Not a template: an asset loader, perhaps.
            Err(RegistryError::Plugin(PluginError::WrongWorld(_))) => {
                match loaders.install(bytes).await {
                    Ok(view) => tracing::info!(loader = %view.id, revision = view.revision,
                        types = ?view.media_types, "asset loader installed"),
                    Err(e) => tracing::warn!(file = %path.display(), "not installed: {e}"),
                }
            }
            Err(e) => tracing::warn!(file = %path.display(), "template not installed: {e}"),
        }
    }
    changed
}

/// Hot-swaps templates of `dir` when their files change (polled once a second).
async fn watch_templates(
    (templates, loaders): (Arc<TemplateRegistry>, Arc<LoaderRegistry>),
    scenes: Arc<SceneManager>,
    dir: PathBuf,
) {
    let mut seen = HashMap::new();
    // The first pass only records what was installed at start.
    for path in std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
    {
        if let Ok(m) = std::fs::metadata(&path).and_then(|m| m.modified()) {
            seen.insert(path, m);
        }
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if install_templates(&templates, &loaders, &dir, &mut seen).await {
            scenes.templates_changed().await;
        }
    }
}

/// How often the same fault of the same template layer is reported on the WS feed and in
/// the log (every fault is counted in the metrics).
pub const FAULT_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Puts the scene on air again whenever a loader has drawn one of its images again at the
/// size a layer shows it (see [`crate::assets::redraw`]), until the server stops.
async fn show_redrawn_images(
    mut redrawn: tokio::sync::watch::Receiver<u64>,
    scenes: std::sync::Weak<SceneManager>,
) {
    while redrawn.changed().await.is_ok() {
        let Some(scenes) = scenes.upgrade() else {
            return;
        };
        scenes.resize().await;
    }
}

/// Turns what template layers report into statistics, WS `error` events and automatic
/// rollbacks, on a thread of its own (the render thread only queues the events). Recording
/// a fault on a swap's probation ([`TemplateRegistry::record`]) is also what a hot swap
/// still waiting for its answer learns its outcome from
/// ([`TemplateRegistry::swap_outcome`]).
fn report_template_events(
    templates: &Arc<TemplateRegistry>,
    scenes: &Arc<SceneManager>,
    state: &Arc<StateManager>,
) {
    let (templates, scenes, state) = (templates.clone(), scenes.clone(), state.clone());
    let events = templates.runtime().events();
    let handle = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("template-events".into())
        .spawn(move || {
            // The same fault of the same layer goes to the feed and the log at most once per
            // interval (counted always): a template faulting every few frames is not a flood.
            let mut throttle = FaultThrottle::new(FAULT_REPORT_INTERVAL);
            let mut key = String::new();
            while let Ok(event) = events.recv() {
                templates.record(&event);
                let (code, message) = match &event.kind {
                    TemplateEventKind::Fault(f) => {
                        key.clear();
                        key.push_str(&event.layer);
                        key.push('\0');
                        key.push_str(f.kind.as_str());
                        let Some(held) = throttle.admit(&key, std::time::Instant::now()) else {
                            continue;
                        };
                        let more = if held > 0 {
                            format!(" ({held} more like it since the last report)")
                        } else {
                            String::new()
                        };
                        (
                            "template_fault",
                            format!(
                                "layer {}: template {} {f}{more}",
                                event.layer, event.template
                            ),
                        )
                    }
                    TemplateEventKind::Quarantined(f) => (
                        "template_quarantined",
                        format!(
                            "layer {}: template {} quarantined after repeated faults (last: {f}); \
                             change its params or upload a new version to resume",
                            event.layer, event.template
                        ),
                    ),
                    TemplateEventKind::RollbackWanted(f) => {
                        // Reported once the rollback is done (there may be nothing to go back to).
                        let (templates, scenes, state) =
                            (templates.clone(), scenes.clone(), state.clone());
                        let (id, hash, f) = (event.template.clone(), event.hash.clone(), f.clone());
                        handle.spawn(async move {
                            let Some(view) = templates.rollback_from(&id, &hash).await else {
                                return;
                            };
                            let message = format!(
                                "template {id} faulted right after its swap ({f}); rolled back \
                                 to version {}",
                                view.version
                            );
                            tracing::warn!(template = %id, "{message}");
                            state.publish(Event::Error(FaultEvent {
                                code: "template_rolled_back".into(),
                                message,
                                component: Some(format!("template:{id}")),
                            }));
                            scenes.templates_changed().await;
                        });
                        continue;
                    }
                    TemplateEventKind::Swapped | TemplateEventKind::Resumed => {
                        // A new start: its first fault is news again.
                        throttle.forget(&format!("{}\0", event.layer));
                        continue;
                    }
                };
                tracing::warn!(template = %event.template, layer = %event.layer, "{message}");
                state.publish(Event::Error(FaultEvent {
                    code: code.into(),
                    message,
                    component: Some(format!("template:{}", event.template)),
                }));
            }
        });
    if let Err(e) = spawned {
        tracing::error!("template events are not reported: {e}");
    }
}
