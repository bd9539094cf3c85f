#!/usr/bin/env python3
"""Renders the reference scene (benches/reference/) three ways and compares CPU per frame.

  ours       stream-manager's compositor: `cargo bench --bench compose -- --reference-summary N`
             prints `RESULT full_ms=<f> unchanged_ms=<f>`, which is parsed (not timed here)
  ffmpeg     one filter graph: overlay x6 (+ rotate, opacity) and drawtext x4, in RGBA
  gstreamer  `compositor` with positioned sink pads, `rotate`, textoverlay x4, in RGBA

Both external pipelines are built from benches/reference/scene.json, so all three draw the
same layers at the same places. Each runs N frames of 1920x1080 RGBA as fast as it can into
a null sink; its CPU time (user + sys of the child and everything it waited for) comes from
getrusage(RUSAGE_CHILDREN) deltas, divided by N. Alongside each pipeline a decode-only
baseline runs the same inputs but outputs only the background, so a reader sees how much of
the total is process start-up, plugin loading and decoding the assets once.

Usage: python3 benches/compare_reference.py [--frames 300] [--runs 3] [--no-ours]

Writes one composed frame of each external pipeline to target/reference-out/{ffmpeg,gstreamer}.png
to check by eye that they show the same picture. Standard library only. Needs ffmpeg,
gst-launch-1.0 with plugins base/good/bad, and fonts-dejavu-core (for pango); without
GStreamer or one of its elements, the GStreamer rows are skipped with a message.
"""
import argparse
import json
import os
import re
import resource
import shlex
import shutil
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF_DIR = os.path.join(ROOT, "benches", "reference")
sys.path.insert(0, REF_DIR)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
from make_assets import make_assets  # noqa: E402  (benches/reference/make_assets.py)

SCENE_FILE = os.path.join(REF_DIR, "scene.json")
FONT_FILE = os.path.join(ROOT, "host", "compose", "fonts", "DejaVuSans.ttf")
FONT_FAMILY = "DejaVu Sans"  # what pango finds via fontconfig: the same file (fonts-dejavu-core)
FPS = 30


# ------------------------------------------------------------------ the scene

class Scene:
    """scene.json reduced to what the external pipelines draw.

    background  file of the bottom layer (a full-canvas image at 0,0)
    overlays    bottom to top: dicts with file, x, y, w, h, rotation (degrees clockwise
                about the centre), opacity. Image layers use their asset file; shape
                layers use `<id>.png`, the shape pre-rendered by make_assets.py.
    texts       top-most, bottom to top: (content, size px per em, x, y) with (x, y) the
                top-left of our text box: ours puts the first baseline at y + size, pen at x.
    """

    def __init__(self, path, assets):
        with open(path) as f:
            scene = json.load(f)
        self.width = scene["canvas"]["width"]
        self.height = scene["canvas"]["height"]
        layers = sorted(scene["layers"], key=lambda l: l["position"].get("zIndex", 0))
        self.background, self.overlays, self.texts = None, [], []
        for layer in layers:
            p = layer["position"]
            if layer["kind"] == "text":
                t = layer["text"]
                self.texts.append((t["content"], t.get("size", 48), p["x"], p["y"]))
                continue
            if self.texts:
                sys.exit("compare_reference: text layers must be the top-most ones")
            stem = layer["image"]["asset"] if layer["kind"] == "image" else layer["id"]
            file = stem + ".png"
            if not os.path.exists(os.path.join(assets, file)):
                file = stem + ".jpg"
            entry = {"file": file, "x": p["x"], "y": p["y"], "w": p["width"], "h": p["height"],
                     "rotation": p.get("rotation", 0), "opacity": p.get("opacity", 1)}
            if self.background is None:
                if (entry["x"], entry["y"], entry["w"], entry["h"]) != (0, 0, self.width,
                                                                        self.height):
                    sys.exit("compare_reference: the bottom layer must fill the canvas")
                self.background = file
                continue
            # ffmpeg and GStreamer overlay each image at its own size (no scaling).
            size = png_size(os.path.join(assets, file))
            if size != (entry["w"], entry["h"]):
                sys.exit(f"compare_reference: {file} is {size}, layer {layer['id']} wants "
                         f"{entry['w']}x{entry['h']}")
            self.overlays.append(entry)


def png_size(path):
    """(width, height) from a PNG's IHDR."""
    with open(path, "rb") as f:
        head = f.read(24)
    return struct.unpack(">II", head[16:24])


