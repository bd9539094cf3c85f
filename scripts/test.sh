#!/usr/bin/env bash
# Runs every check and the whole test suite: formatting, clippy (-D warnings), docs, unit
# tests and the end-to-end tests, which start their own redis-server, RTMP peers and decoders,
# then the API fuzzed with Schemathesis (scripts/fuzz.sh) and the admin console's browser
# tests (Chromium driven by Playwright, tests/browser).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# WebAssembly guests: the bundled templates and the test guests (the tests load both).
(cd templates && cargo fmt --all -- --check && cargo clippy --all-targets --quiet -- -D warnings \
  && cargo build --release --target wasm32-wasip2 && cargo test --quiet)
# The SDK's tests share the templates' target directory: same SDK, same dependencies.
(cd plugins/sdk && CARGO_TARGET_DIR=../../templates/target cargo test --quiet)
(cd tests/guests && cargo build --release --target wasm32-wasip2)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# The API fuzzed against its own OpenAPI document (Schemathesis, every check, a fixed seed
# and a bounded time), against the binary the end-to-end tests built.
bash scripts/fuzz.sh 90
# The console in a real browser, against the binary the end-to-end tests built
# (target/debug/stream-manager; a plain `cargo build` here would rebuild it without the
# test build's dev-dependency features).
target/browser-venv/bin/python -m pytest -q tests/browser
