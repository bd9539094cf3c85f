//! Decoded pictures to premultiplied RGBA at the size a layer draws them, straight into the
//! layer's raster.
//!
//! 8-bit 4:2:0 pictures (what cameras and nearly all files send) are scaled by swscale in
//! YUV, where its SIMD paths are (into a scratch picture kept between frames), then turned
//! into RGBA by the `yuv` crate's AVX2/SSE/NEON converters: a 1080p picture into a 360p
//! layer costs 4.0 ms this way against 4.6 ms through swscale's own YUV → RGBA output
//! (`benches/inputs.rs`). Other formats (10-bit, 4:2:2, RGB…) go through swscale in one
//! pass.
//!
//! The source's colour matrix (BT.601 / BT.709 / BT.2020) and range (limited / full) are
//! honoured; a stream that does not say is taken as BT.709 from 720 lines up and BT.601
//! below, as players do. Cropping (`cover`) moves the source plane pointers, so it costs
//! nothing extra.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use tiny_skia::Pixmap;

/// One swscale context, rebuilt only when the source or target geometry changes.
pub struct Converter {
    ctx: *mut ffi::SwsContext,
    /// Source format, source crop size, target size, colour matrix, source range.
    key: (i32, u32, u32, u32, u32, i32, bool),
    /// The 4:2:0 path: the picture scaled in YUV (Y, then U, then V), reused between frames.
    scratch: Vec<u8>,
}

// SAFETY: the context is owned by this value and used only through `&mut self`.
unsafe impl Send for Converter {}

impl Default for Converter {
    fn default() -> Self {
        Self {
            ctx: std::ptr::null_mut(),
            key: (-1, 0, 0, 0, 0, 0, false),
            scratch: Vec::new(),
        }
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            // SAFETY: created by sws_getContext and not freed elsewhere.
            unsafe { ffi::sws_freeContext(self.ctx) };
        }
    }
}

/// The swscale colour matrix of a picture.
fn matrix(frame: &ffmpeg::frame::Video) -> i32 {
    use ffmpeg::color::Space;
    match frame.color_space() {
        Space::BT709 => ffi::SWS_CS_ITU709,
        Space::BT470BG | Space::SMPTE170M => ffi::SWS_CS_ITU601,
        Space::SMPTE240M => ffi::SWS_CS_SMPTE240M,
        Space::FCC => ffi::SWS_CS_FCC,
        Space::BT2020NCL | Space::BT2020CL => ffi::SWS_CS_BT2020,
        _ if frame.height() >= 720 => ffi::SWS_CS_ITU709,
        _ => ffi::SWS_CS_ITU601,
    }
}

/// The `yuv` crate's matrix for a swscale one.
fn yuv_matrix(cs: i32) -> Option<yuv::YuvStandardMatrix> {
    use yuv::YuvStandardMatrix as M;
    Some(match cs {
        ffi::SWS_CS_ITU709 => M::Bt709,
        ffi::SWS_CS_ITU601 => M::Bt601,
        ffi::SWS_CS_BT2020 => M::Bt2020,
        ffi::SWS_CS_SMPTE240M => M::Smpte240,
        ffi::SWS_CS_FCC => M::Fcc,
        _ => return None,
    })
}

fn full_range(frame: &ffmpeg::frame::Video) -> bool {
    use ffmpeg::format::Pixel;
    frame.color_range() == ffmpeg::color::Range::JPEG
        || matches!(
            frame.format(),
            Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P
        )
}

