#!/usr/bin/env bash
# Generates the sidecar's Python gRPC stubs from proto/ with Debian's protoc (matching
# python3-protobuf 3.21) and grpc_python_plugin (protobuf-compiler-grpc, matching python3-grpcio).
# Output: sidecar/tiergate_sidecar/gen/ (gitignored). Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
out=sidecar/tiergate_sidecar/gen
for tool in protoc grpc_python_plugin; do
  command -v "$tool" >/dev/null || { echo "gen-stubs: $tool missing (apt-get install protobuf-compiler protobuf-compiler-grpc)" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out"
protoc -I proto \
  --python_out="$out" \
  --grpc_out="$out" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
  tiergate/v1/tier.proto grpc/health/v1/health.proto
# protoc emits absolute imports ("from grpc.health.v1 import health_pb2"); with gen/ on sys.path
# that "grpc" would shadow grpcio itself, so make them package-relative instead.
find "$out" -name '*_pb2_grpc.py' -exec sed -i -E 's/^from [a-z_.0-9]+ import ([a-z_0-9]+_pb2) as /from . import \1 as /' {} +
find "$out" -type d -exec touch {}/__init__.py \;
echo "gen-stubs: wrote $(find "$out" -name '*_pb2*.py' | wc -l) files to $out"
