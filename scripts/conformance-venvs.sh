#!/usr/bin/env bash
# Create the virtualenvs of the third-party clients driven by tests/conformance (idempotent).
#
#   scripts/conformance-venvs.sh          create or complete .venvs/livekit and .venvs/mcp
#   scripts/conformance-venvs.sh --force  rebuild both from scratch
#
# Each client gets its own venv because they pin conflicting `websockets` versions. A venv
# whose marker file (.venvs/NAME/.voxcall-complete) lists the same pins is left alone, so a
# second run costs nothing. VENVS_DIR overrides the location, PYTHON the interpreter
# (default python3.11). Output is quiet: one line per venv, pip's log only on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENVS_DIR=${VENVS_DIR:-$ROOT/.venvs}
PYTHON=${PYTHON:-python3.11}
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

say() { echo "conformance-venvs: $*" >&2; }

# name -> pinned requirements (space separated); the marker records exactly this string.
declare -A PINS=(
    [livekit]="livekit-plugins-ultravox==1.8.9"
    [mcp]="ultravox-mcp==0.2.0"
)

make_venv() {
    local name=$1 pins=$2 dir=$VENVS_DIR/$1 marker=$VENVS_DIR/$1/.voxcall-complete log
    if [[ $FORCE == 0 && -f $marker && "$(cat "$marker")" == "$pins" && -x $dir/bin/python ]]; then
        say "$name: up to date ($pins)"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$VENVS_DIR"
    log=$(mktemp)
    # shellcheck disable=SC2086  # the pins are deliberately word-split
    if ! { "$PYTHON" -m venv "$dir" && "$dir/bin/python" -m pip install -q $pins; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        say "$name: installation failed"
        return 1
    fi
    rm -f "$log"
    printf '%s' "$pins" >"$marker"
    say "$name: installed ($pins)"
}

status=0
for name in livekit mcp; do
    make_venv "$name" "${PINS[$name]}" || status=1
done
exit $status
