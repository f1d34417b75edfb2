# shellcheck shell=bash
# Shared helpers for the scripts in this folder, to be sourced rather than run.
#
# Sets RFO_ROOT (the repository), RFO_STATE_DIR (default $RFO_ROOT/.rfo) and the folders for logs
# and pid files under it.

RFO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RFO_STATE_DIR="${RFO_STATE_DIR:-$RFO_ROOT/.rfo}"
mkdir -p "$RFO_STATE_DIR"
RFO_STATE_DIR="$(cd "$RFO_STATE_DIR" && pwd)"
RFO_LOG_DIR="$RFO_STATE_DIR/logs"
RFO_RUN_DIR="$RFO_STATE_DIR/run"
mkdir -p "$RFO_LOG_DIR" "$RFO_RUN_DIR"
export RFO_ROOT RFO_STATE_DIR

# Keeps every AWS SDK started from these scripts off the EC2 instance metadata address.
export AWS_EC2_METADATA_DISABLED=true

# Prints a progress line, prefixed with the calling script's name.
log() {
    printf '[%s] %s\n' "$(basename "$0")" "$*" >&2
}

die() {
    printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

# Prints a TCP port on 127.0.0.1 that was free a moment ago. Another process can still take it
# before the caller binds it, so callers that can retry should.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Succeeds if nothing listens on 127.0.0.1:PORT right now.
port_is_free() {
    python3 -c 'import socket, sys
s = socket.socket()
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# Prints a port for a server: OVERRIDE if it is not empty, else the port recorded in FILE if it
# is still free, else a free one. Reusing the last port keeps clients' settings valid.
choose_port() {
    local override="$1" file="$2" previous
    if [[ -n "$override" ]]; then
        printf '%s\n' "$override"
        return 0
    fi
    previous="$(cat "$file" 2>/dev/null || true)"
    if [[ -n "$previous" ]] && port_is_free "$previous"; then
        printf '%s\n' "$previous"
    else
        free_port
    fi
}

# Succeeds if the pid in FILE belongs to a live process whose command line contains NAME, so a
# pid reused by an unrelated process is never signalled.
pid_alive() {
    local file="$1" name="$2" pid
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"
}

# Succeeds if the pid in FILE is a live process. Unlike pid_alive this does not check the command
# line, so it also succeeds in the moment after `cmd &` when the child has not yet run exec and
# still shows the parent's command line. Use it only right after starting the process.
pid_started() {
    local file="$1" pid
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Sends SIGTERM to the process recorded in FILE (if it is still NAME), waits up to SECONDS for
# it to exit, then sends SIGKILL. Removes FILE.
stop_pid_file() {
    local file="$1" name="$2" seconds="${3:-10}" pid i
    if ! pid_alive "$file" "$name"; then
        rm -f "$file"
        return 0
    fi
    pid="$(<"$file")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
        pid_alive "$file" "$name" || break
        sleep 0.1
    done
    if pid_alive "$file" "$name"; then
        log "$name (pid $pid) did not stop within ${seconds}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

# Prints the folder of compiled rfo binaries: $CARGO_TARGET_DIR (or target/) plus $RFO_PROFILE
# (default debug).
binary_dir() {
    printf '%s/%s\n' "${CARGO_TARGET_DIR:-$RFO_ROOT/target}" "${RFO_PROFILE:-debug}"
}

# Prints the folder with initdb, pg_ctl and psql: that of the initdb on the PATH, else the newest
# /usr/lib/postgresql/*/bin (where Debian keeps them, one folder per major version). Fails if
# neither exists.
find_postgres_bin() {
    local initdb dir
    if initdb="$(command -v initdb)"; then
        dirname "$(readlink -f "$initdb")"
        return 0
    fi
    dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [[ -x "$dir/initdb" ]] || return 1
    printf '%s\n' "$dir"
}

# Runs a command as root: directly when already root, else through sudo.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root, and sudo is not installed: run this script as root"
    fi
}
