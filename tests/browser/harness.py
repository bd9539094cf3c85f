"""What the console's browser tests (and benches/console.py) drive: the real binary on free
loopback ports, Debian's Chromium through Playwright, and an ffmpeg player decoding the
server's RTMP output.

    server = Server.small(token="t", preview=True); server.launch()
    browser = launch_browser(playwright)
    player = Player(server.rtmp_play_url(), server.dir)

Every process started here is registered and killed (and reaped) by `kill_all()`, which the
tests' fixtures call at teardown, pass or fail.

`SM_WEB_DIR=host/server/web` makes pages take the console's files from that folder instead
of the binary's embedded copy (see `serve_web_from`): for working on the front end without
rebuilding the binary. The tests proper run against what the binary serves.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("SM_BINARY", os.path.join(ROOT, "target/debug/stream-manager"))
TEMPLATES = os.path.join(ROOT, "templates/target/wasm32-wasip2/release")
GUESTS = os.path.join(ROOT, "tests/guests/target/wasm32-wasip2/release")
SHOTS = os.path.join(ROOT, "target/browser-screenshots")
CHROMIUM = os.environ.get("SM_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}

# The small stream of the end-to-end tests (tests/e2e/harness.rs, small_stream).
W, H, FPS = 320, 180, 30
SMALL_STREAM = {
    "width": W, "height": H, "targetFPS": FPS, "videoBitrateKbps": 400, "encoder": "auto",
    "preset": "ultrafast", "keyframeIntervalSec": 1.0, "audio": "silent", "destinations": [],
    "preview": {"enabled": False, "fps": 10, "width": 320, "quality": 60},
}

_procs = []  # every Popen started here, killed by kill_all()


def spawn(args, log_path, **kw):
    """Starts a process in its own process group (so kill_all reaches its children too)."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(args, stdout=kw.pop("stdout", log), stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True, **kw)
    log.close()
    _procs.append(proc)
    return proc


def kill(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def kill_all():
    while _procs:
        kill(_procs.pop())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(probe, timeout, what, interval=0.05):
    """Calls `probe()` until it returns something truthy (returned), for at most `timeout`
    seconds; then fails naming `what` and the last value or exception seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - reported below
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


def _toml(v):
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v)  # strings, numbers, booleans are TOML as JSON writes them


class Launched:
    """What a started binary shares: `proc`, `log_path` and `dir` (a temp dir), named `what`."""

    what = "process"

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the {self.what} exited ({self.proc.returncode}):\n{self.log_tail()}")
        return True

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Server(Launched):
    """`stream-manager serve` on free loopback ports, state in memory, files in a temp dir."""

    what = "server"

    def __init__(self, token=None, stream=None, args=(), config=""):
        self.token = token
        self.ports = {"http": free_port(), "ws": free_port(), "rtmp": free_port()}
        self.dir = tempfile.mkdtemp(prefix="sm-browser-")
        self.log_path = os.path.join(self.dir, "server.log")
        self.args = list(args)
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(config + "\n[stream]\n")
            for k, v in (stream or SMALL_STREAM).items():
                f.write(f"{k} = {_toml(v)}\n")
        self.proc = None

    @classmethod
    def small(cls, token=None, preview=False, args=(), config="", **stream):
        """A server of the small stream (not started: `launch()`); `stream` overrides its
        settings (e.g. `audio="mix"`), `config` is TOML put before the `[stream]` table."""
        stream = dict(SMALL_STREAM, preview=dict(SMALL_STREAM["preview"], enabled=preview), **stream)
        return cls(token=token, stream=stream, args=args, config=config)

    def launch(self):
        """Starts the binary (again, on the same ports) and waits for /api/health."""
        assert os.path.exists(BINARY), f"{BINARY} is missing: cargo build --bin stream-manager"
        cmd = [BINARY, "serve", "--config", os.path.join(self.dir, "config.toml"),
               "--http-port", str(self.ports["http"]), "--ws-port", str(self.ports["ws"]),
               "--rtmp-port", str(self.ports["rtmp"]), "--media-dir", os.path.join(self.dir, "media"),
               *self.args]
        if self.token:
            cmd += ["--api-token", self.token]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MANAGER_")}
        self.proc = spawn(cmd, self.log_path, env=env)
        poll(lambda: self.alive() and self.health(), 20, "the server's /api/health")

    def health(self):
        try:
            with urllib.request.urlopen(self.url("/api/health"), timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def kill(self):
        kill(self.proc)

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.ports['http']}{path}"

    def rtmp_play_url(self):
        return f"rtmp://127.0.0.1:{self.ports['rtmp']}/live/main"

    def api(self, method, path, body=None, raw=None, ctype="application/json"):
        """One REST call with the token; the parsed JSON answer, ApiError on a 4xx/5xx."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url(path), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def upload_template(self, path):
        with open(path, "rb") as f:
            return self.api("POST", "/api/templates", raw=f.read(), ctype="application/wasm")

    def state(self):
        return self.api("GET", "/api/stream/state")

class Preview(Launched):
    """`stream-manager template preview FILE --watch` on a free loopback port, serving a copy
    of `wasm` in a temp dir (`replace(other)` writes another build over it)."""

    what = "preview"

    def __init__(self, wasm):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sm-preview-")
        self.file = os.path.join(self.dir, "template.wasm")
        self.log_path = os.path.join(self.dir, "preview.log")
        shutil.copyfile(wasm, self.file)
        self.proc = None

    def launch(self):
        assert os.path.exists(BINARY), f"{BINARY} is missing: cargo build --bin stream-manager"
        cmd = [BINARY, "template", "preview", self.file, "--watch", "--port", str(self.port)]
        self.proc = spawn(cmd, self.log_path)
        poll(lambda: self.alive() and self.template(), 30, "the preview's /api/template")

    def template(self):
        try:
            with urllib.request.urlopen(self.url("/api/template"), timeout=2) as r:
                return json.loads(r.read())
        except (OSError, urllib.error.URLError):
            return None

    def replace(self, wasm):
        with open(wasm, "rb") as src, open(self.file, "wb") as dst:
            dst.write(src.read())

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"


def new_token(role, name):
    """`stream-manager token new`: the token and the config entry it printed."""
    out = subprocess.run([BINARY, "token", "new", "--role", role, "--name", name],
                         check=True, capture_output=True, text=True).stdout
    token = next(l.strip() for l in out.splitlines() if len(l.strip()) == 43 and " " not in l.strip())
    return token, out[out.index("[[auth.tokens]]"):]


def launch_browser(playwright):
    """Debian's Chromium, headless, with a fresh profile (Playwright makes a temporary
    user-data dir for every launch)."""
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium"
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def serve_web_from(context, web_dir):
    """Answers the console's static files from `web_dir` (keeping the server's headers, CSP
    included) instead of the binary's embedded copy; all but the page itself (`/`), which
    Chromium would then not count as loopback and so refuse it the loopback WebSocket
    (Local Network Access)."""
    web_dir = os.path.abspath(web_dir)

    def handle(route):
        from urllib.parse import urlparse
        path = urlparse(route.request.url).path
        rel = path.lstrip("/")
        file = os.path.join(web_dir, rel)
        if route.request.method != "GET" or not rel or rel.startswith("api/") or not os.path.isfile(file):
            route.fallback()
            return
        response = route.fetch()
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("etag", "content-length")}
        with open(file, "rb") as f:
            route.fulfill(status=200, headers=headers, body=f.read())

    context.route("**/*", handle)