impl Converter {
    /// Converts the `src` part (`x, y, w, h`) of `frame` into the `dst` part of `raster`
    /// (opaque RGBA, which is its own premultiplied form). False when the picture's format
    /// cannot be converted.
    pub fn convert(
        &mut self,
        frame: &ffmpeg::frame::Video,
        src: [u32; 4],
        raster: &mut Pixmap,
        dst: [u32; 4],
    ) -> bool {
        let format: ffi::AVPixelFormat = frame.format().into();
        // SAFETY: the descriptor of a pixel format FFmpeg decoded into is static.
        let Some(desc) = (unsafe { ffi::av_pix_fmt_desc_get(format).as_ref() }) else {
            return false;
        };
        if desc.flags
            & (ffi::AV_PIX_FMT_FLAG_HWACCEL as u64 | ffi::AV_PIX_FMT_FLAG_BITSTREAM as u64)
            != 0
        {
            return false;
        }
        // Crop origins on the chroma grid, so every plane starts on a whole sample.
        let (sx_mask, sy_mask) = (
            !((1u32 << desc.log2_chroma_w) - 1),
            !((1u32 << desc.log2_chroma_h) - 1),
        );
        let (cx, cy) = (src[0] & sx_mask, src[1] & sy_mask);
        let (cw, ch) = (
            src[2].min(frame.width() - cx),
            src[3].min(frame.height() - cy),
        );
        let (dw, dh) = (dst[2], dst[3]);
        if cw == 0 || ch == 0 || dw == 0 || dh == 0 {
            return false;
        }
        if dst[0] + dw > raster.width() || dst[1] + dh > raster.height() {
            return false;
        }
        let cs = matrix(frame);
        let full = full_range(frame);
        // SAFETY: a decoded picture's line sizes.
        let upright = unsafe { (&(*frame.as_ptr()).linesize)[..3].iter().all(|&l| l > 0) };
        let planar420 = matches!(
            format,
            ffi::AVPixelFormat::AV_PIX_FMT_YUV420P | ffi::AVPixelFormat::AV_PIX_FMT_YUVJ420P
        ) && upright
            && [cw, ch, dw, dh].iter().all(|v| v % 2 == 0);
        if let Some(matrix) = yuv_matrix(cs).filter(|_| planar420) {
            return self.convert_420(frame, (cx, cy, cw, ch), raster, dst, (matrix, full));
        }
        let key = (format as i32, cw, ch, dw, dh, cs, full);
        if key != self.key || self.ctx.is_null() {
            if !self.rebuild(
                (cw, ch, format),
                (dw, dh, ffi::AVPixelFormat::AV_PIX_FMT_RGBA),
            ) {
                return false;
            }
            // SAFETY: a live context.
            unsafe {
                let coefficients = ffi::sws_getCoefficients(cs);
                ffi::sws_setColorspaceDetails(
                    self.ctx,
                    coefficients,
                    i32::from(full),
                    ffi::sws_getCoefficients(ffi::SWS_CS_DEFAULT),
                    1,
                    0,
                    1 << 16,
                    1 << 16,
                );
            }
            self.key = key;
        }
        // Plane pointers moved to the crop origin: per component, its plane, its byte step
        // and (for chroma) the subsampling.
        let mut planes: [*const u8; 4] = [std::ptr::null(); 4];
        let mut strides = [0i32; 4];
        // SAFETY: the frame is a decoded picture of `format`; offsets stay inside its planes
        // because the crop lies inside the picture.
        unsafe {
            let raw = &*frame.as_ptr();
            for (plane, data) in planes.iter_mut().zip(raw.data) {
                *plane = data;
            }
            strides.copy_from_slice(&raw.linesize[..4]);
            let mut moved = [false; 4];
            for c in 0..usize::from(desc.nb_components) {
                let comp = desc.comp[c];
                let plane = comp.plane as usize;
                if moved[plane] || planes[plane].is_null() {
                    continue;
                }
                moved[plane] = true;
                let chroma =
                    (c == 1 || c == 2) && desc.flags & ffi::AV_PIX_FMT_FLAG_RGB as u64 == 0;
                let (shx, shy) = if chroma {
                    (desc.log2_chroma_w, desc.log2_chroma_h)
                } else {
                    (0, 0)
                };
                let offset = (cy >> shy) as isize * strides[plane] as isize
                    + (cx >> shx) as isize * comp.step as isize;
                planes[plane] = planes[plane].offset(offset);
            }
            let row = raster.width() as usize * 4;
            let out = raster
                .data_mut()
                .as_mut_ptr()
                .add(dst[1] as usize * row + dst[0] as usize * 4);
            let dst_planes = [
                out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ];
            let dst_strides = [row as i32, 0, 0, 0];
            let lines = ffi::sws_scale(
                self.ctx,
                planes.as_ptr(),
                strides.as_ptr(),
                0,
                ch as i32,
                dst_planes.as_ptr(),
                dst_strides.as_ptr(),
            );
            lines > 0
        }
    }

    /// A new bilinear swscale context from `src` to `dst` (width, height, format), the old
    /// one freed; false if swscale refuses.
    fn rebuild(
        &mut self,
        src: (u32, u32, ffi::AVPixelFormat),
        dst: (u32, u32, ffi::AVPixelFormat),
    ) -> bool {
        // SAFETY: plain constructor calls; the old context is freed first.
        unsafe {
            if !self.ctx.is_null() {
                ffi::sws_freeContext(self.ctx);
            }
            self.ctx = ffi::sws_getContext(
                src.0 as i32,
                src.1 as i32,
                src.2,
                dst.0 as i32,
                dst.1 as i32,
                dst.2,
                ffi::SWS_BILINEAR,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
            );
        }
        !self.ctx.is_null()
    }

