#!/usr/bin/env bash
# Runs a private PostgreSQL cluster for rfo on 127.0.0.1, standing in for Amazon RDS.
#
#   scripts/postgres.sh start    initialise (first time), start, create database rfoapp, and
#                                write $RFO_STATE_DIR/postgres.env
#   scripts/postgres.sh stop     stop the cluster (its data is kept)
#   scripts/postgres.sh status   print whether it runs and where
#
# Port: $RFO_PG_PORT if set, else the port of the previous run if still free, else a free one.
# Authentication is `trust` for connections over TCP on 127.0.0.1 and there is no Unix socket:
# any local user can connect as any role without a password. The role `app` still gets the
# password `app`, so clients that always send one work. fsync is off: a machine crash can
# corrupt the cluster, which is acceptable for a throwaway development database only.
#
# The server takes TLS as well as plain connections, as RDS does. Its certificate, for
# 127.0.0.1 and localhost, is signed by a local CA made at the first start; postgres.env names
# that CA's file in RFO_LOCAL_PG_CA, for clients that verify the server (DB_SSLMODE=verify-full).
#
# PostgreSQL refuses to run as root. As root, the cluster runs as the `postgres` user (created
# if missing), and its data folder is $RFO_STATE_DIR/pg unless that user cannot reach it (for
# example a checkout under /root); then it is /tmp/rfo-pg-<hash of $RFO_STATE_DIR>, and the
# chosen folder is recorded in $RFO_STATE_DIR/pg.location.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DB_USER=app
DB_PASS=app
DB_NAME=rfoapp
ENV_FILE="$RFO_STATE_DIR/postgres.env"
LOCATION_FILE="$RFO_STATE_DIR/pg.location"
# Port of the last start, kept after stop so a restart can reuse it.
PORT_FILE="$RFO_STATE_DIR/pg.port"

PG_BIN="$(find_postgres_bin)" || die "PostgreSQL binaries not found: run scripts/setup.sh"

if [[ "$(id -u)" -eq 0 ]]; then
    RUN_AS=(runuser -u postgres --)
else
    RUN_AS=()
fi

# Runs a PostgreSQL server binary as the user that owns the cluster.
as_owner() {
    "${RUN_AS[@]}" "$@"
}

ensure_postgres_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    if ! id -u postgres >/dev/null 2>&1; then
        log "creating system user postgres"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
}

# Prints the folder that contains the cluster (data/, the log and the password file).
cluster_root() {
    if [[ -f "$LOCATION_FILE" ]]; then
        cat "$LOCATION_FILE"
        return 0
    fi
    local preferred="$RFO_STATE_DIR/pg"
    if [[ "$(id -u)" -ne 0 ]]; then
        printf '%s\n' "$preferred"
        return 0
    fi
    mkdir -p "$preferred"
    chown postgres:postgres "$preferred"
    if runuser -u postgres -- test -w "$preferred" -a -x "$preferred"; then
        printf '%s\n' "$preferred"
    else
        local hash
        hash="$(printf '%s' "$RFO_STATE_DIR" | sha256sum | cut -c1-12)"
        rmdir "$preferred" 2>/dev/null || true
        printf '/tmp/rfo-pg-%s\n' "$hash"
    fi
}

ROOT_DIR="$(cluster_root)"
DATA_DIR="$ROOT_DIR/data"
TLS_DIR="$ROOT_DIR/tls"
PG_LOG="$ROOT_DIR/postgres.log"

