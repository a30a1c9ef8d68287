"""Generation and scoring over the shared model, with a preallocated KV cache.

Prefill and Score run the shared definition's own forward(). Decoding runs the same layers and
weights one token per sequence per step, but:
- each step's key/value goes into a cache allocated once (per slot, for the full context)
  instead of forward()'s torch.cat of the whole past on every step — that copy is what held a
  plain eager loop to ~0.4× llama.cpp (FACTS.md);
- Q/K/V and gate/up projections each run as one matmul over weights stored side by side (the
  modules' parameters are views into them, so forward() is unchanged and no memory is added);
- every matrix is stored transposed, [in, out] contiguous: forward()'s F.linear on the
  transposed views lands on OpenBLAS's non-transposed GEMM, the faster one for many rows;
- a pass of a few rows (a batched decode step, a kept sequence's verify pass) runs on a second
  copy of the weights packed into panels (panels.py), where numba is installed: OpenBLAS's GEMM
  for 8 rows took 2.5-3x one row's time, the panel kernel reads the weights once
  (sidecar/bench_matmul.py; docs/fallback-tier.md);
- a single sequence uses matrix-vector products: on Debian's torch a 1-row F.linear measured
  several times slower than torch.mv of the same weights (mv reads Wt through a transposed view
  as fast as a contiguous W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from .model_loader import LoadedModel, load_gguf_model
from .panels import Panels, load_kernel


@dataclass
class SlotCache:
    """KV cache shared by concurrent sequences: per layer [slots, n_kv_heads, context, head_dim]."""
    keys: List[torch.Tensor]
    values: List[torch.Tensor]


@dataclass
class DecodeState:
    """One sequence decoded alone (tests, warm-up): a one-slot cache and its length."""
    cache: SlotCache
    length: int


@dataclass(frozen=True)
class _LayerWeights:
    """Transposed weights, [in, out] contiguous."""
    qkv: torch.Tensor  # [dim, (n_heads + 2 n_kv_heads) head_dim]
    o: torch.Tensor
    gate_up: torch.Tensor  # [dim, 2 ffn_dim]
    down: torch.Tensor


def _mm(weight_t: torch.Tensor, panels: Optional[Panels], x: torch.Tensor) -> torch.Tensor:
    """x [B, in] → x W^T [B, out] with W^T = weight_t [in, out]: matrix-vector for one row, the
    panel kernel for more where it is compiled, else OpenBLAS's GEMM."""
    if x.shape[0] == 1:
        return torch.mv(weight_t.t(), x[0]).unsqueeze(0)
    if panels is not None:
        return panels(x)
    return torch.mm(x, weight_t)


@dataclass(frozen=True)
class _PanelLayer:
    """The layer's matrices again, packed once for few-row products (panels.py)."""
    qkv: Panels
    o: Panels
    gate_up: Panels
    down: Panels


def _transposed(weights: List[torch.Tensor]) -> torch.Tensor:
    """Stores [out_i, in] matrices side by side as one [in, sum out_i] contiguous tensor."""
    return torch.cat(weights).t().contiguous()


