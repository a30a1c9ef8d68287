"""Builds the shared PyTorch model (models/lib/tiergate_model/llama.py) from a LLaMA-architecture
GGUF: hyper-parameters from the `llama.*` metadata keys, weights from F32/F16 tensors under
llama.py's documented parameter ↔ GGUF tensor name mapping."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch

from .gguf import GGUFError, GGUFFile

# Repository layout: sidecar/tiergate_sidecar/ → models/lib holds the tiergate_model package.
DEFAULT_MODELS_LIB = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "models", "lib"))


@dataclass(frozen=True)
class LoadedModel:
    model: torch.nn.Module
    llama: ModuleType  # the tiergate_model.llama module (its rope helpers are reused)
    model_id: str
    precision: str
    context_length: int
    vocab_size: int


def import_llama(models_lib: str = "") -> ModuleType:
    """Imports the shared definition; the sidecar never carries a copy of it."""
    lib = models_lib or DEFAULT_MODELS_LIB
    if lib not in sys.path:
        sys.path.insert(0, lib)
    return importlib.import_module("tiergate_model.llama")


def load_gguf_model(path: str, models_lib: str = "") -> LoadedModel:
    llama = import_llama(models_lib)
    g = GGUFFile(path)
    arch = g.get("general.architecture", "llama")
    if arch != "llama":
        raise GGUFError(f"{path}: architecture {arch!r} is not supported (only 'llama')")

    def key(name: str, default: Any = None) -> Any:
        value = g.get(f"llama.{name}", default)
        if value is None:
            raise GGUFError(f"{path}: metadata key llama.{name} missing")
        return value

    dim = int(key("embedding_length"))
    n_heads = int(key("attention.head_count"))
    embd = g.tensors.get("token_embd.weight")
    if embd is None:
        raise GGUFError(f"{path}: tensor token_embd.weight missing")
    tokens = g.get("tokenizer.ggml.tokens")
    vocab_size = int(g.get("llama.vocab_size", len(tokens) if tokens else embd.shape[0]))
    cfg = llama.LlamaConfig(
        dim=dim,
        n_layers=int(key("block_count")),
        n_heads=n_heads,
        n_kv_heads=int(key("attention.head_count_kv", n_heads)),
        vocab_size=vocab_size,
        ffn_dim=int(key("feed_forward_length")),
        norm_eps=float(key("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(key("rope.freq_base", 10000.0)),
        max_seq_len=int(key("context_length")),
        tie_embeddings="output.weight" not in g.tensors,
    )
    dim_count = g.get("llama.rope.dimension_count")
    if dim_count is not None and int(dim_count) != cfg.head_dim:
        raise GGUFError(f"{path}: partial rotary embedding ({dim_count} of {cfg.head_dim}) is not supported")

    model = llama.Llama(cfg)
    state = {}
    precisions = set()
    for name, param in model.state_dict().items():
        gname = llama.gguf_name_for(name)
        info = g.tensors.get(gname)
        if info is None:
            raise GGUFError(f"{path}: tensor {gname} missing (needed for {name})")
        array = g.tensor(gname)
        if tuple(array.shape) != tuple(param.shape):
            raise GGUFError(f"{path}: tensor {gname} has shape {array.shape}, the model expects {tuple(param.shape)}")
        precisions.add(info.type_name)
        # A float32 copy: F16 files are served in F32 arithmetic (CPU half matmuls are slow).
        state[name] = torch.from_numpy(np.array(array, dtype=np.float32))
    model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # Norm and other small tensors are F32 even in F16 files; the big matrices name the precision.
    precision = "f16" if "F16" in precisions else "f32"
    model_id = str(g.get("general.name", "") or os.path.splitext(os.path.basename(path))[0])
    return LoadedModel(model, llama, model_id, precision, cfg.max_seq_len, cfg.vocab_size)
