//! The Scene Manager: the one place scene edits go through. It holds the named scenes and
//! which one is active (on air). An edit is applied to a copy, validated against the assets
//! that exist, persisted, handed to the render thread through the [`SceneSlot`] with the
//! images and fonts it needs (resized off the render thread), announced as `sceneUpdate`,
//! and answered with the number of the first frame that shows it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sm_render::{OnAir, SceneSlot, Templates};
use sm_scene::{AssetLookup, Scene, SceneError, TemplateSpec, Transition, Tween, valid_id};

use crate::assets::{AssetError, AssetInfo, AssetManager};
use crate::inputs::{InputManager, InputsError};
use crate::state::{Event, KEY_SCENE, StateManager};
use sm_media::input::Input;
use sm_plugin_host::registry::{RegistryError, TemplateRegistry};

/// Key of the named scenes and the active one.
pub const KEY_SCENES: &str = "scenes";

/// Longest an edit waits for its first frame before answering without one.
const APPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// Most named scenes.
pub const MAX_SCENES: usize = 64;

/// Id of the scene a new server starts with.
pub const DEFAULT_SCENE_ID: &str = "default";

/// A named scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedScene {
    /// 1–64 of `[A-Za-z0-9_-]`.
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: String,
    /// The scene.
    #[serde(default)]
    pub scene: Scene,
}

/// A line of the scene list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SceneSummary {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it is on air (what `/api/scene` edits).
    pub active: bool,
    /// Number of layers.
    pub layers: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Book {
    active: String,
    scenes: Vec<NamedScene>,
}

impl Book {
    fn active_mut(&mut self) -> &mut NamedScene {
        let active = self.active.clone();
        self.scenes
            .iter_mut()
            .find(|s| s.id == active)
            .expect("the active scene exists")
    }
}

/// Why a named-scene operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenesError {
    /// The scene is invalid.
    #[error(transparent)]
    Invalid(#[from] SceneError),
    /// No such scene.
    #[error("no scene {0:?}")]
    NotFound(String),
    /// Conflicts with the current state (exists, active, in use, full).
    #[error("{0}")]
    Conflict(String),
}

/// Why an asset could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum AssetDeleteError {
    /// No such asset.
    #[error(transparent)]
    Asset(#[from] AssetError),
    /// Scenes use it.
    #[error("asset {id:?} is in use by {users}")]
    InUse {
        /// The asset.
        id: String,
        /// `scene/layer` references.
        users: String,
    },
}

/// The scene a new server starts with: the skeleton's demo, built from scene primitives
/// (a gradient background, a title, a running timecode and a few shapes).
pub fn default_scene() -> Scene {
    let scene = serde_json::json!({
        "canvas": {"width": 1920, "height": 1080, "background": "#0b1d3a"},
        "layers": [
            {"id": "background", "kind": "shape",
             "position": {"x": 0, "y": 0, "width": 1920, "height": 1080},
             "shape": {"type": "rect", "fill": {"type": "linear", "angle": 35,
                "stops": [{"offset": 0, "color": "#0b1d3a"}, {"offset": 1, "color": "#3a0b3a"}]}}},
            {"id": "glow", "kind": "shape",
             "position": {"x": 1240, "y": 160, "width": 520, "height": 520, "zIndex": 1},
             "shape": {"type": "ellipse", "fill": {"type": "radial",
                "stops": [{"offset": 0, "color": "#ff7a18cc"}, {"offset": 1, "color": "#ff7a1800"}]}}},
            {"id": "title", "kind": "text",
             "position": {"x": 140, "y": 160, "width": 1100, "height": 260, "zIndex": 2},
             "text": {"content": "stream-manager\nlive graphics", "size": 96, "color": "#ffffff"}},
            {"id": "bar", "kind": "shape",
             "position": {"x": 120, "y": 760, "width": 1680, "height": 220, "opacity": 0.85, "zIndex": 3},
             "shape": {"type": "roundedRect", "cornerRadius": 28, "fill": {"type": "linear",
                "stops": [{"offset": 0, "color": "#1e3a8a"}, {"offset": 1, "color": "#0ea5e9"}]}}},
            {"id": "clock", "kind": "text",
             "position": {"x": 160, "y": 770, "width": 1600, "height": 200, "zIndex": 4},
             "text": {"content": "{{timecode}} #{{frame}}", "size": 150, "color": "#ffffff", "align": "center"}}
        ]
    });
    serde_json::from_value(scene).expect("the default scene is valid")
}

