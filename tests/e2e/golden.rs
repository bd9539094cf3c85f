//! Golden images: scenes under `tests/golden/*.json` rendered offline with
//! `stream-manager render` (assets from `tests/golden/assets/`, each the asset named by its
//! file stem) and compared with the committed `tests/golden/<scene>.png`.
//!
//! A rendered frame matches its golden when, per channel, the mean absolute difference is at
//! most 2 and at most 1% of the pixels differ by more than 40 in some channel. Each scene
//! also has a few probes of what it must show (a colour at a point, where glyphs are), checked
//! on every run, so a golden regenerated from a broken renderer is caught too.
//!
//! To regenerate the goldens after an intended change of the renderer's output:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo nextest run -p stream-manager --test e2e -E 'test(/^golden::/)'
//! ```
//!
//! That writes each rendered frame over its golden (only if its probes pass) instead of
//! comparing. Look at the new PNGs before committing them.
//!
//! Transitions are rendered with `render --to SCENE --transition KIND --transition-ms N --at
//! F` and compared at their mid-point (`transition_fade`, `transition_slide`: each starts from
//! `transition_fade.json`/`transition_slide.json`, a copy of `transition_from.json`, and goes
//! to `transition_to.json`).

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn updating() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// An RGBA picture.
struct Img {
    w: u32,
    h: u32,
    rgba: Vec<u8>,
}

impl Img {
    fn px(&self, x: u32, y: u32) -> [u8; 4] {
        assert!(
            x < self.w && y < self.h,
            "({x},{y}) is outside {}x{}",
            self.w,
            self.h
        );
        let i = ((y * self.w + x) * 4) as usize;
        [
            self.rgba[i],
            self.rgba[i + 1],
            self.rgba[i + 2],
            self.rgba[i + 3],
        ]
    }
}

/// Decodes a PNG that should be `w`×`h` into RGBA with FFmpeg.
fn read_png(path: &Path, w: u32, h: u32) -> Result<Img, String> {
    let out = Command::new("timeout")
        .args([
            "-k",
            "2",
            "20",
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
        ])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgba", "-"])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg cannot decode {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let want = (w * h * 4) as usize;
    if out.stdout.len() != want {
        return Err(format!(
            "{} is not {w}x{h}: {} bytes of RGBA instead of {want}",
            path.display(),
            out.stdout.len()
        ));
    }
    Ok(Img {
        w,
        h,
        rgba: out.stdout,
    })
}

/// Runs `stream-manager render` on a scene file; returns the output directory's frames.
fn render(scene: &Path, frames: u32, out: &Path, assets: Option<&Path>) -> std::process::Output {
    render_with(scene, frames, out, assets, &[])
}

/// [`render`] with extra arguments.
fn render_with(
    scene: &Path,
    frames: u32,
    out: &Path,
    assets: Option<&Path>,
    extra: &[String],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stream-manager"));
    cmd.arg("render")
        .arg("--scene")
        .arg(scene)
        .args(["--frames", &frames.to_string(), "--out"])
        .arg(out)
        .args(extra);
    if let Some(a) = assets {
        cmd.arg("--assets").arg(a);
    }
    cmd.output().expect("run stream-manager render")
}

/// Why `got` does not match `want` (see the module comment), or `Ok` with the statistics.
fn compare(got: &Img, want: &Img) -> Result<String, String> {
    let n = (got.w * got.h) as usize;
    let mut sums = [0u64; 4];
    let mut far = 0usize;
    for (p, q) in got.rgba.chunks_exact(4).zip(want.rgba.chunks_exact(4)) {
        let mut is_far = false;
        for c in 0..4 {
            let d = p[c].abs_diff(q[c]);
            sums[c] += u64::from(d);
            is_far |= d > 40;
        }
        far += usize::from(is_far);
    }
    let means = sums.map(|s| s as f64 / n as f64);
    let stats = format!(
        "mean abs diff per channel (r,g,b,a) {:.2} {:.2} {:.2} {:.2}; {far} of {n} pixels differ by > 40",
        means[0], means[1], means[2], means[3]
    );
    if means.iter().all(|&m| m <= 2.0) && far * 100 <= n {
        Ok(stats)
    } else {
        Err(stats)
    }
}

// ---------------------------------------------------------------------------------------
// Probes

type Rgb = [u8; 3];

/// The checks of what a rendered frame must show: each one that fails is described in
/// `wrong`.
struct Probes<'a> {
    img: &'a Img,
    wrong: Vec<String>,
}

