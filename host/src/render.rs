//! `stream-manager render`: draws a scene offline, without a server, into PNG files or an MP4
//! (H.264, the stream's encoder settings), for template and scene authors and for tests.
//! Only the scene is drawn (no demo animation): a transparent canvas gives transparent PNGs.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ffmpeg_next as ffmpeg;
use tiny_skia::Pixmap;

use crate::compose::commands::{Limits, NoImages, rasterize, validate};
use crate::compose::text::Font;
use crate::output::encoder::{open_video, rgba_to_frame};
use crate::scene::Scene;
use crate::state::StreamConfig;

/// Largest scene file read.
const MAX_SCENE_BYTES: u64 = 16 << 20;

/// Arguments of `render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Scene JSON (`{canvas, layers}`, as `GET /api/scene` returns it).
    #[arg(long)]
    pub scene: PathBuf,
    /// Frames to render, 1..=36000.
    #[arg(long, default_value_t = 1)]
    pub frames: u32,
    /// Frame rate of an MP4, 1..=120.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// A directory (frame-00000.png, …) or a file ending in `.mp4`.
    #[arg(long)]
    pub out: PathBuf,
}

/// Renders `args.frames` frames of the scene at its canvas size.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    if !(1..=36_000).contains(&args.frames) {
        bail!("--frames: 1..=36000");
    }
    if !(1..=120).contains(&args.fps) {
        bail!("--fps: 1..=120");
    }
    let size = std::fs::metadata(&args.scene)
        .with_context(|| format!("--scene {}", args.scene.display()))?
        .len();
    if size > MAX_SCENE_BYTES {
        bail!(
            "--scene {}: larger than {MAX_SCENE_BYTES} bytes",
            args.scene.display()
        );
    }
    let text = std::fs::read_to_string(&args.scene)
        .with_context(|| format!("--scene {}", args.scene.display()))?;
    let scene: Scene =
        serde_json::from_str(&text).with_context(|| format!("--scene {}", args.scene.display()))?;
    scene
        .validate(&|_| false)
        .with_context(|| format!("--scene {}", args.scene.display()))?;
    let (w, h) = (scene.canvas.width, scene.canvas.height);
    let mut font = Font::default_font();
    let commands = scene.to_commands(w, h, &mut font);
    validate(&commands, &Limits::default())?;
    let mut pixmap = Pixmap::new(w, h).context("canvas size")?;
    rasterize(&commands, &mut pixmap.as_mut(), &mut font, &NoImages);
    if args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"))
    {
        write_mp4(&pixmap, args, &args.out)
    } else {
        write_pngs(&pixmap, args.frames, &args.out)
    }
}

fn write_pngs(pixmap: &Pixmap, frames: u32, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    for i in 0..frames {
        let path = dir.join(format!("frame-{i:05}.png"));
        pixmap
            .save_png(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn write_mp4(pixmap: &Pixmap, args: &RenderArgs, path: &Path) -> anyhow::Result<()> {
    ffmpeg::init()?;
    let (w, h) = (pixmap.width(), pixmap.height());
    if w % 2 != 0 || h % 2 != 0 {
        bail!("an MP4 needs an even canvas size, not {w}x{h}");
    }
    // Video is opaque: composite the (premultiplied) canvas over black.
    let mut opaque = pixmap.clone();
    for px in opaque.data_mut().chunks_exact_mut(4) {
        px[3] = 255;
    }
    let config = StreamConfig {
        width: w,
        height: h,
        target_fps: args.fps,
        ..StreamConfig::default()
    };
    let mut encoder = open_video(&config)?;
    let mut octx =
        ffmpeg::format::output(path).with_context(|| format!("--out {}", path.display()))?;
    let mut stream =
        octx.add_stream(ffmpeg::encoder::find_by_name(config.encoder.ffmpeg_name()))?;
    stream.set_parameters(&encoder);
    stream.set_time_base((1, args.fps as i32));
    octx.write_header()?;
    let stream_tb = octx.stream(0).context("output stream")?.time_base();
    let encoder_tb = ffmpeg::Rational::new(1, args.fps as i32);
    let mut frame = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, w, h);
    rgba_to_frame(opaque.data(), &mut frame)?;
    let mut packet = ffmpeg::Packet::empty();
    let mut drain = |encoder: &mut ffmpeg::encoder::Video,
                     octx: &mut ffmpeg::format::context::Output|
     -> anyhow::Result<()> {
        while encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            // One frame each: without it the MP4 muxer guesses the last sample's duration
            // and its edit list drops the final frame.
            packet.set_duration(1);
            packet.rescale_ts(encoder_tb, stream_tb);
            packet.write_interleaved(octx)?;
        }
        Ok(())
    };
    for i in 0..args.frames {
        frame.set_pts(Some(i64::from(i)));
        encoder.send_frame(&frame)?;
        drain(&mut encoder, &mut octx)?;
    }
    encoder.send_eof()?;
    drain(&mut encoder, &mut octx)?;
    octx.write_trailer()?;
    Ok(())
}
