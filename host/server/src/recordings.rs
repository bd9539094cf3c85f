//! The Recording Manager: recordings of the program, started and stopped through the API
//! (or with the stream), written by [`sm_media::recorder`] from the packets the outputs
//! get, listed from the store under `recordings`.
//!
//! Every change of a recording is persisted at once and sent as a WS `recordingUpdate`; a
//! recording that fails is also an `error` `recording_failed`. At boot, a recording still
//! marked `recording` (the server died under it) is closed: its files are read as far as
//! they play, and it becomes `done` with that duration.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sm_media::hub::MediaHub;
use sm_media::recorder::{self, Ending, Recorder, RecordingPlan};
use sm_media::recording::{Recording, RecordingState};

use crate::state::{Event, FaultEvent, StateManager};

/// Store key of the recording list.
pub const KEY_RECORDINGS: &str = "recordings";
/// Recordings written at once.
pub const MAX_ACTIVE: usize = 4;
/// Recordings kept in the list (done ones must be deleted to make room).
pub const MAX_KEPT: usize = 1000;
/// Longest segment, in minutes (a day).
pub const MAX_SEGMENT_MINUTES: u32 = 24 * 60;
/// How long a stop waits for the files to be finished before answering.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long a download link works.
pub const LINK_TTL: Duration = Duration::from_secs(600);
/// Download links alive at once (the oldest go first).
const MAX_LINKS: usize = 64;

/// Where recordings go, and how much they may take.
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    /// Folder of the files.
    pub dir: PathBuf,
    /// Bytes all recordings may take on disk; past it new ones are refused.
    pub max_bytes: Option<u64>,
}

/// Why a recording request failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// No such recording (or file).
    #[error("{0}")]
    NotFound(String),
    /// Not possible now: the stream is not live, too many recordings, one is still running.
    #[error("{0}")]
    Conflict(String),
    /// A field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The quota is used up.
    #[error("{0}")]
    Quota(String),
    /// The folder cannot be written.
    #[error("{0}")]
    Storage(String),
}

struct Active {
    recorder: Recorder,
    /// Set when its writer has finished (with the recording's final state).
    done: tokio::sync::watch::Receiver<bool>,
}

#[derive(Default)]
struct Inner {
    list: Vec<Recording>,
    active: Vec<(String, Active)>,
    next: u64,
    /// Download links: (ticket, the path they open, until when).
    links: Vec<(String, String, std::time::Instant)>,
}

