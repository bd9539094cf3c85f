//! The media library: video files uploaded for `file` inputs, kept on disk under
//! `--media-dir` (never in memory or in the state store: they may be gigabytes), each with a
//! small JSON sidecar describing it, so a restarted server finds them again.
//!
//! An upload is streamed to a temporary file in the same folder, counted as it arrives (the
//! limit is enforced while reading, not after), probed with FFmpeg on a blocking worker,
//! and only then given its id; anything refused leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use utoipa::ToSchema;

use sm_media::input::file::MediaProbe;

/// A media file of the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaInfo {
    /// Id: what a `file` input names in its `url`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// What probing it found.
    #[serde(flatten)]
    pub probe: MediaProbe,
}

/// Why a media request failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Not a playable video.
    #[error("not a playable video: {0}")]
    Invalid(String),
    /// Over the size limit.
    #[error("the body exceeds the media limit of {0} bytes")]
    TooLarge(u64),
    /// No such media.
    #[error("unknown media {0:?}")]
    NotFound(String),
    /// Used by an input.
    #[error("media {id:?} is used by input {input:?}")]
    InUse {
        /// The media.
        id: String,
        /// The input using it.
        input: String,
    },
    /// The disk refused.
    #[error("storing the media failed: {0}")]
    Io(String),
}

/// The media files, by id.
pub struct MediaLibrary {
    dir: PathBuf,
    max_bytes: u64,
    max_picture: (u32, u32),
    index: Mutex<BTreeMap<String, MediaInfo>>,
}

fn sidecar(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

impl MediaLibrary {
    /// The library in `dir` (read at [`MediaLibrary::load`]).
    pub fn new(dir: PathBuf, max_bytes: u64, max_picture: (u32, u32)) -> Self {
        Self {
            dir,
            max_bytes,
            max_picture,
            index: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MediaInfo>> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Largest upload.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Reads the sidecars of the folder (a missing folder is an empty library).
    pub async fn load(&self) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        let mut found = BTreeMap::new();
        while let Ok(Some(e)) = entries.next_entry().await {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(text) = tokio::fs::read(&path).await else {
                continue;
            };
            match serde_json::from_slice::<MediaInfo>(&text) {
                Ok(info) if self.dir.join(&info.id).is_file() => {
                    found.insert(info.id.clone(), info);
                }
                _ => tracing::warn!(path = %path.display(), "ignoring an unreadable media sidecar"),
            }
        }
        *self.lock() = found;
    }

    /// Every media file.
    pub fn list(&self) -> Vec<MediaInfo> {
        self.lock().values().cloned().collect()
    }

    /// One media file.
    pub fn get(&self, id: &str) -> Option<MediaInfo> {
        self.lock().get(id).cloned()
    }

    /// The file a `file` input's `url` names: a media id, or a path under the folder that
    /// exists and does not lead out of it (through `..` or a symbolic link).
    pub fn resolve(&self, url: &str) -> Result<PathBuf, String> {
        if self.lock().contains_key(url) {
            return Ok(self.dir.join(url));
        }
        let path = self.dir.join(url);
        let dir = self
            .dir
            .canonicalize()
            .map_err(|_| format!("no media {url:?}: the media folder does not exist"))?;
        let real = path
            .canonicalize()
            .map_err(|_| format!("no media {url:?} (neither an uploaded id nor a file)"))?;
        if !real.starts_with(&dir) || !real.is_file() {
            return Err(format!("{url:?} is not a file under the media folder"));
        }
        Ok(real)
    }

    /// Streams an upload to disk, probes it, and adds it under a fresh id.
    pub async fn upload(
        &self,
        name: Option<&str>,
        declared: Option<u64>,
        body: axum::body::Body,
    ) -> Result<MediaInfo, MediaError> {
        if declared.is_some_and(|n| n > self.max_bytes) {
            return Err(MediaError::TooLarge(self.max_bytes));
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MediaError::Io(e.to_string()))?;
        let id = loop {
            let id = format!("media-{}", &sm_media::input::model::new_stream_key()[..10]);
            if !self.lock().contains_key(&id) && !self.dir.join(&id).exists() {
                break id;
            }
        };
        let part = self.dir.join(format!(".{id}.part"));
        let written = self.write_body(&part, body).await;
        let bytes = match written {
            Ok(n) => n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        if bytes == 0 {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(MediaError::Invalid("the body is empty".into()));
        }
        let max = self.max_picture;
        let probed = {
            let part = part.clone();
            tokio::task::spawn_blocking(move || sm_media::input::file::probe(&part, max))
                .await
                .unwrap_or_else(|e| Err(format!("probing failed: {e}")))
        };
        let probe = match probed {
            Ok(p) => p,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(MediaError::Invalid(e));
            }
        };
        let info = MediaInfo {
            name: name.map_or_else(|| id.clone(), str::to_string),
            id: id.clone(),
            bytes,
            probe,
        };
        let text = serde_json::to_vec_pretty(&info).expect("media info serializes");
        let stored = async {
            tokio::fs::rename(&part, self.dir.join(&id)).await?;
            tokio::fs::write(sidecar(&self.dir, &id), text).await
        }
        .await;
        if let Err(e) = stored {
            let _ = tokio::fs::remove_file(&part).await;
            let _ = tokio::fs::remove_file(self.dir.join(&id)).await;
            return Err(MediaError::Io(e.to_string()));
        }
        self.lock().insert(id, info.clone());
        tracing::info!(media = %info.id, bytes, "media uploaded");
        Ok(info)
    }

    /// Writes the body to `path`, refusing it once it passes the limit.
    async fn write_body(&self, path: &Path, body: axum::body::Body) -> Result<u64, MediaError> {
        let io = |e: std::io::Error| MediaError::Io(e.to_string());
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut stream = body.into_data_stream();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| MediaError::Io(format!("reading the body: {e}")))?;
            total += chunk.len() as u64;
            if total > self.max_bytes {
                return Err(MediaError::TooLarge(self.max_bytes));
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        Ok(total)
    }

    /// Removes a media file (the caller checked that no input uses it).
    pub async fn remove(&self, id: &str) -> Result<MediaInfo, MediaError> {
        let info = self
            .lock()
            .remove(id)
            .ok_or_else(|| MediaError::NotFound(id.into()))?;
        let _ = tokio::fs::remove_file(sidecar(&self.dir, id)).await;
        let _ = tokio::fs::remove_file(self.dir.join(id)).await;
        Ok(info)
    }
}
