#!/usr/bin/env bash
# OCI runtime benchmark: `drover runtime run` vs `crun run` vs `runc run` of /bin/true, the same
# busybox bundle, then create → start → delete, with hyperfine. Release build.
#
#   scripts/bench/runtime.sh                    # uses the standalone drover-runtime binary
#   DROVER=/path/to/drover scripts/bench/runtime.sh   # or the full `drover runtime`
#   RT_BIN=/path/to/drover-runtime scripts/bench/runtime.sh   # a prebuilt standalone binary
#   RUNS=100 PAIRS=100 scripts/bench/runtime.sh   # hyperfine runs; paired rounds
#
# crun 1.8 refuses hybrid cgroups ("drop all controllers from cgroupv2"): every runtime runs
# inside a private mount namespace (`unshare -m`) where an empty file is bind-mounted over
# /sys/fs/cgroup/unified/cgroup.controllers. The host's own view is never touched, and all three
# runtimes see the same thing, so the comparison is fair. Needs root, busybox-static, runc,
# crun, hyperfine. Results: hyperfine JSON under $WORK, medians and ratios printed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-rt}"
RUNS="${RUNS:-60}"
PAIRS="${PAIRS:-60}"
WORK="$(mktemp -d /tmp/drover-test-rtbench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

if [[ -n "${DROVER:-}" ]]; then
  RT=("$DROVER" runtime)       # the full binary, e.g. target/release/drover
elif [[ -n "${RT_BIN:-}" ]]; then
  RT=("$RT_BIN")               # a prebuilt standalone drover-runtime
else
  cargo build --release -q -p drover-runtime
  RT=("$CARGO_TARGET_DIR/release/drover-runtime")
fi

# The bundle: busybox with relative applet links, runc's default config with terminal off,
# /bin/true, no ambient capabilities (runc's spec lists them without the inheritable set).
B="$WORK/bundle"
mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/dev" "$B/rootfs/sys"
cp /bin/busybox "$B/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [[ "$a" == busybox ]] || ln -s busybox "$B/rootfs/bin/$a"; done
(cd "$B" && runc spec)
python3 - "$B/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["process"]["terminal"] = False
d["process"]["args"] = ["/bin/true"]
d["process"]["capabilities"].pop("ambient", None)
json.dump(d, open(p, "w"), indent=1)
EOF

touch "$WORK/empty"
# Paired rounds: the host is shared and noisy, so a ratio taken within one round (drover, crun,
# runc in turn) is steadier than the ratio of two medians measured a minute apart.
cat >"$WORK/paired.py" <<'PY'
import json, resource, subprocess, sys, time
out, n, cmds = sys.argv[1], int(sys.argv[2]), dict(zip(("drover", "crun", "runc"), sys.argv[3:6]))
rows = []
for i in range(n):
    row = {}
    for name, cmd in cmds.items():
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd.split() + [f"pair-{name}"], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        row[name] = (wall, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    rows.append(row)
json.dump(rows, open(out, "w"))
PY
cat >"$WORK/inner.sh" <<EOF
set -eu
mount --bind "$WORK/empty" /sys/fs/cgroup/unified/cgroup.controllers
cd "$B"
D="${RT[*]} --root $WORK/state-drover"
C="crun --root $WORK/state-crun"
R="runc --root $WORK/state-runc"
hyperfine -N -w 5 -r $RUNS --export-json "$WORK/run.json" \\
  -n drover "\$D run -b $B bench-d" \\
  -n crun "\$C run -b $B bench-c" \\
  -n runc "\$R run -b $B bench-r"
hyperfine -w 3 -r $RUNS --export-json "$WORK/lifecycle.json" \\
  -n drover "\$D create -b $B lc-d && \$D start lc-d && \$D delete -f lc-d" \\
  -n crun "\$C create -b $B lc-c && \$C start lc-c && \$C delete -f lc-c" \\
  -n runc "\$R create -b $B lc-r && \$R start lc-r && \$R delete -f lc-r"
python3 "$WORK/paired.py" "$WORK/paired.json" $PAIRS "\$D run -b $B" "\$C run -b $B" "\$R run -b $B"
EOF
unshare -m --propagation private sh "$WORK/inner.sh" >&2

python3 - "$WORK/paired.json" <<'EOF'
import json, statistics, sys
rows = json.load(open(sys.argv[1]))
for k in ("drover", "crun", "runc"):
    print(f"run /bin/true, paired: {k} median wall {statistics.median(r[k][0] for r in rows) * 1000:.2f} ms")
for peer in ("crun", "runc"):
    w = statistics.median(r["drover"][0] / r[peer][0] for r in rows)
    c = statistics.median(r["drover"][1] / r[peer][1] for r in rows if r[peer][1] > 0)
    print(f"run /bin/true, {len(rows)} paired rounds: drover/{peer} median per-round ratio: wall {w:.2f}, cpu {c:.2f}")
EOF

python3 - "$WORK/run.json" "$WORK/lifecycle.json" <<'EOF'
import json, sys, statistics
for path, what in zip(sys.argv[1:], ["run /bin/true", "create+start+delete"]):
    res = {r["command"]: r for r in json.load(open(path))["results"]}
    med = {k: statistics.median(v["times"]) * 1000 for k, v in res.items()}
    cpu = {k: (v["user"] + v["system"]) * 1000 for k, v in res.items()}
    print(f"{what}: median wall ms " + ", ".join(f"{k} {m:.2f}" for k, m in med.items()))
    print(f"{what}: mean user+sys ms " + ", ".join(f"{k} {c:.2f}" for k, c in cpu.items()))
    for peer in ("crun", "runc"):
        print(f"{what}: drover/{peer} median wall {med['drover'] / med[peer]:.2f}, cpu {cpu['drover'] / cpu[peer]:.2f}")
EOF
