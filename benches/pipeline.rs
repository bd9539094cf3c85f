//! Render + convert + encode of 1080p30 demo-scene frames, next to libx264 encoding the same
//! frames alone (already in YUV), measured in the same run.
//!
//! Criterion measures each stage's wall time per frame; then a fixed run of frames through
//! the whole stage chain and through bare libx264 reports frames per second, CPU
//! milliseconds per frame (all threads of the process) and the ratio of the two.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group};
use ffmpeg_next as ffmpeg;
use sm_media::encoder::{Encoder, open_video};
use sm_media::hub::MediaHub;
use sm_render::OnAir;
use sm_render::compositor::Compositor;
use stream_manager::metrics::cpu_seconds;
use stream_manager::pipeline::PipelineStats;
use stream_manager::scene_manager::default_scene;
use stream_manager::state::StreamConfig;
use tiny_skia::PixmapMut;
use yuv::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// Counts heap allocations made through Rust's allocator (FFmpeg's own mallocs in C are
/// not seen), to check the per-frame path allocates nothing in steady state.
struct CountingAlloc;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations_per_frame(frames: u64, mut f: impl FnMut()) -> f64 {
    let before = ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..frames {
        f();
    }
    (ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed) - before) as f64 / frames as f64
}

const W: u32 = 1920;
const H: u32 = 1080;
const FPS: u32 = 30;
/// Distinct frames cycled through (the scene moves, so the encoder sees real motion).
const DISTINCT: usize = 60;

fn config() -> StreamConfig {
    StreamConfig {
        width: W,
        height: H,
        target_fps: FPS,
        preset: "veryfast".into(),
        ..StreamConfig::default()
    }
}

/// The default scene (the skeleton's demo, built from scene primitives, with a running
/// timecode and frame number) through the stream's compositor.
struct DemoScene(Compositor);

impl DemoScene {
    fn new(w: u32, h: u32) -> Self {
        let mut c = Compositor::new(w, h, FPS);
        c.set(OnAir {
            scene: Arc::new(default_scene()),
            ..OnAir::default()
        });
        Self(c)
    }

    fn render(&mut self, pm: &mut PixmapMut<'_>, frame: u64, _fps: u32, _now: SystemTime) {
        self.0.render(pm, frame);
    }
}

fn render_frames() -> Vec<Vec<u8>> {
    let mut scene = DemoScene::new(W, H);
    let now = SystemTime::now();
    (0..DISTINCT)
        .map(|i| {
            let mut buf = vec![0u8; (W * H * 4) as usize];
            scene.render(
                &mut PixmapMut::from_bytes(&mut buf, W, H).unwrap(),
                i as u64,
                FPS,
                now,
            );
            buf
        })
        .collect()
}

fn to_yuv(rgba: &[u8], frame: &mut ffmpeg::frame::Video) {
    let (ys, us, vs) = (
        frame.stride(0) as u32,
        frame.stride(1) as u32,
        frame.stride(2) as u32,
    );
    let mut y = vec![0u8; (ys * H) as usize];
    let mut u = vec![0u8; (us * H.div_ceil(2)) as usize];
    let mut v = vec![0u8; (vs * H.div_ceil(2)) as usize];
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut y),
        y_stride: ys,
        u_plane: BufferStoreMut::Borrowed(&mut u),
        u_stride: us,
        v_plane: BufferStoreMut::Borrowed(&mut v),
        v_stride: vs,
        width: W,
        height: H,
    };
    yuv::rgba_to_yuv420(
        &mut planar,
        rgba,
        W * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt709,
        YuvConversionMode::Balanced,
    )
    .unwrap();
    frame.data_mut(0).copy_from_slice(&y);
    frame.data_mut(1).copy_from_slice(&u);
    frame.data_mut(2).copy_from_slice(&v);
}

/// Bare libx264 with the same settings, fed ready YUV frames: the baseline.
struct BareX264 {
    encoder: ffmpeg::encoder::Video,
    frames: Vec<ffmpeg::frame::Video>,
    packet: ffmpeg::Packet,
    next: i64,
}

