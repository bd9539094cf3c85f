//! The raster fallback: an SVG rendered with `resvg` when it does not map onto the host's
//! draw commands.
//!
//! The size is chosen from the options (see the [crate docs](crate#options)) and checked
//! before a pixel is allocated: one raster of at most [`MAX_PIXELS`] pixels (64 MiB) is the
//! most this loader allocates, well within a loader's memory.

use resvg::tiny_skia;
use stream_manager_sdk::loader::Image;

use crate::Options;

/// Most pixels of a raster.
pub const MAX_PIXELS: u64 = 16_777_216;

/// The size of the raster of an SVG of natural size `width × height`, from the options:
/// `width`/`height` when given (the other side following the aspect ratio when only one
/// is), else the natural size times `scale` (default 1.0), rounded, at least 1 pixel.
pub fn size(width: f32, height: f32, options: &Options) -> Result<(u32, u32), String> {
    check_options(options)?;
    let (natural_w, natural_h) = (f64::from(width), f64::from(height));
    let scale = options.scale.unwrap_or(1.0);
    let (w, h) = match (options.width, options.height) {
        (Some(w), Some(h)) => (f64::from(w), f64::from(h)),
        (Some(w), None) => (f64::from(w), f64::from(w) * natural_h / natural_w),
        (None, Some(h)) => (f64::from(h) * natural_w / natural_h, f64::from(h)),
        (None, None) => (natural_w * scale, natural_h * scale),
    };
    let (w, h) = (w.round().max(1.0), h.round().max(1.0));
    if !(w.is_finite() && h.is_finite()) || w * h > MAX_PIXELS as f64 {
        return Err(format!(
            "a raster of {w}x{h} pixels is more than {MAX_PIXELS}: give a smaller scale, \
             width or height"
        ));
    }
    // Both below 2^24 now, as their product is.
    Ok((w as u32, h as u32))
}

/// Refuses options that give no size: a scale that is not a finite number above 0, a
/// width or height of 0.
pub fn check_options(options: &Options) -> Result<(), String> {
    if options.width == Some(0) || options.height == Some(0) {
        return Err("invalid options: width and height must be at least 1".to_owned());
    }
    match options.scale {
        Some(scale) if !(scale.is_finite() && scale > 0.0) => Err(format!(
            "invalid options: scale {scale} is not a finite number above 0"
        )),
        _ => Ok(()),
    }
}

/// Renders the tree into a `width × height` picture, stretched to it.
pub fn render(tree: &usvg::Tree, width: u32, height: u32) -> Result<Image, String> {
    let mut pixmap = tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| format!("cannot make a {width}x{height} raster"))?;
    let size = tree.size();
    let transform = tiny_skia::Transform::from_scale(
        width as f32 / size.width(),
        height as f32 / size.height(),
    );
    resvg::render(tree, transform, &mut pixmap.as_mut());
    // resvg draws premultiplied; the host takes straight alpha.
    Image::new(width, height, pixmap.take_demultiplied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(scale: Option<f64>, width: Option<u32>, height: Option<u32>) -> Options {
        Options {
            scale,
            width,
            height,
        }
    }

    #[test]
    fn the_size_follows_the_options() {
        assert_eq!(size(200.0, 100.0, &Options::default()), Ok((200, 100)));
        assert_eq!(
            size(200.0, 100.0, &options(Some(1.5), None, None)),
            Ok((300, 150))
        );
        assert_eq!(
            size(200.0, 100.0, &options(None, Some(50), None)),
            Ok((50, 25))
        );
        assert_eq!(
            size(200.0, 100.0, &options(None, None, Some(50))),
            Ok((100, 50))
        );
        assert_eq!(
            size(200.0, 100.0, &options(Some(9.0), Some(7), Some(3))),
            Ok((7, 3))
        );
        assert_eq!(size(0.2, 0.2, &Options::default()), Ok((1, 1)));
    }

    #[test]
    fn a_raster_too_large_or_bad_options_are_refused() {
        let err = size(200.0, 100.0, &options(Some(1000.0), None, None)).unwrap_err();
        assert!(
            err.contains("200000x100000") && err.contains("16777216"),
            "{err}"
        );
        assert!(size(4096.0, 4096.0, &Options::default()).is_ok());
        assert!(size(4097.0, 4096.0, &Options::default()).is_err());
        assert!(size(1.0, 1.0, &options(None, Some(1_000_000), None)).is_err());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                size(1.0, 1.0, &options(Some(bad), None, None)).is_err(),
                "{bad}"
            );
        }
        assert!(size(1.0, 1.0, &options(None, Some(0), None)).is_err());
    }
}
