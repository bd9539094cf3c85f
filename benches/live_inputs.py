#!/usr/bin/env python3
"""Live inputs on air for minutes: the reference scene with its three templates plus two
1080p30 RTSP cameras on video layers, streamed at 1080p30 (libx264 veryfast).

A camera encodes in its own hardware; here the two would take a third of the 2 cores from
the server. So each camera (tests/peers/rtsp_camera.py --replay) serves a clip made once
(H.264 at up to 6 Mbit/s: a grey gradient, a moving bar and each frame's index stamped into
it; with `--noise`, noise below the stamp, a worst case for the decoders and the program's
encoder) in real time, and says when it started: frame i left it at that time + i/30 s. A viewer (ffmpeg reading the
server's RTMP output) reads the stamps back out of the program, so each decoded program
frame gives the camera→viewer latency of both cameras. Before the server starts, the same viewer reads camera 1
directly (RTSP → decode) for a baseline: the difference is what the server adds (its
decode, pacing, compose, encode and the RTMP hop). Every second it also samples the
server's dropped frames, CPU time, RSS and `stream_input_latency_ms` (a picture's arrival
→ handed to the render thread).

Prints a summary and writes a CSV and a PNG plot (matplotlib, when installed):

    cargo build --release --bin stream-manager
    (cd templates && cargo build --release --target wasm32-wasip2)
    python3 benches/live_inputs.py --minutes 10 --out target/live-inputs

The clip is made on the first run (a few minutes; kept in the output directory).
"""
import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

from live_server import BINARY, ROOT, call, free_port, live_server

CAMERA = os.path.join(ROOT, "tests/peers/rtsp_camera.py")
TEMPLATES = [
    ("lower-third", [320, 700, 1280, 200]),
    ("clock", [1400, 40, 480, 160]),
    ("ticker", [0, 1016, 1920, 64]),
]
# Camera layers: (x, y, width, height); the stamp row is the top of each picture.
LAYERS = [(40, 200, 768, 432), (1112, 200, 768, 432)]
BLOCK, BITS = 64, 24
STRIP = 40  # program rows read by the viewer, from y = 200
# The cameras and the viewer stand for other machines: on these 2 cores they run niced, so
# that the server gets the CPU it would have on its own; what they used is reported.
NICE = 10


def read_stamp(row, x0, scale):
    """The stamp in one row of luma at block centres `x0 + (i * BLOCK + BLOCK/2) * scale`;
    None when the guard blocks are not white then black."""
    def bit(i):
        return row[int(x0 + (i * BLOCK + BLOCK / 2) * scale)] > 128
    if not bit(0) or bit(BITS + 1):
        return None
    value = 0
    for i in range(1, BITS + 1):
        value = (value << 1) | int(bit(i))
    return value


FPS = 30


class Viewer:
    """ffmpeg decoding `url`, cropping rows [y, y+rows) of a `width`-wide picture to grey;
    `on_row(row_bytes, now_ms)` for each frame, from a thread."""

    def __init__(self, url, width, y, rows, on_row, extra=()):
        self.width, self.rows = width, rows
        args = ["nice", "-n", str(NICE), "ffmpeg", "-nostdin", "-loglevel", "error", "-fflags", "nobuffer",
                "-flags", "low_delay", *extra, "-i", url,
                "-vf", f"crop={width}:{rows}:0:{y},format=gray",
                "-f", "rawvideo", "-"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE)
        self.on_row = on_row
        self.frames = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        size = self.width * self.rows
        while True:
            data = self.proc.stdout.read(size)
            if len(data) < size:
                return
            now = int(time.time() * 1000)
            self.frames += 1
            self.on_row(data, now)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def make_clip(path, frames, noise):
    if os.path.exists(path):
        return
    print(f"making the cameras' clip ({frames} frames at 1080p, once): {path}", flush=True)
    subprocess.run(["/usr/bin/python3", CAMERA, "--port", "0", "--make-clip", path + ".part",
                    "--frames", str(frames), "--width", "1920", "--height", "1080",
                    "--fps", str(FPS), *(["--noise"] if noise else [])], check=True)
    os.rename(path + ".part", path)


