//! Asset loaders: components that turn uploaded bytes of a format the host has no decoder
//! for into a still image, an animation or a vector drawing.
//!
//! Implement [`Loader`], call [`export_loader!`](crate::export_loader) once, and build the
//! `cdylib` crate for `wasm32-wasip2` as for a template. The component exports only the
//! `stream-manager:plugin/loader@0.2.0` interface (world `asset-loader`); a crate is either
//! a template or a loader, never both.
//!
//! # Lifecycle
//!
//! 1. [`Loader::info`] (`describe`), once after loading: the name, the version and the
//!    media types the loader decodes (1 to 16, `type/subtype`).
//! 2. [`Loader::decode`] for each upload, **in a fresh instance**: nothing carries over
//!    from one decode to the next, which is why the trait has no `self`. The options (a
//!    JSON object, `{}` when the upload gives none) are deserialized into
//!    [`Loader::Options`] first; a deserialize error refuses the upload, naming the error.
//!
//! An `Err` refuses the upload with its message, so make it say what is wrong for the
//! operator who uploaded the file ("a 40000x40000 GIF: at most 16777216 pixels").
//!
//! # Limits
//!
//! A loader is as untrusted as a template and gets the same sandbox: no files, network,
//! environment or arguments, a memory cap and a time budget for each decode. The whole
//! answer is returned at once, so the memory cap bounds the decoded pixels too: check the
//! declared size of a picture (and the number of frames) *before* allocating, and refuse
//! an upload that would not fit with a clear message, rather than running out of memory
//! (a trap the operator sees only as a fault). The host checks everything it is handed,
//! before copying a byte: by default at most 16 777 216 pixels per picture, 1000 frames
//! and 256 MiB of decoded pixels per asset. The SDK refuses, with a message, what the host
//! would refuse as malformed: a picture whose RGBA is not `width × height × 4` bytes or
//! has no pixels, an animation without frames, a drawing whose size is not finite and
//! positive or that leaves no room for the host's wrapping (see [`MAX_DRAWING_COMMANDS`]).
//!
//! A drawing is drawn with a [`Canvas`]: make it with [`Canvas::for_drawing`], which keeps
//! the commands within what the host accepts for a drawing (and counts what it had to
//! drop, see [`Canvas::dropped`]; the SDK logs a warning when something was).
//!
//! # Example
//!
//! A loader of [farbfeld](https://tools.suckless.org/farbfeld/) images: the magic
//! `farbfeld`, the width and the height (32-bit big-endian), then 16-bit big-endian RGBA.
//!
//! ```
//! use stream_manager_sdk::export_loader;
//! use stream_manager_sdk::loader::{Decoded, Image, Loader, LoaderInfo};
//!
//! /// Pixels of the largest picture this loader makes.
//! const MAX_PIXELS: u64 = 16_777_216;
//!
//! struct Farbfeld;
//!
//! impl Loader for Farbfeld {
//!     // No options: any JSON object is taken and ignored.
//!     type Options = serde::de::IgnoredAny;
//!
//!     fn info() -> LoaderInfo {
//!         LoaderInfo {
//!             name: "farbfeld".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             media_types: vec!["image/x-farbfeld".into()],
//!         }
//!     }
//!
//!     fn decode(bytes: &[u8], _: Self::Options) -> Result<Decoded, String> {
//!         let header = bytes.get(..16).ok_or("not a farbfeld image: too short")?;
//!         if &header[..8] != b"farbfeld" {
//!             return Err("not a farbfeld image".into());
//!         }
//!         let number = |at: usize| u32::from_be_bytes([
//!             header[at], header[at + 1], header[at + 2], header[at + 3],
//!         ]);
//!         let (width, height) = (number(8), number(12));
//!         // The size first: nothing is allocated for a picture that will be refused.
//!         let pixels = u64::from(width) * u64::from(height);
//!         if pixels == 0 || pixels > MAX_PIXELS {
//!             return Err(format!("a {width}x{height} image: 1 to {MAX_PIXELS} pixels"));
//!         }
//!         let body = &bytes[16..];
//!         if body.len() as u64 != pixels * 8 {
//!             return Err("a truncated farbfeld image".into());
//!         }
//!         // 16 bits a channel, the high byte first: keep the high byte.
//!         let rgba = body.chunks_exact(2).map(|channel| channel[0]).collect();
//!         Ok(Decoded::Still(Image::new(width, height, rgba)?))
//!     }
//! }
//!
//! export_loader!(Farbfeld);
//! #
//! # let mut file = b"farbfeld\0\0\0\x01\0\0\0\x01".to_vec();
//! # file.extend([0xff, 0xff, 0x80, 0x00, 0, 0, 0xff, 0xff]);
//! # let Ok(Decoded::Still(image)) = Farbfeld::decode(&file, serde::de::IgnoredAny) else {
//! #     panic!("not decoded");
//! # };
//! # assert_eq!(image.pixel(0, 0), Some(stream_manager_sdk::Color::rgba(255, 128, 0, 255)));
//! ```

