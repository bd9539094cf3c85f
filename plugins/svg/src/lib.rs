//! `svg-loader`: an asset loader (world `asset-loader`) for SVG images, media type
//! `image/svg+xml`.
//!
//! An SVG is parsed with `usvg` and, when it maps onto the host's draw commands, handed
//! over as a vector drawing ([`Decoded::Drawing`]) at its natural size, which the host
//! scales without loss wherever it draws it. When it does not, it is rendered with `resvg`
//! and handed over as a raster ([`Decoded::Still`]); the server log says why (one info
//! line). What maps and what does not is listed in the docs of [`map`]; in short, groups
//! with transforms and opacity, and paths filled (non-zero) or stroked with a colour or a
//! linear or radial gradient map; embedded images, filters, masks, clip paths, patterns,
//! dashes, even-odd fills, gradients that repeat or reflect or have a focal point, blend
//! modes and drawings too large for the host's limits fall back.
//!
//! # Options
//!
//! The upload's options (a JSON object, all optional) size the raster fallback only:
//! `scale` (default 1.0) multiplies the natural size; `width` and `height`, in pixels,
//! give the size outright, the other side following the aspect ratio when only one is
//! given. A raster is at most [`raster::MAX_PIXELS`] (16 777 216) pixels; a larger one is
//! refused. A drawing always has the natural size. The server uses `width` and `height` to
//! draw a raster again at the size an image layer shows it, so it stays sharp.
//!
//! # Limits
//!
//! The loader runs in the host's sandbox: no files, no network, no fonts. So:
//!
//! - **text is dropped**: `usvg` is built without its text support (which needs fonts),
//!   and `<text>` elements are left out of both the drawing and the raster; convert text
//!   to paths in the editor before uploading;
//! - external references (`<image href="logo.png">`, external `<use>`) are ignored;
//!   images embedded as `data:` URLs are kept (PNG, JPEG, GIF, WebP up to 16 777 216
//!   pixels, and nested SVG within the element budget below), and fall back to a raster;
//! - the work is bounded before `usvg` builds its tree: at most
//!   [`parse::MAX_INPUT_BYTES`] (8 MiB) of input, no compressed SVG (`.svgz`), at most
//!   [`parse::MAX_XML_NODES`] XML nodes nested at most [`parse::MAX_DEPTH`] deep, and at
//!   most [`parse::MAX_ELEMENTS`] elements once every `<use>` is expanded (a few nested
//!   `<use>`s can otherwise stand for billions of elements). Markers are instantiated
//!   without such a check; the host's time budget and memory cap bound them.

pub mod map;
pub mod parse;
pub mod raster;

use serde::Deserialize;
use stream_manager_sdk::loader::{Decoded, Loader, LoaderInfo};

pub use map::Unmappable;

/// The options of a decode; see [Options](crate#options).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Options {
    /// Multiplies the natural size of a raster fallback (default 1.0); finite and above 0.
    pub scale: Option<f64>,
    /// Width of a raster fallback in pixels, at least 1.
    pub width: Option<u32>,
    /// Height of a raster fallback in pixels, at least 1.
    pub height: Option<u32>,
}

/// The loader.
pub struct SvgLoader;

impl Loader for SvgLoader {
    type Options = Options;

    fn info() -> LoaderInfo {
        LoaderInfo {
            name: "svg".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            media_types: vec!["image/svg+xml".into()],
        }
    }

    fn decode(bytes: &[u8], options: Options) -> Result<Decoded, String> {
        let (decoded, fallback) = decode_svg(bytes, &options)?;
        if let (Decoded::Still(image), Some(why)) = (&decoded, fallback) {
            stream_manager_sdk::log::info(&format!(
                "drawn as a {}x{} raster: {why}",
                image.width, image.height
            ));
        }
        Ok(decoded)
    }
}

// The component's exports, for the guest only: natively the crate is a library (tests, the
// `decode_time` example of the benchmarks).
#[cfg(target_arch = "wasm32")]
stream_manager_sdk::export_loader!(SvgLoader);

