"""Debian's torch does its matrix products in OpenBLAS (libblas.so.3 → openblas-pthread), which
keeps a thread pool of its own sized to the machine's cores: torch.set_num_threads does not reach
it. A sidecar spawned by the gateway gets OPENBLAS_NUM_THREADS from its supervisor
(src/tiers/remote/sidecar-supervisor.ts); one started by hand (external mode) did not, and split
every batched decode step's GEMMs over both cores of a 2-core machine, against the gateway's own
threads. So the sidecar sets the pool to --threads itself (sidecar/bench_batching.py
--blas-threads measures either setting)."""

from __future__ import annotations

import ctypes
from typing import Optional


def _library() -> Optional[ctypes.CDLL]:
    for name in ("libblas.so.3", "libopenblas.so.0"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "openblas_set_num_threads") and hasattr(lib, "openblas_get_num_threads"):
            return lib
    return None


def set_blas_threads(threads: int) -> Optional[int]:
    """Sets OpenBLAS's thread count (call after importing torch); returns the count now in effect,
    or None when torch's BLAS is not OpenBLAS."""
    lib = _library()
    if lib is None:
        return None
    lib.openblas_set_num_threads(max(1, threads))
    return int(lib.openblas_get_num_threads())


def blas_threads() -> Optional[int]:
    lib = _library()
    return None if lib is None else int(lib.openblas_get_num_threads())
