"""Token sampling with the gateway's semantics (src/text/sampling.ts), so a request gives the same
tokens whichever tier serves it: greedy at temperature 0 (lowest index wins ties); otherwise
logits / temperature, cut to top-k then to the smallest top-p prefix, renormalised and sampled with
the same mulberry32 generator from the same seed. Reported logprobs come from the raw distribution.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch

_MASK32 = 0xFFFFFFFF


def _imul(a: int, b: int) -> int:
    """Math.imul: 32-bit multiplication, result as an unsigned 32-bit int."""
    return (a * b) & _MASK32


class Mulberry32:
    """The gateway's PRNG (createRng in src/text/sampling.ts), bit for bit."""

    def __init__(self, seed: Optional[int]) -> None:
        self.state = (random.getrandbits(32) if seed is None else seed) & _MASK32

    def next(self) -> float:
        self.state = (self.state + 0x6D2B79F5) & _MASK32
        t = self.state
        t = _imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + _imul(t ^ (t >> 7), t | 61)) & _MASK32)) & _MASK32
        return ((t ^ (t >> 14)) & _MASK32) / 4294967296.0


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: Optional[int] = None


@dataclass(frozen=True)
class Sampled:
    token: int
    logprob: float
    top: List[Tuple[int, float]]


def sample(logits: torch.Tensor, params: SamplingParams, rng: Mulberry32, top_logprobs: int = 0) -> Sampled:
    """Picks the next token from one row of logits (1-D tensor)."""
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    if not params.temperature > 0:
        token = int(torch.argmax(logits).item())
    else:
        token = _sample_token(logits.double().numpy(), params, rng)
    top: List[Tuple[int, float]] = []
    if top_logprobs > 0:
        k = min(top_logprobs, logprobs.shape[0])
        # A stable sort keeps the gateway's tie order (lower id first among equals).
        values, ids = torch.sort(logprobs, descending=True, stable=True)
        top = [(int(i), float(v)) for i, v in zip(ids[:k].tolist(), values[:k].tolist())]
    return Sampled(token, float(logprobs[token].item()), top)


def _sample_token(logits: np.ndarray, params: SamplingParams, rng: Mulberry32) -> int:
    # Stable descending order by logit, ties by lower id: argsort of the negated values.
    order = np.argsort(-logits, kind="stable")
    n = logits.shape[0]
    k = min(params.top_k, n) if params.top_k > 0 else n
    ids = order[:k]
    scaled = logits[ids] / params.temperature
    weights = np.exp(scaled - scaled[0])
    w_list: List[float] = weights.tolist()
    if params.top_p < 1:
        # Sequential sums, as the gateway does them, so boundary cases round the same way.
        total = sum(w_list)
        mass = 0.0
        keep = 0
        while keep < len(w_list):
            mass += w_list[keep] / total
            keep += 1
            if mass >= params.top_p:
                break
        ids = ids[:keep]
        w_list = w_list[:keep]
    r = rng.next() * sum(w_list)
    for i, w in zip(ids.tolist(), w_list):
        r -= w
        if r < 0:
            return int(i)
    return int(ids[-1])
