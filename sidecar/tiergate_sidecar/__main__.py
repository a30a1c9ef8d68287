"""Entry point: `python3 -m tiergate_sidecar --model tiny-f32.gguf [options]` (cwd or PYTHONPATH =
sidecar/). Loads the model, serves tiergate.v1.Tier and grpc.health.v1.Health, logs JSON lines on
stderr (the first carries the bound port), and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
import torch

from .blas import set_blas_threads
from .counters import Counters
from .engine import Engine, load_engine
from .gen.grpc.health.v1 import health_pb2_grpc
from .gen.tiergate.v1 import tier_pb2_grpc
from .health import NOT_SERVING, SERVING, HealthServicer
from .jsonlog import JsonLogger
from .servicer import TierServicer

TIER_SERVICE = "tiergate.v1.Tier"


def parse_args(argv: list) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tiergate_sidecar", description=__doc__)
    p.add_argument("--model", required=True, help="LLaMA-architecture GGUF file (F32 or F16)")
    p.add_argument("--listen", default="127.0.0.1:0", help="host:port; port 0 picks a free one")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--max-concurrent", type=int, default=2, help="requests served at once")
    p.add_argument("--model-id", default="", help="model family id reported by Info")
    p.add_argument("--variant", default="", help="variant id reported by Info")
    p.add_argument("--models-lib", default="", help="directory holding the tiergate_model package")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit when stdin closes (the supervising gateway died)")
    return p.parse_args(argv)


def main(argv: list) -> int:
    args = parse_args(argv)
    log = JsonLogger(args.log_level, name="sidecar", pid=os.getpid())
    torch.set_num_threads(max(1, args.threads))
    # Inter-op parallelism only adds thread churn for a single small decoder.
    torch.set_num_interop_threads(1)
    # OpenBLAS has its own pool that set_num_threads does not reach (blas.py says why it matters).
    blas = set_blas_threads(args.threads)

    health = HealthServicer((TIER_SERVICE,))
    counters = Counters()
    # Health and Info must answer while every model slot is busy: extra workers beyond the slots.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.max_concurrent + 4),
        options=[
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    # Registered before start (grpcio wants handlers up front); it answers UNAVAILABLE until the
    # engine is attached.
    tier = TierServicer(args.max_concurrent, counters, log)
    tier_pb2_grpc.add_TierServicer_to_server(tier, server)
    port = server.add_insecure_port(args.listen)
    if port == 0:
        log.error("cannot bind", listen=args.listen)
        return 2
    server.start()
    host = args.listen.rsplit(":", 1)[0]
    # The supervisor reads the port from this line; health stays NOT_SERVING until the model is in.
    log.info("listening", address=f"{host}:{port}", port=port)

    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_parent:
        threading.Thread(target=_watch_stdin, args=(stopping,), daemon=True).start()

    try:
        t0 = time.perf_counter()
        engine: Engine = load_engine(args.model, args.models_lib, args.model_id, args.variant)
        engine.warmup()
        load_ms = round((time.perf_counter() - t0) * 1000, 1)
    except Exception as exc:  # noqa: BLE001 — any load failure is fatal and must be explained
        log.error("model load failed", model=args.model, error=f"{type(exc).__name__}: {exc}")
        server.stop(0)
        return 3
    runtime = {
        "torch": torch.__version__, "grpcio": grpc.__version__, "python": sys.version.split()[0],
        "threads": str(torch.get_num_threads()), "blas_threads": str(blas if blas is not None else "n/a"),
        "model_path": args.model, "load_ms": str(load_ms),
        "few_row_products": "gemm" if engine.panels_unavailable else "panels",
    }
    tier.attach(engine, runtime)
    health.set_all(SERVING)
    log.info("serving", model=args.model, model_id=engine.model_id, variant=engine.variant,
             context_length=engine.context_length, vocab_size=engine.vocab_size,
             threads=torch.get_num_threads(), max_concurrent=args.max_concurrent, load_ms=load_ms)
    if engine.panels_unavailable:
        log.warn("batched steps on OpenBLAS's GEMM, slower than the panel kernel",
                 reason=engine.panels_unavailable)

    stopping.wait()
    health.set_all(NOT_SERVING)
    # A short grace for in-flight streams; the gateway has already stopped sending work.
    server.stop(grace=2).wait()
    tier.close()
    log.info("stopped", counters=counters.snapshot())
    return 0


def _watch_stdin(stopping: threading.Event) -> None:
    # os.read on the raw descriptor: a daemon thread blocked inside sys.stdin's buffered reader
    # makes the interpreter abort at exit (it cannot take the buffer's lock).
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stopping.set()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
