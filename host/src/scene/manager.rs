//! The Scene Manager: the one place scene edits go through. An edit is applied to a copy,
//! validated, persisted, handed to the render thread through the [`SceneSlot`], announced
//! as `sceneUpdate`, and answered with the number of the first frame that shows it.

use std::sync::Arc;
use std::time::Duration;

use super::{Scene, SceneError, SceneSlot, Tween};
use crate::state::{Event, KEY_SCENE, StateManager};

/// Longest an edit waits for its first frame before answering without one.
const APPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// Owner of the scene.
pub struct SceneManager {
    state: Arc<StateManager>,
    slot: Arc<SceneSlot>,
    edits: tokio::sync::Mutex<()>,
}

impl SceneManager {
    /// Loads the stored scene (or starts from the default) into a new slot.
    pub async fn load(state: Arc<StateManager>) -> Self {
        let scene = match state.load_doc(KEY_SCENE).await {
            Some(text) => match serde_json::from_str::<Scene>(&text) {
                Ok(s) if s.validate(&|_| false).is_ok() => s,
                Ok(_) | Err(_) => {
                    tracing::warn!("ignoring the stored scene: it is not valid");
                    Scene::default()
                }
            },
            None => Scene::default(),
        };
        Self::new(state, scene)
    }

    /// A manager starting from `scene`.
    pub fn new(state: Arc<StateManager>, scene: Scene) -> Self {
        Self {
            state,
            slot: Arc::new(SceneSlot::new(scene)),
            edits: tokio::sync::Mutex::new(()),
        }
    }

    /// The slot the render thread reads.
    pub fn slot(&self) -> &Arc<SceneSlot> {
        &self.slot
    }

    /// The current scene.
    pub fn scene(&self) -> Scene {
        (*self.slot.current().1).clone()
    }

    /// Applies `edit` to a copy of the scene; if the result validates, it goes on air.
    /// Returns the edit's own result, the new scene, and the first frame that shows it
    /// (`None` while the stream is not live).
    pub async fn update<T, E: From<SceneError>>(
        &self,
        edit: impl FnOnce(&mut Scene) -> Result<T, E>,
    ) -> Result<(T, Scene, Option<u64>), E> {
        self.update_animated(|scene| Ok((edit(scene)?, Vec::new())))
            .await
    }

    /// Like [`SceneManager::update`], for an edit that also starts animations; the frame
    /// returned is the first of the animation.
    pub async fn update_animated<T, E: From<SceneError>>(
        &self,
        edit: impl FnOnce(&mut Scene) -> Result<(T, Vec<Tween>), E>,
    ) -> Result<(T, Scene, Option<u64>), E> {
        let (out, scene, applied) = {
            let _serial = self.edits.lock().await;
            let mut scene = self.scene();
            let (out, tweens) = edit(&mut scene)?;
            // No asset store yet: every image reference is unknown.
            scene.validate(&|_| false)?;
            let json = serde_json::to_string(&scene).expect("scene serializes");
            self.state.set_doc(KEY_SCENE, json).await;
            let applied = self.slot.publish_animated(scene.clone(), tweens);
            self.state.publish(Event::SceneUpdate(scene.clone()));
            (out, scene, applied)
        };
        let frame = if self.state.state().is_live {
            match tokio::time::timeout(APPLY_TIMEOUT, applied).await {
                Ok(Ok(frame)) => Some(frame),
                _ => {
                    tracing::warn!("scene change not confirmed on air within {APPLY_TIMEOUT:?}");
                    None
                }
            }
        } else {
            None
        };
        Ok((out, scene, frame))
    }
}
