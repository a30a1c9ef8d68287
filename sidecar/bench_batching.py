"""Where the sidecar's batching goes, without gRPC: greedy decode tokens/s of 1 row vs N rows in one
forward pass, for
- the plain loop: the shared model's own forward() with its torch.cat KV cache (the framework's
  plain batched form, what bench/tier-baselines.ts prints beside the sidecar), and
- the sidecar's decode path: Engine.step_slots over its preallocated slot cache, with the rows in
  slots 0..N-1 (`engine`) or in reverse order, which the step must gather (`engine-gather`);
- `batcher`: the sidecar's scheduler (per-row sampling, token events to one reading thread per
  stream) in this process, without gRPC;
- `grpc`: a real sidecar process serving 1 vs N concurrent Generate streams to a Python gRPC
  client (the sidecar with its gRPC threads, without the gateway's side of the streams), which
  opts in to token batches as the gateway's RemoteTier does (every token queued for a stream goes
  in one message per send); `grpc-single`: the same without the opt-in, one message per token
  (what an older client gets), to show the two side by side.
Prints one JSON line per measurement on stdout (progress on stderr). Rounds alternate the forms;
each figure is the median of the rounds.

  /usr/bin/python3 sidecar/bench_batching.py --model models/small/small-f32.gguf [--rows 8]
    [--tokens 64] [--rounds 3] [--threads 1] [--blas-threads 1]
    [--forms plain,engine,engine-gather,batcher,grpc,grpc-single] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiergate_sidecar.blas import set_blas_threads  # noqa: E402
from tiergate_sidecar.engine import Engine, load_engine  # noqa: E402

PROMPT = [1, 450, 5874, 310, 278, 3303, 3900]


def plain_loop(engine: Engine, rows: int, tokens: int) -> float:
    """Aggregate decode tokens/s of `rows` identical sequences in one forward() per step."""
    model = engine.model
    ids = torch.tensor([PROMPT] * rows)
    logits, past = model(ids)
    pos = len(PROMPT)
    t = time.perf_counter()
    for _ in range(tokens - 1):
        nxt = logits[:, -1].argmax(-1).view(rows, 1)
        logits, past = model(nxt, torch.full((rows, 1), pos), None, past)
        pos += 1
    return rows * (tokens - 1) / (time.perf_counter() - t)


def engine_loop(engine: Engine, rows: int, tokens: int, reversed_slots: bool = False) -> float:
    """The same through the sidecar's decode path (slot cache, fused weights). reversed_slots:
    the rows sit in slots rows-1..0, which step_slots must gather (the batcher's slot order
    after a burst ended, before it kept active rows in slot order)."""
    cache = engine.allocate_slots(rows)
    slots = list(range(rows))[::-1] if reversed_slots else list(range(rows))
    nxt = [int(engine.prefill_slot(cache, s, PROMPT).argmax()) for s in slots]
    pos = len(PROMPT)
    t = time.perf_counter()
    for _ in range(tokens - 1):
        logits = engine.step_slots(cache, slots, nxt, [pos] * rows)
        nxt = logits.argmax(-1).tolist()
        pos += 1
    return rows * (tokens - 1) / (time.perf_counter() - t)


def batcher_loop(engine: Engine, rows: int, tokens: int) -> float:
    """The sidecar's scheduler (DecodeBatcher: per-row sampling, token events) in this process,
    each stream read by its own thread as the gRPC request threads do, without gRPC: what the
    scheduler and its request threads cost beside `engine`, and what gRPC costs beside this."""
    import threading

    from tiergate_sidecar.batcher import END, TOKEN, DecodeBatcher, Sequence
    from tiergate_sidecar.counters import Counters
    from tiergate_sidecar.jsonlog import JsonLogger
    from tiergate_sidecar.sampling import SamplingParams

    batcher = DecodeBatcher(engine, rows, Counters(), JsonLogger("warn"))
    firsts: List[float] = []
    counts = [0] * rows

    def run(i: int) -> None:
        seq = Sequence(tokens=list(PROMPT), params=SamplingParams(temperature=0, top_p=1.0, top_k=0, seed=None),
                       max_tokens=tokens, stop_tokens=frozenset(), top_logprobs=0, deadline=None)
        batcher.submit(seq)
        while True:
            kind, _ = seq.events.get()
            if kind == TOKEN:
                if counts[i] == 0:
                    firsts.append(time.perf_counter())
                counts[i] += 1
            elif kind == END:
                break

    threads = [threading.Thread(target=run, args=(i,)) for i in range(rows)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.stop()
    return (sum(counts) - rows) / (time.perf_counter() - max(firsts))


def grpc_loop(engine: Engine, rows: int, tokens: int, batches: bool = True) -> float:
    """Aggregate tokens/s of `rows` concurrent Generate streams to a real sidecar process
    (started once, --max-concurrent rows), read by a Python gRPC client: the sidecar with its
    gRPC threads but without the gateway's side of the streams. Counts tokens after each
    stream's first message, like the other forms (prefill excluded; a first message carrying
    several tokens excludes them all). batches: the request's accept_token_batches
    (proto/tiergate/v1/tier.proto TokenBatch)."""
    import threading

    import grpc

    from tiergate_sidecar.gen.tiergate.v1 import tier_pb2, tier_pb2_grpc

    stub = _sidecar(engine, rows)
    firsts: List[float] = []
    counts = [0] * rows
    messages = [0] * rows
    first_counts = [0] * rows

    def run(i: int) -> None:
        request = tier_pb2.GenerateRequest(tokens=PROMPT, max_tokens=tokens,
                                           sampling=tier_pb2.Sampling(temperature=0),
                                           accept_token_batches=batches)
        for message in stub.Generate(request):
            kind = message.WhichOneof("event")
            n = 1 if kind == "token" else len(message.token_batch.tokens) if kind == "token_batch" else 0
            if n > 0:
                if counts[i] == 0:
                    firsts.append(time.perf_counter())
                    first_counts[i] = n
                counts[i] += n
                messages[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(rows)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del grpc
    elapsed = time.perf_counter() - max(firsts)
    _TOKENS_PER_MESSAGE.setdefault(("grpc" if batches else "grpc-single", rows), []).append(
        sum(counts) / max(1, sum(messages)))
    return (sum(counts) - sum(first_counts)) / elapsed


# Mean tokens per token message of each grpc measurement, by (form, rows): how much coalescing
# happened (1.0 without the opt-in).
_TOKENS_PER_MESSAGE: Dict[Tuple[str, int], List[float]] = {}


_SIDECARS: Dict[str, object] = {}


def _sidecar(engine: Engine, rows: int):  # type: ignore[no-untyped-def]
    import subprocess
    import threading

    import grpc

    from tiergate_sidecar.gen.tiergate.v1 import tier_pb2_grpc

    if "stub" not in _SIDECARS:
        here = os.path.dirname(os.path.abspath(__file__))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tiergate_sidecar", "--model", os.path.abspath(str(_SIDECARS["model"])),
             "--listen", "127.0.0.1:0",
             "--threads", str(torch.get_num_threads()), "--max-concurrent", str(_SIDECARS["rows"])],
            cwd=here, stderr=subprocess.PIPE, text=True)
        address, serving = "", False
        assert proc.stderr is not None
        for line in proc.stderr:
            record = json.loads(line)
            if record.get("msg") == "listening":
                address = record["address"]
            if record.get("msg") == "serving":
                serving = True
                break
        if not serving:
            raise RuntimeError(f"the sidecar did not start (exit {proc.wait()})")
        # Its later log lines must not fill the pipe and block it.
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        _SIDECARS["proc"] = proc
        _SIDECARS["stub"] = tier_pb2_grpc.TierStub(grpc.insecure_channel(address))
    return _SIDECARS["stub"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=0, help="OpenBLAS threads (0: leave its default)")
    ap.add_argument("--forms", default="plain,engine,engine-gather")
    ap.add_argument("--profile", action="store_true", help="print torch.profiler's top ops at --rows")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    blas = set_blas_threads(args.blas_threads) if args.blas_threads > 0 else None
    engine = load_engine(args.model, "")
    _SIDECARS.update(model=args.model, rows=args.rows)
    forms: Dict[str, Callable[[Engine, int, int], float]] = {
        "plain": plain_loop, "engine": engine_loop, "batcher": batcher_loop, "grpc": grpc_loop,
        "grpc-single": lambda e, r, t: grpc_loop(e, r, t, batches=False),
        "engine-gather": lambda e, r, t: engine_loop(e, r, t, reversed_slots=True)}
    chosen = [f for f in args.forms.split(",") if f in forms]
    results: Dict[str, Dict[int, List[float]]] = {f: {1: [], args.rows: []} for f in chosen}
    with torch.inference_mode():
        for f in chosen:  # warm-up
            forms[f](engine, 1, 8)
            forms[f](engine, args.rows, 8)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
            for f in chosen:
                for rows in (1, args.rows):
                    results[f][rows].append(forms[f](engine, rows, args.tokens))
        if args.profile:
            from torch.profiler import ProfilerActivity, profile
            for f in chosen:
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    forms[f](engine, args.rows, args.tokens)
                print(f"--- {f} rows={args.rows}", file=sys.stderr)
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14), file=sys.stderr)
    if "proc" in _SIDECARS:
        _SIDECARS["proc"].terminate()  # type: ignore[attr-defined]
    for f in chosen:
        one = statistics.median(results[f][1])
        many = statistics.median(results[f][args.rows])
        ratios = [m / o for o, m in zip(results[f][1], results[f][args.rows])]
        line = {"form": f, "threads": torch.get_num_threads(), "blas_threads": blas, "rows": args.rows,
                "single_tps": round(one, 1), "aggregate_tps": round(many, 1),
                "ratio": round(statistics.median(ratios), 2)}
        if f.startswith("grpc"):
            # Warm-up runs included; per rows, the median over the runs.
            for rows, key in ((1, "single_tokens_per_message"), (args.rows, "aggregate_tokens_per_message")):
                line[key] = round(statistics.median(_TOKENS_PER_MESSAGE.get((f, rows), [0.0])), 2)
        print(json.dumps(line))


if __name__ == "__main__":
    main()
