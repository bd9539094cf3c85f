"""The admin console measured in Debian's Chromium on loopback, against the binary streaming
live with its preview on:

  first paint and time to interactive (TTI: the stream controls, the rundown and the layers
  are rendered and the stream controls enabled, with the feed connected), from navigation
  start, by the page's own Performance API; the page weight (every response body of a first
  load, uncompressed); the age of the preview picture shown, sampled from the page's own
  state (now − the server's timestamp of the frame shown) every ~50 ms over the steady-state
  window, and each picture's age on arrival; and the CPU the page costs meanwhile:
  its main thread (CDP Performance.getMetrics TaskDuration) and, from /proc, the whole
  renderer process and Chromium's GPU/viz process (compositing, in software here).

    target/browser-venv/bin/python benches/console.py [--binary target/debug/stream-manager]
        [--seconds 20] [--loads 5] [--size 1280x720] [--preview-fps 5] [--preview-width 640]

Targets (DESIGN.md): first paint ≤ 300 ms, preview age ≤ 400 ms, page weight ≤ 150 KB.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests/browser"))
import harness  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

# In the page: how long after navigation start the console was usable.
TTI_PROBE = """() => {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const ok = q('connection')?.dataset.state === 'connected'
    && ['live', 'paused', 'stopped'].includes(q('stream-state')?.dataset.state)
    && q('stop') && !q('stop').disabled && (q('pause') || q('go-live') || q('resume'))
    && document.querySelector('[data-testid^="scene-"][data-tally]')
    && document.querySelector('[data-testid^="layer-"][data-layer-id]')
    && q('take');
  return ok ? performance.now() : false;
}"""

# In the page, for `ms`: the age of the preview picture on screen (now − the server's
# timestamp of its frame), sampled every ~50 ms, and each picture's age when it arrived.
SAMPLER = """async (ms) => {
  const { getState } = await import('/store.js');
  const ages = [], arrivals = new Map(), end = performance.now() + ms;
  while (performance.now() < end) {
    const p = getState().preview;
    if (p) { ages.push(Date.now() - p.timestamp); arrivals.set(p.frameNumber, p.receivedAt - p.timestamp); }
    await new Promise((r) => setTimeout(r, 47));
  }
  return { ages, arrivals: [...arrivals.values()] };
}"""

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK  # ppid, utime+stime s


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def chromium_processes(root_pid):
    """{pid: kind} of the Chromium processes under `root_pid` (kind: its --type, or browser)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid, _ = proc_stat(int(name))
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        cmd = cmdline(pid)
        if "chrom" in cmd:
            kind = next((a.split("=", 1)[1] for a in cmd.split() if a.startswith("--type=")), "browser")
            out[pid] = kind
        todo.extend(children.get(pid, []))
    return out


def cpu_by_kind(root_pid):
    totals = {}
    for pid, kind in chromium_processes(root_pid).items():
        try:
            totals[kind] = totals.get(kind, 0.0) + proc_stat(pid)[1]
        except OSError:
            pass
    return totals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=harness.BINARY)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--loads", type=int, default=5, help="page loads for first paint / TTI")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--preview-fps", type=int, default=5)
    ap.add_argument("--preview-width", type=int, default=640)
    args = ap.parse_args()
    harness.BINARY = os.path.abspath(args.binary)
    width, height = (int(x) for x in args.size.split("x"))
    stream = dict(harness.SMALL_STREAM, width=width, height=height, videoBitrateKbps=3000, preset="veryfast",
                  keyframeIntervalSec=2.0,
                  preview={"enabled": True, "fps": args.preview_fps, "width": args.preview_width, "quality": 70})
    server = harness.Server(stream=stream)
    try:
        server.launch()
        server.api("POST", "/api/stream/start")
        harness.poll(lambda: server.state()["frameCount"] > 30, 20, "the stream to run")
        with sync_playwright() as pw:
            browser = harness.launch_browser(pw)
            measure(browser, server, args)
            browser.close()
    finally:
        harness.kill_all()
        server.cleanup()