is_running() {
    [[ -f "$DATA_DIR/PG_VERSION" ]] &&
        as_owner "$PG_BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

# Prints the port the running cluster listens on, read from its postmaster.pid (line 4).
running_port() {
    sed -n 4p "$DATA_DIR/postmaster.pid"
}

init_cluster() {
    [[ -f "$DATA_DIR/PG_VERSION" ]] && return 0
    log "initialising a PostgreSQL cluster in $DATA_DIR"
    mkdir -p "$ROOT_DIR"
    [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$ROOT_DIR"
    printf '%s\n' "$ROOT_DIR" >"$LOCATION_FILE"
    local password_file="$ROOT_DIR/password"
    as_owner sh -c "printf '%s\n' '$DB_PASS' > '$password_file'"
    as_owner "$PG_BIN/initdb" -D "$DATA_DIR" -U "$DB_USER" --pwfile="$password_file" \
        --auth=trust --encoding=UTF8 --locale=C >"$RFO_LOG_DIR/initdb.log" 2>&1 ||
        die "initdb failed; see $RFO_LOG_DIR/initdb.log"
    as_owner rm -f "$password_file"
}

# Makes a CA and a server certificate for 127.0.0.1 and localhost in $TLS_DIR, once.
make_certificates() {
    [[ -f "$TLS_DIR/server.crt" && -f "$TLS_DIR/ca.crt" ]] && return 0
    command -v openssl >/dev/null || die "openssl not found: run scripts/setup.sh"
    log "making a local CA and a TLS certificate for PostgreSQL in $TLS_DIR"
    mkdir -p "$TLS_DIR"
    local config="$TLS_DIR/server.cnf"
    printf '%s\n' "[v3]" "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" >"$config"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rfo local CA" \
            -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" &&
            openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
                -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" &&
            openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" \
                -CAkey "$TLS_DIR/ca.key" -CAcreateserial -days 3650 \
                -extfile "$config" -extensions v3 -out "$TLS_DIR/server.crt"
    } >"$RFO_LOG_DIR/openssl.log" 2>&1 || die "openssl failed; see $RFO_LOG_DIR/openssl.log"
    # PostgreSQL accepts a key only if its owner alone can read it.
    chmod 600 "$TLS_DIR/server.key"
    [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$TLS_DIR/server.key" "$TLS_DIR/server.crt"
    chmod 644 "$TLS_DIR/ca.crt"
}

start_cluster() {
    local port="$1"
    # No Unix socket: the path limit (107 bytes) breaks in deep checkouts, and clients use TCP.
    local options="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
-c ssl=on -c ssl_cert_file='$TLS_DIR/server.crt' -c ssl_key_file='$TLS_DIR/server.key'"
    as_owner "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$PG_LOG" -w -t 60 -o "$options" start >/dev/null
}

create_database() {
    local port="$1" exists
    exists="$("$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")"
    if [[ "$exists" != 1 ]]; then
        log "creating database $DB_NAME"
        "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME"
    fi
}

write_env_file() {
    local port="$1"
    cat >"$ENV_FILE.tmp" <<EOF
# Written by scripts/postgres.sh start and removed by scripts/postgres.sh stop.
export DB_HOST=127.0.0.1
export DB_PORT=$port
export DB_USER=$DB_USER
export DB_PASS=$DB_PASS
export DB_NAME=$DB_NAME
export DATABASE_URL=postgres://$DB_USER:$DB_PASS@127.0.0.1:$port/$DB_NAME
export RFO_LOCAL_PG_CA=$TLS_DIR/ca.crt
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

cmd_start() {
    ensure_postgres_user
    init_cluster
    make_certificates
    ln -sfn "$PG_LOG" "$RFO_LOG_DIR/postgres.log"

    local port attempt
    if is_running; then
        port="$(running_port)"
        log "PostgreSQL already running on 127.0.0.1:$port"
    else
        for attempt in 1 2 3; do
            port="$(choose_port "${RFO_PG_PORT:-}" "$PORT_FILE")"
            log "starting PostgreSQL on 127.0.0.1:$port (data $DATA_DIR, log $PG_LOG)"
            start_cluster "$port" && break
            # A fixed port cannot change, and three tries are enough for a race on a free one.
            [[ -z "${RFO_PG_PORT:-}" && "$attempt" -lt 3 ]] ||
                die "PostgreSQL did not start; see $PG_LOG"
            log "start failed on port $port; retrying on another port"
        done
    fi

    create_database "$port"
    printf '%s\n' "$port" >"$PORT_FILE"
    write_env_file "$port"
    log "PostgreSQL ready: postgres://$DB_USER@127.0.0.1:$port/$DB_NAME (env in $ENV_FILE)"
}

cmd_stop() {
    rm -f "$ENV_FILE"
    if ! is_running; then
        log "PostgreSQL is not running"
        return 0
    fi
    log "stopping PostgreSQL (data $DATA_DIR)"
    as_owner "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w -t 60 stop >/dev/null
}

cmd_status() {
    if is_running; then
        echo "PostgreSQL: running on 127.0.0.1:$(running_port), data $DATA_DIR"
    else
        echo "PostgreSQL: stopped (data $DATA_DIR)"
        return 3
    fi
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
