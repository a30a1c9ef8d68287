"""PyTorch FP32 reference data from the checkpoint:

- models/tiny/eval-slice.json: the fixed validation slice every framework's perplexity uses;
- models/tiny/golden.json: SentencePiece ids of sample validation text, and fixed prompts with
  next-token logits (full vocabulary, last position) and 32-token greedy continuations;
- work/ppl-pytorch.json: PyTorch FP32 perplexity on the slice and a unigram baseline on it.
"""

import math

import numpy as np
import torch
from common import BOS_ID, read_json, tiny_path, work_path, write_json, log
from tokens import EVAL_LEN, EVAL_WINDOWS, eval_windows, load_sp, split_stream

from tiergate_model import Llama, LlamaConfig

PROMPTS = [
    "The jury said",
    "In the morning, the",
    "He looked at her and",
    "The government of the United States",
    "user: What is the weather like today?\nassistant:",
]
GREEDY_TOKENS = 32


def tokenizer_samples(sp) -> list:
    docs = read_json(work_path("validation-docs.json"))
    texts = [
        docs[0][:1500],  # ordinary validation prose with newlines between paragraphs
        docs[len(docs) // 2][:1000],
        docs[-1][:800],
        "  Two leading spaces,  double  spaces, a tab\there, digits 1961 and 3.14159.",
        "Byte fallback: café, naïve, Zürich, — “quotes” and 東京 ✓",
        "Line one\nLine two\n\nAfter a blank line.",
    ]
    return [{"text": t, "ids": sp.encode(t)} for t in texts]


def main() -> None:
    sp = load_sp()
    ckpt = torch.load(work_path("ckpt.pt"), map_location="cpu")
    cfg = LlamaConfig(**ckpt["config"])
    model = Llama(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()

    val = split_stream(sp, "validation")
    windows = eval_windows(val)
    write_json(
        tiny_path("eval-slice.json"),
        {
            "description": (
                f"{EVAL_WINDOWS} windows of {EVAL_LEN} tokens evenly spaced over the validation token stream "
                "(each validation file is BOS + ids + EOS, files in id order); perplexity is over every token "
                "after the first of each window"
            ),
            "windows": windows.tolist(),
        },
    )

    nll, n = 0.0, 0
    with torch.no_grad():
        for chunk in torch.from_numpy(windows).split(8):
            logits, _ = model(chunk)
            lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
            nll -= float(lp.gather(-1, chunk[:, 1:, None]).sum())
            n += chunk[:, 1:].numel()
    ppl = math.exp(nll / n)

    train = split_stream(sp, "train")
    counts = np.bincount(train, minlength=cfg.vocab_size).astype(np.float64) + 1.0  # add-one smoothing
    logp = np.log(counts / counts.sum())
    targets = windows[:, 1:].reshape(-1)
    unigram = math.exp(-float(logp[targets].mean()))
    write_json(work_path("ppl-pytorch.json"), {"pytorch-fp32": ppl, "unigram": unigram, "tokens": n})
    log(f"PyTorch FP32 validation perplexity {ppl:.3f}; unigram {unigram:.3f} ({n} tokens)")

    prompts = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = [BOS_ID] + sp.encode(text)
            logits, _ = model(torch.tensor([ids]))
            cont = []
            cur = torch.tensor([ids])
            past = None
            pos = 0
            for _ in range(GREEDY_TOKENS):
                lg, past = model(cur, torch.arange(pos, pos + cur.shape[1]).unsqueeze(0), None, past)
                pos += cur.shape[1]
                nxt = int(lg[0, -1].argmax())
                cont.append(nxt)
                cur = torch.tensor([[nxt]])
            prompts.append(
                {
                    "text": text,
                    "ids": ids,
                    "next_token_logits": [round(float(x), 5) for x in logits[0, -1]],
                    "greedy": cont,
                    "greedy_text": sp.decode(cont),
                }
            )
    write_json(
        tiny_path("golden.json"),
        {
            "model": "tiergate-tiny",
            "vocab_size": cfg.vocab_size,
            "bos_id": BOS_ID,
            "tokenizer_samples": tokenizer_samples(sp),
            "prompts": prompts,
        },
    )
    log("wrote golden.json and eval-slice.json")


if __name__ == "__main__":
    main()
