"""A model family as data: models/families/<id>.json, validated before any work starts.

The family file is the single source of a family's recipe (docs/models.md, "Family files"):
architecture shape, tokenizer, special tokens, chat template, corpus, training budget, variants
and what is committed. Every build script reads it through `load_family`; nothing in the build
hard-codes a family's name, sizes or file names.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List

# Variant id -> (framework, format, precision, file suffix). File names are "<id>-<suffix>".
VARIANTS: Dict[str, tuple] = {
    "pytorch-fp32": ("pytorch", "pytorch", "fp32", "f32.gguf"),
    # TensorFlow.js on its wasm backend (src/tiers/tfjs/) reads the reference GGUF like the sidecar.
    "tensorflow-fp32": ("tensorflow", "tensorflow", "fp32", "f32.gguf"),
    "gguf-f32": ("llama.cpp", "gguf", "f32", "f32.gguf"),
    "gguf-f16": ("llama.cpp", "gguf", "f16", "f16.gguf"),
    "gguf-q8_0": ("llama.cpp", "gguf", "q8_0", "q8_0.gguf"),
    "gguf-q4_0": ("llama.cpp", "gguf", "q4_0", "q4_0.gguf"),
    "gguf-q4_k_m": ("llama.cpp", "gguf", "q4_k_m", "q4_k_m.gguf"),
    "gguf-q3_k_s": ("llama.cpp", "gguf", "q3_k_s", "q3_k_s.gguf"),
    "gguf-q2_k": ("llama.cpp", "gguf", "q2_k", "q2_k.gguf"),
    "onnx-fp32": ("onnxruntime", "onnx", "fp32", "fp32.onnx"),
    "onnx-int8": ("onnxruntime", "onnx", "int8", "int8.onnx"),
    "onnx-int4": ("onnxruntime", "onnx", "int4", "int4.onnx"),
}
# llama.cpp's K-quants pack rows in super-blocks of 256 values; Q8_0/Q4_0 and the ONNX INT4
# pass (MatMulNBits, block 32) in blocks of 32. A row length that does not divide makes
# llama.cpp fall back to another type for that tensor, so the label would lie.
ROW_BLOCK = {"q4_k_m": 256, "q3_k_s": 256, "q2_k": 256, "q8_0": 32, "q4_0": 32, "int4": 32}

# Tokenizer types the gateway reproduces exactly (llama.cpp's `llama` SPM tokenizer and the JS
# fast path both follow SentencePiece BPE with byte fallback). Others are refused with a reason.
TOKENIZER_TYPES = {"sentencepiece-bpe"}
REFUSED_TOKENIZERS = {
    "sentencepiece-unigram": (
        "llama.cpp reproduces SentencePiece only for BPE models: a unigram vocabulary written as the "
        "`llama` tokenizer is silently mis-tokenised, and llama.cpp's unigram type (`t5`) has no byte "
        "fallback. Use type sentencepiece-bpe."
    ),
}
# A family converted from a Hugging Face checkpoint (`source` in its family file, written by
# models/convert.py) may also carry a byte-level BPE: llama.cpp's `gpt2` tokenizer reproduces it
# for the pre-tokenizers tiergate_model.hf_tokenizer maps; training never produces one.
CONVERTED_TOKENIZER_TYPES = {"sentencepiece-bpe", "byte-level-bpe"}
CHAT_TEMPLATES = {"role-colon", "chatml"}
CORPUS_SOURCES = {"brown", "sotu"}
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class FamilyError(ValueError):
    """A family file that cannot be built; the message names the field and what to change."""


def _need(d: Dict[str, Any], key: str, kind, where: str):
    if key not in d:
        raise FamilyError(f"{where}.{key}: missing")
    v = d[key]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise FamilyError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {json.dumps(v)}")
    return v


def validate(fam: Dict[str, Any]) -> Dict[str, Any]:
    """Checks a parsed family file and returns it with defaults filled in."""
    fid = _need(fam, "id", str, "family")
    if not ID_RE.match(fid):
        raise FamilyError(f"family.id: {fid!r} must be lower-case letters, digits and '-'")
    fam.setdefault("name", f"tiergate-{fid}")
    fam.setdefault("description", f"LLaMA-architecture family {fid}")
    a = _need(fam, "architecture", dict, "family")
    for k in ("dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim", "max_seq_len"):
        if _need(a, k, int, "architecture") <= 0:
            raise FamilyError(f"architecture.{k}: must be positive")
    a["norm_eps"] = _need(a, "norm_eps", float, "architecture")
    a["rope_theta"] = _need(a, "rope_theta", float, "architecture")
    _need(a, "tie_embeddings", bool, "architecture")
    if a["dim"] % a["n_heads"]:
        raise FamilyError(f"architecture.dim {a['dim']} is not a multiple of n_heads {a['n_heads']}")
    if a["n_heads"] % a["n_kv_heads"]:
        raise FamilyError(f"architecture.n_heads {a['n_heads']} is not a multiple of n_kv_heads {a['n_kv_heads']}")
    if (a["dim"] // a["n_heads"]) % 2:
        raise FamilyError("architecture: head_dim (dim / n_heads) must be even for rotary embedding")

    converted = fam.get("source") is not None
    t = _need(fam, "tokenizer", dict, "family")
    ttype = _need(t, "type", str, "tokenizer")
    if ttype in REFUSED_TOKENIZERS:
        raise FamilyError(f"tokenizer.type {ttype!r} refused: {REFUSED_TOKENIZERS[ttype]}")
    allowed = CONVERTED_TOKENIZER_TYPES if converted else TOKENIZER_TYPES
    if ttype not in allowed:
        raise FamilyError(f"tokenizer.type {ttype!r}: supported types are {sorted(allowed)}")
    if ttype == "byte-level-bpe":
        t["byte_fallback"] = False  # every byte is a token of its own: nothing falls back
    elif not t.setdefault("byte_fallback", True):
        raise FamilyError("tokenizer.byte_fallback: must be true (text outside the vocabulary would become <unk>)")
    t.setdefault("split_digits", True)
    specials = t.setdefault("special_tokens", [])
    if not isinstance(specials, list) or not all(isinstance(s, str) and s for s in specials):
        raise FamilyError("tokenizer.special_tokens: expected a list of non-empty strings")
    eog = t.setdefault("eog_tokens", [])
    for s in eog:
        if s not in specials:
            raise FamilyError(f"tokenizer.eog_tokens: {s!r} is not one of tokenizer.special_tokens")
    vocab = _need(t, "vocab_size", int, "tokenizer")
    if vocab < 3 + len(specials) + 256 + 16:
        raise FamilyError(f"tokenizer.vocab_size {vocab}: too small for 3 ids, the special tokens and 256 byte pieces")

    chat = fam.setdefault("chat_template", "role-colon")
    if isinstance(chat, dict):
        _need(chat, "jinja", str, "chat_template")
    elif chat not in CHAT_TEMPLATES:
        raise FamilyError(f"chat_template: {chat!r}: use one of {sorted(CHAT_TEMPLATES)} or {{\"jinja\": \"...\"}}")
    if chat == "chatml":
        for s in ("<|im_start|>", "<|im_end|>"):
            if s not in specials:
                raise FamilyError(f"chat_template chatml needs {s} in tokenizer.special_tokens")

    if converted:
        return _validate_converted(fam, a)

    c = _need(fam, "corpus", dict, "family")
    sources = _need(c, "sources", list, "corpus")
    for s in sources:
        if s not in CORPUS_SOURCES:
            raise FamilyError(f"corpus.sources: unknown source {s!r} (known: {sorted(CORPUS_SOURCES)})")
    if "brown" not in sources:
        raise FamilyError("corpus.sources: must include brown (its validation split is every family's eval slice)")

    tr = _need(fam, "training", dict, "family")
    for k in ("steps", "batch", "seq", "eval_every", "seed", "threads"):
        if _need(tr, k, int, "training") <= 0:
            raise FamilyError(f"training.{k}: must be positive")
    tr["minutes"] = _need(tr, "minutes", float, "training")
    tr["lr"] = _need(tr, "lr", float, "training")
    tr.setdefault("autocast", "none")
    if tr["autocast"] not in ("none", "bf16"):
        raise FamilyError("training.autocast: none or bf16")
    tr.setdefault("long_seq", 0)
    tr.setdefault("long_fraction", 0.0)
    if tr["seq"] > a["max_seq_len"] or tr["long_seq"] > a["max_seq_len"]:
        raise FamilyError("training.seq / long_seq: longer than architecture.max_seq_len")

    variants: List[str] = _need(fam, "variants", list, "family")
    for v in variants:
        if v not in VARIANTS:
            raise FamilyError(f"variants: unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    if "gguf-f32" not in variants:
        raise FamilyError("variants: gguf-f32 is required (the FP32 reference llama.cpp and the sidecar read)")
    master = fam.setdefault("master", None)
    if master is not None and master != "gguf-f16":
        raise FamilyError("master: only gguf-f16 (or null: every variant is committed)")
    fam.setdefault("commit_limit_mb", 40)
    for v in variants:
        _check_rows(a, v)
    return fam


def _validate_converted(fam: Dict[str, Any], a: Dict[str, Any]) -> Dict[str, Any]:
    """A converted checkpoint: no corpus or training; evaluated on its eval text; its reference
    GGUF is F32, or F16 when the F32 file would be too large."""
    _need(fam, "source", dict, "family")
    c = _need(fam, "corpus", dict, "family")
    if _need(c, "sources", list, "corpus") != ["eval-text"]:
        raise FamilyError("corpus.sources: a converted family is evaluated on [\"eval-text\"] only")
    fam.setdefault("training", None)
    variants: List[str] = _need(fam, "variants", list, "family")
    for v in variants:
        if v not in VARIANTS:
            raise FamilyError(f"variants: unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    if "gguf-f32" not in variants and "gguf-f16" not in variants:
        raise FamilyError("variants: gguf-f32 or gguf-f16 is required (the reference llama.cpp and the sidecar read)")
    if fam.setdefault("master", None) is not None:
        raise FamilyError("master: a converted family has none (every variant derives from the checkpoint)")
    fam.setdefault("commit_limit_mb", 0)
    for v in variants:
        _check_rows(a, v)
    return fam


def reference_variant(fam: Dict[str, Any]) -> str:
    """The full-precision GGUF every other variant, the sidecar and the golden data derive from."""
    return "gguf-f32" if "gguf-f32" in fam["variants"] else "gguf-f16"


def _check_rows(a: Dict[str, Any], variant: str) -> None:
    precision = VARIANTS[variant][2]
    block = ROW_BLOCK.get(precision)
    if block is None:
        return
    # Row lengths of the weight matrices: dim (q, k, v, gate, up, output, embedding) and
    # ffn_dim (down); attn_output's rows are n_heads * head_dim = dim.
    for field in ("dim", "ffn_dim"):
        if a[field] % block:
            raise FamilyError(
                f"variants: {variant} needs rows that are multiples of {block}, but architecture.{field} is "
                f"{a[field]} (llama.cpp would silently use another type for those tensors): change the width "
                f"or drop {variant}"
            )


def load_family(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            fam = json.load(fh)
    except FileNotFoundError:
        raise FamilyError(f"no family file {path}") from None
    except json.JSONDecodeError as err:
        raise FamilyError(f"{path}: not JSON: {err}") from None
    if not isinstance(fam, dict):
        raise FamilyError(f"{path}: expected a JSON object")
    try:
        return validate(fam)
    except FamilyError as err:
        raise FamilyError(f"{path}: {err}") from None


def variant_file(fam: Dict[str, Any], variant: str) -> str:
    if variant in ("pytorch-fp32", "tensorflow-fp32"):
        # The sidecar and the TensorFlow.js tier serve the reference GGUF (F16 weights are upcast
        # exactly to F32 when loaded).
        return f"{fam['id']}-{VARIANTS[reference_variant(fam)][3]}"
    return f"{fam['id']}-{VARIANTS[variant][3]}"


def data_file(fam: Dict[str, Any], variant: str):
    """The external data file beside an ONNX variant (tiergate_model.onnx_writer stores every
    weight there: `<file>.data`); None for other formats."""
    return variant_file(fam, variant) + ".data" if VARIANTS[variant][1] == "onnx" else None