impl BareX264 {
    fn new(rgba: &[Vec<u8>]) -> Self {
        ffmpeg::init().unwrap();
        let encoder = open_video(&config().encoder_settings()).unwrap();
        let frames = rgba
            .iter()
            .map(|f| {
                let mut yuv = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, W, H);
                to_yuv(f, &mut yuv);
                yuv
            })
            .collect();
        Self {
            encoder,
            frames,
            packet: ffmpeg::Packet::empty(),
            next: 0,
        }
    }

    fn encode_one(&mut self) {
        let frame = &mut self.frames[self.next as usize % DISTINCT];
        frame.set_pts(Some(self.next));
        self.next += 1;
        self.encoder.send_frame(frame).unwrap();
        while self.encoder.receive_packet(&mut self.packet).is_ok() {
            black_box(self.packet.size());
        }
    }
}

/// Our chain: render the scene, convert, encode (+ silent AAC), publish to the hub.
struct Chain {
    scene: DemoScene,
    buffer: Vec<u8>,
    encoder: Encoder,
    stats: PipelineStats,
    next: u64,
}

impl Chain {
    fn new() -> Self {
        Self {
            scene: DemoScene::new(W, H),
            buffer: vec![0u8; (W * H * 4) as usize],
            encoder: Encoder::open(&config().encoder_settings(), Arc::new(MediaHub::new()))
                .unwrap(),
            stats: PipelineStats::default(),
            next: 0,
        }
    }

    fn frame(&mut self) {
        let mut pm = PixmapMut::from_bytes(&mut self.buffer, W, H).unwrap();
        self.scene
            .render(&mut pm, self.next, FPS, SystemTime::now());
        self.encoder
            .encode(Some(&self.buffer), self.next, Instant::now(), &self.stats)
            .unwrap();
        self.next += 1;
    }
}

fn stages(c: &mut Criterion) {
    ffmpeg::log::set_level(ffmpeg::log::Level::Error);
    let frames = render_frames();
    let mut g = c.benchmark_group("1080p");
    g.sample_size(20).measurement_time(Duration::from_secs(8));

    let mut scene = DemoScene::new(W, H);
    let mut buf = vec![0u8; (W * H * 4) as usize];
    let mut n = 0u64;
    g.bench_function("render demo scene", |b| {
        b.iter(|| {
            scene.render(
                &mut PixmapMut::from_bytes(&mut buf, W, H).unwrap(),
                n,
                FPS,
                SystemTime::now(),
            );
            n += 1;
        })
    });

    let yuv = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, W, H);
    let (ys, us, vs) = (
        yuv.stride(0) as u32,
        yuv.stride(1) as u32,
        yuv.stride(2) as u32,
    );
    let mut planes = (
        vec![0u8; (ys * H) as usize],
        vec![0u8; (us * H / 2) as usize],
        vec![0u8; (vs * H / 2) as usize],
    );
    let mut i = 0;
    g.bench_function("rgba to yuv420 (bt709)", |b| {
        b.iter(|| {
            let mut planar = YuvPlanarImageMut {
                y_plane: BufferStoreMut::Borrowed(&mut planes.0),
                y_stride: ys,
                u_plane: BufferStoreMut::Borrowed(&mut planes.1),
                u_stride: us,
                v_plane: BufferStoreMut::Borrowed(&mut planes.2),
                v_stride: vs,
                width: W,
                height: H,
            };
            yuv::rgba_to_yuv420(
                &mut planar,
                &frames[i % DISTINCT],
                W * 4,
                YuvRange::Limited,
                YuvStandardMatrix::Bt709,
                YuvConversionMode::Balanced,
            )
            .unwrap();
            i += 1;
        })
    });
    drop(yuv);

    let mut chain = Chain::new();
    g.bench_function("render+convert+encode (ours)", |b| b.iter(|| chain.frame()));
    let mut bare = BareX264::new(&frames);
    g.bench_function("libx264 alone", |b| b.iter(|| bare.encode_one()));
    g.finish();
}

