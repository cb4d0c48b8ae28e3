#!/usr/bin/env bash
# Make sure a Docker engine answers. If none does and we are root on Debian/Ubuntu, install
# Debian's docker.io and start dockerd in the background. On other systems, say what to do.
set -euo pipefail

docker_ok() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

if docker_ok; then exit 0; fi

if [ "$(id -u)" != 0 ]; then
  echo "No Docker engine answers and this is not root, so nothing can be installed here." >&2
  echo "Start Docker (e.g. 'sudo systemctl start docker' or Docker Desktop), make sure your user may use" >&2
  echo "its socket ('sudo usermod -aG docker \$USER'), or point DOCKER_HOST at a reachable engine." >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "No Docker engine and no apt-get: install Docker for your system (https://docs.docker.com/engine/install/)" >&2
    echo "and start it, then run this again." >&2
    exit 1
  fi
  echo "[ensure-docker] installing Debian's docker.io ..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

echo "[ensure-docker] starting dockerd ..." >&2
mkdir -p /var/log
# a dockerd that was killed (crash, SIGKILL) leaves its pid file behind, and a new one refuses to start
# (and so may its containerd: a pid file naming a process that is no longer containerd)
if ! pidof dockerd >/dev/null 2>&1; then
  rm -f /var/run/docker.pid
  cpid=$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)
  if [ -n "$cpid" ] && [ "$(cat /proc/$cpid/comm 2>/dev/null)" != containerd ]; then
    rm -f /var/run/docker/containerd/containerd.pid
  fi
fi
# its own session: a job runner that kills our process group must not take the engine with it
setsid nohup dockerd >/var/log/agentic-sandbox-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if docker_ok; then echo "[ensure-docker] engine is up" >&2; exit 0; fi
  sleep 1
done
echo "dockerd did not come up within 60 s; see /var/log/agentic-sandbox-dockerd.log" >&2
exit 1
