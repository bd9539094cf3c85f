//! Allocation-free compositing onto a premultiplied RGBA frame: solid rectangles, cached
//! coverage masks (glyphs) in a colour, and cached premultiplied sprites, all source-over.
//!
//! tiny-skia rasterizes each cached item once; per frame only these loops run, so drawing
//! a frame of cached items touches no allocator (tiny-skia's path filling allocates edge
//! lists on every call).

use tiny_skia::{Mask, Pixmap, PixmapMut};

use super::simd;

/// `x * a / 255`, rounded, for 8-bit values.
#[inline]
fn mul255(x: u32, a: u32) -> u32 {
    let t = x * a + 128;
    (t + (t >> 8)) >> 8
}

/// `src` over `dst` in place, packed premultiplied RGBA, `src` scaled by `coverage` first.
#[inline]
fn paint_px(d: &mut [u8], mut src: u32, coverage: u8) {
    if coverage < 255 {
        src = scale_packed(src, u32::from(coverage));
    }
    let out = if src >> 24 == 255 {
        src
    } else {
        over_packed(u32::from_le_bytes([d[0], d[1], d[2], d[3]]), src)
    };
    d.copy_from_slice(&out.to_le_bytes());
}

/// `src` over `dst`, both premultiplied RGBA.
#[inline]
fn over(dst: &mut [u8], src: [u32; 4]) {
    let inv = 255 - src[3];
    for c in 0..4 {
        dst[c] = (src[c] + mul255(u32::from(dst[c]), inv)) as u8;
    }
}

/// Every channel of a packed RGBA pixel times `a / 255`, rounded like [`mul255`]; two
/// channels per multiplication.
#[inline]
fn scale_packed(px: u32, a: u32) -> u32 {
    let mut rb = (px & 0x00ff_00ff) * a + 0x0080_0080;
    rb = ((rb + ((rb >> 8) & 0x00ff_00ff)) >> 8) & 0x00ff_00ff;
    let mut ag = ((px >> 8) & 0x00ff_00ff) * a + 0x0080_0080;
    ag = (ag + ((ag >> 8) & 0x00ff_00ff)) & 0xff00_ff00;
    rb | ag
}

/// Packed premultiplied `src` over `dst`.
#[inline]
fn over_packed(dst: u32, src: u32) -> u32 {
    src + scale_packed(dst, 255 - (src >> 24))
}

/// Blends a row of premultiplied source pixels over a row of destination pixels, each
/// source pixel first scaled by `opacity` (255: as is).
#[inline]
fn blend_row(dst: &mut [u8], src: &[u8], opacity: u32) {
    let done = simd::blend_row(dst, src, opacity as u8) * 4;
    let (dst, src) = (&mut dst[done..], &src[done..]);
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let mut sp = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        if opacity < 255 {
            sp = scale_packed(sp, opacity);
        }
        match sp >> 24 {
            0 => {}
            255 => d.copy_from_slice(&sp.to_le_bytes()),
            _ => {
                let dp = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                d.copy_from_slice(&over_packed(dp, sp).to_le_bytes());
            }
        }
    }
}

/// The part of a `w`×`h` item at (`x`, `y`) inside a `cw`×`ch` canvas, as item-relative
/// column/row ranges and the canvas origin of the first visible pixel.
fn clip(
    x: i32,
    y: i32,
    w: u32,
    h: u32,
    cw: u32,
    ch: u32,
) -> Option<(u32, u32, u32, u32, u32, u32)> {
    let (x0, y0) = ((-x).max(0) as u32, (-y).max(0) as u32);
    let x1 = (i64::from(cw) - i64::from(x)).clamp(0, i64::from(w)) as u32;
    let y1 = (i64::from(ch) - i64::from(y)).clamp(0, i64::from(h)) as u32;
    (x0 < x1 && y0 < y1).then(|| {
        (
            x0,
            x1,
            y0,
            y1,
            (x + x0 as i32) as u32,
            (y + y0 as i32) as u32,
        )
    })
}

