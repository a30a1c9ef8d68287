"""The sidecar's matrix products for a few rows, side by side (what Engine uses where):
OpenBLAS's GEMM through torch.mm (x @ W^T, W^T stored [in, out]), the panel kernel over weights
packed once (tiergate_sidecar/panels.py: batched decode steps and verify passes), XNNPACK's
fully-connected run over weights packed once (torch.ops.prepacked; tried before the panel kernel,
kept here for comparison), and torch.mv for one row. Weights are several
matrices of the `small` family's widest layer shape, more than the caches hold, so each product
reads its matrix from memory as a decode step does. Prints µs per product, medians of rounds.
With --model, also a kept sequence's pass of n positions after a cached prompt (Engine.extend, a
speculative verify) with its matrices on the panel kernel and on the GEMM, alternating, beside a
one-position pass (a decode step).

  /usr/bin/python3 sidecar/bench_matmul.py [--in 512] [--out 3072] [--rows 1,2,5,9,13] [--rounds 5]
    [--model models/small/small-f32.gguf]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable, List

import torch

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from tiergate_sidecar.blas import set_blas_threads  # noqa: E402
from tiergate_sidecar.panels import Panels  # noqa: E402


def timed(f: Callable[[], object], count: int, rounds: int, reps: int = 10) -> float:
    f()
    samples: List[float] = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        samples.append((time.perf_counter() - t) / reps / count * 1e6)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="k", type=int, default=512)
    ap.add_argument("--out", dest="n", type=int, default=3072)
    ap.add_argument("--rows", default="1,2,5,9,13")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default="", help="a GGUF F32/F16 file: also time Engine.extend passes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    set_blas_threads(1)
    count = max(4, (128 << 20) // (args.k * args.n * 4))  # ~128 MB of weights
    weights = [torch.randn(args.n, args.k) for _ in range(count)]
    transposed = [w.t().contiguous() for w in weights]
    packed = [torch.ops.prepacked.linear_clamp_prepack(w, None) for w in weights]
    panels = [Panels(wt) for wt in transposed]
    print(f"[{args.k} -> {args.n}] x {count} matrices, µs per product (median of {args.rounds} rounds)")
    print("rows  openblas_gemm  panel_kernel  xnnpack_packed  mv_one_row")
    for rows in (int(r) for r in args.rows.split(",")):
        x = torch.randn(rows, args.k)
        gemm = timed(lambda: [torch.mm(x, wt) for wt in transposed], count, args.rounds)
        panel = timed(lambda: [p(x) for p in panels], count, args.rounds)
        xnn = timed(lambda: [torch.ops.prepacked.linear_clamp_run(x, p) for p in packed], count, args.rounds)
        mv = (timed(lambda: [torch.mv(wt.t(), x[0]) for wt in transposed], count, args.rounds)
              if rows == 1 else float("nan"))
        print(f"{rows:4d}  {gemm:13.1f}  {panel:12.1f}  {xnn:14.1f}  {mv:10.1f}")
    if args.model:
        extend_passes(args.model, [int(r) for r in args.rows.split(",") if int(r) > 1], args.rounds)


def extend_passes(model: str, sizes: List[int], rounds: int) -> None:
    from tiergate_sidecar.engine import load_engine

    engine = load_engine(model, "")
    panels = (engine._panels, engine._out_panels)  # noqa: SLF001 — the A/B switches them
    prompt = [1, 450, 5874, 310, 278, 3303, 3900] * 4
    ms: dict = {}
    with torch.inference_mode():
        cache = engine.allocate_slots(1, zeroed=False)
        engine.extend(cache, 0, prompt)
        for _ in range(rounds * 2):
            for form in ("gemm", "panels"):
                engine._panels, engine._out_panels = panels if form == "panels" else (None, None)  # noqa: SLF001
                for n in [1] + sizes:
                    t = time.perf_counter()
                    engine.extend(cache, len(prompt), [5] * n)
                    ms.setdefault((form, n), []).append((time.perf_counter() - t) * 1000)
    print(f"Engine.extend after {len(prompt)} cached positions, ms per pass (median of {rounds * 2})")
    print("positions  gemm   panels")
    for n in [1] + sizes:
        print(f"{n:9d}  {statistics.median(ms[('gemm', n)]):5.2f}  {statistics.median(ms[('panels', n)]):6.2f}")


if __name__ == "__main__":
    main()