class Engine:
    def __init__(self, loaded: LoadedModel, variant: str, few_row_kernel: bool = True) -> None:
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
        # cos/sin for every position once, [max_seq_len, head_dim/2], from the shared helper.
        cos, sin = self.llama.rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta)
        self._cos, self._sin = cos[0, 0], sin[0, 0]
        self._group = cfg.n_heads // cfg.n_kv_heads
        self._scale = 1.0 / math.sqrt(cfg.head_dim)
        self._layers = [self._fuse(layer) for layer in self.model.layers]
        # The output projection reads the embedding matrix (tied) or its own; either way a
        # transposed copy [dim, vocab] for the GEMM. Tied: the embedding keeps its row-major copy
        # for lookups (+vocab x dim floats, 16 MiB on `small`); untied: the module's parameter
        # becomes a view of the copy, so nothing is added.
        if self.model.output is None:
            self._out_t = self.model.tok_embeddings.weight.t().contiguous()
        else:
            self._out_t = _transposed([self.model.output.weight])
            self.model.output.weight.data = self._out_t.t()
        # Passes of a few rows (batched decode steps, a kept sequence's verify pass) on weights
        # packed once into panels: a copy of every matrix, used where numba is installed.
        self.panels_unavailable = load_kernel() if few_row_kernel else "turned off"
        self._panels: Optional[List[_PanelLayer]] = None
        self._out_panels: Optional[Panels] = None
        if self.panels_unavailable is None:
            self._panels = [_PanelLayer(Panels(w.qkv), Panels(w.o), Panels(w.gate_up), Panels(w.down))
                            for w in self._layers]
            self._out_panels = Panels(self._out_t)

    @staticmethod
    def _fuse(layer: torch.nn.Module) -> _LayerWeights:
        """Stores the layer's matrices transposed (Q/K/V and gate/up side by side) and points the
        module parameters at views of them, so forward() computes with the same storage."""
        att, ff = layer.attention, layer.feed_forward
        qkv = _transposed([att.wq.weight, att.wk.weight, att.wv.weight])
        gate_up = _transposed([ff.w1.weight, ff.w3.weight])
        o = _transposed([att.wo.weight])
        down = _transposed([ff.w2.weight])
        at = 0
        for lin in (att.wq, att.wk, att.wv):
            n = lin.weight.shape[0]
            lin.weight.data = qkv[:, at : at + n].t()
            at += n
        f = ff.w1.weight.shape[0]
        ff.w1.weight.data = gate_up[:, :f].t()
        ff.w3.weight.data = gate_up[:, f:].t()
        att.wo.weight.data = o.t()
        ff.w2.weight.data = down.t()
        return _LayerWeights(qkv, o, gate_up, down)

    def _layer_panels(self, i: int) -> Optional[_PanelLayer]:
        return None if self._panels is None else self._panels[i]

    # -- decoding ------------------------------------------------------------------------------

    def allocate_slots(self, count: int, zeroed: bool = True) -> SlotCache:
        """A KV cache for `count` concurrent sequences, each up to the full context. A batched
        step reads positions past a shorter row's length under a mask, where garbage NaN would
        survive 0 × NaN, hence zeros; a one-slot cache stepped alone only reads positions it
        wrote, so `zeroed=False` skips the fill there (kept sequences, one cache per stream)."""
        cfg = self.cfg
        shape = (count, cfg.n_kv_heads, self.context_length, cfg.head_dim)
        make = torch.zeros if zeroed else torch.empty
        return SlotCache([make(shape) for _ in range(cfg.n_layers)],
                         [make(shape) for _ in range(cfg.n_layers)])

    def prefill_slot(self, cache: SlotCache, slot: int, tokens: List[int]) -> torch.Tensor:
        """Runs a prompt with the shared forward() and stores its keys/values in `slot`."""
        return self.prefill_slots(cache, [slot], [tokens])[0]

    def prefill_slots(self, cache: SlotCache, slots: List[int], prompts: List[List[int]]) -> torch.Tensor:
        """Prompts of one length in one forward() pass, each row's keys/values into its slot;
        returns each prompt's last-position logits [B, vocab]."""
        ids = torch.tensor(prompts, dtype=torch.long)
        logits, presents = self.model(ids)
        n = ids.shape[1]
        for i, (k, v) in enumerate(presents):
            for row, slot in enumerate(slots):
                cache.keys[i][slot, :, :n] = k[row]
                cache.values[i][slot, :, :n] = v[row]
        return logits[:, -1]

    def step_slots(self, cache: SlotCache, slots: List[int], tokens: List[int], positions: List[int]) -> torch.Tensor:
        """One decode step for several sequences at once: token b goes to position positions[b] of
        cache slot slots[b]. Returns logits [B, vocab]. Projections and feed-forward run once for
        the whole batch (per-op overhead dominates a small model, so batching pays); attention
        runs over the longest sequence with positions past each row's own masked."""
        cfg = self.cfg
        b = len(slots)
        heads, kv_heads, d = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        q_end, k_end = heads * d, (heads + kv_heads) * d
        ffn = cfg.ffn_dim
        slot_t = torch.tensor(slots, dtype=torch.long)
        pos_t = torch.tensor(positions, dtype=torch.long)
        span = max(positions) + 1
        cos = self._cos[pos_t].view(b, 1, 1, -1)
        sin = self._sin[pos_t].view(b, 1, 1, -1)
        hidden = None
        if b > 1:
            hidden = torch.arange(span).view(1, 1, 1, span) > pos_t.view(b, 1, 1, 1)
        contiguous = slots == list(range(slots[0], slots[0] + b))
        x = self.model.tok_embeddings.weight[torch.tensor(tokens, dtype=torch.long)]  # [B, dim]
        for i, layer in enumerate(self.model.layers):
            w, p = self._layers[i], self._layer_panels(i)
            qkv = _mm(w.qkv, p.qkv if p else None, layer.attention_norm(x))
            q = self.llama.apply_rope(qkv[:, :q_end].reshape(b, heads, 1, d), cos, sin)
            k = self.llama.apply_rope(qkv[:, q_end:k_end].reshape(b, kv_heads, 1, d), cos, sin)
            kc, vc = cache.keys[i], cache.values[i]
            kc[slot_t, :, pos_t] = k[:, :, 0]
            vc[slot_t, :, pos_t] = qkv[:, k_end:].reshape(b, kv_heads, d)
            if contiguous:
                keys = kc[slots[0] : slots[0] + b, :, :span]
                vals = vc[slots[0] : slots[0] + b, :, :span]
            else:
                # Gather only the positions in use: gathering whole slots first copied the full
                # context of every row (128 MiB a step for 8 rows on `small`, 4x its step time).
                keys = kc[:, :, :span].index_select(0, slot_t)
                vals = vc[:, :, :span].index_select(0, slot_t)
            # Grouped-query attention without repeat_interleave: query head h uses kv head
            # h // group, so view the queries as [kv_heads, group] and broadcast over the group.
            scores = torch.matmul(q.view(b, kv_heads, self._group, d), keys.transpose(2, 3)) * self._scale
            if hidden is not None:
                scores = scores.masked_fill(hidden, float("-inf"))
            out = torch.matmul(F.softmax(scores, dim=-1), vals)  # [B, kv_heads, group, d]
            x = x + _mm(w.o, p.o if p else None, out.reshape(b, heads * d))
            gate_up = _mm(w.gate_up, p.gate_up if p else None, layer.ffn_norm(x))
            x = x + _mm(w.down, p.down if p else None, F.silu(gate_up[:, :ffn]) * gate_up[:, ffn:])
        return _mm(self._out_t, self._out_panels, self.model.norm(x))

    def extend(self, cache: SlotCache, start: int, tokens: List[int]) -> torch.Tensor:
        """Feeds `tokens` at positions start.. of a one-slot cache in one pass that attends to
        the `start` positions already cached (kept sequences: append + draft). Returns logits
        [len(tokens), vocab]. The decode path's fused weights with one row per token: through
        the shared forward() (fresh rope tables and mask, torch.cat of the past, 3-D F.linear) a
        2-token feed on `small` cost 2-3 single steps, which ate speculation's gain. One token
        after a cached prefix is exactly Generate's decode step."""
        n = len(tokens)
        if n == 1 and start > 0:
            return self.step_slots(cache, [0], tokens, [start])
        cfg = self.cfg
        heads, kv_heads, d = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        q_end, k_end = heads * d, (heads + kv_heads) * d
        ffn = cfg.ffn_dim
        span = start + n
        pos = torch.arange(start, span)
        cos = self._cos[pos].view(1, 1, n, -1)
        sin = self._sin[pos].view(1, 1, n, -1)
        # Query i (position start + i) sees keys 0..start + i.
        hidden = torch.arange(span).view(1, span) > pos.view(n, 1)
        x = self.model.tok_embeddings.weight[torch.tensor(tokens, dtype=torch.long)]  # [n, dim]
        for i, layer in enumerate(self.model.layers):
            w, p = self._layers[i], self._layer_panels(i)
            qkv = _mm(w.qkv, p.qkv if p else None, layer.attention_norm(x))
            q = self.llama.apply_rope(qkv[:, :q_end].reshape(n, heads, d).transpose(0, 1).unsqueeze(0), cos, sin)
            k = self.llama.apply_rope(qkv[:, q_end:k_end].reshape(n, kv_heads, d).transpose(0, 1).unsqueeze(0),
                                      cos, sin)
            kc, vc = cache.keys[i], cache.values[i]
            kc[0, :, start:span] = k[0]
            vc[0, :, start:span] = qkv[:, k_end:].reshape(n, kv_heads, d).transpose(0, 1)
            keys, vals = kc[0, :, :span], vc[0, :, :span]  # [kv_heads, span, d]
            qg = q[0].reshape(kv_heads, self._group, n, d)
            scores = torch.matmul(qg, keys.unsqueeze(1).transpose(2, 3)) * self._scale  # [kv, group, n, span]
            scores = scores.masked_fill(hidden, float("-inf"))
            out = torch.matmul(F.softmax(scores, dim=-1), vals.unsqueeze(1))  # [kv, group, n, d]
            attn = out.reshape(heads, n, d).transpose(0, 1).reshape(n, heads * d)
            x = x + _mm(w.o, p.o if p else None, attn)
            gate_up = _mm(w.gate_up, p.gate_up if p else None, layer.ffn_norm(x))
            x = x + _mm(w.down, p.down if p else None, F.silu(gate_up[:, :ffn]) * gate_up[:, ffn:])
        return _mm(self._out_t, self._out_panels, self.model.norm(x))

    def prefill(self, tokens: List[int]) -> Tuple[torch.Tensor, DecodeState]:
        """A single sequence in its own one-slot cache: last position's logits [vocab], state."""
        cache = self.allocate_slots(1)
        logits = self.prefill_slot(cache, 0, tokens)
        return logits, DecodeState(cache, len(tokens))

    def step(self, state: DecodeState, token: int) -> torch.Tensor:
        """Appends one token to a single sequence; returns its logits [vocab]."""
        logits = self.step_slots(state.cache, [0], [token], [state.length])
        state.length += 1
        return logits[0]

    # -- scoring -------------------------------------------------------------------------------

    def score(self, tokens: List[int]) -> List[float]:
        """log p(tokens[i] | tokens[:i]) for i = 1..n-1, in float64."""
        ids = torch.tensor([tokens], dtype=torch.long)
        logits, _ = self.model(ids)
        logprobs = torch.log_softmax(logits[0, :-1].double(), dim=-1)
        return logprobs.gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1).tolist()

    def warmup(self) -> None:
        """A short generation so the first real request does not pay for lazy initialisation."""
        with torch.inference_mode():
            logits, state = self.prefill([0, 1])
            for _ in range(2):
                logits = self.step(state, int(torch.argmax(logits)))


def load_engine(model_path: str, models_lib: str, model_id: str = "", variant: str = "",
                few_row_kernel: bool = True) -> Engine:
    loaded = load_gguf_model(model_path, models_lib)
    if model_id:
        loaded = LoadedModel(loaded.model, loaded.llama, model_id, loaded.precision,
                             loaded.context_length, loaded.vocab_size)
    return Engine(loaded, variant or f"gguf-{loaded.precision}", few_row_kernel)
