"""A GGUF writer that takes tensor data one tensor at a time (`tiergate convert`): the header
(metadata, then every tensor's name, dims, type and offset) only needs the shapes, so it is
written first and each tensor is produced, written and dropped in turn. Same layout as
gguf_writer.GGUFWriter, which holds every tensor in memory.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Callable, List, Tuple

import numpy as np

from .gguf_writer import ALIGNMENT, GGML_TYPE_F16, GGML_TYPE_F32, GGUF_MAGIC, GGUF_VERSION, GGUFWriter, _string

# Largest magnitude IEEE half represents; beyond it a value would become infinity.
F16_MAX = 65504.0


class StreamingGGUFWriter(GGUFWriter):
    def __init__(self) -> None:
        super().__init__()
        self._plan: List[Tuple[str, Tuple[int, ...], int]] = []

    def plan_tensor(self, name: str, shape: Tuple[int, ...], f16: bool) -> None:
        """Declare a tensor (numpy shape); F16 applies to 2-D weights only, as llama.cpp stores norms in F32."""
        self._plan.append((name, tuple(shape), GGML_TYPE_F16 if f16 and len(shape) == 2 else GGML_TYPE_F32))

    def write_streaming(self, fh: BinaryIO, produce: Callable[[int], np.ndarray], on_tensor: Callable[[int], None] = lambda i: None) -> None:
        """Writes the header, then `produce(i)` (float32, the planned shape) for every planned tensor."""
        out = bytearray()
        out += GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self._plan), len(self._kv))
        for key, vtype, value, elem_type in self._kv:
            out += _string(key) + struct.pack("<I", vtype) + self._value(vtype, value, elem_type)
        offset = 0
        for name, shape, ggml_type in self._plan:
            dims = list(reversed(shape))
            out += _string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
            out += struct.pack("<IQ", ggml_type, offset)
            nbytes = int(np.prod(shape)) * (2 if ggml_type == GGML_TYPE_F16 else 4)
            offset += (nbytes + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        out += b"\0" * (-len(out) % ALIGNMENT)
        fh.write(out)
        del out
        for i, (name, shape, ggml_type) in enumerate(self._plan):
            data = produce(i)
            if tuple(data.shape) != shape:
                raise ValueError(f"tensor {name}: produced shape {data.shape}, planned {shape}")
            if ggml_type == GGML_TYPE_F16:
                peak = float(np.abs(data).max()) if data.size else 0.0
                if not peak <= F16_MAX:
                    raise OverflowError(f"tensor {name}: values up to {peak:g} do not fit IEEE half (max {F16_MAX:g}): write F32")
                data = data.astype("<f2")
            else:
                data = np.ascontiguousarray(data, dtype="<f4")
            fh.write(memoryview(data).cast("B"))
            fh.write(b"\0" * (-data.nbytes % ALIGNMENT))
            del data
            on_tensor(i)
