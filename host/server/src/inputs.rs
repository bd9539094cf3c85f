//! The Input Manager: the live inputs an operator configured, persisted in the store under
//! `inputs` and started again at boot (an input that was playing reconnects by itself),
//! each with the worker that runs its source and the feed its video layers draw from.
//!
//! The feed of an input outlives its worker: changing an input's URL restarts the worker,
//! and the layers showing it hold the last picture meanwhile, as they would for a network
//! drop. Every state change of an input is a WS `inputUpdate`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use sm_compose::video::VideoFeed;
use sm_media::audio::feed::AudioFeed;
use sm_media::audio::mixer::{AudioMix, Fader};
use sm_media::input::file::FileSource;
use sm_media::input::model::{InputError, MAX_INPUTS, new_stream_key, valid_id};
use sm_media::input::rtmp::{IngestRegistry, RtmpSource};
use sm_media::input::rtsp::{RtspSessions, RtspSource};
use sm_media::input::{
    Input, InputConfig, InputKind, InputSettings, InputState, InputStats, InputWorker, Source,
    UpdateFn,
};

use crate::media::{MediaError, MediaInfo, MediaLibrary};
use crate::state::model::PatchError;
use crate::state::{Event, StateManager};

/// Store key of the input list.
pub const KEY_INPUTS: &str = "inputs";

/// How long stopping an input may wait for its worker.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Why an input request failed.
#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] InputError),
    /// No such input.
    #[error("unknown input {0:?}")]
    NotFound(String),
    /// The id is taken, the list is full, or the input is in use.
    #[error("{0}")]
    Conflict(String),
    /// The body is not an input.
    #[error(transparent)]
    Malformed(#[from] PatchError),
    /// The server runs no inputs.
    #[error("this server runs no live inputs")]
    Unavailable,
}

struct Entry {
    config: InputConfig,
    feed: Arc<VideoFeed>,
    audio: Arc<AudioFeed>,
    worker: Option<InputWorker>,
}

/// An input's fader in the mix.
fn fader(config: &InputConfig) -> Fader {
    let a = config.audio.unwrap_or_default();
    Fader {
        gain_db: f64::from(a.gain_db),
        muted: a.muted,
    }
}

/// Owner of the inputs.
pub struct InputManager {
    state: Arc<StateManager>,
    settings: InputSettings,
    library: Arc<MediaLibrary>,
    ingest: Arc<IngestRegistry>,
    /// Where RTSP sessions run (the server's runtime).
    runtime: Option<tokio::runtime::Handle>,
    rtsp: RtspSessions,
    mix: Arc<AudioMix>,
    entries: Mutex<Vec<Entry>>,
    edits: tokio::sync::Mutex<()>,
}

impl InputManager {
    /// An empty manager (inputs are read by [`InputManager::load`]).
    pub fn new(
        state: Arc<StateManager>,
        settings: InputSettings,
        library: Arc<MediaLibrary>,
        mix: Arc<AudioMix>,
    ) -> Self {
        Self {
            mix,
            state,
            settings,
            library,
            ingest: Arc::new(IngestRegistry::default()),
            runtime: tokio::runtime::Handle::try_current().ok(),
            rtsp: RtspSessions::default(),
            entries: Mutex::new(Vec::new()),
            edits: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream keys publishers may push to, for the embedded RTMP server.
    pub fn ingest(&self) -> &Arc<IngestRegistry> {
        &self.ingest
    }

    /// The media library that `file` inputs play from.
    pub fn library(&self) -> &Arc<MediaLibrary> {
        &self.library
    }

    /// Reads the stored inputs and starts the enabled ones.
    pub async fn load(&self) {
        self.library.load().await;
        let Some(bytes) = self.state.load_doc(KEY_INPUTS).await else {
            return;
        };
        let configs: Vec<InputConfig> = match serde_json::from_slice(&bytes) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the stored inputs: unreadable");
                return;
            }
        };
        let mut entries = self.lock();
        for config in configs {
            if let Err(e) = config.validate() {
                tracing::warn!(input = %config.id, error = %e, "ignoring a stored input");
                continue;
            }
            if entries.iter().any(|e| e.config.id == config.id) {
                continue;
            }
            let (feed, audio) = self.feeds_for(&config);
            let worker = self.start(&config, &feed, &audio);
            entries.push(Entry {
                config,
                feed,
                audio,
                worker,
            });
        }
    }

    /// A new input's picture and sound feeds, its sound in the mix.
    fn feeds_for(&self, config: &InputConfig) -> (Arc<VideoFeed>, Arc<AudioFeed>) {
        let audio = Arc::new(AudioFeed::new());
        self.mix.set_source(&config.id, &audio, fader(config));
        (Arc::new(VideoFeed::new(config.label())), audio)
    }

