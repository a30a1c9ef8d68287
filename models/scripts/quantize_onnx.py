"""ONNX FP32 -> INT8 and INT4 weight-quantized decoders (the project's own pass, using only the
`onnx` package: onnxruntime's Python quantizer cannot be installed here).

INT8: every weight MatMul becomes DynamicQuantizeLinear(A) -> MatMulInteger(A_q, W_q int8) ->
      Cast -> Mul(A_scale) -> Mul(W_scale), with W quantized symmetrically per output column
      (the pattern onnxruntime fuses into DynamicQuantizeMatMul). The embedding table is stored once
      as int8 with a per-token scale: the input Gather dequantizes the rows it picks and the tied
      output projection multiplies by its transpose (column scales = the same per-token scales).
INT4: every weight MatMul becomes com.microsoft MatMulNBits (bits 4, block 32, symmetric, zero
      point 8; B packed [N, K/32, 16] with the lower-index value in the low nibble). The input
      embedding uses the int8 table above (a gather of 4-bit rows has no standard op).
"""

import argparse

import numpy as np
import onnx
from common import FAMILY, log, variant_path
from onnx import TensorProto, helper, numpy_helper

BLOCK = 32


def quantize_int8_columns(w: np.ndarray):
    """w [K, N] -> (int8 [K, N], float scale [N]) symmetric per column."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def quantize_int4_blocks(w: np.ndarray):
    """w [K, N] -> (uint8 [N, K/32, 16], float scales [N * K/32]) symmetric, zero point 8."""
    k, n = w.shape
    wt = w.T.reshape(n, k // BLOCK, BLOCK)
    absmax_idx = np.abs(wt).argmax(axis=-1)
    absmax = np.take_along_axis(wt, absmax_idx[..., None], axis=-1)[..., 0]
    # Map the largest-magnitude value to -8 (like llama.cpp's Q4_0): uses the full 16-level range.
    scale = absmax / -8.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(wt / scale[..., None]) + 8, 0, 15).astype(np.uint8)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return packed, scale.reshape(-1).astype(np.float32)


class Rewriter:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.g = model.graph
        self.inits = {i.name: i for i in self.g.initializer}
        self.new_nodes = []

    def add_init(self, name: str, arr: np.ndarray) -> str:
        self.g.initializer.append(numpy_helper.from_array(arr, name))
        return name

    def drop_init(self, name: str) -> None:
        self.g.initializer.remove(self.inits.pop(name))

    def node(self, op: str, inputs, outputs, domain: str = "", **attrs):
        self.new_nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0] + "_node", domain=domain, **attrs))
        return outputs

    def int8_matmul(self, prefix: str, a: str, w_q: str, w_scale: str, out: str) -> None:
        aq, a_s, a_zp = self.node("DynamicQuantizeLinear", [a], [f"{prefix}/a_q", f"{prefix}/a_scale", f"{prefix}/a_zp"])
        (y,) = self.node("MatMulInteger", [aq, w_q, a_zp], [f"{prefix}/y_int"])
        (yf,) = self.node("Cast", [y], [f"{prefix}/y_float"], to=TensorProto.FLOAT)
        (ya,) = self.node("Mul", [yf, a_s], [f"{prefix}/y_a"])
        self.node("Mul", [ya, w_scale], [out])

    def int4_matmul(self, prefix: str, a: str, w: np.ndarray, out: str) -> None:
        k, n = w.shape
        packed, scales = quantize_int4_blocks(w)
        b = self.add_init(f"{prefix}/w_q4", packed)
        s = self.add_init(f"{prefix}/w_scales", scales)
        self.node("MatMulNBits", [a, b, s], [out], domain="com.microsoft", K=k, N=n, bits=4, block_size=BLOCK)


def rewrite(src: str, dst: str, bits: int) -> None:
    model = onnx.load(src)
    r = Rewriter(model)
    g = r.g
    gather = next(n for n in g.node if n.op_type == "Gather" and n.input[0] in r.inits)
    emb_name = gather.input[0]
    emb = numpy_helper.to_array(r.inits[emb_name])
    # int8 embedding table with one scale per token (row); shared by input and (INT8) output.
    emb_q, emb_scale = quantize_int8_columns(emb.T)
    emb_q = emb_q.T.copy()
    r.drop_init(emb_name)
    q_name = r.add_init("embedding/q8", emb_q)
    s_name = r.add_init("embedding/scale", emb_scale)
    tied_t = next((n for n in g.node if n.op_type == "Transpose" and n.input[0] == emb_name), None)

    kept = []
    for n in g.node:
        if n is gather:
            (rows,) = r.node("Gather", [q_name, n.input[1]], ["embedding/rows_q8"])
            (rows_f,) = r.node("Cast", [rows], ["embedding/rows_f"], to=TensorProto.FLOAT)
            (sc,) = r.node("Gather", [s_name, n.input[1]], ["embedding/rows_scale"])
            axes = r.add_init("embedding/axes", np.array([-1], dtype=np.int64))
            (sc_u,) = r.node("Unsqueeze", [sc, axes], ["embedding/rows_scale_u"])
            r.node("Mul", [rows_f, sc_u], [n.output[0]])
            kept.extend(r.new_nodes)
            r.new_nodes = []
            continue
        if n is tied_t:
            continue
        if n.op_type == "MatMul" and (n.input[1] in r.inits or (tied_t is not None and n.input[1] == tied_t.output[0])):
            prefix = n.output[0].rsplit("_output", 1)[0] + "/q"
            if n.input[1] in r.inits:
                w = numpy_helper.to_array(r.inits[n.input[1]])
                r.drop_init(n.input[1])
                if bits == 8:
                    wq, ws = quantize_int8_columns(w)
                    r.int8_matmul(prefix, n.input[0], r.add_init(prefix + "/w_q8", wq), r.add_init(prefix + "/w_scale", ws), n.output[0])
                else:
                    r.int4_matmul(prefix, n.input[0], w, n.output[0])
            else:  # tied output projection: weight = embedding^T
                if bits == 8:
                    (wt,) = r.node("Transpose", [q_name], [prefix + "/emb_q8_t"], perm=[1, 0])
                    r.int8_matmul(prefix, n.input[0], wt, s_name, n.output[0])
                else:
                    r.int4_matmul(prefix, n.input[0], emb.T, n.output[0])
            kept.extend(r.new_nodes)
            r.new_nodes = []
            continue
        kept.append(n)
    del g.node[:]
    g.node.extend(kept)
    if bits == 4:
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    log(f"wrote {dst}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=variant_path("onnx-fp32"))
    args = ap.parse_args()
    for variant, bits in (("onnx-int8", 8), ("onnx-int4", 4)):
        if variant in FAMILY["variants"]:
            rewrite(args.src, variant_path(variant), bits)


if __name__ == "__main__":
    main()
