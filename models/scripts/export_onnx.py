"""The family's GGUF F32 -> <id>-fp32.onnx: decoder with KV cache in the optimum /
onnxruntime-genai I/O convention. Built from the GGUF (not the training checkpoint), so ONNX
holds exactly the weights llama.cpp and the sidecar serve.

Inputs:  input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
         position_ids [batch, seq] int64, past_key_values.N.key|value [batch, kv_heads, past, head_dim] f32
Outputs: logits [batch, seq, vocab] f32, present.N.key|value [batch, kv_heads, past+seq, head_dim] f32
A first step passes zero-length past tensors.
"""

import argparse

import numpy as np
import onnx
import torch
from common import FAMILY, log, variant_path
from onnx import helper, numpy_helper

from tiergate_model import Llama
from tiergate_model.family import reference_variant
from tiergate_model.gguf_reader import load_llama_from_gguf

OPSET = 17


class Decoder(torch.nn.Module):
    """Flat-argument wrapper so torch.onnx sees one tensor per past/present entry."""

    def __init__(self, model: Llama):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past):
        pkv = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
        logits, presents = self.model(input_ids, position_ids, attention_mask, pkv)
        flat = []
        for k, v in presents:
            flat += [k, v]
        return (logits, *flat)


def untie_folded_embedding(path: str) -> None:
    """Constant folding stores the tied output projection as a second, transposed copy of the
    embedding. Replace that copy with a Transpose of the embedding, so the file holds it once."""
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    emb_name = next(n.input[0] for n in g.node if n.op_type == "Gather" and n.input[0] in inits)
    emb = numpy_helper.to_array(inits[emb_name])
    for node in g.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if w.shape == emb.T.shape and np.array_equal(w, emb.T):
            g.initializer.remove(inits[node.input[1]])
            t_out = emb_name + "_transposed"
            g.node.insert(0, helper.make_node("Transpose", [emb_name], [t_out], perm=[1, 0], name="tied_output_transpose"))
            node.input[1] = t_out
            break
    onnx.save(m, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=variant_path(reference_variant(FAMILY)))
    ap.add_argument("--out", default=variant_path("onnx-fp32"))
    args = ap.parse_args()
    model = load_llama_from_gguf(args.gguf)
    cfg = model.cfg

    b, t, p = 2, 3, 4  # trace with a non-empty past so every axis stays symbolic
    ids = torch.randint(0, cfg.vocab_size, (b, t))
    mask = torch.ones(b, p + t, dtype=torch.int64)
    pos = torch.arange(p, p + t).unsqueeze(0).expand(b, t).contiguous()
    past = []
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    axes = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    for i in range(cfg.n_layers):
        for kind in ("key", "value"):
            past.append(torch.randn(b, cfg.n_kv_heads, p, cfg.head_dim))
            name_in, name_out = f"past_key_values.{i}.{kind}", f"present.{i}.{kind}"
            in_names.append(name_in)
            out_names.append(name_out)
            axes[name_in] = {0: "batch_size", 2: "past_sequence_length"}
            axes[name_out] = {0: "batch_size", 2: "total_sequence_length"}
    with torch.no_grad():
        torch.onnx.export(
            Decoder(model),
            (ids, mask, pos, *past),
            args.out,
            input_names=in_names,
            output_names=out_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    untie_folded_embedding(args.out)
    onnx.checker.check_model(args.out)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
