"""Prints a JSON report on the sidecar's few-row product kernel (tiergate_sidecar/panels.py) for
test/sidecar/panels.test.ts: for each case (rows, in, out) and panel width, the largest difference from a float64
product, whether each row's result is bit-identical when computed alone, and the output shape.

Usage: PYTHONPATH=sidecar /usr/bin/python3 test/sidecar/panels_report.py
"""

import json

import torch

from tiergate_sidecar.panels import ROWS, Panels, host_width, load_kernel

CASES = [(2, 64, 96), (3, 64, 100), (ROWS, 512, 48), (ROWS + 1, 128, 7), (2 * ROWS + 3, 96, 250), (1, 32, 17)]


def case(rows: int, depth: int, width: int, panel: int) -> dict:
    gen = torch.Generator().manual_seed(rows * 1000 + width)
    weight_t = torch.randn(depth, width, generator=gen)
    # A transposed view: the kernel must not assume the caller's rows are contiguous.
    x = torch.randn(depth, rows, generator=gen).t()
    panels = Panels(weight_t, panel)
    with torch.inference_mode():
        out = panels(x)
        alone = [panels(x[r : r + 1])[0] for r in range(rows)]
    exact = (x.double() @ weight_t.double()).float()
    scale = float(exact.abs().max())
    return {
        "rows": rows, "in": depth, "out": width, "panel": panels.panel_width,
        "shape": list(out.shape), "dtype": str(out.dtype),
        "max_rel_diff": float((out - exact).abs().max()) / scale,
        "rows_alone_identical": all(torch.equal(out[r], alone[r]) for r in range(rows)),
    }


def main() -> None:
    # Both panel widths (AVX-512's and AVX2's registers), whichever this host uses.
    print(json.dumps({"unavailable": load_kernel(), "rows": ROWS, "host_width": host_width(),
                      "cases": [case(*c, panel) for panel in (16, 8) for c in CASES]}))


if __name__ == "__main__":
    main()
