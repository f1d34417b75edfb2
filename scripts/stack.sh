#!/usr/bin/env bash
# Starts, stops or reports the local stand-ins for rfo's servers on loopback: PostgreSQL (for
# RDS, through scripts/postgres.sh) and `rfo-devstack serve` (a Kafka mock cluster for MSK and an
# S3-protocol server for S3).
#
#   scripts/stack.sh start    start both and write $RFO_STATE_DIR/stack.env
#   scripts/stack.sh stop     stop rfo-api and the rfo worker if scripts/demo.sh started them,
#                             then rfo-devstack, then PostgreSQL
#   scripts/stack.sh status   print what runs
#
# Builds nothing: run `cargo build --workspace` first (binaries are taken from
# ${CARGO_TARGET_DIR:-target}/${RFO_PROFILE:-debug}). `source $RFO_STATE_DIR/stack.env` gives a
# shell every variable rfo-api, the rfo worker and the tests read. Kafka topics and the Kafka
# offsets live in memory only and are lost on stop; S3 objects stay in $RFO_STATE_DIR/s3.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEVSTACK_PID="$RFO_RUN_DIR/devstack.pid"
DEVSTACK_LOG="$RFO_LOG_DIR/devstack.log"
DEVSTACK_ENV="$RFO_STATE_DIR/devstack.env"
STACK_ENV="$RFO_STATE_DIR/stack.env"
PLUGIN_DIR="$RFO_STATE_DIR/plugins"
# API port of the last start, kept after stop so the API keeps its address across restarts.
API_PORT_FILE="$RFO_STATE_DIR/api.port"
# Seconds to wait for rfo-devstack to write its env file.
READY_TIMEOUT=30

start_devstack() {
    local binary
    binary="$(binary_dir)/rfo-devstack"
    if pid_alive "$DEVSTACK_PID" rfo-devstack && [[ -f "$DEVSTACK_ENV" ]]; then
        log "rfo-devstack already running (pid $(<"$DEVSTACK_PID"))"
        return 0
    fi
    [[ -x "$binary" ]] || die "$binary not found: run 'cargo build --workspace' first"

    rm -f "$DEVSTACK_ENV"
    log "starting rfo-devstack serve (log $DEVSTACK_LOG)"
    nohup "$binary" serve --state-dir "$RFO_STATE_DIR" >>"$DEVSTACK_LOG" 2>&1 </dev/null &
    echo $! >"$DEVSTACK_PID"

    local i
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
        [[ -f "$DEVSTACK_ENV" ]] && return 0
        if ! pid_started "$DEVSTACK_PID"; then
            tail -n 20 "$DEVSTACK_LOG" >&2 || true
            die "rfo-devstack exited during start; see $DEVSTACK_LOG"
        fi
        sleep 0.1
    done
    die "rfo-devstack did not write $DEVSTACK_ENV within ${READY_TIMEOUT}s; see $DEVSTACK_LOG"
}

# Copies the top-level plugin components (not the test fixtures under testing/) into the
# folder the worker watches. plugins/build.sh writes them to target/plugins whatever
# CARGO_TARGET_DIR is.
copy_plugins() {
    local source_dir="$RFO_ROOT/target/plugins" copied=0 plugin
    mkdir -p "$PLUGIN_DIR"
    for plugin in "$source_dir"/*.wasm; do
        [[ -f "$plugin" ]] || continue
        cp -f "$plugin" "$PLUGIN_DIR/"
        copied=$((copied + 1))
    done
    if ((copied == 0)); then
        log "warning: no plugins in $source_dir: run plugins/build.sh; the worker will have none"
    else
        log "copied $copied plugin(s) from $source_dir to $PLUGIN_DIR"
    fi
}

write_stack_env() {
    local api_port
    api_port="$(choose_port "${RFO_API_PORT:-}" "$API_PORT_FILE")"
    printf '%s\n' "$api_port" >"$API_PORT_FILE"
    {
        echo "# Written by scripts/stack.sh start: PostgreSQL, Kafka and S3 on loopback."
        grep -v '^#' "$RFO_STATE_DIR/postgres.env"
        grep -v '^#' "$DEVSTACK_ENV"
        echo "export API_HOST=127.0.0.1"
        echo "export API_PORT=$api_port"
        echo "export RFO_API_URL=http://127.0.0.1:$api_port"
        echo "export RFO_PLUGIN_DIR=$PLUGIN_DIR"
        echo "export RFO_COMPILE_CACHE_DIR=$RFO_STATE_DIR/compile-cache"
    } >"$STACK_ENV.tmp"
    mv "$STACK_ENV.tmp" "$STACK_ENV"
}

cmd_start() {
    local started=$SECONDS
    "$RFO_ROOT/scripts/postgres.sh" start
    start_devstack
    copy_plugins
    write_stack_env
    log "stack ready in $((SECONDS - started))s; load it with: source $STACK_ENV"
}

cmd_stop() {
    stop_pid_file "$RFO_RUN_DIR/api.pid" rfo-api
    stop_pid_file "$RFO_RUN_DIR/worker.pid" "rfo worker"
    stop_pid_file "$DEVSTACK_PID" rfo-devstack
    rm -f "$STACK_ENV" "$DEVSTACK_ENV"
    "$RFO_ROOT/scripts/postgres.sh" stop
}

cmd_status() {
    local status=0
    "$RFO_ROOT/scripts/postgres.sh" status || status=3
    if pid_alive "$DEVSTACK_PID" rfo-devstack; then
        echo "rfo-devstack: running (pid $(<"$DEVSTACK_PID")), env $DEVSTACK_ENV"
        grep -E '^export (KAFKA_BOOTSTRAP|S3_ENDPOINT)=' "$DEVSTACK_ENV" | sed 's/^export /  /' || true
    else
        echo "rfo-devstack: stopped"
        status=3
    fi
    local name file
    for name in api worker; do
        file="$RFO_RUN_DIR/$name.pid"
        [[ -f "$file" ]] || continue
        if pid_alive "$file" rfo; then
            echo "rfo $name: running (pid $(<"$file")), log $RFO_LOG_DIR/$name.log"
        else
            echo "rfo $name: stopped"
        fi
    done
    return "$status"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
