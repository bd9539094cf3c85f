//! Thumbnails for the console: small copies of an image asset (PNG, which keeps its
//! transparency) and of an input's latest picture (JPEG). Made on request, on a blocking
//! worker, from pictures the server already holds: never on the render thread, and never by
//! decoding anything again.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use tiny_skia::Pixmap;

/// The box a thumbnail fits in (16:9, enough for a 2× display at the console's card size).
pub const MAX_WIDTH: u32 = 320;
/// See [`MAX_WIDTH`].
pub const MAX_HEIGHT: u32 = 180;

/// JPEG quality of input thumbnails.
const JPEG_QUALITY: u8 = 75;

/// The size `width` × `height` takes inside `max_w` × `max_h` with its aspect kept, never
/// enlarged and never below 1 × 1.
pub fn fitted(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    if width <= max_w && height <= max_h {
        return (width.max(1), height.max(1));
    }
    let scale = (f64::from(max_w) / f64::from(width)).min(f64::from(max_h) / f64::from(height));
    let w = (f64::from(width) * scale).round() as u32;
    let h = (f64::from(height) * scale).round() as u32;
    (w.clamp(1, max_w), h.clamp(1, max_h))
}

/// The region `part` (`left, top, width, height`) of a premultiplied `src`, scaled to fit
/// in [`MAX_WIDTH`] × [`MAX_HEIGHT`]. `None` when the region is empty or outside `src`.
pub fn shrink(src: &Pixmap, part: (u32, u32, u32, u32)) -> Option<Pixmap> {
    let (left, top, width, height) = part;
    if width == 0
        || height == 0
        || left.checked_add(width)? > src.width()
        || top.checked_add(height)? > src.height()
    {
        return None;
    }
    let (w, h) = fitted(width, height, MAX_WIDTH, MAX_HEIGHT);
    if (w, h) == (width, height) {
        // Small enough already: the region as it is (no filter rounding).
        let mut out = Pixmap::new(w, h)?;
        let (row, stride) = (w as usize * 4, src.width() as usize * 4);
        for (y, dst) in out.data_mut().chunks_exact_mut(row).enumerate() {
            let at = (top as usize + y) * stride + left as usize * 4;
            dst.copy_from_slice(&src.data()[at..at + row]);
        }
        return Some(out);
    }
    scale(&mut Resizer::new(), src, part, w, h)
}

/// A premultiplied copy of the region `part` of `src` at `w` × `h` (Catmull-Rom, on
/// premultiplied pixels, so transparent edges do not bleed colour).
pub fn scale(
    resizer: &mut Resizer,
    src: &Pixmap,
    (left, top, width, height): (u32, u32, u32, u32),
    w: u32,
    h: u32,
) -> Option<Pixmap> {
    let src_ref = ImageRef::new(src.width(), src.height(), src.data(), PixelType::U8x4).ok()?;
    let mut out = Pixmap::new(w, h)?;
    let mut dst = Image::from_slice_u8(w, h, out.data_mut(), PixelType::U8x4).ok()?;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom))
        .crop(
            f64::from(left),
            f64::from(top),
            f64::from(width),
            f64::from(height),
        );
    resizer.resize(&src_ref, &mut dst, &options).ok()?;
    Some(out)
}

/// `pixmap` as a PNG (straight alpha).
pub fn png(pixmap: &Pixmap) -> Result<Vec<u8>, String> {
    pixmap.encode_png().map_err(|e| e.to_string())
}

/// `pixmap` as a JPEG: an opaque picture, where transparent pixels come out black.
pub fn jpeg(pixmap: &Pixmap) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let (w, h) = (
        u16::try_from(pixmap.width()).map_err(|e| e.to_string())?,
        u16::try_from(pixmap.height()).map_err(|e| e.to_string())?,
    );
    // Premultiplied pixels are the straight ones wherever the picture is opaque.
    jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
        .encode(pixmap.data(), w, h, jpeg_encoder::ColorType::Rgba)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fit_the_box_with_their_aspect_and_are_never_enlarged() {
        assert_eq!(fitted(1920, 1080, 320, 180), (320, 180));
        assert_eq!(fitted(1080, 1920, 320, 180), (101, 180));
        assert_eq!(fitted(4000, 10, 320, 180), (320, 1));
        assert_eq!(fitted(64, 48, 320, 180), (64, 48));
        assert_eq!(fitted(0, 0, 320, 180), (1, 1));
    }

    #[test]
    fn a_region_is_shrunk_and_encoded() {
        let mut src = Pixmap::new(1280, 720).unwrap();
        src.fill(tiny_skia::Color::from_rgba8(0, 0, 255, 255));
        // The right half red: only it is kept.
        let red = tiny_skia::Rect::from_xywh(640.0, 0.0, 640.0, 720.0).unwrap();
        let mut paint = tiny_skia::Paint::default();
        paint.set_color_rgba8(255, 0, 0, 255);
        src.fill_rect(red, &paint, tiny_skia::Transform::identity(), None);
        let small = shrink(&src, (640, 0, 640, 720)).unwrap();
        assert_eq!((small.width(), small.height()), (160, 180));
        let px = small.pixel(80, 90).unwrap();
        assert_eq!((px.red(), px.blue(), px.alpha()), (255, 0, 255));
        assert!(shrink(&src, (1200, 0, 100, 10)).is_none(), "outside");
        assert!(shrink(&src, (0, 0, 0, 10)).is_none(), "empty");
        // A small region is copied as it is.
        let exact = shrink(&src, (630, 10, 20, 4)).unwrap();
        assert_eq!((exact.width(), exact.height()), (20, 4));
        assert_eq!(exact.pixel(9, 0).unwrap().blue(), 255);
        assert_eq!(exact.pixel(10, 3).unwrap().red(), 255);

        let jpeg = jpeg(&small).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        let back = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        let p = back.get_pixel(80, 90);
        assert!(p[0] > 230 && p[2] < 30, "{p:?}");
        let png = png(&small).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
