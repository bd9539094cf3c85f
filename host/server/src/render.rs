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
use crate::state::store::MemoryStore;
use crate::state::{StateManager, StreamConfig};
use sm_media::encoder::{open_video, rgba_to_frame};
use sm_plugin_host::TemplateEventKind;
use sm_plugin_host::{Build, PluginLimits, Runtime};
use sm_render::compositor::Compositor;
use sm_render::{OnAir, Templates};
use sm_scene::{AssetLookup, Scene, TemplateSpec, Transition, TransitionKind};

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
    /// A directory of template components (`*.wasm`); each is the template whose id is its
    /// file name without the extension (`_` read as `-`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Wall-clock time of the first frame for templates, ms since the Unix epoch (default:
    /// now), so clocks render the same every time.
    #[arg(long)]
    pub clock: Option<i64>,
}

/// Prepares the template components of `dir` (ids from file names).
fn load_template_dir(dir: &Path, fps: u32) -> anyhow::Result<Templates> {
    let runtime = Runtime::new(PluginLimits::default(), None)?;
    let mut builds = std::collections::HashMap::new();
    for path in std::fs::read_dir(dir)
        .with_context(|| format!("--templates {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
    {
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("template file name")?
            .replace('_', "-");
        let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        let build = match runtime.prepare(Bytes::from(bytes), fps) {
            Ok(build) => build,
            // Not a template (an asset loader built beside the templates, say): skipped, as
            // `serve --templates-dir` installs it as a loader instead.
            Err(sm_plugin_host::PluginError::WrongWorld(_)) => continue,
            Err(e) => return Err(anyhow::Error::new(e).context(path.display().to_string())),
        };
        builds.insert(id, build);
    }
    Ok(Templates {
        builds: Arc::new(builds),
        runtime: Some(runtime),
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    templates: Templates,
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
    scene.validate(&OfflineLookup {
        assets: &assets,
        templates: &templates,
    })?;
    let size_of = |id: &str| {
        assets
            .get(id)
            .and_then(|a| a.pixmap.as_ref().map(|p| (p.width(), p.height())))
    };
    let images = assets.with_template_images(&scene, scene.drawn_images(w, h, &size_of));
    let resources = assets.resources(&images);
    Ok(OnAir {
        scene: Arc::new(scene),
        resources: Arc::new(resources),
        templates,
        ..OnAir::default()
    })
}

/// The assets and templates of an offline render.
struct OfflineLookup<'a> {
    assets: &'a AssetManager,
    templates: &'a Templates,
}

impl AssetLookup for OfflineLookup<'_> {
    fn is_image(&self, id: &str) -> bool {
        self.assets.is_image(id)
    }
    fn has_family(&self, family: &str) -> bool {
        self.assets.has_family(family)
    }
    fn has_template(&self, id: &str) -> bool {
        self.templates.builds.contains_key(id)
    }
    fn check_template(&self, spec: &TemplateSpec) -> Result<(), String> {
        match self.templates.builds.get(&spec.id) {
            Some(build) => build.check_spec(spec),
            None => Err(format!("template {:?} is not loaded", spec.id)),
        }
    }
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
    let templates = match &args.templates {
        Some(dir) => load_template_dir(dir, args.fps)?,
        None => Templates::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("runtime")?;
    let on_air = runtime
        .block_on(offline_on_air(
            scene,
            args.assets.as_deref(),
            templates.clone(),
            w,
            h,
        ))
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
                .block_on(offline_on_air(
                    next,
                    args.assets.as_deref(),
                    templates.clone(),
                    w,
                    h,
                ))
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
    compositor.set_wall_clock(args.clock.unwrap_or_else(now_ms));
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
        Ok(())
    };
    write_frames(&mut pixmap, (args.frames, args.fps), &args.out, &mut next)
}

/// Writes `frames` frames made by `next` to `out`: a directory of PNGs, or an MP4.
fn write_frames(
    pixmap: &mut Pixmap,
    (frames, fps): (u32, u32),
    out: &Path,
    next: &mut dyn FnMut(u32, &mut Pixmap) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"))
    {
        return write_mp4(pixmap, (frames, fps), out, next);
    }
    std::fs::create_dir_all(out).with_context(|| format!("--out {}", out.display()))?;
    for i in 0..frames {
        next(i, pixmap)?;
        let path = out.join(format!("frame-{i:05}.png"));
        pixmap
            .save_png(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn write_mp4(
    pixmap: &mut Pixmap,
    (frames, fps): (u32, u32),
    path: &Path,
    next: &mut dyn FnMut(u32, &mut Pixmap) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ffmpeg::init()?;
    let (w, h) = (pixmap.width(), pixmap.height());
    if w % 2 != 0 || h % 2 != 0 {
        bail!("an MP4 needs an even canvas size, not {w}x{h}");
    }
    let config = StreamConfig {
        width: w,
        height: h,
        target_fps: fps,
        ..StreamConfig::default()
    };
    let mut encoder = open_video(&config.encoder_settings())?;
    let mut octx =
        ffmpeg::format::output(path).with_context(|| format!("--out {}", path.display()))?;
    let mut stream =
        octx.add_stream(ffmpeg::encoder::find_by_name(config.encoder.ffmpeg_name()))?;
    stream.set_parameters(&encoder);
    stream.set_time_base((1, fps as i32));
    octx.write_header()?;
    let stream_tb = octx.stream(0).context("output stream")?.time_base();
    let encoder_tb = ffmpeg::Rational::new(1, fps as i32);
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
    for i in 0..frames {
        // The compositor's frames are opaque (the canvas lies over black).
        if let Err(e) = next(i, pixmap) {
            // No half-written video is left behind.
            drop(octx);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
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

/// `stream-manager template …`.
#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Validate a component, print what it describes, render frames under the limits and
    /// print the time per frame and the peak memory.
    Check(TemplateCheckArgs),
    /// Render a template offline into PNG files or an MP4.
    Render(TemplateRenderArgs),
    /// Serve a preview page of a component on 127.0.0.1 (its picture, a params form,
    /// frame controls and its cost per frame), reloading it when the file changes with
    /// `--watch`.
    Preview(crate::preview::PreviewArgs),
    /// Create a template crate, ready to build with `cargo build --release --target
    /// wasm32-wasip2` and to check with `template check`.
    New(crate::scaffold::NewArgs),
}

/// Arguments of `template check`.
#[derive(Debug, clap::Args)]
pub struct TemplateCheckArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// Frames to render, 1..=36000.
    #[arg(long, default_value_t = 300)]
    pub frames: u32,
    /// Params (JSON); default: the template's default params.
    #[arg(long)]
    pub params: Option<String>,
}

/// Arguments of `template render`.
#[derive(Debug, clap::Args)]
pub struct TemplateRenderArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// Params (JSON); default: the template's default params.
    #[arg(long)]
    pub params: Option<String>,
    /// Frames to render, 1..=36000.
    #[arg(long, default_value_t = 1)]
    pub frames: u32,
    /// Frame rate, 1..=120.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Width × height of the picture, e.g. `1280x200`; default: the template's size.
    #[arg(long)]
    pub size: Option<String>,
    /// Wall-clock time of the first frame, ms since the Unix epoch (default: now), so
    /// clocks render the same every time.
    #[arg(long)]
    pub clock: Option<i64>,
    /// Background colour behind the template.
    #[arg(long, default_value = "#000000")]
    pub background: String,
    /// A directory (frame-00000.png, …) or a file ending in `.mp4`.
    #[arg(long)]
    pub out: PathBuf,
    /// A directory of images and fonts, as for `render --assets`.
    #[arg(long)]
    pub assets: Option<PathBuf>,
}

/// Runs a `template` subcommand.
pub fn run_template(command: &TemplateCommand) -> anyhow::Result<()> {
    match command {
        TemplateCommand::Check(args) => check_template(args),
        TemplateCommand::Render(args) => render_template(args),
        TemplateCommand::Preview(args) => crate::preview::run(args),
        TemplateCommand::New(args) => crate::scaffold::run(args),
    }
}

/// Reads and prepares a component (the same checks as an upload).
fn prepare(file: &Path, fps: u32) -> anyhow::Result<(Arc<Runtime>, Arc<Build>)> {
    let runtime = Runtime::new(PluginLimits::default(), None)?;
    let build = prepare_file(&runtime, file, fps)?;
    Ok((runtime, build))
}

/// Reads a component file (no larger than the runtime takes) and prepares it with
/// `runtime`: the same checks as an upload.
pub(crate) fn prepare_file(
    runtime: &Arc<Runtime>,
    file: &Path,
    fps: u32,
) -> anyhow::Result<Arc<Build>> {
    let limit = runtime.limits().max_component_bytes as u64;
    let size = std::fs::metadata(file)
        .with_context(|| format!("{}", file.display()))?
        .len();
    if size > limit {
        bail!("{}: larger than the {limit}-byte limit", file.display());
    }
    let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
    runtime
        .prepare(Bytes::from(bytes), fps)
        .with_context(|| format!("{}", file.display()))
}

/// The params given (checked against the schema), or the defaults.
fn template_params(build: &Build, params: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let Some(text) = params else {
        return Ok(build.info.default_params.clone());
    };
    let params: serde_json::Value = serde_json::from_str(text).context("--params")?;
    build
        .check_params(&params)
        .map_err(|e| anyhow::anyhow!("--params: {e}"))?;
    Ok(params)
}

/// One template layer filling a `w` × `h` canvas, as `template check`, `template render` and
/// `template preview` run it: the same compositor, limits and budgets as the stream.
/// Blocking (it loads the assets): not for a tokio worker.
fn single_template_on_air(
    (runtime, build): (&Arc<Runtime>, &Arc<Build>),
    params: serde_json::Value,
    (w, h): (u32, u32),
    background: &str,
    assets: Option<&Path>,
) -> anyhow::Result<OnAir> {
    let id = build.info.name.clone();
    let scene: Scene = serde_json::from_value(serde_json::json!({
        "canvas": {"width": w, "height": h, "background": background},
        "layers": [{
            "id": TEMPLATE_LAYER, "kind": "template",
            "position": {"x": 0, "y": 0, "width": w, "height": h},
            "template": {"id": id, "params": params}
        }]
    }))
    .context("--background")?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("runtime")?;
    let templates = Templates {
        builds: Arc::new([(id, build.clone())].into_iter().collect()),
        runtime: Some(runtime.clone()),
    };
    tokio.block_on(offline_on_air(scene, assets, templates, w, h))
}

/// What a template run is drawn like: canvas size, frame rate, the wall clock at frame 0
/// (ms since the Unix epoch), the background colour and the assets folder.
pub(crate) struct RunSetup<'a> {
    pub size: (u32, u32),
    pub fps: u32,
    pub clock: i64,
    pub background: &'a str,
    pub assets: Option<&'a Path>,
}

/// A template alone on a canvas, drawn frame by frame (from frame 0) through the stream's
/// compositor: what `template check`, `template render` and `template preview` run.
pub(crate) struct TemplateRun {
    compositor: Compositor,
    events: crossbeam_channel::Receiver<sm_plugin_host::TemplateEvent>,
    next: u32,
}

impl TemplateRun {
    /// A run of `build` with `params` (checked already). Blocking.
    pub(crate) fn new(
        (runtime, build): (&Arc<Runtime>, &Arc<Build>),
        params: serde_json::Value,
        setup: &RunSetup<'_>,
    ) -> anyhow::Result<Self> {
        let on_air = single_template_on_air(
            (runtime, build),
            params,
            setup.size,
            setup.background,
            setup.assets,
        )?;
        let events = runtime.events();
        // What earlier runs of the runtime reported is not this run's.
        events.try_iter().for_each(drop);
        let mut compositor = Compositor::new(setup.size.0, setup.size.1, setup.fps);
        compositor.set_wall_clock(setup.clock);
        compositor.set(on_air);
        Ok(Self {
            compositor,
            events,
            next: 0,
        })
    }

    /// The number of the frame [`TemplateRun::step`] draws next.
    pub(crate) fn next_frame(&self) -> u32 {
        self.next
    }

    /// Draws the next frame into `pixmap` (of the run's size): what the template layer
    /// cost, and its fault if it had one (the picture is then the last good one).
    pub(crate) fn step(
        &mut self,
        pixmap: &mut Pixmap,
    ) -> (
        sm_plugin_host::layer::LayerTiming,
        Option<sm_plugin_host::Fault>,
    ) {
        self.compositor
            .render(&mut pixmap.as_mut(), u64::from(self.next));
        self.next += 1;
        let timing = self
            .compositor
            .template_timing(TEMPLATE_LAYER)
            .unwrap_or_default();
        (timing, first_fault(&self.events))
    }
}

/// Layer id of the template in a [`TemplateRun`].
const TEMPLATE_LAYER: &str = "template";

/// The fault a template layer reported, if any, from `events`.
fn first_fault(
    events: &crossbeam_channel::Receiver<sm_plugin_host::TemplateEvent>,
) -> Option<sm_plugin_host::Fault> {
    events.try_iter().find_map(|event| match event.kind {
        TemplateEventKind::Fault(f)
        | TemplateEventKind::Quarantined(f)
        | TemplateEventKind::RollbackWanted(f) => Some(f),
        TemplateEventKind::Swapped | TemplateEventKind::Resumed => None,
    })
}

/// Peak and current resident memory of this process, bytes (Linux; `None` elsewhere).
fn resident_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Resets the peak resident memory to the current (Linux: `/proc/self/clear_refs`).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs a template frame by frame through the stream's compositor, as the only template on
/// air at 30 fps: guest time, the host's raster time and its estimate, the host's peak
/// memory, and every frame that faults or exceeds the budgets. Fails when any frame does.
fn check_template(args: &TemplateCheckArgs) -> anyhow::Result<()> {
    if !(1..=36_000).contains(&args.frames) {
        bail!("--frames: 1..=36000");
    }
    let fps = 30;
    let (runtime, build) = prepare(&args.file, fps)?;
    println!("{}", serde_json::to_string_pretty(&build.info)?);
    let params = template_params(&build, args.params.as_deref())?;
    let [width, height] = build.info.default_size;
    let mut run = TemplateRun::new(
        (&runtime, &build),
        params,
        &RunSetup {
            size: (width, height),
            fps,
            clock: 0,
            background: "#00000000",
            assets: None,
        },
    )?;
    let mut pixmap = Pixmap::new(width, height).context("canvas size")?;
    reset_peak_memory();
    let base = resident_bytes();
    let limits = runtime.limits();
    let (mut guest, mut raster, mut estimate) =
        (Stats::default(), Stats::default(), Stats::default());
    let (mut drawn, mut faults) = (0u32, Vec::new());
    for frame in 0..args.frames {
        let (timing, fault) = run.step(&mut pixmap);
        guest.add(timing.guest);
        if timing.drew {
            drawn += 1;
            raster.add(timing.raster);
            estimate.add(timing.estimate);
        }
        if let Some(fault) = fault {
            faults.push((frame, fault));
        }
    }
    let share = limits.share(fps, 1);
    println!(
        "{} frames at {width}x{height}, {fps} fps: {drawn} drawn, {} unchanged or faulty\n\
         guest:  {:.3} ms per frame on average, {:.3} ms at most (one call may take {:.1} ms)\n\
         raster: {:.3} ms per drawn frame on average, {:.3} ms at most (estimated at most \
         {:.3} ms)\n\
         budget: {:.1} ms a frame for guest and raster together when it is the only template \
         on air; with N templates on air, 1/N of that",
        args.frames,
        args.frames - drawn,
        guest.mean(),
        guest.max,
        ms(limits.render_budget(fps)),
        raster.mean(),
        raster.max,
        estimate.max,
        ms(share),
    );
    if let (Some((base_peak, base_rss)), Some((peak, _))) = (base, resident_bytes()) {
        let grew = peak.saturating_sub(base_rss.max(base_peak.min(base_rss)));
        println!(
            "memory: the host's peak grew {:.1} MiB while rendering (guest memory included)",
            grew as f64 / f64::from(1 << 20)
        );
    }
    if let Some((frame, fault)) = faults.first() {
        bail!(
            "{} of {} frames faulted; the first, frame {frame}: {fault}",
            faults.len(),
            args.frames
        );
    }
    println!("no frame faulted or exceeded its budget");
    Ok(())
}

/// Mean and maximum of durations, in milliseconds.
#[derive(Debug, Default)]
struct Stats {
    sum: f64,
    max: f64,
    n: u32,
}

impl Stats {
    fn add(&mut self, d: std::time::Duration) {
        let v = ms(d);
        (self.sum, self.max, self.n) = (self.sum + v, self.max.max(v), self.n + 1);
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        self.sum / f64::from(self.n)
    }
}

fn render_template(args: &TemplateRenderArgs) -> anyhow::Result<()> {
    if !(1..=36_000).contains(&args.frames) {
        bail!("--frames: 1..=36000");
    }
    if !(1..=120).contains(&args.fps) {
        bail!("--fps: 1..=120");
    }
    let (runtime, build) = prepare(&args.file, args.fps)?;
    let [dw, dh] = build.info.default_size;
    let (w, h) = match &args.size {
        None => (dw, dh),
        Some(s) => s
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .filter(|&(w, h): &(u32, u32)| (16..=7680).contains(&w) && (16..=7680).contains(&h))
            .context("--size: WIDTHxHEIGHT, each 16..=7680")?,
    };
    let params = template_params(&build, args.params.as_deref())?;
    let mut run = TemplateRun::new(
        (&runtime, &build),
        params,
        &RunSetup {
            size: (w, h),
            fps: args.fps,
            clock: args.clock.unwrap_or_else(now_ms),
            background: &args.background,
            assets: args.assets.as_deref(),
        },
    )?;
    let mut pixmap = Pixmap::new(w, h).context("canvas size")?;
    // A faulty frame is not written: the command fails with the fault (a guest panic's
    // message and location included).
    let mut next = |i: u32, pixmap: &mut Pixmap| match run.step(pixmap) {
        (_, Some(f)) => Err(anyhow::anyhow!("frame {i}: {f}")),
        (_, None) => Ok(()),
    };
    write_frames(&mut pixmap, (args.frames, args.fps), &args.out, &mut next)
}