use std::fmt;

use crate::bindings::stream_manager::plugin::types as wit_types;
use crate::limits::{MAX_COMMANDS, MAX_SAVE_DEPTH};
use crate::loader_bindings::exports::stream_manager::plugin::loader as wit;
use crate::{Canvas, Color};

/// Most commands of a drawing: a frame's [`MAX_COMMANDS`] less 16, which the host may
/// wrap a drawing in (save, transform, clip, opacity, restore) when it draws it in a frame.
pub const MAX_DRAWING_COMMANDS: usize = MAX_COMMANDS - 16;

/// Deepest nesting of `save` in a drawing: a frame's [`MAX_SAVE_DEPTH`] less 4, for the
/// host's wrapping.
pub const MAX_DRAWING_SAVE_DEPTH: usize = MAX_SAVE_DEPTH - 4;

/// What a loader says about itself (the answer to `describe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderInfo {
    /// Short name, e.g. `"svg"`: 1 to 64 bytes.
    pub name: String,
    /// The loader's own version (`env!("CARGO_PKG_VERSION")` is handy): at most 64 bytes.
    pub version: String,
    /// The media types it decodes, e.g. `["image/svg+xml"]`: 1 to 16, each `type/subtype`.
    pub media_types: Vec<String>,
}

/// A raster picture: straight (not premultiplied) RGBA, row by row from the top,
/// `width × height × 4` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels: red, green, blue, alpha, one byte each.
    pub rgba: Vec<u8>,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Megabytes of pixels say nothing in a test failure.
        f.debug_struct("Image")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("rgba", &format_args!("[{} bytes]", self.rgba.len()))
            .finish()
    }
}

impl Image {
    /// A picture of `width × height` pixels from its RGBA; an error unless there is at
    /// least one pixel and `rgba` holds exactly `width × height × 4` bytes.
    pub fn new(width: u32, height: u32, rgba: Vec<u8>) -> Result<Image, String> {
        let image = Image {
            width,
            height,
            rgba,
        };
        image.check()?;
        Ok(image)
    }

    /// The bytes of RGBA a `width × height` picture needs, `None` if that does not fit in
    /// memory's address space. Check it (and your own bound on pixels) before allocating.
    pub fn byte_len(width: u32, height: u32) -> Option<usize> {
        usize::try_from(u64::from(width) * u64::from(height))
            .ok()?
            .checked_mul(4)
    }

    /// The colour of the pixel at column `x`, row `y` (from the top left), `None` outside
    /// the picture.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Color> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 4;
        let p = self.rgba.get(at..at + 4)?;
        Some(Color::rgba(p[0], p[1], p[2], p[3]))
    }

    /// Whether the size is not empty and the RGBA is as long as the size says.
    fn check(&self) -> Result<(), String> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return Err(format!("a {w}x{h} picture has no pixels"));
        }
        let needed = u64::from(w) * u64::from(h) * 4;
        if self.rgba.len() as u64 != needed {
            return Err(format!(
                "a {w}x{h} picture with {} bytes of RGBA (it needs {needed})",
                self.rgba.len()
            ));
        }
        Ok(())
    }

    fn into_wit(self) -> wit::Image {
        wit::Image {
            width: self.width,
            height: self.height,
            rgba: self.rgba,
        }
    }
}

/// One frame of an animation: a whole picture (composited, not a patch over the last
/// frame) and how long it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The picture; every frame of an animation should have the same size.
    pub image: Image,
    /// How long it shows, in milliseconds. The host takes 10 to 60 000 and moves a
    /// duration outside that range to the nearer end.
    pub duration_ms: u32,
}

/// What [`Loader::decode`] makes of an upload.
#[derive(Debug)]
pub enum Decoded {
    /// A still picture.
    Still(Image),
    /// An animation: at least one frame, shown in order (and looped by the host).
    Animation(Vec<Frame>),
    /// A vector drawing, which the host scales to wherever it is drawn.
    Drawing {
        /// Natural width in pixels: finite and above 0.
        width: f32,
        /// Natural height in pixels: finite and above 0.
        height: f32,
        /// The drawing, in its own pixels from (0, 0) to (`width`, `height`). Make it with
        /// [`Canvas::for_drawing`]; saves still open are closed.
        commands: Canvas,
    },
}