impl Probes<'_> {
    /// The pixel at (x, y) is within `tol` of `rgb` in every channel.
    fn near(&mut self, x: u32, y: u32, rgb: Rgb, tol: u8, what: &str) {
        let p = self.img.px(x, y);
        if (0..3).any(|c| p[c].abs_diff(rgb[c]) > tol) {
            self.wrong.push(format!(
                "({x},{y}) is {:?}, expected {what} {rgb:?} ±{tol}",
                &p[..3]
            ));
        }
    }

    /// Each channel of the pixel at (x, y) is within its range (for blends, whose exact value
    /// depends on the blending space).
    fn within(&mut self, x: u32, y: u32, ranges: [RangeInclusive<u8>; 3], what: &str) {
        let p = self.img.px(x, y);
        if (0..3).any(|c| !ranges[c].contains(&p[c])) {
            self.wrong.push(format!(
                "({x},{y}) is {:?}, expected {what} {ranges:?}",
                &p[..3]
            ));
        }
    }

    /// Records a check that failed, described.
    fn fail(&mut self, why: String) {
        self.wrong.push(why);
    }
}

/// A blend of two full channel values: clearly neither of them.
const MID: RangeInclusive<u8> = 90..=215;

/// Pixels in [x0, x1) × [y0, y1) brighter than 150 in every channel that `test` accepts:
/// their count and mean x.
fn lit(
    img: &Img,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    test: fn([u8; 4]) -> bool,
) -> (usize, f64) {
    let (mut n, mut xs) = (0usize, 0u64);
    for y in y0..y1.min(img.h) {
        for x in x0..x1.min(img.w) {
            if test(img.px(x, y)) {
                n += 1;
                xs += u64::from(x);
            }
        }
    }
    (
        n,
        if n == 0 {
            f64::NAN
        } else {
            xs as f64 / n as f64
        },
    )
}

fn white(p: [u8; 4]) -> bool {
    p[..3].iter().all(|&c| c > 150)
}
fn yellow(p: [u8; 4]) -> bool {
    p[0] > 150 && p[1] > 150 && p[2] < 80
}
fn green(p: [u8; 4]) -> bool {
    p[1] > 120 && p[0] < 80 && p[2] < 80
}
fn reddish(p: [u8; 4]) -> bool {
    p[0] > 170 && p[1] < 110 && p[2] < 120
}

/// At least `min` pixels in the box that `test` accepts.
fn at_least(
    p: &mut Probes,
    area: (u32, u32, u32, u32),
    test: fn([u8; 4]) -> bool,
    min: usize,
    what: &str,
) {
    let (n, _) = lit(p.img, area, test);
    if n < min {
        p.fail(format!(
            "only {n} pixels of {what} in {area:?} (expected {min} or more)"
        ));
    }
}

const RED: Rgb = [255, 0, 0];
const GREEN: Rgb = [0, 255, 0];
const BLUE: Rgb = [0, 0, 255];
const BLACK: Rgb = [0, 0, 0];
const WHITE: Rgb = [255, 255, 255];
const YELLOW: Rgb = [255, 255, 0];
const MAGENTA: Rgb = [255, 0, 255];
const CYAN: Rgb = [0, 255, 255];
const GREY: Rgb = [48, 48, 48];

/// What each scene must show (named like its scene).
mod probes {
    use super::*;

    pub(super) fn shapes(p: &mut Probes) {
        p.near(30, 25, RED, 8, "rect");
        p.near(11, 11, RED, 8, "rect corner");
        p.near(80, 25, GREEN, 8, "rounded rect");
        p.near(80, 10, WHITE, 20, "rounded rect stroke (top edge)");
        p.near(61, 11, BLACK, 20, "outside the rounded corner");
        p.near(130, 25, BLUE, 8, "ellipse");
        p.near(112, 12, BLACK, 8, "ellipse box corner, outside the ellipse");
        p.near(10, 65, YELLOW, 20, "stroke-only rect edge");
        p.near(30, 65, BLACK, 8, "inside a rect with no fill");
        p.near(130, 65, MAGENTA, 8, "stroked ellipse fill");
        p.near(111, 65, CYAN, 30, "ellipse stroke");
        p.near(80, 65, BLACK, 8, "empty canvas");
    }

