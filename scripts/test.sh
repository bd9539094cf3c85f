#!/usr/bin/env bash
# Runs every check and the whole test suite: formatting, clippy (-D warnings), docs, unit
# tests and the end-to-end tests, which start their own redis-server, RTMP peers and decoders,
# then the API fuzzed with Schemathesis (scripts/fuzz.sh) and the admin console's browser
# tests (Chromium driven by Playwright, tests/browser).
#
# Two cores are kept busy. While the host's tests build, the WebAssembly guests the
# end-to-end tests load are built beside them. The end-to-end tests mostly wait on real time
# (a stream at 30 fps) and use about a third of the machine, so the lints, the docs and the
# guests' own tests run beside them at the lowest CPU priority (nice 19: a test's render
# clock always comes first). The lints share the tests' target directory, and so the build
# scripts and proc macros the test build made: the tests run from the binaries listed when
# they were built (nextest's reuse-build), so cargo's lock on that directory is never wanted
# by both. The fuzzing runs beside the browser tests. Each step prints when it starts, in
# seconds since the script did; a failing check fails the run at the end, after every step
# has run.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s (at %d s)\n' "$*" "$SECONDS"; }

step setup
source scripts/setup.sh
step rustfmt
cargo fmt --all -- --check
(cd templates && cargo fmt --all -- --check)
(cd tests/guests && cargo fmt --all -- --check)

# The WebAssembly guests: the bundled templates and loaders, and the test guests (hostile
# and probe templates). Output in target/guests.log, shown when they are done.
mkdir -p target
guests() {
  set -euo pipefail
  (cd templates && cargo build --release --target wasm32-wasip2)
  (cd tests/guests && cargo build --release --target wasm32-wasip2)
}
step "build the guests (in the background)"
guests >target/guests.log 2>&1 &
guests_pid=$!

have_nextest=false
if cargo nextest --version >/dev/null 2>&1; then have_nextest=true; fi
step "build the tests"
if $have_nextest; then
  # Built and listed; the run below takes the binaries from these lists, without cargo.
  cargo nextest list --workspace --list-type binaries-only --message-format json \
    >target/nextest-binaries.json
  cargo metadata --format-version 1 --all-features --no-deps >target/cargo-metadata.json
else
  cargo test --workspace --no-run
fi
step "wait for the guests"
guests_status=0
wait "$guests_pid" || guests_status=$?
cat target/guests.log
if [ "$guests_status" -ne 0 ]; then
  echo "building the guests failed (exit $guests_status)" >&2
  exit "$guests_status"
fi

# Clippy and rustdoc on the host (in its target directory), clippy and the unit tests of the
# templates and the SDK (same SDK, same dependencies: one target directory of their own).
# Output in target/checks.log.
checks() {
  set -euo pipefail
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
  export CARGO_TARGET_DIR="$PWD/target/checks"
  (cd templates && cargo clippy --all-targets --quiet -- -D warnings && cargo test --quiet)
  (cd plugins/sdk && cargo test --quiet)
}
checks_status=0
tests_status=0
if $have_nextest; then
  step "clippy, rustdoc and the guests' unit tests (in the background, nice 19)"
  (renice -n 19 -p "$BASHPID" >/dev/null && checks) >target/checks.log 2>&1 &
  checks_pid=$!
  step "unit and end-to-end tests"
  cargo nextest run --binaries-metadata target/nextest-binaries.json \
    --cargo-metadata target/cargo-metadata.json --no-fail-fast || tests_status=$?
else
  # cargo test builds as it runs: the checks go first, or each would wait on the other's lock.
  step "clippy, rustdoc and the guests' unit tests"
  checks >target/checks.log 2>&1 || checks_status=$?
  step "unit and end-to-end tests"
  cargo test --workspace --no-fail-fast || tests_status=$?
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

step "wait for clippy, rustdoc and the guests' unit tests"
if $have_nextest; then wait "$checks_pid" || checks_status=$?; fi
cat target/checks.log

if [ "$tests_status" -ne 0 ] || [ "$browser_status" -ne 0 ] || [ "$fuzz_status" -ne 0 ] \
  || [ "$checks_status" -ne 0 ]; then
  echo "tests exit $tests_status, browser tests exit $browser_status," \
    "fuzzing exit $fuzz_status, checks exit $checks_status" >&2
  exit 1
fi
step "all passed"
