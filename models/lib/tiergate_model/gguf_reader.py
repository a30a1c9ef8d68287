"""Read a tiergate GGUF F32 (or F16) file back into a PyTorch `Llama` (the PyTorch tier serves the
same weights as llama.cpp). Parses the GGUF v3 layout described in gguf_writer.py; F16 tensors are
upcast exactly to float32. `tensor_types` lists the ggml type of every tensor of any GGUF file
(quantized ones included), for the manifest's honest precision labels.

The header is parsed from a memory map (only its pages are touched) and each tensor is read on
its own, so a large file is never held twice: loading a model costs its parameters plus one tensor.
"""

from __future__ import annotations

import mmap
import struct
from typing import Any, Dict, Tuple

import numpy as np

from .gguf_writer import ALIGNMENT, GGML_TYPE_F16, GGML_TYPE_F32, GGUF_MAGIC, T_ARRAY, T_STRING, _SCALAR_FMT

# torch (through .llama) is imported by the functions that build a model, so reading headers and
# tensor types (the quantize step) stays light.


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


def _mapped_header(path: str):
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        c, meta, infos = _header(mm, path)  # type: ignore[arg-type]
        align = int(meta.get("general.alignment", ALIGNMENT))
        return meta, infos, (c.pos + align - 1) // align * align
    finally:
        mm.close()


def tensor_types(path: str) -> Dict[str, str]:
    """GGUF tensor name -> ggml type name (e.g. {"blk.0.attn_q.weight": "q4_K", ...})."""
    _, infos, _ = _mapped_header(path)
    return {name: GGML_TYPE_NAMES.get(ttype, f"type{ttype}") for name, _, ttype, _ in infos}


def _tensors(path: str, infos, data_start: int):
    """(GGUF name, float32 array in torch/numpy row-major shape), one tensor read at a time."""
    for name, dims, ttype, offset in infos:
        if ttype not in (GGML_TYPE_F32, GGML_TYPE_F16):
            raise ValueError(f"{path}: tensor {name} is ggml type {ttype}; only F32/F16 files can be loaded")
        count = int(np.prod(dims))
        dtype = "<f4" if ttype == GGML_TYPE_F32 else "<f2"
        arr = np.fromfile(path, dtype=dtype, count=count, offset=data_start + offset)
        if arr.size != count:
            raise ValueError(f"{path}: truncated in tensor {name}")
        yield name, arr.reshape(tuple(reversed(dims))).astype(np.float32, copy=False)


class GgufTensors:
    """A GGUF file's metadata and tensor table, and one tensor read at a time in its stored type
    (F32 or F16, not upcast): the ONNX writer (onnx_writer.py) widens F16 in chunks, so a tensor
    is never held as F16 and F32 at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.meta, infos, self._data_start = _mapped_header(path)
        self.infos = {name: (dims, ttype, offset) for name, dims, ttype, offset in infos}

    def shape(self, name: str) -> Tuple[int, ...]:
        """torch/numpy row-major shape (GGUF lists dims innermost first)."""
        return tuple(int(d) for d in reversed(self.infos[name][0]))

    def read(self, name: str) -> np.ndarray:
        dims, ttype, offset = self.infos[name]
        if ttype not in (GGML_TYPE_F32, GGML_TYPE_F16):
            raise ValueError(f"{self.path}: tensor {name} is ggml type {ttype}; only F32/F16 files can be read")
        count = int(np.prod(dims))
        arr = np.fromfile(self.path, dtype="<f4" if ttype == GGML_TYPE_F32 else "<f2", count=count, offset=self._data_start + offset)
        if arr.size != count:
            raise ValueError(f"{self.path}: truncated in tensor {name}")
        return arr.reshape(self.shape(name))


def read_gguf(path: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(metadata, tensors by GGUF name as float32 arrays in torch/numpy row-major shape)."""
    meta, infos, data_start = _mapped_header(path)
    return meta, dict(_tensors(path, infos, data_start))


def config_from_gguf(meta: Dict[str, Any]):
    from .llama import LlamaConfig

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


def load_llama_from_gguf(path: str):
    """Build the PyTorch model (tiergate_model.llama.Llama) from a GGUF F32 file written by
    models/scripts/export_gguf.py (or convert_hf.py); tensors are copied in one at a time."""
    import torch

    from .llama import Llama, torch_name_for

    meta, infos, data_start = _mapped_header(path)
    cfg = config_from_gguf(meta)
    names = {name for name, _, _, _ in infos}
    cfg.tie_embeddings = "output.weight" not in names
    model = Llama(cfg)
    params = model.state_dict()
    wanted = {torch_name_for(name) for name in names}
    if wanted != set(params):
        raise ValueError(f"{path}: tensors do not match the model: missing {sorted(set(params) - wanted)}, unexpected {sorted(wanted - set(params))}")
    with torch.no_grad():
        for name, arr in _tensors(path, infos, data_start):
            target = params[torch_name_for(name)]
            if tuple(target.shape) != arr.shape:
                raise ValueError(f"{path}: tensor {name} has shape {arr.shape}, the model expects {tuple(target.shape)}")
            target.copy_(torch.from_numpy(arr))
    model.eval()
    return model