    pub(super) fn gradients(p: &mut Probes) {
        p.near(8, 22, RED, 30, "linear 0°: red at the left");
        p.near(72, 22, BLUE, 30, "linear 0°: blue at the right");
        p.within(40, 22, [MID, 0..=20, MID], "linear 0°: a mix in the middle");
        p.near(120, 7, WHITE, 40, "linear 90°: white at the top");
        p.near(120, 38, BLACK, 40, "linear 90°: black at the bottom");
        p.near(
            40,
            67,
            YELLOW,
            30,
            "radial: the stop 0 colour in the centre",
        );
        p.near(7, 52, BLUE, 30, "radial: the last stop at the corner");
        p.near(
            120,
            67,
            GREEN,
            30,
            "three stops: the middle stop in the middle",
        );
        p.near(88, 67, RED, 50, "three stops: the first at the left");
        p.near(152, 67, BLUE, 50, "three stops: the last at the right");
    }

    pub(super) fn rotation(p: &mut Probes) {
        // A 40x40 square centred at (30,45) turned 45°: a diamond reaching 28 px from the centre.
        p.near(30, 45, RED, 8, "diamond centre");
        p.near(30, 20, RED, 8, "diamond tip above the unrotated square");
        p.near(
            12,
            27,
            BLACK,
            8,
            "unrotated square's corner, outside the diamond",
        );
        // 50x20 centred at (80,45) turned 90°: 20 wide, 50 tall.
        p.near(80, 24, GREEN, 8, "upright bar above its unrotated box");
        p.near(58, 45, BLACK, 8, "unrotated bar's end, now empty");
        // 46x10 centred at (133,45) turned 30° clockwise: the right end goes down.
        p.near(149, 54, BLUE, 40, "right end lower (clockwise)");
        p.near(117, 36, BLUE, 40, "left end higher (clockwise)");
        p.near(149, 36, BLACK, 20, "no anticlockwise right end");
        p.near(117, 54, BLACK, 20, "no anticlockwise left end");
    }

    pub(super) fn opacity(p: &mut Probes) {
        p.near(5, 5, BLACK, 0, "a transparent background shows black");
        p.near(20, 45, WHITE, 0, "opaque white");
        p.within(55, 45, [240..=255, MID, MID], "half red over white");
        p.within(90, 45, [MID, 0..=20, 0..=20], "half red over black");
        p.within(125, 15, [0..=20, MID, 0..=20], "#00ff0080 over black");
        p.near(125, 77, BLACK, 0, "opacity 0 draws nothing");
        p.near(140, 45, BLACK, 0, "a hidden layer draws nothing");
    }

    pub(super) fn zorder(p: &mut Probes) {
        p.near(60, 45, RED, 8, "zIndex 2 over zIndex 0");
        p.near(95, 55, BLUE, 8, "zIndex 1 over zIndex 0");
        p.near(100, 35, GREEN, 8, "zIndex 0 where nothing covers it");
        p.near(30, 75, MAGENTA, 8, "same zIndex: the later layer in front");
        p.near(
            10,
            70,
            YELLOW,
            8,
            "same zIndex: the earlier layer where uncovered",
        );
    }

    pub(super) fn text_align(p: &mut Probes) {
        let (n, x) = lit(p.img, (0, 4, 192, 34), white);
        if n < 60 || x > 60.0 {
            p.fail(format!(
                "start: {n} glyph pixels, mean x {x:.0} (want > 60 pixels, mean x < 60)"
            ));
        }
        let (n, x) = lit(p.img, (0, 38, 192, 68), white);
        if n < 60 || (x - 96.0).abs() > 12.0 {
            p.fail(format!(
                "center: {n} glyph pixels, mean x {x:.0} (want > 60 pixels, about 96)"
            ));
        }
        let (n, x) = lit(p.img, (0, 72, 192, 102), yellow);
        if n < 40 || x < 140.0 {
            p.fail(format!(
                "end: {n} yellow glyph pixels, mean x {x:.0} (want > 40 pixels, mean x > 140)"
            ));
        }
        let (stray, _) = lit(p.img, (0, 0, 192, 108), |px| px[2] > 150 && !white(px));
        if stray > 0 {
            p.fail(format!("{stray} bluish pixels: the text colour is wrong"));
        }
    }

