//! Decode + convert of a live input: a 1080p30 H.264 stream decoded by FFmpeg and converted
//! to premultiplied RGBA at 1920×1080 and at 640×360 (what an input does for its layers),
//! next to the `ffmpeg` CLI decoding the same stream to rawvideo RGBA at the same sizes, in
//! the same run. Both decode on one thread; CPU time (user + system) per frame is compared.
//!
//! `cargo bench -p stream-manager --bench inputs [-- --frames N]`

use std::path::Path;
use std::process::Command;

use ffmpeg_next as ffmpeg;
use sm_media::input::convert::Converter;
use sm_media::input::decode::{DEFAULT_MAX_PICTURE, VideoDecoder};
use tiny_skia::Pixmap;

/// This process's CPU seconds, and its reaped children's: (self, children).
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime in clock ticks (100 per second on Linux).
    ((f[0] + f[1]) / 100.0, (f[2] + f[3]) / 100.0)
}

/// A 1080p30 H.264 clip of `frames` frames (testsrc2: detail and motion everywhere).
fn make_clip(path: &Path, frames: u32) {
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=s=1920x1080:r=30")
        .args(["-frames:v", &frames.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "6M", "-g", "60",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ffmpeg could not make the clip");
}

/// The `ffmpeg` CLI decoding the clip to rawvideo RGBA at `w`×`h` on one thread: CPU ms per
/// frame.
fn ffmpeg_cli(path: &Path, (w, h): (u32, u32), frames: u32) -> f64 {
    let before = cpu().1;
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-threads", "1"])
        .arg("-i")
        .arg(path)
        .args(["-filter_threads", "1", "-sws_flags", "bilinear"])
        .args(["-vf", &format!("scale={w}:{h}")])
        .args(["-f", "rawvideo", "-pix_fmt", "rgba", "-y", "/dev/null"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ffmpeg could not decode the clip");
    (cpu().1 - before) * 1000.0 / f64::from(frames)
}

/// This server's input path: demux, decode (one thread), convert into a layer raster. CPU
/// ms per frame, frames, and the wall ms per frame spent converting.
fn ours(path: &Path, (w, h): (u32, u32)) -> (f64, u32, f64) {
    let before = cpu().0;
    let mut input = ffmpeg::format::input(path).expect("open the clip");
    let stream = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .expect("video");
    let index = stream.index();
    let mut decoder =
        VideoDecoder::from_parameters(stream.parameters(), DEFAULT_MAX_PICTURE).expect("decoder");
    let mut converter = Converter::default();
    let mut raster = Pixmap::new(w, h).expect("raster");
    let mut frames = 0u32;
    let mut converting = std::time::Duration::ZERO;
    let mut convert = |decoder: &mut VideoDecoder, frames: &mut u32| {
        while let Some(frame) = decoder.receive().expect("decode") {
            let src = [0, 0, frame.width(), frame.height()];
            let t = std::time::Instant::now();
            assert!(converter.convert(frame, src, &mut raster, [0, 0, w, h]));
            converting += t.elapsed();
            *frames += 1;
        }
    };
    for (s, packet) in input.packets() {
        if s.index() == index {
            decoder.send(&packet);
            convert(&mut decoder, &mut frames);
        }
    }
    decoder.flush();
    convert(&mut decoder, &mut frames);
    let per_frame = |v: f64| v * 1000.0 / f64::from(frames);
    (
        per_frame(cpu().0 - before),
        frames,
        per_frame(converting.as_secs_f64()),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let frames = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(300u32);
    if args.iter().any(|a| a == "--list") {
        // `cargo bench` probes benches with --list; this one has no criterion groups.
        return;
    }
    ffmpeg::init().expect("ffmpeg");
    ffmpeg::log::set_level(ffmpeg::log::Level::Error);
    let dir = std::env::temp_dir().join(format!("sm-bench-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let clip = dir.join("1080p30.mp4");
    make_clip(&clip, frames);
    println!(
        "decode + convert of a 1080p30 H.264 stream ({frames} frames), CPU ms per frame, one thread"
    );
    println!(
        "{:>10} {:>10} {:>12} {:>8}",
        "size", "ours", "ffmpeg CLI", "ratio"
    );
    for size in [(1920, 1080), (640, 360)] {
        // Twice each, interleaved, keeping the better of each (a shared machine).
        let mut best = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..2 {
            let (ms, n, converting) = ours(&clip, size);
            assert_eq!(n, frames, "frames decoded");
            best.0 = best.0.min(ms);
            best.1 = best.1.min(ffmpeg_cli(&clip, size, frames));
            best.2 = best.2.min(converting);
        }
        println!(
            "{:>10} {:>10.2} {:>12.2} {:>8.2} {:>18.2}",
            format!("{}x{}", size.0, size.1),
            best.0,
            best.1,
            best.0 / best.1,
            best.2
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
