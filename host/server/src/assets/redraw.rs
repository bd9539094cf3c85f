//! Rasters from asset loaders drawn again at the size a layer shows them, so that a picture
//! a loader can draw at any size (an SVG it could not express as draw commands) stays sharp
//! when a layer makes it larger or smaller.
//!
//! When a scene goes on air and an image layer shows such a still at another size than its
//! own, the layer first shows it scaled, and the loader is asked, off the render clock and
//! one decode at a time, to decode the upload again with the options
//! `{"width": W, "height": H}`. A picture of exactly that size joins the copies prepared at
//! drawn sizes (counted in the decoded budget, least recently used evicted first) and the
//! scene is put on air again with it. A loader that answers anything else, or fails, is not
//! asked again for that asset: the picture it made first is scaled. One size of one asset
//! is asked for at most once a minute, so copies evicted for want of room are not redrawn
//! over and over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sm_plugin_host::loader::{DecodeError, Decoded, LoaderBuild};
use sm_plugin_host::loaders::LoaderRegistry;
use tokio::sync::watch;

use tiny_skia::Pixmap;

use super::{
    Asset, DecodedBudget, Reservation, SizedCache, off_the_clock, picture_pixmap, reserve_evicting,
};

/// How long one size of one asset is not asked for again.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(60);

/// Most sizes remembered as asked.
const MAX_ASKED: usize = 1024;

/// What an asset a loader decoded to a still needs to be drawn again at another size.
pub struct Redraw {
    /// The loader id (for the log).
    loader: String,
    /// The exact loader version that decoded it.
    build: Arc<LoaderBuild>,
    /// The upload.
    data: Bytes,
    /// Set when the loader answered a request for a size with anything else.
    declined: AtomicBool,
}

impl Redraw {
    /// The still `data` that `build` (loader `loader`) decoded.
    pub fn new(loader: &str, build: Arc<LoaderBuild>, data: Bytes) -> Self {
        Self {
            loader: loader.to_owned(),
            build,
            data,
            declined: AtomicBool::new(false),
        }
    }

    /// Whether the loader may be asked for another size.
    pub fn wanted(&self) -> bool {
        !self.declined.load(Ordering::Relaxed)
    }
}

/// One size of one asset: (id, width, height).
type Key = (String, u32, u32);

/// Asks loaders for their stills at drawn sizes and keeps what they answer.
pub struct Redrawer {
    sized: Arc<Mutex<SizedCache>>,
    budget: Arc<DecodedBudget>,
    /// When each size was last asked for.
    asked: Mutex<HashMap<Key, Instant>>,
    /// Counts the pictures redrawn; a change means the scene should go on air again.
    ready: watch::Sender<u64>,
}

impl Redrawer {
    pub(super) fn new(sized: Arc<Mutex<SizedCache>>, budget: Arc<DecodedBudget>) -> Self {
        Self {
            sized,
            budget,
            asked: Mutex::default(),
            ready: watch::Sender::new(0),
        }
    }

    /// Changes whenever a picture was redrawn at a new size.
    pub fn ready(&self) -> watch::Receiver<u64> {
        self.ready.subscribe()
    }

    /// Asks for `asset` at `w`×`h` in the background, unless that size is too large for a
    /// decode or was asked for within the last minute. Does nothing outside a Tokio runtime
    /// (offline renders).
    pub(super) fn ask(
        self: &Arc<Self>,
        registry: &Arc<LoaderRegistry>,
        asset: &Arc<Asset>,
        (w, h): (u32, u32),
    ) {
        if u64::from(w) * u64::from(h) > registry.limits().max_pixels {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let key = (asset.info.id.clone(), w, h);
        {
            let mut asked = self.asked.lock().expect("redraw lock");
            let now = Instant::now();
            if asked
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < ASK_AGAIN_AFTER)
            {
                return;
            }
            if asked.len() >= MAX_ASKED {
                asked.retain(|_, t| now.duration_since(*t) < ASK_AGAIN_AFTER);
                if asked.len() >= MAX_ASKED {
                    return;
                }
            }
            asked.insert(key.clone(), now);
        }
        let (me, registry, asset) = (self.clone(), registry.clone(), Arc::downgrade(asset));
        runtime.spawn(off_the_clock(move || me.redraw(&registry, &asset, key)));
    }

    /// Decodes the asset again at the key's size and keeps the picture (blocking).
    fn redraw(&self, registry: &LoaderRegistry, asset: &Weak<Asset>, key: Key) {
        let Some(redrawn) = self.decode(registry, asset, &key) else {
            return;
        };
        // Deleted while it was drawn: nothing to keep.
        if asset.strong_count() == 0 {
            return;
        }
        let (pixmap, reservation) = redrawn;
        self.sized
            .lock()
            .expect("sized cache lock")
            .insert(key, pixmap, reservation);
        self.ready.send_modify(|n| *n += 1);
    }

    /// The loader's picture of the asset at exactly the key's size, its share of the budget
    /// taken; `None` when there is none (and the loader is not asked again when it answered
    /// otherwise or failed).
    fn decode(
        &self,
        registry: &LoaderRegistry,
        asset: &Weak<Asset>,
        (id, w, h): &Key,
    ) -> Option<(Arc<Pixmap>, Reservation)> {
        let asset = asset.upgrade()?;
        let r = asset.redraw.as_ref().filter(|r| r.wanted())?;
        let options = format!(r#"{{"width":{w},"height":{h}}}"#);
        let answer = registry.one_at_a_time(|| {
            r.build
                .decode(&r.data, &options, registry.limits(), |bytes| {
                    reserve_evicting(&self.budget, &self.sized, bytes).ok_or(())
                })
        });
        let declined = |why: &str| {
            r.declined.store(true, Ordering::Relaxed);
            tracing::info!(
                loader = %r.loader,
                asset = %id,
                "not drawn again at {w}x{h}: {why}; its own picture is scaled"
            );
            None
        };
        match answer {
            Ok((Decoded::Still(p), reservation)) if (p.width, p.height) == (*w, *h) => {
                Some((picture_pixmap(p)?, reservation))
            }
            Ok(_) => declined("the loader answered another size or kind"),
            Err(DecodeError::Fault(f)) => declined(&format!("the loader failed: {f}")),
            // The decoded budget has no room: scaled for now, asked again later.
            Err(DecodeError::Refused(())) => None,
        }
    }
}
