#!/usr/bin/env python3
"""Soak: the release server live for an hour at 1080p30 (libx264 veryfast) with the reference
scene, its three templates animating (clock, ticker, a lower third whose text an operator
changes every 10 s) and one live RTSP camera on a video layer, pushed to its embedded RTMP
server with a player attached. Once a minute it samples the server's RSS, open file
descriptors, threads, CPU time and dropped frames into a CSV, and plots them (PNG).

DESIGN.md's targets: RSS ≤ 200 MB and flat within 5 MB after warm-up, FDs and threads flat,
0 dropped frames.

    cargo build --release --bin stream-manager
    (cd templates && cargo build --release --target wasm32-wasip2)
    /usr/bin/python3 benches/soak.py --minutes 60 --out target/soak

The camera (tests/peers/rtsp_camera.py, 640x360, encoding live in GStreamer) and the player
(ffmpeg copying the program to nowhere) stand for other machines: they run niced.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

from live_server import BINARY, ROOT, call, free_port, live_server
from live_inputs import NICE, TEMPLATES, proc_cpu_rss

CAMERA = os.path.join(ROOT, "tests/peers/rtsp_camera.py")
WARM_UP_MIN = 5
COLUMNS = ["minute", "rss_mib", "fds", "threads", "dropped", "frames", "cpu_cores"]


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads"))


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_camera(port):
    proc = subprocess.Popen(
        ["nice", "-n", str(NICE), "/usr/bin/python3", CAMERA, "--port", str(port),
         "--path", "/cam", "--width", "640", "--height", "360", "--fps", "30"],
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "ready" not in line:
        sys.exit(f"the camera did not start: {line!r}")
    return proc


def build_scene(base, assets_dir, camera_url):
    with open(os.path.join(ROOT, "benches/reference/scene.json")) as f:
        scene = json.load(f)
    ids = {}
    for layer in scene["layers"]:
        image = layer.get("image")
        if not image:
            continue
        name = image["asset"]
        if name not in ids:
            ext = "jpg" if name == "background" else "png"
            with open(os.path.join(assets_dir, f"{name}.{ext}"), "rb") as f:
                mime = "image/jpeg" if ext == "jpg" else "image/png"
                ids[name] = call(base, "POST", f"/api/assets?name={name}", raw=f.read(),
                                 ctype=mime)["id"]
        image["asset"] = ids[name]
    for i, (tid, (x, y, w, h)) in enumerate(TEMPLATES):
        scene["layers"].append({"id": f"t-{tid}", "kind": "template", "template": {"id": tid},
                                "position": {"x": x, "y": y, "width": w, "height": h,
                                             "zIndex": 20 + i}})
    call(base, "POST", "/api/inputs", {"id": "cam", "kind": "rtsp", "url": camera_url})
    scene["layers"].append({"id": "cam", "kind": "video", "video": {"input": "cam", "fit": "fill"},
                            "position": {"x": 40, "y": 200, "width": 640, "height": 360,
                                         "zIndex": 10}})
    call(base, "PATCH", "/api/scene", {"layers": scene["layers"]})


def sample(base, pid, t0, cpu0):
    state = call(base, "GET", "/api/stream/state")
    cpu, rss = proc_cpu_rss(pid)
    elapsed = time.time() - t0
    return [round(elapsed / 60, 2), round(rss, 1), fds(pid), threads(pid),
            state["droppedFrames"], state["frameCount"], round((cpu - cpu0) / max(elapsed, 1), 3)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--out", default=os.path.join(ROOT, "target/soak"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    assets_dir = os.path.join(ROOT, "target/reference-assets")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches/reference/make_assets.py"),
                    assets_dir], check=True)
    cam_port = free_port()
    camera = start_camera(cam_port)
    templates = os.path.join(ROOT, "templates/target/wasm32-wasip2/release")
    rows = []
    try:
        with live_server(args.binary, 1920, 1080, 30, ["--templates-dir", templates], rtmp=True,
                         log_path=os.path.join(args.out, "server.log")) as (base, pid, rtmp):
            build_scene(base, assets_dir, f"rtsp://127.0.0.1:{cam_port}/cam")
            call(base, "POST", "/api/stream/start")
            player = subprocess.Popen(
                ["nice", "-n", str(NICE), "ffmpeg", "-nostdin", "-loglevel", "error",
                 "-i", f"rtmp://127.0.0.1:{rtmp}/live/main", "-c", "copy", "-f", "null", "-"])
            time.sleep(5)  # past the first key frame and the player's start
            t0, cpu0 = time.time(), proc_cpu_rss(pid)[0]
            rows.append(sample(base, pid, t0, cpu0))
            print_row(rows[-1])
            next_minute, n = t0 + 60, 0
            while time.time() - t0 < args.minutes * 60:
                time.sleep(10)
                n += 1
                call(base, "PATCH", "/api/scene/layers/t-lower-third",
                     {"template": {"id": "lower-third", "params": {
                         "name": f"Soak update {n}", "title": time.strftime("%H:%M:%S"),
                         "visible": True}}})
                if time.time() >= next_minute:
                    next_minute += 60
                    rows.append(sample(base, pid, t0, cpu0))
                    print_row(rows[-1])
            player.terminate()
            player.wait(timeout=10)
            inputs = call(base, "GET", "/api/inputs")
    finally:
        camera.terminate()
        camera.wait(timeout=10)
    path = os.path.join(args.out, "soak.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    summary(args, rows, inputs)
    plot(args, rows)
    print(f"  CSV: {path}")


def print_row(row):
    print("  " + ", ".join(f"{k} {v}" for k, v in zip(COLUMNS, row)), flush=True)


def summary(args, rows, inputs):
    warm = [r for r in rows if r[0] >= WARM_UP_MIN] or rows
    rss = [r[1] for r in warm]
    print(f"\n{args.minutes:g} min at 1080p30: reference scene + 3 templates + 1 camera")
    print(f"  RSS after {WARM_UP_MIN} min: {rss[0]:.1f} MiB, at the end {rss[-1]:.1f} MiB, "
          f"range after warm-up {min(rss):.1f}–{max(rss):.1f} MiB (spread {max(rss) - min(rss):.1f})")
    for name, col in (("FDs", 2), ("threads", 3)):
        vals = [r[col] for r in warm]
        print(f"  {name}: {min(vals)}–{max(vals)} after warm-up (start {rows[0][col]})")
    print(f"  dropped frames: {rows[-1][4]} of {rows[-1][5]}")
    print(f"  server CPU: {rows[-1][6]:.2f} cores")
    for i in inputs:
        print(f"  input {i['id']}: {i['state']}, decoded {i['stats']['framesDecoded']}, "
              f"reconnects {i['stats']['reconnects']}")


def plot(args, rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no matplotlib: no plot; apt install python3-matplotlib)")
        return
    t = [r[0] for r in rows]
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    for ax, col, label in zip(axes, (1, 2, 3, 4),
                              ("RSS, MiB", "open FDs", "threads", "dropped frames")):
        ax.plot(t, [r[col] for r in rows], marker=".")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].axvline(WARM_UP_MIN, color="grey", ls="--", lw=0.8)
    axes[0].set_title(f"Soak: {args.minutes:g} min at 1080p30, reference scene, 3 templates, "
                      "1 RTSP camera, 1 player")
    axes[-1].set_xlabel("minutes")
    fig.tight_layout()
    path = os.path.join(args.out, "soak.png")
    fig.savefig(path, dpi=110)
    print(f"  plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
