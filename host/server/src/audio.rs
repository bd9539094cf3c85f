//! The program sound's settings (the master fader and the limiter), kept in the store under
//! [`KEY_AUDIO`], and its meters as the API and the WebSocket show them. The sources' own
//! faders are the inputs' `audio` (see [`crate::inputs`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use sm_media::audio::meter::{ProgramLevels, SourceLevels};
use sm_media::audio::mixer::{AudioMix, Fader};

use crate::state::StateManager;
use crate::state::model::{PatchError, from_json};

/// Store key of the audio settings.
pub const KEY_AUDIO: &str = "audio";

/// The master fader.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Master {
    /// Gain in dB, -60..=12. Default 0.
    #[schema(minimum = -60.0, maximum = 12.0)]
    pub gain_db: f64,
    /// The program is silent. Default false.
    pub muted: bool,
}

/// `GET/PATCH /api/audio`: the master and the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioSettings {
    /// The master fader.
    pub master: Master,
    /// The true-peak limiter (program held below -1 dBTP). Default on.
    pub limiter: bool,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self {
            master: Master {
                gain_db: 0.0,
                muted: false,
            },
            limiter: true,
        }
    }
}

/// WS `audioLevels`: the program's loudness and each source's level, about 10 times a
/// second while the stream is live.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AudioLevels {
    /// The program (after the master and the limiter).
    pub program: ProgramLevels,
    /// Each input with sound, by id (before its fader).
    pub sources: BTreeMap<String, SourceLevels>,
}

/// A gain outside -60..=12 dB (or not a number).
pub fn check_gain(field: &str, db: f64) -> Result<(), PatchError> {
    if db.is_finite() && (-60.0..=12.0).contains(&db) {
        Ok(())
    } else {
        Err(PatchError {
            code: "out_of_range",
            message: format!("{field}: {db} is outside -60..=12"),
        })
    }
}

/// Owner of the audio settings.
pub struct AudioManager {
    state: Arc<StateManager>,
    mix: Arc<AudioMix>,
    settings: Mutex<AudioSettings>,
    edits: tokio::sync::Mutex<()>,
}

impl AudioManager {
    /// Settings at their defaults, applied to `mix`.
    pub fn new(state: Arc<StateManager>, mix: Arc<AudioMix>) -> Self {
        let manager = Self {
            state,
            mix,
            settings: Mutex::new(AudioSettings::default()),
            edits: tokio::sync::Mutex::new(()),
        };
        manager.apply(AudioSettings::default());
        manager
    }

    /// Reads the stored settings.
    pub async fn load(&self) {
        let Some(bytes) = self.state.load_doc(KEY_AUDIO).await else {
            return;
        };
        match serde_json::from_slice::<AudioSettings>(&bytes) {
            Ok(s) if check_gain("master.gainDb", s.master.gain_db).is_ok() => self.apply(s),
            Ok(_) | Err(_) => tracing::warn!("ignoring the stored audio settings: unreadable"),
        }
    }

    fn apply(&self, s: AudioSettings) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = s;
        self.mix.set_master(
            Fader {
                gain_db: s.master.gain_db,
                muted: s.master.muted,
            },
            s.limiter,
        );
    }

    /// The settings now.
    pub fn settings(&self) -> AudioSettings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a JSON merge patch, checked, and keeps the result.
    pub async fn patch(&self, patch: &Value) -> Result<AudioSettings, PatchError> {
        let _serial = self.edits.lock().await;
        if !patch.is_object() {
            return Err(PatchError {
                code: "invalid_type",
                message: "the patch must be a JSON object".into(),
            });
        }
        let mut doc = serde_json::to_value(self.settings()).expect("settings serialize");
        json_patch::merge(&mut doc, patch);
        let settings: AudioSettings = from_json(doc)?;
        check_gain("master.gainDb", settings.master.gain_db)?;
        self.apply(settings);
        let bytes = serde_json::to_vec(&settings).expect("settings serialize");
        self.state.set_doc(KEY_AUDIO, bytes).await;
        Ok(settings)
    }

    /// The shared mix (for the inputs and the pipeline).
    pub fn mix(&self) -> &Arc<AudioMix> {
        &self.mix
    }

    /// The sequence number of the latest meter readings (0: none yet).
    pub fn levels_seq(&self) -> u64 {
        self.mix.levels_seq()
    }

    /// The latest meter readings and their sequence number (0: none yet).
    pub fn levels(&self) -> (u64, AudioLevels) {
        let l = self.mix.levels();
        (
            l.seq,
            AudioLevels {
                program: l.program,
                sources: l.sources.into_iter().collect(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StreamConfig;
    use crate::state::store::MemoryStore;
    use serde_json::json;

    /// A change is checked, applied and kept: a manager over the same store reads it back;
    /// a refused patch changes nothing.
    #[tokio::test]
    async fn settings_are_checked_and_kept_in_the_store() {
        let state = Arc::new(StateManager::new(
            Arc::new(MemoryStore::default()),
            "",
            StreamConfig::default(),
        ));
        let audio = AudioManager::new(state.clone(), Arc::default());
        let patched = audio
            .patch(&json!({"master": {"gainDb": -6.5}, "limiter": false}))
            .await
            .unwrap();
        assert_eq!(
            (
                patched.master.gain_db,
                patched.master.muted,
                patched.limiter
            ),
            (-6.5, false, false)
        );
        for (bad, code) in [
            (json!({"master": {"gainDb": 12.5}}), "out_of_range"),
            (json!({"master": {"muted": 1}}), "invalid_type"),
            (json!({"solo": true}), "unknown_field"),
            (json!([]), "invalid_type"),
        ] {
            assert_eq!(audio.patch(&bad).await.unwrap_err().code, code, "{bad}");
        }
        let again = AudioManager::new(state, Arc::default());
        assert_eq!(again.settings(), AudioSettings::default());
        again.load().await;
        assert_eq!(again.settings(), patched);
    }
}
