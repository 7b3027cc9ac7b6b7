#!/usr/bin/env bash
# RSS of a release `drover server`: idle, after 100 000 ConfigMap creates through the API (32
# clients, api_bench), and after a restart (watch cache primed from the store). The server gets
# its own data dir under <workdir> and port on 127.0.0.1 and is stopped by its PID. Extra
# arguments are environment settings for the server, e.g. MALLOC_ARENA_MAX=2 or
# LD_PRELOAD=<malloc_trim_preload.so> (see malloc_trim_preload.c).
#
#   scripts/bench/rss.sh <drover> <api_bench> <workdir> <port> [VAR=value...]
set -euo pipefail
DROVER=$1; BENCH=$2; W=$3; PORT=$4; shift 4
rm -rf "$W"; mkdir -p "$W"
PID=
trap '[ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; } || true' EXIT
rss() { awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} /^RssAnon:/{a=$2} /^RssFile:/{f=$2} END{printf "{\"vmrss_kib\":%d,\"vmhwm_kib\":%d,\"rss_anon_kib\":%d,\"rss_file_kib\":%d}", r, h, a, f}' "/proc/$1/status"; }
start() {
  env "$@" "$DROVER" server --data-dir "$W/d" --https-listen-port "$PORT" >>"$W/log" 2>&1 &
  PID=$!
  for _ in $(seq 600); do
    [ -f "$W/d/kubeconfig.yaml" ] && "$BENCH" --kubeconfig "$W/d/kubeconfig.yaml" metrics >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "not ready" >&2; kill "$PID"; exit 1
}
start "$@"
sleep 5
echo "idle $(rss $PID) load $(cut -d' ' -f1 /proc/loadavg)"
"$BENCH" --kubeconfig "$W/d/kubeconfig.yaml" create --namespace bench-list --concurrency 32 --count 100000 --name-prefix cm-
sleep 5
echo "loaded $(rss $PID) load $(cut -d' ' -f1 /proc/loadavg)"
"$BENCH" --kubeconfig "$W/d/kubeconfig.yaml" metrics | grep -o '"drover_watch_cache_[a-z]*":[0-9.e+]*' | tr '\n' ' '; echo
kill "$PID"; wait "$PID" || true; PID=
start "$@"
sleep 5
echo "restarted $(rss $PID) load $(cut -d' ' -f1 /proc/loadavg)"
"$BENCH" --kubeconfig "$W/d/kubeconfig.yaml" metrics | grep -o '"drover_watch_cache_[a-z]*":[0-9.e+]*' | tr '\n' ' '; echo
kill "$PID"; wait "$PID" || true; PID=