/// Owner of the scenes.
pub struct SceneManager {
    state: Arc<StateManager>,
    assets: Arc<AssetManager>,
    slot: Arc<SceneSlot>,
    book: Mutex<Book>,
    edits: tokio::sync::Mutex<()>,
    templates: Option<Arc<TemplateRegistry>>,
    inputs: Option<Arc<InputManager>>,
}

/// The assets, templates and inputs a scene may refer to.
struct Lookup<'a> {
    assets: &'a AssetManager,
    templates: Option<&'a TemplateRegistry>,
    inputs: Option<&'a InputManager>,
}

impl AssetLookup for Lookup<'_> {
    fn is_image(&self, id: &str) -> bool {
        self.assets.is_image(id)
    }
    fn has_family(&self, family: &str) -> bool {
        self.assets.has_family(family)
    }
    fn has_template(&self, id: &str) -> bool {
        self.templates.is_some_and(|t| t.build(id).is_some())
    }
    fn check_template(&self, spec: &TemplateSpec) -> Result<(), String> {
        match self.templates.and_then(|t| t.build(&spec.id)) {
            Some(build) => build.check_spec(spec),
            None => Err(format!("template {:?} was removed", spec.id)),
        }
    }
    fn has_input(&self, id: &str) -> bool {
        self.inputs.is_some_and(|i| i.exists(id))
    }
}

/// Why a template could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum TemplateDeleteError {
    /// The registry refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A scene uses it.
    #[error("template {id:?} is used by {users}")]
    InUse {
        /// The template.
        id: String,
        /// `scene/layer` of each user.
        users: String,
    },
}

impl SceneManager {
    /// Loads the stored scenes (a scene stored by an older version becomes the scene
    /// `main`; a new server starts with [`default_scene`]) and puts the active one on air.
    pub async fn load(
        state: Arc<StateManager>,
        assets: Arc<AssetManager>,
        templates: Option<Arc<TemplateRegistry>>,
        inputs: Option<Arc<InputManager>>,
    ) -> Self {
        let lookup = Lookup {
            assets: &assets,
            templates: templates.as_deref(),
            inputs: inputs.as_deref(),
        };
        let book = match state.load_doc(KEY_SCENES).await {
            Some(bytes) => match serde_json::from_slice::<Book>(&bytes) {
                Ok(b) if check_book(&b, &lookup).is_ok() => Some(b),
                Ok(b) => {
                    let e = check_book(&b, &lookup).err();
                    tracing::warn!(error = ?e, "ignoring the stored scenes: they are not valid");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring the stored scenes: unreadable");
                    None
                }
            },
            None => None,
        };
        let book = match book {
            Some(b) => b,
            None => {
                let legacy = state
                    .load_doc(KEY_SCENE)
                    .await
                    .and_then(|b| serde_json::from_slice::<Scene>(&b).ok())
                    .filter(|s| s.validate(&lookup).is_ok());
                let (id, scene) = match legacy {
                    Some(s) => ("main", s),
                    None => (DEFAULT_SCENE_ID, default_scene()),
                };
                Book {
                    active: id.into(),
                    scenes: vec![NamedScene {
                        id: id.into(),
                        name: id.into(),
                        scene,
                    }],
                }
            }
        };
        let mut manager = Self::with_book(state, assets, book);
        manager.templates = templates;
        manager.inputs = inputs;
        manager.republish(None).await;
        manager
    }

    /// A manager with `scene` active (as `default`), not persisted until edited.
    pub fn new(state: Arc<StateManager>, assets: Arc<AssetManager>, scene: Scene) -> Self {
        let book = Book {
            active: DEFAULT_SCENE_ID.into(),
            scenes: vec![NamedScene {
                id: DEFAULT_SCENE_ID.into(),
                name: DEFAULT_SCENE_ID.into(),
                scene,
            }],
        };
        Self::with_book(state, assets, book)
    }

