#!/usr/bin/env bash
# Side-by-side benchmark in one Envoy: no filter, an empty Wasm filter,
# jwt_authn (with and without cache) and license-gate (cache hit and miss),
# for RS256, ES256 and EdDSA. Options go to envoy/bench/bench.py (--help).
# `scripts/bench.sh --coldstart` measures cold start and memory instead.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (Debian package)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
"$ROOT/scripts/build.sh"
cargo build --release --locked --target wasm32-wasip1 -p bench-empty-filter
ensure_venv
if [ "${1:-}" = "--coldstart" ]; then
    # Configuration pushes, process start, first requests, memory (coldstart.py --help).
    shift
    exec "$VENV/bin/python" "$ROOT/envoy/bench/coldstart.py" "$@"
fi
exec "$VENV/bin/python" "$ROOT/envoy/bench/bench.py" "$@"
