#!/usr/bin/env bash
# The official E2B Python SDK in a virtual environment of its own (.cache/e2b-python), for
# __test__/e2b-server.spec.ts and bench/e2b-server.ts: `pip install e2b==<pinned>` from PyPI the
# first time, nothing after. Prints the venv's python. Needs python3 with venv (Debian:
# python3-venv, installed here when missing and apt-get can).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.63.0
VENV=.cache/e2b-python
PY="$VENV/bin/python"
if [ -x "$PY" ] && "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('e2b') != '$VERSION')" 2>/dev/null; then
  echo "$PWD/$PY"
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[ensure-e2b-python] installing python3-venv ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
  else
    echo "[ensure-e2b-python] python3 with venv is missing (Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
rm -rf "$VENV"
mkdir -p .cache
python3 -m venv "$VENV" >&2
echo "[ensure-e2b-python] pip install e2b==$VERSION ..." >&2
"$VENV/bin/pip" install -q --disable-pip-version-check "e2b==$VERSION" >&2
echo "$PWD/$PY"
