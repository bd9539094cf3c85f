//! Looking at decoded frames: RGB24 pictures as FFmpeg decodes the stream's H.264 (YUV 4:2:0
//! and compression), so colours are compared with tolerances, sampled as the mean of a small
//! patch, well inside or well outside a shape's edges.
//!
//! The samplers take `W`×`H` frames (the small stream); the whole-frame measures take any
//! size.

use crate::harness::{H, W};

/// A sampled colour.
pub type Rgb = [u8; 3];

/// A named colour test for one sampled pixel.
pub type Look = (&'static str, fn(Rgb) -> bool);

// ---------------------------------------------------------------------------------------
// Colours
//
// A flat shape on air: a full channel above 200, an empty one below 60 (see [`loose`] for
// wider tolerances).

pub fn red(p: Rgb) -> bool {
    p[0] > 200 && p[1] < 60 && p[2] < 60
}
pub fn green(p: Rgb) -> bool {
    p[1] > 200 && p[0] < 60 && p[2] < 60
}
pub fn blue(p: Rgb) -> bool {
    p[2] > 200 && p[0] < 60 && p[1] < 60
}
/// The opaque black background the tests set.
pub fn black(p: Rgb) -> bool {
    p.iter().all(|&c| c < 45)
}
/// Light in every channel (white text, say).
pub fn bright(p: Rgb) -> bool {
    p.iter().all(|&c| c > 150)
}

pub const RED: Look = ("red", red);
pub const NOT_RED: Look = ("not red", |p| !red(p));
pub const GREEN: Look = ("green", green);
pub const BLUE: Look = ("blue", blue);
pub const BLACK: Look = ("black (background)", black);
/// Red at about half opacity over black: whatever the blending space, clearly neither full
/// red nor background.
pub const HALF_RED: Look = ("half-transparent red", |p| {
    (90..=215).contains(&p[0]) && p[1] < 60 && p[2] < 60
});

/// The colours with wider tolerances (a full channel above 180, an empty one below 80), as
/// the checks of uploaded images (decoded, scaled, JPEG) and of whole scenes on air (a
/// transition's ends) use them.
pub mod loose {
    use super::{Look, Rgb};

    pub fn red(p: Rgb) -> bool {
        p[0] > 180 && p[1] < 80 && p[2] < 80
    }
    pub fn green(p: Rgb) -> bool {
        p[1] > 180 && p[0] < 80 && p[2] < 80
    }
    pub fn blue(p: Rgb) -> bool {
        p[2] > 180 && p[0] < 80 && p[1] < 80
    }
    pub fn white(p: Rgb) -> bool {
        p.iter().all(|&c| c > 180)
    }

    pub const RED: Look = ("red", red);
    pub const GREEN: Look = ("green", green);
    pub const BLUE: Look = ("blue", blue);
    pub const YELLOW: Look = ("yellow", |p| p[0] > 180 && p[1] > 180 && p[2] < 80);
    pub const MAGENTA: Look = ("magenta", |p| p[0] > 180 && p[2] > 180 && p[1] < 80);
}

// ---------------------------------------------------------------------------------------
// Sampling a `W`×`H` frame

/// Mean colour of the 5×5 patch around (x, y) of a `W`×`H` RGB24 frame.
pub fn pixel(frame: &[u8], x: u32, y: u32) -> Rgb {
    let mut sum = [0u32; 3];
    let mut n = 0;
    for py in y.saturating_sub(2)..=(y + 2).min(H - 1) {
        for px in x.saturating_sub(2)..=(x + 2).min(W - 1) {
            let i = ((py * W + px) * 3) as usize;
            for c in 0..3 {
                sum[c] += u32::from(frame[i + c]);
            }
            n += 1;
        }
    }
    sum.map(|s| (s / n) as u8)
}

/// Which of `points` do not look as expected, described.
pub fn mismatches(frame: &[u8], points: &[(u32, u32, Look)]) -> Vec<String> {
    points
        .iter()
        .filter_map(|&(x, y, (name, test))| {
            let p = pixel(frame, x, y);
            (!test(p)).then(|| format!("({x},{y}) is {p:?}, expected {name}"))
        })
        .collect()
}

/// Asserts every one of `points` looks as expected; the panic lists those that do not.
pub fn assert_looks(frame: &[u8], points: &[(u32, u32, Look)], context: &str) {
    let wrong = mismatches(frame, points);
    assert!(
        wrong.is_empty(),
        "{context}: the picture does not show it:\n  {}",
        wrong.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Whole frames (any size)

/// Pixels whose colour changed by more than a compression artefact would.
pub fn changed_pixels(a: &[u8], b: &[u8]) -> usize {
    a.chunks(3)
        .zip(b.chunks(3))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 40))
        .count()
}

/// Spread of brightness in a frame (0 for a uniform picture).
pub fn luma_spread(frame: &[u8]) -> u8 {
    let lumas = frame
        .chunks(3)
        .map(|p| ((u32::from(p[0]) * 3 + u32::from(p[1]) * 6 + u32::from(p[2])) / 10) as u8);
    let (lo, hi) = lumas.fold((255, 0), |(lo, hi), l| (l.min(lo), l.max(hi)));
    hi.saturating_sub(lo)
}

/// Asserts a decoded picture is a drawn scene, not a blank or uniform frame.
pub fn assert_picture(frame: &[u8], context: &str) {
    let spread = luma_spread(frame);
    assert!(
        spread > 40,
        "{context}: picture looks uniform (luma spread {spread})"
    );
}
