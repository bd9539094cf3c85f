//! Allocation-free compositing onto a premultiplied RGBA frame: solid rectangles, cached
//! coverage masks (glyphs) in a colour, and cached premultiplied sprites, all source-over.
//!
//! tiny-skia rasterizes each cached item once; per frame only these loops run, so drawing
//! a frame of cached items touches no allocator (tiny-skia's path filling allocates edge
//! lists on every call).

use tiny_skia::{Mask, Pixmap, PixmapMut};

/// `x * a / 255`, rounded, for 8-bit values.
#[inline]
fn mul255(x: u32, a: u32) -> u32 {
    let t = x * a + 128;
    (t + (t >> 8)) >> 8
}

/// `src` over `dst`, both premultiplied RGBA.
#[inline]
fn over(dst: &mut [u8], src: [u32; 4]) {
    let inv = 255 - src[3];
    for c in 0..4 {
        dst[c] = (src[c] + mul255(u32::from(dst[c]), inv)) as u8;
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
    for row in 0..(y1 - y0) {
        let m = ((y0 + row) * mw + x0) as usize;
        let d = (((cy + row) * cw + cx) * 4) as usize;
        let cov = &coverage[m..m + (x1 - x0) as usize];
        for (px, &a) in data[d..d + cov.len() * 4].chunks_exact_mut(4).zip(cov) {
            if a != 0 {
                let a = u32::from(a);
                over(
                    px,
                    [
                        mul255(color[0], a),
                        mul255(color[1], a),
                        mul255(color[2], a),
                        mul255(color[3], a),
                    ],
                );
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
    for row in 0..(y1 - y0) {
        let s = (((pt + y0 + row) * sw + pl + x0) * 4) as usize;
        let d = (((cy + row) * cw + cx) * 4) as usize;
        let n = ((x1 - x0) * 4) as usize;
        for (px, sp) in data[d..d + n]
            .chunks_exact_mut(4)
            .zip(src[s..s + n].chunks_exact(4))
        {
            if sp[3] != 0 {
                over(px, [sp[0].into(), sp[1].into(), sp[2].into(), sp[3].into()]);
            }
        }
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
    fn part_of_a_sprite_lands_where_asked() {
        let mut sprite = Pixmap::new(4, 4).unwrap();
        sprite.data_mut()[(4 + 2) * 4..(4 + 2) * 4 + 4].copy_from_slice(&[0, 255, 0, 255]);
        let mut buf = vec![0u8; 4 * 4 * 4];
        blend_pixmap_part(&mut canvas(&mut buf, 4, 4), &sprite, (2, 1, 2, 2), 2, 1);
        assert_eq!(&buf[(4 + 2) * 4..(4 + 2) * 4 + 4], &[0, 255, 0, 255]);
        assert_eq!(buf.iter().filter(|&&b| b != 0).count(), 2);
    }
}