    fn with_book(state: Arc<StateManager>, assets: Arc<AssetManager>, book: Book) -> Self {
        let active = book
            .scenes
            .iter()
            .find(|s| s.id == book.active)
            .map(|s| s.scene.clone())
            .unwrap_or_default();
        Self {
            state,
            assets,
            slot: Arc::new(SceneSlot::new(active)),
            book: Mutex::new(book),
            edits: tokio::sync::Mutex::new(()),
            templates: None,
            inputs: None,
        }
    }

    /// What scenes are checked against: the assets and the templates.
    fn lookup(&self) -> Lookup<'_> {
        Lookup {
            assets: &self.assets,
            templates: self.templates.as_deref(),
            inputs: self.inputs.as_deref(),
        }
    }

    /// `scene/layer` of every layer of every scene that `matches`.
    fn layers_where(&self, matches: impl Fn(&sm_scene::Layer) -> bool) -> Vec<String> {
        self.lock()
            .scenes
            .iter()
            .flat_map(|named| {
                named
                    .scene
                    .layers
                    .iter()
                    .filter(|l| matches(l))
                    .map(|l| format!("{}/{}", named.id, l.id))
            })
            .collect()
    }

    /// The live inputs, when the server runs them.
    pub fn inputs(&self) -> Option<&Arc<InputManager>> {
        self.inputs.as_ref()
    }

    /// Deletes an input unless a scene shows it (checked under the edit lock, so no edit
    /// can start showing it meanwhile).
    pub async fn delete_input(&self, id: &str) -> Result<Input, InputsError> {
        let _serial = self.edits.lock().await;
        let inputs = self.inputs.as_ref().ok_or(InputsError::Unavailable)?;
        let users = self.layers_where(|l| l.video.as_ref().is_some_and(|v| v.input == id));
        if !users.is_empty() {
            return Err(InputsError::Conflict(format!(
                "input {id:?} is shown by {}",
                users.join(", ")
            )));
        }
        inputs.delete(id).await
    }

    /// The templates, when the server runs them.
    pub fn templates(&self) -> Option<&Arc<TemplateRegistry>> {
        self.templates.as_ref()
    }

    /// Template fault statistics of what is on air: quarantined layers that were removed
    /// (or whose scene or template went away) are forgotten.
    pub fn template_stats(&self) -> sm_plugin_host::registry::TemplateStats {
        let Some(registry) = &self.templates else {
            return Default::default();
        };
        let scene = self.scene();
        registry.current_stats(|layer, template| {
            scene
                .layers
                .iter()
                .any(|l| l.id == layer && l.template.as_ref().is_some_and(|t| t.id == template))
        })
    }

    /// Puts the active scene on air again with the current template versions (after an
    /// upload, a hot swap or a rollback); the first frame that shows them.
    pub async fn templates_changed(&self) -> Option<u64> {
        let _serial = self.edits.lock().await;
        self.republish(None).await
    }

    /// Deletes a template unless a scene uses it (checked under the edit lock).
    pub async fn delete_template(&self, id: &str) -> Result<(), TemplateDeleteError> {
        let _serial = self.edits.lock().await;
        let registry = self
            .templates
            .as_ref()
            .ok_or_else(|| RegistryError::NotFound(id.to_string()))?;
        let users = self.layers_where(|l| l.template.as_ref().is_some_and(|t| t.id == id));
        if !users.is_empty() {
            return Err(TemplateDeleteError::InUse {
                id: id.to_string(),
                users: users.join(", "),
            });
        }
        Ok(registry.remove(id).await?)
    }

    /// Asks each template layer whose params are new in `scene` (compared with the active
    /// scene) whether its template accepts them: a scratch instance is configured off the
    /// render thread, so a template's own refusal is a 422 before anything goes on air.
    async fn check_template_params(&self, scene: &Scene) -> Result<(), SceneError> {
        let Some(registry) = &self.templates else {
            return Ok(());
        };
        let active = self.scene();
        for (i, layer) in scene.layers.iter().enumerate() {
            let Some(spec) = &layer.template else {
                continue;
            };
            let unchanged = active
                .layers
                .iter()
                .any(|l| l.template.as_ref() == Some(spec));
            let Some(build) = registry.build(&spec.id) else {
                continue;
            };
            if unchanged {
                continue;
            }
            let params = spec.params_or(&build.info.default_params).to_string();
            let runtime = registry.runtime().clone();
            let verdict =
                tokio::task::spawn_blocking(move || template_accepts(&runtime, &build, &params))
                    .await;
            let message = match verdict {
                Ok(Ok(())) => continue,
                Ok(Err(refusal)) => refusal,
                Err(e) => format!("configure failed: {e}"),
            };
            return Err(SceneError::InvalidParams {
                field: format!("layers[{i}].template.params"),
                message,
            });
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().expect("scene book lock")
    }

    /// The slot the render thread reads.
    pub fn slot(&self) -> &Arc<SceneSlot> {
        &self.slot
    }

    /// The assets scenes draw from.
    pub fn assets(&self) -> &Arc<AssetManager> {
        &self.assets
    }

    /// The active scene.
    pub fn scene(&self) -> Scene {
        self.lock().active_mut().scene.clone()
    }

    /// Id of the active scene.
    pub fn active_id(&self) -> String {
        self.lock().active.clone()
    }

    /// Every named scene.
    pub fn list(&self) -> Vec<SceneSummary> {
        let book = self.lock();
        book.scenes
            .iter()
            .map(|s| SceneSummary {
                id: s.id.clone(),
                name: s.name.clone(),
                active: s.id == book.active,
                layers: s.scene.layers.len(),
            })
            .collect()
    }

    /// One named scene.
    pub fn get(&self, id: &str) -> Option<NamedScene> {
        self.lock().scenes.iter().find(|s| s.id == id).cloned()
    }

    /// Builds what goes on air for `scene` (images resized to their drawn size on a
    /// blocking worker).
    async fn on_air(
        &self,
        scene: Scene,
        tweens: Vec<Tween>,
        transition: Option<Transition>,
    ) -> OnAir {
        let config = self.state.config();
        let (w, h) = (config.width, config.height);
        let assets = self.assets.clone();
        let scene = Arc::new(scene);
        let for_worker = scene.clone();
        let resources = tokio::task::spawn_blocking(move || {
            let size_of = |id: &str| {
                assets
                    .get(id)
                    .and_then(|a| a.pixmap.as_ref().map(|p| (p.width(), p.height())))
            };
            let images = for_worker.drawn_images(w, h, &size_of);
            assets.resources(&assets.with_template_images(&for_worker, images))
        })
        .await
        .unwrap_or_default();
        OnAir {
            scene,
            resources: Arc::new(resources),
            tweens,
            transition,
            templates: Templates {
                builds: self
                    .templates
                    .as_ref()
                    .map(|t| t.builds())
                    .unwrap_or_default(),
                runtime: self.templates.as_ref().map(|t| t.runtime().clone()),
            },
            inputs: Arc::new(self.inputs.as_ref().map(|i| i.feeds()).unwrap_or_default()),
        }
    }

    /// Puts the active scene on air again (at boot).
    pub async fn republish(&self, transition: Option<Transition>) -> Option<u64> {
        let scene = self.scene();
        let on_air = self.on_air(scene, Vec::new(), transition).await;
        let applied = self.slot.publish_on_air(on_air);
        self.wait_applied(applied).await
    }

    /// Prepares the active scene's images again for a new frame size (they are resized to
    /// the size they are drawn at); nothing to do for a scene without images.
    pub async fn resize(&self) {
        let scene = self.scene();
        if scene.layers.iter().all(|l| l.image.is_none())
            && scene.canvas.background.starts_with('#')
        {
            return;
        }
        let _serial = self.edits.lock().await;
        let on_air = self.on_air(self.scene(), Vec::new(), None).await;
        let applied = self.slot.publish_on_air(on_air);
        self.wait_applied(applied).await;
    }

    async fn wait_applied(&self, applied: tokio::sync::oneshot::Receiver<u64>) -> Option<u64> {
        if !self.state.state().is_live {
            return None;
        }
        match tokio::time::timeout(APPLY_TIMEOUT, applied).await {
            Ok(Ok(frame)) => Some(frame),
            _ => {
                tracing::warn!("scene change not confirmed on air within {APPLY_TIMEOUT:?}");
                None
            }
        }
    }

    async fn persist(&self) {
        let json = serde_json::to_vec(&*self.lock()).expect("scenes serialize");
        self.state.set_doc(KEY_SCENES, json).await;
    }

    /// Applies `edit` to a copy of the active scene; if the result validates, it goes on
    /// air. Returns the edit's own result, the new scene, and the first frame that shows it
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
            scene.validate(&self.lookup())?;
            self.check_template_params(&scene).await?;
            let on_air = self.on_air(scene.clone(), tweens, None).await;
            self.lock().active_mut().scene = scene.clone();
            self.persist().await;
            let applied = self.slot.publish_on_air(on_air);
            self.state.publish(Event::SceneUpdate(scene.clone()));
            (out, scene, applied)
        };
        let frame = self.wait_applied(applied).await;
        Ok((out, scene, frame))
    }

    /// Adds a named scene (not active).
    pub async fn create(&self, mut named: NamedScene) -> Result<NamedScene, ScenesError> {
        let _serial = self.edits.lock().await;
        check_named(&mut named, &self.lookup())?;
        {
            let mut book = self.lock();
            if book.scenes.iter().any(|s| s.id == named.id) {
                return Err(ScenesError::Conflict(format!(
                    "scene {:?} exists",
                    named.id
                )));
            }
            if book.scenes.len() >= MAX_SCENES {
                return Err(ScenesError::Conflict(format!(
                    "there are already {MAX_SCENES} scenes; delete some first"
                )));
            }
            book.scenes.push(named.clone());
        }
        self.persist().await;
        Ok(named)
    }

    /// A fresh scene id (`scene-N`).
    pub fn fresh_id(&self) -> String {
        let book = self.lock();
        (1..)
            .map(|n| format!("scene-{n}"))
            .find(|id| book.scenes.iter().all(|s| &s.id != id))
            .expect("an unused id")
    }

    /// Replaces a named scene; the active one goes on air at once. Returns the first frame
    /// showing it when it is the active one and the stream is live.
    pub async fn replace(
        &self,
        mut named: NamedScene,
    ) -> Result<(NamedScene, Option<u64>), ScenesError> {
        let applied = {
            let _serial = self.edits.lock().await;
            check_named(&mut named, &self.lookup())?;
            let active = {
                let mut book = self.lock();
                let is_active = book.active == named.id;
                let slot = book
                    .scenes
                    .iter_mut()
                    .find(|s| s.id == named.id)
                    .ok_or_else(|| ScenesError::NotFound(named.id.clone()))?;
                *slot = named.clone();
                is_active
            };
            self.persist().await;
            if active {
                let on_air = self.on_air(named.scene.clone(), Vec::new(), None).await;
                let applied = self.slot.publish_on_air(on_air);
                self.state.publish(Event::SceneUpdate(named.scene.clone()));
                Some(applied)
            } else {
                None
            }
        };
        let frame = match applied {
            Some(a) => self.wait_applied(a).await,
            None => None,
        };
        Ok((named, frame))
    }

    /// Deletes a named scene that is not active.
    pub async fn delete(&self, id: &str) -> Result<(), ScenesError> {
        let _serial = self.edits.lock().await;
        {
            let mut book = self.lock();
            if book.active == id {
                return Err(ScenesError::Conflict(format!(
                    "scene {id:?} is on air; activate another scene first"
                )));
            }
            let before = book.scenes.len();
            book.scenes.retain(|s| s.id != id);
            if book.scenes.len() == before {
                return Err(ScenesError::NotFound(id.to_string()));
            }
        }
        self.persist().await;
        Ok(())
    }

    /// Puts a named scene on air with a transition; returns the first frame of the
    /// transition.
    pub async fn activate(
        &self,
        id: &str,
        transition: Transition,
    ) -> Result<(Scene, Option<u64>), ScenesError> {
        let (scene, applied) = {
            let _serial = self.edits.lock().await;
            let scene = self
                .get(id)
                .ok_or_else(|| ScenesError::NotFound(id.to_string()))?
                .scene;
            let on_air = self
                .on_air(scene.clone(), Vec::new(), Some(transition))
                .await;
            self.lock().active = id.to_string();
            self.persist().await;
            let applied = self.slot.publish_on_air(on_air);
            self.state.publish(Event::SceneUpdate(scene.clone()));
            (scene, applied)
        };
        Ok((scene, self.wait_applied(applied).await))
    }

    /// Deletes an asset unless a scene uses it (checked under the edit lock, so no edit can
    /// start using it meanwhile).
    pub async fn delete_asset(&self, id: &str) -> Result<AssetInfo, AssetDeleteError> {
        let _serial = self.edits.lock().await;
        let asset = self
            .assets
            .get(id)
            .ok_or_else(|| AssetError::NotFound(id.to_string()))?;
        let family = asset.info.family.clone();
        let mut users = Vec::new();
        for named in &self.lock().scenes {
            if named.scene.canvas.background == id {
                users.push(format!("{}/canvas", named.id));
            }
            for l in &named.scene.layers {
                let image = l.image.as_ref().is_some_and(|i| i.asset == id);
                let font = match (
                    &family,
                    l.text.as_ref().and_then(|t| t.font_family.as_ref()),
                ) {
                    (Some(f), Some(used)) => f.eq_ignore_ascii_case(used),
                    _ => false,
                };
                if image || font {
                    users.push(format!("{}/{}", named.id, l.id));
                }
            }
        }
        // Another upload of the same family keeps its layers drawable.
        if let Some(f) = &family
            && !users.is_empty()
            && self.assets.list().iter().any(|a| {
                a.id != id
                    && a.family
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(f))
            })
        {
            users.clear();
        }
        if !users.is_empty() {
            return Err(AssetDeleteError::InUse {
                id: id.to_string(),
                users: users.join(", "),
            });
        }
        Ok(self.assets.delete(id).await?)
    }
}

