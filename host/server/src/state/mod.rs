//! State Manager: the one owner of the persisted state (stream config and state), the store
//! behind it, and the event bus that tells every WebSocket client what changed.
//!
//! Memory is the source of truth while the process runs. Every change is written to the
//! store at once; when the store is unreachable the change is kept, the store is reported
//! `down` (the server `degraded`), and a reconnect loop writes the current values back as
//! soon as the store answers again. A value that was never loaded because the store was down
//! at boot is read on reconnect and adopted, unless the operator changed it meanwhile.
//!
//! A store can also come back *empty*: a Redis restarted without persistence, flushed, or
//! failed over to an empty replica. The manager keeps the last value of every document it
//! wrote or loaded, writes a marker key ([`KEY_INSTANCE`]) once it has loaded, and checks
//! the marker every [`MARKER_CHECK`]: when it is gone, every document, the config and the
//! state are written back at once, then the marker.

pub mod lease;
pub mod model;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

pub use model::{StreamConfig, StreamMetrics, StreamState};
use store::{StateStore, StoreError};

/// Redis key of the stream state.
pub const KEY_STREAM_STATE: &str = "stream:state";
/// Redis key of the stream configuration.
pub const KEY_STREAM_CONFIG: &str = "stream:config";
/// Redis key of the scene.
pub const KEY_SCENE: &str = "scene";
/// Redis key of the last stream metrics (TTL 60 s).
pub const KEY_STREAM_METRICS: &str = "stream:metrics";
/// Redis key of the last health report (TTL 60 s).
pub const KEY_SYSTEM_HEALTH: &str = "system:health";
/// Redis key of the last system metrics (TTL 300 s).
pub const KEY_SYSTEM_METRICS: &str = "system:metrics";

/// Redis key of the marker that says the store holds this server's data (JSON
/// `{pid, since}`: the process that wrote it and when, ms since the Unix epoch).
pub const KEY_INSTANCE: &str = "instance";

/// How often the marker is looked for while the store answers.
pub const MARKER_CHECK: Duration = Duration::from_secs(2);

/// A fault reported to operators.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultEvent {
    /// Machine-readable code, e.g. `destination_failed`.
    pub code: String,
    /// Human-readable text.
    pub message: String,
    /// The component at fault, e.g. `destination:youtube`, `store`, `encoder`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

/// Messages of the event bus, serialized to WebSocket clients as `{type, payload}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "payload", rename_all = "camelCase")]
pub enum Event {
    /// The stream state changed (start, stop, pause, resume, config, error).
    StateUpdate(StreamState),
    /// Measurements, about once a second.
    MetricsUpdate(StreamMetrics),
    /// The scene changed.
    SceneUpdate(sm_scene::Scene),
    /// A fault somewhere in the server.
    Error(FaultEvent),
    /// A live input changed state.
    InputUpdate(sm_media::input::InputUpdate),
    /// A recording started, finished or failed.
    RecordingUpdate(sm_media::recording::Recording),
    /// The program's loudness and each source's level, about 10 times a second while live
    /// (sent to each WebSocket client by its own session, not through the bus).
    AudioLevels(crate::audio::AudioLevels),
}

/// System-wide measurements persisted under `system:metrics`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    /// CPU usage.
    pub cpu: CpuMetrics,
    /// Memory usage.
    pub memory: MemoryMetrics,
    /// Bytes through the network outputs.
    pub network: NetworkMetrics,
}

/// CPU part of [`SystemMetrics`].
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CpuMetrics {
    /// Percent of all cores used by this process.
    pub usage: f64,
    /// Number of cores.
    pub cores: u32,
}

/// Memory part of [`SystemMetrics`].
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct MemoryMetrics {
    /// Resident bytes of this process.
    pub used: u64,
    /// Total bytes of the machine.
    pub total: u64,
}

/// Network part of [`SystemMetrics`].
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkMetrics {
    /// Bytes received from RTMP peers.
    pub bytes_in: u64,
    /// Bytes sent to RTMP peers.
    pub bytes_out: u64,
}

#[derive(Debug)]
struct Inner {
    config: StreamConfig,
    state: StreamState,
    store_error: Option<String>,
    config_loaded: bool,
    config_dirty: bool,
    state_dirty: bool,
    /// Writes of other persisted documents (the scenes, assets, …) not yet in the store:
    /// the bytes to write (`None`: delete the key) and a sequence number, so that a write
    /// that raced a newer change does not clear it.
    pending_docs: std::collections::HashMap<String, (Option<bytes::Bytes>, u64)>,
    doc_seq: u64,
    /// The last value of every document written or loaded, to write back into a store that
    /// came back empty (the bytes are shared with their owners, not copied).
    shadow: std::collections::HashMap<String, bytes::Bytes>,
    /// The marker this process wrote (`None` until it has loaded).
    marker: Option<bytes::Bytes>,
}