    pub(super) fn text_wrap(p: &mut Probes) {
        // "one two three four five six" at 14 px in a 70 px box: three lines, none wider.
        let (beyond, _) = lit(p.img, (77, 0, 90, 90), white);
        if beyond > 0 {
            p.fail(format!(
                "{beyond} glyph pixels right of the wrapped box (x 76..90)"
            ));
        }
        for (i, (y0, y1)) in [(4, 21), (21, 38), (38, 55)].into_iter().enumerate() {
            let (n, _) = lit(p.img, (6, y0, 76, y1), white);
            if n < 25 {
                p.fail(format!(
                    "wrapped line {} (y {y0}..{y1}) has only {n} glyph pixels",
                    i + 1
                ));
            }
        }
        let (n, _) = lit(p.img, (0, 56, 90, 90), white);
        if n > 0 {
            p.fail(format!("{n} glyph pixels below the third wrapped line"));
        }
        // "A\nBB\nCCC" aligned to the end: three lines of growing width, ending at x 156.
        let mut widths = Vec::new();
        for (y0, y1) in [(4, 21), (21, 38), (38, 55)] {
            let xs: Vec<u32> = (90..160)
                .filter(|&x| (y0..y1).any(|y| green(p.img.px(x, y))))
                .collect();
            match (xs.first(), xs.last()) {
                (Some(&a), Some(&b)) => {
                    if b < 150 {
                        p.fail(format!(
                            "line y {y0}..{y1} ends at x {b}, not at the box end 156"
                        ));
                    }
                    widths.push(b - a);
                }
                _ => p.fail(format!("no green glyphs on the explicit line y {y0}..{y1}")),
            }
        }
        if !widths.windows(2).all(|pair| pair[1] > pair[0]) {
            p.fail(format!(
                "explicit lines A/BB/CCC should grow in width: {widths:?}"
            ));
        }
    }

    pub(super) fn image_fit(p: &mut Probes) {
        // stripes.png is 40x20: red x 0..10, green 10..30, blue 30..40.
        // contain in 40x40 at (10,25): drawn 40x20 at y 35..55.
        p.near(30, 28, GREY, 4, "contain: letterbox above");
        p.near(30, 60, GREY, 4, "contain: letterbox below");
        p.near(14, 45, RED, 8, "contain: red stripe");
        p.near(30, 45, GREEN, 8, "contain: green stripe");
        p.near(46, 45, BLUE, 8, "contain: blue stripe");
        // cover in 40x40 at (60,25): scaled x2 to 80x40 and cropped to the green middle.
        p.near(63, 27, GREEN, 8, "cover: fills the top-left of the box");
        p.near(97, 63, GREEN, 8, "cover: fills the bottom-right of the box");
        p.near(57, 45, GREY, 4, "cover: cropped at the box's left edge");
        p.near(103, 45, GREY, 4, "cover: cropped at the box's right edge");
        // fill in 40x40 at (110,25): stretched to 40x40.
        p.near(114, 27, RED, 8, "fill: red stripe, full height");
        p.near(130, 63, GREEN, 8, "fill: green stripe, full height");
        p.near(146, 45, BLUE, 8, "fill: blue stripe");
        p.near(130, 22, GREY, 4, "fill: nothing above the box");
    }

    pub(super) fn image_background(p: &mut Probes) {
        // The 40x20 stripes stretched over the 160x90 canvas: red x 0..40, green 40..120.
        p.near(10, 10, RED, 8, "background image, red stripe");
        p.near(60, 80, GREEN, 8, "background image, green stripe");
        p.near(150, 45, BLUE, 8, "background image, blue stripe");
        // veil.png: white at alpha 127, over green.
        p.within(
            80,
            45,
            [MID, 240..=255, MID],
            "half-transparent white image over green",
        );
    }

    /// Half way through a fade from red with a white bar to blue with a yellow dot.
    pub(super) fn transition_fade(p: &mut Probes) {
        p.within(50, 48, [MID, 0..=20, MID], "red and blue mixed");
        p.within(
            20,
            27,
            [MID, MID, 230..=255],
            "the white bar fading into blue",
        );
        p.within(
            75,
            27,
            [230..=255, MID, 0..=20],
            "the yellow dot fading in over red",
        );
    }

    /// Half way through a slide: the old scene pushed half out to the left, the new one half
    /// in from the right.
    pub(super) fn transition_slide(p: &mut Probes) {
        p.near(10, 48, RED, 8, "the old scene on the left half");
        p.near(86, 48, BLUE, 8, "the new scene on the right half");
        // The old bar (x 8..32) is now at -40..-16: gone; the old right part shows at 0..48.
        p.near(4, 27, RED, 8, "the old bar has left the frame");
        // The new dot (x 60..90) is now at 108..138: not in yet; the new left part is at 48..96.
        p.near(60, 27, BLUE, 8, "the new scene's left part, before its dot");
    }

