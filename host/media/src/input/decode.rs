//! Video decoding with FFmpeg, bounded: a picture larger than the configured maximum is
//! refused by the decoder before it allocates for it (`max_pixels`), and checked again on
//! the way out.

use ffmpeg_next as ffmpeg;

/// Largest decoded picture, by default (4K DCI).
pub const DEFAULT_MAX_PICTURE: (u32, u32) = (4096, 2160);

/// Why decoding could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// FFmpeg has no decoder for this codec here.
    #[error("no decoder for {0} in this FFmpeg")]
    Unsupported(String),
    /// The decoder could not be opened.
    #[error("opening the {codec} decoder failed: {source}")]
    Open {
        /// Codec name.
        codec: String,
        /// FFmpeg's reason.
        source: ffmpeg::Error,
    },
    /// A picture over the size limit.
    #[error("a {width}×{height} picture is over the limit of {max_w}×{max_h} (--max-input-size)")]
    TooLarge {
        /// Picture width.
        width: u32,
        /// Picture height.
        height: u32,
        /// Largest width.
        max_w: u32,
        /// Largest height.
        max_h: u32,
    },
}

/// An FFmpeg video decoder on the input's own thread.
pub struct VideoDecoder {
    decoder: ffmpeg::decoder::Video,
    frame: ffmpeg::frame::Video,
    max: (u32, u32),
}

impl VideoDecoder {
    /// Opens a decoder for a demuxed stream's parameters (a file).
    pub fn from_parameters(
        parameters: ffmpeg::codec::Parameters,
        max: (u32, u32),
    ) -> Result<Self, DecodeError> {
        let id = parameters.id();
        let mut ctx =
            ffmpeg::codec::context::Context::from_parameters(parameters).map_err(|e| {
                DecodeError::Open {
                    codec: format!("{id:?}"),
                    source: e,
                }
            })?;
        // The size the container declares is refused before a decoder exists.
        // SAFETY: plain fields of a context this function owns.
        let (width, height) = unsafe {
            let raw = ctx.as_ptr();
            (
                u32::try_from((*raw).width).unwrap_or(0),
                u32::try_from((*raw).height).unwrap_or(0),
            )
        };
        check_size((width, height), max)?;
        Self::open(&mut ctx, id, max)?;
        Self::finish(ctx, id, max)
    }

    /// Opens a decoder for `codec` with its out-of-band configuration (`extradata`: e.g. an
    /// H.264 `AVCDecoderConfigurationRecord` from RTMP), or none for Annex-B streams that
    /// carry their parameter sets in band.
    pub fn for_codec(
        id: ffmpeg::codec::Id,
        extradata: Option<&[u8]>,
        max: (u32, u32),
    ) -> Result<Self, DecodeError> {
        let mut ctx = context_with_extradata(extradata).map_err(|e| DecodeError::Open {
            codec: format!("{id:?}"),
            source: e,
        })?;
        Self::open(&mut ctx, id, max)?;
        Self::finish(ctx, id, max)
    }

    /// Sets the codec and the picture bound on a context before it is opened.
    fn open(
        ctx: &mut ffmpeg::codec::context::Context,
        id: ffmpeg::codec::Id,
        max: (u32, u32),
    ) -> Result<(), DecodeError> {
        // SAFETY: the context is not opened yet; these are plain fields FFmpeg reads at open.
        unsafe {
            let raw = ctx.as_mut_ptr();
            (*raw).codec_id = id.into();
            (*raw).codec_type = ffmpeg::ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
            (*raw).max_pixels = i64::from(max.0) * i64::from(max.1);
            // One thread per input: its own OS thread is the parallelism.
            (*raw).thread_count = 1;
        }
        Ok(())
    }

    fn finish(
        ctx: ffmpeg::codec::context::Context,
        id: ffmpeg::codec::Id,
        max: (u32, u32),
    ) -> Result<Self, DecodeError> {
        let codec = ffmpeg::decoder::find(id)
            .ok_or_else(|| DecodeError::Unsupported(format!("{id:?}").to_lowercase()))?;
        let decoder = ctx
            .decoder()
            .open_as(codec)
            .and_then(|d| d.video())
            .map_err(|e| DecodeError::Open {
                codec: codec.name().to_string(),
                source: e,
            })?;
        Ok(Self {
            decoder,
            frame: ffmpeg::frame::Video::empty(),
            max,
        })
    }

    /// Feeds one compressed packet. A packet the decoder refuses (corrupt data) is skipped:
    /// the next key frame recovers.
    pub fn send(&mut self, packet: &ffmpeg::Packet) {
        if let Err(e) = self.decoder.send_packet(packet) {
            tracing::debug!(error = %e, "decoder refused a packet");
        }
    }

    /// Tells the decoder no more packets come (it gives out what it still holds).
    pub fn flush(&mut self) {
        let _ = self.decoder.send_eof();
    }

    /// Starts again after a flush (a looping file).
    pub fn reset(&mut self) {
        self.decoder.flush();
    }

    /// The next decoded picture, if one is ready.
    pub fn receive(&mut self) -> Result<Option<&ffmpeg::frame::Video>, DecodeError> {
        if self.decoder.receive_frame(&mut self.frame).is_err() {
            return Ok(None);
        }
        let (w, h) = (self.frame.width(), self.frame.height());
        if w == 0 || h == 0 {
            return Ok(None);
        }
        check_size((w, h), self.max)?;
        Ok(Some(&self.frame))
    }
}

/// A fresh codec context carrying `extradata` (out-of-band codec configuration, e.g. an
/// H.264 `AVCDecoderConfigurationRecord` or an AAC `AudioSpecificConfig`), if any.
pub(crate) fn context_with_extradata(
    extradata: Option<&[u8]>,
) -> Result<ffmpeg::codec::context::Context, ffmpeg::Error> {
    let mut ctx = ffmpeg::codec::context::Context::new();
    if let Some(extra) = extradata.filter(|e| !e.is_empty()) {
        // SAFETY: the context is fresh and owned here; FFmpeg takes ownership of a buffer
        // from av_mallocz with AV_INPUT_BUFFER_PADDING_SIZE zeroed bytes after the data.
        unsafe {
            let raw = ctx.as_mut_ptr();
            let size = extra.len();
            let buf =
                ffmpeg::ffi::av_mallocz(size + ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize)
                    as *mut u8;
            if buf.is_null() {
                return Err(ffmpeg::Error::Other {
                    errno: libc_enomem(),
                });
            }
            std::ptr::copy_nonoverlapping(extra.as_ptr(), buf, size);
            (*raw).extradata = buf;
            (*raw).extradata_size = size as i32;
        }
    }
    Ok(ctx)
}

/// A picture of `size` refused when it is over `max` (width, height).
pub fn check_size((width, height): (u32, u32), max: (u32, u32)) -> Result<(), DecodeError> {
    if width > max.0 || height > max.1 {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_w: max.0,
            max_h: max.1,
        });
    }
    Ok(())
}

fn libc_enomem() -> i32 {
    12
}
