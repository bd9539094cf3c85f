#!/usr/bin/env bash
# Runs every check and the whole test suite: formatting, clippy (-D warnings), docs, unit
# tests and the end-to-end tests, which start their own redis-server, RTMP peers and decoders,
# then the API fuzzed with Schemathesis (scripts/fuzz.sh) and the admin console's browser
# tests (Chromium driven by Playwright, tests/browser).
#
# Two cores are kept busy: the WebAssembly guests (their own workspaces) are linted, built
# and tested in the background while the host is linted, documented and built, and the
# fuzzing runs beside the browser tests. Each step prints when it starts, in seconds since
# the script did.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s (at %d s)\n' "$*" "$SECONDS"; }

step setup
source scripts/setup.sh
step rustfmt
cargo fmt --all -- --check

# WebAssembly guests: the bundled templates and loaders, the SDK, and the test guests (the
# end-to-end tests load them). The SDK's tests share the templates' target directory: same
# SDK, same dependencies. Output in target/guests.log, shown when they are done.
mkdir -p target
guests() {
  set -euo pipefail
  (cd templates && cargo fmt --all -- --check && cargo clippy --all-targets --quiet -- -D warnings \
    && cargo build --release --target wasm32-wasip2 && cargo test --quiet)
  (cd plugins/sdk && CARGO_TARGET_DIR=../../templates/target cargo test --quiet)
  (cd tests/guests && cargo fmt --all -- --check && cargo build --release --target wasm32-wasip2)
}
step "guests (in the background)"
guests >target/guests.log 2>&1 &
guests_pid=$!

step clippy
cargo clippy --workspace --all-targets -- -D warnings
step rustdoc
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
have_nextest=false
if cargo nextest --version >/dev/null 2>&1; then have_nextest=true; fi
step "build the tests"
if $have_nextest; then
  cargo nextest run --workspace --no-run
else
  cargo test --workspace --no-run
fi
step "wait for the guests"
guests_status=0
wait "$guests_pid" || guests_status=$?
cat target/guests.log
if [ "$guests_status" -ne 0 ]; then
  echo "the guests failed (exit $guests_status)" >&2
  exit "$guests_status"
fi

step "unit and end-to-end tests"
if $have_nextest; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

# The API fuzzed against its own OpenAPI document (Schemathesis, every check, a fixed seed
# and a bounded time), beside the console in a real browser, both against the binary the
# end-to-end tests built (target/debug/stream-manager; a plain `cargo build` here would
# rebuild it without the test build's dev-dependency features). Each starts its own server.
step "fuzzing (in the background) and browser tests"
bash scripts/fuzz.sh 90 >target/fuzz.log 2>&1 &
fuzz_pid=$!
browser_status=0
target/browser-venv/bin/python -m pytest -q tests/browser || browser_status=$?
fuzz_status=0
wait "$fuzz_pid" || fuzz_status=$?
step "fuzzing output"
cat target/fuzz.log
if [ "$browser_status" -ne 0 ] || [ "$fuzz_status" -ne 0 ]; then
  echo "browser tests exit $browser_status, fuzzing exit $fuzz_status" >&2
  exit 1
fi
step "all passed"
