//! `stream-manager loader check|decode`: runs an asset loader on a file offline, under the
//! limits the server gives loaders, for loader authors. `check` prints what the loader says
//! about itself and what it made of the file (kind, size, frames and their durations, draw
//! commands) with the time the decode took; `decode` also writes the picture as PNG: a still
//! image, each frame of an animation (`out-0.png`, `out-1.png`, … with `--out out.png`), or a
//! drawing rasterized at its natural size or at `--width`/`--height`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use tiny_skia::Pixmap;

use sm_compose::commands::{NoImages, rasterize};
use sm_compose::text::FontBook;
use sm_plugin_host::loader::{DecodeError, Decoded, LoaderLimits, Picture};
use sm_plugin_host::{PluginLimits, Runtime};

/// `stream-manager loader …`.
#[derive(Debug, clap::Subcommand)]
pub enum LoaderCommand {
    /// Decode a file with a loader and print what it made and how long it took.
    Check(LoaderArgs),
    /// Decode a file with a loader and write the result as PNG (`--out`).
    Decode(LoaderArgs),
}

/// Arguments of `loader check` and `loader decode`.
#[derive(Debug, clap::Args)]
pub struct LoaderArgs {
    /// The file to decode.
    pub file: PathBuf,
    /// The loader component (`.wasm`).
    #[arg(long)]
    pub loader: PathBuf,
    /// Options for the loader's `decode` (a JSON object).
    #[arg(long, default_value = "{}")]
    pub options: String,
    /// Where `decode` writes the PNG (an animation: one file per frame, numbered).
    #[arg(long, default_value = "out.png")]
    pub out: PathBuf,
    /// Width a drawing is rasterized at (default: its natural width, or from `--height`).
    #[arg(long)]
    pub width: Option<u32>,
    /// Height a drawing is rasterized at (default: its natural height, or from `--width`).
    #[arg(long)]
    pub height: Option<u32>,
    /// Time the decode may take, in milliseconds (the server's `--loader-budget-ms`).
    #[arg(long, default_value_t = 2000)]
    pub budget_ms: u64,
}