    /// Starts the worker of an enabled input.
    fn start(
        &self,
        config: &InputConfig,
        feed: &Arc<VideoFeed>,
        audio: &Arc<AudioFeed>,
    ) -> Option<InputWorker> {
        if let Some(key) = &config.stream_key {
            // A new worker takes the key over; a disabled input lets nobody publish.
            self.ingest.unregister(key);
        }
        if !config.is_enabled() {
            feed.set_state(InputState::Idle.as_str());
            return None;
        }
        let (source, live): (Box<dyn Source>, bool) = match config.kind {
            InputKind::File => {
                let url = config.url.as_deref().unwrap_or_default();
                let path = self
                    .library
                    .resolve(url)
                    .unwrap_or_else(|_| self.library.dir().join(url));
                (Box::new(FileSource::new(path, config.loops())), false)
            }
            InputKind::Rtmp => {
                let key = config.stream_key.as_deref().unwrap_or_default();
                (Box::new(RtmpSource::new(self.ingest.register(key))), true)
            }
            InputKind::Rtsp => {
                let url = config.url.as_deref().unwrap_or_default();
                let transport = config.transport.unwrap_or_default();
                let source =
                    RtspSource::new(url, transport, self.runtime.clone()?, self.rtsp.clone());
                match source {
                    Ok(s) => (Box::new(s), true),
                    Err(e) => {
                        tracing::warn!(input = %config.id, error = %e.message, "input not started");
                        return None;
                    }
                }
            }
        };
        let state = self.state.clone();
        let on_update: UpdateFn = Arc::new(move |u| state.publish(Event::InputUpdate(u)));
        Some(InputWorker::spawn(
            &config.id,
            (feed.clone(), audio.clone()),
            source,
            live,
            self.settings.clone(),
            on_update,
        ))
    }

    fn view(entry: &Entry) -> Input {
        let (state, stats) = entry
            .worker
            .as_ref()
            .map_or((InputState::Idle, InputStats::default()), |w| w.status());
        Input {
            config: entry.config.masked(),
            state,
            stats,
        }
    }

    /// Every input (secrets masked).
    pub fn list(&self) -> Vec<Input> {
        self.lock().iter().map(Self::view).collect()
    }

    /// One input (secrets masked).
    pub fn get(&self, id: &str) -> Option<Input> {
        self.lock()
            .iter()
            .find(|e| e.config.id == id)
            .map(Self::view)
    }

    /// The feed of input `id`: its pictures, at the sizes they are drawn at.
    pub fn feed(&self, id: &str) -> Result<Arc<VideoFeed>, InputsError> {
        self.lock()
            .iter()
            .find(|e| e.config.id == id)
            .map(|e| e.feed.clone())
            .ok_or_else(|| InputsError::NotFound(id.to_string()))
    }

    /// Whether input `id` exists.
    pub fn exists(&self, id: &str) -> bool {
        self.lock().iter().any(|e| e.config.id == id)
    }

    /// The feeds of every input, by id, for what goes on air.
    pub fn feeds(&self) -> HashMap<String, Arc<VideoFeed>> {
        self.lock()
            .iter()
            .map(|e| (e.config.id.clone(), e.feed.clone()))
            .collect()
    }

    /// Inputs by state, for health and metrics: `(id, state, stats)`.
    pub fn statuses(&self) -> Vec<(String, InputState, InputStats)> {
        self.lock()
            .iter()
            .map(|e| {
                let v = Self::view(e);
                (e.config.id.clone(), v.state, v.stats)
            })
            .collect()
    }

    async fn persist(&self) {
        let configs: Vec<InputConfig> = self.lock().iter().map(|e| e.config.clone()).collect();
        let json = serde_json::to_vec(&configs).expect("inputs serialize");
        self.state.set_doc(KEY_INPUTS, json).await;
    }

    /// Checks what needs a lookup: a file input's media exists.
    fn check_media(&self, config: &InputConfig) -> Result<(), InputsError> {
        if config.kind == InputKind::File {
            let url = config.url.as_deref().unwrap_or_default();
            self.library.resolve(url).map_err(|reason| InputError {
                field: "url",
                reason,
            })?;
        }
        Ok(())
    }

    /// Creates an input from a JSON body and starts it. The answer carries an RTMP input's
    /// stream key unmasked: the only time it is shown.
    pub async fn create(&self, body: Value) -> Result<Input, InputsError> {
        let _serial = self.edits.lock().await;
        let mut config: InputConfig = crate::state::model::from_json(body)?;
        {
            let entries = self.lock();
            if entries.len() >= MAX_INPUTS {
                return Err(InputsError::Conflict(format!(
                    "at most {MAX_INPUTS} inputs; delete one first"
                )));
            }
            if config.id.is_empty() {
                let mut n = entries.len() + 1;
                while entries.iter().any(|e| e.config.id == format!("input-{n}")) {
                    n += 1;
                }
                config.id = format!("input-{n}");
            } else if valid_id(&config.id) && entries.iter().any(|e| e.config.id == config.id) {
                return Err(InputsError::Conflict(format!(
                    "input {:?} exists already",
                    config.id
                )));
            }
        }
        if config.kind == InputKind::Rtmp && config.stream_key.is_none() {
            config.stream_key = Some(new_stream_key());
        }
        config.validate()?;
        self.check_media(&config)?;
        let (feed, audio) = self.feeds_for(&config);
        let worker = self.start(&config, &feed, &audio);
        let mut shown = Input {
            config: config.masked(),
            state: InputState::Idle,
            stats: InputStats::default(),
        };
        shown.config.stream_key.clone_from(&config.stream_key);
        self.lock().push(Entry {
            config,
            feed,
            audio,
            worker,
        });
        self.persist().await;
        Ok(shown)
    }

