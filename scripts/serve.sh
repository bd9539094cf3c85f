#!/usr/bin/env bash
# Builds and runs stream-manager with embedded defaults (in-memory state, embedded RTMP
# server on :1935), streaming at once. Extra arguments go to `stream-manager serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --bin stream-manager
# The bundled templates (lower-third, clock, scoreboard, ticker, slate) and asset loaders
# (plugins/svg, plugins/gif: same workspace), installed at start.
(cd templates && cargo build --release --target wasm32-wasip2)
echo "stream-manager: starting; watch with  ffplay rtmp://127.0.0.1:1935/live/main" >&2
exec ./target/release/stream-manager serve --autostart \
  --templates-dir templates/target/wasm32-wasip2/release \
  --cache-dir target/template-cache "$@"