/// An asset loader. Implement it, then export it with
/// [`export_loader!`](crate::export_loader).
///
/// Each decode runs in a fresh instance, so there is no `self`: a loader keeps no state
/// between uploads.
pub trait Loader: 'static {
    /// The options of a decode, deserialized from the JSON object the upload gives (`{}`
    /// when it gives none). Use `#[serde(default, rename_all = "camelCase")]` on a struct
    /// so every option may be left out, [`serde::de::IgnoredAny`] for none, or
    /// [`serde_json::Value`] to read them by hand.
    type Options: serde::de::DeserializeOwned;

    /// Name, version and the media types the loader decodes.
    fn info() -> LoaderInfo;

    /// Decodes an upload, or refuses it with a message for the operator.
    fn decode(bytes: &[u8], options: Self::Options) -> Result<Decoded, String>;
}

/// Reads the options JSON the host hands to `decode`: a JSON object (an empty string is
/// taken as `{}`).
pub(crate) fn parse_options<O: serde::de::DeserializeOwned>(options: &str) -> Result<O, String> {
    let options = match options.trim() {
        "" => "{}",
        trimmed => trimmed,
    };
    // serde would read a JSON array positionally into a struct; options are an object.
    if !options.starts_with('{') {
        return Err("invalid options: expected a JSON object".to_owned());
    }
    serde_json::from_str(options).map_err(|e| format!("invalid options: {e}"))
}

pub(crate) fn info_to_wit(info: LoaderInfo) -> wit::LoaderInfo {
    wit::LoaderInfo {
        name: info.name,
        version: info.version,
        media_types: info.media_types,
    }
}

/// Converts what a loader made into what the host takes, refusing (with a message) what
/// the host would refuse as malformed. Pixels are moved, never copied.
pub(crate) fn decoded_to_wit(decoded: Decoded) -> Result<wit::Decoded, String> {
    match decoded {
        Decoded::Still(image) => {
            image.check()?;
            Ok(wit::Decoded::Still(image.into_wit()))
        }
        Decoded::Animation(frames) => {
            if frames.is_empty() {
                return Err("an animation with no frames".to_owned());
            }
            for (i, frame) in frames.iter().enumerate() {
                frame.image.check().map_err(|e| format!("frame {i}: {e}"))?;
            }
            Ok(wit::Decoded::Animation(
                frames
                    .into_iter()
                    .map(|f| wit::AnimationFrame {
                        image: f.image.into_wit(),
                        duration_ms: f.duration_ms,
                    })
                    .collect(),
            ))
        }
        Decoded::Drawing {
            width,
            height,
            mut commands,
        } => {
            if !(width.is_finite() && height.is_finite() && width > 0.0 && height > 0.0) {
                return Err(format!(
                    "a drawing of {width}x{height}: its size must be finite and above 0"
                ));
            }
            let commands = commands.finish();
            check_drawing(&commands)?;
            Ok(wit::Decoded::Drawing(wit::Vector {
                width,
                height,
                commands,
            }))
        }
    }
}

