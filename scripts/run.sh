#!/usr/bin/env bash
# The gateway demo: builds the module, installs Envoy into .venv if needed,
# and runs license-gate in Envoy on 127.0.0.1:10000 in front of an echo
# upstream, with its key and licenses made by licensectl (built here). Prints
# curl lines to try, each with its `licensectl check` line; Ctrl-C stops everything.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/build.sh"
cargo build --locked --release -p licensectl
ensure_venv
exec "$VENV/bin/python" "$ROOT/envoy/demo.py" --licensectl "$ROOT/target/release/licensectl" "$@"
