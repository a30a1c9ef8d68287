"""Continuous batching of decode steps: one scheduler thread owns the model's KV slots and, on
every step, advances all active sequences together (Engine.step_slots), so concurrent requests
share each matmul instead of competing for the GIL with one small matmul each.

Request threads submit a Sequence and read its `events` queue; they never touch the model. A
sequence ends with exactly one ("end", outcome) event: "finished", "cancelled", "deadline" or
"failed". Cancellation and deadlines are checked for every sequence before every step, so a
dropped request stops within one step and its slot goes to the next waiting one.
"""

from __future__ import annotations

import bisect
import heapq
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Tuple

import torch

from .counters import Counters
from .engine import Engine
from .jsonlog import JsonLogger
from .sampling import Mulberry32, Sampled, SamplingParams, sample, sample_rows

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


class StepTiming:
    """Where the scheduler's time goes, logged at debug level every `every` steps: the forward
    pass, sampling, handing tokens to the request threads, and the wall time in between (time the
    scheduler thread waited for the GIL or the CPU). Used to find why batching did not scale
    (docs/fallback-tier.md)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._reset(time.perf_counter())

    def _reset(self, now: float) -> None:
        self.steps = self.rows = 0
        self.forward = self.sample = self.emit = 0.0
        self.since = now

    def add(self, rows: int, forward: float, sample_s: float, emit: float, log: JsonLogger) -> None:
        if self.every <= 0:
            return
        self.steps += 1
        self.rows += rows
        self.forward += forward
        self.sample += sample_s
        self.emit += emit
        if self.steps >= self.every:
            now = time.perf_counter()
            wall = now - self.since
            ms = lambda x: round(x * 1000 / self.steps, 3)  # noqa: E731 — per step
            log.debug("decode steps", steps=self.steps, mean_rows=round(self.rows / self.steps, 2),
                      tokens_per_s=round(self.rows / wall, 1), wall_ms=ms(wall), forward_ms=ms(self.forward),
                      sample_ms=ms(self.sample), emit_ms=ms(self.emit),
                      other_ms=ms(wall - self.forward - self.sample - self.emit))
            self._reset(now)


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
        self.timing = StepTiming(every=64 if log.enabled("debug") else 0)
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
        admitted: List[Sequence] = []
        for seq in waiting:
            if seq.cancelled.is_set() or seq.expired():
                self._drop_pending(seq, "deadline" if seq.expired() else "cancelled")
                continue
            if not self.free:
                continue  # stays pending until a slot frees (or its deadline passes)
            self._drop_pending(seq, None)
            # Lowest free slot, and active rows kept in slot order: the running batch then tends
            # to be one contiguous run of slots, which step_slots reads without a gather.
            seq.slot = heapq.heappop(self.free)
            bisect.insort(self.active, seq, key=lambda s: s.slot)
            admitted.append(seq)
        # Prompts of one length that arrived together prefill in one forward pass: one after
        # another they held up every running stream for a forward pass each.
        by_length: Dict[int, List[Sequence]] = {}
        for seq in admitted:
            by_length.setdefault(len(seq.tokens), []).append(seq)
        for group in by_length.values():
            logits = self.engine.prefill_slots(self.cache, [s.slot for s in group], [s.tokens for s in group])
            picks = sample_rows(logits, [s.params for s in group], [s.rng for s in group],
                                [s.top_logprobs for s in group])
            for seq, picked in zip(group, picks):
                seq.length = len(seq.tokens)
                self._emit(seq, picked)
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
        t0 = time.perf_counter()
        logits = self.engine.step_slots(
            self.cache, [s.slot for s in batch], [s.next_token for s in batch], [s.length for s in batch])
        t1 = time.perf_counter()
        picks = sample_rows(logits, [s.params for s in batch], [s.rng for s in batch],
                            [s.top_logprobs for s in batch])
        t2 = time.perf_counter()
        for seq, picked in zip(batch, picks):
            seq.length += 1
            self._emit(seq, picked)
        self.timing.add(len(batch), t1 - t0, t2 - t1, time.perf_counter() - t2, self.log)

    def _emit(self, seq: Sequence, picked: "Sampled | torch.Tensor") -> None:
        """Reports the sequence's next token (sampled here from logits [vocab] when given those)
        or its finish."""
        if seq.expired():
            return self._end(seq, "deadline")
        if seq.cancelled.is_set():
            return self._end(seq, "cancelled")
        if seq.produced >= seq.max_tokens:
            return self._finish(seq, "length")
        s: Sampled = (picked if isinstance(picked, Sampled)
                      else sample(picked, seq.params, seq.rng, seq.top_logprobs))
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
            heapq.heappush(self.free, seq.slot)
        seq.events.put((END, outcome))