class Camera:
    """A camera replaying `clip` on `port`; `age_ms(index, now_ms)` is how long ago frame
    `index` left it."""

    def __init__(self, port, path, clip):
        self.proc = subprocess.Popen(
            ["nice", "-n", str(NICE), "/usr/bin/python3", CAMERA, "--port", str(port),
             "--path", path, "--replay", clip, "--fps", str(FPS)],
            stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.start_ms = None
        line = self.proc.stdout.readline()
        if "ready" not in line:
            sys.exit(f"the camera did not start: {line!r}")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("started "):
                self.start_ms = float(line.split()[1])

    def age_ms(self, index, now_ms):
        if self.start_ms is None:
            return None
        return now_ms - (self.start_ms + index * 1000 / FPS)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def proc_cpu_rss(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return cpu, rss / 1024


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def baseline(cam, url, seconds):
    """camera → ffmpeg decode directly: latencies in ms."""
    ages = []
    viewer = Viewer(url, 1920, 0, 64, lambda row, now: (
        (s := read_stamp(row[32 * 1920:], 0, 1.0)) is not None
        and (a := cam.age_ms(s, now)) is not None
        and ages.append(a)), extra=["-rtsp_transport", "tcp"])
    time.sleep(seconds)
    viewer.stop()
    return ages[30:]  # past the start-up burst


def metric(text, name, label):
    m = re.search(rf'^{name}{{input="{label}"}} ([0-9.eE+-]+)$', text, re.M)
    return float(m.group(1)) if m else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--out", default=os.path.join(ROOT, "target/live-inputs"))
    ap.add_argument("--noise", action="store_true",
                    help="cameras showing noise (a worst case for the codecs)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    assets_dir = os.path.join(ROOT, "target/reference-assets")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches/reference/make_assets.py"),
                    assets_dir], check=True)
    kind = "noise" if args.noise else "clean"
    clip = os.path.join(args.out, f"camera-clip-{kind}-{args.minutes:g}min.mp4")
    make_clip(clip, int((args.minutes * 60 + 60) * FPS), args.noise)
    ports = [free_port(), free_port()]
    cams = [Camera(p, f"/cam{i + 1}", clip) for i, p in enumerate(ports)]
    urls = [f"rtsp://127.0.0.1:{p}/cam{i + 1}" for i, p in enumerate(ports)]
    try:
        # Each camera's own baseline: a camera's start is stamped by the camera itself, so
        # its latency is compared only with itself read directly.
        base_ages = []
        for i, (cam, url) in enumerate(zip(cams, urls)):
            ages = baseline(cam, url, 15)
            print(f"baseline camera {i + 1} → ffmpeg directly: p50 {pct(ages, .5):.0f} ms, "
                  f"p99 {pct(ages, .99):.0f} ms ({len(ages)} frames)", flush=True)
            base_ages.append(ages)
        run(args, assets_dir, urls, base_ages, cams)
    finally:
        for c in cams:
            c.stop()


