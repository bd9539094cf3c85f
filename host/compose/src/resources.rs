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

    /// Adds a copy of image `asset` prepared at `width` × `height`.
    pub fn add_sized(&mut self, asset: &str, width: u32, height: u32, image: Arc<Pixmap>) {
        self.sized.insert((asset.to_string(), width, height), image);
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
