"""A GGUF reader: metadata and F32/F16 tensors, memory-mapped with NumPy.

Follows the GGUF file format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md),
versions 2 and 3, little-endian only. Quantized tensor types are reported but not decoded: the
PyTorch tier serves the full-precision variant, and decoding k-quants is llama.cpp's job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, List, Tuple

import numpy as np

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# gguf_metadata_value_type
_SCALARS: Dict[int, Tuple[str, int]] = {
    0: ("<B", 1),  # UINT8
    1: ("<b", 1),  # INT8
    2: ("<H", 2),  # UINT16
    3: ("<h", 2),  # INT16
    4: ("<I", 4),  # UINT32
    5: ("<i", 4),  # INT32
    6: ("<f", 4),  # FLOAT32
    7: ("<?", 1),  # BOOL
    10: ("<Q", 8),  # UINT64
    11: ("<q", 8),  # INT64
    12: ("<d", 8),  # FLOAT64
}
_STRING = 8
_ARRAY = 9

# ggml_type values this reader can turn into arrays, and their NumPy dtypes.
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
_DTYPES = {GGML_TYPE_F32: np.dtype("<f4"), GGML_TYPE_F16: np.dtype("<f2")}
_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K",
               12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 30: "BF16"}


class GGUFError(ValueError):
    """The file is not a GGUF this reader supports."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    # NumPy order (slowest axis first): GGUF stores ne[0] (the fastest axis) first.
    shape: Tuple[int, ...]
    ggml_type: int
    offset: int  # absolute offset of the data in the file

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.ggml_type, f"type{self.ggml_type}")


class GGUFFile:
    """One GGUF file: `metadata` (key → value) and `tensors` (name → TensorInfo)."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as f:
            self.version, self.metadata, infos, data_start = _read_header(f)
        self.tensors: Dict[str, TensorInfo] = {
            name: TensorInfo(name, shape, t, data_start + rel) for name, shape, t, rel in infos
        }
        self._map = np.memmap(path, dtype=np.uint8, mode="r")

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as a read-only array view of the mapped file (F32 or F16)."""
        info = self.tensors.get(name)
        if info is None:
            raise KeyError(f"tensor {name!r} not in {self.path}")
        dtype = _DTYPES.get(info.ggml_type)
        if dtype is None:
            raise GGUFError(
                f"tensor {name!r} is {info.type_name}; only F32 and F16 GGUF files can be loaded "
                "into PyTorch (serve quantized variants from the llama.cpp tier)"
            )
        count = int(np.prod(info.shape)) if info.shape else 1
        raw = self._map[info.offset : info.offset + count * dtype.itemsize]
        return raw.view(dtype).reshape(info.shape)

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.metadata:
            raise GGUFError(f"{self.path}: metadata key {key!r} missing")
        return self.metadata[key]


def _read_exact(f: BinaryIO, n: int) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise GGUFError("unexpected end of file in GGUF header")
    return b


def _read_scalar(f: BinaryIO, fmt: str, size: int) -> Any:
    return struct.unpack(fmt, _read_exact(f, size))[0]


def _read_string(f: BinaryIO) -> str:
    n = _read_scalar(f, "<Q", 8)
    return _read_exact(f, n).decode("utf-8", errors="replace")


def _read_value(f: BinaryIO, vtype: int) -> Any:
    if vtype in _SCALARS:
        fmt, size = _SCALARS[vtype]
        return _read_scalar(f, fmt, size)
    if vtype == _STRING:
        return _read_string(f)
    if vtype == _ARRAY:
        item_type = _read_scalar(f, "<I", 4)
        count = _read_scalar(f, "<Q", 8)
        if item_type in _SCALARS and item_type != 7:
            # Vocabulary scores/types can be large; read numeric arrays in one go.
            fmt, size = _SCALARS[item_type]
            return np.frombuffer(_read_exact(f, size * count), dtype=np.dtype(fmt)).tolist()
        return [_read_value(f, item_type) for _ in range(count)]
    raise GGUFError(f"unknown GGUF metadata value type {vtype}")


def _read_header(f: BinaryIO) -> Tuple[int, Dict[str, Any], List[Tuple[str, Tuple[int, ...], int, int]], int]:
    if _read_exact(f, 4) != GGUF_MAGIC:
        raise GGUFError("not a GGUF file (bad magic)")
    version = _read_scalar(f, "<I", 4)
    if version not in (2, 3):
        raise GGUFError(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors = _read_scalar(f, "<Q", 8)
    n_kv = _read_scalar(f, "<Q", 8)
    metadata: Dict[str, Any] = {}
    for _ in range(n_kv):
        key = _read_string(f)
        metadata[key] = _read_value(f, _read_scalar(f, "<I", 4))
    infos = []
    for _ in range(n_tensors):
        name = _read_string(f)
        n_dims = _read_scalar(f, "<I", 4)
        dims = [_read_scalar(f, "<Q", 8) for _ in range(n_dims)]
        ggml_type = _read_scalar(f, "<I", 4)
        rel = _read_scalar(f, "<Q", 8)
        infos.append((name, tuple(reversed(dims)), ggml_type, rel))
    alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    pos = f.tell()
    data_start = (pos + alignment - 1) // alignment * alignment
    return version, metadata, infos, data_start
