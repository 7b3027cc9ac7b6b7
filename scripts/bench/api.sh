#!/usr/bin/env bash
# API-level benchmark of the release `drover server`, driven over HTTPS (HTTP/2, admin client
# certificate) by the api_bench binary. Prints JSON lines to $OUT and a summary at the end.
#
#   REPS=3 scripts/bench/api.sh
#
# Phase A (one server): ConfigMap creates at 1 and 32 concurrency, REPS times; write-to-watch
#   delivery latency with 100 watchers.
# Phase B (a second, fresh server): idle RSS, load 10k ConfigMaps, LIST (JSON and Table), load
#   to 100k, LIST again, RSS and watch-cache bytes with 100k loaded, then restart time with
#   100k objects.
# Startup: time from spawn to /readyz = 200, fresh data dir and restart.
# Every server gets its own data dir and port on 127.0.0.1 and is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
REPS="${REPS:-3}"
BIG="${BIG:-100000}"
PORT="${PORT:-26443}"
WORK="$(mktemp -d /var/tmp/drover-api-bench.XXXXXX)"
OUT="${OUT:-$WORK/results.jsonl}"

cargo build --release -q -p drover -p drover-bench
DROVER="$CARGO_TARGET_DIR/release/drover"
BENCH="$CARGO_TARGET_DIR/release/api_bench"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"/data-*' EXIT

emit() { # emit <label> <json>; a failed measurement (empty output) is recorded as an error
  local result="${2:-{\"bench\":\"error\",\"error\":\"failed; see stderr\"\}}"
  echo "{\"label\":\"$1\",\"loadavg\":$(cut -d' ' -f1 /proc/loadavg),\"result\":$result}" | tee -a "$OUT"
}
rss() { # rss <pid>: VmRSS and VmHWM in KiB as JSON
  awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} END{printf "{\"bench\":\"rss\",\"vmrss_kib\":%d,\"vmhwm_kib\":%d}", r, h}' "/proc/$1/status"
}
start_server() { # start_server <data-dir>; sets SERVER_PID and KCFG
  "$DROVER" server --data-dir "$1" --https-listen-port "$PORT" >"$1.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  KCFG="$1/kubeconfig.yaml"
  for _ in $(seq 300); do
    [ -f "$KCFG" ] && "$BENCH" --kubeconfig "$KCFG" metrics >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "drover server did not become ready; see $1.log" >&2
  exit 1
}
stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" || true
}

echo "results in $OUT" >&2
emit "startup, fresh data dir" "$("$BENCH" startup --drover "$DROVER" --data-dir "$WORK/data-startup" --port "$PORT" --runs 5 --fresh)"
emit "startup, restart" "$("$BENCH" startup --drover "$DROVER" --data-dir "$WORK/data-startup" --port "$PORT" --runs 5)"

# --- Phase A: create latency and watch delivery ---
start_server "$WORK/data-a"
sleep 3
for rep in $(seq "$REPS"); do
  emit "create, 1 client" "$("$BENCH" --kubeconfig "$KCFG" create --namespace bench-c1 --concurrency 1 --count 1000 --name-prefix "r$rep-")"
  emit "create, 32 clients" "$("$BENCH" --kubeconfig "$KCFG" create --namespace bench-c32 --concurrency 32 --count 5000 --name-prefix "r$rep-")"
done
for rep in $(seq "$REPS"); do
  emit "watch, 100 watchers" "$("$BENCH" --kubeconfig "$KCFG" watch --namespace "bench-watch-$rep" --watchers 100 --writes 200 --interval-ms 20)"
done
stop_server

# --- Phase B: memory and lists ---
start_server "$WORK/data-b"
sleep 5
emit "idle" "$(rss "$SERVER_PID")"
emit "idle metrics" "$("$BENCH" --kubeconfig "$KCFG" metrics)"
emit "load 10k" "$("$BENCH" --kubeconfig "$KCFG" create --namespace bench-list --concurrency 32 --count 10000 --name-prefix cm-)"
emit "list 10k, JSON" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 5)"
emit "list 10k, Table" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 5 --table)"
# limit=500 equals the store page size the API server reads continuations with; see
# docs/benchmarks.md (it does not advance today, and api_bench stops with an error).
emit "list 10k, pages of 500 (kubectl's chunk size)" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 3 --limit 500 || true)"
emit "list 10k, pages of 499" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 3 --limit 499 || true)"
emit "load to ${BIG}" "$("$BENCH" --kubeconfig "$KCFG" create --namespace bench-list --concurrency 32 --count $((BIG - 10000)) --start 10000 --name-prefix cm-)"
sleep 5
emit "${BIG} loaded, before lists" "$(rss "$SERVER_PID")"
emit "${BIG} loaded metrics" "$("$BENCH" --kubeconfig "$KCFG" metrics)"
emit "list ${BIG}, JSON" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 5)"
emit "list ${BIG}, Table" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 5 --table)"
emit "list ${BIG}, pages of 500 (kubectl's chunk size)" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 1 --limit 500 || true)"
emit "list ${BIG}, pages of 499" "$("$BENCH" --kubeconfig "$KCFG" list --namespace bench-list --repeat 1 --limit 499 || true)"
sleep 5
emit "${BIG} loaded, after lists" "$(rss "$SERVER_PID")"
stop_server
du -sk "$WORK/data-b" | awk '{printf "{\"bench\":\"disk\",\"kib\":%d}\n", $1}' | while read -r l; do emit "data dir with ${BIG}" "$l"; done
emit "restart with ${BIG} objects" "$("$BENCH" startup --drover "$DROVER" --data-dir "$WORK/data-b" --port "$PORT" --runs 3)"
python3 scripts/bench/summarize.py api "$OUT"
