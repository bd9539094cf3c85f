//! What a scene needs to be drawn besides its commands: images (originals and copies
//! prepared at drawn sizes) and uploaded fonts, read by the rasterizer through
//! [`ImageSource`] and by the text shaper.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use tiny_skia::Pixmap;

use crate::commands::ImageSource;

/// What a scene needs to be drawn: the images it names (originals and copies at the sizes
/// its layers draw them) and the uploaded fonts. Built off the render thread when a scene
/// goes on air; the render thread only reads it.
#[derive(Default)]
pub struct Resources {
    images: HashMap<String, Arc<Pixmap>>,
    /// Images without a transparent pixel.
    opaque: HashSet<String>,
    sized: HashMap<(String, u32, u32), Arc<Pixmap>>,
    animations: HashMap<String, Arc<Animation>>,
    drawings: HashMap<String, Arc<Drawing>>,
    /// Uploaded font files.
    pub fonts: Vec<Bytes>,
    /// Family names of the uploaded fonts (lower case).
    pub families: Vec<String>,
}

impl ImageSource for Resources {
    fn image(&self, asset: &str) -> Option<&Pixmap> {
        self.images.get(asset).map(|p| &**p)
    }

    fn sized(&self, asset: &str, width: u32, height: u32) -> Option<&Pixmap> {
        // The key is owned; a lookup allocates only when a layer is rasterized.
        self.sized
            .get(&(asset.to_string(), width, height))
            .map(|p| &**p)
    }

    fn drawing(&self, asset: &str) -> Option<&Drawing> {
        self.drawings.get(asset).map(|d| &**d)
    }
}

/// An animated image: frames of one size with how long each shows. Each frame is also an
/// image of its own, named [`Animation::frame_id`] (`{asset}@{index}`, which no asset id can
/// be), so layers switch frames by naming another image and prepared copies work per frame.
#[derive(Debug)]
pub struct Animation {
    /// The frames, premultiplied.
    pub frames: Vec<Arc<Pixmap>>,
    /// The image id of each frame.
    pub ids: Vec<String>,
    /// When each frame ends, in milliseconds from the start of the animation.
    ends: Vec<u64>,
}

impl Animation {
    /// The animation of `asset` from frames and their durations in milliseconds (each at
    /// least 1). `None` without frames or when they differ in size.
    pub fn new(asset: &str, frames: Vec<(Arc<Pixmap>, u32)>) -> Option<Self> {
        let first = frames.first()?.0.clone();
        if frames
            .iter()
            .any(|(p, _)| (p.width(), p.height()) != (first.width(), first.height()))
        {
            return None;
        }
        let mut end = 0u64;
        let ends = frames
            .iter()
            .map(|(_, d)| {
                end += u64::from((*d).max(1));
                end
            })
            .collect();
        Some(Self {
            ids: (0..frames.len())
                .map(|i| Self::frame_id(asset, i))
                .collect(),
            frames: frames.into_iter().map(|(p, _)| p).collect(),
            ends,
        })
    }

    /// The image id of frame `index` of `asset`.
    pub fn frame_id(asset: &str, index: usize) -> String {
        format!("{asset}@{index}")
    }

    /// Length of one run through all frames, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// The frame showing `ms` after the start: looping, or held on the last frame.
    pub fn frame_at(&self, ms: u64, looping: bool) -> usize {
        let total = self.duration_ms().max(1);
        let t = if looping {
            ms % total
        } else if ms >= total {
            return self.ends.len().saturating_sub(1);
        } else {
            ms
        };
        self.ends.partition_point(|end| *end <= t)
    }
}

/// A vector image: draw commands in its own coordinates, `(0, 0)`–`(width, height)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawing {
    /// Natural width.
    pub width: f32,
    /// Natural height.
    pub height: f32,
    /// The commands (validated).
    pub commands: Vec<crate::commands::DrawCommand>,
}

impl Resources {
    /// Adds an uploaded font of `family`.
    pub fn add_font(&mut self, font: Bytes, family: &str) {
        self.fonts.push(font);
        self.families.push(family.to_ascii_lowercase());
    }

    /// Adds image `asset` at its own size; `opaque` when it has no transparent pixel.
    pub fn add_image(&mut self, asset: &str, image: Arc<Pixmap>, opaque: bool) {
        if opaque {
            self.opaque.insert(asset.to_string());
        }
        self.images.insert(asset.to_string(), image);
    }

    /// Adds animated image `asset`: its first frame as the image `asset`, and every frame
    /// as the image of its [`Animation::frame_id`].
    pub fn add_animation(&mut self, asset: &str, animation: Arc<Animation>, opaque: bool) {
        for (id, frame) in animation.ids.iter().zip(&animation.frames) {
            self.add_image(id, frame.clone(), opaque);
        }
        if let Some(first) = animation.frames.first() {
            self.add_image(asset, first.clone(), opaque);
        }
        self.animations.insert(asset.to_string(), animation);
    }

