#!/usr/bin/env bash
# Fuzzes the filter's parsers and decision pipeline with cargo-fuzz
# (libFuzzer), the targets in filter/fuzz/fuzz_targets:
#   verify_token        any bytes as a token into Verifier::verify (fixed test keys)
#   config_from_json    any bytes into Config::from_json (then one request decided)
#   token_extraction    an `arbitrary` request through decide() and Decision::action
#   cache_entry_decode  the verdict cache reading any (or mutated real) entry
#   remote_documents    any bytes as a fetched JWKS and as a signed revocation list
# None may panic; each also checks a few invariants (see its header).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Smoke run, for the test command: `scripts/fuzz.sh` runs every target for
# 60 s (about 6 minutes in all with a fresh build, 5 with a built one; the
# first run on a machine also installs cargo-fuzz). A longer run for a
# change to a parser, or before a release: `scripts/fuzz.sh 3600` (an hour per
# target; the corpus grows across runs, so later runs start further in).
#
# Each target starts from its committed seeds, filter/fuzz/seeds/<target>/
# (tokens signed with the test keys, the tests' reference configuration,
# header sets with the token in each source, real cache entries), plus what
# earlier runs found, filter/fuzz/corpus/<target>/ (git-ignored).
# `scripts/fuzz.sh --seeds` rewrites the seeds with filter/fuzz/examples/seeds.rs
# (from host-tests/testdata: the scenario table and the private test keys).
# The corpus only grows; to shrink it to the inputs that add coverage:
#   cd filter && cargo +nightly fuzz cmin -s none <target> fuzz/corpus/<target>
#
# Exits non-zero when a target crashes (a panic, a failed invariant, a
# timeout or running out of memory) and prints where the crashing input is:
# filter/fuzz/artifacts/<target>/crash-… To reproduce it:
#   cd filter && cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/crash-…
#
# Installs what it needs: the nightly toolchain and cargo-fuzz. Built without
# AddressSanitizer (the filter forbids unsafe code; the coverage-guided search
# and the panics are what matter here), which keeps builds and runs quicker;
# FUZZ_SANITIZER=address brings it back.
source "$(dirname "$0")/lib.sh"

FUZZ_DIR="$ROOT/filter/fuzz"
TARGETS=(verify_token config_from_json token_extraction cache_entry_decode remote_documents)
SANITIZER="${FUZZ_SANITIZER:-none}"

ensure_fuzz_tools() {
    if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        say "installing the nightly Rust toolchain (libFuzzer's instrumentation needs it)"
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
}

if [ "${1:-}" = "--seeds" ]; then
    ensure_fuzz_tools
    say "rewriting the seeds (filter/fuzz/examples/seeds.rs)"
    cd "$FUZZ_DIR"
    exec cargo +nightly run --quiet --example seeds
fi

SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -eq 0 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...] | scripts/fuzz.sh --seeds" >&2
    exit 2
fi
shift || true
[ "$#" -gt 0 ] && TARGETS=("$@")

ensure_fuzz_tools
cd "$ROOT/filter"
FUZZ=(cargo +nightly fuzz)
BUILD_FLAGS=(--fuzz-dir "$FUZZ_DIR" --sanitizer "$SANITIZER")

say "building the fuzz targets (nightly, sanitizer: $SANITIZER)"
start=$(date +%s)
"${FUZZ[@]}" build "${BUILD_FLAGS[@]}"
say "built in $(($(date +%s) - start)) s"

LOGS="$FUZZ_DIR/target/logs"
mkdir -p "$LOGS"
failed=()
summary=()
for target in "${TARGETS[@]}"; do
    corpus="$FUZZ_DIR/corpus/$target"
    seeds="$FUZZ_DIR/seeds/$target"
    artifacts="$FUZZ_DIR/artifacts/$target"
    log="$LOGS/$target.log"
    mkdir -p "$corpus" "$artifacts"
    args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1)
    [ -f "$FUZZ_DIR/dicts/$target.dict" ] && args+=(-dict="$FUZZ_DIR/dicts/$target.dict")
    say "fuzzing $target for ${SECONDS_PER_TARGET} s (log: ${log#"$ROOT"/})"
    # libFuzzer writes new inputs to the first directory only: the seeds stay as committed.
    set +e
    "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$target" "$corpus" "$seeds" -- "${args[@]}" >"$log" 2>&1
    status=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$({ grep -oE 'cov: [0-9]+' "$log" || true; } | tail -1 | cut -d' ' -f2)
    line="$target: ${runs:-?} runs, ${rate:-?} exec/s, coverage ${cov:-?} edges, corpus $(find "$corpus" -type f | wc -l) inputs"
    if [ "$status" -ne 0 ] && ! grep -q '^ *Running `' "$log"; then
        # `cargo fuzz run` rebuilds first: the sources changed since the build.
        failed+=("$target")
        line="$target: BUILD FAILED (exit $status)"
        { grep -m1 -A5 '^error' "$log" || tail -20 "$log"; } >&2
    elif [ "$status" -ne 0 ]; then
        failed+=("$target")
        line="$line: FAILED (exit $status)"
        # The panic (message, file and line) or libFuzzer's verdict
        # (timeout, out of memory, deadly signal); the whole story is in the log.
        echo "---- $target ----" >&2
        { grep -m1 -A1 'panicked at' "$log" || true; } >&2
        { grep -m1 -E '^(SUMMARY|==[0-9]+== ERROR)' "$log" || true; } >&2
        echo "---- full log: $log ----" >&2
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$crash" ]; then
            crash="$(cd "$(dirname "$crash")" && pwd)/$(basename "$crash")"
            say "$target crashed; the input is $crash"
            say "reproduce: cd filter && ${FUZZ[*]} run ${BUILD_FLAGS[*]} $target $crash"
        fi
    fi
    summary+=("$line")
    say "$line"
done

say "summary (${SECONDS_PER_TARGET} s per target)"
printf '    %s\n' "${summary[@]}" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    say "fuzzing failed in: ${failed[*]}"
    exit 1
fi
say "no crash"
