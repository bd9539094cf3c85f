//! Program sound: every input with an audio track is a source, mixed at its gain through the
//! master and a true-peak limiter into the program's AAC track, in sync with its pictures,
//! and metered to EBU R128.
//!
//! - An input's own thread decodes its audio and resamples it to [`RATE`] Hz stereo float
//!   ([`decode::AudioDecoder`]) into the input's [`feed::AudioFeed`], with the source's
//!   timestamps and the clock that maps them onto ours (the one its pictures are paced by,
//!   so sound and picture leave together).
//! - The encoder thread pulls each AAC frame from the [`mixer::Mixer`]: for every source the
//!   samples due in that frame's span, resampled by a ratio steered to keep the source's
//!   read position on its clock (so a source whose clock runs fast or slow neither drifts
//!   nor grows a buffer), at its gain (ramped), summed, through the master and the limiter
//!   ([`dsp`]). Meters ([`meter`]) measure the program and each source.
//! - The server changes gains, mutes, the master and the limiter through the shared
//!   [`mixer::AudioMix`], and reads the meters from it.

pub mod decode;
pub mod dsp;
pub mod feed;
pub mod meter;
pub mod mixer;

/// The program's sample rate, and every feed's.
pub const RATE: u32 = 48_000;
/// The program's channels (stereo), and every feed's.
pub const CHANNELS: usize = 2;

/// Decibels to a linear factor.
pub fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// A linear factor to decibels (`-inf` for 0).
pub fn linear_to_db(x: f64) -> f64 {
    20.0 * x.log10()
}
