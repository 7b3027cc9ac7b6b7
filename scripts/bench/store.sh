#!/usr/bin/env bash
# Store-level benchmark: Drover's SqliteStore vs etcd 3.4 (Debian), the same create workload,
# interleaved in one run so both see the same machine load. Prints JSON lines (one per
# measurement) to $OUT and a ratio table (scripts/bench/summarize.py) at the end.
#
#   REPS=3 scripts/bench/store.sh   # needs: apt-get install etcd-server etcd-client protobuf-compiler
#
# Each etcd gets its own data dir and ports on 127.0.0.1 and is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
REPS="${REPS:-3}"
BIG="${BIG:-100000}"
WORK="$(mktemp -d /var/tmp/drover-store-bench.XXXXXX)"
OUT="${OUT:-$WORK/results.jsonl}"
CLIENT_PORT="${ETCD_CLIENT_PORT:-23790}"
PEER_PORT="${ETCD_PEER_PORT:-23800}"
ENDPOINT="http://127.0.0.1:$CLIENT_PORT"

cargo build --release -q -p drover-bench --features etcd   # etcd-client needs protoc
BENCH="$CARGO_TARGET_DIR/release/store_bench"

etcd --name bench --data-dir "$WORK/etcd" \
  --listen-client-urls "$ENDPOINT" --advertise-client-urls "$ENDPOINT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "bench=http://127.0.0.1:$PEER_PORT" --log-level error >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
trap 'kill "$ETCD_PID" 2>/dev/null || true; wait "$ETCD_PID" 2>/dev/null || true; rm -rf "$WORK/etcd" "$WORK"/sqlite-*' EXIT
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINT" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
echo "etcd $(etcd --version | head -1) pid $ETCD_PID; results in $OUT" >&2

n=0
pair() { # pair <label> <store_bench load args...>: SqliteStore then etcd, same args
  local label="$1"; shift
  n=$((n + 1))
  for backend in sqlite etcd; do
    local load; load="$(cut -d' ' -f1 /proc/loadavg)"
    if [ "$backend" = sqlite ]; then
      line="$("$BENCH" sqlite --dir "$WORK/sqlite-$n" "$@")"
      rm -rf "$WORK/sqlite-$n"
    else
      line="$("$BENCH" etcd --endpoint "$ENDPOINT" --prefix "/registry/configmaps/run$n/" "$@")"
    fi
    echo "{\"label\":\"$label\",\"rep\":$rep,\"loadavg\":$load,\"result\":$line}" | tee -a "$OUT"
  done
}

for rep in $(seq "$REPS"); do
  pair "1 writer" --writers 1 --ops 1000
  pair "32 writers" --writers 32 --ops 10000 --range-repeat 3
  pair "32 writers, serialized (no group commit)" --writers 32 --ops 1000 --serialize
  pair "32 writers, ${BIG} keys" --writers 32 --ops "$BIG" --warmup 0 --range-repeat 3
done
python3 scripts/bench/summarize.py store "$OUT"
