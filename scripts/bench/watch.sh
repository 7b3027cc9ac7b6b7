#!/usr/bin/env bash
# api.sh's watch phase on its own: a fresh release `drover server` (own data dir under <workdir>,
# own port on 127.0.0.1, stopped by its PID), then <reps> runs of `api_bench watch` (100
# watchers, 200 creates 20 ms apart). Each JSON line adds the 1-minute load average and the
# server's user+system CPU seconds during the run. To compare two builds, alternate them:
#
#   for v in after before after before; do scripts/bench/watch.sh $v/drover $v/api_bench /var/tmp/w-$v 26571 3 $v; done
set -euo pipefail
DROVER=$1; BENCH=$2; W=$3; PORT=$4; REPS=$5; LABEL=$6
rm -rf "$W"; mkdir -p "$W"
"$DROVER" server --data-dir "$W/d" --https-listen-port "$PORT" >>"$W/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  [ -f "$W/d/kubeconfig.yaml" ] && "$BENCH" --kubeconfig "$W/d/kubeconfig.yaml" metrics >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 3
cpu() { awk '{print $14+$15}' "/proc/$PID/stat"; }  # server user+system CPU, clock ticks
for rep in $(seq "$REPS"); do
  c0=$(cpu)
  r=$("$BENCH" --kubeconfig "$W/d/kubeconfig.yaml" watch --namespace "bench-watch-$rep" --watchers 100 --writes 200 --interval-ms 20)
  c1=$(cpu)
  echo "{\"label\":\"$LABEL\",\"loadavg\":$(cut -d' ' -f1 /proc/loadavg),\"server_cpu_s\":$(( (c1 - c0) ))e-2,\"result\":$r}"
done
