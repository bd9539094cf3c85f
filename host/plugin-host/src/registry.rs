//! The uploaded templates: each an id with its versions, one of them current. Uploads and
//! new versions are prepared off the render thread ([`Runtime::prepare`]); the current
//! versions are published as one snapshot that scenes on air take (a hot swap is a new
//! snapshot, picked up by the render thread at a frame boundary). Versions persist through
//! a [`TemplateStore`], the server's state store (`templates` index, `template:{hash}` bytes) and are prepared again at
//! boot, from the compiled-component cache when it has them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Build, Fault, PluginError, Runtime, TemplateInfo};

/// Store key of the template index.
pub const KEY_TEMPLATES: &str = "templates";
/// Most templates held.
const MAX_TEMPLATES: usize = 256;
/// Most versions kept per template (the oldest beyond are forgotten).
const MAX_VERSIONS: usize = 8;
/// Frames after a hot swap's first frame on air in which a fault makes the swap's answer
/// a refusal (the swap frame itself always counts); later faults within the probation are
/// rolled back all the same, reported on the WebSocket only.
pub const SWAP_SETTLE_FRAMES: u32 = 3;
/// How long a hot swap that faulted waits for its automatic rollback before answering.
const ROLLBACK_WAIT: Duration = Duration::from_secs(5);

/// Store key of a component's bytes.
fn bytes_key(hash: &str) -> String {
    format!("template:{hash}")
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The component was refused.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// No such template.
    #[error("unknown template {0:?}")]
    NotFound(String),
    /// Nothing to roll back to.
    #[error("template {0:?} has no previous version")]
    NoPrevious(String),
    /// The registry is full.
    #[error("at most {0} templates")]
    Full(usize),
    /// A new version faulted on a layer on air at its swap and was rolled back.
    #[error(transparent)]
    SwapFailed(#[from] SwapFailure),
}

/// A hot swap whose new version faulted on a layer at the swap (or in its first frames).
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "version {version} faulted on layer {layer} at its swap ({fault}); {}",
    after_swap(.version, .now)
)]
pub struct SwapFailure {
    /// The version that faulted.
    pub version: u32,
    /// The layer it faulted on (the first to report).
    pub layer: String,
    /// The fault.
    pub fault: Fault,
    /// The current version now (`None` while the rollback has not happened).
    pub now: Option<u32>,
}

/// The end of a [`SwapFailure`]'s message: what is current now.
fn after_swap(faulted: &u32, now: &Option<u32>) -> String {
    match now {
        Some(n) if n < faulted => format!("rolled back to version {n}"),
        Some(n) => format!("version {n} is current"),
        None => "its automatic rollback is still under way".into(),
    }
}

/// What an upload did.
#[derive(Debug)]
pub enum Uploaded {
    /// A new template.
    Created(TemplateView),
    /// The bytes are a version of this template already: nothing changed.
    Existing(TemplateView),
}

/// The first fault of a template's newest swap, as reported by a layer.
#[derive(Debug, Clone)]
struct SwapFault {
    hash: String,
    layer: String,
    fault: Fault,
}

/// One version of a template, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    /// Version number: 1 for the first upload, then one more per replacement.
    pub version: u32,
    /// SHA-256 of the component.
    pub hash: String,
    /// Component size in bytes.
    pub bytes: usize,
    /// What it says about itself.
    pub info: TemplateInfo,
}

/// A template as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    /// Its id (layers name it).
    pub id: String,
    /// The current version number.
    pub version: u32,
    /// What the current version says about itself.
    pub info: TemplateInfo,
    /// Every kept version, oldest first.
    pub versions: Vec<VersionView>,
}

struct Version {
    number: u32,
    build: Arc<Build>,
}

struct Entry {
    versions: Vec<Version>,
    current: usize,
    /// The first fault reported on probation of the current version's swap.
    swap_fault: Option<SwapFault>,
}

impl Entry {
    fn current(&self) -> &Version {
        &self.versions[self.current]
    }

    fn view(&self, id: &str) -> TemplateView {
        let current = self.current();
        TemplateView {
            id: id.to_string(),
            version: current.number,
            info: current.build.info.clone(),
            versions: self
                .versions
                .iter()
                .map(|v| VersionView {
                    version: v.number,
                    hash: v.build.hash.clone(),
                    bytes: v.build.bytes.len(),
                    info: v.build.info.clone(),
                })
                .collect(),
        }
    }
}

