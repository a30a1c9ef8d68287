"""Prints a JSON report on how the sidecar's Generate sends tokens, for
test/sidecar/token-batches.test.ts: the servicer (sidecar/tiergate_sidecar/servicer.py) runs in
this process over a real Engine and DecodeBatcher, and its response stream is read directly, as
gRPC reads it (the next message is pulled only after the previous one was sent). A slow reader is
one that pulls its first message, then waits until the scheduler has produced every token before
pulling the rest: with accept_token_batches the rest must come as one TokenBatch.

Usage: PYTHONPATH=sidecar /usr/bin/python3 test/sidecar/token_batches_report.py MODEL.gguf
"""

import json
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

from tiergate_sidecar.counters import Counters
from tiergate_sidecar.engine import load_engine
from tiergate_sidecar.gen.tiergate.v1 import tier_pb2
from tiergate_sidecar.jsonlog import JsonLogger
from tiergate_sidecar.servicer import TierServicer

PROMPT = [1, 5, 9, 3]
TOKENS = 40


class Context:
    """The parts of grpc.ServicerContext that Generate uses: no deadline, never cancelled."""

    def __init__(self) -> None:
        self.callbacks: List[Callable[[], None]] = []

    def time_remaining(self) -> Optional[float]:
        return None

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self.callbacks.append(callback)
        return True

    def abort(self, code: object, details: str) -> None:
        raise RuntimeError(f"aborted: {code}: {details}")


def describe(message: tier_pb2.GenerateResponse) -> Dict[str, Any]:
    kind = message.WhichOneof("event")
    if kind == "finish":
        return {"kind": "finish", "reason": tier_pb2.FinishReason.Name(message.finish.reason)}
    tokens = [message.token] if kind == "token" else list(message.token_batch.tokens)
    return {"kind": kind, "tokens": [t.token for t in tokens], "logprobs": [t.logprob for t in tokens],
            "top": [[[a.token, a.logprob] for a in t.top] for t in tokens]}


def request(batches: bool, stop: Optional[int] = None) -> tier_pb2.GenerateRequest:
    return tier_pb2.GenerateRequest(tokens=PROMPT, max_tokens=TOKENS, top_logprobs=3,
                                    sampling=tier_pb2.Sampling(temperature=0),
                                    stop_tokens=[] if stop is None else [stop],
                                    accept_token_batches=batches)


def fast(servicer: TierServicer, req: tier_pb2.GenerateRequest) -> List[Dict[str, Any]]:
    return [describe(m) for m in servicer.Generate(req, Context())]


def slow(servicer: TierServicer, req: tier_pb2.GenerateRequest) -> List[Dict[str, Any]]:
    """Pulls one message, waits until the scheduler has finished the sequence, pulls the rest."""
    stream: Iterator[tier_pb2.GenerateResponse] = servicer.Generate(req, Context())
    out = [describe(next(stream))]
    batcher = servicer._batcher  # noqa: SLF001 — the test watches the scheduler it drives
    assert batcher is not None
    until = time.time() + 60
    # The sequence leaves `active` after its finish is queued.
    while batcher.active or batcher.pending:
        if time.time() > until:
            raise RuntimeError("the sequence did not finish within 60 s")
        time.sleep(0.005)
    out.extend(describe(m) for m in stream)
    return out


def main() -> None:
    engine = load_engine(sys.argv[1], "")
    engine.warmup()
    servicer = TierServicer(2, Counters(), JsonLogger("warn"))
    servicer.attach(engine, {})
    try:
        single = fast(servicer, request(False))
        greedy = [t for m in single if m["kind"] != "finish" for t in m["tokens"]]
        # A stop token that first appears a few tokens in: the finish follows a drained batch.
        stop = next((t for i, t in enumerate(greedy) if i >= 3 and t not in greedy[:i]), None)
        report = {
            "single_fast": single,
            "single_slow": slow(servicer, request(False)),
            "batched_fast": fast(servicer, request(True)),
            "batched_slow": slow(servicer, request(True)),
            "stop": stop,
            "single_stop": fast(servicer, request(False, stop)) if stop is not None else [],
            "batched_stop_slow": slow(servicer, request(True, stop)) if stop is not None else [],
        }
    finally:
        servicer.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
