# tiergate: gateway (Node 20) and PyTorch sidecar (Debian's python3-torch) in one image.
# The gateway runs `tiergate serve` (default CMD); the sidecar service runs the same image with
# `python3 -m tiergate_sidecar` (deploy/docker-compose.yaml, deploy/k8s/sidecar.yaml).
# Build from the repo root after `npm run models:build` (the image ships models/tiny):
#   docker build -t tiergate:dev .

# --- build: compile TypeScript, then keep production dependencies only ---------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
# onnxruntime-node's install script downloads CUDA files; its CPU binaries are in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
  && npm prune --omit=dev --no-audit --no-fund \
  # GPU builds of llama.cpp are optional packages (~1 GB); tiergate loads the CPU build only.
  && rm -rf node_modules/@node-llama-cpp/linux-x64-cuda* node_modules/@node-llama-cpp/linux-x64-vulkan \
       node_modules/@node-llama-cpp/linux-arm*

# --- stubs: the sidecar's Python gRPC stubs from proto/ (Debian's protoc matches python3-protobuf)
FROM debian:bookworm-slim AS stubs
RUN apt-get update -q \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       protobuf-compiler protobuf-compiler-grpc \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY proto ./proto
COPY sidecar ./sidecar
RUN sidecar/gen-stubs.sh

# --- runtime --------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
# The sidecar's Python stack comes from Debian (no PyPI at build or run time); OpenBLAS makes
# torch ~10x faster than the reference BLAS.
RUN apt-get update -q \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       python3 python3-torch libopenblas0-pthread python3-numpy python3-grpcio python3-protobuf \
       python3-numba python3-sentencepiece tini \
  && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tiergate \
  && useradd --system --uid 10001 --gid tiergate --home-dir /app --shell /usr/sbin/nologin tiergate
WORKDIR /app
ENV NODE_ENV=production \
    TIERGATE_CONFIG=/app/deploy/config/tiergate.yaml \
    TIERGATE_HOST=0.0.0.0 \
    TIERGATE_PORT=8080
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY proto ./proto
COPY config ./config
COPY deploy/config ./deploy/config
COPY models/lib ./models/lib
COPY models/tiny/manifest.json models/tiny/tokenizer.model models/tiny/golden.json ./models/tiny/
COPY models/tiny/tiny-f32.gguf models/tiny/tiny-q8_0.gguf models/tiny/tiny-q4_k_m.gguf ./models/tiny/
# ONNX weights are external data beside each graph (models/lib/tiergate_model/onnx_writer.py).
COPY models/tiny/tiny-fp32.onnx models/tiny/tiny-fp32.onnx.data ./models/tiny/
COPY models/tiny/tiny-int8.onnx models/tiny/tiny-int8.onnx.data models/tiny/tiny-int4.onnx models/tiny/tiny-int4.onnx.data ./models/tiny/
COPY --from=stubs /src/sidecar ./sidecar
USER tiergate
EXPOSE 8080 50051
# /healthz answers while the process is alive; readiness (/readyz) is the orchestrator's business.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.TIERGATE_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini forwards SIGTERM so the gateway drains in-flight requests, and reaps a spawned sidecar.
ENTRYPOINT ["/usr/bin/tini", "--"]
# --max-semi-space-size: docs/gateway.md, "Runtime flags".
CMD ["node", "--max-semi-space-size=64", "bin/tiergate.js", "serve"]