/// Decodes an SVG: a drawing when it maps onto the host's draw commands, else a raster
/// with the reason it does not map. Pure (no host calls), for tests.
pub fn decode_svg(
    bytes: &[u8],
    options: &Options,
) -> Result<(Decoded, Option<Unmappable>), String> {
    let tree = parse::parse(bytes)?;
    let size = tree.size();
    let (width, height) = (size.width(), size.height());
    if !(width.is_finite() && height.is_finite() && width > 0.0 && height > 0.0) {
        return Err(format!(
            "the SVG's size ({width}x{height}) is not finite and above 0"
        ));
    }
    // Bad options are refused whatever the SVG holds; the raster's size only matters for
    // a raster.
    raster::check_options(options)?;
    let why = match map::map(&tree) {
        Ok(ops) => {
            let commands = map::draw(&ops);
            if commands.dropped() == 0 {
                return Ok((
                    Decoded::Drawing {
                        width,
                        height,
                        commands,
                    },
                    None,
                ));
            }
            Unmappable::TooLarge("the host's limits for a drawing")
        }
        Err(why) => why,
    };
    let (raster_width, raster_height) = raster::size(width, height, options)?;
    let image = raster::render(&tree, raster_width, raster_height)?;
    Ok((Decoded::Still(image), Some(why)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_manager_sdk::Color;

    fn decode(svg: &str, options: &Options) -> Result<(Decoded, Option<Unmappable>), String> {
        decode_svg(svg.as_bytes(), options)
    }

    #[test]
    fn a_logo_is_a_drawing_at_its_natural_size() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">
            <rect x="10" y="10" width="80" height="80" fill="#00ff00"/>
            <circle cx="150" cy="50" r="40" fill="#ff0000"/>
        </svg>"##;
        match decode(svg, &Options::default()).unwrap() {
            (
                Decoded::Drawing {
                    width,
                    height,
                    commands,
                },
                None,
            ) => {
                assert_eq!((width, height), (200.0, 100.0));
                assert_eq!(commands.len(), 2);
                assert_eq!(commands.dropped(), 0);
            }
            other => panic!("expected a drawing, got {other:?}"),
        }
    }

    #[test]
    fn a_filter_falls_back_to_a_raster_of_the_asked_size() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">
            <filter id="f"><feFlood flood-color="#ff0000"/></filter>
            <rect width="40" height="20" fill="#0000ff" filter="url(#f)"/>
        </svg>"##;
        let options = Options {
            scale: Some(2.0),
            ..Options::default()
        };
        match decode(svg, &options).unwrap() {
            (Decoded::Still(image), Some(Unmappable::Filter)) => {
                assert_eq!((image.width, image.height), (80, 40));
                assert_eq!(image.pixel(40, 20), Some(Color::rgb(255, 0, 0)));
            }
            other => panic!("expected a raster, got {other:?}"),
        }
    }

    #[test]
    fn an_embedded_image_falls_back_to_a_raster_of_the_asked_size() {
        // A green SVG as a data URL (base64 of `<svg xmlns=... width="4" height="4">
        // <rect width="4" height="4" fill="#00ff00"/></svg>`), over a red background.
        let green = "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHdpZHRoPSI0IiBoZWlnaHQ9IjQiPjxyZWN0IHdpZHRoPSI0IiBoZWlnaHQ9IjQiIGZpbGw9IiMwMGZmMDAiLz48L3N2Zz4=";
        let svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50">
            <rect width="100" height="50" fill="#ff0000"/>
            <image x="50" width="50" height="50" href="data:image/svg+xml;base64,{green}"/>
            </svg>"##
        );
        let options = Options {
            width: Some(40),
            ..Options::default()
        };
        match decode(&svg, &options).unwrap() {
            (Decoded::Still(image), Some(Unmappable::Image)) => {
                assert_eq!((image.width, image.height), (40, 20));
                assert_eq!(image.pixel(10, 10), Some(Color::rgb(255, 0, 0)));
                assert_eq!(image.pixel(30, 10), Some(Color::rgb(0, 255, 0)));
            }
            other => panic!("expected a raster, got {other:?}"),
        }
    }

    #[test]
    fn a_raster_too_large_is_refused() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="5000" height="5000">
            <rect width="10" height="10" fill="#ff0000" filter="url(#f)"/>
            <filter id="f"><feFlood flood-color="#ff0000"/></filter></svg>"##;
        let err = decode(svg, &Options::default()).unwrap_err();
        assert!(err.contains("16777216"), "{err}");
        // The same size as a drawing needs no raster.
        let plain = r##"<svg xmlns="http://www.w3.org/2000/svg" width="5000" height="5000">
            <rect width="10" height="10" fill="#ff0000"/></svg>"##;
        assert!(matches!(
            decode(plain, &Options::default()),
            Ok((Decoded::Drawing { .. }, None))
        ));
        // Bad options are refused either way.
        let bad = Options {
            scale: Some(-1.0),
            ..Options::default()
        };
        assert!(decode(plain, &bad).unwrap_err().contains("scale"));
    }

    #[test]
    fn malformed_svg_is_an_error() {
        for bad in [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\"",
            "not xml at all",
            "<html><body/></html>",
            "",
        ] {
            let err = decode(bad, &Options::default()).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(decode_svg(&[0xff, 0xfe, 0x3c], &Options::default()).is_err());
    }
}