/// What is persisted under [`KEY_TEMPLATES`].
#[derive(Serialize, Deserialize, Default)]
struct Index {
    templates: Vec<IndexEntry>,
}

#[derive(Serialize, Deserialize)]
struct IndexEntry {
    id: String,
    current: u32,
    versions: Vec<(u32, String)>,
}

/// Faults of template layers, as metrics and health show them.
#[derive(Debug, Default, Clone)]
pub struct TemplateStats {
    /// Faults by (template id, kind).
    pub faults: BTreeMap<(String, String), u64>,
    /// Quarantined layers: layer id → template id.
    pub quarantined: BTreeMap<String, String>,
    /// The newest fault, for health.
    pub last_fault: Option<String>,
}

/// A boxed future borrowing its receiver, as [`TemplateStore`] returns.
pub type StoreFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where the registry keeps its templates between runs (the server's state store), and the
/// one thing it needs to know of the stream.
pub trait TemplateStore: Send + Sync {
    /// The document stored under `key`, if any.
    fn load_doc<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Stores `value` under `key`.
    fn set_doc<'a>(&'a self, key: &'a str, value: Bytes) -> StoreFuture<'a, ()>;
    /// Removes the document under `key`.
    fn remove_doc<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
    /// The stream's frame rate, which templates are prepared for.
    fn target_fps(&self) -> u32;
}

/// The templates and their versions.
pub struct TemplateRegistry {
    /// Fault counts and quarantined layers.
    pub stats: Mutex<TemplateStats>,
    runtime: Arc<Runtime>,
    state: Arc<dyn TemplateStore>,
    entries: Mutex<BTreeMap<String, Entry>>,
    current: Mutex<Arc<HashMap<String, Arc<Build>>>>,
    /// Serializes changes, so persistence follows their order.
    edits: tokio::sync::Mutex<()>,
    /// Bumped whenever current versions or swap faults change (hot swaps wait on it).
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for TemplateRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateRegistry").finish_non_exhaustive()
    }
}