def font_ascent_em(path):
    """hhea ascender / unitsPerEm of a TrueType font (0.928 for DejaVu Sans). Pango puts a
    line's baseline this far below the top of its box; used to put gst's baselines where
    ours are."""
    with open(path, "rb") as f:
        data = f.read()
    num_tables = struct.unpack(">H", data[4:6])[0]
    tables = {}
    for i in range(num_tables):
        tag, _, offset, _ = struct.unpack(">4sIII", data[12 + 16 * i:28 + 16 * i])
        tables[tag] = offset
    units_per_em = struct.unpack(">H", data[tables[b"head"] + 18:tables[b"head"] + 20])[0]
    ascender = struct.unpack(">h", data[tables[b"hhea"] + 4:tables[b"hhea"] + 6])[0]
    return ascender / units_per_em


# ------------------------------------------------------------------ measuring

def run_cpu(cmd):
    """Runs cmd to completion; returns (cpu_seconds, wall_seconds). CPU is user + sys of the
    child and its reaped descendants, from RUSAGE_CHILDREN before and after."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}\n"
                           f"command: {shlex.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def best_of(runs, cmd):
    """(cpu, wall) of the run with the lowest CPU time among `runs` runs."""
    return min(run_cpu(cmd) for _ in range(runs))


# ------------------------------------------------------------------ ffmpeg

def ffmpeg_cmd(scene, assets, text_dir, frames, output, baseline=False):
    """The ffmpeg command line.

    Every input is a still image decoded ONCE and converted once to RGBA, then repeated by
    the `loop` filter (ours also decodes assets once). Everything after the loop runs per
    frame: layer opacity, the rotation, the overlays and the drawtexts. Decoders, filter
    graph and output are single-threaded. Compositing is in packed RGBA (overlay
    format=rgb) and the output is rgba, as ours composes RGBA. output=None: N frames into
    the null muxer; else one frame to that PNG."""
    files = [scene.background] + [o["file"] for o in scene.overlays]
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
           "-filter_threads", "1", "-filter_complex_threads", "1"]
    for f in files:
        cmd += ["-threads", "1", "-framerate", str(FPS), "-i", os.path.join(assets, f)]
    loop = "format=rgba,loop=loop=-1:size=1:start=0"
    if baseline:
        # Same inputs, each decoded and converted once; only the background is output.
        graph = [f"[0:v]{loop}[out]"]
        graph += [f"[{i}:v]format=rgba,nullsink" for i in range(1, len(files))]
    else:
        graph = [f"[0:v]{loop}[c0]"]
        for i, o in enumerate(scene.overlays, start=1):
            chain = loop
            if o["opacity"] < 1:
                chain += f",colorchannelmixer=aa={o['opacity']}"
            cx, cy = o["x"] + o["w"] / 2, o["y"] + o["h"] / 2
            pos = f"x={o['x']}:y={o['y']}"
            if o["rotation"]:
                # Positive angle = clockwise in ffmpeg, as in ours. The frame grows to the
                # turned box (transparent corners); overlay keeps the centre in place.
                a = f"{o['rotation']}*PI/180"
                chain += f",rotate=a={a}:ow=rotw({a}):oh=roth({a}):c=none"
                pos = f"x={cx}-w/2:y={cy}-h/2"
            graph.append(f"[{i}:v]{chain}[l{i}]")
            graph.append(f"[c{i - 1}][l{i}]overlay={pos}:format=rgb[c{i}]")
        # drawtext: fontsize is the pixel em size, like ours. Its y is the top of the text
        # line and the baseline lies `ascent` below it, so y + size - ascent puts the
        # baseline at y + size as ours does. Texts come from files: no ':' escaping.
        texts = [f"drawtext=fontfile={FONT_FILE}:textfile={text_dir}/text{n}.txt"
                 f":fontsize={size}:fontcolor=white:x={x}:y={y + size}-ascent"
                 for n, (_, size, x, y) in enumerate(scene.texts)]
        graph.append(f"[c{len(scene.overlays)}]" + ",".join(texts + ["format=rgba"]) + "[out]")
    cmd += ["-filter_complex", ";".join(graph), "-map", "[out]", "-threads", "1",
            "-frames:v", str(frames)]
    cmd += ["-update", "1", output] if output else ["-f", "null", "-"]
    return cmd


def write_texts(scene, text_dir):
    """The texts as files for drawtext's textfile=."""
    os.makedirs(text_dir, exist_ok=True)
    for n, (content, *_rest) in enumerate(scene.texts):
        with open(os.path.join(text_dir, f"text{n}.txt"), "w") as f:
            f.write(content)  # no trailing newline: drawtext would draw it as a line break


# ------------------------------------------------------------------ GStreamer

GST_ELEMENTS = ["compositor", "imagefreeze", "pngdec", "jpegdec", "textoverlay", "rotate",
                "videoconvert", "fakesink", "pngenc", "filesink", "filesrc"]