fn check_named(named: &mut NamedScene, assets: &dyn AssetLookup) -> Result<(), SceneError> {
    if !valid_id(&named.id) {
        return Err(SceneError::OutOfRange {
            field: "id".into(),
            reason: "1 to 64 of A-Z a-z 0-9 _ -".into(),
        });
    }
    if named.name.is_empty() {
        named.name = named.id.clone();
    }
    if named.name.len() > 256 {
        return Err(SceneError::OutOfRange {
            field: "name".into(),
            reason: "at most 256 bytes".into(),
        });
    }
    named.scene.validate(assets)
}

fn check_book(book: &Book, assets: &dyn AssetLookup) -> Result<(), SceneError> {
    if !book.scenes.iter().any(|s| s.id == book.active) {
        return Err(SceneError::OutOfRange {
            field: "active".into(),
            reason: "names no scene".into(),
        });
    }
    for s in &book.scenes {
        s.scene.validate(assets)?;
    }
    Ok(())
}

/// Whether template `build` accepts `params` (JSON text): a scratch instance is configured
/// with them, as a layer's would be, and its refusal (or fault) is the message. Blocking:
/// off the render thread and off tokio's workers.
pub(crate) fn template_accepts(
    runtime: &Arc<sm_plugin_host::Runtime>,
    build: &Arc<sm_plugin_host::Build>,
    params: &str,
) -> Result<(), String> {
    let budget = runtime.limits().setup_budget;
    let verdict = runtime
        .instantiate(build, Arc::default())
        .and_then(|mut scratch| scratch.configure(params, budget));
    match verdict {
        Ok(result) => result,
        Err(fault) => Err(format!("the template faulted while configuring: {fault}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm_scene::NoAssets;

    #[test]
    fn the_default_scene_is_valid() {
        default_scene().validate(&NoAssets).unwrap();
    }
}