    /// The animation of `asset`, if it is animated.
    pub fn animation(&self, asset: &str) -> Option<&Arc<Animation>> {
        self.animations.get(asset)
    }

    /// Adds vector image `asset`, with `raster` drawn at its natural size (what image
    /// commands of templates draw).
    pub fn add_drawing(&mut self, asset: &str, drawing: Arc<Drawing>, raster: Arc<Pixmap>) {
        self.add_image(asset, raster, false);
        self.drawings.insert(asset.to_string(), drawing);
    }

    /// Adds a copy of image `asset` prepared at `width` × `height`.
    pub fn add_sized(&mut self, asset: &str, width: u32, height: u32, image: Arc<Pixmap>) {
        self.sized.insert((asset.to_string(), width, height), image);
    }

    /// Whether `other` has the very same pictures of image `asset` as this one: the
    /// original and every copy prepared at a drawn size (a layer drawn from one of them can
    /// keep its raster).
    pub fn same_image(&self, other: &Resources, asset: &str) -> bool {
        let same = |a: Option<&Arc<Pixmap>>, b: Option<&Arc<Pixmap>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        let copies = |r: &Resources| r.sized.keys().filter(|(a, ..)| a == asset).count();
        same(self.images.get(asset), other.images.get(asset))
            && copies(self) == copies(other)
            && self
                .sized
                .iter()
                .filter(|((a, ..), _)| a == asset)
                .all(|(key, p)| same(Some(p), other.sized.get(key)))
    }

    /// Width and height of the image `asset`, if the scene has it.
    pub fn image_size(&self, asset: &str) -> Option<(u32, u32)> {
        self.images.get(asset).map(|p| (p.width(), p.height()))
    }

    /// The image at exactly `width` × `height` (a prepared copy, or the original at that
    /// size) and whether it is opaque.
    pub fn prepared(&self, asset: &str, width: u32, height: u32) -> Option<(Arc<Pixmap>, bool)> {
        let image = self
            .sized
            .get(&(asset.to_string(), width, height))
            .or_else(|| {
                self.images
                    .get(asset)
                    .filter(|p| (p.width(), p.height()) == (width, height))
            })?;
        Some((image.clone(), self.opaque.contains(asset)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn animation_frames_follow_their_durations_looping_or_held() {
        let p = Arc::new(Pixmap::new(2, 2).unwrap());
        let a = Animation::new("gif", vec![(p.clone(), 100), (p.clone(), 50), (p, 250)]).unwrap();
        assert_eq!(a.duration_ms(), 400);
        assert_eq!(a.ids[2], "gif@2");
        let at = |ms, looping| a.frame_at(ms, looping);
        assert_eq!([at(0, true), at(99, true), at(100, true)], [0, 0, 1]);
        assert_eq!([at(149, true), at(150, true), at(399, true)], [1, 2, 2]);
        assert_eq!([at(400, true), at(1300, true)], [0, 1]);
        assert_eq!([at(400, false), at(10_000, false)], [2, 2]);
        let other = Arc::new(Pixmap::new(3, 2).unwrap());
        let mixed = vec![(Arc::new(Pixmap::new(2, 2).unwrap()), 10), (other, 10)];
        assert!(Animation::new("x", mixed).is_none());
        assert!(Animation::new("x", Vec::new()).is_none());
    }

    #[test]
    fn the_same_image_is_the_same_pictures_of_it() {
        let original = Arc::new(Pixmap::new(4, 2).unwrap());
        let copy = Arc::new(Pixmap::new(8, 4).unwrap());
        let with = |copy: Option<&Arc<Pixmap>>| {
            let mut r = Resources::default();
            r.add_image("logo", original.clone(), false);
            r.add_image("other", Arc::new(Pixmap::new(1, 1).unwrap()), false);
            if let Some(c) = copy {
                r.add_sized("logo", 8, 4, c.clone());
            }
            r
        };
        let plain = with(None);
        let sized = with(Some(&copy));
        assert!(plain.same_image(&with(None), "logo"));
        assert!(sized.same_image(&with(Some(&copy)), "logo"));
        assert!(!plain.same_image(&sized, "logo"), "a copy prepared since");
        assert!(!sized.same_image(&plain, "logo"), "a copy gone since");
        let redrawn = with(Some(&Arc::new(Pixmap::new(8, 4).unwrap())));
        assert!(
            !sized.same_image(&redrawn, "logo"),
            "another copy of the same size"
        );
        assert!(!plain.same_image(&with(None), "other"), "another original");
        assert!(plain.same_image(&Resources::default(), "none"));
    }
}
