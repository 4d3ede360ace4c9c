#!/usr/bin/env bash
# Make a real PostgreSQL server available for the test suite (idempotent).
#
#   scripts/test-services.sh          start (installing PostgreSQL if needed); the URL is the last line
#   scripts/test-services.sh status   print the URL if running, exit 1 if not
#   scripts/test-services.sh stop     stop the server (the data stays in .pg/)
#
# The cluster lives in .pg/ under the repository root (PG_DIR overrides), listens
# on 127.0.0.1:${PG_PORT:-55432} with its socket inside .pg/run, and has a
# password-authenticated role `voxcall` (password `voxcall`, CREATEDB) owning the
# database `voxcall_test`. Typical use:
#
#   export VOXCALL_TEST_POSTGRES_URL=$(scripts/test-services.sh | tail -n1)
#   .venv/bin/python -m pytest
#
# Logs go to stderr and to .pg/postgres.log. PostgreSQL refuses to run as root;
# as root, the server runs as the `postgres` user (created by the Debian package)
# or a dedicated `voxcall-pg` system user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_DIR=${PG_DIR:-$ROOT/.pg}
if [ -z "${PG_PORT:-}" ]; then
    # 55432 unless another checkout's cluster holds it; the choice is kept in .pg/port.
    if [ -f "$PG_DIR/data/postmaster.pid" ] && [ -n "$(sed -n 4p "$PG_DIR/data/postmaster.pid")" ]; then
        PG_PORT=$(sed -n 4p "$PG_DIR/data/postmaster.pid")  # this checkout's cluster is running: its port
    elif [ -f "$PG_DIR/port" ]; then
        PG_PORT=$(cat "$PG_DIR/port")
    else
        PG_PORT=55432
        if (exec 3<>/dev/tcp/127.0.0.1/$PG_PORT) 2>/dev/null; then
            PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        fi
        mkdir -p "$PG_DIR" && echo "$PG_PORT" > "$PG_DIR/port"
    fi
fi
DB_USER=voxcall
DB_PASSWORD=voxcall
DB_NAME=voxcall_test
URL="postgresql+asyncpg://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
DATA=$PG_DIR/data
SOCKETS=$PG_DIR/run
LOG=$PG_DIR/postgres.log
WAIT_SECONDS=${PG_WAIT_SECONDS:-60}

say() { echo "test-services: $*" >&2; }
die() { say "error: $*"; exit 1; }

find_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    [[ -n $dir && -x $dir/pg_ctl ]] && echo "$dir"
}

install_postgres() {
    say "PostgreSQL not found; installing it with apt-get"
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

# Run a command as the cluster owner: ourselves, or a non-root user when we are root.
as_owner() {
    if [[ -n $OWNER ]]; then runuser -u "$OWNER" -- "$@"; else "$@"; fi
}

pick_owner() {
    OWNER=
    [[ $(id -u) -ne 0 ]] && return
    if id -u postgres >/dev/null 2>&1; then
        OWNER=postgres
    else
        id -u voxcall-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin voxcall-pg
        OWNER=voxcall-pg
    fi
}

running() { [[ -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -t 2; }

wait_ready() {
    local i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        ready && return 0
        sleep 1
    done
    tail -n 20 "$LOG" >&2 || true
    die "PostgreSQL did not accept connections on 127.0.0.1:$PG_PORT within ${WAIT_SECONDS}s"
}

init_cluster() {
    say "creating a cluster in $DATA"
    install -d -m 700 "$DATA" "$SOCKETS"
    [[ -n $OWNER ]] && chown "$OWNER" "$DATA" "$SOCKETS"
    # Local socket: trust (the socket folder is private to the owner); TCP: passwords.
    as_owner "$BIN/initdb" -D "$DATA" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
}

start_server() {
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    touch "$LOG"
    [[ -n $OWNER ]] && chown "$OWNER" "$LOG" "$SOCKETS"
    # A throwaway test cluster: durability is not needed, speed is.
    local options="-p $PG_PORT -k $SOCKETS -c listen_addresses=127.0.0.1 -c fsync=off"
    options+=" -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    # 9>&-: the server must not inherit (and hold forever) the setup lock.
    as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t "$WAIT_SECONDS" -o "$options" >&2 9>&- \
        || { tail -n 20 "$LOG" >&2; die "pg_ctl start failed (is port $PG_PORT taken? set PG_PORT)"; }
}

psql_admin() {
    as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKETS" -p "$PG_PORT" -d postgres "$@"
}

ensure_database() {
    psql_admin <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
  END IF;
END \$\$;
-- CREATEDB: test sessions make throwaway databases of their own, for isolation.
ALTER ROLE $DB_USER CREATEDB;
SQL
    if [[ -z $(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
        psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
    fi
}

main() {
    local action=${1:-start}
    case $action in start | stop | status) ;; *) die "usage: $0 [start|stop|status]" ;; esac
    [[ $PG_PORT =~ ^[0-9]+$ ]] || die "PG_PORT must be a number"
    BIN=$(find_bin || true)
    if [[ -z $BIN ]]; then
        [[ $action == start ]] || die "PostgreSQL is not installed"
        install_postgres
        BIN=$(find_bin || true)
        [[ -n $BIN ]] || die "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin after installing"
    fi
    pick_owner
    mkdir -p "$PG_DIR"
    # The owner must be able to reach the cluster folder.
    if [[ -n $OWNER ]] && ! runuser -u "$OWNER" -- test -x "$PG_DIR"; then
        die "user $OWNER cannot reach $PG_DIR; set PG_DIR to a folder it can reach"
    fi
    # One caller at a time sets things up (parallel test runs, several workers).
    exec 9>"$PG_DIR/lock"
    flock -w 120 9 || die "timed out waiting for another test-services.sh"

    case $action in
    stop)
        if running; then as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast >&2; else say "not running"; fi
        return ;;
    status)
        running && ready || { say "not running"; exit 1; }
        echo "$URL"
        return ;;
    esac
    [[ ${#SOCKETS} -lt 100 ]] || die "socket path $SOCKETS is too long for a unix socket; set PG_DIR"
    [[ -f $DATA/PG_VERSION ]] || init_cluster
    running || start_server
    wait_ready
    ensure_database
    echo "$URL"
}

main "$@"