/// Owner of the recordings.
pub struct RecordingManager {
    state: Arc<StateManager>,
    hub: Arc<MediaHub>,
    settings: RecordingSettings,
    inner: Mutex<Inner>,
    /// Serializes changes and their store writes.
    edits: tokio::sync::Mutex<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The number in `rec-N`.
fn number(id: &str) -> Option<u64> {
    id.strip_prefix("rec-")?.parse().ok()
}

impl RecordingManager {
    /// An empty manager (the stored list is read by [`RecordingManager::load`]).
    pub fn new(state: Arc<StateManager>, hub: Arc<MediaHub>, settings: RecordingSettings) -> Self {
        Self {
            state,
            hub,
            settings,
            inner: Mutex::new(Inner {
                next: 1,
                ..Inner::default()
            }),
            edits: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The folder of the files.
    pub fn dir(&self) -> &std::path::Path {
        &self.settings.dir
    }

    /// Reads the stored list; recordings left `recording` by a crash are closed at what
    /// their files hold.
    pub async fn load(&self) {
        let _edit = self.edits.lock().await;
        // Numbers go on after every recording in the folder, listed or not (a store that
        // was lost or emptied must not lead to a file being written over).
        let dir = self.settings.dir.clone();
        let on_disk = tokio::task::spawn_blocking(move || highest_on_disk(&dir))
            .await
            .unwrap_or(0);
        self.lock().next = on_disk + 1;
        let Some(bytes) = self.state.load_doc(KEY_RECORDINGS).await else {
            return;
        };
        let mut list: Vec<Recording> = match serde_json::from_slice(&bytes) {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the stored recordings: unreadable");
                return;
            }
        };
        let mut changed = false;
        for rec in &mut list {
            if rec.state != RecordingState::Recording {
                continue;
            }
            // Its files are `<id>-<k>.mp4`: found on disk (the list stored while it ran may
            // not name the last ones).
            let (dir, id) = (self.settings.dir.clone(), rec.id.clone());
            let probed = tokio::task::spawn_blocking(move || {
                files_of(&dir, &id)
                    .iter()
                    .map(|p| recorder::probe(p))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let mut files = Vec::new();
            for file in probed {
                match file {
                    Ok(f) => files.push(f),
                    Err(e) => {
                        tracing::warn!(recording = %rec.id, error = %e, "an unreadable recording file")
                    }
                }
            }
            rec.set_files(files);
            rec.state = RecordingState::Done;
            tracing::info!(recording = %rec.id, duration_ms = rec.duration_ms,
                "closed a recording the server stopped under (its files play up to their last fragment)");
            changed = true;
        }
        {
            let mut inner = self.lock();
            let listed = list.iter().filter_map(|r| number(&r.id)).max().unwrap_or(0);
            inner.next = inner.next.max(listed + 1);
            inner.list = list;
        }
        if changed {
            self.persist().await;
        }
    }

    /// Every recording, newest first, with what running ones have written so far.
    pub fn list(&self) -> Vec<Recording> {
        let inner = self.lock();
        let mut list: Vec<Recording> = inner
            .list
            .iter()
            .map(|r| Self::current(&inner, r))
            .collect();
        list.reverse();
        list
    }

    /// One recording.
    pub fn get(&self, id: &str) -> Result<Recording, RecordingError> {
        let inner = self.lock();
        inner
            .list
            .iter()
            .find(|r| r.id == id)
            .map(|r| Self::current(&inner, r))
            .ok_or_else(|| RecordingError::NotFound(format!("no recording {id:?}")))
    }

    fn current(inner: &Inner, rec: &Recording) -> Recording {
        let mut rec = rec.clone();
        if let Some((_, active)) = inner.active.iter().find(|(id, _)| *id == rec.id) {
            rec.set_files(active.recorder.progress().files());
        }
        rec
    }

    /// Bytes every recording takes now.
    fn used_bytes(&self) -> u64 {
        self.list().iter().map(|r| r.bytes).sum()
    }

    /// Starts recording the program. It must be live: a stream that has just been started
    /// is given up to `wait` for its encoder to publish its first packets.
    pub async fn start(
        self: &Arc<Self>,
        name: Option<String>,
        segment_minutes: Option<u32>,
        wait: Duration,
    ) -> Result<Recording, RecordingError> {
        if let Some(name) = &name
            && (name.trim().is_empty() || name.chars().count() > 256)
        {
            return Err(RecordingError::Invalid(
                "name: 1 to 256 characters, not only spaces".into(),
            ));
        }
        if segment_minutes.is_some_and(|m| !(1..=MAX_SEGMENT_MINUTES).contains(&m)) {
            return Err(RecordingError::Invalid(format!(
                "segmentMinutes: 1 to {MAX_SEGMENT_MINUTES}"
            )));
        }
        let deadline = tokio::time::Instant::now() + wait;
        while !self.hub.is_running() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _edit = self.edits.lock().await;
        if !self.hub.is_running() {
            return Err(RecordingError::Conflict(
                "the stream is not live: start it first (or start it with {\"record\": true})"
                    .into(),
            ));
        }
        if let Some(max) = self.settings.max_bytes {
            let used = self.used_bytes();
            if used >= max {
                return Err(RecordingError::Quota(format!(
                    "recordings take {used} bytes of their {max}-byte quota: delete some first"
                )));
            }
        }
        let id = {
            let inner = self.lock();
            if inner.active.len() >= MAX_ACTIVE {
                return Err(RecordingError::Conflict(format!(
                    "{MAX_ACTIVE} recordings are running already"
                )));
            }
            if inner.list.len() >= MAX_KEPT {
                return Err(RecordingError::Conflict(format!(
                    "there are {MAX_KEPT} recordings: delete some first"
                )));
            }
            format!("rec-{}", inner.next)
        };
        let rec = Recording {
            id: id.clone(),
            name: name.map_or_else(|| id.clone(), |n| n.trim().to_string()),
            state: RecordingState::Recording,
            started_at: now_ms(),
            duration_ms: 0,
            bytes: 0,
            segment_minutes,
            files: Vec::new(),
            error: None,
        };
        let plan = RecordingPlan {
            dir: self.settings.dir.clone(),
            stem: id.clone(),
            segment: segment_minutes.map(|m| Duration::from_secs(u64::from(m) * 60)),
        };
        let (done_tx, done) = tokio::sync::watch::channel(false);
        let (manager, ended_id) = (Arc::downgrade(self), id.clone());
        let runtime = tokio::runtime::Handle::current();
        let recorder = Recorder::start(&self.hub, plan, move |ending, files| {
            runtime.spawn(async move {
                if let Some(manager) = manager.upgrade() {
                    manager.ended(&ended_id, ending, files).await;
                }
                let _ = done_tx.send(true);
            });
        })
        .map_err(|e| {
            RecordingError::Storage(format!(
                "cannot write to {}: {e}",
                self.settings.dir.display()
            ))
        })?;
        {
            let mut inner = self.lock();
            inner.next += 1;
            inner.list.push(rec.clone());
            inner.active.push((id.clone(), Active { recorder, done }));
        }
        self.persist().await;
        self.state.publish(Event::RecordingUpdate(rec.clone()));
        tracing::info!(recording = %id, "recording started");
        Ok(rec)
    }

    /// A recording's writer finished: its final state, persisted and announced.
    async fn ended(
        &self,
        id: &str,
        ending: Ending,
        files: Vec<sm_media::recording::RecordingFile>,
    ) {
        let _edit = self.edits.lock().await;
        let rec = {
            let mut inner = self.lock();
            inner.active.retain(|(a, _)| a != id);
            let Some(rec) = inner.list.iter_mut().find(|r| r.id == id) else {
                return;
            };
            rec.set_files(files);
            match &ending {
                Ending::Stopped | Ending::StreamEnded => rec.state = RecordingState::Done,
                Ending::Failed(why) => {
                    rec.state = RecordingState::Failed;
                    rec.error = Some(why.clone());
                }
            }
            rec.clone()
        };
        self.persist().await;
        if let Ending::Failed(why) = &ending {
            tracing::warn!(recording = %id, error = %why, "recording failed");
            self.state.publish(Event::Error(FaultEvent {
                code: "recording_failed".into(),
                message: format!("recording {id} failed: {why}"),
                component: Some(format!("recording:{id}")),
            }));
        } else {
            tracing::info!(recording = %id, duration_ms = rec.duration_ms, bytes = rec.bytes, "recording finished");
        }
        self.state.publish(Event::RecordingUpdate(rec));
    }

    /// Stops a recording and answers once its files are finished.
    pub async fn stop(&self, id: &str) -> Result<Recording, RecordingError> {
        let active = {
            let mut inner = self.lock();
            let current = self.get_locked(&inner, id)?;
            if current.state != RecordingState::Recording {
                return Err(RecordingError::Conflict(format!(
                    "recording {id} is {} already",
                    state_name(current.state)
                )));
            }
            let at = inner.active.iter().position(|(a, _)| a == id);
            at.map(|at| inner.active.remove(at).1)
        };
        if let Some(Active { recorder, mut done }) = active {
            recorder.stop();
            let _ = tokio::time::timeout(STOP_WAIT, done.wait_for(|d| *d)).await;
        }
        self.get(id)
    }

    fn get_locked(&self, inner: &Inner, id: &str) -> Result<Recording, RecordingError> {
        inner
            .list
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| RecordingError::NotFound(format!("no recording {id:?}")))
    }

    /// Deletes a finished recording and its files.
    pub async fn delete(&self, id: &str) -> Result<Recording, RecordingError> {
        let _edit = self.edits.lock().await;
        let rec = {
            let mut inner = self.lock();
            let rec = self.get_locked(&inner, id)?;
            if rec.state == RecordingState::Recording {
                return Err(RecordingError::Conflict(format!(
                    "recording {id} is running: stop it first"
                )));
            }
            inner.list.retain(|r| r.id != id);
            rec
        };
        for file in &rec.files {
            let path = self.settings.dir.join(&file.name);
            if let Err(e) = tokio::fs::remove_file(&path).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a recording file");
            }
        }
        self.persist().await;
        Ok(rec)
    }

    /// The path of file `n` (from 0) of a recording.
    pub fn file(&self, id: &str, n: usize) -> Result<(PathBuf, String), RecordingError> {
        let rec = self.get(id)?;
        let file = rec.files.get(n).ok_or_else(|| {
            RecordingError::NotFound(format!(
                "recording {id} has {} file(s); there is no file {n}",
                rec.files.len()
            ))
        })?;
        Ok((self.settings.dir.join(&file.name), file.name.clone()))
    }

    /// A link to download file `n` of recording `id` without the API token (a browser's
    /// download or a player cannot send one): the file's path with a random `?ticket=`,
    /// valid for [`LINK_TTL`] and for that path only.
    pub fn link(&self, id: &str, n: usize) -> Result<String, RecordingError> {
        self.file(id, n)?;
        let path = format!("/api/recordings/{id}/files/{n}");
        let ticket = sm_media::input::model::new_stream_key();
        let now = std::time::Instant::now();
        let mut inner = self.lock();
        inner.links.retain(|(_, _, until)| *until > now);
        if inner.links.len() >= MAX_LINKS {
            inner.links.remove(0);
        }
        inner
            .links
            .push((ticket.clone(), path.clone(), now + LINK_TTL));
        Ok(format!("{path}?ticket={ticket}"))
    }

    /// Whether `ticket` is a live download link for `path`.
    pub fn admits(&self, path: &str, ticket: &str) -> bool {
        use subtle::ConstantTimeEq;
        let now = std::time::Instant::now();
        self.lock().links.iter().any(|(t, p, until)| {
            *until > now && p == path && bool::from(t.as_bytes().ct_eq(ticket.as_bytes()))
        })
    }

    /// Stops every recording (shutdown), waiting for their files.
    pub async fn stop_all(&self) {
        let ids: Vec<String> = self
            .lock()
            .active
            .iter()
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let _ = self.stop(&id).await;
        }
    }