def run(args, assets_dir, urls, base_ages, cams):
    peers = [c.pid for c in cams]
    templates = os.path.join(ROOT, "templates/target/wasm32-wasip2/release")
    extra = ["--templates-dir", templates]
    log_path = os.path.join(args.out, "server.log")
    # The render thread logs each drop and its cause at debug level.
    os.environ["STREAM_MANAGER_LOG"] = "info,stream_manager::pipeline=debug"
    with live_server(args.binary, 1920, 1080, 30, extra, rtmp=True,
                     log_path=log_path) as (base, pid, rtmp_port):
        with open(os.path.join(ROOT, "benches/reference/scene.json")) as f:
            scene = json.load(f)
        ids = {}
        for layer in scene["layers"]:
            image = layer.get("image")
            if image and image["asset"] not in ids:
                name = image["asset"]
                ext = "jpg" if name == "background" else "png"
                with open(os.path.join(assets_dir, f"{name}.{ext}"), "rb") as f:
                    mime = "image/jpeg" if ext == "jpg" else "image/png"
                    ids[name] = call(base, "POST", f"/api/assets?name={name}",
                                     raw=f.read(), ctype=mime)["id"]
            if image:
                image["asset"] = ids[image["asset"]]
        for i, (tid, (x, y, w, h)) in enumerate(TEMPLATES):
            scene["layers"].append({"id": f"t-{tid}", "kind": "template",
                                    "template": {"id": tid},
                                    "position": {"x": x, "y": y, "width": w, "height": h,
                                                 "zIndex": 20 + i}})
        for i, (url, (x, y, w, h)) in enumerate(zip(urls, LAYERS)):
            call(base, "POST", "/api/inputs", {"id": f"cam{i + 1}", "kind": "rtsp", "url": url})
            scene["layers"].append({"id": f"cam{i + 1}", "kind": "video",
                                    "video": {"input": f"cam{i + 1}", "fit": "fill"},
                                    "position": {"x": x, "y": y, "width": w, "height": h,
                                                 "zIndex": 10 + i}})
        call(base, "PATCH", "/api/scene", {"layers": scene["layers"]})
        call(base, "POST", "/api/stream/start")
        time.sleep(3)
        samples = []  # (t, cam1 ms, cam2 ms) per program frame
        t0 = time.time()
        scale = LAYERS[0][2] / 1920

        def on_row(row, now):
            line = row[int(BLOCK / 2 * scale) * 1920:]
            stamps = [read_stamp(line, x, scale) for (x, _, _, _) in LAYERS]
            samples.append((now / 1000 - t0, *[
                cam.age_ms(s, now) if s is not None else None for s, cam in zip(stamps, cams)]))

        viewer = Viewer(f"rtmp://127.0.0.1:{rtmp_port}/live/main", 1920, LAYERS[0][1],
                        STRIP, on_row)
        peers = [*peers, viewer.proc.pid]
        seconds = args.minutes * 60
        ticks = []  # (t, dropped, cpu s, rss MiB, frames, metric cam1, metric cam2, peers cpu s)
        next_tick = time.time()
        last = -1
        while time.time() - t0 < seconds + 5:
            next_tick += 1
            time.sleep(max(0, next_tick - time.time()))
            state = call(base, "GET", "/api/stream/state")
            metrics = call(base, "GET", "/metrics")
            cpu, rss = proc_cpu_rss(pid)
            ticks.append((time.time() - t0, state["droppedFrames"], cpu, rss,
                          state["frameCount"],
                          metric(metrics, "stream_input_latency_ms", "cam1"),
                          metric(metrics, "stream_input_latency_ms", "cam2"),
                          sum(proc_cpu_rss(p)[0] for p in peers)))
            minute = int((time.time() - t0) // 60)
            if minute != last:
                last = minute
                print(f"  {minute:>3} min: dropped {state['droppedFrames']}, RSS {rss:.0f} MiB, "
                      f"program frames read {viewer.frames}", flush=True)
        viewer.stop()
        inputs = call(base, "GET", "/api/inputs")
    report(args, samples, ticks, base_ages, inputs, drop_causes(log_path))


def drop_causes(log_path):
    """Frames dropped by cause, from the server's debug log."""
    late = behind = 0
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    with open(log_path, errors="replace") as f:
        for line in f:
            line = ansi.sub("", line)  # the log is coloured: `missed=1` has codes around `=`
            if "render clock late" in line:
                m = re.search(r"missed\W+(\d+)", line)
                late += int(m.group(1)) if m else 1
            elif "encoder behind" in line:
                behind += 1
    return late, behind


def report(args, samples, ticks, base_ages, inputs, causes):
    with open(os.path.join(args.out, "latency.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "cam1_ms", "cam2_ms"])
        w.writerows(samples)
    with open(os.path.join(args.out, "ticks.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "dropped", "cpu_s", "rss_mib", "frames", "in_lat1_ms", "in_lat2_ms",
                    "peers_cpu_s"])
        w.writerows(ticks)
    warm = [s for s in samples if s[0] >= 30]
    first = [s for s in warm if s[0] < 90]
    last = [s for s in warm if s[0] >= warm[-1][0] - 60] if warm else []
    bases = [statistics.median(a) if a else float("nan") for a in base_ages]
    print(f"\n{args.minutes:g} min at 1080p30, reference scene + 3 templates + 2 cameras:")
    print(f"  dropped frames: {ticks[-1][1] - ticks[0][1]} (total {ticks[-1][1]}; "
          f"render clock late {causes[0]}, encoder behind {causes[1]})")
    span = [t for t in ticks if t[0] >= 30]
    if len(span) > 1 and span[-1][4] > span[0][4]:
        ms = (span[-1][2] - span[0][2]) * 1000 / (span[-1][4] - span[0][4])
        print(f"  server CPU: {ms:.1f} ms per frame (of 33.3 ms; 2 cores = 66.7)")
        secs = span[-1][0] - span[0][0]
        print(f"  peers (2 cameras, viewer; niced): {(span[-1][7] - span[0][7]) / secs:.2f} "
              f"of the 2 cores")
    print(f"  RSS: {span[0][3]:.0f} MiB at 30 s, {ticks[-1][3]:.0f} MiB at the end")
    for cam in (1, 2):
        def vals(rows):
            return [r[cam] for r in rows if r[cam] is not None]
        a, b = vals(first), vals(last)
        read = len(vals(warm))
        base = bases[cam - 1]
        print(f"  cam{cam} camera→viewer: first minute p50 {pct(a, .5):.0f} / p99 {pct(a, .99):.0f}"
              f" ms, last minute p50 {pct(b, .5):.0f} / p99 {pct(b, .99):.0f} ms; "
              f"added over reading it directly (p50 {base:.0f} ms): "
              f"{pct(b, .5) - base:.0f} ms = {(pct(b, .5) - base) * FPS / 1000:.2f} frame "
              f"intervals; stamps read {read}/{len(warm)}")
        lat = [t[4 + cam] for t in span if t[4 + cam] == t[4 + cam]]
        print(f"  cam{cam} arrival→render thread (stream_input_latency_ms): "
              f"p50 {pct(lat, .5):.1f}, max {max(lat, default=float('nan')):.1f} ms")
    for i in inputs:
        print(f"  input {i['id']}: {i['state']}, decoded {i['stats']['framesDecoded']}, "
              f"reconnects {i['stats']['reconnects']}")
    plot(args, samples, ticks, bases)


def plot(args, samples, ticks, bases):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no matplotlib: no plot; pip install matplotlib)")
        return
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for cam, colour in ((1, "tab:blue"), (2, "tab:orange")):
        pts = [(s[0] / 60, s[cam]) for s in samples if s[cam] is not None and s[0] >= 5]
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], ",", color=colour,
                 label=f"camera {cam} → viewer, each program frame")
        base = bases[cam - 1]
        ax1.axhline(base, color=colour, ls="--", lw=0.8,
                    label=f"camera {cam} → ffmpeg directly (p50 {base:.0f} ms)")
    ax1.set_ylabel("latency, ms")
    ax1.legend(loc="upper right", fontsize=8, markerscale=20)
    ax1.set_title("Two 1080p30 RTSP cameras on the reference scene + 3 templates, 1080p30 out")
    t = [x[0] / 60 for x in ticks]
    ax2.plot(t, [x[5] for x in ticks], label="cam1 arrival → render thread, ms")
    ax2.plot(t, [x[6] for x in ticks], label="cam2 arrival → render thread, ms")
    ax2.plot(t, [x[1] for x in ticks], label="dropped frames (total)")
    ax2.set_xlabel("minutes")
    ax2.legend(loc="upper right", fontsize=8)
    path = os.path.join(args.out, "live-inputs.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"  plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
