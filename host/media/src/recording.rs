//! The recording model as the API and the store show it (`/api/recordings`, WS
//! `recordingUpdate`, the store's `recordings`). The writer is [`crate::recorder`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a recording is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RecordingState {
    /// Being written.
    Recording,
    /// Finished: stopped, the stream stopped, or found unfinished at boot (after a crash)
    /// and closed at its last complete fragment.
    Done,
    /// Could not go on (full or slow disk, write error); its files play up to the failure.
    Failed,
}

/// One file of a recording (`GET /api/recordings/{id}/files/{n}`, `n` from 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingFile {
    /// File name in the recordings folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Duration of its video in milliseconds.
    pub duration_ms: u64,
    /// Video frames in it.
    pub frames: u64,
}

/// A recording of the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// Generated id (`rec-N`).
    pub id: String,
    /// The name given, else the id.
    pub name: String,
    /// `recording`, `done` or `failed`.
    pub state: RecordingState,
    /// Start, in milliseconds since the Unix epoch.
    pub started_at: u64,
    /// Duration so far, in milliseconds (all files).
    pub duration_ms: u64,
    /// Bytes so far (all files).
    pub bytes: u64,
    /// A new file starts at the first key frame this many minutes after the last (none:
    /// one file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_minutes: Option<u32>,
    /// Its files, in order.
    pub files: Vec<RecordingFile>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Recording {
    /// Sets the files, and the totals from them.
    pub fn set_files(&mut self, files: Vec<RecordingFile>) {
        self.bytes = files.iter().map(|f| f.bytes).sum();
        self.duration_ms = files.iter().map(|f| f.duration_ms).sum();
        self.files = files;
    }
}
