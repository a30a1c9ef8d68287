"""Continuous batching of decode steps: one scheduler thread owns the model's KV slots and, on
every step, advances all active sequences together (Engine.step_slots), so concurrent requests
share each matmul instead of competing for the GIL with one small matmul each.

Request threads submit a Sequence and read its `events` queue; they never touch the model. A
sequence ends with exactly one ("end", outcome) event: "finished", "cancelled", "deadline" or
"failed". Cancellation and deadlines are checked for every sequence before every step, so a
dropped request stops within one step and its slot goes to the next waiting one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, List, Optional, Tuple

import torch

from .counters import Counters
from .engine import Engine
from .jsonlog import JsonLogger
from .sampling import Mulberry32, Sampled, SamplingParams, sample

# Events on Sequence.events.
TOKEN = "token"    # payload: Sampled
FINISH = "finish"  # payload: "stop" | "length"
END = "end"        # payload: outcome


@dataclass
class Sequence:
    tokens: List[int]
    params: SamplingParams
    max_tokens: int
    stop_tokens: frozenset
    top_logprobs: int
    deadline: Optional[float]  # time.time() value
    events: "queue.SimpleQueue[Tuple[str, object]]" = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    produced: int = 0
    # Scheduler state.
    slot: int = -1
    length: int = 0
    next_token: int = -1

    def __post_init__(self) -> None:
        self.rng = Mulberry32(self.params.seed)

    def expired(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline


class DecodeBatcher:
    def __init__(self, engine: Engine, slots: int, counters: Counters, log: JsonLogger) -> None:
        self.engine = engine
        self.counters = counters
        self.log = log
        self.cache = engine.allocate_slots(slots)
        self.free: List[int] = list(range(slots))
        self.pending: Deque[Sequence] = deque()
        self.active: List[Sequence] = []
        self.cond = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="decode-batcher", daemon=True)
        self.thread.start()

    def submit(self, seq: Sequence) -> None:
        with self.cond:
            self.pending.append(seq)
            self.cond.notify()

    def wake(self) -> None:
        """Called when a sequence is cancelled, so an idle scheduler notices at once."""
        with self.cond:
            self.cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the scheduler (waiting sequences end "cancelled") and waits for its thread, so
        the interpreter never exits while it is inside torch."""
        with self.cond:
            self.stopped = True
            self.cond.notify()
        self.thread.join(timeout)

    # -- scheduler thread ----------------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self.cond:
                    while not self.stopped and not self.active and not self.pending:
                        self.cond.wait()
                    if self.stopped:
                        break
                    waiting = list(self.pending)
                try:
                    self._admit(waiting)
                    self._step()
                except Exception as exc:  # noqa: BLE001 — a failed step fails its sequences, not the server
                    self.log.error("decode step failed", error=f"{type(exc).__name__}: {exc}")
                    for seq in list(self.active):
                        self._end(seq, "failed")
        for seq in list(self.active) + list(self.pending):
            seq.events.put((END, "cancelled"))

    def _admit(self, waiting: List[Sequence]) -> None:
        for seq in waiting:
            if seq.cancelled.is_set() or seq.expired():
                self._drop_pending(seq, "deadline" if seq.expired() else "cancelled")
                continue
            if not self.free:
                continue  # stays pending until a slot frees (or its deadline passes)
            self._drop_pending(seq, None)
            seq.slot = self.free.pop()
            self.active.append(seq)
            logits = self.engine.prefill_slot(self.cache, seq.slot, seq.tokens)
            seq.length = len(seq.tokens)
            self._emit(seq, logits)
        if not self.active and self.pending:
            # Everything waiting is blocked on slots held by nobody active: cannot happen, but a
            # short sleep keeps a logic error from spinning a core.
            time.sleep(0.01)

    def _drop_pending(self, seq: Sequence, outcome: Optional[str]) -> None:
        with self.cond:
            try:
                self.pending.remove(seq)
            except ValueError:
                pass
        if outcome is not None:
            seq.events.put((END, outcome))

    def _step(self) -> None:
        # Deadline first: when it passes, gRPC also cancels the call, and "deadline" is the cause.
        for seq in list(self.active):
            if seq.expired():
                self._end(seq, "deadline")
            elif seq.cancelled.is_set():
                self._end(seq, "cancelled")
        if not self.active:
            return
        batch = list(self.active)
        logits = self.engine.step_slots(
            self.cache, [s.slot for s in batch], [s.next_token for s in batch], [s.length for s in batch])
        for i, seq in enumerate(batch):
            seq.length += 1
            self._emit(seq, logits[i])

    def _emit(self, seq: Sequence, logits: torch.Tensor) -> None:
        """Samples the sequence's next token from `logits` and reports it (or its finish)."""
        if seq.expired():
            return self._end(seq, "deadline")
        if seq.cancelled.is_set():
            return self._end(seq, "cancelled")
        if seq.produced >= seq.max_tokens:
            return self._finish(seq, "length")
        s: Sampled = sample(logits, seq.params, seq.rng, seq.top_logprobs)
        if s.token in seq.stop_tokens:
            return self._finish(seq, "stop")
        seq.produced += 1
        self.counters.add("tokens_generated")
        seq.events.put((TOKEN, s))
        if seq.produced >= seq.max_tokens or seq.length >= self.engine.context_length:
            return self._finish(seq, "length")
        seq.next_token = s.token

    def _finish(self, seq: Sequence, reason: str) -> None:
        seq.events.put((FINISH, reason))
        self._end(seq, "finished")

    def _end(self, seq: Sequence, outcome: str) -> None:
        if seq in self.active:
            self.active.remove(seq)
            self.free.append(seq.slot)
        seq.events.put((END, outcome))