    /// The 8-bit 4:2:0 path: crop `(x, y, w, h)` (even, on the chroma grid) scaled in YUV
    /// when the sizes differ, then converted to RGBA into `dst` of `raster`.
    fn convert_420(
        &mut self,
        frame: &ffmpeg::frame::Video,
        (cx, cy, cw, ch): (u32, u32, u32, u32),
        raster: &mut Pixmap,
        dst: [u32; 4],
        (matrix, full): (yuv::YuvStandardMatrix, bool),
    ) -> bool {
        let (dw, dh) = (dst[2], dst[3]);
        let (cx, cy, cw, ch) = (cx as usize, cy as usize, cw as usize, ch as usize);
        // SAFETY: the planes of a decoded 4:2:0 picture with positive line sizes; the crop
        // lies inside it, so each slice ends inside its plane.
        let raw = unsafe { &*frame.as_ptr() };
        let strides: [u32; 3] = std::array::from_fn(|p| raw.linesize[p] as u32);
        let planes: [&[u8]; 3] = std::array::from_fn(|p| {
            let (x, y, w, h) = if p == 0 {
                (cx, cy, cw, ch)
            } else {
                (cx / 2, cy / 2, cw / 2, ch / 2)
            };
            let stride = strides[p] as usize;
            // SAFETY: as above.
            unsafe {
                std::slice::from_raw_parts(raw.data[p].add(y * stride + x), (h - 1) * stride + w)
            }
        });
        let (dwu, dhu) = (dw as usize, dh as usize);
        let scaled = (cw, ch) != (dwu, dhu);
        if scaled {
            let key = (-2, cw as u32, ch as u32, dw, dh, 0, false);
            if key != self.key || self.ctx.is_null() {
                let yuv420 = ffi::AVPixelFormat::AV_PIX_FMT_YUV420P;
                if !self.rebuild((cw as u32, ch as u32, yuv420), (dw, dh, yuv420)) {
                    return false;
                }
                self.key = key;
                self.scratch.resize(dwu * dhu * 3 / 2, 0);
            }
            let (y, uv) = self.scratch.split_at_mut(dwu * dhu);
            let (u, v) = uv.split_at_mut(dwu * dhu / 4);
            let out = [
                y.as_mut_ptr(),
                u.as_mut_ptr(),
                v.as_mut_ptr(),
                std::ptr::null_mut(),
            ];
            let out_strides = [dw as i32, dw as i32 / 2, dw as i32 / 2, 0];
            let src = [
                planes[0].as_ptr(),
                planes[1].as_ptr(),
                planes[2].as_ptr(),
                std::ptr::null(),
            ];
            let src_strides = [strides[0] as i32, strides[1] as i32, strides[2] as i32, 0];
            // SAFETY: source planes as above; the scratch planes hold dw×dh and two
            // (dw/2)×(dh/2) pictures.
            let lines = unsafe {
                ffi::sws_scale(
                    self.ctx,
                    src.as_ptr(),
                    src_strides.as_ptr(),
                    0,
                    ch as i32,
                    out.as_ptr(),
                    out_strides.as_ptr(),
                )
            };
            if lines <= 0 {
                return false;
            }
        }
        let image = if scaled {
            let (y, uv) = self.scratch.split_at(dwu * dhu);
            let (u, v) = uv.split_at(dwu * dhu / 4);
            yuv::YuvPlanarImage {
                y_plane: y,
                y_stride: dw,
                u_plane: u,
                u_stride: dw / 2,
                v_plane: v,
                v_stride: dw / 2,
                width: dw,
                height: dh,
            }
        } else {
            yuv::YuvPlanarImage {
                y_plane: planes[0],
                y_stride: strides[0],
                u_plane: planes[1],
                u_stride: strides[1],
                v_plane: planes[2],
                v_stride: strides[2],
                width: dw,
                height: dh,
            }
        };
        let row = raster.width() as usize * 4;
        let start = dst[1] as usize * row + dst[0] as usize * 4;
        let range = if full {
            yuv::YuvRange::Full
        } else {
            yuv::YuvRange::Limited
        };
        yuv::yuv420_to_rgba(
            &image,
            &mut raster.data_mut()[start..],
            row as u32,
            range,
            matrix,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limited-range BT.709 picture, left half pure red, right half pure blue.
    fn picture(w: u32, h: u32) -> ffmpeg::frame::Video {
        let mut f = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, w, h);
        f.set_color_space(ffmpeg::color::Space::BT709);
        f.set_color_range(ffmpeg::color::Range::MPEG);
        // BT.709 limited: red = (63, 102, 240), blue = (32, 240, 118).
        let (red, blue) = ([63u8, 102, 240], [32u8, 240, 118]);
        for plane in 0..3 {
            let (pw, ph) = if plane == 0 { (w, h) } else { (w / 2, h / 2) };
            let stride = f.stride(plane);
            let data = f.data_mut(plane);
            for y in 0..ph as usize {
                for x in 0..pw as usize {
                    data[y * stride + x] = if x < pw as usize / 2 {
                        red[plane]
                    } else {
                        blue[plane]
                    };
                }
            }
        }
        f
    }

    fn rgb(p: &Pixmap, x: u32, y: u32) -> [u8; 4] {
        let c = p.pixel(x, y).unwrap();
        [c.red(), c.green(), c.blue(), c.alpha()]
    }

    fn near(a: [u8; 4], b: [u8; 4]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 6)
    }