/// Frames per second and CPU ms per frame over `frames` frames of `f`.
fn measure(frames: u32, mut f: impl FnMut()) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu_seconds().unwrap_or(0.0));
    for _ in 0..frames {
        f();
    }
    let (wall, cpu) = (
        t0.elapsed().as_secs_f64(),
        cpu_seconds().unwrap_or(0.0) - c0,
    );
    (f64::from(frames) / wall, cpu * 1000.0 / f64::from(frames))
}

/// CPU seconds of waited-for child processes (`cutime + cstime` of /proc/self/stat).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(13).copied().unwrap_or(0.0) + f.get(14).copied().unwrap_or(0.0)) / 100.0
}

/// The `ffmpeg` CLI encoding the same raw RGBA frames (incl. its own swscale conversion).
fn ffmpeg_cli(frames: &[Vec<u8>], n: u32) -> Option<(f64, f64)> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let c = config();
    let before = children_cpu_seconds();
    let t0 = Instant::now();
    let mut child = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgba",
            "-s",
            &format!("{W}x{H}"),
        ])
        .args([
            "-r",
            &FPS.to_string(),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-preset",
            &c.preset,
            "-tune",
            "zerolatency",
        ])
        .args([
            "-b:v",
            &format!("{}k", c.video_bitrate_kbps),
            "-g",
            &c.gop_frames().to_string(),
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    for i in 0..n as usize {
        stdin.write_all(&frames[i % DISTINCT]).ok()?;
    }
    drop(stdin);
    child.wait().ok()?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds() - before;
    Some((f64::from(n) / wall, cpu * 1000.0 / f64::from(n)))
}

fn summary() {
    let frames = render_frames();
    let n = 300;
    let mut chain = Chain::new();
    let mut bare = BareX264::new(&frames);
    // Warm up both (x264 look-ahead state, caches).
    for _ in 0..30 {
        chain.frame();
        bare.encode_one();
    }
    let (ours_fps, ours_cpu) = measure(n, || chain.frame());
    let (x264_fps, x264_cpu) = measure(n, || bare.encode_one());
    println!("\n1080p{FPS} demo scene, preset veryfast, {n} frames each, same run:");
    println!("  render+convert+encode (ours): {ours_fps:7.1} fps, {ours_cpu:6.2} CPU ms/frame");
    println!("  libx264 alone (YUV input):    {x264_fps:7.1} fps, {x264_cpu:6.2} CPU ms/frame");
    println!(
        "  ratio ours / libx264 alone: {:.2}x CPU per frame",
        ours_cpu / x264_cpu
    );
    let mut scene = DemoScene::new(W, H);
    let mut buf = vec![0u8; (W * H * 4) as usize];
    let mut i = 0;
    // Warm the glyph caches first: steady state is what counts.
    let mut frame = |i: &mut u64| {
        scene.render(
            &mut PixmapMut::from_bytes(&mut buf, W, H).unwrap(),
            *i,
            FPS,
            SystemTime::now(),
        );
        *i += 1;
    };
    for _ in 0..100 {
        frame(&mut i);
    }
    let render_allocs = allocations_per_frame(100, || frame(&mut i));
    let chain_allocs = allocations_per_frame(100, || chain.frame());
    println!(
        "  Rust heap allocations per frame: render {render_allocs:.1}, render+convert+encode+publish {chain_allocs:.1}"
    );
    if let Some((cli_fps, cli_cpu)) = ffmpeg_cli(&frames, n) {
        println!("  ffmpeg CLI from raw RGBA:     {cli_fps:7.1} fps, {cli_cpu:6.2} CPU ms/frame");
        println!(
            "  ratio ours / ffmpeg CLI: {:.2}x CPU per frame (target <= 1.0)",
            ours_cpu / cli_cpu
        );
    }
}

criterion_group!(benches, stages);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    summary();
}
