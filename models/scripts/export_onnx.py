"""The family's reference GGUF (F32, or F16 upcast) -> <id>-fp32.onnx + <id>-fp32.onnx.data:
decoder with KV cache in the optimum / onnxruntime-genai I/O convention, written by
tiergate_model.onnx_writer one GGUF tensor at a time with every weight as ONNX external data (no
torch tracing: memory holds the graph and one tensor, and the model may exceed protobuf's 2 GiB).
Built from the GGUF (not the training checkpoint), so ONNX holds exactly the weights llama.cpp
and the sidecar serve.

Inputs:  input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
         position_ids [batch, seq] int64, past_key_values.N.key|value [batch, kv_heads, past, head_dim] f32
Outputs: logits [batch, seq, vocab] f32 and, with --kv-io append (the default),
         new_key_values.N.key|value [batch, kv_heads, seq, head_dim] f32: only the new positions, so
         the caller appends them to its cache in place; with --kv-io present (the optimum
         convention, for other runtimes) present.N.key|value [batch, kv_heads, past+seq, head_dim].
A first step passes zero-length past tensors.

Progress: `@@progress done total tensor` lines when TIERGATE_PROGRESS=1 (tiergate convert's bar),
otherwise one line per ~5% of the tensors.
"""

import argparse
import os
import time

import onnx
from common import FAMILY, log, variant_path

from tiergate_model.family import reference_variant
from tiergate_model.onnx_writer import KV_IO, PRECISIONS, write_decoder


def progress_printer(what: str):
    """on_tensor callback for write_decoder (the same lines as convert_hf.py's weights stage)."""
    t0 = time.time()
    bar = os.environ.get("TIERGATE_PROGRESS") == "1"

    def on_tensor(done: int, total: int, name: str) -> None:
        if bar:
            print(f"@@progress {done} {total} {name}", flush=True)
        elif done % max(1, total // 20) == 0 or done == total:
            log(f"{what}: {done}/{total} tensors ({time.time() - t0:.0f}s)")

    return on_tensor


def write(gguf: str, out: str, precision: str, kv_io: str = "append") -> None:
    r = write_decoder(gguf, out, precision, progress_printer(f"onnx {precision}"), kv_io)
    # The checker resolves the external data beside the file, as onnxruntime does.
    onnx.checker.check_model(out)
    log(f"wrote {out} ({r['graph_bytes']:,} bytes) + {os.path.basename(r['data_file'])} ({r['data_bytes']:,} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=variant_path(reference_variant(FAMILY)))
    ap.add_argument("--out", default=variant_path("onnx-fp32"))
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32")
    ap.add_argument("--kv-io", choices=KV_IO, default="append", help="KV outputs: new positions only, or past + new")
    args = ap.parse_args()
    write(args.gguf, args.out, args.precision, args.kv_io)


if __name__ == "__main__":
    main()
