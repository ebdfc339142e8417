#!/usr/bin/env bash
# Builds the filter module: dist/license_gate.wasm.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_wasm_target
say "building license_gate.wasm (release, wasm32-wasip1)"
cargo build --release --locked --target wasm32-wasip1 -p license-gate
mkdir -p dist
cp target/wasm32-wasip1/release/license_gate.wasm dist/license_gate.wasm
say "dist/license_gate.wasm: $(wc -c < dist/license_gate.wasm) bytes"