impl TemplateRegistry {
    /// A registry over `runtime`, persisting through `state`; empty until [`Self::load`].
    pub fn new(runtime: Arc<Runtime>, state: Arc<dyn TemplateStore>) -> Self {
        Self {
            runtime,
            state,
            stats: Mutex::default(),
            entries: Mutex::default(),
            current: Mutex::default(),
            edits: tokio::sync::Mutex::new(()),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current build of every template, by id (what scenes on air use).
    pub fn builds(&self) -> Arc<HashMap<String, Arc<Build>>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current build of `id`.
    pub fn build(&self, id: &str) -> Option<Arc<Build>> {
        self.builds().get(id).cloned()
    }

    fn republish(&self, entries: &BTreeMap<String, Entry>) {
        let map = entries
            .iter()
            .map(|(id, e)| (id.clone(), e.current().build.clone()))
            .collect();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Every template.
    pub fn list(&self) -> Vec<TemplateView> {
        self.lock().iter().map(|(id, e)| e.view(id)).collect()
    }

    /// One template.
    pub fn get(&self, id: &str) -> Option<TemplateView> {
        self.lock().get(id).map(|e| e.view(id))
    }

    /// A copy of the fault statistics.
    pub fn stats(&self) -> TemplateStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The fault statistics, first forgetting quarantined layers that are no longer on air
    /// (`on_air(layer, template)` is false) or whose template was deleted: health and
    /// metrics speak of what runs now.
    pub fn current_stats(&self, on_air: impl Fn(&str, &str) -> bool) -> TemplateStats {
        let known: Vec<String> = self.lock().keys().cloned().collect();
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.quarantined.retain(|layer, template| {
            on_air(layer, template) && known.binary_search(template).is_ok()
        });
        stats.clone()
    }

    /// Records what a template layer reported.
    pub fn record(&self, event: &crate::faults::TemplateEvent) {
        use crate::faults::TemplateEventKind as K;
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        match &event.kind {
            K::Fault(f) | K::Quarantined(f) => {
                *stats
                    .faults
                    .entry((event.template.clone(), f.kind.as_str().to_string()))
                    .or_default() += 1;
                stats.last_fault = Some(format!("{} (layer {}): {f}", event.template, event.layer));
                if matches!(event.kind, K::Quarantined(_)) {
                    stats
                        .quarantined
                        .insert(event.layer.clone(), event.template.clone());
                }
            }
            K::Swapped | K::Resumed => {
                stats.quarantined.remove(&event.layer);
            }
            K::RollbackWanted(f) => {
                drop(stats);
                self.swap_faulted(event, f);
            }
        }
    }

    /// Records the first fault of the current version's swap (for [`Self::swap_outcome`]).
    fn swap_faulted(&self, event: &crate::faults::TemplateEvent, fault: &Fault) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&event.template) else {
            return;
        };
        // A fault of a version no longer current is moot; a later one adds nothing.
        if entry.current().build.hash != event.hash
            || entry
                .swap_fault
                .as_ref()
                .is_some_and(|f| f.hash == event.hash)
        {
            return;
        }
        entry.swap_fault = Some(SwapFault {
            hash: event.hash.clone(),
            layer: event.layer.clone(),
            fault: fault.clone(),
        });
        drop(entries);
        self.changes.send_modify(|n| *n += 1);
    }

    /// What became of the swap of `id` to the version whose build is `hash`, once it is on
    /// air: waits `settle` for a layer to report a fault on probation, then (if one did)
    /// for the automatic rollback, and answers [`RegistryError::SwapFailed`]. `Ok` when no
    /// layer faulted within `settle`.
    pub async fn swap_outcome(
        &self,
        id: &str,
        hash: &str,
        settle: Duration,
    ) -> Result<(), RegistryError> {
        let mut changes = self.changes.subscribe();
        let settled = tokio::time::Instant::now() + settle;
        let mut deadline = settled;
        loop {
            let failure = {
                let entries = self.lock();
                let entry = entries
                    .get(id)
                    .ok_or_else(|| RegistryError::NotFound(id.into()))?;
                entry
                    .swap_fault
                    .as_ref()
                    .filter(|f| f.hash == hash)
                    .map(|f| SwapFailure {
                        version: entry
                            .versions
                            .iter()
                            .find(|v| v.build.hash == hash)
                            .map_or(0, |v| v.number),
                        layer: f.layer.clone(),
                        fault: f.fault.clone(),
                        now: (entry.current().build.hash != hash).then(|| entry.current().number),
                    })
            };
            let now = tokio::time::Instant::now();
            match failure {
                Some(f) if f.now.is_some() || now >= deadline => return Err(f.into()),
                // Faulted: the rollback is under way; wait for it a while longer.
                Some(_) if deadline == settled => deadline = settled.max(now + ROLLBACK_WAIT),
                None if now >= deadline => return Ok(()),
                Some(_) | None => {}
            }
            // A timeout comes back round to the checks above.
            let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
        }
    }

    async fn prepare(&self, bytes: Bytes) -> Result<Arc<Build>, RegistryError> {
        let runtime = self.runtime.clone();
        let fps = self.state.target_fps();
        tokio::task::spawn_blocking(move || runtime.prepare(bytes, fps))
            .await
            .map_err(|e| PluginError::Runtime(format!("preparing failed: {e}")))?
            .map_err(RegistryError::from)
    }

    /// The template holding a version whose component has SHA-256 `hash` (one whose current
    /// version it is first).
    fn holding(entries: &BTreeMap<String, Entry>, hash: &str) -> Option<TemplateView> {
        let current = entries.iter().find(|(_, e)| e.current().build.hash == hash);
        current
            .or_else(|| {
                entries
                    .iter()
                    .find(|(_, e)| e.versions.iter().any(|v| v.build.hash == hash))
            })
            .map(|(id, e)| e.view(id))
    }

    /// Adds a new template from a component; its id is its name (or the name with a number
    /// when taken). A component identical to a version of any template (current or kept)
    /// adds nothing: the answer is that template.
    pub async fn upload(&self, bytes: Bytes) -> Result<Uploaded, RegistryError> {
        let hash = crate::runtime::hex(&Sha256::digest(&bytes));
        if let Some(view) = Self::holding(&self.lock(), &hash) {
            return Ok(Uploaded::Existing(view));
        }
        let build = self.prepare(bytes).await?;
        let _serial = self.edits.lock().await;
        let view = {
            let mut entries = self.lock();
            // The same bytes may have come in meanwhile.
            if let Some(view) = Self::holding(&entries, &hash) {
                return Ok(Uploaded::Existing(view));
            }
            if entries.len() >= MAX_TEMPLATES {
                return Err(RegistryError::Full(MAX_TEMPLATES));
            }
            let base = if sm_scene::valid_id(&build.info.name) {
                build.info.name.clone()
            } else {
                "template".to_string()
            };
            let id = (1..)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    }
                })
                .find(|id| !entries.contains_key(id))
                .expect("a free id");
            entries.insert(
                id.clone(),
                Entry {
                    versions: vec![Version { number: 1, build }],
                    current: 0,
                    swap_fault: None,
                },
            );
            self.republish(&entries);
            entries[&id].view(&id)
        };
        self.persist().await;
        Ok(Uploaded::Created(view))
    }

    /// Adds a template under a chosen id, or a new version of it when it exists (templates
    /// loaded from a directory at start).
    pub async fn install(&self, id: &str, bytes: Bytes) -> Result<TemplateView, RegistryError> {
        if self.lock().contains_key(id) {
            self.replace(id, bytes).await.map(|(view, _)| view)
        } else {
            let build = self.prepare(bytes).await?;
            let _serial = self.edits.lock().await;
            let view = {
                let mut entries = self.lock();
                entries.insert(
                    id.to_string(),
                    Entry {
                        versions: vec![Version { number: 1, build }],
                        current: 0,
                        swap_fault: None,
                    },
                );
                self.republish(&entries);
                entries[id].view(id)
            };
            self.persist().await;
            Ok(view)
        }
    }

    /// Makes `bytes` the new current version of `id` (the previous one is kept for a
    /// rollback). A component identical to the current version changes nothing. Also
    /// returns the new version's hash, `None` when nothing changed.
    pub async fn replace(
        &self,
        id: &str,
        bytes: Bytes,
    ) -> Result<(TemplateView, Option<String>), RegistryError> {
        if !self.lock().contains_key(id) {
            return Err(RegistryError::NotFound(id.into()));
        }
        let build = self.prepare(bytes).await?;
        let _serial = self.edits.lock().await;
        let view = {
            let mut entries = self.lock();
            let entry = entries
                .get_mut(id)
                .ok_or_else(|| RegistryError::NotFound(id.into()))?;
            let new = (entry.current().build.hash != build.hash).then(|| build.hash.clone());
            if new.is_some() {
                let number = entry.versions.iter().map(|v| v.number).max().unwrap_or(0) + 1;
                // Versions after the current one (rolled back from) are dropped.
                entry.versions.truncate(entry.current + 1);
                entry.versions.push(Version { number, build });
                if entry.versions.len() > MAX_VERSIONS {
                    entry.versions.remove(0);
                }
                entry.current = entry.versions.len() - 1;
                entry.swap_fault = None;
            }
            let view = entry.view(id);
            self.republish(&entries);
            (view, new)
        };
        self.persist().await;
        Ok(view)
    }

    /// Makes the version before the current one current again.
    pub async fn rollback(&self, id: &str) -> Result<TemplateView, RegistryError> {
        self.step_back(id, None).await
    }

    /// Rolls `id` back from the version whose build is `hash`, if that is still current
    /// (the automatic rollback of a version that faults right after its swap; several
    /// layers may ask for it, and it is done once).
    pub async fn rollback_from(&self, id: &str, hash: &str) -> Option<TemplateView> {
        self.step_back(id, Some(hash)).await.ok()
    }

    /// Makes the version before the current one current again, if the current one is
    /// `from` (when given), checked under the edit lock.
    async fn step_back(&self, id: &str, from: Option<&str>) -> Result<TemplateView, RegistryError> {
        let _serial = self.edits.lock().await;
        let view = {
            let mut entries = self.lock();
            let entry = entries
                .get_mut(id)
                .ok_or_else(|| RegistryError::NotFound(id.into()))?;
            if entry.current == 0 || from.is_some_and(|h| entry.current().build.hash != h) {
                return Err(RegistryError::NoPrevious(id.into()));
            }
            entry.current -= 1;
            let view = entry.view(id);
            self.republish(&entries);
            view
        };
        self.persist().await;
        Ok(view)
    }

    /// Forgets `id` (the caller checks that no scene uses it).
    pub async fn remove(&self, id: &str) -> Result<(), RegistryError> {
        let _serial = self.edits.lock().await;
        {
            let mut entries = self.lock();
            entries
                .remove(id)
                .ok_or_else(|| RegistryError::NotFound(id.into()))?;
            self.republish(&entries);
        }
        self.persist().await;
        Ok(())
    }

    async fn persist(&self) {
        let (index, blobs, keep) = {
            let entries = self.lock();
            let mut blobs = Vec::new();
            let mut keep = std::collections::HashSet::new();
            let index = Index {
                templates: entries
                    .iter()
                    .map(|(id, e)| IndexEntry {
                        id: id.clone(),
                        current: e.current().number,
                        versions: e
                            .versions
                            .iter()
                            .map(|v| {
                                keep.insert(v.build.hash.clone());
                                blobs.push((v.build.hash.clone(), v.build.bytes.clone()));
                                (v.number, v.build.hash.clone())
                            })
                            .collect(),
                    })
                    .collect(),
            };
            (index, blobs, keep)
        };
        // Bytes first, then the index that names them.
        let stored = self.stored_hashes().await;
        for (hash, bytes) in blobs {
            if !stored.contains(&hash) {
                self.state.set_doc(&bytes_key(&hash), bytes).await;
            }
        }
        let json = serde_json::to_vec(&index).expect("index serializes");
        self.state.set_doc(KEY_TEMPLATES, json.into()).await;
        for hash in stored.difference(&keep) {
            self.state.remove_doc(&bytes_key(hash)).await;
        }
    }

    async fn stored_hashes(&self) -> std::collections::HashSet<String> {
        let Some(bytes) = self.state.load_doc(KEY_TEMPLATES).await else {
            return Default::default();
        };
        serde_json::from_slice::<Index>(&bytes)
            .map(|i| {
                i.templates
                    .into_iter()
                    .flat_map(|t| t.versions.into_iter().map(|(_, h)| h))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Compiles every stored template version that `runtime` has not compiled yet, reading
    /// the store through `read` (key → document): a hot standby keeps up with the primary's
    /// templates this way, so that taking the channel over does not compile them. Returns
    /// how many it compiled; a version that does not compile is left to [`Self::load`].
    pub async fn precompile_stored<F>(runtime: &Arc<Runtime>, read: impl Fn(String) -> F) -> usize
    where
        F: Future<Output = Option<Vec<u8>>>,
    {
        let Some(index) = read(KEY_TEMPLATES.into()).await else {
            return 0;
        };
        let Ok(index) = serde_json::from_slice::<Index>(&index) else {
            return 0;
        };
        let hashes = index
            .templates
            .into_iter()
            .flat_map(|t| t.versions.into_iter().map(|(_, h)| h));
        runtime
            .precompile_all(hashes, |hash| read(bytes_key(&hash)))
            .await
    }

    /// Restores the persisted templates (preparing each version again, from the compiled
    /// cache when it has them). A version that no longer prepares is skipped with a warning.
    pub async fn load(&self) {
        let Some(bytes) = self.state.load_doc(KEY_TEMPLATES).await else {
            return;
        };
        let index: Index = match serde_json::from_slice(&bytes) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("ignoring the stored templates: {e}");
                return;
            }
        };
        for t in index.templates {
            let mut versions = Vec::new();
            for (number, hash) in t.versions {
                let Some(bytes) = self.state.load_doc(&bytes_key(&hash)).await else {
                    tracing::warn!(template = %t.id, version = number, "component bytes missing");
                    continue;
                };
                match self.prepare(Bytes::from(bytes)).await {
                    Ok(build) => versions.push(Version { number, build }),
                    Err(e) => {
                        tracing::warn!(template = %t.id, version = number, "not restored: {e}");
                    }
                }
            }
            if versions.is_empty() {
                continue;
            }
            let current = versions
                .iter()
                .position(|v| v.number == t.current)
                .unwrap_or(versions.len() - 1);
            tracing::info!(template = %t.id, versions = versions.len(), "template restored");
            let mut entries = self.lock();
            entries.insert(
                t.id,
                Entry {
                    versions,
                    current,
                    swap_fault: None,
                },
            );
            self.republish(&entries);
        }
    }
}
