#!/usr/bin/env bash
# Installs everything tiergate needs on a fresh Debian 12 machine, from the project's own files:
# Debian packages (PyTorch sidecar, model tooling, Prometheus for tests), npm packages, the build.
# Safe to rerun: apt is skipped when every package is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-torch libopenblas0-pthread python3-numpy python3-grpcio python3-protobuf
  python3-numba python3-sentencepiece python3-onnx protobuf-compiler protobuf-compiler-grpc prometheus redis-server
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: Debian packages missing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install: run as root (or install them with sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "install: npm packages"
# Not `npm ci`: node-llama-cpp lists optional per-platform binaries that this registry does not
# serve (404), so npm leaves them out of the lock file and `npm ci` then refuses the lock as out
# of sync. `npm install` follows the same lock file (it stays unchanged) and skips them.
npm install --no-audit --no-fund

if [ -x sidecar/gen-stubs.sh ]; then
  echo "install: Python gRPC stubs"
  sidecar/gen-stubs.sh
fi

echo "install: build"
npm run build
echo "install: done"
