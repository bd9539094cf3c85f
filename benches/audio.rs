//! The audio path's CPU: four AAC sources decoded and resampled (as their input threads do),
//! mixed with gain, master, true-peak limiter and meters, and the program encoded to AAC —
//! as a share of one core, stage by stage, next to encoding silence alone (what `audio:
//! silent` costs) in the same run. Also counts heap allocations in the mixer's steady state.
//!
//! `cargo bench -p stream-manager --bench audio [-- SECONDS]` (default 120 s of program).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use sm_media::audio::decode::AudioDecoder;
use sm_media::audio::feed::{AudioFeed, Clock};
use sm_media::audio::mixer::{AudioMix, Fader, Mixer};
use stream_manager::metrics::cpu_seconds;

/// Counts heap allocations made through Rust's allocator.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const RATE: usize = 48_000;
const FRAME: usize = 1024;
const SOURCES: usize = 4;

/// An AAC-LC 48 kHz stereo encoder as the program's (planar float in).
fn aac_encoder(kbps: usize) -> (ffmpeg::encoder::Audio, ffmpeg::frame::Audio) {
    let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC).expect("an AAC encoder");
    let mut a = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .expect("audio context");
    let format = ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar);
    a.set_rate(RATE as i32);
    a.set_channel_layout(ffmpeg::ChannelLayout::STEREO);
    a.set_channels(2);
    a.set_format(format);
    a.set_bit_rate(kbps * 1000);
    a.set_time_base((1, RATE as i32));
    a.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    let encoder = a.open_with(ffmpeg::Dictionary::new()).expect("open AAC");
    let mut frame = ffmpeg::frame::Audio::new(format, FRAME, ffmpeg::ChannelLayout::STEREO);
    frame.set_rate(RATE as u32);
    (encoder, frame)
}

fn extradata(ctx: &ffmpeg::codec::Context) -> Vec<u8> {
    // SAFETY: the context is open; FFmpeg owns `extradata` of `extradata_size` bytes.
    unsafe {
        let p = ctx.as_ptr();
        if (*p).extradata.is_null() {
            return Vec::new();
        }
        std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
    }
}

/// Encodes `frames` (interleaved stereo) into `frame`, returning the packets' bytes.
fn encode(
    enc: &mut ffmpeg::encoder::Audio,
    frame: &mut ffmpeg::frame::Audio,
    frames: &[f32],
    pts: i64,
    packet: &mut ffmpeg::Packet,
    out: &mut Vec<Vec<u8>>,
) {
    for c in 0..2 {
        let plane = frame.plane_mut::<f32>(c);
        for (d, s) in plane.iter_mut().zip(frames.chunks_exact(2)) {
            *d = s[c];
        }
    }
    frame.set_pts(Some(pts));
    enc.send_frame(frame).expect("encode");
    while enc.receive_packet(packet).is_ok() {
        if let Some(d) = packet.data() {
            out.push(d.to_vec());
        }
    }
}

fn cpu() -> f64 {
    cpu_seconds().unwrap_or(0.0)
}

