#!/usr/bin/env bash
# Memory of the per-container supervisor (`drover supervise`): start N detached busybox `sleep`
# containers from a --rootfs directory, read /proc/<supervisor>/smaps_rollup of each, print USS
# (Private_Clean + Private_Dirty), PSS and RSS per supervisor, then remove everything it made.
#
#   DROVER=/path/to/release/drover N=8 scripts/bench/supervisor.sh
#
# Needs root and busybox-static. With N=1 the binary's text counts as Private_Clean (no other
# process maps those file pages); with N ≥ 2 (or a running `drover server`) it is shared.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-8}"
if [[ -z "${DROVER:-}" ]]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
  cargo build --release -q -p drover
  DROVER="$CARGO_TARGET_DIR/release/drover"
fi
W="$(mktemp -d /tmp/drover-test-supbench.XXXXXX)"
PARENT="/drover-test-supbench-$$"
cleanup() {
  for i in $(seq 1 "$N"); do "$DROVER" rm -f --data-dir "$W/data" "sup$i" >/dev/null 2>&1 || true; done
  find /sys/fs/cgroup -maxdepth 2 -name "${PARENT#/}" -type d -exec rmdir {} + 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/rootfs/bin"
cp /bin/busybox "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/sleep"
for i in $(seq 1 "$N"); do
  "$DROVER" run -d --data-dir "$W/data" --rootfs "$W/rootfs" --cgroup-parent "$PARENT" \
    --name "sup$i" bench sleep 1000 >/dev/null
done
sleep 1
printf '%-8s %8s %8s %8s %8s\n' pid uss_kB dirty_kB pss_kB rss_kB
for dir in "$W"/data/containers/*/; do
  pid=""
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "supervise ${dir%/}"; then pid="${p#/proc/}"; break; fi
  done
  [[ -n "$pid" ]] || { echo "no supervisor for $dir" >&2; exit 1; }
  awk -v p="$pid" '/^Rss:/ {r=$2} /^Pss:/ {s=$2} /^Private_Clean:/ {c=$2} /^Private_Dirty:/ {d=$2}
    END {printf "%-8s %8d %8d %8d %8d\n", p, c+d, d, s, r}' "/proc/$pid/smaps_rollup"
done
