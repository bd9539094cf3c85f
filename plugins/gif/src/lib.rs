//! `gif-loader`: an asset loader (world `asset-loader`) for animations: GIF
//! (`image/gif`), APNG (`image/apng`, and `image/png`, which covers both) and WebP
//! (`image/webp`), decoded with the `image` crate. The format is told by the file's first
//! bytes, not by the media type.
//!
//! An animation of more than one frame is handed over as [`Decoded::Animation`], each
//! frame composited onto the whole canvas (disposal and blending applied) with its
//! duration in milliseconds; a file of one frame, or a PNG or WebP that is not animated,
//! as [`Decoded::Still`]. A GIF frame of 0 or 10 ms shows for 100 ms, as browsers do
//! (such GIFs were made for browsers that did).
//!
//! # Options
//!
//! `maxBytes` (default 192 MiB): the most memory the decode may take: the upload, every
//! decoded frame (4 bytes a pixel) and two frames' worth of the decoder's working memory.
//!
//! # Limits
//!
//! A loader runs with a memory cap (the host gives loaders 256 MiB) and hands the whole
//! animation over at once, so the work is bounded before anything is decoded: the canvas
//! size and the number of frames are read from the headers first (for a GIF, by a pass
//! over its frames that skips their pixels), and a file is refused, with a message naming
//! its size and frame count, when a frame has more than [`MAX_PIXELS`] pixels, when it has
//! more than [`MAX_FRAMES`] frames, or when its frames would take more than `maxBytes`.
//! The decoders get the same budget as `image::Limits`, and the frames actually decoded
//! are counted against it too.

use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage, ImageDecoder, Limits};
use serde::Deserialize;
use stream_manager_sdk::export_loader;
use stream_manager_sdk::loader::{Decoded, Frame, Image, Loader, LoaderInfo};

/// Most pixels of one frame.
pub const MAX_PIXELS: u64 = 16_777_216;
/// Most frames of an animation.
pub const MAX_FRAMES: u64 = 1000;
/// The default of the `maxBytes` option: 192 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 192 << 20;
/// Frames' worth of working memory a decoder takes besides the frames it hands over (the
/// canvas it composites on, and the frame being decoded when it is not the whole canvas;
/// or a still's pixels before they are converted to RGBA).
const WORKING_FRAMES: u64 = 2;
/// How long a GIF frame of 0 or 10 ms shows, as in browsers.
const GIF_DEFAULT_DELAY_MS: u32 = 100;

/// The options of a decode; see [Options](crate#options).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Options {
    /// The most memory the decode may take, bytes (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: Option<u64>,
}

/// The loader.
pub struct AnimationLoader;

impl Loader for AnimationLoader {
    type Options = Options;

    fn info() -> LoaderInfo {
        LoaderInfo {
            name: "gif".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            media_types: ["image/gif", "image/apng", "image/webp", "image/png"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn decode(bytes: &[u8], options: Options) -> Result<Decoded, String> {
        decode(bytes, &options)
    }
}

export_loader!(AnimationLoader);

/// A format this loader decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// GIF (87a or 89a).
    Gif,
    /// PNG, animated (APNG) or not.
    Png,
    /// WebP, animated or not.
    WebP,
}

impl Format {
    /// The format of a file, by its first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Format::Gif)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Format::WebP)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Gif => "GIF",
            Format::Png => "PNG",
            Format::WebP => "WebP",
        }
    }
}

/// What the headers say: the canvas and how many frames there are (1 for a still).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Canvas width.
    pub width: u32,
    /// Canvas height.
    pub height: u32,
    /// Frames of the animation, 1 for a still.
    pub frames: u64,
}

/// Reads the canvas size and the number of frames without decoding a pixel.
pub fn probe(bytes: &[u8], format: Format) -> Result<Probe, String> {
    let bad = |e: &dyn std::fmt::Display| format!("not a valid {}: {e}", format.name());
    match format {
        Format::Gif => {
            let mut options = gif::DecodeOptions::new();
            options.skip_frame_decoding(true);
            let mut decoder = options.read_info(Cursor::new(bytes)).map_err(|e| bad(&e))?;
            let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
            let mut frames = 0u64;
            // One past the limit is enough to refuse it.
            while frames <= MAX_FRAMES && decoder.next_frame_info().map_err(|e| bad(&e))?.is_some()
            {
                frames += 1;
            }
            Ok(Probe {
                width,
                height,
                frames,
            })
        }
        Format::Png => {
            let reader = png::Decoder::new(Cursor::new(bytes))
                .read_info()
                .map_err(|e| bad(&e))?;
            let info = reader.info();
            let frames = info
                .animation_control()
                .map_or(1, |a| u64::from(a.num_frames));
            Ok(Probe {
                width: info.width,
                height: info.height,
                frames,
            })
        }
        Format::WebP => {
            let decoder = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(|e| bad(&e))?;
            let (width, height) = decoder.dimensions();
            let frames = if decoder.is_animated() {
                u64::from(decoder.num_frames())
            } else {
                1
            };
            Ok(Probe {
                width,
                height,
                frames,
            })
        }
    }
}

