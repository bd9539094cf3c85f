"""What recording the program costs: the release server live at 1080p30 (x264 veryfast, 4.5
Mbit/s, the default scene), its CPU per frame in windows without and with a recording,
interleaved (A B A B …) so that the machine's drift falls on both alike.

    cargo build --release --bin stream-manager
    /usr/bin/python3 benches/recording.py [--pairs 4] [--seconds 30] [--plot benches/recording.png]

CPU is the server process's user + system time (/proc), frames its frameCount; the recording
window records to a temporary folder and is deleted after. Target (issue 14): ≤ 2 % more CPU
per frame with a recording.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_server import BINARY, call, live_server  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu(pid, prefix):
    """CPU seconds of the process's threads whose name starts with `prefix`."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith(prefix):
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except OSError:
            continue
    return total


def window(base, pid, seconds):
    """CPU ms per frame and frames over `seconds`."""
    c0, f0 = cpu_seconds(pid), call(base, "GET", "/api/stream/state")["frameCount"]
    time.sleep(seconds)
    c1, state = cpu_seconds(pid), call(base, "GET", "/api/stream/state")
    frames = state["frameCount"] - f0
    return (c1 - c0) * 1000 / max(frames, 1), frames, state["droppedFrames"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--plot")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as rec_dir, \
            live_server(a.binary, 1920, 1080, 30, extra=["--recordings-dir", rec_dir]) as (base, pid):
        call(base, "POST", "/api/stream/start")
        time.sleep(10)  # warm-up
        plain, recording, sizes, writer = [], [], [], []
        for i in range(a.pairs):
            ms, frames, dropped = window(base, pid, a.seconds)
            plain.append(ms)
            print(f"pair {i + 1}: without {ms:6.2f} CPU ms/frame ({frames} frames, {dropped} dropped so far)",
                  flush=True)
            rec = call(base, "POST", "/api/recordings", {"name": f"bench {i + 1}"})
            ms, frames, dropped = window(base, pid, a.seconds)
            # The writer thread alone (named "record rec-N"), measured exactly.
            writer.append(thread_cpu(pid, "record ") * 1000 / max(frames, 1))
            done = call(base, "POST", f"/api/recordings/{rec['id']}/stop")
            recording.append(ms)
            sizes.append(done["bytes"])
            print(f"pair {i + 1}: with    {ms:6.2f} CPU ms/frame ({frames} frames, {dropped} dropped so far; "
                  f"writer thread {writer[-1]:.3f} ms/frame; "
                  f"{done['bytes'] / 1e6:.1f} MB, {done['durationMs'] / 1000:.1f} s recorded)", flush=True)
            call(base, "DELETE", f"/api/recordings/{rec['id']}")
        a_med, b_med = statistics.median(plain), statistics.median(recording)
        state = call(base, "GET", "/api/stream/state")
        print(f"\nmedian CPU per frame: without {a_med:.2f} ms, with a recording {b_med:.2f} ms "
              f"(x{b_med / a_med:.3f}, {100 * (b_med - a_med) / a_med:+.1f} %); "
              f"pairwise: {', '.join(f'{100 * (b - p) / p:+.1f} %' for p, b in zip(plain, recording))}; "
              f"dropped frames {state['droppedFrames']}")
        w = statistics.median(writer)
        print(f"the recording's writer thread alone: {w:.3f} CPU ms/frame, {100 * w / a_med:.2f} % of the "
              f"stream's CPU per frame (the hub-to-queue forwarding runs on a tokio worker, not counted)")
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 3.6))
        xs = range(1, a.pairs + 1)
        ax.plot(xs, plain, "o-", label="live, no recording")
        ax.plot(xs, recording, "s-", label="live + recording")
        ax.set_xlabel(f"window pair ({a.seconds:.0f} s each, interleaved)")
        ax.set_ylabel("server CPU ms per frame")
        ax.set_ylim(0, max(plain + recording) * 1.2)
        ax.set_xticks(list(xs))
        ax.set_title(f"1080p30 veryfast: recording costs {100 * (b_med - a_med) / a_med:+.1f} % CPU/frame (median)")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(a.plot, dpi=110)
        print(f"plot: {a.plot}")


if __name__ == "__main__":
    main()