    async fn persist(&self) {
        let list = self.lock().list.clone();
        let json = serde_json::to_vec(&list).expect("recordings serialize");
        self.state.set_doc(KEY_RECORDINGS, json).await;
    }
}

/// The highest `N` of the recording files (`rec-N-K.mp4`) in `dir`; 0 when there are none.
fn highest_on_disk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let (id, _) = name.strip_suffix(".mp4")?.rsplit_once('-')?;
            number(id)
        })
        .max()
        .unwrap_or(0)
}

/// The files of recording `id` in `dir` (`<id>-<k>.mp4`), in order of `k`.
fn files_of(dir: &std::path::Path, id: &str) -> Vec<PathBuf> {
    let prefix = format!("{id}-");
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let k = name
                .strip_prefix(&prefix)?
                .strip_suffix(".mp4")?
                .parse()
                .ok()?;
            Some((k, entry.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

fn state_name(state: RecordingState) -> &'static str {
    match state {
        RecordingState::Recording => "recording",
        RecordingState::Done => "done",
        RecordingState::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_in_their_order() {
        let dir = std::env::temp_dir().join(format!("sm-rec-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "rec-1-10.mp4",
            "rec-1-2.mp4",
            "rec-11-1.mp4",
            "rec-1-x.mp4",
            "rec-1-1.mp4",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let names: Vec<String> = files_of(&dir, "rec-1")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["rec-1-1.mp4", "rec-1-2.mp4", "rec-1-10.mp4"]);
        assert_eq!(highest_on_disk(&dir), 11);
        assert_eq!(highest_on_disk(&dir.join("missing")), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ids_are_numbered() {
        assert_eq!(number("rec-12"), Some(12));
        assert_eq!(number("rec-x"), None);
        assert_eq!(number("other"), None);
    }
}