/// Premultiplies a straight RGBA colour.
pub fn premultiply([r, g, b, a]: [u8; 4]) -> [u32; 4] {
    let a32 = u32::from(a);
    [
        mul255(r.into(), a32),
        mul255(g.into(), a32),
        mul255(b.into(), a32),
        a32,
    ]
}

/// Fills a rectangle with a (premultiplied) colour.
pub fn fill_rect(canvas: &mut PixmapMut<'_>, x: i32, y: i32, w: u32, h: u32, color: [u32; 4]) {
    let (cw, ch) = (canvas.width(), canvas.height());
    let Some((x0, x1, y0, y1, cx, cy)) = clip(x, y, w, h, cw, ch) else {
        return;
    };
    let data = canvas.data_mut();
    for row in 0..(y1 - y0) {
        let start = (((cy + row) * cw + cx) * 4) as usize;
        for px in data[start..start + ((x1 - x0) * 4) as usize].chunks_exact_mut(4) {
            over(px, color);
        }
    }
}

/// Paints `color` (premultiplied) through a coverage mask placed at (`x`, `y`).
pub fn blend_mask(canvas: &mut PixmapMut<'_>, mask: &Mask, x: i32, y: i32, color: [u32; 4]) {
    let (cw, ch) = (canvas.width(), canvas.height());
    let Some((x0, x1, y0, y1, cx, cy)) = clip(x, y, mask.width(), mask.height(), cw, ch) else {
        return;
    };
    let (mw, coverage, data) = (mask.width(), mask.data(), canvas.data_mut());
    let packed = u32::from_le_bytes(color.map(|c| c as u8));
    for row in 0..(y1 - y0) {
        let m = ((y0 + row) * mw + x0) as usize;
        let d = (((cy + row) * cw + cx) * 4) as usize;
        let cov = &coverage[m..m + (x1 - x0) as usize];
        let px_row = &mut data[d..d + cov.len() * 4];
        let done = simd::paint_mask_row(px_row, cov, packed);
        for (px, &a) in px_row[done * 4..].chunks_exact_mut(4).zip(&cov[done..]) {
            if a != 0 {
                paint_px(px, packed, a);
            }
        }
    }
}

/// Draws a premultiplied sprite with its top-left corner at (`x`, `y`).
pub fn blend_pixmap(canvas: &mut PixmapMut<'_>, sprite: &Pixmap, x: i32, y: i32) {
    blend_pixmap_part(
        canvas,
        sprite,
        (0, 0, sprite.width(), sprite.height()),
        x,
        y,
    );
}

/// Draws the part `(left, top, width, height)` of a premultiplied sprite with that part's
/// top-left corner at (`x`, `y`).
pub fn blend_pixmap_part(
    canvas: &mut PixmapMut<'_>,
    sprite: &Pixmap,
    part: (u32, u32, u32, u32),
    x: i32,
    y: i32,
) {
    draw_sprite(canvas, sprite, part, x, y, 255, false);
}

/// Draws the part `(left, top, width, height)` of a premultiplied sprite with that part's
/// top-left corner at (`x`, `y`), with `opacity` (0–255). A sprite known to be `opaque` is
/// copied row by row at full opacity, cross-faded at partial opacity, never blended.
pub fn draw_sprite(
    canvas: &mut PixmapMut<'_>,
    sprite: &Pixmap,
    part: (u32, u32, u32, u32),
    x: i32,
    y: i32,
    opacity: u8,
    opaque: bool,
) {
    let (pl, pt) = (part.0.min(sprite.width()), part.1.min(sprite.height()));
    let (pw, ph) = (
        part.2.min(sprite.width() - pl),
        part.3.min(sprite.height() - pt),
    );
    let (cw, ch) = (canvas.width(), canvas.height());
    let Some((x0, x1, y0, y1, cx, cy)) = clip(x, y, pw, ph, cw, ch) else {
        return;
    };
    let (sw, src, data) = (sprite.width(), sprite.data(), canvas.data_mut());
    let o = u32::from(opacity);
    for row in 0..(y1 - y0) {
        let s = (((pt + y0 + row) * sw + pl + x0) * 4) as usize;
        let d = (((cy + row) * cw + cx) * 4) as usize;
        let n = ((x1 - x0) * 4) as usize;
        let (dst, src) = (&mut data[d..d + n], &src[s..s + n]);
        match (opaque, opacity) {
            (true, 255) => dst.copy_from_slice(src),
            // An opaque source at partial opacity is a straight per-byte cross-fade, which
            // the compiler vectorizes.
            (true, _) => {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = lerp255(*d, s, opacity);
                }
            }
            (false, _) => blend_row(dst, src, o),
        }
    }
}

