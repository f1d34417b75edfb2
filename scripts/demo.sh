#!/usr/bin/env bash
# Builds rfo, starts it on the local stack and sends the sample radiographs in
# examples/radiographs through it, printing one line per image and saving the overlays.
#
#   scripts/demo.sh                  run the demo, then stop everything it started
#   scripts/demo.sh --keep-running   leave the stack, rfo-api and the worker running afterwards
#   scripts/demo.sh --plugin NAME    request plugin NAME for every image
#
# Overlays are written to $RFO_STATE_DIR/overlays and logs to $RFO_STATE_DIR/logs. Without
# --keep-running, only what this script started is stopped: a stack, rfo-api or worker that was
# already running stays up.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep_running=false
plugin_args=()
while (($# > 0)); do
    case "$1" in
        --keep-running) keep_running=true ;;
        --plugin)
            [[ $# -ge 2 ]] || die "--plugin needs a plugin name"
            plugin_args=(--plugin "$2")
            shift
            ;;
        -h | --help)
            sed -n '2,10s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *) die "unknown option $1 (expected --keep-running or --plugin NAME)" ;;
    esac
    shift
done

# Seconds to wait for GET /health to return 200.
HEALTH_TIMEOUT=60
# Seconds to wait for a new worker to load its plugins and join the consumer group. A debug
# build compiles every plugin at start, and the mock broker delays a new group's first join.
WORKER_TIMEOUT=180
OVERLAY_DIR="$RFO_STATE_DIR/overlays"

started_stack=false
started_api=false
started_worker=false
# Line count of the worker log before this script started the worker, so only its new lines
# are searched.
worker_log_start=0

cleanup() {
    local status=$?
    if [[ "$keep_running" == false ]]; then
        [[ "$started_worker" == true ]] && stop_pid_file "$RFO_RUN_DIR/worker.pid" "rfo worker"
        [[ "$started_api" == true ]] && stop_pid_file "$RFO_RUN_DIR/api.pid" rfo-api
        [[ "$started_stack" == true ]] && { "$RFO_ROOT/scripts/stack.sh" stop || true; }
    fi
    exit "$status"
}

# Starts one rfo program in the background with stack.env loaded, logging to logs/NAME.log.
# MATCH is the text its command line contains, used to recognise it later by its pid. Fails
# (returns 1) without starting anything if that program is already running.
start_service() {
    local name="$1" match="$2"
    shift 2
    local pid_file="$RFO_RUN_DIR/$name.pid" log_file="$RFO_LOG_DIR/$name.log"
    if pid_alive "$pid_file" "$match"; then
        log "$name already running (pid $(<"$pid_file")); using it"
        return 1
    fi
    log "starting $* (log $log_file)"
    (
        # shellcheck source=/dev/null
        source "$RFO_STATE_DIR/stack.env"
        export RUST_LOG="${RUST_LOG:-info}"
        exec nohup "$@" >>"$log_file" 2>&1 </dev/null
    ) &
    echo $! >"$pid_file"
}

wait_for_health() {
    local url="$1" i
    for ((i = 0; i < HEALTH_TIMEOUT * 5; i++)); do
        if curl -fsS --max-time 2 "$url" >/dev/null 2>&1; then
            return 0
        fi
        pid_started "$RFO_RUN_DIR/api.pid" ||
            die "rfo-api exited during start; see $RFO_LOG_DIR/api.log"
        pid_started "$RFO_RUN_DIR/worker.pid" ||
            die "the rfo worker exited during start; see $RFO_LOG_DIR/worker.log"
        sleep 0.2
    done
    die "GET $url did not return 200 within ${HEALTH_TIMEOUT}s; see $RFO_LOG_DIR/api.log"
}

# Waits until the worker this script started has been assigned partitions, so the demo's
# timings measure jobs and not the worker's start.
# NOTE: this matches the worker's "partitions assigned" log message. If that wording changes,
# the demo still runs after WORKER_TIMEOUT, with the start-up time inside the first jobs' times.
wait_for_worker() {
    local log_file="$RFO_LOG_DIR/worker.log" i
    log "waiting for the worker to load its plugins and join the consumer group"
    for ((i = 0; i < WORKER_TIMEOUT * 5; i++)); do
        if tail -n +"$((worker_log_start + 1))" "$log_file" | grep -q 'partitions assigned'; then
            return 0
        fi
        pid_started "$RFO_RUN_DIR/worker.pid" ||
            die "the rfo worker exited during start; see $log_file"
        sleep 0.2
    done
    log "warning: no 'partitions assigned' in $log_file within ${WORKER_TIMEOUT}s; going on"
}

"$RFO_ROOT/scripts/setup.sh"

log "cargo build --workspace"
(cd "$RFO_ROOT" && cargo build --workspace)

[[ -x "$RFO_ROOT/plugins/build.sh" ]] || die "plugins/build.sh not found or not executable"
log "plugins/build.sh"
"$RFO_ROOT/plugins/build.sh"

trap cleanup EXIT
if ! "$RFO_ROOT/scripts/stack.sh" status >/dev/null 2>&1; then
    started_stack=true
fi
"$RFO_ROOT/scripts/stack.sh" start
# shellcheck source=/dev/null
source "$RFO_STATE_DIR/stack.env"

bin="$(binary_dir)"
start_service api rfo-api "$bin/rfo-api" && started_api=true
worker_log_start=0
if [[ -f "$RFO_LOG_DIR/worker.log" ]]; then
    worker_log_start="$(wc -l <"$RFO_LOG_DIR/worker.log")"
fi
start_service worker "rfo worker" "$bin/rfo" worker && started_worker=true
wait_for_health "$RFO_API_URL/health"
log "rfo-api healthy at $RFO_API_URL"
[[ "$started_worker" == true ]] && wait_for_worker

log "sending examples/radiographs through rfo"
"$bin/rfo-devstack" demo --api "$RFO_API_URL" --input "$RFO_ROOT/examples/radiographs" \
    --out "$OVERLAY_DIR" "${plugin_args[@]}"
log "overlays saved in $OVERLAY_DIR"

if [[ "$keep_running" == true ]]; then
    cat >&2 <<EOF

rfo is still running:
  curl -s '$RFO_API_URL/recent?n=10'
  curl -s '$RFO_API_URL/health'
  source $RFO_STATE_DIR/stack.env   # variables for cargo test or another worker
  scripts/stack.sh stop             # stop rfo-api, the worker and the stack
EOF
fi
