"""Writes a small random-weight LLaMA GGUF (F32 or F16) with the shared model definition, for
sidecar tests that must not depend on the trained model family. Prints nothing; exits 0.

Usage: /usr/bin/python3 test/sidecar/make_random_gguf.py OUT.gguf [f32|f16] [seed]
"""

import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "models", "lib"))
from tiergate_model.llama import Llama, LlamaConfig  # noqa: E402

U32, F32, STR, ARR = 4, 6, 8, 9


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, vtype: int, value) -> bytes:
    out = _str(key) + struct.pack("<I", vtype)
    if vtype == U32:
        return out + struct.pack("<I", value)
    if vtype == F32:
        return out + struct.pack("<f", value)
    if vtype == STR:
        return out + _str(value)
    item_type, items = value
    out += struct.pack("<IQ", item_type, len(items))
    for it in items:
        out += _str(it) if item_type == STR else struct.pack("<f", it)
    return out


def main() -> None:
    path = sys.argv[1]
    dtype = sys.argv[2] if len(sys.argv) > 2 else "f32"
    torch.manual_seed(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    cfg = LlamaConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=96, ffn_dim=128,
                      max_seq_len=4096, tie_embeddings=False)
    model = Llama(cfg)
    # Larger weights than the training init so logits are far from uniform (greedy is stable).
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    kvs = [
        _kv("general.architecture", STR, "llama"),
        _kv("general.name", STR, "random-test"),
        _kv("general.alignment", U32, 32),
        _kv("llama.context_length", U32, cfg.max_seq_len),
        _kv("llama.embedding_length", U32, cfg.dim),
        _kv("llama.block_count", U32, cfg.n_layers),
        _kv("llama.feed_forward_length", U32, cfg.ffn_dim),
        _kv("llama.attention.head_count", U32, cfg.n_heads),
        _kv("llama.attention.head_count_kv", U32, cfg.n_kv_heads),
        _kv("llama.attention.layer_norm_rms_epsilon", F32, cfg.norm_eps),
        _kv("llama.rope.freq_base", F32, cfg.rope_theta),
        _kv("tokenizer.ggml.tokens", ARR, (STR, [f"t{i}" for i in range(cfg.vocab_size)])),
    ]
    tensors = []
    for name, array in model.named_weights_for_gguf():
        # 1-D norm gains stay F32 as llama.cpp's converters keep them.
        a = array.astype(np.float16) if dtype == "f16" and array.ndim == 2 else array.astype(np.float32)
        tensors.append((name, a))
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos, blobs, offset = b"", [], 0
    for name, a in tensors:
        ggml_type = 1 if a.dtype == np.float16 else 0
        infos += _str(name) + struct.pack("<I", a.ndim) + b"".join(struct.pack("<Q", d) for d in reversed(a.shape))
        infos += struct.pack("<IQ", ggml_type, offset)
        data = a.tobytes()
        pad = (-len(data)) % 32
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head = header + infos
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


if __name__ == "__main__":
    main()