def measure(browser, server, args):
    paints, ttis, weight, files, api_bytes = [], [], 0, 0, 0
    for i in range(args.loads):
        context = browser.new_context(viewport=harness.VIEWPORT)
        page = context.new_page()
        bodies = []
        page.on("response", lambda r: bodies.append(r))
        page.goto(server.url("/"))
        tti = page.wait_for_function(TTI_PROBE, polling="raf", timeout=20_000).json_value()
        fp = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('paint')
            .map((e) => [e.name, e.startTime]))""")
        paints.append(fp.get("first-contentful-paint", fp.get("first-paint")))
        ttis.append(tti)
        if i == 0:
            for r in bodies:
                try:
                    n = len(r.body())
                    weight += n
                    files += 1
                    api_bytes += n if "/api/" in r.url else 0
                except Exception:  # noqa: BLE001 - a redirect or a body already gone
                    pass
        context.close()

    context = browser.new_context(viewport=harness.VIEWPORT)
    page = context.new_page()
    page.goto(server.url("/"))
    page.wait_for_function(TTI_PROBE, timeout=20_000)
    page.get_by_test_id("preview").wait_for(state="visible", timeout=20_000)
    page.wait_for_timeout(2000)  # settle: steady state from here
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    task = lambda: next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration")  # noqa: E731
    root = browser_pid()
    cpu0, task0, t0 = cpu_by_kind(root), task(), time.monotonic()
    sampled = page.evaluate(SAMPLER, int(args.seconds * 1000))
    wall = time.monotonic() - t0
    cpu1, task1 = cpu_by_kind(root), task()
    context.close()

    ages, arrivals = sorted(sampled["ages"]), sorted(sampled["arrivals"])
    pct = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    print(f"console on loopback, {server.state()['targetFPS']} fps stream, preview {args.preview_fps} fps "
          f"× {args.preview_width} px, Chromium {browser.version}")
    print(f"first contentful paint: median {statistics.median(paints):.0f} ms "
          f"(min {min(paints):.0f}, max {max(paints):.0f}, {len(paints)} loads)   target ≤ 300 ms")
    print(f"time to interactive:    median {statistics.median(ttis):.0f} ms "
          f"(min {min(ttis):.0f}, max {max(ttis):.0f})")
    print(f"page weight:            {weight / 1000:.1f} KB in {files} responses (uncompressed; the console's "
          f"files {(weight - api_bytes) / 1000:.1f} KB, its first API answers {api_bytes / 1000:.1f} KB)   "
          f"target ≤ 150 KB")
    print(f"preview age shown:      median {statistics.median(ages):.0f} ms, p95 {pct(ages, 0.95)} ms, "
          f"max {ages[-1]} ms over {wall:.0f} s ({len(ages)} samples)   target ≤ 400 ms")
    print(f"preview on arrival:     median {statistics.median(arrivals):.0f} ms, p95 {pct(arrivals, 0.95)} ms, "
          f"max {arrivals[-1]} ms after its frame was made ({len(arrivals)} pictures, "
          f"{len(arrivals) / wall:.1f}/s)")
    print(f"page main thread:       {100 * (task1 - task0) / wall:.1f} % of a core (CDP TaskDuration)")
    for kind in sorted(set(cpu0) | set(cpu1)):
        share = 100 * (cpu1.get(kind, 0) - cpu0.get(kind, 0)) / wall
        print(f"chromium {kind + ' process:':<22}{share:.1f} % of a core (/proc utime+stime)")


def browser_pid():
    """The pid of the Chromium this script launched (its process group's leader's child)."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit():
            cmd = cmdline(int(name))
            if "chromium" in cmd and "--type=" not in cmd and "playwright" in cmd:
                try:
                    if is_descendant(int(name), me):
                        return int(name)
                except OSError:
                    continue
    raise RuntimeError("cannot find the Chromium this script launched")


def is_descendant(pid, ancestor):
    while pid > 1:
        if pid == ancestor:
            return True
        pid = proc_stat(pid)[0]
    return False


if __name__ == "__main__":
    main()