    pub(super) fn frame_token(p: &mut Probes) {
        let (n, _) = lit(p.img, (8, 8, 152, 40), white);
        if n < 80 {
            p.fail(format!("only {n} glyph pixels for \"frame 2\""));
        }
        p.near(150, 44, [0, 0, 64], 4, "background");
    }
}

/// What the bundled templates must show (`template_*` goldens).
mod template_probes {
    use super::*;

    const ACCENT: Rgb = [230, 57, 70];

    pub(super) fn lower_third(p: &mut Probes) {
        p.near(11, 30, ACCENT, 40, "the accent bar, slid in");
        at_least(p, (15, 15, 115, 45), white, 60, "name and title glyphs");
        p.near(250, 30, BLACK, 8, "nothing right of the box");
    }

    pub(super) fn clock(p: &mut Probes) {
        // 11:50:45 at frame 0, one second later at frame 30.
        at_least(p, (10, 15, 230, 65), white, 600, "the digits");
        p.near(120, 5, BLACK, 10, "above the digits");
    }

    pub(super) fn scoreboard(p: &mut Probes) {
        p.near(15, 20, [29, 78, 216], 40, "the home colour");
        p.near(300, 20, [220, 38, 38], 40, "the away colour");
        at_least(p, (135, 3, 185, 30), white, 40, "the game clock 12:34");
    }

    pub(super) fn ticker(p: &mut Probes) {
        p.near(5, 16, ACCENT, 40, "the label");
        at_least(p, (80, 4, 320, 28), white, 150, "scrolling text");
    }

    pub(super) fn slate(p: &mut Probes) {
        p.near(10, 10, [11, 19, 32], 25, "the background");
        at_least(p, (100, 62, 220, 84), white, 80, "the message");
        at_least(p, (130, 82, 190, 94), reddish, 20, "the accent rule");
    }
}

/// A golden scene: its file stem, how many frames to render, which one is compared, and
/// what it must show.
struct Case {
    name: &'static str,
    frames: u32,
    compared: u32,
    probes: fn(&mut Probes),
    /// Extra `render` arguments.
    extra: Vec<String>,
}

