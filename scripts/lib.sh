# Shared helpers for the scripts; source it, don't run it.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

say() { printf '==> %s\n' "$*" >&2; }

# The wasm target is a rustup component: install it once per toolchain.
ensure_wasm_target() {
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
        say "installing the wasm32-wasip1 Rust target"
        rustup target add wasm32-wasip1
    fi
}
