#!/usr/bin/env bash
# Builds rfo and its plugins, starts the local stack (PostgreSQL, Kafka mock cluster, S3 server)
# and runs every test against it: `cargo test --workspace`, then `cargo test` in plugins/. Stops
# the stack on exit unless it was running before, and exits non-zero if either test run failed.
#
# Tests read the stack from the environment (DB_HOST, KAFKA_BOOTSTRAP, S3_ENDPOINT, ... as in
# $RFO_STATE_DIR/stack.env) and RFO_TEST_PLUGINS, the folder of built plugins. Each test makes its
# own topics, buckets or databases, so one stack serves them all. Extra arguments go to the first
# `cargo test`, for example a test name filter (`scripts/test.sh submit`) or `--exclude rfo-host`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$RFO_ROOT/scripts/setup.sh"

[[ -x "$RFO_ROOT/plugins/build.sh" ]] || die "plugins/build.sh not found or not executable"
log "plugins/build.sh"
"$RFO_ROOT/plugins/build.sh"

log "cargo build --workspace"
(cd "$RFO_ROOT" && cargo build --workspace)

# A stack that was already running is reused and left running. One started here is stopped.
if ! "$RFO_ROOT/scripts/stack.sh" status >/dev/null 2>&1; then
    trap '"$RFO_ROOT/scripts/stack.sh" stop || true' EXIT
fi
"$RFO_ROOT/scripts/stack.sh" start
# shellcheck source=/dev/null
source "$RFO_STATE_DIR/stack.env"
# plugins/build.sh writes here whatever CARGO_TARGET_DIR is.
export RFO_TEST_PLUGINS="$RFO_ROOT/target/plugins"

workspace_status=0
log "cargo test --workspace $*"
(cd "$RFO_ROOT" && cargo test --workspace --no-fail-fast "$@") || workspace_status=$?

plugins_status=0
log "cargo test in plugins/"
(cd "$RFO_ROOT/plugins" && cargo test --no-fail-fast) || plugins_status=$?

python_status=0
log "python3 -m unittest in plugins/python/exposure/"
(cd "$RFO_ROOT/plugins/python/exposure" && python3 -m unittest -v test_app) || python_status=$?

log "workspace tests exited with $workspace_status, plugin tests with $plugins_status, Python plugin tests with $python_status"
((workspace_status == 0 && plugins_status == 0 && python_status == 0))
