//! `stream-manager render`: draws a scene offline, without a server, into PNG files or an MP4
//! (H.264, the stream's encoder settings), for template and scene authors and for tests.
//! Frames go through the same compositor as the stream, frame by frame, so `{{frame}}` and
//! the other text tokens advance; images and fonts come from `--assets DIR`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use ffmpeg_next as ffmpeg;
use tiny_skia::Pixmap;

use crate::assets::{AssetLimits, AssetManager};
use crate::output::encoder::{open_video, rgba_to_frame};
use crate::scene::compositor::Compositor;
use crate::scene::{OnAir, Scene, Transition, TransitionKind};
use crate::state::store::MemoryStore;
use crate::state::{StateManager, StreamConfig};

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
    /// Frame rate, 1..=120.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// A directory (frame-00000.png, …) or a file ending in `.mp4`.
    #[arg(long)]
    pub out: PathBuf,
    /// A directory of images (.png, .jpg, .webp, .gif) and fonts (.ttf, .otf); each is the
    /// asset whose id is its file name without the extension.
    #[arg(long)]
    pub assets: Option<PathBuf>,
    /// A second scene, activated at frame `--at` with `--transition` (to preview a scene
    /// change as it goes on air).
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// The transition to `--to`: `cut`, `fade` or `slide`.
    #[arg(long, default_value = "fade")]
    pub transition: String,
    /// Duration of the transition in milliseconds, 0..=10000.
    #[arg(long, default_value_t = 500)]
    pub transition_ms: u32,
    /// Frame at which `--to` is activated.
    #[arg(long, default_value_t = 1)]
    pub at: u32,
}

/// Reads and parses a scene file (bounded in size).
fn read_scene(path: &Path) -> anyhow::Result<Scene> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    if size > MAX_SCENE_BYTES {
        bail!("{}: larger than {MAX_SCENE_BYTES} bytes", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// The Content-Type of an asset file, by extension.
fn mime_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => return None,
    })
}

/// Loads the asset files of `dir` as assets named by their file stems (the ids scenes use).
pub async fn load_asset_dir(assets: &AssetManager, dir: &Path) -> anyhow::Result<usize> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--assets {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| mime_of(p).is_some())
        .collect();
    entries.sort();
    for path in &entries {
        let mime = mime_of(path).expect("filtered");
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("asset file name")?;
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        assets
            .insert(stem, mime, Bytes::from(data))
            .await
            .with_context(|| format!("asset {}", path.display()))?;
    }
    Ok(entries.len())
}

/// What is needed to draw `scene` offline: its assets from `dir`, resized like the server
/// does for a `w` × `h` frame.
pub async fn offline_on_air(
    scene: Scene,
    dir: Option<&Path>,
    w: u32,
    h: u32,
) -> anyhow::Result<OnAir> {
    let state = Arc::new(StateManager::new(
        Arc::new(MemoryStore::default()),
        "",
        StreamConfig::default(),
    ));
    let assets = Arc::new(AssetManager::new(state, AssetLimits::default()));
    if let Some(dir) = dir {
        load_asset_dir(&assets, dir).await?;
    }
    scene.validate(&*assets)?;
    let size_of = |id: &str| {
        assets
            .get(id)
            .and_then(|a| a.pixmap.as_ref().map(|p| (p.width(), p.height())))
    };
    let resources = assets.resources(&scene.drawn_images(w, h, &size_of));
    Ok(OnAir {
        scene: Arc::new(scene),
        resources: Arc::new(resources),
        ..OnAir::default()
    })
}

/// Renders `args.frames` frames of the scene at its canvas size.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    if !(1..=36_000).contains(&args.frames) {
        bail!("--frames: 1..=36000");
    }
    if !(1..=120).contains(&args.fps) {
        bail!("--fps: 1..=120");
    }
    let scene = read_scene(&args.scene).context("--scene")?;
    let (w, h) = (scene.canvas.width, scene.canvas.height);
    let kind = match args.transition.as_str() {
        "cut" => TransitionKind::Cut,
        "fade" => TransitionKind::Fade,
        "slide" => TransitionKind::Slide,
        other => bail!("--transition {other:?}: cut, fade or slide"),
    };
    if args.transition_ms > 10_000 {
        bail!("--transition-ms: 0..=10000");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("runtime")?;
    let on_air = runtime
        .block_on(offline_on_air(scene, args.assets.as_deref(), w, h))
        .with_context(|| format!("--scene {}", args.scene.display()))?;
    let mut then = match &args.to {
        Some(path) => {
            let next = read_scene(path).context("--to")?;
            if (next.canvas.width, next.canvas.height) != (w, h) {
                bail!(
                    "--to {}: the canvas size differs from --scene's",
                    path.display()
                );
            }
            let mut on_air = runtime
                .block_on(offline_on_air(next, args.assets.as_deref(), w, h))
                .with_context(|| format!("--to {}", path.display()))?;
            on_air.transition = Some(Transition {
                kind,
                duration_ms: args.transition_ms,
            });
            Some(on_air)
        }
        None => None,
    };
    let mut compositor = Compositor::new(w, h, args.fps);
    compositor.set(on_air);
    let mut pixmap = Pixmap::new(w, h).context("canvas size")?;
    let at = args.at;
    let mut next = move |i: u32, pixmap: &mut Pixmap| {
        if i == at
            && let Some(on_air) = then.take()
        {
            compositor.set(on_air);
        }
        compositor.render(&mut pixmap.as_mut(), u64::from(i));
    };
    if args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"))
    {
        write_mp4(&mut pixmap, args, &args.out, &mut next)
    } else {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("--out {}", args.out.display()))?;
        for i in 0..args.frames {
            next(i, &mut pixmap);
            let path = args.out.join(format!("frame-{i:05}.png"));
            pixmap
                .save_png(&path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

fn write_mp4(
    pixmap: &mut Pixmap,
    args: &RenderArgs,
    path: &Path,
    next: &mut dyn FnMut(u32, &mut Pixmap),
) -> anyhow::Result<()> {
    ffmpeg::init()?;
    let (w, h) = (pixmap.width(), pixmap.height());
    if w % 2 != 0 || h % 2 != 0 {
        bail!("an MP4 needs an even canvas size, not {w}x{h}");
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
        // The compositor's frames are opaque (the canvas lies over black).
        next(i, pixmap);
        rgba_to_frame(pixmap.data(), &mut frame)?;
        frame.set_pts(Some(i64::from(i)));
        encoder.send_frame(&frame)?;
        drain(&mut encoder, &mut octx)?;
    }
    encoder.send_eof()?;
    drain(&mut encoder, &mut octx)?;
    octx.write_trailer()?;
    Ok(())
}
