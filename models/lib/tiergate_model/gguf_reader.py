"""Read a tiergate GGUF F32 (or F16) file back into a PyTorch `Llama` (the PyTorch tier serves the
same weights as llama.cpp). Parses the GGUF v3 layout described in gguf_writer.py; F16 tensors are
upcast exactly to float32. `tensor_types` lists the ggml type of every tensor of any GGUF file
(quantized ones included), for the manifest's honest precision labels.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, Tuple

import numpy as np
import torch

from .gguf_writer import ALIGNMENT, GGML_TYPE_F16, GGML_TYPE_F32, GGUF_MAGIC, T_ARRAY, T_STRING, _SCALAR_FMT
from .llama import Llama, LlamaConfig, torch_name_for


class _Cursor:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str):
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals

    def string(self) -> str:
        (n,) = self.unpack("<Q")
        s = self.buf[self.pos : self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype: int) -> Any:
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            etype, count = self.unpack("<IQ")
            return [self.value(etype) for _ in range(count)]
        return self.unpack(_SCALAR_FMT[vtype])[0]


# ggml_type names (ggml.h), for reports.
GGML_TYPE_NAMES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0", 9: "q8_1",
                   10: "q2_K", 11: "q3_K", 12: "q4_K", 13: "q5_K", 14: "q6_K", 15: "q8_K", 30: "bf16"}


def _header(buf: bytes, path: str):
    c = _Cursor(buf)
    if buf[:4] != GGUF_MAGIC:
        raise ValueError(f"{path}: not a GGUF file")
    c.pos = 4
    version, n_tensors, n_kv = c.unpack("<IQQ")
    if version != 3:
        raise ValueError(f"{path}: GGUF version {version}, expected 3")
    meta: Dict[str, Any] = {}
    for _ in range(n_kv):
        key = c.string()
        (vtype,) = c.unpack("<I")
        meta[key] = c.value(vtype)
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        (n_dims,) = c.unpack("<I")
        dims = c.unpack(f"<{n_dims}Q")
        ttype, offset = c.unpack("<IQ")
        infos.append((name, dims, ttype, offset))
    return c, meta, infos


def tensor_types(path: str) -> Dict[str, str]:
    """GGUF tensor name -> ggml type name (e.g. {"blk.0.attn_q.weight": "q4_K", ...})."""
    with open(path, "rb") as fh:
        buf = fh.read()
    _, _, infos = _header(buf, path)
    return {name: GGML_TYPE_NAMES.get(ttype, f"type{ttype}") for name, _, ttype, _ in infos}


def read_gguf(path: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(metadata, tensors by GGUF name as float32 arrays in torch/numpy row-major shape)."""
    with open(path, "rb") as fh:
        buf = fh.read()
    c, meta, infos = _header(buf, path)
    align = int(meta.get("general.alignment", ALIGNMENT))
    data_start = (c.pos + align - 1) // align * align
    tensors: Dict[str, np.ndarray] = {}
    for name, dims, ttype, offset in infos:
        if ttype not in (GGML_TYPE_F32, GGML_TYPE_F16):
            raise ValueError(f"{path}: tensor {name} is ggml type {ttype}; only F32/F16 files can be loaded")
        count = int(np.prod(dims))
        dtype = "<f4" if ttype == GGML_TYPE_F32 else "<f2"
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=data_start + offset)
        tensors[name] = arr.reshape(tuple(reversed(dims))).astype(np.float32)
    return meta, tensors


def config_from_gguf(meta: Dict[str, Any]) -> LlamaConfig:
    return LlamaConfig(
        dim=int(meta["llama.embedding_length"]),
        n_layers=int(meta["llama.block_count"]),
        n_heads=int(meta["llama.attention.head_count"]),
        n_kv_heads=int(meta.get("llama.attention.head_count_kv", meta["llama.attention.head_count"])),
        vocab_size=len(meta["tokenizer.ggml.tokens"]),
        ffn_dim=int(meta["llama.feed_forward_length"]),
        norm_eps=float(meta["llama.attention.layer_norm_rms_epsilon"]),
        rope_theta=float(meta.get("llama.rope.freq_base", 10000.0)),
        max_seq_len=int(meta["llama.context_length"]),
        tie_embeddings=True,
    )


def load_llama_from_gguf(path: str) -> Llama:
    """Build the PyTorch model from a GGUF F32 file written by models/scripts/export_gguf.py."""
    meta, tensors = read_gguf(path)
    cfg = config_from_gguf(meta)
    cfg.tie_embeddings = "output.weight" not in tensors
    model = Llama(cfg)
    state = {torch_name_for(name): torch.from_numpy(arr) for name, arr in tensors.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
