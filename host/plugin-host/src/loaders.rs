//! The uploaded asset loaders, by id (the name their `describe` gives), and the media types
//! they claim: at most one loader per media type. Loaders are prepared off the render thread
//! ([`Runtime::prepare_loader`]) and persist through the same [`TemplateStore`] as templates
//! (`loaders` index, `loader:{hash}` bytes).
//!
//! Replacing or deleting a loader never changes a decoded asset: assets keep the pixels
//! their loader made, and name the exact version (its hash). That version's bytes are kept
//! ("retired") while an asset names it, so the asset decodes the same after a restart;
//! [`LoaderRegistry::prune`] forgets retired versions no asset names any more.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::loader::{LoaderBuild, LoaderLimits};
use crate::registry::TemplateStore;
use crate::{PluginError, Runtime};

/// Store key of the loader index.
pub const KEY_LOADERS: &str = "loaders";
/// Most loaders held.
pub const MAX_LOADERS: usize = 64;

/// Store key of a loader's bytes.
fn bytes_key(hash: &str) -> String {
    format!("loader:{hash}")
}

/// Why a loader operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The component was refused.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// No such loader.
    #[error("unknown loader {0:?}")]
    NotFound(String),
    /// A loader of that name exists (a new version goes through `PUT`).
    #[error("a loader named {0:?} exists: replace it with PUT /api/loaders/{0}")]
    Exists(String),
    /// Another loader claims one of its media types.
    #[error("loader {by:?} already decodes {media_type}: replace or delete it first")]
    Claimed {
        /// The media type.
        media_type: String,
        /// The loader that has it.
        by: String,
    },
    /// The registry is full.
    #[error("at most {0} loaders")]
    Full(usize),
}

/// A loader as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoaderView {
    /// Its id: the name it gives itself.
    pub id: String,
    /// Its own version string.
    pub version: String,
    /// Revision on this server: 1 for the first upload, one more per replacement.
    pub revision: u32,
    /// The media types it decodes (lower case).
    pub media_types: Vec<String>,
    /// SHA-256 of the component.
    pub hash: String,
    /// Component size in bytes.
    pub bytes: usize,
}

/// What an upload did.
#[derive(Debug)]
pub enum LoaderUploaded {
    /// A new loader.
    Created(LoaderView),
    /// The same bytes are this loader already: nothing changed.
    Existing(LoaderView),
}

#[derive(Serialize, Deserialize)]
struct StoredLoader {
    id: String,
    hash: String,
    revision: u32,
    bytes: usize,
}

#[derive(Serialize, Deserialize, Default)]
struct Index {
    loaders: Vec<StoredLoader>,
    /// Hashes of replaced or deleted versions some asset may still name.
    #[serde(default)]
    retired: BTreeSet<String>,
}

struct Entry {
    build: Arc<LoaderBuild>,
    hash: String,
    revision: u32,
    bytes: usize,
}

impl Entry {
    fn view(&self, id: &str) -> LoaderView {
        LoaderView {
            id: id.to_string(),
            version: self.build.version.clone(),
            revision: self.revision,
            media_types: self.build.media_types.clone(),
            hash: self.hash.clone(),
            bytes: self.bytes,
        }
    }
}

/// The loader that decodes a media type: its id, the version's hash and the build.
#[derive(Debug, Clone)]
pub struct LoaderChoice {
    /// Loader id.
    pub id: String,
    /// Hash of the version.
    pub hash: String,
    /// The prepared loader.
    pub build: Arc<LoaderBuild>,
}

/// Replaced and deleted versions some asset may still name: their hashes, and those
/// prepared again so far.
type Retired = (BTreeSet<String>, HashMap<String, Arc<LoaderBuild>>);

/// The asset loaders.
pub struct LoaderRegistry {
    runtime: Arc<Runtime>,
    state: Arc<dyn TemplateStore>,
    limits: LoaderLimits,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Retired versions, prepared when an asset needs one (at boot).
    retired: Mutex<Retired>,
    /// Serializes changes, so persistence follows their order.
    edits: tokio::sync::Mutex<()>,
    /// One decode at a time: each may take a loader's whole memory.
    decoding: Mutex<()>,
}

impl std::fmt::Debug for LoaderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoaderRegistry").finish_non_exhaustive()
    }
}

