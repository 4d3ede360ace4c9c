#!/usr/bin/env bash
# Make a real Redis server available for the test suite (idempotent).
#
#   scripts/redis.sh          start (installing redis-server from Debian if needed); the URL is the last line
#   scripts/redis.sh status   print the URL if running, exit 1 if not
#   scripts/redis.sh stop     stop the server
#
# The server keeps its files in .redis/ under the repository root (REDIS_DIR overrides),
# listens on 127.0.0.1:${REDIS_PORT:-56379} only (another free port when that one is
# taken; the choice is kept in .redis/port), persists nothing and runs in the background.
# Typical use:
#
#   export VOXCALL_TEST_REDIS_URL=$(scripts/redis.sh | tail -n1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REDIS_DIR=${REDIS_DIR:-$ROOT/.redis}
WAIT_SECONDS=${REDIS_WAIT_SECONDS:-30}

say() { echo "redis.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

install_redis() {
    say "redis-server not found; installing it with apt-get"
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server >&2; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server >&2
    fi
}

cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
ready() { [[ $(cli ping 2>/dev/null) == PONG ]]; }
pid_alive() { [[ -f $REDIS_DIR/redis.pid ]] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; }

pick_port() {
    if [[ -n ${REDIS_PORT:-} ]]; then return; fi
    if [[ -f $REDIS_DIR/port ]]; then REDIS_PORT=$(cat "$REDIS_DIR/port"); fi
    if [[ -z ${REDIS_PORT:-} ]] || { ! pid_alive && (exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT) 2>/dev/null; }; then
        REDIS_PORT=56379
        if (exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT) 2>/dev/null; then  # another checkout's server
            REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        fi
        echo "$REDIS_PORT" > "$REDIS_DIR/port"
    fi
}

main() {
    local action=${1:-start}
    case $action in start | stop | status) ;; *) die "usage: $0 [start|stop|status]" ;; esac
    mkdir -p "$REDIS_DIR"
    exec 9>"$REDIS_DIR/lock"
    flock -w 60 9 || die "timed out waiting for another redis.sh"
    pick_port
    [[ $REDIS_PORT =~ ^[0-9]+$ ]] || die "REDIS_PORT must be a number"
    local url="redis://127.0.0.1:$REDIS_PORT/0"
    case $action in
    stop)
        if pid_alive; then kill "$(cat "$REDIS_DIR/redis.pid")"; else say "not running"; fi
        return ;;
    status)
        pid_alive && ready || { say "not running"; exit 1; }
        echo "$url"
        return ;;
    esac
    if ! command -v redis-server >/dev/null; then
        [[ $action == start ]] && install_redis
        command -v redis-server >/dev/null || die "redis-server not found after installing"
    fi
    if ! { pid_alive && ready; }; then
        say "starting Redis on 127.0.0.1:$REDIS_PORT"
        # 9>&-: the server must not inherit (and hold forever) the setup lock.
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --daemonize yes \
            --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --save "" --appendonly no \
            --protected-mode yes 9>&- || die "redis-server failed to start (see $REDIS_DIR/redis.log)"
    fi
    local i
    for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
        ready && { echo "$url"; return; }
        sleep 0.1
    done
    tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
    die "Redis did not answer on 127.0.0.1:$REDIS_PORT within ${WAIT_SECONDS}s"
}

main "$@"
