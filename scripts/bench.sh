#!/usr/bin/env bash
# Runs rfo's benchmarks in release builds and prints their figures:
#   detect        `detect` in Wasm against the same detector compiled natively
#   plugins       plugin instantiation, file landing to serving, RSS over 1,000 swaps
#   pipeline      jobs/s and time per stage through the local stack (starts and stops it)
# With no argument it runs all three. For the pipeline, RFO_BENCH_JOBS sets the jobs per image
# (10), RFO_BENCH_IMAGES a comma-separated list of names in examples/radiographs, and
# RFO_CONCURRENCY the worker's jobs in flight.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

which_benchmarks=("$@")
if ((${#which_benchmarks[@]} == 0)); then
    which_benchmarks=(detect plugins pipeline)
fi

"$RFO_ROOT/scripts/setup.sh"
"$RFO_ROOT/plugins/build.sh" --no-python
# plugins/build.sh always writes to <repo>/target/plugins, whatever CARGO_TARGET_DIR is.
export RFO_TEST_PLUGINS="$RFO_ROOT/target/plugins"

run_bench() {
    log "cargo bench -p rfo-host --bench $1"
    (cd "$RFO_ROOT" && cargo bench -p rfo-host --bench "$1")
}

for name in "${which_benchmarks[@]}"; do
    case "$name" in
        detect) run_bench detect ;;
        plugins) run_bench plugins ;;
        pipeline)
            (cd "$RFO_ROOT" && cargo build --release --workspace)
            trap '"$RFO_ROOT/scripts/stack.sh" stop || true' EXIT
            RFO_PROFILE=release "$RFO_ROOT/scripts/stack.sh" start
            # shellcheck source=/dev/null
            source "$RFO_STATE_DIR/stack.env"
            run_bench pipeline
            ;;
        *) die "unknown benchmark $name (expected detect, plugins or pipeline)" ;;
    esac
done
