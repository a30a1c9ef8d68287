"""The tiergate.v1.Tier gRPC service over one Engine.

Generate hands its sequence to the DecodeBatcher (up to `max_concurrent` decode together; more
wait for a slot until their deadline) and streams what it produces: one message per token, or,
to a client that set `accept_token_batches`, every token already queued for the stream in one
TokenBatch message per send. Before every step the batcher checks whether the call is still
wanted — cancelled by the client, past the gRPC deadline or past `deadline_unix_ms` — and stops
there, so a dropped request frees the CPU within one step.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Dict, Iterator, Optional, Tuple

import grpc
import torch

from .counters import Counters
from .engine import Engine
from .gen.tiergate.v1 import tier_pb2, tier_pb2_grpc
from .jsonlog import JsonLogger
from .kept import KeptError, KeptState
from .batcher import FINISH, TOKEN, DecodeBatcher, Sequence
from .sampling import Sampled, SamplingParams


class TierServicer(tier_pb2_grpc.TierServicer):
    def __init__(self, max_concurrent: int, counters: Counters, log: JsonLogger) -> None:
        self._engine: Optional[Engine] = None
        self._batcher: Optional[DecodeBatcher] = None
        self.max_concurrent = max_concurrent
        # Score runs the full forward() in the request thread; this bounds how many do at once.
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.counters = counters
        self.log = log
        self.runtime: Dict[str, str] = {}

    def attach(self, engine: Engine, runtime: Dict[str, str]) -> None:
        """Starts serving `engine` (the server is up before the model is loaded)."""
        self.runtime = runtime
        self._batcher = DecodeBatcher(engine, self.max_concurrent, self.counters, self.log)
        self._engine = engine

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.stop()

    def _require_engine(self, context: grpc.ServicerContext) -> Engine:
        if self._engine is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "model is still loading")
        return self._engine  # type: ignore[return-value]

    # -- Generate ------------------------------------------------------------------------------

    def Generate(self, request: tier_pb2.GenerateRequest, context: grpc.ServicerContext
                 ) -> Iterator[tier_pb2.GenerateResponse]:
        engine = self._require_engine(context)
        batcher = self._batcher
        assert batcher is not None
        log = self.log.child(**({"request_id": request.request_id} if request.request_id else {}))
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
        sampling = request.sampling
        seq = Sequence(
            tokens=tokens,
            params=SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.top_p > 0 else 1.0,
                top_k=sampling.top_k,
                seed=sampling.seed if sampling.HasField("seed") else None,
            ),
            max_tokens=request.max_tokens,
            stop_tokens=frozenset(request.stop_tokens),
            top_logprobs=request.top_logprobs,
            deadline=_deadline(request, context),
        )

        # Cancellation arrives on a gRPC thread; the scheduler checks the flag before every step.
        def cancel() -> None:
            seq.cancelled.set()
            batcher.wake()

        context.add_callback(cancel)
        self.counters.add("generate_started")
        self.counters.add("active_requests")
        outcome, started = "failed", time.perf_counter()
        batches = request.accept_token_batches
        messages = 0
        batcher.submit(seq)
        try:
            # An event taken off the queue while draining tokens, handled next.
            held: Optional[Tuple[str, object]] = None
            while True:
                kind, payload = held if held is not None else seq.events.get()
                held = None
                if kind == TOKEN and not batches:
                    messages += 1
                    yield tier_pb2.GenerateResponse(token=_generated(payload))
                elif kind == TOKEN:
                    # gRPC pulls this generator for the next message once the previous one is
                    # sent, so whatever the scheduler queued meanwhile is here: send it all in one
                    # message. Only what is already queued — never wait for more (no latency).
                    ready = [_generated(payload)]
                    while True:
                        try:
                            event = seq.events.get_nowait()
                        except queue.Empty:
                            break
                        if event[0] != TOKEN:
                            held = event  # the finish (or end) goes after these tokens
                            break
                        ready.append(_generated(event[1]))
                    messages += 1
                    yield tier_pb2.GenerateResponse(token_batch=tier_pb2.TokenBatch(tokens=ready))
                elif kind == FINISH:
                    reason = tier_pb2.FINISH_REASON_STOP if payload == "stop" else tier_pb2.FINISH_REASON_LENGTH
                    yield tier_pb2.GenerateResponse(finish=tier_pb2.Finish(
                        reason=reason,
                        usage=tier_pb2.Usage(prompt_tokens=len(tokens), completion_tokens=seq.produced)))
                else:
                    outcome = str(payload)
                    break
            if outcome == "deadline":
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline passed after {seq.produced} tokens")
            elif outcome == "failed":
                context.abort(grpc.StatusCode.INTERNAL, "decoding failed (see the sidecar log)")
        except GeneratorExit:
            # gRPC stopped pulling this stream: the call is gone. Make sure the scheduler lets go.
            cancel()
            outcome = "deadline" if seq.expired() else "cancelled"
            raise
        finally:
            self.counters.add("active_requests", -1)
            self.counters.add({"finished": "generate_finished", "cancelled": "generate_cancelled",
                               "deadline": "generate_deadline_exceeded"}.get(outcome, "generate_failed"))
            log.info("generate", outcome=outcome, prompt_tokens=len(tokens), completion_tokens=seq.produced,
                     token_messages=messages, batched=batches,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2))

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

    # -- KeptSequence --------------------------------------------------------------------------

    def KeptSequence(self, request_iterator: Iterator[tier_pb2.SequenceCommand], context: grpc.ServicerContext
                     ) -> Iterator[tier_pb2.SequenceReply]:
        engine = self._require_engine(context)
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("command") != "open":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first command must be open")
        opened = first.open
        log = self.log.child(**({"request_id": opened.request_id} if opened.request_id else {}))
        deadline = _deadline(None, context)
        if opened.deadline_unix_ms > 0:
            own = opened.deadline_unix_ms / 1000.0
            deadline = own if deadline is None else min(deadline, own)
        # A kept sequence holds one of the request slots (as Score uses them) for its life.
        wait = None if deadline is None else max(0.0, deadline - time.time())
        if not self.slots.acquire(timeout=wait):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no free slot before the deadline")
        self.counters.add("kept_sequences_opened")
        self.counters.add("kept_sequences_open")
        calls, outcome, started = 0, "cancelled", time.perf_counter()
        try:
            state = KeptState(engine, frozenset(opened.stop_tokens))
            yield tier_pb2.SequenceReply(call=first.call, opened=tier_pb2.SequenceOpened(
                context_length=engine.context_length))
            # Each command arrives after the previous reply; the iterator ends when the client
            # closes its side and raises when the call is cancelled or its deadline passes.
            for command in request_iterator:
                if _past(deadline):
                    outcome = "deadline"
                    context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline passed after {calls} calls")
                kind = command.WhichOneof("command")
                try:
                    with torch.inference_mode():
                        reply = self._kept_call(state, command, kind)
                except KeptError as exc:
                    outcome = "invalid"
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                calls += 1
                self.counters.add("kept_calls")
                yield reply
            outcome = "closed"
        finally:
            self.slots.release()
            self.counters.add("kept_sequences_open", -1)
            log.info("kept sequence", outcome=outcome, calls=calls,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2))

    @staticmethod
    def _kept_call(state: KeptState, command: tier_pb2.SequenceCommand, kind: Optional[str]
                   ) -> tier_pb2.SequenceReply:
        if kind == "draft":
            d = command.draft
            tokens = state.draft(d.edit.keep, list(d.edit.append), d.k)
            return tier_pb2.SequenceReply(call=command.call, draft=tier_pb2.DraftReply(
                tokens=tokens, held=len(state.tokens)))
        if kind == "verify":
            v = command.verify
            s = v.sampling
            params = SamplingParams(temperature=s.temperature, top_p=s.top_p if s.top_p > 0 else 1.0,
                                    top_k=s.top_k, seed=None)
            positions = state.verify(v.edit.keep, list(v.edit.append), list(v.draft), params,
                                     v.seed & 0xFFFFFFFF, v.top_logprobs, v.logprobs)
            return tier_pb2.SequenceReply(call=command.call, verify=tier_pb2.VerifyReply(
                held=len(state.tokens),
                positions=[tier_pb2.VerifiedPosition(
                    accept=p.accept, token=p.token, token_logprob=p.token_logprob, draft_logprob=p.draft_logprob,
                    top=[tier_pb2.TokenLogprob(token=t, logprob=lp) for t, lp in p.top]) for p in positions]))
        raise KeptError(f"expected a draft or verify command, got {kind or 'nothing'}")

    # -- Info ----------------------------------------------------------------------------------

    def Info(self, request: tier_pb2.InfoRequest, context: grpc.ServicerContext) -> tier_pb2.InfoResponse:
        e = self._require_engine(context)
        return tier_pb2.InfoResponse(
            framework="pytorch", model_id=e.model_id, variant=e.variant, precision=e.precision,
            context_length=e.context_length, vocab_size=e.vocab_size,
            max_concurrent_requests=self.max_concurrent,
            capabilities=["generate", "score", "top_logprobs", "seed", "kept_sequence"],
            counters=tier_pb2.Counters(**self.counters.snapshot()),
            runtime=self.runtime,
        )


def _generated(s: Sampled) -> tier_pb2.GeneratedToken:
    return tier_pb2.GeneratedToken(token=s.token, logprob=s.logprob,
                                   top=[tier_pb2.TokenLogprob(token=t, logprob=lp) for t, lp in s.top])


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
