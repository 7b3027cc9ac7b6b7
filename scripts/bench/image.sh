#!/usr/bin/env bash
# Image store benchmarks (run as root; hyperfine, skopeo, docker-registry, ip, tar needed):
#
#   1. Layer unpack throughput: `drover-image unpack-layer` (the store's unpacker: ownership,
#      modes, xattrs, whiteouts, diff-ID hashing) vs GNU tar with --same-owner --xattrs, on the
#      largest layer of the postgres:16-alpine fixture, gzip and uncompressed.
#   2. Pull of a multi-layer image (postgres:16-alpine fixture) from Debian's docker-registry on
#      127.0.0.1 inside a throwaway network namespace: `drover-image pull` (download, verify,
#      unpack) vs `skopeo copy docker://… oci:…` (download and verify only; skopeo does not
#      unpack), and `skopeo copy` followed by `tar -x` of every layer and one `sync -f` (what a
#      pull that unpacks durably must do at least), fresh destination each run.
#
#   RUNS=5 scripts/bench/image.sh
#
# Everything it creates is named drover-test-*/drover-image-bench and removed at exit; the
# registry is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
RUNS="${RUNS:-5}"
WORK="$(mktemp -d /var/tmp/drover-image-bench.XXXXXX)"
NS="drover-test-imgbench-$$"
REG_PID=""
cleanup() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  ip netns delete "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p drover-image -p drover-testing
BIN="$CARGO_TARGET_DIR/release/drover-image"
FIX="$CARGO_TARGET_DIR/release/drover-fixtures"

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"

# --- 1. unpack -------------------------------------------------------------------------------
"$FIX" build postgres:16-alpine --out "$WORK/layout" >/dev/null
LAYER_GZ="$(ls -S "$WORK"/layout/blobs/sha256/* | head -1)"
gzip -dc "$LAYER_GZ" > "$WORK/layer.tar"
TAR_BYTES=$(stat -c %s "$WORK/layer.tar")
echo "== unpack: layer $(basename "$LAYER_GZ" | cut -c1-12) gzip $(stat -c %s "$LAYER_GZ") B, tar $TAR_BYTES B"
hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/unpack.json" \
  --prepare "rm -rf $WORK/out && mkdir $WORK/out && sync" \
  -n drover-unpack-gzip "$BIN unpack-layer $LAYER_GZ $WORK/out" \
  -n tar-gzip "tar --same-owner --xattrs --xattrs-include='*' -xzf $LAYER_GZ -C $WORK/out" \
  -n drover-unpack-tar "$BIN unpack-layer $WORK/layer.tar $WORK/out" \
  -n tar-tar "tar --same-owner --xattrs --xattrs-include='*' -xf $WORK/layer.tar -C $WORK/out"
python3 - "$WORK/unpack.json" "$TAR_BYTES" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
size = int(sys.argv[2])
for r in res:
    print(f"{r['command']:<22} mean {r['mean']*1000:8.1f} ms  ±{r['stddev']*1000:6.1f}  {size/r['mean']/1e6:7.1f} MB/s (uncompressed)")
m = {r["command"]: r["mean"] for r in res}
print(f"ratio drover/tar (gzip): {m['drover-unpack-gzip']/m['tar-gzip']:.2f}x time; (plain tar): {m['drover-unpack-tar']/m['tar-tar']:.2f}x time")
PY

# --- 2. pull ---------------------------------------------------------------------------------
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p "$WORK/registry"
cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:5000
  secret: drover-image-bench
YML
ip netns exec "$NS" docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  ip netns exec "$NS" timeout 2 busybox wget -q -O /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break
  sleep 0.1
done
"$FIX" push --registry 127.0.0.1:5000 --netns "$NS" postgres:16-alpine >/dev/null
printf 'mirrors:\n  docker.io:\n    endpoint: ["http://127.0.0.1:5000"]\n' > "$WORK/registries.yaml"
cat > "$WORK/skopeo-unpack.sh" <<SH
#!/bin/sh
set -e
ip netns exec $NS skopeo --insecure-policy copy -q --src-tls-verify=false docker://127.0.0.1:5000/library/postgres:16-alpine oci:$WORK/dst/oci:x
for f in $WORK/dst/oci/blobs/sha256/*; do
  if [ "\$(head -c2 "\$f" | od -An -tx1)" = " 1f 8b" ]; then
    mkdir -p "$WORK/dst/snap/\$(basename "\$f")"
    tar --same-owner --xattrs -xzf "\$f" -C "$WORK/dst/snap/\$(basename "\$f")"
  fi
done
sync -f "$WORK/dst"
SH
chmod +x "$WORK/skopeo-unpack.sh"
echo "== pull postgres:16-alpine ($(ls "$WORK"/layout/blobs/sha256 | wc -l) blobs) from docker-registry in netns $NS"
hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/pull.json" \
  --prepare "rm -rf $WORK/dst && mkdir $WORK/dst && sync" \
  -n drover-pull "ip netns exec $NS $BIN pull -q --disable-default-registry-endpoint --registries $WORK/registries.yaml --data-dir $WORK/dst postgres:16-alpine" \
  -n skopeo-copy "ip netns exec $NS skopeo --insecure-policy copy -q --src-tls-verify=false docker://127.0.0.1:5000/library/postgres:16-alpine oci:$WORK/dst/oci:x" \
  -n skopeo+tar+sync "$WORK/skopeo-unpack.sh"
python3 - "$WORK/pull.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
for r in res:
    print(f"{r['command']:<14} mean {r['mean']*1000:8.1f} ms  ±{r['stddev']*1000:6.1f}")
m = {r["command"]: r["mean"] for r in res}
print(f"ratio drover-pull (incl. unpack) / skopeo-copy (no unpack): {m['drover-pull']/m['skopeo-copy']:.2f}x time")
print(f"ratio drover-pull / skopeo+tar+sync: {m['drover-pull']/m['skopeo+tar+sync']:.2f}x time")
PY
