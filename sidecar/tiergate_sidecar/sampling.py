"""Token sampling with the gateway's semantics (src/text/sampling.ts), so a request gives the same
tokens whichever tier serves it: greedy at temperature 0 (lowest index wins ties); otherwise
logits / temperature, cut to top-k then to the smallest top-p prefix, renormalised and sampled with
the same mulberry32 generator from the same seed. Reported logprobs come from the raw distribution.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

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
    return _sample_row(logits, torch.log_softmax(logits.double(), dim=-1), None, params, rng, top_logprobs)


def sample_rows(logits: torch.Tensor, params: Sequence[SamplingParams], rngs: Sequence[Mulberry32],
                top_logprobs: Sequence[int]) -> List[Sampled]:
    """sample() for every row of logits [B, vocab], with the log-softmax and the greedy argmax
    done once for the whole batch: per row they were a third of a batched decode step's Python
    time on `small` (two tensor ops and their dispatch per row instead of per step)."""
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    greedy = torch.argmax(logits, dim=-1).tolist()
    return [_sample_row(logits[i], logprobs[i], greedy[i], params[i], rngs[i], top_logprobs[i])
            for i in range(logits.shape[0])]


def _sample_row(logits: torch.Tensor, logprobs: torch.Tensor, greedy: Optional[int], params: SamplingParams,
                rng: Mulberry32, top_logprobs: int) -> Sampled:
    if not params.temperature > 0:
        token = int(torch.argmax(logits).item()) if greedy is None else int(greedy)
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


@dataclass(frozen=True)
class VerifiedPosition:
    """src/text/speculative-sampling.ts VerifyPosition: one position of a verified draft."""
    accept: float
    token: int
    token_logprob: float
    draft_logprob: float
    top: List[Tuple[int, float]]


def verify_position(logits: torch.Tensor, draft: Optional[int], params: SamplingParams, rng: Mulberry32,
                    top_logprobs: int, want_logprobs: bool) -> VerifiedPosition:
    """verifyPosition of src/text/speculative-sampling.ts, step for step, on one row of logits:
    greedy accepts the draft token iff it is the argmax (lowest index wins ties) and otherwise
    emits the argmax; sampling accepts with p(draft) under temperature/top-k/top-p and emits a
    sample of p without the draft token, renormalised (one rng draw per position, as there). At
    the bonus position (draft None) the emitted token is a sample of p. Sums run in index order
    one after another, as the gateway's loops do, so boundary cases round the same way."""
    row = logits.double().numpy()
    accept = 0.0
    if not params.temperature > 0:
        token = int(np.argmax(row))  # first maximum: the lowest index wins ties
        accept = 1.0 if draft is not None and token == draft else 0.0
    else:
        ids, weights = _transformed(row, params)
        total = float(np.add.accumulate(weights)[-1])
        hit = np.flatnonzero(ids == draft) if draft is not None else np.empty(0, dtype=np.int64)
        draft_weight = float(weights[hit[0]]) if hit.size > 0 else 0.0
        accept = draft_weight / total
        token = _sample_excluding(ids, weights, total - draft_weight, draft, rng)
    want = want_logprobs or top_logprobs > 0
    lse = _log_sum_exp(row) if want else 0.0
    top: List[Tuple[int, float]] = []
    if top_logprobs > 0:
        order = np.argsort(-row, kind="stable")[:top_logprobs]
        top = [(int(i), float(row[i]) - lse) for i in order]
    nan = float("nan")
    return VerifiedPosition(
        accept=accept,
        token=token,
        token_logprob=float(row[token]) - lse if want_logprobs else nan,
        draft_logprob=float(row[draft]) - lse if want_logprobs and draft is not None else nan,
        top=top,
    )


def _transformed(row: np.ndarray, params: SamplingParams) -> Tuple[np.ndarray, np.ndarray]:
    """Candidate ids and weights: with top-k or top-p, the sampler's candidates (best first);
    without, every token in index order, weights exp((logit - max) / temperature)."""
    if params.top_k > 0 or params.top_p < 1:
        order = np.argsort(-row, kind="stable")
        n = row.shape[0]
        ids = order[: min(params.top_k, n) if params.top_k > 0 else n]
        scaled = row[ids] / params.temperature
        weights = np.exp(scaled - scaled[0])
        if params.top_p < 1:
            w_list: List[float] = weights.tolist()
            total = sum(w_list)
            mass = 0.0
            keep = 0
            while keep < len(w_list):
                mass += w_list[keep] / total
                keep += 1
                if mass >= params.top_p:
                    break
            ids, weights = ids[:keep], weights[:keep]
        return ids, weights
    return np.arange(row.shape[0]), np.exp((row - row.max()) / params.temperature)


def _sample_excluding(ids: np.ndarray, weights: np.ndarray, total: float, excluded: Optional[int],
                      rng: Mulberry32) -> int:
    r = rng.next() * total  # drawn even when nothing is left, so each position costs one draw
    if not total > 0:
        return excluded if excluded is not None else int(ids[0])
    keep = ids != excluded if excluded is not None else np.ones(ids.shape[0], dtype=bool)
    kept_ids = ids[keep]
    if kept_ids.size == 0:
        return excluded if excluded is not None else int(ids[0])
    # r - w0 - w1 - ... one subtraction after another (ufunc.accumulate runs in order).
    left = np.subtract.accumulate(np.concatenate(([r], weights[keep])))[1:]
    below = np.flatnonzero(left < 0)
    return int(kept_ids[below[0]]) if below.size > 0 else int(kept_ids[-1])


def _log_sum_exp(row: np.ndarray) -> float:
    mx = float(row.max())
    return mx + math.log(float(np.add.accumulate(np.exp(row - mx))[-1]))