/// 256 premultiplied packed colours along a gradient.
pub type GradientLut = [u32; 256];

/// The colours of a gradient at 256 evenly spaced positions: stops `(offset, straight
/// RGBA)` in increasing offset, interpolated in straight colour (as Skia does), alpha scaled
/// by `opacity`, then premultiplied.
pub fn gradient_lut(stops: &[(f32, [u8; 4])], opacity: f32) -> GradientLut {
    let mut lut = [0u32; 256];
    let Some(&(_, first)) = stops.first() else {
        return lut;
    };
    for (i, entry) in lut.iter_mut().enumerate() {
        let pos = i as f32 / 255.0;
        let mut c = stops.last().map_or(first, |s| s.1);
        if pos <= stops[0].0 {
            c = first;
        } else if let Some(w) = stops.windows(2).find(|w| pos >= w[0].0 && pos <= w[1].0) {
            let span = w[1].0 - w[0].0;
            let f = if span > 0.0 {
                (pos - w[0].0) / span
            } else {
                1.0
            };
            c = std::array::from_fn(|k| {
                (f32::from(w[0].1[k]) + (f32::from(w[1].1[k]) - f32::from(w[0].1[k])) * f).round()
                    as u8
            });
        }
        let a = (f32::from(c[3]) * opacity.clamp(0.0, 1.0)).round() as u8;
        let p = premultiply([c[0], c[1], c[2], a]);
        *entry = u32::from_le_bytes([p[0] as u8, p[1] as u8, p[2] as u8, p[3] as u8]);
    }
    lut
}

/// Where each pixel of a shaded area sits along its gradient: `t = a·x + b·y + c` (linear),
/// or the distance of `(u, v) = (ua·x + ub·y + uc, va·x + vb·y + vc)` from the origin divided
/// by a radius (radial); pixel centres in canvas pixels.
#[derive(Debug, Clone, Copy)]
pub enum Ramp {
    /// Linear: `[a, b, c]`.
    Linear([f32; 3]),
    /// Radial: `[ua, ub, uc]`, `[va, vb, vc]` and the radius.
    Radial([f32; 3], [f32; 3], f32),
}