    #[test]
    fn full_range_bt601_and_other_formats_convert_alike() {
        // Full-range BT.601 grey-blue (Y 100, U 170, V 90): R = 100 + 1.402·(90 − 128),
        // G = 100 − 0.344·42 + 0.714·38, B = 100 + 1.772·42.
        let (w, h) = (64, 36);
        let mut f = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, w, h);
        f.set_color_space(ffmpeg::color::Space::BT470BG);
        f.set_color_range(ffmpeg::color::Range::JPEG);
        for (plane, value) in [(0, 100u8), (1, 170), (2, 90)] {
            f.data_mut(plane).fill(value);
        }
        let expected = [47, 113, 174, 255];
        let mut c = Converter::default();
        for (dw, dh) in [(64, 36), (32, 18), (30, 20)] {
            let mut raster = Pixmap::new(dw, dh).unwrap();
            assert!(c.convert(&f, [0, 0, w, h], &mut raster, [0, 0, dw, dh]));
            let got = rgb(&raster, dw / 2, dh / 2);
            assert!(near(got, expected), "{dw}x{dh}: {got:?}");
        }
        // The same picture as 4:4:4 takes swscale's one-pass path: the same colour.
        let mut g = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV444P, w, h);
        g.set_color_space(ffmpeg::color::Space::BT470BG);
        g.set_color_range(ffmpeg::color::Range::JPEG);
        for (plane, value) in [(0, 100u8), (1, 170), (2, 90)] {
            g.data_mut(plane).fill(value);
        }
        let mut raster = Pixmap::new(32, 18).unwrap();
        assert!(c.convert(&g, [0, 0, w, h], &mut raster, [0, 0, 32, 18]));
        assert!(
            near(rgb(&raster, 16, 9), expected),
            "{:?}",
            rgb(&raster, 16, 9)
        );
    }

    #[test]
    fn colours_survive_conversion_scaling_and_cropping() {
        let frame = picture(320, 180);
        let mut c = Converter::default();
        // Same size.
        let mut raster = Pixmap::new(320, 180).unwrap();
        assert!(c.convert(&frame, [0, 0, 320, 180], &mut raster, [0, 0, 320, 180]));
        assert!(
            near(rgb(&raster, 10, 10), [255, 0, 0, 255]),
            "{:?}",
            rgb(&raster, 10, 10)
        );
        assert!(near(rgb(&raster, 310, 170), [0, 0, 255, 255]));
        // Scaled down into a letterboxed part: outside it stays transparent.
        let mut boxed = Pixmap::new(100, 100).unwrap();
        assert!(c.convert(&frame, [0, 0, 320, 180], &mut boxed, [0, 22, 100, 56]));
        assert_eq!(rgb(&boxed, 50, 5), [0, 0, 0, 0]);
        assert!(near(rgb(&boxed, 5, 50), [255, 0, 0, 255]));
        assert!(near(rgb(&boxed, 95, 50), [0, 0, 255, 255]));
        // Cropped to the right half: all blue.
        let mut crop = Pixmap::new(40, 40).unwrap();
        assert!(c.convert(&frame, [170, 0, 150, 180], &mut crop, [0, 0, 40, 40]));
        assert!(near(rgb(&crop, 1, 1), [0, 0, 255, 255]));
        assert!(near(rgb(&crop, 38, 38), [0, 0, 255, 255]));
    }
}
