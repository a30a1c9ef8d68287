"""Generation and scoring over the shared model, with a preallocated KV cache.

Prefill and Score run the shared definition's own forward(). Decoding one token at a time runs
the same modules (norms, projections, feed-forward, the shared rope helper) but writes each
step's key/value into a cache allocated once per request, instead of forward()'s torch.cat of the
whole past on every step — that copy is what held a plain eager loop to ~0.4× llama.cpp (FACTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F

from .model_loader import LoadedModel, load_gguf_model


@dataclass
class DecodeState:
    """One sequence's KV cache: per layer [1, n_kv_heads, capacity, head_dim] key and value."""
    keys: List[torch.Tensor]
    values: List[torch.Tensor]
    length: int


class Engine:
    def __init__(self, loaded: LoadedModel, variant: str) -> None:
        self.model = loaded.model
        self.llama = loaded.llama
        self.cfg = loaded.model.cfg
        self.model_id = loaded.model_id
        self.variant = variant
        self.precision = loaded.precision
        self.context_length = loaded.context_length
        self.vocab_size = loaded.vocab_size
        cfg = self.cfg
        positions = torch.arange(cfg.max_seq_len).unsqueeze(0)
        # cos/sin for every position once, [1, 1, max_seq_len, head_dim/2], from the shared helper.
        self._cos, self._sin = self.llama.rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta)
        self._group = cfg.n_heads // cfg.n_kv_heads
        self._scale = 1.0 / math.sqrt(cfg.head_dim)
        self._out_weight = (self.model.tok_embeddings.weight if self.model.output is None
                            else self.model.output.weight)

    # -- decoding ------------------------------------------------------------------------------

    def prefill(self, tokens: List[int]) -> Tuple[torch.Tensor, DecodeState]:
        """Runs the prompt; returns the last position's logits [vocab] and the filled cache."""
        cfg = self.cfg
        ids = torch.tensor([tokens], dtype=torch.long)
        logits, presents = self.model(ids)
        n = len(tokens)
        shape = (1, cfg.n_kv_heads, self.context_length, cfg.head_dim)
        keys, values = [], []
        for k, v in presents:
            kc = torch.empty(shape)
            vc = torch.empty(shape)
            kc[:, :, :n] = k
            vc[:, :, :n] = v
            keys.append(kc)
            values.append(vc)
        return logits[0, -1], DecodeState(keys, values, n)

    def step(self, state: DecodeState, token: int) -> torch.Tensor:
        """Appends one token at position state.length; returns its logits [vocab]."""
        cfg = self.cfg
        pos = state.length
        heads, kv_heads, d = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        cos = self._cos[:, :, pos : pos + 1]
        sin = self._sin[:, :, pos : pos + 1]
        x = self.model.tok_embeddings.weight[token].view(1, 1, cfg.dim)
        for i, layer in enumerate(self.model.layers):
            att = layer.attention
            h = layer.attention_norm(x)
            q = att.wq(h).view(1, 1, heads, d).transpose(1, 2)
            k = att.wk(h).view(1, 1, kv_heads, d).transpose(1, 2)
            v = att.wv(h).view(1, 1, kv_heads, d).transpose(1, 2)
            q = self.llama.apply_rope(q, cos, sin)
            k = self.llama.apply_rope(k, cos, sin)
            kc, vc = state.keys[i], state.values[i]
            kc[:, :, pos : pos + 1] = k
            vc[:, :, pos : pos + 1] = v
            keys = kc[:, :, : pos + 1]
            vals = vc[:, :, : pos + 1]
            # Grouped-query attention without repeat_interleave: query head h uses kv head
            # h // group, so view the queries as [kv_heads, group] and broadcast over the group.
            qg = q.view(1, kv_heads, self._group, d)
            scores = torch.matmul(qg, keys.transpose(2, 3)) * self._scale
            out = torch.matmul(F.softmax(scores, dim=-1), vals)  # [1, kv_heads, group, d]
            x = x + att.wo(out.reshape(1, 1, heads * d))
            x = x + layer.feed_forward(layer.ffn_norm(x))
        state.length = pos + 1
        x = self.model.norm(x)
        return F.linear(x, self._out_weight)[0, -1]

    # -- scoring -------------------------------------------------------------------------------

    def score(self, tokens: List[int]) -> List[float]:
        """log p(tokens[i] | tokens[:i]) for i = 1..n-1, in float64."""
        ids = torch.tensor([tokens], dtype=torch.long)
        logits, _ = self.model(ids)
        logprobs = torch.log_softmax(logits[0, :-1].double(), dim=-1)
        return logprobs.gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1).tolist()

    def warmup(self) -> None:
        """One short generation so the first real request does not pay for lazy initialisation."""
        with torch.inference_mode():
            logits, state = self.prefill([0, 1])
            for _ in range(2):
                logits = self.step(state, int(torch.argmax(logits)))


def load_engine(model_path: str, models_lib: str, model_id: str = "", variant: str = "") -> Engine:
    loaded = load_gguf_model(model_path, models_lib)
    if model_id:
        loaded = LoadedModel(loaded.model, loaded.llama, model_id, loaded.precision,
                             loaded.context_length, loaded.vocab_size)
    return Engine(loaded, variant or f"gguf-{loaded.precision}")