/// Paints through a coverage mask covering exactly `bounds` (`x0, y0, x1, y1`, canvas
/// pixels, exclusive end; the mask is `x1 - x0` wide): each covered pixel takes the `lut`
/// colour at its gradient position (0..=1) scaled by its coverage.
pub fn shade(
    canvas: &mut PixmapMut<'_>,
    mask: &Mask,
    bounds: (u32, u32, u32, u32),
    lut: &GradientLut,
    ramp: Ramp,
) {
    let cw = canvas.width() as usize;
    let (x0, y0, x1, y1) = bounds;
    let (coverage, data) = (mask.data(), canvas.data_mut());
    let (xa, xb) = (x0 as usize, x1 as usize);
    // Positions along the gradient are computed independently per pixel (so the compiler
    // vectorizes them) into lookup indices, then the colours are gathered.
    let index = |t: f32| (t.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    let mut indices = [0u8; BLOCK];
    let mut colors = [0u32; BLOCK];
    for y in y0..y1 {
        let row = y as usize * cw;
        let mrow = (y - y0) as usize * (xb - xa);
        let cov_row = &coverage[mrow..mrow + (xb - xa)];
        let px_row = &mut data[(row + xa) * 4..(row + xb) * 4];
        let (fx, fy) = (x0 as f32 + 0.5, y as f32 + 0.5);
        // Gradient coordinates at the start of each block of the row.
        let (mut p, mut q) = match ramp {
            Ramp::Linear([a, b, c]) => (a * fx + b * fy + c, 0.0),
            Ramp::Radial([ua, ub, uc], [va, vb, vc], _) => {
                (ua * fx + ub * fy + uc, va * fx + vb * fy + vc)
            }
        };
        for (px, cov) in px_row.chunks_mut(BLOCK * 4).zip(cov_row.chunks(BLOCK)) {
            let (indices, colors) = (&mut indices[..cov.len()], &mut colors[..cov.len()]);
            match ramp {
                Ramp::Linear([a, _, _]) => {
                    for (k, step) in indices.iter_mut().zip(STEPS) {
                        *k = index(p + a * step);
                    }
                    p += a * BLOCK as f32;
                }
                Ramp::Radial([ua, _, _], [va, _, _], r) => {
                    let inv_r = 1.0 / r;
                    for (k, step) in indices.iter_mut().zip(STEPS) {
                        let (u, v) = (p + ua * step, q + va * step);
                        *k = index((u * u + v * v).sqrt() * inv_r);
                    }
                    p += ua * BLOCK as f32;
                    q += va * BLOCK as f32;
                }
            }
            for (c, &k) in colors.iter_mut().zip(indices.iter()) {
                *c = lut[usize::from(k)];
            }
            let done = simd::paint_colors_row(px, colors, cov);
            for ((d, &c), &a) in px[done * 4..]
                .chunks_exact_mut(4)
                .zip(&colors[done..])
                .zip(&cov[done..])
            {
                if a != 0 {
                    paint_px(d, c, a);
                }
            }
        }
    }
}

/// Pixels shaded per pass of [`shade`]: their colours are looked up into buffers on the
/// stack, then painted four at a time.
const BLOCK: usize = 64;

/// 0, 1, 2, … as `f32`, one per pixel of a block.
const STEPS: [f32; BLOCK] = {
    let mut steps = [0.0; BLOCK];
    let mut i = 0;
    while i < BLOCK {
        steps[i] = i as f32;
        i += 1;
    }
    steps
};

/// Fills the whole canvas with a straight RGBA colour laid over opaque black.
pub fn fill_opaque(canvas: &mut PixmapMut<'_>, color: [u8; 4]) {
    let p = premultiply(color);
    let px = [p[0] as u8, p[1] as u8, p[2] as u8, 255];
    let row = canvas.width() as usize * 4;
    let (first, rest) = canvas.data_mut().split_at_mut(row);
    for d in first.chunks_exact_mut(4) {
        d.copy_from_slice(&px);
    }
    // Whole rows are copied at memcpy speed.
    for r in rest.chunks_exact_mut(row) {
        r.copy_from_slice(first);
    }
}

/// Fills a rectangle with a straight RGBA colour laid over opaque black (replacing what is
/// there).
pub fn fill_rect_opaque(
    canvas: &mut PixmapMut<'_>,
    x: i32,
    y: i32,
    w: u32,
    h: u32,
    color: [u8; 4],
) {
    let (cw, ch) = (canvas.width(), canvas.height());
    let Some((x0, x1, y0, y1, cx, cy)) = clip(x, y, w, h, cw, ch) else {
        return;
    };
    let p = premultiply(color);
    let px = [p[0] as u8, p[1] as u8, p[2] as u8, 255];
    let data = canvas.data_mut();
    for row in 0..(y1 - y0) {
        let start = (((cy + row) * cw + cx) * 4) as usize;
        for d in data[start..start + ((x1 - x0) * 4) as usize].chunks_exact_mut(4) {
            d.copy_from_slice(&px);
        }
    }
}

/// `out = a + (b - a) * t / 255` per channel (a cross-fade from `a` to `b`).
pub fn mix(out: &mut [u8], a: &[u8], b: &[u8], t: u8) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = lerp255(x, y, t);
    }
}