/// Owner of the stream's config and state, their persistence and the event bus.
pub struct StateManager {
    store: Arc<dyn StateStore>,
    prefix: String,
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
    restored_config: watch::Sender<Option<StreamConfig>>,
    /// Writes go out one at a time, each taking its snapshot inside the lock, so an older
    /// snapshot can never land after a newer one.
    flush_lock: tokio::sync::Mutex<()>,
}

impl StateManager {
    /// Creates the manager with `initial` as the config until one is loaded from the store.
    pub fn new(
        store: Arc<dyn StateStore>,
        prefix: impl Into<String>,
        initial: StreamConfig,
    ) -> Self {
        let (events, _) = broadcast::channel(256);
        let state = StreamState::idle(initial.target_fps);
        Self {
            store,
            prefix: prefix.into(),
            inner: Mutex::new(Inner {
                config: initial,
                state,
                store_error: None,
                config_loaded: false,
                config_dirty: false,
                state_dirty: false,
                pending_docs: std::collections::HashMap::new(),
                doc_seq: 0,
                shadow: std::collections::HashMap::new(),
                marker: None,
            }),
            events,
            restored_config: watch::channel(None).0,
            flush_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("state lock poisoned")
    }

    /// Loads config and state from the store. Returns the state found there (to decide
    /// whether the stream was live when the previous process died). A store that is down is
    /// not an error: it is reported and retried by [`StateManager::run_reconnect`].
    pub async fn load(&self) -> Option<StreamState> {
        let config = self.read_config().await;
        let state = self.read_json::<StreamState>(KEY_STREAM_STATE).await;
        match (config, state) {
            (Ok(config), Ok(state)) => {
                let absent = config.is_none();
                {
                    let mut inner = self.lock();
                    if let Some(config) = config {
                        inner.state.target_fps = config.target_fps;
                        inner.config = config;
                    }
                    inner.config_loaded = true;
                    inner.config_dirty |= absent;
                }
                if absent {
                    // The boot config (file, environment, defaults) is what runs: stored at
                    // once, a standby taking over runs it too.
                    self.flush().await;
                }
                state
            }
            (Err(e), _) | (_, Err(e)) => {
                self.mark_store_down(&e);
                None
            }
        }
    }

    /// Reads the stored config; one that does not validate (written by another version, or
    /// by hand) is ignored with a warning rather than crashing the pipeline.
    async fn read_config(&self) -> Result<Option<StreamConfig>, StoreError> {
        Ok(self
            .read_json::<StreamConfig>(KEY_STREAM_CONFIG)
            .await?
            .filter(|c| match c.validate() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring the stored config: it is not valid");
                    false
                }
            }))
    }

    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let Some(text) = self.store.get(&self.key(key)).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<T>(&text) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::warn!(key, error = %e, "ignoring unreadable stored value");
                Ok(None)
            }
        }
    }

    /// The event bus, for WebSocket sessions.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Sends an event to every subscriber (none is fine).
    pub fn publish(&self, event: Event) {
        let _ = self.events.send(Arc::new(event));
    }

    /// Reports a fault on the bus and in the log.
    pub fn fault(&self, code: &str, component: Option<&str>, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(code, component, %message, "fault");
        self.publish(Event::Error(FaultEvent {
            code: code.into(),
            message,
            component: component.map(Into::into),
        }));
    }

    /// Config the store held but could not give at boot, adopted on reconnect.
    pub fn restored_config(&self) -> watch::Receiver<Option<StreamConfig>> {
        self.restored_config.subscribe()
    }

    /// Current configuration (stream keys unmasked: never send this to a client).
    pub fn config(&self) -> StreamConfig {
        self.lock().config.clone()
    }

    /// The persisted part of the stream state.
    pub fn state(&self) -> StreamState {
        self.lock().state.clone()
    }

    /// Replaces the config and persists it.
    pub async fn set_config(&self, config: StreamConfig) {
        {
            let mut inner = self.lock();
            inner.state.target_fps = config.target_fps;
            inner.config = config;
            inner.config_dirty = true;
            inner.config_loaded = true;
        }
        self.flush().await;
    }

    /// Changes the state with `f`, persists it and announces it as `stateUpdate`.
    pub async fn update_state(&self, f: impl FnOnce(&mut StreamState)) -> StreamState {
        let state = {
            let mut inner = self.lock();
            f(&mut inner.state);
            inner.state_dirty = true;
            inner.state.clone()
        };
        self.flush().await;
        state
    }

    /// Reads a persisted document at boot; `None` when absent or the store is down
    /// (reported like any store failure). A write still pending is what is returned.
    pub async fn load_doc(&self, key: &str) -> Option<Vec<u8>> {
        if let Some((value, _)) = self.lock().pending_docs.get(key) {
            return value.as_ref().map(|v| v.to_vec());
        }
        match self.store.get(&self.key(key)).await {
            Ok(v) => {
                if let Some(v) = &v {
                    let mut inner = self.lock();
                    // A write queued meanwhile is newer than what was read.
                    if !inner.pending_docs.contains_key(key) {
                        inner
                            .shadow
                            .insert(key.to_string(), bytes::Bytes::from(v.clone()));
                    }
                }
                v
            }
            Err(e) => {
                self.mark_store_down(&e);
                None
            }
        }
    }

    /// Replaces a persisted document and writes it (or keeps it for the reconnect loop).
    pub async fn set_doc(&self, key: &str, value: impl Into<bytes::Bytes>) {
        self.queue_doc(key, Some(value.into()));
        self.flush().await;
    }

    /// Deletes a persisted document (or keeps the deletion for the reconnect loop).
    pub async fn remove_doc(&self, key: &str) {
        self.queue_doc(key, None);
        self.flush().await;
    }

    fn queue_doc(&self, key: &str, value: Option<bytes::Bytes>) {
        let mut inner = self.lock();
        inner.doc_seq += 1;
        let seq = inner.doc_seq;
        match &value {
            Some(v) => inner.shadow.insert(key.to_string(), v.clone()),
            None => inner.shadow.remove(key),
        };
        inner.pending_docs.insert(key.to_string(), (value, seq));
    }

    /// Marks the store as holding this server's data (call once everything is loaded): from
    /// now on a store found without the marker has lost it, and gets everything back.
    pub async fn claim_store(&self) {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let marker = serde_json::json!({"pid": std::process::id(), "since": since});
        let marker = bytes::Bytes::from(marker.to_string());
        self.lock().marker = Some(marker.clone());
        if let Err(e) = self.store.set(&self.key(KEY_INSTANCE), &marker, None).await {
            self.mark_store_down(&e);
        }
    }

    /// Whether the store answers but no longer holds the marker (it lost its data).
    async fn store_was_emptied(&self) -> bool {
        if self.lock().marker.is_none() || self.store_error().is_some() {
            return false;
        }
        match self.store.get(&self.key(KEY_INSTANCE)).await {
            Ok(found) => found.is_none(),
            Err(e) => {
                self.mark_store_down(&e);
                false
            }
        }
    }

    /// Writes every document, the config, the state and then the marker back.
    async fn write_everything_back(&self) {
        let (docs, marker) = {
            let mut inner = self.lock();
            let shadow: Vec<(String, bytes::Bytes)> = inner
                .shadow
                .iter()
                .filter(|(k, _)| !inner.pending_docs.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (key, value) in &shadow {
                inner.doc_seq += 1;
                let seq = inner.doc_seq;
                inner
                    .pending_docs
                    .insert(key.clone(), (Some(value.clone()), seq));
            }
            inner.config_dirty = true;
            inner.state_dirty = true;
            (inner.shadow.len(), inner.marker.clone())
        };
        self.flush().await;
        if self.store_error().is_some() {
            return;
        }
        if let Some(marker) = marker
            && let Err(e) = self.store.set(&self.key(KEY_INSTANCE), &marker, None).await
        {
            self.mark_store_down(&e);
            return;
        }
        self.fault(
            "store_emptied",
            Some("store"),
            format!(
                "the {} store came back without this server's data (restarted without \
                 persistence, flushed or failed over to an empty replica): the config, the \
                 state and {docs} documents were written back",
                self.store.kind()
            ),
        );
    }

    /// Writes a value with a TTL (metrics, health); failures only mark the store down.
    pub async fn write_ephemeral(&self, key: &str, value: &impl Serialize, ttl: Duration) {
        let Ok(text) = serde_json::to_string(value) else {
            return;
        };
        if self.store_error().is_some() {
            return;
        }
        if let Err(e) = self
            .store
            .set(&self.key(key), text.as_bytes(), Some(ttl))
            .await
        {
            self.mark_store_down(&e);
        }
    }

    /// Writes every dirty value; on failure the values stay dirty for the reconnect loop.
    async fn flush(&self) {
        let _serial = self.flush_lock.lock().await;
        let (config, state, docs) = {
            let inner = self.lock();
            if inner.store_error.is_some() {
                return;
            }
            (
                inner.config_dirty.then(|| inner.config.clone()),
                inner.state_dirty.then(|| inner.state.clone()),
                inner
                    .pending_docs
                    .iter()
                    .map(|(k, (value, seq))| (k.clone(), value.clone(), *seq))
                    .collect::<Vec<_>>(),
            )
        };
        let result = async {
            for (key, value, _) in &docs {
                match value {
                    Some(v) => self.store.set(&self.key(key), v, None).await?,
                    None => self.store.del(&self.key(key)).await?,
                }
            }
            if let Some(c) = &config {
                let text = serde_json::to_string(c).expect("config serializes");
                self.store
                    .set(&self.key(KEY_STREAM_CONFIG), text.as_bytes(), None)
                    .await?;
            }
            if let Some(s) = &state {
                let text = serde_json::to_string(s).expect("state serializes");
                self.store
                    .set(&self.key(KEY_STREAM_STATE), text.as_bytes(), None)
                    .await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        match result {
            Ok(()) => {
                let mut inner = self.lock();
                // Only clear what was written; a concurrent change re-dirtied it.
                if config.as_ref() == Some(&inner.config) {
                    inner.config_dirty = false;
                }
                if state.as_ref() == Some(&inner.state) {
                    inner.state_dirty = false;
                }
                for (key, _, seq) in docs {
                    if inner.pending_docs.get(&key).is_some_and(|(_, s)| *s == seq) {
                        inner.pending_docs.remove(&key);
                    }
                }
            }
            Err(e) => self.mark_store_down(&e),
        }
    }

    fn mark_store_down(&self, e: &StoreError) {
        let first = {
            let mut inner = self.lock();
            let first = inner.store_error.is_none();
            inner.store_error = Some(e.to_string());
            first
        };
        if first {
            self.fault(
                "store_unavailable",
                Some("store"),
                format!(
                    "{} store unreachable, running from memory: {e}",
                    self.store.kind()
                ),
            );
        }
    }

    /// `None` when the store answers, else the last error.
    pub fn store_error(&self) -> Option<String> {
        self.lock().store_error.clone()
    }

    /// Kind of the store (`memory`, `redis`).
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Watches the store while it is down and writes the current values back once it
    /// answers. Runs until the process ends.
    pub async fn run_reconnect(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_check = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            if self.store_error().is_none() {
                if last_check.elapsed() >= MARKER_CHECK {
                    last_check = tokio::time::Instant::now();
                    if self.store_was_emptied().await {
                        self.write_everything_back().await;
                    }
                }
                continue;
            }
            if self.store.ping().await.is_err() {
                continue;
            }
            let loaded = self.lock().config_loaded;
            if !loaded {
                match self.read_config().await {
                    Ok(stored) => {
                        let mut inner = self.lock();
                        inner.config_loaded = true;
                        if let Some(c) = stored.filter(|_| !inner.config_dirty) {
                            inner.config = c.clone();
                            inner.state.target_fps = c.target_fps;
                            drop(inner);
                            let _ = self.restored_config.send(Some(c));
                        }
                    }
                    Err(_) => continue,
                }
            }
            {
                let mut inner = self.lock();
                inner.config_dirty = true;
                inner.state_dirty = true;
                inner.store_error = None;
            }
            self.flush().await;
            if self.store_error().is_none() {
                tracing::info!(
                    store = self.store.kind(),
                    "store reachable again; state written back"
                );
                if self.store_was_emptied().await {
                    self.write_everything_back().await;
                }
                last_check = tokio::time::Instant::now();
            }
        }
    }
}

/// The template registry persists its index and component bytes in the state store.
impl sm_plugin_host::registry::TemplateStore for StateManager {
    fn load_doc<'a>(
        &'a self,
        key: &'a str,
    ) -> sm_plugin_host::registry::StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(StateManager::load_doc(self, key))
    }

    fn set_doc<'a>(
        &'a self,
        key: &'a str,
        value: bytes::Bytes,
    ) -> sm_plugin_host::registry::StoreFuture<'a, ()> {
        Box::pin(StateManager::set_doc(self, key, value))
    }

    fn remove_doc<'a>(&'a self, key: &'a str) -> sm_plugin_host::registry::StoreFuture<'a, ()> {
        Box::pin(StateManager::remove_doc(self, key))
    }

    fn target_fps(&self) -> u32 {
        self.config().target_fps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::MemoryStore;

    #[tokio::test]
    async fn changes_persist_and_reload() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::default());
        let m = StateManager::new(store.clone(), "p:", StreamConfig::default());
        let c = StreamConfig {
            width: 640,
            height: 360,
            ..Default::default()
        };
        m.set_config(c.clone()).await;
        m.update_state(|s| s.is_live = true).await;
        let m2 = StateManager::new(store.clone(), "p:", StreamConfig::default());
        let state = m2.load().await.unwrap();
        assert!(state.is_live);
        assert_eq!(m2.config(), c);
        assert!(store.get("p:stream:config").await.unwrap().is_some());
    }
}