impl LoaderRegistry {
    /// A registry over `runtime`, persisting through `state`, decoding within `limits`;
    /// empty until [`Self::load`].
    pub fn new(runtime: Arc<Runtime>, state: Arc<dyn TemplateStore>, limits: LoaderLimits) -> Self {
        Self {
            runtime,
            state,
            limits,
            entries: Mutex::default(),
            retired: Mutex::default(),
            edits: tokio::sync::Mutex::new(()),
            decoding: Mutex::new(()),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The bounds of one decode.
    pub fn limits(&self) -> &LoaderLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().expect("loader registry lock")
    }

    /// Every loader, by id.
    pub fn list(&self) -> Vec<LoaderView> {
        self.lock().iter().map(|(id, e)| e.view(id)).collect()
    }

    /// One loader.
    pub fn get(&self, id: &str) -> Option<LoaderView> {
        self.lock().get(id).map(|e| e.view(id))
    }

    /// The loader for `media_type` (lower case, no parameters), if one claims it.
    pub fn for_type(&self, media_type: &str) -> Option<LoaderChoice> {
        self.lock().iter().find_map(|(id, e)| {
            e.build
                .media_types
                .iter()
                .any(|t| t == media_type)
                .then(|| LoaderChoice {
                    id: id.clone(),
                    hash: e.hash.clone(),
                    build: e.build.clone(),
                })
        })
    }

    /// Every media type a loader claims.
    pub fn media_types(&self) -> Vec<String> {
        self.lock()
            .values()
            .flat_map(|e| e.build.media_types.iter().cloned())
            .collect()
    }

    /// Compiles every stored loader version (current and retired) that `runtime` has not
    /// compiled yet, reading the store through `read` (key → document), as
    /// [`TemplateRegistry::precompile_stored`](crate::registry::TemplateRegistry::precompile_stored)
    /// does for templates: a hot standby that takes the channel over decodes its assets
    /// again without compiling their loaders first. Returns how many it compiled.
    pub async fn precompile_stored<F>(runtime: &Arc<Runtime>, read: impl Fn(String) -> F) -> usize
    where
        F: Future<Output = Option<Vec<u8>>>,
    {
        let Some(index) = read(KEY_LOADERS.into()).await else {
            return 0;
        };
        let Ok(index) = serde_json::from_slice::<Index>(&index) else {
            return 0;
        };
        let hashes = index
            .loaders
            .into_iter()
            .map(|l| l.hash)
            .chain(index.retired);
        runtime
            .precompile_all(hashes, |hash| read(bytes_key(&hash)))
            .await
    }

    /// The version of hash `hash`, current or retired (prepared from the store when needed).
    pub async fn by_hash(&self, hash: &str) -> Option<Arc<LoaderBuild>> {
        if let Some(e) = self.lock().values().find(|e| e.hash == hash) {
            return Some(e.build.clone());
        }
        {
            let retired = self.retired.lock().expect("retired lock");
            if let Some(b) = retired.1.get(hash) {
                return Some(b.clone());
            }
            if !retired.0.contains(hash) {
                return None;
            }
        }
        let bytes = self.state.load_doc(&bytes_key(hash)).await?;
        let build = self.prepare(Bytes::from(bytes)).await.ok()?;
        self.retired
            .lock()
            .expect("retired lock")
            .1
            .insert(hash.to_string(), build.clone());
        Some(build)
    }

    /// Runs `f` holding the decode slot: one decode at a time. Blocking.
    pub fn one_at_a_time<T>(&self, f: impl FnOnce() -> T) -> T {
        let _slot = self.decoding.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    async fn prepare(&self, bytes: Bytes) -> Result<Arc<LoaderBuild>, PluginError> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.prepare_loader(bytes))
            .await
            .map_err(|e| PluginError::Runtime(format!("preparing failed: {e}")))?
    }

    /// A media type of `build` that another loader than `except` claims.
    fn claimed(
        entries: &BTreeMap<String, Entry>,
        build: &LoaderBuild,
        except: &str,
    ) -> Option<LoaderError> {
        entries
            .iter()
            .filter(|(id, _)| *id != except)
            .find_map(|(id, e)| {
                build
                    .media_types
                    .iter()
                    .find(|t| e.build.media_types.contains(t))
                    .map(|t| LoaderError::Claimed {
                        media_type: t.clone(),
                        by: id.clone(),
                    })
            })
    }

    /// Adds a new loader; its id is its name. The same bytes as a current loader add
    /// nothing; a name that is taken or a media type another loader claims is refused.
    pub async fn upload(&self, bytes: Bytes) -> Result<LoaderUploaded, LoaderError> {
        let hash = crate::runtime::hex(&Sha256::digest(&bytes));
        let size = bytes.len();
        if let Some(view) = self.holding(&hash) {
            return Ok(LoaderUploaded::Existing(view));
        }
        let build = self.prepare(bytes.clone()).await?;
        let _serial = self.edits.lock().await;
        let view = {
            let mut entries = self.lock();
            if let Some((id, e)) = entries.iter().find(|(_, e)| e.hash == hash) {
                return Ok(LoaderUploaded::Existing(e.view(id)));
            }
            let id = build.name.clone();
            if entries.contains_key(&id) {
                return Err(LoaderError::Exists(id));
            }
            if entries.len() >= MAX_LOADERS {
                return Err(LoaderError::Full(MAX_LOADERS));
            }
            if let Some(e) = Self::claimed(&entries, &build, &id) {
                return Err(e);
            }
            let entry = Entry {
                build,
                hash: hash.clone(),
                revision: 1,
                bytes: size,
            };
            let view = entry.view(&id);
            entries.insert(id, entry);
            view
        };
        self.state.set_doc(&bytes_key(&hash), bytes).await;
        self.persist().await;
        Ok(LoaderUploaded::Created(view))
    }

