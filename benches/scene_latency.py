#!/usr/bin/env python3
"""REST scene change -> on air latency.

Starts the release server on free loopback ports, goes live (1080p30 unless told
otherwise), then moves a layer N times with PUT /api/scene/layers/{id}/position. The
server answers only once the frame that shows the change is rendered and queued for the
encoder, so the round-trip time of each request is the latency from the REST change to
the frame that contains it. Prints p50/p99/max against the frame interval.

Usage: python3 benches/scene_latency.py [--requests 300] [--width 1920 --height 1080 --fps 30]
(build first: cargo build --release --bin stream-manager)
"""
import argparse
import sys
import time

from live_server import BINARY, call, live_server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--binary", default=BINARY)
    args = ap.parse_args()
    with live_server(args.binary, args.width, args.height, args.fps) as (base, _):
        call(base, "POST", "/api/stream/start")
        layer = {"id": "probe", "kind": "shape",
                 "position": {"x": 0, "y": 0, "width": 200, "height": 100},
                 "shape": {"type": "rect", "fill": "#ff0000"}}
        call(base, "POST", "/api/scene/layers", layer)
        time.sleep(1.0)
        rtts, missing = [], 0
        for i in range(args.requests):
            pos = {"x": (i * 37) % 1600, "y": (i * 53) % 900, "width": 200, "height": 100}
            t0 = time.perf_counter()
            reply = call(base, "PUT", "/api/scene/layers/probe/position", pos)
            rtts.append((time.perf_counter() - t0) * 1000)
            if reply.get("appliedAtFrame") is None:
                missing += 1
            time.sleep(0.013)  # spread requests over the frame phase
        state = call(base, "GET", "/api/stream/state")
    rtts.sort()
    pick = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))]
    interval = 1000 / args.fps
    print(f"REST change -> frame on air, {len(rtts)} requests at {args.width}x{args.height}@{args.fps}:")
    print(f"  p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {rtts[-1]:.1f} ms "
          f"(frame interval {interval:.1f} ms; p99 / interval = {pick(0.99) / interval:.2f})")
    print(f"  answers without appliedAtFrame: {missing}; droppedFrames {state['droppedFrames']}")


if __name__ == "__main__":
    sys.exit(main())
