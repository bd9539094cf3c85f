//! Source-over of premultiplied RGBA rows, four pixels at a time with SSE2 (part of every
//! x86-64 CPU, so no runtime detection is needed).
//!
//! Each function handles the longest prefix that is a whole number of four-pixel groups
//! and returns how many pixels it did; the caller finishes the rest with the scalar code
//! in `blend`, whose rounding these match exactly (`x·a/255` as `(t + (t >> 8)) >> 8` with
//! `t = x·a + 128`, exact in 16-bit lanes).

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi16, _mm_adds_epu8, _mm_cmpeq_epi32, _mm_cvtsi32_si128, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_mullo_epi16, _mm_or_si128, _mm_packus_epi16, _mm_set1_epi8,
        _mm_set1_epi16, _mm_set1_epi32, _mm_setzero_si128, _mm_slli_epi32, _mm_srli_epi16,
        _mm_srli_epi32, _mm_storeu_si128, _mm_unpackhi_epi8, _mm_unpacklo_epi8, _mm_xor_si128,
    };

    /// Four pixels from 16 bytes.
    #[inline(always)]
    fn load(bytes: &[u8]) -> __m128i {
        assert!(bytes.len() >= 16);
        // SAFETY: at least 16 readable bytes (asserted); `loadu` has no alignment needs.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }

    /// Stores four pixels into 16 bytes.
    #[inline(always)]
    fn store(bytes: &mut [u8], v: __m128i) {
        assert!(bytes.len() >= 16);
        // SAFETY: at least 16 writable bytes (asserted); `storeu` has no alignment needs.
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), v) }
    }

    /// `x·a/255`, rounded, in 16-bit lanes holding 8-bit values.
    #[inline(always)]
    fn mul255(x: __m128i, a: __m128i) -> __m128i {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        unsafe {
            let t = _mm_add_epi16(_mm_mullo_epi16(x, a), _mm_set1_epi16(128));
            _mm_srli_epi16(_mm_add_epi16(t, _mm_srli_epi16(t, 8)), 8)
        }
    }

    /// Each byte of `px` times the matching byte of `f`, over 255.
    #[inline(always)]
    fn scale(px: __m128i, f: __m128i) -> __m128i {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        unsafe {
            let z = _mm_setzero_si128();
            let lo = mul255(_mm_unpacklo_epi8(px, z), _mm_unpacklo_epi8(f, z));
            let hi = mul255(_mm_unpackhi_epi8(px, z), _mm_unpackhi_epi8(f, z));
            _mm_packus_epi16(lo, hi)
        }
    }

    /// Each pixel's alpha in all four of its bytes.
    #[inline(always)]
    fn alphas(px: __m128i) -> __m128i {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        unsafe {
            let a = _mm_srli_epi32(px, 24);
            let a = _mm_or_si128(a, _mm_slli_epi32(a, 8));
            _mm_or_si128(a, _mm_slli_epi32(a, 16))
        }
    }

    /// Premultiplied `s` over `d`.
    #[inline(always)]
    fn over(d: __m128i, s: __m128i) -> __m128i {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        unsafe {
            let inv = _mm_xor_si128(alphas(s), _mm_set1_epi8(-1));
            _mm_adds_epu8(s, scale(d, inv))
        }
    }

    /// Four coverage bytes, each repeated over its pixel's four bytes.
    #[inline(always)]
    fn spread(cov: &[u8]) -> __m128i {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        unsafe {
            let c = _mm_cvtsi32_si128(i32::from_le_bytes([cov[0], cov[1], cov[2], cov[3]]));
            let c = _mm_unpacklo_epi8(c, c);
            _mm_unpacklo_epi8(c, c)
        }
    }

    /// Whether all four pixels are fully transparent (premultiplied: alpha 0).
    #[inline(always)]
    fn is_clear(px: __m128i) -> bool {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        unsafe {
            let a = _mm_srli_epi32(px, 24);
            _mm_movemask_epi8(_mm_cmpeq_epi32(a, _mm_setzero_si128())) == 0xffff
        }
    }

    pub fn blend_row(dst: &mut [u8], src: &[u8], opacity: u8) -> usize {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        let f = unsafe { _mm_set1_epi8(opacity as i8) };
        let mut n = 0;
        for (d, s) in dst.chunks_exact_mut(16).zip(src.chunks_exact(16)) {
            let mut sv = load(s);
            if opacity < 255 {
                sv = scale(sv, f);
            }
            if !is_clear(sv) {
                store(d, over(load(d), sv));
            }
            n += 4;
        }
        n
    }

    pub fn paint_mask_row(dst: &mut [u8], coverage: &[u8], color: u32) -> usize {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        let c = unsafe { _mm_set1_epi32(color as i32) };
        let mut n = 0;
        for (d, cov) in dst.chunks_exact_mut(16).zip(coverage.chunks_exact(4)) {
            if cov != [0; 4] {
                store(d, over(load(d), scale(c, spread(cov))));
            }
            n += 4;
        }
        n
    }

    pub fn paint_colors_row(dst: &mut [u8], colors: &[u32], coverage: &[u8]) -> usize {
        let mut n = 0;
        for ((d, s), cov) in dst
            .chunks_exact_mut(16)
            .zip(colors.chunks_exact(4))
            .zip(coverage.chunks_exact(4))
        {
            if cov == [255; 4] && s.iter().all(|c| c >> 24 == 255) {
                // Opaque colours fully covered replace what is there.
                for (px, c) in d.chunks_exact_mut(4).zip(s) {
                    px.copy_from_slice(&c.to_le_bytes());
                }
            } else if cov != [0; 4] {
                let mut bytes = [0u8; 16];
                for (b, c) in bytes.chunks_exact_mut(4).zip(s) {
                    b.copy_from_slice(&c.to_le_bytes());
                }
                store(d, over(load(d), scale(load(&bytes), spread(cov))));
            }
            n += 4;
        }
        n
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{blend_row, paint_colors_row, paint_mask_row};

/// Blends `src` (scaled by `opacity`) over `dst`: the four-pixel groups, done elsewhere.
#[cfg(not(target_arch = "x86_64"))]
pub fn blend_row(_dst: &mut [u8], _src: &[u8], _opacity: u8) -> usize {
    0
}

/// Paints a colour through coverage: the four-pixel groups, done elsewhere.
#[cfg(not(target_arch = "x86_64"))]
pub fn paint_mask_row(_dst: &mut [u8], _coverage: &[u8], _color: u32) -> usize {
    0
}

/// Paints per-pixel colours through coverage: the four-pixel groups, done elsewhere.
#[cfg(not(target_arch = "x86_64"))]
pub fn paint_colors_row(_dst: &mut [u8], _colors: &[u32], _coverage: &[u8]) -> usize {
    0
}