def gst_missing():
    """Names of the needed GStreamer tools/elements that are not installed."""
    if not shutil.which("gst-launch-1.0") or not shutil.which("gst-inspect-1.0"):
        return ["gst-launch-1.0"]
    return [e for e in GST_ELEMENTS
            if subprocess.run(["gst-inspect-1.0", e], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0]


def gst_source(assets, name, frames, tail=""):
    """A still image decoded once and converted once to RGBA, then pushed `frames` times at
    30 fps by imagefreeze (each time the same buffer, no copy)."""
    dec = "jpegdec" if name.endswith(".jpg") else "pngdec"
    return (f'filesrc location="{os.path.join(assets, name)}" ! {dec} ! videoconvert ! '
            f"video/x-raw,format=RGBA ! imagefreeze num-buffers={frames} ! "
            f"video/x-raw,framerate={FPS}/1{tail}")


def gst_cmd(scene, assets, frames, output, baseline=False):
    """The gst-launch-1.0 command line: compositor (one blending thread) fed by imagefreeze
    sources on positioned pads, a rotated layer through `rotate`, then one textoverlay per
    text on the composed RGBA frame, into fakesink (as fast as possible) or one PNG."""
    caps = f"video/x-raw,format=RGBA,width={scene.width},height={scene.height},framerate={FPS}/1"
    sink = f'pngenc ! filesink location="{output}"' if output else "fakesink sync=false"
    if baseline:
        # Same sources; the background goes straight to the sink, the rest into fakesinks.
        parts = [gst_source(assets, scene.background, frames) + f" ! {sink}"]
        for o in scene.overlays:
            parts.append(gst_source(assets, gst_file(o), frames) + " ! fakesink sync=false")
        return gst_launch(parts)

    pads = [(gst_source(assets, scene.background, frames), 0, 0, 1.0)]
    for o in scene.overlays:
        src, x, y = gst_source(assets, o["file"], frames), o["x"], o["y"]
        if o["rotation"]:
            # `rotate` keeps the frame size, so it turns <stem>_pad.png: the image centred
            # on a transparent margin big enough for the turned box (make_assets.py), placed
            # so the centres match. gst turns counter-clockwise for a positive angle, hence
            # the minus. It samples the nearest pixel (no filtering).
            pad_file = gst_file(o)
            pw, ph = png_size(os.path.join(assets, pad_file))
            angle = -o["rotation"] * 3.141592653589793 / 180
            src = gst_source(assets, pad_file, frames, f" ! rotate angle={angle:.6f}")
            x, y = o["x"] + (o["w"] - pw) // 2, o["y"] + (o["h"] - ph) // 2
        pads.append((src, x, y, o["opacity"]))

    ascent = font_ascent_em(FONT_FILE)
    mix = ["compositor name=mix background=black max-threads=1"]
    for n, (_, x, y, alpha) in enumerate(pads):
        mix.append(f"sink_{n}::xpos={x} sink_{n}::ypos={y} sink_{n}::alpha={alpha}")
    chain = " ".join(mix) + f" ! {caps}"
    for content, size, x, y in scene.texts:
        # font-desc takes an absolute pixel size ("72px"): the em is `size` pixels as in
        # ours and ffmpeg. Top-left aligned without padding; pango's baseline lies
        # ascent * size below the top of the box, so shift it to put the baseline at
        # y + size (to the whole pixel). auto-resize would scale the font with the frame
        # width; no shadow or outline: plain white text like the others.
        deltay = round(y + size - ascent * size)
        chain += (f' ! textoverlay text="{content}" font-desc="{FONT_FAMILY} {size}px"'
                  f" auto-resize=false halignment=left valignment=top xpad=0 ypad=0"
                  f" deltax={x} deltay={deltay} draw-shadow=false draw-outline=false"
                  f" color=0xffffffff")
    chain += f" ! {sink}"
    return gst_launch([chain] + [f"{src} ! mix.sink_{n}" for n, (src, *_r) in enumerate(pads)])


def gst_file(overlay):
    """The file GStreamer reads for an overlay: the padded one if it is rotated."""
    if not overlay["rotation"]:
        return overlay["file"]
    stem, ext = os.path.splitext(overlay["file"])
    return f"{stem}_pad{ext}"


def gst_launch(parts):
    """gst-launch-1.0 argv for a pipeline description. gst-launch joins its arguments again,
    escaping the spaces in each, so the description is split shell-style: one argument per
    element or property, a quoted text staying one argument."""
    return ["gst-launch-1.0", "-q"] + shlex.split(" ".join(parts))


# ------------------------------------------------------------------ ours

def run_ours(assets, frames):
    """Runs our criterion bench; returns (full_ms, unchanged_ms), or None after saying why."""
    env = dict(os.environ, REFERENCE_ASSETS=assets)
    cmd = ["cargo", "bench", "--bench", "compose", "--", "--reference-summary", str(frames)]
    print(f"ours: {shlex.join(cmd)}  (REFERENCE_ASSETS={assets}; may build first)", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    m = re.search(r"^RESULT full_ms=(\S+) unchanged_ms=(\S+)\s*$", proc.stdout, re.M)
    if m:
        try:
            return float(m.group(1)), float(m.group(2))
        except ValueError:
            pass
    # Say why: cargo's first error line (e.g. "no bench target named `compose`"), else the
    # last line printed.
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error")]
    why = errors[0] if errors else (lines[-1] if lines else "no RESULT line printed")
    print(f"ours: not available (exit {proc.returncode}: {why.strip()})")
    return None


# ------------------------------------------------------------------ main

def print_table(rows, ours_full, scene, frames, runs):
    """The result table. 'net' = a pipeline minus its decode-only baseline; the ratios are
    their CPU per frame over ours (full redraw)."""
    def ratio(v):
        return f"{v / ours_full:.1f}x" if ours_full else "n/a"

    print()
    print(f"Reference scene, {scene.width}x{scene.height} RGBA, {frames} frames, "
          f"CPU = user+sys, best of {runs}")
    print(f"{'pipeline':31} {'CPU ms/frame':>12} {'wall ms/frame':>13} {'net ms/frame':>12}"
          f" {'vs ours full':>12} {'net vs ours':>11}")
    for name, cpu_ms, wall_ms, base_ms in rows:
        wall_s = f"{wall_ms:.2f}" if wall_ms is not None else ""
        net_s = vs = net_vs = ""
        if base_ms is not None:  # an external pipeline
            net_s = f"{cpu_ms - base_ms:.2f}"
            vs, net_vs = ratio(cpu_ms), ratio(cpu_ms - base_ms)
        print(f"{name:31} {cpu_ms:12.3f} {wall_s:>13} {net_s:>12} {vs:>12} {net_vs:>11}")
    print("vs ours full = their CPU per frame / our full-redraw CPU per frame (>=10x is the")
    print("target). A decode-only baseline runs the same inputs but outputs only the")
    print("background: process start, plugin loading and decoding each asset once, spread")
    print("over the frames; net = pipeline minus its baseline.")
    if not ours_full:
        print("ours: not available, so no ratios.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300, help="frames per run (default 300)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each external pipeline; the lowest CPU counts (default 3)")
    ap.add_argument("--assets", default=os.path.join(ROOT, "target", "reference-assets"))
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "reference-out"))
    ap.add_argument("--no-ours", action="store_true", help="skip the cargo bench")
    args = ap.parse_args()
    n = args.frames
    assets = make_assets(os.path.abspath(args.assets))
    scene = Scene(SCENE_FILE, assets)
    out = os.path.abspath(args.out)
    write_texts(scene, out)

    # (name, CPU ms/frame, wall ms/frame or None, its baseline's CPU ms/frame or None)
    rows = []

    ours = None if args.no_ours else run_ours(assets, n)
    if ours:
        rows.append(("ours, full redraw", ours[0], None, None))
        rows.append(("ours, nothing changed", ours[1], None, None))

    print(f"ffmpeg: {n} frames x {args.runs} runs ...", flush=True)
    run_cpu(ffmpeg_cmd(scene, assets, out, 1, os.path.join(out, "ffmpeg.png")))  # + warm-up
    cpu, wall = best_of(args.runs, ffmpeg_cmd(scene, assets, out, n, None))
    base, base_wall = best_of(args.runs, ffmpeg_cmd(scene, assets, out, n, None, baseline=True))
    rows.append(("ffmpeg filter graph", cpu * 1e3 / n, wall * 1e3 / n, base * 1e3 / n))
    rows.append(("ffmpeg decode-only baseline", base * 1e3 / n, base_wall * 1e3 / n, None))

    missing = gst_missing()
    if missing:
        print("gstreamer: skipped, missing " + ", ".join(missing) + " (apt-get install "
              "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
              "gstreamer1.0-plugins-bad gstreamer1.0-x fonts-dejavu-core)")
    else:
        print(f"gstreamer: {n} frames x {args.runs} runs ...", flush=True)
        # The snapshot run also warms the plugin registry cache (a scan would count as CPU).
        run_cpu(gst_cmd(scene, assets, 1, os.path.join(out, "gstreamer.png")))
        cpu, wall = best_of(args.runs, gst_cmd(scene, assets, n, None))
        base, base_wall = best_of(args.runs, gst_cmd(scene, assets, n, None, baseline=True))
        rows.append(("gstreamer compositor", cpu * 1e3 / n, wall * 1e3 / n, base * 1e3 / n))
        rows.append(("gstreamer decode-only baseline", base * 1e3 / n, base_wall * 1e3 / n,
                     None))

    print_table(rows, ours[0] if ours else None, scene, n, args.runs)
    print(f"Frames to compare by eye: {out}/ffmpeg.png, {out}/gstreamer.png")


if __name__ == "__main__":
    main()
