#!/usr/bin/env python3
"""A/V sync over time with a source whose clock runs fast: an RTMP publisher (ffmpeg, reading
its input `--ppm` faster than real time, so its timestamps run that much fast against ours)
sends a white flash and a 1 kHz beep on the same frame every second; the program (the
publisher's picture full frame, its sound mixed) is copied twice, at the start and after
`--minutes`, and in each copy every beep's onset is compared with its flash.

    python3 benches/av_sync.py [--binary target/release/stream-manager] [--minutes 10] [--ppm 500]

Prints the offsets (beep - flash, ms; a picture goes on air at a frame boundary, so within
half a frame either way is in sync) at the start and at the end, and the server's drift
steering from its debug log. Plots them to benches/av_sync.png when matplotlib is there.
"""
import argparse
import array
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FPS = 30
RATE = 48000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def wait(what, predicate, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def copy_program(rtmp, seconds, path):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", rtmp, "-t", str(seconds),
                    "-c", "copy", "-f", "matroska", path, "-y"], check=True, timeout=seconds + 30)


def analyse(path):
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", path],
                                      capture_output=True, check=True).stdout)
    start = {s["codec_type"]: float(s.get("start_time", 0)) for s in probe["streams"]}
    audio = array.array("f")
    audio.frombytes(subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", path, "-map", "0:a:0",
                                    "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"],
                                   capture_output=True, check=True).stdout)
    raw = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", path, "-map", "0:v:0",
                          "-fps_mode", "passthrough", "-vf", "crop=16:16", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    frames = [raw[i * 256 + 136] for i in range(len(raw) // 256)]
    flashes, was = [], False
    for i, y in enumerate(frames):
        now = y > 200
        if now and not was:
            flashes.append(start["video"] + i / FPS)
        was = now
    # Beep onsets: the first 1 ms step whose next 5 ms are louder than -30 dBFS RMS, after
    # at least 300 ms quieter.
    win, step = RATE // 200, RATE // 1000
    onsets, quiet_since = [], None
    for k in range(0, len(audio) - win, step):
        chunk = audio[k:k + win]
        power = sum(v * v for v in chunk) / win
        loud = power > 1e-3  # -30 dBFS
        t = start["audio"] + k / RATE
        if not loud:
            quiet_since = t if quiet_since is None else quiet_since
        elif quiet_since is not None and t - quiet_since > 0.3:
            onsets.append(t)
            quiet_since = None
        else:
            quiet_since = None
    offsets = []
    for f in flashes:
        near = [o for o in onsets if abs(o - f) < 0.4]
        if near:
            offsets.append(min(near, key=lambda o: abs(o - f)) - f)
    return offsets


def summary(name, offsets):
    ms = sorted(o * 1000 for o in offsets)
    if not ms:
        return f"{name}: no flash with its beep found"
    return (f"{name}: {len(ms)} flashes, beep - flash median {ms[len(ms) // 2]:+.1f} ms, "
            f"range {ms[0]:+.1f} .. {ms[-1]:+.1f} ms (a frame is {1000 / FPS:.1f} ms)")


def plot(start, end, ppm, minutes):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([o * 1000 for o in start], "o-", label="start")
    ax.plot([o * 1000 for o in end], "s-", label=f"after {minutes:.0f} min")
    ax.axhspan(-1000 / FPS, 1000 / FPS, color="green", alpha=0.1, label="±1 frame")
    ax.axhspan(-500 / FPS, 500 / FPS, color="green", alpha=0.15, label="±½ frame")
    ax.set_xlabel("flash")
    ax.set_ylabel("beep - flash (ms)")
    ax.set_ylim(-45, 45)
    ax.set_title(f"A/V offset, source clock {ppm:+.0f} ppm")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig("benches/av_sync.png", dpi=100)
    print("  plot: benches/av_sync.png")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/stream-manager")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--ppm", type=float, default=500)
    ap.add_argument("--keep", action="store_true", help="keep the run's folder (logs, copies)")
    ap.add_argument("--from", dest="kept", help="analyse a kept run's folder again (no run)")
    a = ap.parse_args()
    if a.kept:
        start = analyse(os.path.join(a.kept, "start.mkv"))
        end = analyse(os.path.join(a.kept, "end.mkv"))
        print("  " + summary("start", start))
        print("  " + summary("end  ", end))
        plot(start, end, a.ppm, a.minutes)
        return
    tmp = tempfile.mkdtemp(prefix="av-sync-")
    http, ws, rtmp_port = free_port(), free_port(), free_port()
    with open(os.path.join(tmp, "config.toml"), "w") as f:
        f.write('[stream]\nwidth = 640\nheight = 360\ntargetFPS = 30\naudio = "mix"\n'
                'videoBitrateKbps = 1500\npreset = "ultrafast"\n')
    log = open(os.path.join(tmp, "server.log"), "w")
    env = dict(os.environ, STREAM_MANAGER_LOG="info,sm_media::audio=debug", NO_COLOR="1")
    server = subprocess.Popen([a.binary, "serve", "--config", os.path.join(tmp, "config.toml"),
                               "--http-port", str(http), "--ws-port", str(ws), "--rtmp-port", str(rtmp_port),
                               "--media-dir", os.path.join(tmp, "media"),
                               "--recordings-dir", os.path.join(tmp, "rec")], stdout=log, stderr=log, env=env)
    publisher = None
    try:
        wait("the server", lambda: call(http, "GET", "/api/stream/state") is not None)
        key = call(http, "POST", "/api/inputs", {"id": "cam", "kind": "rtmp"})["streamKey"]
        call(http, "POST", "/api/scene/layers", {"id": "cam", "kind": "video",
             "position": {"x": 0, "y": 0, "width": 1920, "height": 1080},
             "video": {"input": "cam", "fit": "fill"}})
        call(http, "POST", "/api/stream/start")
        rate = f"{1 + a.ppm * 1e-6:.6f}"
        publisher = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error",
             "-readrate", rate, "-f", "lavfi", "-i",
             "color=c=black:s=320x180:r=30,drawbox=c=white:t=fill:enable='lt(mod(t,1),0.033)'",
             "-readrate", rate, "-f", "lavfi", "-i",
             "aevalsrc='if(lt(mod(t,1),0.1),0.5*sin(2*PI*1000*t),0)':s=48000:c=stereo",
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv",
             f"rtmp://127.0.0.1:{rtmp_port}/input/{key}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "publisher.log"), "w"))
        wait("the camera", lambda: call(http, "GET", "/api/inputs/cam")["state"] == "playing")
        began = time.time()
        play = f"rtmp://127.0.0.1:{rtmp_port}/live/main"
        time.sleep(10)
        copy_program(play, 12, os.path.join(tmp, "start.mkv"))
        left = a.minutes * 60 - (time.time() - began) - 12
        while left > 0:
            print(f"  {(time.time() - began) / 60:.1f} of {a.minutes:.0f} min", file=sys.stderr, flush=True)
            time.sleep(min(60, left))
            left = a.minutes * 60 - (time.time() - began) - 12
        copy_program(play, 12, os.path.join(tmp, "end.mkv"))
        state = call(http, "GET", "/api/stream/state")
    finally:
        if publisher:
            publisher.terminate()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    start, end = analyse(os.path.join(tmp, "start.mkv")), analyse(os.path.join(tmp, "end.mkv"))
    print(f"A/V sync, a source {a.ppm:+.0f} ppm fast, {a.minutes:.0f} minutes, dropped frames "
          f"{state['droppedFrames']} of {state['frameCount']}:")
    print("  " + summary("start", start))
    print("  " + summary("end  ", end))
    steering = [l for l in open(os.path.join(tmp, "server.log")) if "audio source" in l]
    if steering:
        print("  last steering line: " + steering[-1].strip()[-160:])
    plot(start, end, a.ppm, a.minutes)
    if a.keep:
        print(f"  kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