/// Renders a case, checks its probes, then compares it with (or, with `UPDATE_GOLDEN=1`,
/// writes) its golden.
fn check(case: &Case) -> Img {
    let dir = golden_dir();
    let scene_file = dir.join(format!("{}.json", case.name));
    let scene: Value =
        serde_json::from_str(&std::fs::read_to_string(&scene_file).expect("read the golden scene"))
            .expect("the golden scene is JSON");
    let (w, h) = (
        scene["canvas"]["width"].as_u64().expect("canvas width") as u32,
        scene["canvas"]["height"].as_u64().expect("canvas height") as u32,
    );
    let tmp = TempDir::new(&format!("golden-{}", case.name));
    let out_dir = tmp.join("frames");
    let out = render_with(
        &scene_file,
        case.frames,
        &out_dir,
        Some(&dir.join("assets")),
        &case.extra,
    );
    assert!(
        out.status.success(),
        "render of {} failed: {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered_file = out_dir.join(format!("frame-{:05}.png", case.compared));
    let rendered = read_png(&rendered_file, w, h).unwrap_or_else(|e| panic!("{e}"));
    let translucent = rendered
        .rgba
        .chunks_exact(4)
        .filter(|p| p[3] != 255)
        .count();
    assert_eq!(
        translucent, 0,
        "{}: rendered frames are opaque, {translucent} pixels are not",
        case.name
    );

    let mut probes = Probes {
        img: &rendered,
        wrong: Vec::new(),
    };
    (case.probes)(&mut probes);
    assert!(
        probes.wrong.is_empty(),
        "{}: the rendered frame ({}) does not show the scene:\n  {}",
        case.name,
        rendered_file.display(),
        probes.wrong.join("\n  ")
    );

    let golden_file = dir.join(format!("{}.png", case.name));
    if updating() {
        std::fs::copy(&rendered_file, &golden_file).expect("write the golden");
        eprintln!("UPDATE_GOLDEN: wrote {}", golden_file.display());
        return rendered;
    }
    let golden = read_png(&golden_file, w, h).unwrap_or_else(|e| {
        panic!(
            "{}: no usable golden ({e}); run with UPDATE_GOLDEN=1 to create it",
            case.name
        )
    });
    match compare(&rendered, &golden) {
        Ok(stats) => eprintln!("{}: matches its golden ({stats})", case.name),
        Err(stats) => {
            let kept = std::env::temp_dir().join(format!("golden-{}-rendered.png", case.name));
            let _ = std::fs::copy(&rendered_file, &kept);
            panic!(
                "{}: differs from {} ({stats}); the rendered frame is kept at {}",
                case.name,
                golden_file.display(),
                kept.display()
            );
        }
    }
    rendered
}

macro_rules! golden {
    ($name:ident) => {
        golden!($name, 1, 0);
    };
    ($name:ident, $frames:expr, $compared:expr) => {
        #[tokio::test]
        async fn $name() {
            check(&Case {
                name: stringify!($name),
                frames: $frames,
                compared: $compared,
                probes: probes::$name,
                extra: Vec::new(),
            });
        }
    };
}

golden!(shapes);
golden!(gradients);
golden!(rotation);
golden!(opacity);
golden!(zorder);
golden!(text_align);
golden!(text_wrap);
golden!(image_fit);
golden!(image_background);

/// A scene of one bundled template (`tests/golden/template_<name>.json`), rendered for 31
/// frames at 30 fps from a fixed wall clock (2026-01-01 11:50:45 UTC); frame 30 is compared
/// (animations in are over by then).
fn template_golden(name: &'static str, probes: fn(&mut Probes)) {
    let dir = crate::guests::templates_dir();
    check(&Case {
        name,
        frames: 31,
        compared: 30,
        probes,
        extra: vec![
            "--templates".into(),
            dir.display().to_string(),
            "--clock".into(),
            "1767268245000".into(),
        ],
    });
}

#[tokio::test]
async fn template_lower_third() {
    template_golden("template_lower_third", template_probes::lower_third);
}

#[tokio::test]
async fn template_clock() {
    template_golden("template_clock", template_probes::clock);
}

#[tokio::test]
async fn template_scoreboard() {
    template_golden("template_scoreboard", template_probes::scoreboard);
}

#[tokio::test]
async fn template_ticker() {
    template_golden("template_ticker", template_probes::ticker);
}

#[tokio::test]
async fn template_slate() {
    template_golden("template_slate", template_probes::slate);
}

/// A fade or slide of 1 s at 10 fps from `transition_from.json` to `transition_to.json`,
/// started at frame 1: frame 5 is its mid-point.
fn transition(name: &'static str, kind: &str, probes: fn(&mut Probes)) {
    let to = golden_dir().join("transition_to.json");
    check(&Case {
        name,
        frames: 6,
        compared: 5,
        probes,
        extra: [
            "--to",
            &to.display().to_string(),
            "--transition",
            kind,
            "--transition-ms",
            "1000",
            "--at",
            "1",
            "--fps",
            "10",
        ]
        .map(String::from)
        .to_vec(),
    });
}

#[tokio::test]
async fn transition_fade() {
    transition("transition_fade", "fade", probes::transition_fade);
}

#[tokio::test]
async fn transition_slide() {
    transition("transition_slide", "slide", probes::transition_slide);
}

/// `{{frame}}` expands per rendered frame: the third frame says "frame 2" (its golden), and
/// differs from the first.
#[tokio::test]
async fn frame_token_advances_per_frame() {
    let third = check(&Case {
        name: "frame_token",
        frames: 3,
        compared: 2,
        probes: probes::frame_token,
        extra: Vec::new(),
    });
    let tmp = TempDir::new("golden-frame-token");
    let out = render(&golden_dir().join("frame_token.json"), 1, tmp.path(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = read_png(&tmp.join("frame-00000.png"), 160, 48).unwrap_or_else(|e| panic!("{e}"));
    let differing = first
        .rgba
        .chunks_exact(4)
        .zip(third.rgba.chunks_exact(4))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 40))
        .count();
    assert!(
        differing > 20,
        "frame 0 and frame 2 of \"frame {{{{frame}}}}\" look the same ({differing} pixels differ)"
    );
}

/// A scene naming an asset that `--assets` does not provide is refused, naming the asset,
/// and nothing is written.
#[tokio::test]
async fn a_missing_asset_is_refused_by_the_renderer() {
    let tmp = TempDir::new("golden-missing-asset");
    let out_dir = tmp.join("frames");
    let out = render(&golden_dir().join("image_fit.json"), 1, &out_dir, None);
    assert!(
        !out.status.success(),
        "rendered a scene whose image asset is missing"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stripes"),
        "the error does not name the asset: {err}"
    );
    assert!(
        !out_dir.join("frame-00000.png").exists(),
        "a frame was written for a refused scene"
    );
}