/// The memory budget of one decode.
struct Budget {
    max_bytes: u64,
    upload: u64,
    frame_bytes: u64,
}

impl Budget {
    /// Bytes that `frames` frames take, with the decoder's working memory and the upload.
    fn needs(&self, frames: u64) -> u64 {
        (frames + WORKING_FRAMES)
            .saturating_mul(self.frame_bytes)
            .saturating_add(self.upload)
    }

    /// What the decoder may allocate at most.
    fn decoder_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_alloc = Some(self.max_bytes.saturating_sub(self.upload));
        limits
    }
}

/// Decodes an upload. Pure (no host calls), for tests.
pub fn decode(bytes: &[u8], options: &Options) -> Result<Decoded, String> {
    let format = Format::sniff(bytes).ok_or("not a GIF, PNG or WebP image")?;
    let probe = probe(bytes, format)?;
    let (width, height) = (probe.width, probe.height);
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 || pixels > MAX_PIXELS {
        return Err(format!(
            "a {width}x{height} {}: 1 to {MAX_PIXELS} pixels a frame",
            format.name()
        ));
    }
    if probe.frames == 0 {
        return Err(format!("a {} without frames", format.name()));
    }
    if probe.frames > MAX_FRAMES {
        return Err(format!(
            "a {} of more than {MAX_FRAMES} frames",
            format.name()
        ));
    }
    let budget = Budget {
        max_bytes: options.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
        upload: bytes.len() as u64,
        frame_bytes: pixels * 4,
    };
    let needs = budget.needs(probe.frames);
    if needs > budget.max_bytes {
        return Err(format!(
            "a {} of {} frames of {width}x{height} needs {} MiB to decode (the frames, two \
             frames of working memory and the upload): at most {} MiB (option maxBytes)",
            format.name(),
            probe.frames,
            needs.div_ceil(1 << 20),
            budget.max_bytes >> 20
        ));
    }
    let frames = match format {
        Format::Gif => {
            let mut decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
                .map_err(|e| e.to_string())?;
            decoder
                .set_limits(budget.decoder_limits())
                .map_err(|e| e.to_string())?;
            frames(decoder, &probe, &budget, true)?
        }
        Format::Png => {
            let decoder = image::codecs::png::PngDecoder::with_limits(
                Cursor::new(bytes),
                budget.decoder_limits(),
            )
            .map_err(|e| e.to_string())?;
            if probe.frames > 1 && decoder.is_apng().map_err(|e| e.to_string())? {
                frames(
                    decoder.apng().map_err(|e| e.to_string())?,
                    &probe,
                    &budget,
                    false,
                )?
            } else {
                vec![still(decoder)?]
            }
        }
        Format::WebP => {
            let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
                .map_err(|e| e.to_string())?;
            decoder
                .set_limits(budget.decoder_limits())
                .map_err(|e| e.to_string())?;
            if decoder.has_animation() {
                frames(decoder, &probe, &budget, false)?
            } else {
                vec![still(decoder)?]
            }
        }
    };
    let mut frames = frames;
    match frames.len() {
        0 => Err(format!("a {} without frames", format.name())),
        1 => Ok(Decoded::Still(frames.remove(0).image)),
        _ => Ok(Decoded::Animation(frames)),
    }
}

/// Decodes the frames of an animation, counting them against what the headers said.
fn frames<'a>(
    decoder: impl AnimationDecoder<'a>,
    probe: &Probe,
    budget: &Budget,
    gif: bool,
) -> Result<Vec<Frame>, String> {
    let mut out = Vec::with_capacity(probe.frames as usize);
    for (i, frame) in decoder.into_frames().enumerate() {
        let frame = frame.map_err(|e| format!("frame {i}: {e}"))?;
        // The headers' count was checked against the budget; a file with more frames than
        // it declares is refused before it takes more.
        if out.len() as u64 >= probe.frames {
            return Err(format!(
                "more frames than the {} frames the file declares",
                probe.frames
            ));
        }
        debug_assert!(budget.needs(out.len() as u64 + 1) <= budget.max_bytes);
        let duration_ms = delay_ms(frame.delay(), gif);
        let buffer = frame.into_buffer();
        let (width, height) = buffer.dimensions();
        if (width, height) != (probe.width, probe.height) {
            return Err(format!(
                "frame {i} is {width}x{height}, not the canvas's {}x{}",
                probe.width, probe.height
            ));
        }
        out.push(Frame {
            image: Image::new(width, height, buffer.into_raw())?,
            duration_ms,
        });
    }
    Ok(out)
}