fn main() {
    ffmpeg::init().expect("ffmpeg");
    let seconds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(120);
    let chunks = seconds * RATE / FRAME;

    // One second of each source's tone as AAC packets (made once; decoded again and again).
    let (mut enc, mut frame) = aac_encoder(128);
    let config = extradata(&enc);
    let mut packet = ffmpeg::Packet::empty();
    let mut packets = Vec::new();
    for k in 0..(RATE / FRAME) {
        let tone: Vec<f32> = (0..FRAME)
            .flat_map(|i| {
                let t = (k * FRAME + i) as f32 / RATE as f32;
                let v = 0.1 * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
                [v, v]
            })
            .collect();
        encode(
            &mut enc,
            &mut frame,
            &tone,
            (k * FRAME) as i64,
            &mut packet,
            &mut packets,
        );
    }

    let mix = Arc::new(AudioMix::new());
    let base = Instant::now();
    let feeds: Vec<Arc<AudioFeed>> = (0..SOURCES)
        .map(|i| {
            let feed = Arc::new(AudioFeed::new());
            feed.set_clock(Clock { base, offset: 0.05 });
            mix.set_source(
                &format!("cam{i}"),
                &feed,
                Fader {
                    gain_db: -6.0,
                    muted: false,
                },
            );
            feed
        })
        .collect();
    let mut decoders: Vec<AudioDecoder> = (0..SOURCES)
        .map(|_| AudioDecoder::for_codec(ffmpeg::codec::Id::AAC, Some(&config)).expect("decoder"))
        .collect();
    let mut mixer = Mixer::new(mix.clone(), FRAME, 30);
    let (mut program_enc, mut program_frame) = aac_encoder(160);
    let (mut silent_enc, mut silent_frame) = aac_encoder(160);
    let silence = vec![0.0f32; FRAME * 2];
    let mut out = vec![0.0f32; FRAME * 2];
    let mut encoded = Vec::with_capacity(64);
    let (mut decode_s, mut mix_s, mut encode_s, mut silent_s) = (0.0, 0.0, 0.0, 0.0);
    let mut sent = 0usize; // source packets pushed, per source
    let mut steady_allocs = 0u64;
    let started = Instant::now();
    for k in 0..chunks {
        let wall = base + Duration::from_secs_f64((k * FRAME) as f64 / RATE as f64);
        // The sources keep 100 ms ahead of what is mixed (their decoding, on input threads).
        let t0 = cpu();
        while sent * FRAME < k * FRAME + RATE / 10 + FRAME {
            let p = &packets[sent % packets.len()];
            for (decoder, feed) in decoders.iter_mut().zip(&feeds) {
                let mut pkt = ffmpeg::Packet::copy(p);
                pkt.set_pts(Some((sent * FRAME) as i64));
                decoder.send(&pkt);
                while let Ok(Some(d)) = decoder.receive() {
                    // Timestamps in samples at 48 kHz (the decoder keeps the packets' unit).
                    let pts = d.pts.unwrap_or(0) as f64 / RATE as f64;
                    feed.push(pts, d.samples);
                }
            }
            sent += 1;
        }
        let t1 = cpu();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        mixer.mix(wall, &mut out);
        if k > 100 {
            steady_allocs += ALLOCATIONS.load(Ordering::Relaxed) - before;
        }
        let t2 = cpu();
        encoded.clear();
        encode(
            &mut program_enc,
            &mut program_frame,
            &out,
            (k * FRAME) as i64,
            &mut packet,
            &mut encoded,
        );
        let t3 = cpu();
        encoded.clear();
        encode(
            &mut silent_enc,
            &mut silent_frame,
            &silence,
            (k * FRAME) as i64,
            &mut packet,
            &mut encoded,
        );
        let t4 = cpu();
        decode_s += t1 - t0;
        mix_s += t2 - t1;
        encode_s += t3 - t2;
        silent_s += t4 - t3;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let share = |s: f64| s / seconds as f64 * 100.0;
    println!("audio path, {seconds} s of program, {SOURCES} AAC sources (CPU, % of one core):");
    println!(
        "  decode + resample {SOURCES} sources  {:6.2} %",
        share(decode_s)
    );
    println!("  mix + limiter + meters          {:6.2} %", share(mix_s));
    println!(
        "  AAC encode of the program       {:6.2} %",
        share(encode_s)
    );
    println!(
        "  total                           {:6.2} %   (target <= 5 %)",
        share(decode_s + mix_s + encode_s)
    );
    println!(
        "  baseline: AAC encode of silence {:6.2} %   total / baseline x{:.2}",
        share(silent_s),
        (decode_s + mix_s + encode_s) / silent_s.max(1e-9)
    );
    println!("  heap allocations in the mixer's steady state: {steady_allocs}");
    println!("  ({elapsed:.1} s wall)");
    let levels = mix.levels();
    println!(
        "  program momentary {:?} LUFS, true peak {:?} dBTP",
        levels.program.momentary_lufs, levels.program.true_peak_dbtp
    );
}
