"""Kept sequences (the KeptSequence RPC, src/tiers/kept-sequence.ts): one sequence whose KV cache
stays here between a client's calls, for speculative decoding. Every call first edits the cache —
keep its first `keep` tokens (rolling back a rejected draft), append `append` — then either drafts
up to k greedy tokens or verifies a draft: append and draft go through ONE forward pass and every
draft position gets its VerifyPosition (sampling.verify_position).

A kept sequence has a one-slot cache of its own and runs in its request's thread, like Score;
the decode batcher's slots are not touched."""

from __future__ import annotations

from typing import FrozenSet, List, Sequence

import torch

from .engine import Engine
from .sampling import Mulberry32, SamplingParams, VerifiedPosition, verify_position


class KeptError(ValueError):
    """A command the sequence cannot run (bad edit, context overflow): INVALID_ARGUMENT."""


class KeptState:
    def __init__(self, engine: Engine, stop_tokens: FrozenSet[int]) -> None:
        self.engine = engine
        self.stop = stop_tokens
        self.cache = engine.allocate_slots(1, zeroed=False)
        self.tokens: List[int] = []  # what the cache holds, position by position

    def _edit(self, keep: int, append: Sequence[int], extra: int) -> List[int]:
        """Validates an edit and rolls the cache back to `keep`; returns the tokens to feed
        first. With nothing to append, the last kept token is fed again: the logits after it
        were not kept."""
        if keep < 0 or keep > len(self.tokens):
            raise KeptError(f"keep {keep} is not within the {len(self.tokens)} tokens the sequence holds")
        append = list(append)
        vocab = self.engine.vocab_size
        bad = [t for t in append if t >= vocab]
        if bad:
            raise KeptError(f"token id {bad[0]} out of range (vocab size {vocab})")
        if not append:
            if keep == 0:
                raise KeptError("nothing to evaluate: the sequence holds no tokens and none are appended")
            keep -= 1
            append = [self.tokens[keep]]
        limit = self.engine.context_length
        if keep + len(append) + extra > limit:
            raise KeptError(f"{keep + len(append) + extra} tokens do not fit the context of {limit}")
        # Positions past `keep` are simply overwritten by the next feed; no copy is needed.
        del self.tokens[keep:]
        return append

    def _feed(self, tokens: List[int]) -> torch.Tensor:
        logits = self.engine.extend(self.cache, len(self.tokens), tokens)
        self.tokens.extend(tokens)
        return logits

    def draft(self, keep: int, append: Sequence[int], k: int) -> List[int]:
        """Up to k greedy tokens; the last one proposed stays unfed (the next edit decides)."""
        fed = self._edit(keep, append, 0)
        row = self._feed(fed)[-1]
        out: List[int] = []
        limit = self.engine.context_length
        while len(out) < k:
            token = int(torch.argmax(row))
            out.append(token)
            if token in self.stop or len(out) >= k or len(self.tokens) + 1 >= limit:
                break
            row = self._feed([token])[-1]
        return out

    def verify(self, keep: int, append: Sequence[int], draft: Sequence[int], params: SamplingParams,
               seed: int, top_logprobs: int, want_logprobs: bool) -> List[VerifiedPosition]:
        """Feeds append + draft in one forward pass; draft.length + 1 positions, the last the
        bonus position. All of it stays in the cache (held = keep + append + draft)."""
        vocab = self.engine.vocab_size
        draft = list(draft)
        if any(t >= vocab for t in draft):
            raise KeptError(f"draft token id out of range (vocab size {vocab})")
        fed = self._edit(keep, append, len(draft))
        logits = self._feed(fed + draft)
        rng = Mulberry32(seed)
        base = len(fed) - 1
        return [verify_position(logits[base + i], draft[i] if i < len(draft) else None, params, rng,
                                top_logprobs, want_logprobs)
                for i in range(len(draft) + 1)]
