"""Prints a JSON report about the sidecar's engine on a GGUF, for test/sidecar/engine.test.ts:
the largest difference between the KV-cache decode path and the shared model's full forward()
over a greedy run, the greedy tokens, and the parsed hyper-parameters.

Usage: PYTHONPATH=sidecar /usr/bin/python3 test/sidecar/engine_report.py PROMPT_IDS_JSON STEPS MODEL.gguf...
(two JSON reports per model, few-row products on the panel kernel and on OpenBLAS's GEMM, as
one list: one interpreter start for all of them)
"""

import json
import sys

import torch

from tiergate_sidecar.engine import load_engine


def main() -> None:
    prompt, steps = json.loads(sys.argv[1]), int(sys.argv[2])
    # Each model twice: few-row products on the panel kernel, then on OpenBLAS's GEMM.
    print(json.dumps([report(path, prompt, steps, kernel) for path in sys.argv[3:] for kernel in (True, False)]))


def report(path: str, prompt: list, steps: int, kernel: bool) -> dict:
    engine = load_engine(path, "", few_row_kernel=kernel)
    worst = 0.0
    with torch.inference_mode():
        logits, state = engine.prefill(prompt)
        seq = list(prompt)
        for _ in range(steps):
            token = int(torch.argmax(logits))
            seq.append(token)
            logits = engine.step(state, token)
            full, _ = engine.model(torch.tensor([seq]))
            worst = max(worst, float((full[0, -1] - logits).abs().max()))
        # The batched path: three sequences of different lengths in non-contiguous cache slots,
        # stepped together, against the single-sequence path above.
        prompts = [prompt, prompt[:1], prompt + prompt]
        singles = []
        for p in prompts:
            logits, state = engine.prefill(p)
            rows = []
            for _ in range(steps):
                rows.append(logits)
                logits = engine.step(state, int(torch.argmax(logits)))
            singles.append(rows)
        cache = engine.allocate_slots(4)
        slots = [3, 0, 2]
        current = [engine.prefill_slot(cache, s, p) for s, p in zip(slots, prompts)]
        lengths = [len(p) for p in prompts]
        batch_worst = 0.0
        for step in range(steps):
            for j in range(3):
                batch_worst = max(batch_worst, float((current[j] - singles[j][step]).abs().max()))
            out = engine.step_slots(cache, slots, [int(torch.argmax(c)) for c in current], lengths)
            lengths = [n + 1 for n in lengths]
            current = [out[j] for j in range(3)]
        # Equal-length prompts admitted together prefill in one forward pass (prefill_slots),
        # into non-contiguous slots; then decode together, against each prompt alone.
        group = [prompt, [t + 1 for t in prompt], list(reversed(prompt))]
        alone = []
        for p in group:
            logits, state = engine.prefill(p)
            rows = []
            for _ in range(4):
                rows.append(logits)
                logits = engine.step(state, int(torch.argmax(logits)))
            alone.append(rows)
        cache = engine.allocate_slots(4)
        slots = [2, 0, 3]
        current = list(engine.prefill_slots(cache, slots, group))
        lengths = [len(p) for p in group]
        group_worst = 0.0
        for step in range(4):
            for j in range(3):
                group_worst = max(group_worst, float((current[j] - alone[j][step]).abs().max()))
            out = engine.step_slots(cache, slots, [int(torch.argmax(c)) for c in current], lengths)
            lengths = [n + 1 for n in lengths]
            current = [out[j] for j in range(3)]
        # A kept sequence's multi-token feed after a cached prefix (Engine.extend, an
        # uninitialised one-slot cache) against the full forward pass of the whole sequence.
        whole = prompt + seq[len(prompt):len(prompt) + 6]
        kept = engine.allocate_slots(1, zeroed=False)
        engine.extend(kept, 0, whole[:2])
        engine.extend(kept, 2, whole[2:3])
        rows = engine.extend(kept, 3, whole[3:])
        full, _ = engine.model(torch.tensor([whole]))
        extend_worst = float((full[0, 3:] - rows).abs().max())
    cfg = engine.cfg
    return {
        "max_abs_diff": worst,
        "batched_max_abs_diff": batch_worst,
        "group_prefill_max_abs_diff": group_worst,
        "extend_max_abs_diff": extend_worst,
        "greedy": seq[len(prompt):],
        "precision": engine.precision,
        "few_row_products": "gemm" if engine.panels_unavailable else "panels",
        "config": {"dim": cfg.dim, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads,
                   "vocab_size": cfg.vocab_size, "ffn_dim": cfg.ffn_dim, "max_seq_len": cfg.max_seq_len,
                   "tie_embeddings": cfg.tie_embeddings},
    }


if __name__ == "__main__":
    main()
