"""Products of a few rows with a weight matrix packed once into column panels, by a kernel that
numba compiles at start-up.

Why: a batched decode step multiplies 2-8 rows by every weight matrix. OpenBLAS's GEMM repacks
the whole matrix on each call and, for 8 rows, took 2.5-3x the time of one row's matrix-vector
product, while reading the weights once should cost about the same for both
(`sidecar/bench_matmul.py` prints the three side by side; docs/fallback-tier.md has the runs).
Here the weights are packed once, at load, as panels [out / width, in, width]; the kernel keeps
ROWS x width sums in registers, streams each panel once and broadcasts one input value per row
and position. More rows than ROWS run as groups over the same panel while it is still cached.
The width is one vector register of the host: 16 floats with AVX-512, else 8 (8 x 16 sums would
not fit AVX2's 16 registers).

Each sum runs over the input positions in order with fused multiply-adds only (no reassociation),
so a row's result does not depend on which other rows share its step.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import torch

ROWS = 8  # rows per register block

Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _kernel_source(rows: int, width: int) -> str:
    """The kernel with its ROWS x width sums as scalars, which LLVM keeps in vector registers
    (a loop over a small array of sums stays in memory and runs several times slower)."""
    lines = [
        "def kernel(xt, panels, out):",
        "    # xt [in, groups * ROWS] zero-padded; panels [blocks, in, width]; out [groups * ROWS, blocks * width]",
        "    blocks = panels.shape[0]",
        "    depth = panels.shape[1]",
        f"    groups = xt.shape[1] // {rows}",
        "    for b in range(blocks):",
        f"        col = b * {width}",
        "        for g in range(groups):",
        f"            r0 = g * {rows}",
    ]
    for r in range(rows):
        lines.append("            " + "; ".join(f"s{r}_{i} = zero" for i in range(width)))
    lines += [
        "            for k in range(depth):",
        "                w = panels[b, k]",
        "                " + "; ".join(f"w{i} = w[{i}]" for i in range(width)),
        "                xk = xt[k]",
    ]
    for r in range(rows):
        lines.append(f"                x = xk[r0 + {r}]")
        lines.append("                " + "; ".join(f"s{r}_{i} += x * w{i}" for i in range(width)))
    for r in range(rows):
        lines.append(f"            o = out[r0 + {r}]")
        lines.append("            " + "; ".join(f"o[col + {i}] = s{r}_{i}" for i in range(width)))
    return "\n".join(lines) + "\n"


_kernels: Dict[int, Kernel] = {}
_unavailable: Optional[str] = None


def host_width() -> int:
    """Floats per vector register on this CPU, as LLVM (under numba) sees it."""
    import llvmlite.binding as llvm

    return 16 if llvm.get_host_cpu_features().get("avx512f", False) else 8


def load_kernel(width: int = 0) -> Optional[str]:
    """Compiles the kernel for `width` (default: the host's) once per process;
    returns why it cannot, or None."""
    global _unavailable
    try:
        import numba  # Debian's python3-numba, installed by scripts/install.sh
    except ImportError as err:
        _unavailable = f"numba is not installed ({err}); few-row products use OpenBLAS's GEMM"
        return _unavailable
    try:
        width = width or host_width()
        if width in _kernels:
            return None
        scope: dict = {"zero": np.float32(0)}
        exec(compile(_kernel_source(ROWS, width), "<tiergate panels kernel>", "exec"), scope)  # noqa: S102
        # Only fused multiply-adds are allowed: no reassociation, so every sum keeps its order.
        compiled = numba.njit(fastmath={"contract"}, nogil=True)(scope["kernel"])
        compiled(np.zeros((4, ROWS), np.float32), np.ones((1, 4, width), np.float32),
                 np.empty((ROWS, width), np.float32))
    except Exception as err:  # noqa: BLE001 — a numba that cannot compile here: the GEMM still works
        _unavailable = f"numba could not compile the panel kernel ({type(err).__name__}: {err}); few-row products use OpenBLAS's GEMM"
        return _unavailable
    _kernels[width] = compiled
    return None


class Panels:
    """One weight matrix W^T [in, out], packed as [ceil(out / width), in, width] (a copy;
    columns past `out` are zero). `width` 0 is the host's vector width."""

    def __init__(self, weight_t: torch.Tensor, width: int = 0) -> None:
        if load_kernel(width) is not None:
            raise RuntimeError(_unavailable)
        self.panel_width = panel = width or host_width()
        self.kernel = _kernels[panel]
        depth, out = weight_t.shape
        blocks = -(-out // panel)
        padded = np.zeros((depth, blocks * panel), np.float32)
        padded[:, :out] = weight_t.detach().float().numpy()
        self.panels = np.ascontiguousarray(padded.reshape(depth, blocks, panel).transpose(1, 0, 2))
        self.depth, self.width = depth, out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [rows, in] → x W^T [rows, out]."""
        rows = x.shape[0]
        groups = -(-rows // ROWS)
        xt = np.zeros((self.depth, groups * ROWS), np.float32)
        xt[:, :rows] = x.detach().numpy().T
        out = np.empty((groups * ROWS, self.panels.shape[0] * self.panel_width), np.float32)
        self.kernel(xt, self.panels, out)
        return torch.from_numpy(out[:rows, : self.width])
