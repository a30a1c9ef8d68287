"""The tiergate.v1.Tier gRPC service over one Engine.

Each Generate holds one of `max_concurrent` slots; more requests wait for a slot until their
deadline. Between decode steps the loop checks whether the call is still wanted — cancelled by the
client, past the gRPC deadline or past `deadline_unix_ms` — and stops there, so a dropped request
frees the CPU within one step.
"""

from __future__ import annotations

import threading
import time
from typing import Dict, Iterator, Optional

import grpc
import torch

from .counters import Counters
from .engine import Engine
from .gen.tiergate.v1 import tier_pb2, tier_pb2_grpc
from .jsonlog import JsonLogger
from .sampling import Mulberry32, SamplingParams, sample


class TierServicer(tier_pb2_grpc.TierServicer):
    def __init__(self, max_concurrent: int, counters: Counters, log: JsonLogger) -> None:
        self._engine: Optional[Engine] = None
        self.max_concurrent = max_concurrent
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.counters = counters
        self.log = log
        self.runtime: Dict[str, str] = {}

    def attach(self, engine: Engine, runtime: Dict[str, str]) -> None:
        """Starts serving `engine` (the server is up before the model is loaded)."""
        self.runtime = runtime
        self._engine = engine

    def _require_engine(self, context: grpc.ServicerContext) -> Engine:
        if self._engine is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "model is still loading")
        return self._engine  # type: ignore[return-value]

    # -- Generate ------------------------------------------------------------------------------

    def Generate(self, request: tier_pb2.GenerateRequest, context: grpc.ServicerContext
                 ) -> Iterator[tier_pb2.GenerateResponse]:
        engine = self._require_engine(context)
        log = self.log.child(**({"request_id": request.request_id} if request.request_id else {}))
        deadline = _deadline(request, context)
        tokens = list(request.tokens)
        if not tokens:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tokens must not be empty")
        bad = [t for t in tokens if t >= engine.vocab_size]
        if bad:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"token id {bad[0]} out of range (vocab size {engine.vocab_size})")
        if len(tokens) >= engine.context_length:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"prompt of {len(tokens)} tokens fills the context ({engine.context_length})")
        wait = None if deadline is None else max(0.0, deadline - time.time())
        if not self.slots.acquire(timeout=wait):
            self.counters.add("generate_deadline_exceeded")
            log.warn("generate: no free slot before the deadline", max_concurrent=self.max_concurrent)
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no free slot before the deadline")
        # Cancellation arrives on a gRPC thread; the decode loop polls this flag between steps.
        cancelled = threading.Event()
        context.add_callback(cancelled.set)
        self.counters.add("generate_started")
        self.counters.add("active_requests")
        outcome, produced, started = "failed", 0, time.perf_counter()
        try:
            params = SamplingParams(
                temperature=request.sampling.temperature,
                top_p=request.sampling.top_p if request.sampling.top_p > 0 else 1.0,
                top_k=request.sampling.top_k,
                seed=request.sampling.seed if request.sampling.HasField("seed") else None,
            )
            rng = Mulberry32(params.seed)
            stop_tokens = set(request.stop_tokens)
            max_tokens = request.max_tokens
            reason = tier_pb2.FINISH_REASON_LENGTH
            with torch.inference_mode():
                state = None
                logits = None
                while True:
                    if cancelled.is_set() or not context.is_active():
                        outcome = "deadline" if _past(deadline) else "cancelled"
                        break
                    if _past(deadline):
                        outcome = "deadline"
                        break
                    if produced >= max_tokens:
                        break
                    if state is None:
                        logits, state = engine.prefill(tokens)
                    s = sample(logits, params, rng, request.top_logprobs)
                    if s.token in stop_tokens:
                        reason = tier_pb2.FINISH_REASON_STOP
                        break
                    produced += 1
                    self.counters.add("tokens_generated")
                    yield tier_pb2.GenerateResponse(token=tier_pb2.GeneratedToken(
                        token=s.token, logprob=s.logprob,
                        top=[tier_pb2.TokenLogprob(token=t, logprob=lp) for t, lp in s.top]))
                    if produced >= max_tokens:
                        break
                    if state.length >= engine.context_length:
                        break  # context full: 'length'
                    logits = engine.step(state, s.token)
            if outcome == "failed":
                outcome = "finished"
                yield tier_pb2.GenerateResponse(finish=tier_pb2.Finish(
                    reason=reason,
                    usage=tier_pb2.Usage(prompt_tokens=len(tokens), completion_tokens=produced)))
            elif outcome == "deadline":
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline passed after {produced} tokens")
        except GeneratorExit:
            # The server stopped pulling this stream: the call is gone (cancelled or expired).
            outcome = "deadline" if _past(deadline) else "cancelled"
            raise
        finally:
            self.slots.release()
            self.counters.add("active_requests", -1)
            self.counters.add({"finished": "generate_finished", "cancelled": "generate_cancelled",
                               "deadline": "generate_deadline_exceeded"}.get(outcome, "generate_failed"))
            elapsed = time.perf_counter() - started
            log.info("generate", outcome=outcome, prompt_tokens=len(tokens), completion_tokens=produced,
                     duration_ms=round(elapsed * 1000, 2))

    # -- Score ---------------------------------------------------------------------------------

    def Score(self, request: tier_pb2.ScoreRequest, context: grpc.ServicerContext) -> tier_pb2.ScoreResponse:
        engine = self._require_engine(context)
        tokens = list(request.tokens)
        if len(tokens) > engine.context_length:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{len(tokens)} tokens exceed the context length {engine.context_length}")
        if any(t >= engine.vocab_size for t in tokens):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "token id out of range")
        deadline = _deadline(None, context)
        wait = None if deadline is None else max(0.0, deadline - time.time())
        if not self.slots.acquire(timeout=wait):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no free slot before the deadline")
        try:
            self.counters.add("score_requests")
            with torch.inference_mode():
                logprobs = engine.score(tokens) if len(tokens) > 1 else []
            return tier_pb2.ScoreResponse(logprobs=logprobs)
        finally:
            self.slots.release()

    # -- Info ----------------------------------------------------------------------------------

    def Info(self, request: tier_pb2.InfoRequest, context: grpc.ServicerContext) -> tier_pb2.InfoResponse:
        e = self._require_engine(context)
        return tier_pb2.InfoResponse(
            framework="pytorch", model_id=e.model_id, variant=e.variant, precision=e.precision,
            context_length=e.context_length, vocab_size=e.vocab_size,
            max_concurrent_requests=self.max_concurrent,
            capabilities=["generate", "score", "top_logprobs", "seed"],
            counters=tier_pb2.Counters(**self.counters.snapshot()),
            runtime=self.runtime,
        )


def _deadline(request: Optional[tier_pb2.GenerateRequest], context: grpc.ServicerContext) -> Optional[float]:
    """The earlier of the gRPC deadline and the request's own, as a time.time() value."""
    candidates = []
    remaining = context.time_remaining()
    if remaining is not None:
        candidates.append(time.time() + remaining)
    if request is not None and request.deadline_unix_ms > 0:
        candidates.append(request.deadline_unix_ms / 1000.0)
    return min(candidates) if candidates else None


def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.time() >= deadline
