//! Wiring of the running server: store, state, controller, listeners, and the two-phase
//! shutdown (first signal: stop accepting, stop the stream cleanly, persist, exit 0; a
//! second signal exits at once).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::assets::AssetManager;
use crate::config::Settings;
use crate::control::StreamController;
use crate::output::destination::tls_connector;
use crate::output::hub::MediaHub;
use crate::output::rtmp_server;
use crate::scene::SceneManager;
use crate::state::StateManager;
use crate::state::store::{MemoryStore, RedisStore, StateStore};

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let store: Arc<dyn StateStore> = match &settings.redis_url {
        Some(url) => Arc::new(RedisStore::new(url).context("redis-url")?),
        None => Arc::new(MemoryStore::default()),
    };
    let state = Arc::new(StateManager::new(
        store,
        settings.key_prefix.clone(),
        settings.stream.clone(),
    ));
    let previous = state.load().await;
    let hub = Arc::new(MediaHub::new());
    let tls = tls_connector(settings.tls_ca_file.as_deref())?;
    let assets = Arc::new(AssetManager::new(state.clone(), settings.asset_limits));
    assets.load().await;
    let scenes = Arc::new(SceneManager::load(state.clone(), assets).await);
    let controller = Arc::new(StreamController::new(
        state.clone(),
        hub.clone(),
        tls,
        scenes.slot().clone(),
    ));
    let app = AppState::new(controller.clone(), scenes, settings.api_token.clone());

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
    tokio::spawn(rtmp_server::serve(rtmp, hub.clone(), shutdown.clone()));
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
    if controller.state().is_live {
        let _ = controller.stop().await;
    }
    let _ = http_task.await;
    let _ = ws_task.await;
    tracing::info!("stopped");
    Ok(())
}

async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let result = axum::serve(listener, router)
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
