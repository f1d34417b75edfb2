#!/usr/bin/env bash
# Runs rfo's benchmarks in release builds and prints their figures:
#   detect        `detect` in Wasm against the same detector compiled natively
#   plugins       plugin instantiation, file landing to serving, RSS over 1,000 swaps
#   pipeline      jobs/s and time per stage through the local stack (starts and stops it)
#   api           POST /submit and GET /recent under 8 concurrent clients (starts and stops it)
# With no argument it runs all four. For the pipeline, RFO_BENCH_JOBS sets the jobs per image
# (10), RFO_BENCH_IMAGES a comma-separated list of names in examples/radiographs, and
# RFO_CONCURRENCY the worker's jobs in flight. RFO_BENCH_REQUESTS sets the API benchmark's
# requests per client (250).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

which_benchmarks=("$@")
if ((${#which_benchmarks[@]} == 0)); then
    which_benchmarks=(detect plugins pipeline api)
fi

"$RFO_ROOT/scripts/setup.sh"
"$RFO_ROOT/plugins/build.sh" --no-python
# plugins/build.sh always writes to <repo>/target/plugins, whatever CARGO_TARGET_DIR is.
export RFO_TEST_PLUGINS="$RFO_ROOT/target/plugins"

run_bench() {
    log "cargo bench -p rfo-host --bench $1"
    (cd "$RFO_ROOT" && cargo bench -p rfo-host --bench "$1")
}

stack_started=false
# Starts the local stack from release builds once, and stops it when the script exits.
start_release_stack() {
    [[ "$stack_started" == true ]] && return 0
    (cd "$RFO_ROOT" && cargo build --release --workspace)
    trap '"$RFO_ROOT/scripts/stack.sh" stop || true' EXIT
    RFO_PROFILE=release "$RFO_ROOT/scripts/stack.sh" start
    # shellcheck source=/dev/null
    source "$RFO_STATE_DIR/stack.env"
    stack_started=true
}

for name in "${which_benchmarks[@]}"; do
    case "$name" in
        detect) run_bench detect ;;
        plugins) run_bench plugins ;;
        pipeline | api)
            start_release_stack
            run_bench "$name"
            ;;
        *) die "unknown benchmark $name (expected detect, plugins, pipeline or api)" ;;
    esac
done
