"""A small GGUF (version 3) writer for F32 and F16 tensors, written from the format specification
(https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): little-endian header
"GGUF", version, tensor count, metadata count; typed key/value metadata; tensor infos
(name, dims with the fastest-varying first, ggml type, offset); then the aligned tensor data.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, List, Sequence, Tuple, Union

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32  # general.alignment default

# gguf_metadata_value_type
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(13)
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1

_SCALAR_FMT = {
    T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I", T_INT32: "<i",
    T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d",
}

Value = Union[str, int, float, bool, Sequence]


def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    def __init__(self) -> None:
        self._kv: List[Tuple[str, int, Value, int]] = []
        self._tensors: List[Tuple[str, np.ndarray, int]] = []

    def add(self, key: str, vtype: int, value: Value, elem_type: int = -1) -> None:
        """Add one metadata entry; for T_ARRAY give elem_type (a scalar or T_STRING)."""
        self._kv.append((key, vtype, value, elem_type))

    def add_tensor(self, name: str, data: np.ndarray, f16: bool = False) -> None:
        """Add a tensor given in numpy (row-major) shape, stored as F32 or (f16) IEEE half;
        GGUF dims are written reversed."""
        if f16:
            self._tensors.append((name, np.ascontiguousarray(data, dtype="<f2"), GGML_TYPE_F16))
        else:
            self._tensors.append((name, np.ascontiguousarray(data, dtype="<f4"), GGML_TYPE_F32))

    @staticmethod
    def _value(vtype: int, value: Value, elem_type: int) -> bytes:
        if vtype == T_STRING:
            return _string(str(value))
        if vtype == T_ARRAY:
            items = list(value)  # type: ignore[arg-type]
            head = struct.pack("<IQ", elem_type, len(items))
            if elem_type == T_STRING:
                return head + b"".join(_string(s) for s in items)
            np_type = {T_FLOAT32: "<f4", T_INT32: "<i4", T_UINT32: "<u4", T_UINT8: "u1", T_INT64: "<i8"}[elem_type]
            return head + np.asarray(items, dtype=np_type).tobytes()
        return struct.pack(_SCALAR_FMT[vtype], value)

    def write(self, fh: BinaryIO) -> None:
        out = bytearray()
        out += GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self._tensors), len(self._kv))
        for key, vtype, value, elem_type in self._kv:
            out += _string(key) + struct.pack("<I", vtype) + self._value(vtype, value, elem_type)
        offset = 0
        offsets = []
        for name, data, ggml_type in self._tensors:
            dims = list(reversed(data.shape))
            out += _string(name) + struct.pack("<I", len(dims))
            out += struct.pack(f"<{len(dims)}Q", *dims)
            out += struct.pack("<IQ", ggml_type, offset)
            offsets.append(offset)
            offset += (data.nbytes + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        out += b"\0" * (-len(out) % ALIGNMENT)
        fh.write(out)
        for (name, data, _), off in zip(self._tensors, offsets):
            raw = data.tobytes()
            fh.write(raw + b"\0" * (-len(raw) % ALIGNMENT))
