"""PyTorch FP32 side of `npm run bench:models`: loads the model from GGUF F32 (as the sidecar
does), then prints one JSON line: load seconds, validation perplexity on the first --windows
windows of the eval slice, and single-stream greedy decode tokens/s with the KV cache after the first
token (best of --repeats; --windows 0 skips the perplexity). Torch threads: --threads (default 1, like the other frameworks in the benchmark).
"""

import argparse
import json
import math
import time

import torch
from common import out_path, read_json, variant_path

from tiergate_model.gguf_reader import load_llama_from_gguf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    model = load_llama_from_gguf(variant_path("gguf-f32"))
    load_s = time.perf_counter() - t0

    windows = torch.tensor(read_json(out_path("eval-slice.json"))["windows"][: args.windows])
    nll, n = 0.0, 0
    with torch.no_grad():
        for chunk in windows.split(4) if args.windows > 0 else []:
            logits, _ = model(chunk)
            lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
            nll -= float(lp.gather(-1, chunk[:, 1:, None]).sum())
            n += chunk[:, 1:].numel()

    prompt = read_json(out_path("golden.json"))["prompts"][0]["ids"]
    best = 0.0
    with torch.no_grad():
        for run in range(args.repeats + 1):  # run 0 is an untimed warm-up
            logits, past = model(torch.tensor([prompt]))
            # Decode rate after the first token (prefill excluded), like the tier benchmarks.
            t = time.perf_counter()
            pos = len(prompt)
            for _ in range(args.tokens - 1):
                nxt = logits[0, -1].argmax().view(1, 1)
                logits, past = model(nxt, torch.tensor([[pos]]), None, past)
                pos += 1
            if run > 0:
                best = max(best, (args.tokens - 1) / (time.perf_counter() - t))
    ppl = math.exp(nll / n) if n else None
    print(json.dumps({"load_s": load_s, "perplexity": ppl, "tokens": n, "decode_tps": best}))


if __name__ == "__main__":
    main()
