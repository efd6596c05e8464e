#!/usr/bin/env bash
# restart.sh DIR NAME stop|start|restart — stop or (re)start the kube-apiserver
# of one cluster started by start.sh, on the same port, keeping its etcd (and
# so its data) running. `start` waits for /readyz.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 DIR NAME stop|start|restart" >&2; exit 2; }
DIR="$1"; NAME="$2"; ACTION="$3"
d="$DIR/$NAME"
[ -x "$d/apiserver.sh" ] || { echo "[restart.sh] $d/apiserver.sh not found (start.sh DIR first)" >&2; exit 1; }
log() { echo "[restart.sh] $*" >&2; }

apiserver_pid() { awk '$1 == "apiserver" {print $2}' "$d/pids"; }

stop_apiserver() {
  local pid; pid="$(apiserver_pid)"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  sed -i '/^apiserver /d' "$d/pids"
  log "$NAME: apiserver stopped"
}

start_apiserver() {
  setsid "$d/apiserver.sh" </dev/null >>"$d/apiserver.log" 2>&1 &
  echo "apiserver $!" >>"$d/pids"
  . "$d/cluster.env"
  local deadline=$(($(date +%s) + 90))
  until [ "$(curl -s --max-time 3 --cacert "$CA" -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVER/readyz" 2>/dev/null)" = ok ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "$NAME: /readyz not ok after 90s"; exit 1; }
    sleep 0.2
  done
  log "$NAME: apiserver ready again on $SERVER"
}

case "$ACTION" in
  stop) stop_apiserver ;;
  start) start_apiserver ;;
  restart) stop_apiserver; start_apiserver ;;
  *) echo "usage: $0 DIR NAME stop|start|restart" >&2; exit 2 ;;
esac