/// Whether a drawing leaves room for the host's wrapping: a canvas made with
/// [`Canvas::new`] rather than [`Canvas::for_drawing`] may not.
fn check_drawing(commands: &[wit_types::DrawCommand]) -> Result<(), String> {
    if commands.len() > MAX_DRAWING_COMMANDS {
        return Err(format!(
            "a drawing of {} commands (at most {MAX_DRAWING_COMMANDS})",
            commands.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for command in commands {
        match command {
            wit_types::DrawCommand::Save => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            wit_types::DrawCommand::Restore => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_DRAWING_SAVE_DEPTH {
        return Err(format!(
            "a drawing that nests saves {deepest} deep (at most {MAX_DRAWING_SAVE_DEPTH})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32) -> Image {
        Image {
            width,
            height,
            rgba: vec![9; width as usize * height as usize * 4],
        }
    }

    #[test]
    fn pictures_must_hold_their_pixels() {
        assert!(Image::new(2, 3, vec![0; 24]).is_ok());
        let short = Image::new(2, 3, vec![0; 23]).unwrap_err();
        assert!(
            short.contains("2x3") && short.contains("23 bytes"),
            "{short}"
        );
        assert!(
            Image::new(0, 3, Vec::new())
                .unwrap_err()
                .contains("no pixels")
        );
        assert_eq!(Image::byte_len(2, 3), Some(24));
        assert_eq!(Image::byte_len(u32::MAX, u32::MAX), None);
    }

    #[test]
    fn pixels_are_read_row_by_row() {
        let mut picture = image(3, 2);
        picture.rgba[(3 + 2) * 4..(3 + 2) * 4 + 4].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(picture.pixel(2, 1), Some(Color::rgba(1, 2, 3, 4)));
        assert_eq!(picture.pixel(0, 0), Some(Color::rgba(9, 9, 9, 9)));
        assert_eq!(picture.pixel(3, 0), None);
        assert_eq!(picture.pixel(0, 2), None);
    }

    #[test]
    fn stills_and_frames_are_moved_after_their_check() {
        let still = image(4, 4);
        let pointer = still.rgba.as_ptr();
        match decoded_to_wit(Decoded::Still(still)).unwrap() {
            wit::Decoded::Still(i) => {
                assert_eq!((i.width, i.height), (4, 4));
                assert_eq!(i.rgba.as_ptr(), pointer, "the pixels were copied");
            }
            _ => panic!("expected a still"),
        }
        let frames = vec![
            Frame {
                image: image(2, 2),
                duration_ms: 40,
            },
            Frame {
                image: image(2, 2),
                duration_ms: 0,
            },
        ];
        match decoded_to_wit(Decoded::Animation(frames)).unwrap() {
            wit::Decoded::Animation(f) => {
                let durations: Vec<u32> = f.iter().map(|f| f.duration_ms).collect();
                assert_eq!(durations, [40, 0]);
            }
            _ => panic!("expected an animation"),
        }
    }

    #[test]
    fn malformed_output_is_refused_with_a_message() {
        let err = decoded_to_wit(Decoded::Animation(Vec::new())).unwrap_err();
        assert!(err.contains("no frames"), "{err}");
        let mut bad = image(2, 2);
        bad.rgba.pop();
        let frames = vec![
            Frame {
                image: image(2, 2),
                duration_ms: 40,
            },
            Frame {
                image: bad,
                duration_ms: 40,
            },
        ];
        let err = decoded_to_wit(Decoded::Animation(frames)).unwrap_err();
        assert!(err.starts_with("frame 1: "), "{err}");
        for (width, height) in [
            (0.0, 1.0),
            (1.0, -1.0),
            (f32::NAN, 1.0),
            (1.0, f32::INFINITY),
        ] {
            let drawing = Decoded::Drawing {
                width,
                height,
                commands: Canvas::for_drawing(),
            };
            assert!(decoded_to_wit(drawing).is_err(), "{width}x{height}");
        }
    }

    #[test]
    fn drawings_leave_room_for_the_hosts_wrapping() {
        let drawing = |mut canvas: Canvas, saves: usize, rects: usize| {
            for _ in 0..saves {
                canvas.save();
            }
            for _ in 0..rects {
                canvas.rect(0.0, 0.0, 1.0, 1.0, Color::WHITE);
            }
            decoded_to_wit(Decoded::Drawing {
                width: 10.0,
                height: 10.0,
                commands: canvas,
            })
        };
        // A drawing canvas keeps within the limits by construction.
        match drawing(Canvas::for_drawing(), 1, 20_000).unwrap() {
            wit::Decoded::Drawing(v) => {
                assert_eq!(v.commands.len(), MAX_DRAWING_COMMANDS);
                assert!(matches!(
                    v.commands.last(),
                    Some(wit_types::DrawCommand::Restore)
                ));
                assert_eq!((v.width, v.height), (10.0, 10.0));
            }
            _ => panic!("expected a drawing"),
        }
        match drawing(Canvas::for_drawing(), 100, 0).unwrap() {
            wit::Decoded::Drawing(v) => {
                let saves = v
                    .commands
                    .iter()
                    .filter(|c| matches!(c, wit_types::DrawCommand::Save))
                    .count();
                assert_eq!(saves, MAX_DRAWING_SAVE_DEPTH);
            }
            _ => panic!("expected a drawing"),
        }
        // A frame's canvas does not, and is refused when it goes past them.
        assert!(drawing(Canvas::new(), 0, MAX_DRAWING_COMMANDS).is_ok());
        let err = drawing(Canvas::new(), 0, MAX_DRAWING_COMMANDS + 1).unwrap_err();
        assert!(err.contains("commands"), "{err}");
        assert!(drawing(Canvas::new(), MAX_DRAWING_SAVE_DEPTH, 1).is_ok());
        let err = drawing(Canvas::new(), MAX_DRAWING_SAVE_DEPTH + 1, 1).unwrap_err();
        assert!(err.contains("deep"), "{err}");
    }

    #[test]
    fn options_are_a_json_object() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
        struct Options {
            max_bytes: u64,
        }
        impl Default for Options {
            fn default() -> Options {
                Options { max_bytes: 7 }
            }
        }
        assert_eq!(parse_options::<Options>("{}").unwrap().max_bytes, 7);
        assert_eq!(parse_options::<Options>(" ").unwrap().max_bytes, 7);
        assert_eq!(
            parse_options::<Options>(r#"{"maxBytes": 9}"#)
                .unwrap()
                .max_bytes,
            9
        );
        assert!(parse_options::<Options>("[9]").is_err());
        let err = parse_options::<Options>(r#"{"other": 1}"#).unwrap_err();
        assert!(err.starts_with("invalid options: "), "{err}");
        let any = parse_options::<serde_json::Value>(r#"{"a": [1]}"#).unwrap();
        assert_eq!(any["a"][0], 1);
    }
}
