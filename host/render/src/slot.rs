//! The hand-over point between the scene manager and the render thread: what goes on air
//! ([`OnAir`]) and the [`SceneSlot`] through which a new scene reaches the render thread at
//! a frame boundary and the API learns which frame first showed it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use sm_scene::{Scene, Transition, Tween};

/// What the render thread draws: a scene, the resources it needs, the animations and the
/// transition it starts with.
#[derive(Clone, Default)]
pub struct OnAir {
    /// The scene.
    pub scene: std::sync::Arc<Scene>,
    /// Its images and fonts.
    pub resources: std::sync::Arc<sm_compose::Resources>,
    /// Animations that start with it.
    pub tweens: Vec<Tween>,
    /// How it replaces the previous scene (`None`: an edit of the same scene, at once).
    pub transition: Option<Transition>,
    /// The templates its template layers use (current versions), and the runtime that
    /// runs them.
    pub templates: Templates,
    /// The live inputs its video layers show, by input id.
    pub inputs: std::sync::Arc<HashMap<String, std::sync::Arc<sm_compose::video::VideoFeed>>>,
}

/// What template layers need on the render thread: the current build of each template
/// the scene uses, and the runtime.
#[derive(Clone, Default)]
pub struct Templates {
    /// Builds by template id.
    pub builds: std::sync::Arc<HashMap<String, std::sync::Arc<sm_plugin_host::Build>>>,
    /// The runtime (none: template layers stay empty).
    pub runtime: Option<std::sync::Arc<sm_plugin_host::Runtime>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.builds.iter().map(|(id, b)| (id, &b.hash)))
            .finish()
    }
}

/// A waiter for the frame that first shows a scene version.
type Waiter = (u64, oneshot::Sender<u64>);

struct SlotInner {
    on_air: OnAir,
    version: u64,
    waiters: Vec<Waiter>,
}

/// The hand-over point between the Scene Manager and the render thread: the newest scene
/// with a version number, and the API callers waiting to learn the frame that shows it.
pub struct SceneSlot {
    inner: Mutex<SlotInner>,
    version: AtomicU64,
}

impl SceneSlot {
    /// A slot holding `scene` as version 1.
    pub fn new(scene: Scene) -> Self {
        Self {
            inner: Mutex::new(SlotInner {
                on_air: OnAir {
                    scene: std::sync::Arc::new(scene),
                    ..OnAir::default()
                },
                version: 1,
                waiters: Vec::new(),
            }),
            version: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotInner> {
        self.inner.lock().expect("scene slot lock")
    }

    /// Installs a new scene (no assets, no animation); the receiver yields the number of
    /// the first frame showing it.
    pub fn publish(&self, scene: Scene) -> oneshot::Receiver<u64> {
        self.publish_on_air(OnAir {
            scene: std::sync::Arc::new(scene),
            ..OnAir::default()
        })
    }

    /// Installs what goes on air next; the receiver yields the number of the first frame
    /// showing it.
    pub fn publish_on_air(&self, on_air: OnAir) -> oneshot::Receiver<u64> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        inner.version += 1;
        inner.on_air = on_air;
        let v = inner.version;
        inner.waiters.push((v, tx));
        self.version.store(v, Ordering::Release);
        rx
    }

    /// The current version, cheaply (the render thread checks it every frame).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current scene and its version.
    pub fn current(&self) -> (u64, std::sync::Arc<Scene>) {
        let inner = self.lock();
        (inner.version, inner.on_air.scene.clone())
    }

    /// Everything on air and its version.
    pub fn on_air(&self) -> (u64, OnAir) {
        let inner = self.lock();
        (inner.version, inner.on_air.clone())
    }

    /// Tells everyone waiting for `version` or older that frame `frame` shows it.
    pub fn applied(&self, version: u64, frame: u64) {
        let mut inner = self.lock();
        let waiters = std::mem::take(&mut inner.waiters);
        for (v, tx) in waiters {
            if v <= version {
                let _ = tx.send(frame);
            } else {
                inner.waiters.push((v, tx));
            }
        }
    }

    /// Drops waiters (the stream stopped: nothing will show their change).
    pub fn abandon_waiters(&self) {
        self.lock().waiters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_reports_the_frame_that_shows_a_version() {
        let slot = SceneSlot::new(Scene::default());
        let mut first = slot.publish(Scene::default());
        let mut second = slot.publish(Scene::default());
        slot.applied(2, 40);
        assert_eq!(first.try_recv().unwrap(), 40);
        assert!(second.try_recv().is_err());
        slot.applied(3, 41);
        assert_eq!(second.try_recv().unwrap(), 41);
    }
}