    /// Applies a JSON merge patch to an input; its worker restarts when the source changed
    /// (the layers showing it hold their last picture meanwhile). `id` and `kind` cannot
    /// change; a masked value sent back unchanged keeps the stored secret.
    pub async fn patch(&self, id: &str, patch: &Value) -> Result<Input, InputsError> {
        let _serial = self.edits.lock().await;
        let old = self
            .lock()
            .iter()
            .find(|e| e.config.id == id)
            .map(|e| e.config.clone())
            .ok_or_else(|| InputsError::NotFound(id.into()))?;
        let Some(fields) = patch.as_object() else {
            return Err(PatchError {
                code: "invalid_type",
                message: "the patch must be a JSON object".into(),
            }
            .into());
        };
        for (field, name) in [("id", "id"), ("kind", "kind")] {
            if fields.get(field).is_some_and(|v| {
                v.as_str() != Some(if name == "id" { id } else { old.kind.as_str() })
            }) {
                return Err(InputError {
                    field: name,
                    reason: "cannot be changed; create another input".into(),
                }
                .into());
            }
        }
        let mut doc = serde_json::to_value(&old).expect("input serializes");
        let mut patch = patch.clone();
        // Masked secrets sent back as they were shown keep their stored values.
        let masked = old.masked();
        if let Some(p) = patch.as_object_mut() {
            if p.get("url").and_then(Value::as_str) == masked.url.as_deref()
                && masked.url != old.url
            {
                p.remove("url");
            }
            if p.get("streamKey").and_then(Value::as_str) == Some("****") {
                p.remove("streamKey");
            }
        }
        json_patch::merge(&mut doc, &patch);
        let config: InputConfig = crate::state::model::from_json(doc)?;
        config.validate()?;
        self.check_media(&config)?;
        let restart = InputConfig {
            name: None,
            audio: None,
            ..config.clone()
        } != InputConfig {
            name: None,
            audio: None,
            ..old.clone()
        };
        let stopping = {
            let mut entries = self.lock();
            let Some(entry) = entries.iter_mut().find(|e| e.config.id == id) else {
                return Err(InputsError::NotFound(id.into()));
            };
            entry.feed.set_label(config.label());
            entry.config = config.clone();
            self.mix.set_source(id, &entry.audio, fader(&config));
            if restart {
                let old_worker = entry.worker.take();
                entry.worker = self.start(&config, &entry.feed, &entry.audio);
                old_worker
            } else {
                None
            }
        };
        if let Some(w) = stopping {
            tokio::task::spawn_blocking(move || w.stop(STOP_WAIT));
        }
        self.persist().await;
        self.get(id).ok_or_else(|| InputsError::NotFound(id.into()))
    }

    /// Deletes an input (the caller checked that no scene shows it) and stops its worker.
    pub async fn delete(&self, id: &str) -> Result<Input, InputsError> {
        let _serial = self.edits.lock().await;
        let entry = {
            let mut entries = self.lock();
            let i = entries
                .iter()
                .position(|e| e.config.id == id)
                .ok_or_else(|| InputsError::NotFound(id.into()))?;
            entries.remove(i)
        };
        self.mix.remove_source(id);
        let shown = Self::view(&entry);
        if let Some(key) = &entry.config.stream_key {
            self.ingest.unregister(key);
        }
        if let Some(w) = entry.worker {
            let _ = tokio::task::spawn_blocking(move || w.stop(STOP_WAIT)).await;
        }
        self.persist().await;
        Ok(shown)
    }

    /// Deletes a media file unless an input plays it.
    pub async fn delete_media(&self, id: &str) -> Result<MediaInfo, MediaError> {
        let _serial = self.edits.lock().await;
        if let Some(e) = self
            .lock()
            .iter()
            .find(|e| e.config.kind == InputKind::File && e.config.url.as_deref() == Some(id))
        {
            return Err(MediaError::InUse {
                id: id.into(),
                input: e.config.id.clone(),
            });
        }
        self.library.remove(id).await
    }

    /// Stops every worker (shutdown), each with a bounded wait, and waits (bounded) for the
    /// cameras' RTSP sessions to be torn down.
    pub async fn shutdown(&self) {
        let workers: Vec<InputWorker> = self
            .lock()
            .iter_mut()
            .filter_map(|e| e.worker.take())
            .collect();
        for w in &workers {
            w.signal_stop();
        }
        let _ = tokio::task::spawn_blocking(move || {
            for w in workers {
                w.stop(STOP_WAIT);
            }
        })
        .await;
        self.rtsp.await_teardown(STOP_WAIT).await;
    }
}
