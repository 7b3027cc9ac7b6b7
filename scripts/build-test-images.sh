#!/usr/bin/env bash
# Builds Drover's fixture images (crates/testing) as OCI layouts, and optionally pushes them.
#   scripts/build-test-images.sh OUT_DIR                      # build-all into OUT_DIR
#   scripts/build-test-images.sh OUT_DIR 127.0.0.1:5000 [NS]  # and push (skopeo in netns NS)
# See docs/test-images.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: $0 OUT_DIR [REGISTRY_HOST:PORT [NETNS]]}"
cargo build --quiet -p drover-testing --bin drover-fixtures
bin="${CARGO_TARGET_DIR:-target}/debug/drover-fixtures"
"$bin" build-all --out "$out"
if [ -n "${2:-}" ]; then
  if [ -n "${3:-}" ]; then
    "$bin" push --registry "$2" --from "$out" --netns "$3"
  else
    "$bin" push --registry "$2" --from "$out"
  fi
fi