/// Decodes a still picture.
fn still(decoder: impl ImageDecoder) -> Result<Frame, String> {
    let rgba = DynamicImage::from_decoder(decoder)
        .map_err(|e| e.to_string())?
        .into_rgba8();
    let (width, height) = rgba.dimensions();
    Ok(Frame {
        image: Image::new(width, height, rgba.into_raw())?,
        duration_ms: 0,
    })
}

/// A frame's delay in whole milliseconds; a GIF's of 10 ms or less is taken as 100 ms.
fn delay_ms(delay: image::Delay, gif: bool) -> u32 {
    let (numerator, denominator) = delay.numer_denom_ms();
    let ms = if denominator == 0 {
        0
    } else {
        ((u64::from(numerator) + u64::from(denominator) / 2) / u64::from(denominator))
            .min(u64::from(u32::MAX)) as u32
    };
    if gif && ms <= 10 {
        GIF_DEFAULT_DELAY_MS
    } else {
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Rgba, RgbaImage};
    use stream_manager_sdk::Color;

    fn gif(frames: &[([u8; 4], u32)], width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut out);
            for &(color, ms) in frames {
                let picture = RgbaImage::from_pixel(width, height, Rgba(color));
                let frame =
                    image::Frame::from_parts(picture, 0, 0, Delay::from_numer_denom_ms(ms, 1));
                encoder.encode_frame(frame).unwrap();
            }
        }
        out
    }

    fn colour(image: &Image) -> Option<Color> {
        image.pixel(image.width / 2, image.height / 2)
    }

    #[test]
    fn a_gif_animation_decodes_with_colours_and_durations() {
        let bytes = gif(
            &[
                ([255, 0, 0, 255], 50),
                ([0, 255, 0, 255], 200),
                ([0, 0, 255, 255], 0),
            ],
            8,
            6,
        );
        assert_eq!(
            probe(&bytes, Format::Gif),
            Ok(Probe {
                width: 8,
                height: 6,
                frames: 3
            })
        );
        let Decoded::Animation(frames) = decode(&bytes, &Options::default()).unwrap() else {
            panic!("expected an animation");
        };
        assert_eq!(frames.len(), 3);
        for f in &frames {
            assert_eq!((f.image.width, f.image.height), (8, 6));
        }
        let colours: Vec<_> = frames.iter().map(|f| colour(&f.image)).collect();
        assert_eq!(
            colours,
            [
                Some(Color::rgb(255, 0, 0)),
                Some(Color::rgb(0, 255, 0)),
                Some(Color::rgb(0, 0, 255))
            ]
        );
        let durations: Vec<u32> = frames.iter().map(|f| f.duration_ms).collect();
        // 0 ms in a GIF shows for 100 ms, as in browsers.
        assert_eq!(durations, [50, 200, 100]);
    }

    #[test]
    fn a_gif_of_one_frame_is_a_still() {
        let bytes = gif(&[([10, 20, 30, 255], 40)], 4, 4);
        match decode(&bytes, &Options::default()).unwrap() {
            Decoded::Still(image) => {
                assert_eq!((image.width, image.height), (4, 4));
                assert_eq!(colour(&image), Some(Color::rgb(10, 20, 30)));
            }
            other => panic!("expected a still, got {other:?}"),
        }
    }

    fn apng(colours: &[[u8; 4]], delay_ms: u16) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, 5, 3);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_animated(colours.len() as u32, 0).unwrap();
            encoder.set_frame_delay(delay_ms, 1000).unwrap();
            let mut writer = encoder.write_header().unwrap();
            for c in colours {
                writer.write_image_data(&c.repeat(5 * 3)).unwrap();
            }
            writer.finish().unwrap();
        }
        out
    }

    #[test]
    fn an_apng_of_two_frames_decodes_to_two_frames() {
        let bytes = apng(&[[255, 255, 0, 255], [0, 255, 255, 128]], 70);
        let Decoded::Animation(frames) = decode(&bytes, &Options::default()).unwrap() else {
            panic!("expected an animation");
        };
        assert_eq!(frames.len(), 2);
        assert_eq!(colour(&frames[0].image), Some(Color::rgb(255, 255, 0)));
        assert_eq!(
            colour(&frames[1].image),
            Some(Color::rgba(0, 255, 255, 128))
        );
        // 0 ms is not a GIF's: kept (the host moves it up to its minimum).
        assert_eq!(
            frames.iter().map(|f| f.duration_ms).collect::<Vec<_>>(),
            [70, 70]
        );
    }

    #[test]
    fn a_plain_png_is_a_still() {
        let mut bytes = Vec::new();
        RgbaImage::from_pixel(3, 2, Rgba([1, 2, 3, 255]))
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        match decode(&bytes, &Options::default()).unwrap() {
            Decoded::Still(image) => assert_eq!(colour(&image), Some(Color::rgb(1, 2, 3))),
            other => panic!("expected a still, got {other:?}"),
        }
    }

    #[test]
    fn a_webp_still_is_a_still() {
        let mut bytes = Vec::new();
        let picture = RgbaImage::from_pixel(4, 2, Rgba([200, 100, 50, 255]));
        image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)
            .encode(picture.as_raw(), 4, 2, image::ExtendedColorType::Rgba8)
            .unwrap();
        assert_eq!(Format::sniff(&bytes), Some(Format::WebP));
        match decode(&bytes, &Options::default()).unwrap() {
            Decoded::Still(image) => {
                assert_eq!((image.width, image.height), (4, 2));
                assert_eq!(colour(&image), Some(Color::rgb(200, 100, 50)));
            }
            other => panic!("expected a still, got {other:?}"),
        }
    }

    #[test]
    fn truncated_or_foreign_data_is_an_error() {
        let bytes = gif(&[([255, 0, 0, 255], 50), ([0, 255, 0, 255], 50)], 16, 16);
        for cut in [10, bytes.len() / 2, bytes.len() - 3] {
            assert!(decode(&bytes[..cut], &Options::default()).is_err(), "{cut}");
        }
        let png = apng(&[[0; 4], [9; 4]], 10);
        assert!(decode(&png[..png.len() - 20], &Options::default()).is_err());
        let err = decode(b"BM not a gif", &Options::default()).unwrap_err();
        assert!(err.contains("not a GIF, PNG or WebP"), "{err}");
    }

    #[test]
    fn frames_past_the_budget_are_refused_before_decoding() {
        // 3 frames of 64x64 (16 KiB each) with two frames of working memory: 80 KiB.
        let bytes = gif(
            &[
                ([255, 0, 0, 255], 50),
                ([0, 255, 0, 255], 50),
                ([0, 0, 255, 255], 50),
            ],
            64,
            64,
        );
        let enough = Options {
            max_bytes: Some(80 * 1024 + bytes.len() as u64),
        };
        assert!(decode(&bytes, &enough).is_ok());
        let short = Options {
            max_bytes: Some(80 * 1024 + bytes.len() as u64 - 1),
        };
        let err = decode(&bytes, &short).unwrap_err();
        assert!(err.contains("3 frames of 64x64"), "{err}");
    }

    #[test]
    fn too_many_frames_or_pixels_are_refused() {
        let frames: Vec<([u8; 4], u32)> = (0..=MAX_FRAMES).map(|_| ([0; 4], 20)).collect();
        let bytes = gif(&frames, 1, 1);
        let err = decode(&bytes, &Options::default()).unwrap_err();
        assert!(err.contains("more than 1000 frames"), "{err}");
        // A GIF of one pixel whose canvas claims 65535x65535.
        let mut huge = gif(&[([0; 4], 20)], 1, 1);
        huge[6..10].copy_from_slice(&[0xff; 4]);
        let err = decode(&huge, &Options::default()).unwrap_err();
        assert!(err.contains("65535x65535"), "{err}");
    }

    #[test]
    fn gif_delays_of_ten_ms_or_less_are_a_tenth_of_a_second() {
        let ms = |ms: u32, gif: bool| delay_ms(Delay::from_numer_denom_ms(ms, 1), gif);
        assert_eq!(ms(0, true), 100);
        assert_eq!(ms(10, true), 100);
        assert_eq!(ms(20, true), 20);
        assert_eq!(ms(0, false), 0);
        assert_eq!(delay_ms(Delay::from_numer_denom_ms(100, 3), false), 33);
    }
}
