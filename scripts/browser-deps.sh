#!/usr/bin/env bash
# Install what the browser tests need, only where it is missing (idempotent):
#   - Debian's chromium at /usr/bin/chromium (apt-get; never a browser download);
#   - the playwright Python package in .venv (its bundled driver talks to that chromium;
#     `playwright install` is never run).
# Node.js (for tests/js) comes with the machine; the JS unit tests need no npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYWRIGHT_VERSION="1.65.2"
PY="${VOXCALL_PYTHON:-.venv/bin/python}"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser-deps: installing Debian chromium" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

if ! "$PY" -c "import playwright, importlib.metadata as m, sys; sys.exit(m.version('playwright') != '$PLAYWRIGHT_VERSION')" 2>/dev/null; then
  echo "browser-deps: installing playwright==$PLAYWRIGHT_VERSION into $PY" >&2
  "$PY" -m pip install --disable-pip-version-check -q "playwright==$PLAYWRIGHT_VERSION"
fi

if ! command -v node >/dev/null 2>&1; then
  echo "browser-deps: node is missing; installing Debian nodejs" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends nodejs >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null  # (the Debian wrapper prints a harmless shell warning on stderr)
"$PY" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
