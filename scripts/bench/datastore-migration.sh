#!/usr/bin/env bash
# Datastore migration speed: `drover datastore import` into a fresh etcd 3.4 (revision bump by
# no-op writes + one transaction per key), and `drover datastore export` from etcd against
# etcdctl reading the same keys (the peer), in one run on one machine.
#
#   scripts/bench/datastore-migration.sh [DROVER_BINARY] [SOURCE_REVISION] [KEYS]
#
# Starts its own etcd on loopback (tmpfs data dir) and stops it by PID at the end.
set -euo pipefail
DROVER=${1:-${CARGO_TARGET_DIR:-target}/release/drover}
REV=${2:-100000}
KEYS=${3:-5000}
work=$(mktemp -d /dev/shm/drover-bench-mig-XXXXXX)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
peer=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "bench=http://127.0.0.1:$peer" --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do etcdctl --endpoints "127.0.0.1:$port" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done

# A valid export file: KEYS keys of 512 bytes, source revision REV.
python3 - "$REV" "$KEYS" "$work/in.jsonl" <<'PY'
import base64, hashlib, json, sys
rev, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dump = lambda o: json.dumps(o, separators=(",", ":"))
lines = [dump({"format": "drover-datastore-export", "version": 1, "source": "sqlite", "revision": rev, "compacted": 0})]
value = base64.b64encode(b"x" * 512).decode()
for i in range(n):
    lines.append(dump({"key": f"/registry/configmaps/default/c{i:06}", "value": value, "create_revision": i + 1, "mod_revision": rev - n + i + 1}))
body = ("\n".join(lines) + "\n").encode()
open(out, "wb").write(body + dump({"end": {"records": n, "sha256": hashlib.sha256(body).hexdigest()}}).encode() + b"\n")
PY

echo "== import: source revision $REV, $KEYS keys, into a fresh etcd (bump $((REV - KEYS)) revisions by no-op writes)"
/usr/bin/time -f "import: %e s wall, %M KB max RSS" "$DROVER" datastore import --datastore-endpoint "etcd://127.0.0.1:$port" "$work/in.jsonl"
echo "== export from etcd vs etcdctl reading the same keys (peer)"
hyperfine -w 1 -r 5 \
  --prepare "rm -f $work/out.jsonl" \
  -n "drover datastore export" "$DROVER datastore export --datastore-endpoint etcd://127.0.0.1:$port -o $work/out.jsonl" \
  -n "etcdctl get --prefix / -w json" "etcdctl --endpoints 127.0.0.1:$port get --prefix / -w json > $work/peer.json"