class Player:
    """ffmpeg playing the server's RTMP output, decoding W×H RGB24 frames; keeps for each
    frame its arrival time and the mean colour of the picture's centre."""

    def __init__(self, url, log_dir):
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", url, "-map", "0:v:0",
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        self.proc = spawn(cmd, os.path.join(log_dir, "player.log"), stdout=subprocess.PIPE)
        self.frames = []  # (monotonic time, (r, g, b))
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        size = W * H * 3
        out = self.proc.stdout
        while True:
            buf = out.read(size)
            if not buf or len(buf) < size:
                return
            colour = centre_colour(buf)
            with self.lock:
                self.frames.append((time.monotonic(), colour))

    def colours(self, since=0.0):
        with self.lock:
            return [c for t, c in self.frames if t >= since]

    def wait_colour(self, want, timeout, what, since=0.0, tolerance=40):
        """Waits for a frame (arrived after `since`) whose centre is `want` ± tolerance."""
        def probe():
            return any(close(c, want, tolerance) for c in self.colours(since))
        poll(probe, timeout, f"{what}: a decoded frame of colour {want} (last frames: {self.colours(since)[-3:]})")

    def stop(self):
        kill(self.proc)


def centre_colour(frame, box=16):
    """Mean RGB of a box×box square at the centre of a W×H RGB24 frame."""
    sums = [0, 0, 0]
    for y in range(H // 2 - box // 2, H // 2 + box // 2):
        row = frame[(y * W + W // 2 - box // 2) * 3:(y * W + W // 2 + box // 2) * 3]
        for i in range(3):
            sums[i] += sum(row[i::3])
    n = box * box
    return tuple(round(s / n) for s in sums)


def close(a, b, tolerance):
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


# --- The page ---------------------------------------------------------------------------

def tid(page, testid):
    return page.get_by_test_id(testid)


def open_console(page, server, connected=True):
    """Loads the console; with `connected`, waits until its feed is up."""
    page.goto(server.url("/"))
    if connected:
        from playwright.sync_api import expect
        expect(tid(page, "connection")).to_have_attribute("data-state", "connected")


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


def solid_scene(colour):
    """A named scene's body: a W×H canvas of one colour, no layers."""
    return {"canvas": {"width": W, "height": H, "background": colour}, "layers": []}
