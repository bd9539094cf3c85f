#!/usr/bin/env bash
# Installs what stream-manager needs on Debian/Ubuntu, idempotently: FFmpeg development
# libraries, clang (bindgen), pkg-config, the ffmpeg CLI, redis-server, nginx with the RTMP
# module and GStreamer's RTSP server (test peers), fonts, the wasm32-wasip2 Rust target, and
# Chromium with a Python venv (target/browser-venv: pinned Playwright and pytest) for the
# console's browser tests. Sourced by serve.sh and test.sh; safe to run again.
set -euo pipefail

packages=(
  pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev
  ffmpeg redis-server nginx libnginx-mod-rtmp socat openssl
  # The RTSP camera of the tests: GStreamer's RTSP server, run with the system python3.
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad
  # The console's browser tests: Debian's Chromium, driven by Playwright from a venv.
  chromium python3-venv
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Rust is missing; install it with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2 >&2
fi

# The browser tests' venv: Playwright drives Debian's /usr/bin/chromium (no browser download;
# never run `playwright install`); Schemathesis fuzzes the API (scripts/fuzz.sh). Made with
# Debian's python3; rebuilt only when a pin moves.
browser_venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/browser-venv"
browser_pins=(playwright==1.65.2 pytest==9.2.0 schemathesis==4.32.5)
if ! "$browser_venv/bin/python" - "${browser_pins[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
then
  echo "setup: making $browser_venv (${browser_pins[*]})" >&2
  /usr/bin/python3 -m venv "$browser_venv"
  "$browser_venv/bin/pip" install -q --disable-pip-version-check "${browser_pins[@]}" >&2
fi
