"""The single PyTorch definition of tiergate's reference LLaMA.

Used by training (models/scripts/train.py), the golden data and the PyTorch sidecar. The ONNX
decoders are written without torch by tiergate_model/onnx_writer.py, which spells out the same
maths op for op: a change here needs the same change there (the cross-framework tests compare
ONNX Runtime with this model's logits). Importable with only torch + numpy.

Architecture: pre-norm decoder, RMSNorm, rotary position embedding, grouped-query attention,
SwiGLU feed-forward, optionally tied input/output embeddings.

Rotary embedding uses the *adjacent pairs* layout, (x0, x1), (x2, x3), ... -- the layout of Meta's
reference code and of llama.cpp's `llama` architecture (LLAMA_ROPE_TYPE_NORM). Because of that
the Q/K weights are written to GGUF as they are, with no row permutation (the Hugging Face
`rotate_half` layout needs one).

Parameter names <-> GGUF tensor names (GGUF stores a torch [out, in] weight with ne = [in, out],
i.e. the same row-major bytes):

    tok_embeddings.weight                 token_embd.weight
    layers.N.attention_norm.weight        blk.N.attn_norm.weight
    layers.N.attention.wq.weight          blk.N.attn_q.weight
    layers.N.attention.wk.weight          blk.N.attn_k.weight
    layers.N.attention.wv.weight          blk.N.attn_v.weight
    layers.N.attention.wo.weight          blk.N.attn_output.weight
    layers.N.ffn_norm.weight              blk.N.ffn_norm.weight
    layers.N.feed_forward.w1.weight       blk.N.ffn_gate.weight
    layers.N.feed_forward.w3.weight       blk.N.ffn_up.weight
    layers.N.feed_forward.w2.weight       blk.N.ffn_down.weight
    norm.weight                           output_norm.weight
    output.weight                         output.weight   (absent when tie_embeddings: llama.cpp
                                                           then reuses token_embd)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

KV = Tuple[torch.Tensor, torch.Tensor]

# Per-layer suffix mapping (torch parameter suffix -> GGUF tensor suffix); see the module docstring.
_LAYER_NAMES = {
    "attention_norm.weight": "attn_norm.weight",
    "attention.wq.weight": "attn_q.weight",
    "attention.wk.weight": "attn_k.weight",
    "attention.wv.weight": "attn_v.weight",
    "attention.wo.weight": "attn_output.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "feed_forward.w1.weight": "ffn_gate.weight",
    "feed_forward.w3.weight": "ffn_up.weight",
    "feed_forward.w2.weight": "ffn_down.weight",
}
GGUF_TENSOR_NAMES = {
    "tok_embeddings.weight": "token_embd.weight",
    "norm.weight": "output_norm.weight",
    "output.weight": "output.weight",
}


def gguf_name_for(torch_name: str) -> str:
    """GGUF tensor name of a torch parameter name (raises KeyError for unknown names)."""
    if torch_name in GGUF_TENSOR_NAMES:
        return GGUF_TENSOR_NAMES[torch_name]
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", torch_name)
    if not m:
        raise KeyError(torch_name)
    return f"blk.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}"


def torch_name_for(gguf_name: str) -> str:
    """Torch parameter name of a GGUF tensor name (the inverse of gguf_name_for)."""
    for t, g in GGUF_TENSOR_NAMES.items():
        if g == gguf_name:
            return t
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", gguf_name)
    if not m:
        raise KeyError(gguf_name)
    for t, g in _LAYER_NAMES.items():
        if g == m.group(2):
            return f"layers.{m.group(1)}.{t}"
    raise KeyError(gguf_name)


@dataclass
class LlamaConfig:
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 8
    n_kv_heads: int = 4
    vocab_size: int = 2048
    ffn_dim: int = 512
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_seq_len: int = 512
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same formula as llama.cpp's ggml_rms_norm: x / sqrt(mean(x^2) + eps), then the gain.
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [B, 1, T, head_dim/2] for absolute positions; frequency i is theta^(-2i/head_dim)."""
    idx = torch.arange(0, head_dim, 2, dtype=torch.float32, device=position_ids.device)
    inv_freq = 1.0 / (theta ** (idx / head_dim))
    angles = position_ids.to(torch.float32).unsqueeze(-1) * inv_freq
    return torch.cos(angles).unsqueeze(1), torch.sin(angles).unsqueeze(1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (x[2i], x[2i+1]) of x [B, H, T, D] (llama.cpp `llama` layout)."""
    b, h, t, d = x.shape
    pairs = x.reshape(b, h, t, d // 2, 2)
    x0 = pairs[..., 0]
    x1 = pairs[..., 1]
    out0 = x0 * cos - x1 * sin
    out1 = x0 * sin + x1 * cos
    return torch.stack((out0, out1), dim=-1).reshape(b, h, t, d)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.n_kv_heads = cfg.n_kv_heads
        self.head_dim = cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        past: Optional[KV],
    ) -> Tuple[torch.Tensor, KV]:
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        present = (k, v)
        # Grouped-query attention by broadcasting: query head h uses kv head h // rep (the same
        # grouping as llama.cpp); no repeat_interleave, which torch 1.13 exports with static sizes.
        rep = self.n_heads // self.n_kv_heads
        qg = q.reshape(b, self.n_kv_heads, rep, t, self.head_dim)
        scores = torch.matmul(qg, k.unsqueeze(2).transpose(3, 4)) / math.sqrt(self.head_dim)
        # A large finite negative instead of -inf keeps fully padded query rows free of NaN.
        scores = scores.masked_fill(~mask.unsqueeze(1), -1e9)
        out = torch.matmul(F.softmax(scores, dim=-1), v.unsqueeze(2))
        out = out.reshape(b, self.n_heads, t, self.head_dim).transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.wo(out), present


class FeedForward(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # gate
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)  # down
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x, cos, sin, mask, past):
        h, present = self.attention(self.attention_norm(x), cos, sin, mask, past)
        x = x + h
        return x + self.feed_forward(self.ffn_norm(x)), present


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = None if cfg.tie_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        past_key_values: Optional[List[KV]] = None,
    ) -> Tuple[torch.Tensor, List[KV]]:
        """input_ids/position_ids [B, T] int64; attention_mask [B, P+T] (0 = padding) or None;
        past_key_values: per layer (k, v), each [B, n_kv_heads, P, head_dim], or None.
        Returns logits [B, T, vocab] and the per-layer presents (past + this step)."""
        b, t = input_ids.shape
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + t, device=input_ids.device).unsqueeze(0).expand(b, t)
        kv_len = past_len + t
        # Causal: query i (absolute position past_len + i) sees keys 0..past_len + i.
        q_idx = torch.arange(t, device=input_ids.device).unsqueeze(1) + past_len
        k_idx = torch.arange(kv_len, device=input_ids.device).unsqueeze(0)
        mask = (k_idx <= q_idx).unsqueeze(0).unsqueeze(0)  # [1, 1, T, P+T]
        if attention_mask is not None:
            mask = mask & attention_mask.to(torch.bool)[:, None, None, :]
        cos, sin = rope_cos_sin(position_ids, self.cfg.head_dim, self.cfg.rope_theta)
        x = self.tok_embeddings(input_ids)
        presents: List[KV] = []
        for i, layer in enumerate(self.layers):
            past = None if past_key_values is None else past_key_values[i]
            x, present = layer(x, cos, sin, mask, past)
            presents.append(present)
        x = self.norm(x)
        weight = self.tok_embeddings.weight if self.output is None else self.output.weight
        return F.linear(x, weight), presents

    def named_weights_for_gguf(self):
        """(gguf_name, float32 numpy array) for every tensor llama.cpp needs, in a stable order."""
        for name, tensor in self.state_dict().items():
            yield gguf_name_for(name), tensor.detach().to(torch.float32).cpu().numpy()
