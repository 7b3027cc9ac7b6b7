#!/usr/bin/env bash
# Builds drover (release) and installs it to /usr/local/bin, with what it uses at run time
# (tini-static for `drover run --init`). Run as root on Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential ca-certificates curl protobuf-compiler tini >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "install: a Rust toolchain is needed (cargo not found); install rustup's stable toolchain first" >&2
  exit 1
fi
cargo build --release --locked -p drover
install -m 0755 "${CARGO_TARGET_DIR:-target}/release/drover" /usr/local/bin/drover
# A runc-like executable name for tools that take a runtime path (podman --runtime …).
ln -sf drover /usr/local/bin/drover-runtime
echo "installed: $(/usr/local/bin/drover --version)"