/// `x + (y - x)·t/255`, rounded; in 16 bits, so the compiler vectorizes it 16 bytes at a time.
#[inline]
fn lerp255(x: u8, y: u8, t: u8) -> u8 {
    let t = u16::from(t);
    let v = u16::from(x) * (255 - t) + u16::from(y) * t + 128;
    ((v + (v >> 8)) >> 8) as u8
}

/// `out` shows `a` pushed left by `offset` pixels and `b` following it in from the right
/// (a slide from `a` to `b`); all three are `width` pixels wide.
pub fn slide(out: &mut [u8], a: &[u8], b: &[u8], width: u32, offset: u32) {
    let row = width as usize * 4;
    let off = offset.min(width) as usize * 4;
    for ((o, x), y) in out
        .chunks_exact_mut(row)
        .zip(a.chunks_exact(row))
        .zip(b.chunks_exact(row))
    {
        o[..row - off].copy_from_slice(&x[off..]);
        o[row - off..].copy_from_slice(&y[..off]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(buf: &mut [u8], w: u32, h: u32) -> PixmapMut<'_> {
        PixmapMut::from_bytes(buf, w, h).unwrap()
    }

    #[test]
    fn opaque_and_half_coverage() {
        let mut buf = vec![0u8; 4 * 4 * 4];
        buf.chunks_exact_mut(4)
            .for_each(|p| p.copy_from_slice(&[0, 0, 255, 255]));
        let mut mask = Mask::new(2, 1).unwrap();
        mask.data_mut().copy_from_slice(&[255, 128]);
        blend_mask(
            &mut canvas(&mut buf, 4, 4),
            &mask,
            1,
            1,
            premultiply([255, 0, 0, 255]),
        );
        let px = |b: &[u8], x: usize, y: usize| b[(y * 4 + x) * 4..][..4].to_vec();
        assert_eq!(px(&buf, 1, 1), [255, 0, 0, 255]);
        assert_eq!(px(&buf, 2, 1), [128, 0, 127, 255]);
        assert_eq!(
            px(&buf, 0, 0),
            [0, 0, 255, 255],
            "outside the mask untouched"
        );
    }

    #[test]
    fn items_are_clipped_at_every_edge() {
        let mut buf = vec![0u8; 3 * 3 * 4];
        fill_rect(
            &mut canvas(&mut buf, 3, 3),
            -5,
            -5,
            100,
            6,
            premultiply([9, 9, 9, 255]),
        );
        assert!(buf[..3 * 4].chunks_exact(4).all(|p| p == [9, 9, 9, 255]));
        assert!(buf[3 * 4..].iter().all(|&b| b == 0));
        let sprite = Pixmap::new(4, 4).unwrap();
        blend_pixmap(&mut canvas(&mut buf, 3, 3), &sprite, 2, 2);
        blend_pixmap(&mut canvas(&mut buf, 3, 3), &sprite, 10, -10);
    }

    #[test]
    fn packed_blending_matches_per_channel() {
        for (d, s, o) in [
            ([10u8, 200, 30, 255], [100u8, 0, 50, 128], 255u32),
            ([255, 255, 255, 255], [0, 0, 0, 200], 77),
            ([0, 0, 0, 0], [120, 60, 30, 130], 255),
            ([9, 8, 7, 6], [255, 255, 255, 255], 1),
        ] {
            let mut packed = d;
            blend_row(&mut packed, &s, o);
            let mut channels = d;
            let src = s.map(|c| mul255(c.into(), o));
            if src[3] != 0 {
                over(&mut channels, src);
            }
            assert_eq!(packed, channels, "{d:?} {s:?} {o}");
        }
    }

    /// Valid premultiplied pixels from a simple generator.
    fn pixels(n: usize, mut seed: u32) -> Vec<u8> {
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        };
        (0..n)
            .flat_map(|i| {
                // Every fourth pixel fully transparent or opaque, to cover the shortcuts.
                let a = match i % 4 {
                    0 => 0,
                    1 => 255,
                    _ => next(),
                };
                let p = premultiply([next(), next(), next(), a]);
                p.map(|c| c as u8)
            })
            .collect()
    }

    #[test]
    fn four_pixel_groups_match_the_scalar_rounding() {
        // 23 pixels: five groups of four and a tail of three.
        for (seed, opacity) in [(1, 255u8), (2, 200), (3, 1), (4, 0)] {
            let (src, mut dst) = (pixels(23, seed), pixels(23, seed + 100));
            let mut expected = dst.clone();
            for (d, s) in expected.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                let s = [0, 1, 2, 3].map(|c| mul255(s[c].into(), opacity.into()));
                over(d, s);
            }
            blend_row(&mut dst, &src, opacity.into());
            assert_eq!(dst, expected, "blend_row at opacity {opacity}");

            let coverage: Vec<u8> = pixels(6, seed + 7).into_iter().take(23).collect();
            let mut mask = Mask::new(23, 1).unwrap();
            mask.data_mut().copy_from_slice(&coverage);
            let color = premultiply([200, 100, 50, 180]);
            let mut dst = pixels(23, seed + 200);
            let mut expected = dst.clone();
            for (d, &a) in expected.chunks_exact_mut(4).zip(&coverage) {
                if a != 0 {
                    over(d, color.map(|c| mul255(c, a.into())));
                }
            }
            blend_mask(&mut canvas(&mut dst, 23, 1), &mask, 0, 0, color);
            assert_eq!(dst, expected, "blend_mask");
        }
    }

    #[test]
    fn sprites_copy_fade_and_slide() {
        let mut sprite = Pixmap::new(2, 1).unwrap();
        sprite
            .data_mut()
            .copy_from_slice(&[200, 0, 0, 255, 0, 100, 0, 255]);
        let mut buf = vec![0u8; 3 * 4];
        draw_sprite(
            &mut canvas(&mut buf, 3, 1),
            &sprite,
            (0, 0, 2, 1),
            1,
            0,
            255,
            true,
        );
        assert_eq!(buf, [0, 0, 0, 0, 200, 0, 0, 255, 0, 100, 0, 255]);
        let mut buf = vec![0u8; 3 * 4];
        draw_sprite(
            &mut canvas(&mut buf, 3, 1),
            &sprite,
            (0, 0, 2, 1),
            0,
            0,
            128,
            true,
        );
        assert_eq!(&buf[..4], &[100, 0, 0, 128]);
        let (a, b) = (
            [0u8, 0, 0, 255, 10, 10, 10, 255],
            [255u8, 255, 255, 255, 20, 20, 20, 255],
        );
        let mut out = [0u8; 8];
        mix(&mut out, &a, &b, 255);
        assert_eq!(out, b);
        mix(&mut out, &a, &b, 0);
        assert_eq!(out, a);
        slide(&mut out, &a, &b, 2, 1);
        assert_eq!(out, [10, 10, 10, 255, 255, 255, 255, 255]);
    }

    #[test]
    fn part_of_a_sprite_lands_where_asked() {
        let mut sprite = Pixmap::new(4, 4).unwrap();
        sprite.data_mut()[(4 + 2) * 4..(4 + 2) * 4 + 4].copy_from_slice(&[0, 255, 0, 255]);
        let mut buf = vec![0u8; 4 * 4 * 4];
        blend_pixmap_part(&mut canvas(&mut buf, 4, 4), &sprite, (2, 1, 2, 2), 2, 1);
        assert_eq!(&buf[(4 + 2) * 4..(4 + 2) * 4 + 4], &[0, 255, 0, 255]);
        assert_eq!(buf.iter().filter(|&&b| b != 0).count(), 2);
    }
}
