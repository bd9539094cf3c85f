#!/usr/bin/env python3
"""Template frame budget on this machine: does the stream keep its rate when template
layers take all the time the defaults give them?

Starts the release server on free loopback ports with the test guests' `hostile`
template, goes live at each frame rate asked (720p unless told otherwise), and for each
case puts N template layers on air that busy-wait (`spin`) a given number of
milliseconds in every `render` call. All template layers together get
`--template-frame-budget` (default half) of the frame interval, split evenly: a layer
that spins within its share costs the frame that time; one over it is interrupted,
faults and is quarantined. Over `--seconds` per case it reports frames encoded and
dropped, the mean render time per frame against the frame interval, the server's CPU and
the template faults, with a baseline case (no template layer) measured in the same run.

Usage: python3 benches/template_budget.py [--fps 30 60] [--seconds 10]
(build first: cargo build --release --bin stream-manager, and the test guests:
 cd tests/guests && cargo build --release --target wasm32-wasip2)
"""
import argparse
import os
import sys
import time

from live_server import BINARY, ROOT, call, live_server

HOSTILE = os.path.join(ROOT, "tests/guests/target/wasm32-wasip2/release/hostile.wasm")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def faults(metrics):
    n = 0
    for line in metrics.splitlines():
        if line.startswith("stream_template_faults{"):
            n += int(float(line.split()[-1]))
    return n


def run_case(base, pid, fps, layers, spin_ms, seconds):
    ids = [f"spin-{i}" for i in range(layers)]
    for i, lid in enumerate(ids):
        call(base, "POST", "/api/scene/layers", {
            "id": lid, "kind": "template",
            "position": {"x": 20 + 60 * i, "y": 20, "width": 40, "height": 40},
            "template": {"id": "hostile", "params": {"mode": "spin", "ms": spin_ms}},
        })
    time.sleep(2.0)  # settle: first instances, quarantines of layers over their share
    s0, c0, f0 = call(base, "GET", "/api/stream/state"), cpu_seconds(pid), faults(
        call(base, "GET", "/metrics"))
    time.sleep(seconds)
    s1, c1, f1 = call(base, "GET", "/api/stream/state"), cpu_seconds(pid), faults(
        call(base, "GET", "/metrics"))
    health = call(base, "GET", "/api/health")
    for lid in ids:
        call(base, "DELETE", f"/api/scene/layers/{lid}")
    frames = s1["frameCount"] - s0["frameCount"]
    dropped = s1["droppedFrames"] - s0["droppedFrames"]
    templates = health["components"]["templates"]
    quarantined = len(templates.get("quarantined", {}))
    return {
        "fps": fps, "layers": layers, "spin_ms": spin_ms,
        "frames": frames, "dropped": dropped,
        # The state's mean render time is since the start: this case's mean from the two.
        "render_ms": (s1["averageRenderTime"] * s1["frameCount"]
                      - s0["averageRenderTime"] * s0["frameCount"]) / max(frames, 1),
        "cpu_pct": 100.0 * (c1 - c0) / seconds,
        "faults": f1 - f0, "quarantined": quarantined,
        "last_fault": templates.get("lastFault"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fps", type=int, nargs="+", default=[30, 60])
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--binary", default=BINARY)
    args = ap.parse_args()
    rows = []
    for fps in args.fps:
        # Defaults: all templates get half the frame (--template-frame-budget), one call
        # at most a quarter (--template-budget).
        budget, cap = 1000.0 / fps * 0.5, 1000.0 / fps * 0.25
        cases = [(0, 0.0)]
        for n in (1, 3, 8):
            within = min(budget / n, cap)
            cases.append((n, round(within * 0.8, 2)))  # within the share
        cases.append((8, round(cap * 0.9, 2)))  # each near the per-call cap: over the share
        with live_server(args.binary, args.width, args.height, fps) as (base, pid):
            with open(HOSTILE, "rb") as f:
                call(base, "POST", "/api/templates", raw=f.read(), ctype="application/wasm")
            call(base, "POST", "/api/stream/start")
            time.sleep(2.0)
            for n, ms in cases:
                row = run_case(base, pid, fps, n, ms, args.seconds)
                rows.append(row)
                print(f"  {fps} fps, {n} layers x {ms} ms: {row}", file=sys.stderr)
    print(f"Template layers spinning in every render call, {args.width}x{args.height}, "
          f"{args.seconds:.0f} s per case, default budgets (all templates: half the frame):")
    print("| fps | layers × spin ms | frames | dropped | render ms/frame (interval) "
          "| server CPU % | faults | quarantined |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        interval = 1000.0 / r["fps"]
        rm = r["render_ms"]
        rms = f"{rm:.2f} ({interval:.1f})" if isinstance(rm, (int, float)) else "?"
        print(f"| {r['fps']} | {r['layers']} × {r['spin_ms']} | {r['frames']} | {r['dropped']} "
              f"| {rms} | {r['cpu_pct']:.0f} | {r['faults']} | {r['quarantined']} |")


if __name__ == "__main__":
    sys.exit(main())
