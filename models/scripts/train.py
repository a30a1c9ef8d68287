"""Train the family's LLaMA on its training text (CPU, fixed seed, bounded wall clock).

Writes work/ckpt.pt (config + weights) and one JSON line per step to the family's
train-log.jsonl (train loss; validation perplexity at every eval step). Defaults come from the
family file's `training` block; flags override them (the quick pipeline check does).
Stops at --steps or --max-minutes, whichever comes first. The learning-rate schedule (warmup,
then cosine to 10%) follows whichever of the two is further along, so on a slower or busier
machine the run still anneals fully before the wall-clock limit (with the same seed the result
is then exactly reproducible only when the step limit is reached first).

`autocast: bf16` runs the forward and backward matmuls in bfloat16 on the CPU (weights and the
optimizer stay FP32): 1.4x the FP32 throughput for the small family here. With `long_seq`, the
last `long_fraction` of the run trains on windows of long_seq tokens (same tokens per step), so
rotary positions up to the served context length are seen at least briefly.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from common import FAMILY, log, out_path, work_path
from tokens import eval_windows, load_sp, split_stream

from tiergate_model import Llama, LlamaConfig


def evaluate(model: Llama, windows: torch.Tensor) -> float:
    model.eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for chunk in windows.split(8):
            logits, _ = model(chunk[:, :-1])
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum"
            )
            nll += float(loss)
            n += chunk[:, 1:].numel()
    model.train()
    return math.exp(nll / n)


def main() -> None:
    t = FAMILY["training"]
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=t["steps"])
    ap.add_argument("--max-minutes", type=float, default=t["minutes"])
    ap.add_argument("--batch", type=int, default=t["batch"])
    ap.add_argument("--seq", type=int, default=t["seq"])
    ap.add_argument("--lr", type=float, default=t["lr"])
    ap.add_argument("--seed", type=int, default=t["seed"])
    ap.add_argument("--eval-every", type=int, default=t["eval_every"])
    ap.add_argument("--threads", type=int, default=t["threads"])
    ap.add_argument("--out", default=work_path("ckpt.pt"))
    ap.add_argument("--log", default=out_path("train-log.jsonl"))
    args = ap.parse_args()
    bf16 = t["autocast"] == "bf16"
    long_seq = t["long_seq"]
    long_from = 1.0 - t["long_fraction"] if long_seq else 2.0

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(int(os.environ.get("TIERGATE_TRAIN_THREADS", args.threads)))

    sp = load_sp()
    cfg = LlamaConfig(**FAMILY["architecture"])
    cfg.vocab_size = sp.get_piece_size()
    train = split_stream(sp, "train")
    val = torch.from_numpy(eval_windows(split_stream(sp, "validation"), 16, args.seq + 1))
    model = Llama(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {n_params:,} parameters, {len(train):,} training tokens, config {cfg.to_dict()}")

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    warmup = max(1, args.steps // 20)

    def progress_at(step: int) -> float:
        by_steps = (step - warmup) / max(1, args.steps - warmup)
        by_time = (time.time() - start) / (args.max_minutes * 60)
        return max(by_steps, by_time)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = progress_at(step)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    logf = open(args.log, "w", encoding="utf-8")
    start = time.time()
    deadline = start + args.max_minutes * 60
    tokens_seen = 0
    loss_avg = None
    step = 0
    stopped = "steps"
    for step in range(args.steps):
        if time.time() > deadline:
            stopped = "time limit"
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        seq, rows = args.seq, args.batch
        if progress_at(step) >= long_from:
            seq, rows = long_seq, max(1, args.batch * args.seq // long_seq)
        starts = rng.integers(0, len(train) - seq - 1, size=rows)
        batch = torch.from_numpy(np.stack([train[s : s + seq + 1] for s in starts]))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, _ = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += batch[:, 1:].numel()
        loss_avg = float(loss) if loss_avg is None else 0.95 * loss_avg + 0.05 * float(loss)
        elapsed = time.time() - start
        rec = {"step": step + 1, "loss": round(float(loss), 4), "lr": lr_at(step), "tokens": tokens_seen, "seconds": round(elapsed, 1)}
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            rec["val_ppl"] = round(evaluate(model, val), 3)
            torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "step": step + 1}, args.out)
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        eta = (args.steps - step - 1) * elapsed / (step + 1)
        eta = min(eta, max(0.0, deadline - time.time()))
        sys.stdout.write(
            f"\r[train] step {step + 1}/{args.steps} loss {loss_avg:.3f} "
            f"{tokens_seen / elapsed:,.0f} tok/s eta {eta / 60:.1f} min"
            + (f" val ppl {rec['val_ppl']:.2f}" if "val_ppl" in rec else "")
            + "   "
        )
        sys.stdout.flush()
    steps_done = step + 1 if stopped == "steps" else step
    val_ppl = evaluate(model, val)
    torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "step": steps_done}, args.out)
    final = {"final": True, "steps": steps_done, "stopped_by": stopped, "val_ppl": round(val_ppl, 3),
             "tokens": tokens_seen, "seconds": round(time.time() - start, 1), "seed": args.seed,
             "batch": args.batch, "seq": args.seq, "lr": args.lr, "autocast": t["autocast"],
             "long_seq": long_seq, "threads": int(os.environ.get("TIERGATE_TRAIN_THREADS", args.threads))}
    logf.write(json.dumps(final) + "\n")
    logf.close()
    sys.stdout.write("\n")
    log(f"trained {steps_done} steps in {final['seconds']} s ({stopped}); val ppl (16 windows) {val_ppl:.2f}")


if __name__ == "__main__":
    main()
