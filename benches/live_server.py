"""A release server on free loopback ports for the end-to-end benchmark scripts.

    with live_server(binary, width, height, fps) as (base, pid):
        call(base, "POST", "/api/stream/start")
"""
import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target/release/stream-manager")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, raw=None, ctype="application/json"):
    """One request; the JSON answer (or text when it is not JSON)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", ctype)
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read()
        try:
            return json.loads(text or b"null")
        except ValueError:
            return text.decode()


@contextlib.contextmanager
def live_server(binary, width, height, fps, extra=(), rtmp=False, log_path=None):
    """Starts `binary serve [extra…]` at width x height @ fps on free ports, waits for its
    health; yields (base URL, pid), or (base URL, pid, RTMP port) with `rtmp`, and stops it
    afterwards. Its log goes to `log_path` (kept), or to a temporary file."""
    ports = [free_port() for _ in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "c.toml")
        with open(cfg, "w") as f:
            f.write(f"http-port = {ports[0]}\nws-port = {ports[1]}\nrtmp-port = {ports[2]}\n")
            f.write(f'media-dir = "{tmp}/media"\n')
            f.write(f"[stream]\nwidth = {width}\nheight = {height}\ntargetFPS = {fps}\n")
        with open(log_path or os.path.join(tmp, "server.log"), "w") as log:
            server = subprocess.Popen([binary, "serve", "--config", cfg, *extra], stderr=log, stdout=log)
            base = f"http://127.0.0.1:{ports[0]}"
            try:
                for _ in range(100):
                    try:
                        call(base, "GET", "/api/health")
                        break
                    except OSError:
                        time.sleep(0.1)
                yield (base, server.pid, ports[2]) if rtmp else (base, server.pid)
            finally:
                server.terminate()
                server.wait(timeout=10)
