"""INT8 and INT4 weight-quantized decoders (<id>-int8.onnx, <id>-int4.onnx, each with its .data
file), written straight from the family's reference GGUF by tiergate_model.onnx_writer with the
same graph as the FP32 export and the project's own quantization (onnxruntime's Python quantizer
cannot be installed here). One GGUF tensor is read, quantized in row slices and written at a time,
so memory never holds the model; the weights are the ones the FP32 export stores (the same GGUF
values), so quantizing them here equals quantizing the FP32 ONNX file.

INT8: every weight MatMul becomes DynamicQuantizeLinear(A) -> MatMulInteger(A_q, W_q int8) ->
      Cast -> Mul(A_scale) -> Mul(W_scale), W quantized symmetrically per output column (the
      pattern onnxruntime fuses into DynamicQuantizeMatMul). The embedding table is stored once
      as int8 with a per-token scale: the input Gather dequantizes the rows it picks and the tied
      output projection multiplies by its transpose (column scales = the same per-token scales).
INT4: every weight MatMul becomes com.microsoft MatMulNBits (bits 4, block 32, symmetric, zero
      point 8; B packed [N, K/32, 16] with the lower-index value in the low nibble). The input
      embedding uses the int8 table above (a gather of 4-bit rows has no standard op).
"""

import argparse

from common import FAMILY, variant_path
from export_onnx import write

from tiergate_model.family import reference_variant


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=variant_path(reference_variant(FAMILY)))
    args = ap.parse_args()
    for variant, precision in (("onnx-int8", "int8"), ("onnx-int4", "int4")):
        if variant in FAMILY["variants"]:
            write(args.gguf, variant_path(variant), precision)


if __name__ == "__main__":
    main()
