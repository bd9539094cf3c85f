#!/usr/bin/env python3
"""Asset loaders and the OGraf facade, measured end to end (issue 16).

1. SVG decode in the sandbox (the bundled svg_loader.wasm, `stream-manager loader check`,
   a fresh instance per decode as in the server) against the same code natively
   (plugins/svg/examples/decode_time.rs), for a logo that maps onto draw commands and for
   one with a filter that resvg rasterizes: medians and their ratio.
2. Animated GIF memory per frame: a GIF of N frames at the canvas size is uploaded to a
   live server; the decoded-asset budget (`stream_decoded_asset_bytes` in /metrics) and the
   server's RSS grow by so much per frame.
3. Per-frame playback cost: the server's CPU time per rendered frame with that GIF playing
   full-canvas, against the same layer showing a still PNG of the same size (same run).
4. OGraf load -> on air: the round trip of `load` and of `playAction` on the bundled lower
   third (the facade answers once the frame with the change is on air).

Usage: python3 benches/loaders.py [--runs 10] [--frames 40] [--seconds 10] [--requests 50]
(builds what it needs: the release server and the templates' workspace)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from live_server import BINARY, ROOT, call, live_server

TEMPLATES = os.path.join(ROOT, "templates")
WASM = os.path.join(TEMPLATES, "target/wasm32-wasip2/release")


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "stream-manager"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--target", "wasm32-wasip2"], cwd=TEMPLATES, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "svg-loader", "--example", "decode_time"],
                   cwd=TEMPLATES, check=True)


def logo_svg(filtered):
    """A 1280x720 logo of 400 shapes: circles, cubic curves, gradients; with a blur filter
    on one group when `filtered` (no draw command says that: resvg rasterizes it)."""
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="720">',
             '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
             '<stop offset="0" stop-color="#ff0000"/><stop offset="1" stop-color="#0000ff"/></linearGradient>'
             '<filter id="f"><feGaussianBlur stdDeviation="3"/></filter></defs>',
             '<g%s>' % (' filter="url(#f)"' if filtered else '')]
    for i in range(400):
        x, y = (i * 97) % 1240 + 20, (i * 53) % 680 + 20
        if i % 2:
            parts.append(f'<circle cx="{x}" cy="{y}" r="{8 + i % 17}" fill="url(#g)"/>')
        else:
            parts.append(f'<path d="M{x} {y} C{x + 30} {y - 40} {x + 60} {y + 40} {x + 90} {y}" '
                         f'stroke="#00ff00" stroke-width="3" fill="none"/>')
    parts.append('</g></svg>')
    return "\n".join(parts)


def svg_ratio(runs, tmp):
    print("SVG decode, sandbox against native (same loader code, median of %d):" % runs)
    native_bin = os.path.join(TEMPLATES, "target/release/examples/decode_time")
    for name, filtered in (("vector logo", False), ("filtered logo (resvg raster)", True)):
        path = os.path.join(tmp, name.split()[0] + ".svg")
        with open(path, "w") as f:
            f.write(logo_svg(filtered))
        out = subprocess.run([native_bin, path, str(runs)], capture_output=True, text=True, check=True).stdout
        native = float(re.search(r"median ([0-9.]+) ms", out).group(1))
        sandbox = []
        made = ""
        for _ in range(runs):
            res = subprocess.run([BINARY, "loader", "check", path, "--loader", os.path.join(WASM, "svg_loader.wasm")],
                                 capture_output=True, text=True, check=True)
            text = res.stdout + res.stderr
            m = re.search(r"in ([0-9.]+)(µs|ms|s)\b", text)
            value = float(m.group(1)) * {"µs": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            sandbox.append(value)
            made = made or text.strip().splitlines()[-1]
        med = statistics.median(sandbox)
        print(f"  {name}: native {native:.2f} ms, sandbox {med:.2f} ms (fresh instance each), "
              f"ratio {med / native:.2f}x  [{made}]")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(base, name):
    text = call(base, "GET", "/metrics")
    m = re.search(rf"^{name} (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def make_media(tmp, width, height, frames):
    """An animated GIF of `frames` frames (100 ms each) and a PNG still, both width x height."""
    gif, png = os.path.join(tmp, "anim.gif"), os.path.join(tmp, "still.png")
    src = f"testsrc2=size={width}x{height}:rate=10"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", str(frames), gif],
                   check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", "1", png], check=True)
    return gif, png


def upload(base, path, ctype):
    with open(path, "rb") as f:
        return call(base, "POST", "/api/assets", raw=f.read(), ctype=ctype)


def playback_and_memory(frames, seconds, tmp, width=1280, height=720, fps=30):
    gif, png = make_media(tmp, width, height, frames)
    extra = ["--templates-dir", WASM]
    with live_server(BINARY, width, height, fps, extra=extra) as (base, pid):
        call(base, "POST", "/api/stream/start")
        time.sleep(2)
        decoded0, rss0 = metric(base, "stream_decoded_asset_bytes"), rss_kib(pid)
        anim = upload(base, gif, "image/gif")
        time.sleep(1)
        decoded1, rss1 = metric(base, "stream_decoded_asset_bytes"), rss_kib(pid)
        n = anim["frames"]
        print(f"Animated GIF memory, {n} frames of {width}x{height}:")
        print(f"  decoded budget {(decoded1 - decoded0) / n / 1024:.0f} KiB per frame "
              f"(RGBA is {width * height * 4 / 1024:.0f} KiB), server RSS +{(rss1 - rss0) / n:.0f} KiB per frame")
        still = upload(base, png, "image/png")
        layer = {"id": "bench", "kind": "image", "position": {"x": 0, "y": 0, "width": width, "height": height}}
        cost = {}
        for name, asset in (("still PNG", still["id"]), ("animated GIF", anim["id"])):
            call(base, "POST", "/api/scene/layers", dict(layer, image={"asset": asset, "fit": "fill"}))
            time.sleep(2)  # sized copies made, playing
            f0, c0 = call(base, "GET", "/api/stream/state")["frameCount"], cpu_s(pid)
            time.sleep(seconds)
            f1, c1 = call(base, "GET", "/api/stream/state")["frameCount"], cpu_s(pid)
            cost[name] = (c1 - c0) / (f1 - f0) * 1000
            call(base, "DELETE", "/api/scene/layers/bench")
        state = call(base, "GET", "/api/stream/state")
        print(f"Per-frame cost at {width}x{height}@{fps} (server CPU per frame, encode included):")
        print(f"  still {cost['still PNG']:.2f} ms, animation {cost['animated GIF']:.2f} ms, "
              f"ratio {cost['animated GIF'] / cost['still PNG']:.2f}x; droppedFrames {state['droppedFrames']}")


def ograf_latency(requests, width=1280, height=720, fps=30):
    with live_server(BINARY, width, height, fps, extra=["--templates-dir", WASM]) as (base, _):
        call(base, "POST", "/api/stream/start")
        time.sleep(2)
        loads, plays = [], []
        target = {"renderTarget": {"layerId": "l3"}}
        for i in range(requests):
            t0 = time.perf_counter()
            loaded = call(base, "POST", "/ograf/v1/renderers/program/target/graphicInstance/load",
                          dict(target, graphicId="lower-third", params={"data": {"name": f"Guest {i}"}}))
            t1 = time.perf_counter()
            iid = loaded["graphicInstanceId"]
            call(base, "POST", "/ograf/v1/renderers/program/target/graphicInstance/playAction",
                 dict(target, graphicInstanceId=iid, params={}))
            t2 = time.perf_counter()
            loads.append((t1 - t0) * 1000)
            plays.append((t2 - t1) * 1000)
            time.sleep(0.05)
        state = call(base, "GET", "/api/stream/state")
    pick = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]
    print(f"OGraf load -> on air, {requests} times at {width}x{height}@{fps} (frame interval {1000 / fps:.1f} ms):")
    print(f"  load p50 {pick(loads, 0.5):.1f} ms p99 {pick(loads, 0.99):.1f} ms; "
          f"playAction p50 {pick(plays, 0.5):.1f} ms p99 {pick(plays, 0.99):.1f} ms; "
          f"droppedFrames {state['droppedFrames']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    build()
    with tempfile.TemporaryDirectory() as tmp:
        svg_ratio(args.runs, tmp)
        playback_and_memory(args.frames, args.seconds, tmp)
        ograf_latency(args.requests)


if __name__ == "__main__":
    sys.exit(main())
