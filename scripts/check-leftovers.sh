#!/usr/bin/env bash
# Fails when a privileged test left something behind: every test-made cgroup, mount, network
# namespace, link, state dir or process carries the name prefix `drover-test-` (TESTING.md).
set -uo pipefail
prefix="drover-test-"
found=0
if [ "${1:-}" = "--self-test" ]; then
  # Negative control: a planted leftover must be reported.
  planted="/tmp/${prefix}leftover-self-test-$$"
  mkdir "$planted"
  if "$0" >/dev/null 2>&1; then rmdir "$planted"; echo "self-test: planted $planted was not found" >&2; exit 1; fi
  rmdir "$planted"
  echo "self-test: a planted leftover is caught"
  exit 0
fi
report() { echo "leftover: $*" >&2; found=1; }

for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
  while IFS= read -r cg; do report "cgroup $cg"; done < <(find "$d" -maxdepth 4 -type d -name "${prefix}*" 2>/dev/null)
done
while IFS= read -r m; do report "mount $m"; done < <(awk -v p="$prefix" 'index($2, p) {print $2}' /proc/self/mounts)
if command -v ip >/dev/null; then
  while IFS= read -r n; do report "netns $n"; done < <(ip netns list 2>/dev/null | awk -v p="$prefix" 'index($1, p) == 1 {print $1}')
  while IFS= read -r l; do report "link $l"; done < <(ip -o link show 2>/dev/null | awk -F': ' -v p="$prefix" 'index($2, p) == 1 {print $2}')
fi
for d in /run /tmp /var/tmp; do
  while IFS= read -r f; do report "path $f"; done < <(find "$d" -maxdepth 1 -name "${prefix}*" 2>/dev/null)
done
while IFS= read -r p; do report "process $p"; done < <(ps -eo pid=,args= | awk -v p="$prefix" 'index($0, p) && !/check-leftovers/ {print}')

if [ "$found" = 1 ]; then
  echo "privileged tests left resources behind (prefix $prefix); see above" >&2
  exit 1
fi
echo "no leftovers with prefix $prefix"
