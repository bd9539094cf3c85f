#!/usr/bin/env bash
# Fuzzes the REST API with Schemathesis against its own OpenAPI document, every check on
# (tests/fuzz/schemathesis.toml): a server (built by the test build) on free loopback ports
# with a token, streaming a small picture; afterwards the stream must still be running.
#   scripts/fuzz.sh [SECONDS]    (default 120; the report goes to target/fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/browser-venv/bin/st ] || source scripts/setup.sh
budget="${1:-120}"
bin=target/debug/stream-manager
[ -x "$bin" ] || cargo build --bin stream-manager
out=target/fuzz
rm -rf "$out" && mkdir -p "$out"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port) ws=$(port) rtmp=$(port)
token="fuzz-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# Schemathesis presents wrong tokens on purpose: the per-address limit would lock it out.
"$bin" serve --http-port "$http" --ws-port "$ws" --rtmp-port "$rtmp" --api-token "$token" \
  --auth-failure-limit 1000000 --media-dir "$out/media" --recordings-dir "$out/recordings" \
  >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
api() { curl -sf -H "Authorization: Bearer $token" "$@"; }
for _ in $(seq 100); do api "http://127.0.0.1:$http/api/health" >/dev/null && break; sleep 0.1; done
api -X PATCH -H 'content-type: application/json' -d '{"width":320,"height":180}' \
  "http://127.0.0.1:$http/api/stream/config" >/dev/null
api -X POST "http://127.0.0.1:$http/api/stream/start" >/dev/null
status=0
(cd tests/fuzz && SCHEMATHESIS_HOOKS=hooks "../../target/browser-venv/bin/st" run "http://127.0.0.1:$http/api/openapi.json" \
  -H "Authorization: Bearer $token" --max-time "$budget" --workers 2 --seed 1 \
  --report ndjson --report-dir "../../$out") || status=$?
# The server answers, and a stream started now, with a config that can run (the fuzzer
# may have named an encoder this machine lacks), runs: the fuzzer stops and starts it too.
api -X PATCH -H 'content-type: application/json' \
  -d '{"width":320,"height":180,"targetFPS":30,"encoder":"auto","destinations":[]}' \
  "http://127.0.0.1:$http/api/stream/config" >/dev/null
api -X POST "http://127.0.0.1:$http/api/stream/start" >/dev/null 2>&1 || true
before=$(api "http://127.0.0.1:$http/api/stream/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["frameCount"])')
sleep 2
after=$(api "http://127.0.0.1:$http/api/stream/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["frameCount"])')
if [ "$after" -le "$before" ]; then
  echo "fuzz: the stream stopped advancing ($before -> $after frames)" >&2
  status=1
fi
if grep -q 'panicked' "$out/server.log"; then
  echo "fuzz: the server panicked (see $out/server.log)" >&2
  status=1
fi
exit $status
