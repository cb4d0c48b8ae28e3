#!/usr/bin/env bash
# Best effort: make gVisor's runsc available to the Docker engine as the runtime "runsc", so the
# suite can test `docker.runtime: 'runsc'`. Installs Debian's runsc package and registers it in
# /etc/docker/daemon.json (then reloads dockerd with SIGHUP: running containers are not touched),
# only as root, only when the engine is one this project's scripts started, and never fails: when
# anything is missing the runsc tests skip and say why.
set -uo pipefail
docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && exit 0
[ "$(id -u)" = 0 ] || exit 0
[ -f /var/log/agentic-sandbox-dockerd.log ] || exit 0   # not our engine: leave its configuration alone
if ! command -v runsc >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || exit 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null 2>&1; } \
    || exit 0
fi
mkdir -p /etc/docker
if [ -s /etc/docker/daemon.json ] && ! grep -q '"runsc"' /etc/docker/daemon.json; then
  echo "[ensure-runsc] /etc/docker/daemon.json exists without runsc; not editing it" >&2
  exit 0
fi
# --network=none: this runsc cannot set up a network in the engine's namespaces here (the sandbox
# gets none, whatever networkMode says); --platform=ptrace: no KVM needed
cat > /etc/docker/daemon.json <<'JSON'
{ "runtimes": { "runsc": { "path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--platform=ptrace"] } } }
JSON
kill -HUP "$(pidof dockerd)" 2>/dev/null || exit 0
for _ in $(seq 1 20); do
  docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && { echo "[ensure-runsc] runtime runsc registered" >&2; exit 0; }
  sleep 0.5
done
exit 0
