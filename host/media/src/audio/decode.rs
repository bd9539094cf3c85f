//! Audio decoding with FFmpeg on an input's own thread, resampled by swresample to the
//! program's format (48 kHz stereo float) whatever the source sends (rate, sample format,
//! channel layout), and bounded: more than [`MAX_CHANNELS`] channels, a rate outside
//! 8..=192 kHz or more than [`MAX_FRAME`] samples a frame is refused before conversion.

use ffmpeg_next as ffmpeg;

use super::{CHANNELS, RATE};
use crate::input::decode::{DecodeError, context_with_extradata};

/// Most channels a source may have.
pub const MAX_CHANNELS: u16 = 8;
/// Most samples one decoded frame may hold (a FLAC frame is up to 65535).
pub const MAX_FRAME: usize = 65_536;

/// Why a decoded frame is refused.
#[derive(Debug, thiserror::Error)]
#[error("unsupported audio: {0}")]
pub struct Unsupported(pub String);

/// A decoded frame, converted.
pub struct Decoded<'a> {
    /// Its timestamp, in the packets' time base.
    pub pts: Option<i64>,
    /// Its samples, interleaved 48 kHz stereo float.
    pub samples: &'a [f32],
}

/// An FFmpeg audio decoder and its resampler.
pub struct AudioDecoder {
    decoder: ffmpeg::decoder::Audio,
    frame: ffmpeg::frame::Audio,
    resampler: Option<(Key, ffmpeg::software::resampling::Context)>,
    out: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    format: ffmpeg::format::Sample,
    layout: u64,
    channels: u16,
    rate: u32,
}

fn open_error(id: ffmpeg::codec::Id) -> impl FnOnce(ffmpeg::Error) -> DecodeError {
    move |e| DecodeError::Open {
        codec: format!("{id:?}").to_lowercase(),
        source: e,
    }
}

impl AudioDecoder {
    /// A decoder for a demuxed stream's parameters (a file).
    pub fn from_parameters(parameters: ffmpeg::codec::Parameters) -> Result<Self, DecodeError> {
        let id = parameters.id();
        let ctx =
            ffmpeg::codec::context::Context::from_parameters(parameters).map_err(open_error(id))?;
        Self::open(ctx, id)
    }

    /// A decoder for `codec` with its out-of-band configuration (`extradata`: e.g. an AAC
    /// `AudioSpecificConfig` from RTMP).
    pub fn for_codec(id: ffmpeg::codec::Id, extradata: Option<&[u8]>) -> Result<Self, DecodeError> {
        let ctx = context_with_extradata(extradata.filter(|e| e.len() <= 1024))
            .map_err(open_error(id))?;
        Self::open(ctx, id)
    }

    fn open(
        mut ctx: ffmpeg::codec::context::Context,
        id: ffmpeg::codec::Id,
    ) -> Result<Self, DecodeError> {
        let codec = ffmpeg::decoder::find(id)
            .ok_or_else(|| DecodeError::Unsupported(format!("{id:?}").to_lowercase()))?;
        // SAFETY: the context is not opened yet; plain fields FFmpeg reads at open.
        unsafe {
            let raw = ctx.as_mut_ptr();
            (*raw).codec_id = id.into();
            (*raw).codec_type = ffmpeg::ffi::AVMediaType::AVMEDIA_TYPE_AUDIO;
            (*raw).thread_count = 1;
        }
        let decoder = ctx
            .decoder()
            .open_as(codec)
            .and_then(|d| d.audio())
            .map_err(open_error(id))?;
        Ok(Self {
            decoder,
            frame: ffmpeg::frame::Audio::empty(),
            resampler: None,
            out: Vec::new(),
        })
    }

    /// Feeds one compressed packet; a packet the decoder refuses is skipped.
    pub fn send(&mut self, packet: &ffmpeg::Packet) {
        if let Err(e) = self.decoder.send_packet(packet) {
            tracing::debug!(error = %e, "audio decoder refused a packet");
        }
    }

    /// Tells the decoder no more packets come.
    pub fn flush(&mut self) {
        let _ = self.decoder.send_eof();
    }

    /// Starts again after a flush (a looping file).
    pub fn reset(&mut self) {
        self.decoder.flush();
        self.resampler = None;
    }

    /// The next decoded frame, converted; `Ok(None)` when no frame is ready.
    pub fn receive(&mut self) -> Result<Option<Decoded<'_>>, Unsupported> {
        if self.decoder.receive_frame(&mut self.frame).is_err() {
            return Ok(None);
        }
        let frame = &self.frame;
        let (samples, channels, rate) = (frame.samples(), frame.channels(), frame.rate());
        if samples == 0 {
            return Ok(Some(Decoded {
                pts: frame.timestamp(),
                samples: &[],
            }));
        }
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(Unsupported(format!(
                "{channels} channels (at most {MAX_CHANNELS})"
            )));
        }
        if !(8_000..=192_000).contains(&rate) {
            return Err(Unsupported(format!("a sample rate of {rate} Hz")));
        }
        if samples > MAX_FRAME {
            return Err(Unsupported(format!("{samples} samples in one frame")));
        }
        let mut layout = frame.channel_layout();
        if layout.is_empty() || layout.channels() != i32::from(channels) {
            layout = ffmpeg::ChannelLayout::default(i32::from(channels));
        }
        let key = Key {
            format: frame.format(),
            layout: layout.bits(),
            channels,
            rate,
        };
        if self.resampler.as_ref().map(|(k, _)| *k) != Some(key) {
            let ctx = ffmpeg::software::resampling::Context::get(
                key.format,
                layout,
                rate,
                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed),
                ffmpeg::ChannelLayout::STEREO,
                RATE,
            )
            .map_err(|e| Unsupported(format!("no conversion from this format: {e}")))?;
            self.resampler = Some((key, ctx));
        }
        let Some((_, swr)) = self.resampler.as_mut() else {
            return Ok(None);
        };
        // Room for what this frame makes plus what the resampler holds back.
        let room = samples * RATE as usize / rate as usize + 256;
        if self.out.len() < room * CHANNELS {
            self.out.resize(room * CHANNELS, 0.0);
        }
        // SAFETY: the swr context is configured for the frame's format and layout (checked
        // above); the input pointers are the frame's own planes of `samples` samples; the
        // output is one packed plane with room for `room` stereo frames.
        let made = unsafe {
            let mut out_ptr = self.out.as_mut_ptr() as *mut u8;
            ffmpeg::ffi::swr_convert(
                swr.as_mut_ptr(),
                &mut out_ptr,
                room as i32,
                (*frame.as_ptr()).extended_data as *mut *const u8,
                samples as i32,
            )
        };
        if made < 0 {
            return Err(Unsupported(format!(
                "conversion failed: {}",
                ffmpeg::Error::from(made)
            )));
        }
        Ok(Some(Decoded {
            pts: frame.timestamp(),
            samples: &self.out[..made as usize * CHANNELS],
        }))
    }

    /// The decoder's time base for timestamps it makes up (samples at the stream's rate).
    pub fn rate(&self) -> u32 {
        self.decoder.rate()
    }
}