/// Runs `loader check` or `loader decode`.
pub fn run(command: &LoaderCommand) -> anyhow::Result<()> {
    let (args, write) = match command {
        LoaderCommand::Check(args) => (args, false),
        LoaderCommand::Decode(args) => (args, true),
    };
    let runtime = Runtime::new(PluginLimits::default(), None)?;
    let component = read_bounded(&args.loader, runtime.limits().max_component_bytes)?;
    let loader = runtime
        .prepare_loader(component)
        .with_context(|| format!("{}", args.loader.display()))?;
    println!(
        "loader {} {} decodes {}",
        loader.name,
        loader.version,
        loader.media_types.join(", ")
    );
    let data = read_bounded(&args.file, 32 << 20)?;
    let limits = LoaderLimits {
        budget: std::time::Duration::from_millis(args.budget_ms.clamp(10, 60_000)),
        ..LoaderLimits::default()
    };
    let started = Instant::now();
    let decoded = match loader.decode(&data, &args.options, &limits, |_| Ok::<(), String>(())) {
        Ok((decoded, ())) => decoded,
        Err(DecodeError::Fault(f)) => bail!("{}: the loader failed: {f}", args.file.display()),
        Err(DecodeError::Refused(e)) => bail!("{e}"),
    };
    let took = started.elapsed();
    println!(
        "{}: {} in {took:.1?}",
        args.file.display(),
        describe(&decoded)
    );
    if write {
        for path in write_png(&decoded, args)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// One line on what a loader made.
fn describe(decoded: &Decoded) -> String {
    match decoded {
        Decoded::Still(p) => format!("a still image of {}x{}", p.width, p.height),
        Decoded::Animation(frames) => {
            let (w, h) = frames.first().map_or((0, 0), |(p, _)| (p.width, p.height));
            let durations: Vec<String> = frames.iter().map(|(_, ms)| ms.to_string()).collect();
            let total: u64 = frames.iter().map(|(_, ms)| u64::from(*ms)).sum();
            let bytes = u64::from(w) * u64::from(h) * 4 * frames.len() as u64;
            format!(
                "an animation of {} frames of {w}x{h} ({} MiB decoded), {total} ms a run; \
                 durations (ms): {}",
                frames.len(),
                bytes >> 20,
                durations.join(" ")
            )
        }
        Decoded::Drawing {
            width,
            height,
            commands,
        } => format!(
            "a drawing of {width}x{height} in {} draw commands",
            commands.len()
        ),
    }
}

/// Writes the picture(s) of `decoded` as PNG; returns the files written.
fn write_png(decoded: &Decoded, args: &LoaderArgs) -> anyhow::Result<Vec<PathBuf>> {
    let save = |p: &Picture, path: &Path| -> anyhow::Result<()> {
        image::save_buffer(
            path,
            &p.rgba,
            p.width,
            p.height,
            image::ExtendedColorType::Rgba8,
        )
        .with_context(|| format!("{}", path.display()))
    };
    match decoded {
        Decoded::Still(p) => {
            save(p, &args.out)?;
            Ok(vec![args.out.clone()])
        }
        Decoded::Animation(frames) => {
            let stem = args.out.with_extension("");
            let mut written = Vec::new();
            for (i, (p, _)) in frames.iter().enumerate() {
                let path = PathBuf::from(format!("{}-{i}.png", stem.display()));
                save(p, &path)?;
                written.push(path);
            }
            Ok(written)
        }
        Decoded::Drawing {
            width,
            height,
            commands,
        } => {
            let (w, h) = drawn_size((*width, *height), args.width, args.height);
            let mut pixmap = Pixmap::new(w, h).context("a drawing of no size")?;
            let scale = [w as f32 / width, 0.0, 0.0, h as f32 / height, 0.0, 0.0];
            let mut all = vec![sm_compose::commands::DrawCommand::Transform { matrix: scale }];
            all.extend(commands.iter().cloned());
            rasterize(
                &all,
                &mut pixmap.as_mut(),
                &mut FontBook::default(),
                &NoImages,
            );
            pixmap
                .save_png(&args.out)
                .with_context(|| format!("{}", args.out.display()))?;
            Ok(vec![args.out.clone()])
        }
    }
}

/// The size a drawing of natural size `natural` is rasterized at: the requested sides,
/// the other one following the aspect, each 1..=16384.
fn drawn_size(natural: (f32, f32), width: Option<u32>, height: Option<u32>) -> (u32, u32) {
    let (nw, nh) = (natural.0.max(1e-3), natural.1.max(1e-3));
    let (w, h) = match (width, height) {
        (Some(w), Some(h)) => (w as f32, h as f32),
        (Some(w), None) => (w as f32, w as f32 * nh / nw),
        (None, Some(h)) => (h as f32 * nw / nh, h as f32),
        (None, None) => (nw, nh),
    };
    let side = |v: f32| (v.ceil() as u32).clamp(1, 16384);
    (side(w), side(h))
}

/// A file's bytes, refused above `limit` before it is read.
fn read_bounded(path: &Path, limit: usize) -> anyhow::Result<Bytes> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    if size > limit as u64 {
        bail!("{}: larger than the {limit}-byte limit", path.display());
    }
    Ok(Bytes::from(
        std::fs::read(path).with_context(|| format!("{}", path.display()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawing_is_rasterized_at_the_size_asked_aspect_kept() {
        assert_eq!(drawn_size((100.0, 50.0), None, None), (100, 50));
        assert_eq!(drawn_size((100.0, 50.0), Some(300), None), (300, 150));
        assert_eq!(drawn_size((100.0, 50.0), None, Some(10)), (20, 10));
        assert_eq!(drawn_size((100.0, 50.0), Some(7), Some(9)), (7, 9));
        assert_eq!(drawn_size((1e9, 1.0), None, None), (16384, 1));
    }
}