    /// Adds a loader, or a new version of the loader of the same name (loaders installed
    /// from a folder at start).
    pub async fn install(&self, bytes: Bytes) -> Result<LoaderView, LoaderError> {
        match self.upload(bytes.clone()).await {
            Ok(LoaderUploaded::Created(v) | LoaderUploaded::Existing(v)) => Ok(v),
            Err(LoaderError::Exists(id)) => self.replace(&id, bytes).await,
            Err(e) => Err(e),
        }
    }

    fn holding(&self, hash: &str) -> Option<LoaderView> {
        self.lock()
            .iter()
            .find(|(_, e)| e.hash == hash)
            .map(|(id, e)| e.view(id))
    }

    /// A new version of loader `id`: new uploads of its media types go to it; assets it
    /// decoded before keep their pixels. Its media types may not be another loader's.
    pub async fn replace(&self, id: &str, bytes: Bytes) -> Result<LoaderView, LoaderError> {
        if !self.lock().contains_key(id) {
            return Err(LoaderError::NotFound(id.to_string()));
        }
        let hash = crate::runtime::hex(&Sha256::digest(&bytes));
        let size = bytes.len();
        let build = self.prepare(bytes.clone()).await?;
        let _serial = self.edits.lock().await;
        let view = {
            let mut entries = self.lock();
            if let Some(e) = Self::claimed(&entries, &build, id) {
                return Err(e);
            }
            let entry = entries
                .get_mut(id)
                .ok_or_else(|| LoaderError::NotFound(id.to_string()))?;
            if entry.hash == hash {
                return Ok(entry.view(id));
            }
            let old = std::mem::replace(&mut entry.hash, hash.clone());
            entry.build = build;
            entry.revision += 1;
            entry.bytes = size;
            self.retire(old);
            entry.view(id)
        };
        self.state.set_doc(&bytes_key(&hash), bytes).await;
        self.persist().await;
        Ok(view)
    }

    /// Deletes loader `id`: uploads of its media types are refused from now on (or decoded
    /// natively, for types the host knows); assets it decoded stay as they are.
    pub async fn remove(&self, id: &str) -> Result<LoaderView, LoaderError> {
        let _serial = self.edits.lock().await;
        let entry = self
            .lock()
            .remove(id)
            .ok_or_else(|| LoaderError::NotFound(id.to_string()))?;
        let view = entry.view(id);
        self.retire(entry.hash);
        self.persist().await;
        Ok(view)
    }

    fn retire(&self, hash: String) {
        self.retired.lock().expect("retired lock").0.insert(hash);
    }

    /// Forgets retired versions whose hash no asset names (`named`), with their bytes.
    pub async fn prune(&self, named: &BTreeSet<String>) {
        let _serial = self.edits.lock().await;
        let gone: Vec<String> = {
            let mut retired = self.retired.lock().expect("retired lock");
            let current: BTreeSet<String> = self.lock().values().map(|e| e.hash.clone()).collect();
            let gone: Vec<String> = retired
                .0
                .iter()
                .filter(|h| !named.contains(*h))
                .cloned()
                .collect();
            for h in &gone {
                retired.0.remove(h);
                retired.1.remove(h);
            }
            gone.into_iter().filter(|h| !current.contains(h)).collect()
        };
        if gone.is_empty() {
            return;
        }
        for h in &gone {
            self.state.remove_doc(&bytes_key(h)).await;
        }
        self.persist().await;
    }

    async fn persist(&self) {
        let index = Index {
            loaders: self
                .lock()
                .iter()
                .map(|(id, e)| StoredLoader {
                    id: id.clone(),
                    hash: e.hash.clone(),
                    revision: e.revision,
                    bytes: e.bytes,
                })
                .collect(),
            retired: self.retired.lock().expect("retired lock").0.clone(),
        };
        let json = serde_json::to_vec(&index).expect("loader index serializes");
        self.state.set_doc(KEY_LOADERS, Bytes::from(json)).await;
    }

    /// Restores the persisted loaders (prepared again, from the compiled cache when it has
    /// them). One that no longer prepares is skipped with a warning.
    pub async fn load(&self) {
        let Some(bytes) = self.state.load_doc(KEY_LOADERS).await else {
            return;
        };
        let index: Index = match serde_json::from_slice(&bytes) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("ignoring the stored loaders: {e}");
                return;
            }
        };
        self.retired.lock().expect("retired lock").0 = index.retired;
        for l in index.loaders.into_iter().take(MAX_LOADERS) {
            let Some(bytes) = self.state.load_doc(&bytes_key(&l.hash)).await else {
                tracing::warn!(loader = %l.id, "loader bytes missing");
                continue;
            };
            match self.prepare(Bytes::from(bytes)).await {
                Ok(build) => {
                    tracing::info!(loader = %l.id, "loader restored");
                    self.lock().insert(
                        l.id,
                        Entry {
                            build,
                            hash: l.hash,
                            revision: l.revision,
                            bytes: l.bytes,
                        },
                    );
                }
                Err(e) => tracing::warn!(loader = %l.id, "loader not restored: {e}"),
            }
        }
    }
}
