#!/usr/bin/env bash
# Makes `redis-server` available for the distributed-mode tests, which start their own servers on
# free 127.0.0.1 ports (nothing here starts or configures a system-wide Redis). Installs Debian's
# package when it is missing and apt-get can; otherwise says what is needed and fails.
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[ensure-redis] installing redis-server ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
  # the package may start a system service on 6379; the tests do not use it
  command -v redis-server >/dev/null 2>&1 && exit 0
fi
echo "[ensure-redis] redis-server is missing: install Redis (Debian/Ubuntu: apt-get install redis-server) and rerun" >&2
exit 1
