"""The family's ONNX decoders (FP32, INT8, INT4) written straight from a GGUF F32/F16 file, one
tensor at a time, every weight stored as ONNX external data in one file beside the graph
(`<name>.onnx.data`). Nothing is traced: the graph is built node by node with standard opset-17
ops (plus com.microsoft MatMulNBits for INT4), so memory holds the small graph and one tensor,
and a model of any size can be written (a single protobuf cannot exceed 2 GiB; external data has
no such limit).

The maths is tiergate_model/llama.py's, op for op where it affects the numbers:
  RMSNorm      x * (1 / sqrt(mean(x^2) + eps)) * gain
  rotary       adjacent pairs (x[2i], x[2i+1]); inv_freq = 1 / theta^(2i/head_dim) in float32
  attention    grouped-query by broadcasting ([B, kv, rep, T, D] x [B, kv, 1, D, P+T]), scores
               / sqrt(head_dim), causal + padding mask filled with -1e9 (finite: a fully padded
               row stays free of NaN), softmax
  feed-forward w2(silu(w1 x) * w3 x), silu as x * sigmoid(x)
  output       the embedding's transpose when tied (stored once), else output.weight
I/O (optimum / onnxruntime-genai convention, read by src/tiers/onnx/decoder-spec.ts):
  inputs  input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
          position_ids [batch, seq] int64, past_key_values.N.key|value [batch, kv_heads, past, head_dim]
  outputs logits [batch, seq, vocab], present.N.key|value [batch, kv_heads, past+seq, head_dim]
A first step passes zero-length past tensors.

Weights (GGUF W is torch's [out, in]; MatMul takes x @ W^T, so a weight is stored as W^T [in, out]):
  fp32  MatMul with W^T.
  int8  DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W^T int8, x_zp) -> Cast -> Mul(x_scale)
        -> Mul(w_scale), symmetric per output column (the pattern onnxruntime fuses into
        DynamicQuantizeMatMul). The embedding is one int8 table with a per-token scale: the input
        Gather dequantizes the rows it picks, the tied output multiplies by its transpose.
  int4  com.microsoft MatMulNBits (bits 4, block 32, symmetric, zero point 8, the largest-magnitude
        value of a block mapped to -8 like llama.cpp's Q4_0; B packed [N, K/32, 16], lower index
        in the low nibble). The input embedding uses the int8 table above (a gather of 4-bit rows
        has no standard op); a tied output projection is a MatMulNBits of the embedding.
  Norm gains stay float32 in every variant.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .gguf_reader import GgufTensors

OPSET = 17
BLOCK = 32
PRECISIONS = ("fp32", "int8", "int4")
# KV-cache I/O: "append" outputs only the new positions' keys/values (new_key_values.N.*), so the
# caller keeps the cache in place; "present" is the optimum convention (present.N.* = past + new).
KV_IO = ("append", "present")
# The value masked scores are set to (llama.py's masked_fill value).
MASKED = -1e9
# onnxruntime memory-maps an external initializer only when its offset is a multiple of the
# allocation granularity (4 KiB on Linux, 64 KiB on Windows): big tensors start at 64 KiB.
ALIGN_BIG, BIG = 1 << 16, 1 << 20
# Transposes and quantization work on slices of about this many float32 bytes, so a tensor's
# temporaries stay small next to the tensor itself.
CHUNK_BYTES = 8 << 20

F32, I64 = np.dtype("<f4"), np.dtype("<i8")


def data_file_name(onnx_path: str) -> str:
    """The external data file of a decoder: `<file>.onnx.data` beside it (family.data_file)."""
    return os.path.basename(onnx_path) + ".data"


@dataclass(frozen=True)
class DecoderShape:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab: int
    norm_eps: float
    rope_theta: float
    tied: bool

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


def decoder_shape(g: GgufTensors) -> DecoderShape:
    """The shape from the GGUF metadata (the keys gguf_reader.config_from_gguf reads) and tensors."""
    m = g.meta
    heads = int(m["llama.attention.head_count"])
    shape = DecoderShape(
        dim=int(m["llama.embedding_length"]),
        n_layers=int(m["llama.block_count"]),
        n_heads=heads,
        n_kv_heads=int(m.get("llama.attention.head_count_kv", heads)),
        ffn_dim=int(m["llama.feed_forward_length"]),
        vocab=g.shape("token_embd.weight")[0],
        norm_eps=float(m["llama.attention.layer_norm_rms_epsilon"]),
        rope_theta=float(m.get("llama.rope.freq_base", 10000.0)),
        tied="output.weight" not in g.infos,
    )
    if shape.dim % heads or shape.n_heads % shape.n_kv_heads or shape.head_dim % 2:
        raise ValueError(f"{g.path}: {heads} heads / {shape.n_kv_heads} kv heads do not divide dim {shape.dim} evenly")
    return shape


def inv_freq(head_dim: int, theta: float) -> np.ndarray:
    """llama.rope_cos_sin's 1 / theta^(i/head_dim), i = 0, 2, ...: the exponent in float32, the power
    rounded to float32 from float64 (torch's float32 pow is within an ulp of that; equal for the
    bundled families' shapes), then a float32 reciprocal, as torch computes it."""
    e = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    power = (np.float64(np.float32(theta)) ** e.astype(np.float64)).astype(np.float32)
    return (np.float32(1.0) / power).astype(np.float32)


# ---- quantization (the numerics models/scripts/quantize_onnx.py has always used, in row slices) ----


def _row_step(cols: int) -> int:
    return max(1, CHUNK_BYTES // (4 * max(1, cols)))


def int8_row_scales(w: np.ndarray) -> np.ndarray:
    """Symmetric int8 scale of each row of w [N, K] (= each output column of W^T)."""
    scale = np.empty(w.shape[0], dtype=np.float32)
    step = _row_step(w.shape[1])
    for n0 in range(0, w.shape[0], step):
        scale[n0 : n0 + step] = np.abs(w[n0 : n0 + step].astype(np.float32)).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    return scale


def int8_quantize(block: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 values / their scale (broadcast), rounded half to even, clipped to +-127."""
    return np.clip(np.round(block / scale), -127, 127).astype(np.int8)


def int4_blocks(rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """rows [n, K] float32 -> (uint8 [n, K/32, 16], float32 scales [n * K/32])."""
    n, k = rows.shape
    wt = rows.reshape(n, k // BLOCK, BLOCK)
    absmax_idx = np.abs(wt).argmax(axis=-1)
    absmax = np.take_along_axis(wt, absmax_idx[..., None], axis=-1)[..., 0]
    scale = absmax / -8.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(wt / scale[..., None]) + 8, 0, 15).astype(np.uint8)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return packed, scale.reshape(-1).astype(np.float32)


# ---- external data ----


class ExternalData:
    """Appends tensors to the one data file; each becomes a TensorProto that points into it."""

    def __init__(self, path: str) -> None:
        self.location = os.path.basename(path)
        self.fh = open(path, "wb")
        self.offset = 0

    def tensor(self, name: str, dtype: np.dtype, dims: Tuple[int, ...], chunks: Iterable[np.ndarray]) -> TensorProto:
        dtype = np.dtype(dtype)
        length = int(np.prod(dims)) * dtype.itemsize
        pad = -self.offset % (ALIGN_BIG if length >= BIG else 16)
        if pad:
            self.fh.write(b"\0" * pad)
            self.offset += pad
        start = self.offset
        for c in chunks:
            c = np.ascontiguousarray(c)
            if c.dtype != dtype:
                raise TypeError(f"{name}: chunk of {c.dtype}, tensor of {dtype}")
            self.fh.write(c.data)
            self.offset += c.nbytes
        if self.offset - start != length:
            raise ValueError(f"{name}: wrote {self.offset - start} bytes, expected {length}")
        t = TensorProto()
        t.name = name
        t.data_type = onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[dtype]
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", str(start)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return t

    def close(self) -> None:
        self.fh.close()


# ---- graph ----


class _Graph:
    def __init__(self) -> None:
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[TensorProto] = []
        self.scope = ""
        self._count = 0
        self._consts: dict = {}

    def op(self, op: str, inputs: List[str], outputs: Optional[List[str]] = None, n_out: int = 1, domain: str = "", **attrs):
        self._count += 1
        base = f"{self.scope}/{op}_{self._count}"
        outputs = outputs or [f"{base}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=base, domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def const(self, value, dtype: np.dtype) -> str:
        """A small constant (shapes, scalars) kept inline in the graph."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = f"const_{len(self._consts)}"
            self.initializers.append(numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]


class _Writer:
    def __init__(self, gguf: GgufTensors, shape: DecoderShape, precision: str, data: ExternalData,
                 on_tensor: Callable[[str], None], kv_io: str) -> None:
        self.gguf, self.s, self.precision, self.data, self.on_tensor = gguf, shape, precision, data, on_tensor
        self.kv_io = kv_io
        self.past_len = ""
        self.g = _Graph()
        # INT4 with a tied output: the MatMulNBits weights made from the embedding (embedding()).
        self._tied_int4: Optional[Tuple[str, str, int, int]] = None

    # -- weights --

    def _read(self, name: str, shape: Tuple[int, ...]) -> np.ndarray:
        if self.gguf.shape(name) != shape:
            raise ValueError(f"{self.gguf.path}: tensor {name} has shape {self.gguf.shape(name)}, the model expects {shape}")
        return self.gguf.read(name)

    def _add(self, name: str, dtype, dims, chunks) -> str:
        self.g.initializers.append(self.data.tensor(name, dtype, tuple(dims), chunks))
        return name

    def vector(self, name: str) -> str:
        w = self._read(name, (self.s.dim,))
        self._add(name, F32, w.shape, [w.astype(F32)])
        self.on_tensor(name)
        return name

    def _transposed(self, w: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]):
        """W [N, K] -> convert(W^T) in slices of rows of W^T, for writing [K, N]."""
        step = _row_step(w.shape[0])
        for k0 in range(0, w.shape[1], step):
            yield convert(np.ascontiguousarray(w[:, k0 : k0 + step].T, dtype=F32))

    def linear(self, x: str, name: str, n_out: int, k_in: int, out: Optional[str] = None) -> str:
        """x [..., K] @ W^T for the GGUF weight `name` (W [N, K])."""
        w = self._read(name, (n_out, k_in))
        outs = [out] if out else None
        g = self.g
        if self.precision == "fp32":
            init = self._add(f"{name}.T", F32, (k_in, n_out), self._transposed(w, lambda c: c))
            y = g.op("MatMul", [x, init], outs)
        elif self.precision == "int8":
            scale = int8_row_scales(w)
            wq = self._add(f"{name}.T.q8", np.int8, (k_in, n_out), self._transposed(w, lambda c: int8_quantize(c, scale)))
            y = self.int8_matmul(x, wq, self._add(f"{name}.scale", F32, (n_out,), [scale]), outs)
        else:
            y = self.int4_matmul(x, self.int4_weights(name, w), outs)
        self.on_tensor(name)
        return y

    def int8_matmul(self, x: str, wq: str, w_scale: str, outs) -> str:
        g = self.g
        xq, x_scale, x_zp = g.op("DynamicQuantizeLinear", [x], n_out=3)
        y = g.op("Cast", [g.op("MatMulInteger", [xq, wq, x_zp])], to=TensorProto.FLOAT)
        return g.op("Mul", [g.op("Mul", [y, x_scale]), w_scale], outs)

    def int4_weights(self, name: str, w: np.ndarray) -> Tuple[str, str, int, int]:
        """Packed blocks and scales of w [N, K] for MatMulNBits: (B, scales, N, K)."""
        n, k = w.shape
        if k % BLOCK:
            raise ValueError(f"{name}: {k} columns are not a multiple of the INT4 block ({BLOCK})")
        scales: List[np.ndarray] = []

        def packed():
            step = _row_step(k)
            for n0 in range(0, n, step):
                p, s = int4_blocks(w[n0 : n0 + step].astype(F32))
                scales.append(s)
                yield p

        b = self._add(f"{name}.q4", np.uint8, (n, k // BLOCK, BLOCK // 2), packed())
        s = self._add(f"{name}.q4_scales", F32, (n * (k // BLOCK),), scales)
        return b, s, n, k

    def int4_matmul(self, x: str, weights: Tuple[str, str, int, int], outs) -> str:
        b, s, n, k = weights
        return self.g.op("MatMulNBits", [x, b, s], outs, domain="com.microsoft", K=k, N=n, bits=4, block_size=BLOCK)

    # -- graph pieces --

    def rms_norm(self, x: str, gain: str) -> str:
        g = self.g
        mean = g.op("ReduceMean", [g.op("Pow", [x, g.const(2.0, F32)])], axes=[-1], keepdims=1)
        inv = g.op("Div", [g.const(1.0, F32), g.op("Sqrt", [g.op("Add", [mean, g.const(self.s.norm_eps, F32)])])])
        return g.op("Mul", [g.op("Mul", [x, inv]), self.vector(gain)])

    def rope(self, x: str, heads: int, cos: str, sin: str) -> str:
        """x [B, T, heads*D] -> [B, heads, T, D] with adjacent pairs rotated."""
        g, d = self.g, self.s.head_dim
        pairs = g.op("Reshape", [x, g.const([0, 0, heads, d // 2, 2], I64)])
        x0, x1 = g.op("Split", [pairs, g.const([1, 1], I64)], n_out=2, axis=-1)
        out0 = g.op("Sub", [g.op("Mul", [x0, cos]), g.op("Mul", [x1, sin])])
        out1 = g.op("Add", [g.op("Mul", [x0, sin]), g.op("Mul", [x1, cos])])
        heads_last = g.op("Reshape", [g.op("Concat", [out0, out1], axis=-1), g.const([0, 0, heads, d], I64)])
        return g.op("Transpose", [heads_last], perm=[0, 2, 1, 3])

    def attention(self, i: int, x: str, cos: str, sin: str, mask: str) -> str:
        g, s = self.g, self.s
        d, kv, rep = s.head_dim, s.n_kv_heads, s.n_heads // s.n_kv_heads
        p = f"blk.{i}."
        q = self.rope(self.linear(x, p + "attn_q.weight", s.n_heads * d, s.dim), s.n_heads, cos, sin)
        k = self.rope(self.linear(x, p + "attn_k.weight", kv * d, s.dim), kv, cos, sin)
        v_lin = self.linear(x, p + "attn_v.weight", kv * d, s.dim)
        v = g.op("Transpose", [g.op("Reshape", [v_lin, g.const([0, 0, kv, d], I64)])], perm=[0, 2, 1, 3])
        axis2 = g.const([2], I64)
        qg = g.op("Reshape", [q, g.const([0, kv, rep, -1, d], I64)])

        def scores_with(keys: str) -> str:
            kt = g.op("Transpose", [g.op("Unsqueeze", [keys, axis2])], perm=[0, 1, 2, 4, 3])
            return g.op("MatMul", [qg, kt])

        def weighted(p: str, values: str) -> str:
            return g.op("MatMul", [p, g.op("Unsqueeze", [values, axis2])])

        past_k, past_v = f"past_key_values.{i}.key", f"past_key_values.{i}.value"
        if self.kv_io == "present":
            k = g.op("Concat", [past_k, k], [f"present.{i}.key"], axis=2)
            v = g.op("Concat", [past_v, v], [f"present.{i}.value"], axis=2)
            scores = g.op("Div", [scores_with(k), g.const(math.sqrt(d), F32)])
            probs = g.op("Softmax", [g.op("Where", [mask, scores, g.const(MASKED, F32)])], axis=-1)
            out = weighted(probs, v)
        else:
            # The past is only read: scores against it and against the new keys are joined (a
            # [.., T, P+T] tensor, small) instead of the cache itself, and the new keys/values
            # are the only KV outputs. The caller appends them to its cache in place.
            k = g.op("Identity", [k], [f"new_key_values.{i}.key"])
            v = g.op("Identity", [v], [f"new_key_values.{i}.value"])
            joined = g.op("Concat", [scores_with(past_k), scores_with(k)], axis=-1)
            scores = g.op("Div", [joined, g.const(math.sqrt(d), F32)])
            probs = g.op("Softmax", [g.op("Where", [mask, scores, g.const(MASKED, F32)])], axis=-1)
            last = g.const([-1], I64)
            p_past = g.op("Slice", [probs, g.const([0], I64), self.past_len, last])
            p_new = g.op("Slice", [probs, self.past_len, g.const([np.iinfo(np.int64).max], I64), last])
            out = g.op("Add", [weighted(p_past, past_v), weighted(p_new, v)])
        out = g.op("Transpose", [g.op("Reshape", [out, g.const([0, s.n_heads, -1, d], I64)])], perm=[0, 2, 1, 3])
        out = g.op("Reshape", [out, g.const([0, 0, s.n_heads * d], I64)])
        return self.linear(out, p + "attn_output.weight", s.dim, s.n_heads * d)

    def feed_forward(self, i: int, x: str) -> str:
        g, s = self.g, self.s
        p = f"blk.{i}."
        gate = self.linear(x, p + "ffn_gate.weight", s.ffn_dim, s.dim)
        up = self.linear(x, p + "ffn_up.weight", s.ffn_dim, s.dim)
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up])
        return self.linear(act, p + "ffn_down.weight", s.dim, s.ffn_dim)

    def embedding(self) -> Tuple[str, Optional[Tuple[str, str]]]:
        """Input embeddings [B, T, dim]; for quantized variants also the int8 table and its scales."""
        g, s = self.g, self.s
        name = "token_embd.weight"
        w = self._read(name, (s.vocab, s.dim))
        step = _row_step(s.dim)
        if self.precision == "fp32":
            self._add(name, F32, w.shape, (w[r : r + step].astype(F32) for r in range(0, s.vocab, step)))
            self.on_tensor(name)
            return g.op("Gather", [name, "input_ids"]), None
        scale = int8_row_scales(w)
        table = self._add(
            name + ".q8", np.int8, w.shape,
            (int8_quantize(w[r : r + step].astype(F32), scale[r : r + step, None]) for r in range(0, s.vocab, step)),
        )
        scales = self._add(name + ".scale", F32, (s.vocab,), [scale])
        rows = g.op("Cast", [g.op("Gather", [table, "input_ids"])], to=TensorProto.FLOAT)
        row_scale = g.op("Unsqueeze", [g.op("Gather", [scales, "input_ids"]), g.const([-1], I64)])
        x = g.op("Mul", [rows, row_scale])
        if self.precision == "int4" and s.tied:
            # The tied output projection is a MatMulNBits of the same rows: its weights are written
            # now, while the embedding is in memory; its node comes at the end (output()).
            self._tied_int4 = self.int4_weights("output.tied", w)
        self.on_tensor(name)
        return x, (table, scales)

    def output(self, x: str, table: Optional[Tuple[str, str]]) -> str:
        g, s = self.g, self.s
        if not s.tied:
            return self.linear(x, "output.weight", s.vocab, s.dim, out="logits")
        if self.precision == "fp32":
            return g.op("MatMul", [x, g.op("Transpose", ["token_embd.weight"], perm=[1, 0])], ["logits"])
        if self.precision == "int8":
            assert table is not None
            wq_t = g.op("Transpose", [table[0]], perm=[1, 0])
            return self.int8_matmul(x, wq_t, table[1], ["logits"])
        assert self._tied_int4 is not None
        return self.int4_matmul(x, self._tied_int4, ["logits"])

    def build(self) -> onnx.GraphProto:
        g, s = self.g, self.s
        g.scope = "/inputs"
        zero, one = g.const(0, I64), g.const(1, I64)
        axis0 = g.const([0], I64)
        seq = g.op("Squeeze", [g.op("Shape", ["input_ids"], start=1, end=2), axis0])
        self.past_len = g.op("Shape", ["past_key_values.0.key"], start=2, end=3)
        past = g.op("Squeeze", [self.past_len, axis0])
        total = g.op("Add", [past, seq])
        # Causal: query i (absolute position past + i) sees keys 0 .. past + i; and the padding mask.
        q_idx = g.op("Unsqueeze", [g.op("Add", [g.op("Range", [zero, seq, one]), past]), g.const([1], I64)])
        causal = g.op("LessOrEqual", [g.op("Range", [zero, total, one]), q_idx])  # [T, P+T]
        pad = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.BOOL), g.const([1, 2, 3], I64)])
        mask = g.op("And", [causal, pad])  # [B, 1, 1, T, P+T], broadcast over kv heads and groups
        # Rotary angles [B, T, 1, D/2, 1]: broadcast over heads and the pair axis.
        pos = g.op("Unsqueeze", [g.op("Cast", ["position_ids"], to=TensorProto.FLOAT), g.const([2], I64)])
        angles = g.op("Mul", [pos, g.const(inv_freq(s.head_dim, s.rope_theta), F32)])
        axes24 = g.const([2, 4], I64)
        cos = g.op("Unsqueeze", [g.op("Cos", [angles]), axes24])
        sin = g.op("Unsqueeze", [g.op("Sin", [angles]), axes24])

        g.scope = "/embedding"
        x, table = self.embedding()
        for i in range(s.n_layers):
            g.scope = f"/layers.{i}/attention"
            x = g.op("Add", [x, self.attention(i, self.rms_norm(x, f"blk.{i}.attn_norm.weight"), cos, sin, mask)])
            g.scope = f"/layers.{i}/feed_forward"
            x = g.op("Add", [x, self.feed_forward(i, self.rms_norm(x, f"blk.{i}.ffn_norm.weight"))])
        g.scope = "/output"
        self.output(self.rms_norm(x, "output_norm.weight"), table)

        d = s.head_dim
        inputs = [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        ]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", s.vocab])]
        for i in range(s.n_layers):
            for kind in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch_size", s.n_kv_heads, "past_sequence_length", d]))
                if self.kv_io == "present":
                    outputs.append(helper.make_tensor_value_info(
                        f"present.{i}.{kind}", TensorProto.FLOAT, ["batch_size", s.n_kv_heads, "total_sequence_length", d]))
                else:
                    outputs.append(helper.make_tensor_value_info(
                        f"new_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch_size", s.n_kv_heads, "sequence_length", d]))
        return helper.make_graph(g.nodes, f"tiergate-decoder-{self.precision}", inputs, outputs, initializer=g.initializers)


def tensor_count(shape: DecoderShape) -> int:
    """GGUF tensors a decoder reads (for progress): embedding, 9 per layer, final norm, output."""
    return 1 + 9 * shape.n_layers + 1 + (0 if shape.tied else 1)


def write_decoder(gguf_path: str, out_path: str, precision: str = "fp32",
                  on_tensor: Optional[Callable[[int, int, str], None]] = None, kv_io: str = "append") -> dict:
    """Writes the decoder to out_path and its weights to out_path + ".data"; returns sizes.
    kv_io: "append" (new_key_values outputs) or "present" (the optimum convention)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    if kv_io not in KV_IO:
        raise ValueError(f"kv_io {kv_io!r}: one of {', '.join(KV_IO)}")
    gguf = GgufTensors(gguf_path)
    shape = decoder_shape(gguf)
    if precision == "int4" and (shape.dim % BLOCK or shape.ffn_dim % BLOCK):
        raise ValueError(f"INT4 needs widths that are multiples of {BLOCK}: dim {shape.dim}, ffn {shape.ffn_dim}")
    total = tensor_count(shape)
    done = [0]

    def tick(name: str) -> None:
        done[0] += 1
        if on_tensor is not None:
            on_tensor(done[0], total, name)

    data_path = os.path.join(os.path.dirname(os.path.abspath(out_path)), data_file_name(out_path))
    data = ExternalData(data_path)
    try:
        graph = _Writer(gguf, shape, precision, data, tick, kv_io).build()
    finally:
        data.close()
    opsets = [helper.make_opsetid("", OPSET)]
    if precision == "int4":
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="tiergate", producer_version="1",
                              doc_string=f"tiergate decoder ({precision}) written by models/lib/tiergate_model/onnx_writer.py")
    model.ir_version = 8
    # The graph alone (every weight is external): well under protobuf's 2 GiB.
    with open(out_path, "wb") as fh:
        fh.write(model.SerializeToString())
    return {"graph_bytes": os.path.getsize(out_path), "data_file": data_path, "data_bytes": os.path.getsize(data_path),
            "tensors": done[0], "shape": shape}
