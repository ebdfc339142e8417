#!/usr/bin/env bash
# Builds the filter module: dist/license_gate.wasm.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_wasm_target
say "building license_gate.wasm (release, wasm32-wasip1)"
cargo build --release --locked --target wasm32-wasip1 -p license-gate
mkdir -p dist
ensure_wasm_opt
# -Oz after LLVM's -O3: binaryen's size passes (merging similar functions,
# less inlining of its own) cost no Wasm instructions per request here, and
# --low-memory-unused lets it fold constant offsets into loads and stores
# (fewer instructions as well). It assumes addresses below 1024 are never
# touched: rustc lays the 1 MiB stack first, so they would be the last 1 KiB
# of a stack about to overflow. --converge repeats the passes while the
# module still shrinks. 842,426 -> 822,078 bytes (issue 13, BENCHMARKS.md).
wasm-opt "${WASM_OPT_FEATURES[@]}" -Oz --low-memory-unused --converge \
    target/wasm32-wasip1/release/license_gate.wasm -o dist/license_gate.wasm
say "dist/license_gate.wasm: $(wc -c < dist/license_gate.wasm) bytes"
