"""PyTorch FP32 reference data from the family's GGUF F32 (the weights every tier serves):

- eval-slice.json: the fixed validation slice every framework's perplexity uses;
- golden.json: SentencePiece ids of sample validation text (the gateway checks at start-up that
  its tokenizer reproduces them), a chat conversation with the ids its template must give, and
  fixed prompts with next-token logits (full vocabulary, last position) and 32-token greedy
  continuations;
- work/ppl-pytorch.json: PyTorch FP32 perplexity on the slice and a unigram baseline on it.
"""

import math

import numpy as np
import torch
from common import BOS_ID, FAMILY, log, out_path, read_json, variant_path, work_path, write_json
from tokens import EVAL_LEN, EVAL_WINDOWS, eval_windows, load_sp, split_stream

from tiergate_model.gguf_reader import load_llama_from_gguf

PROMPTS = [
    "The jury said",
    "In the morning, the",
    "He looked at her and",
    "The government of the United States",
]
CHAT = [{"role": "user", "content": "What is the weather like today?"}]
GREEDY_TOKENS = 32


def chat_text() -> str:
    """CHAT rendered by the family's template, with the generation prompt."""
    if FAMILY["chat_template"] == "role-colon":
        return "".join(f"{m['role']}: {m['content']}\n" for m in CHAT) + "assistant:"
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in CHAT) + "<|im_start|>assistant\n"


def chat_ids(sp) -> list:
    """Ids of CHAT under the family's template, as llama.cpp tokenises a prompt with special
    tokens parsed: BOS, then each stretch of text between special tokens encoded on its own
    (SentencePiece's dummy prefix space at its start), special tokens as their ids."""
    if FAMILY["chat_template"] == "role-colon":
        return [BOS_ID] + sp.encode(chat_text())
    if FAMILY["chat_template"] != "chatml":
        raise SystemExit("golden chat ids: only the role-colon and chatml templates are known here")
    start, end = sp.piece_to_id("<|im_start|>"), sp.piece_to_id("<|im_end|>")
    ids = [BOS_ID]
    for m in CHAT:
        ids += [start] + sp.encode(f"{m['role']}\n{m['content']}") + [end] + sp.encode("\n")
    return ids + [start] + sp.encode("assistant\n")


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
    model = load_llama_from_gguf(variant_path("gguf-f32"))
    cfg = model.cfg

    val = split_stream(sp, "validation")
    windows = eval_windows(val)
    write_json(
        out_path("eval-slice.json"),
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
        cases = [(t, [BOS_ID] + sp.encode(t), False) for t in PROMPTS] + [(chat_text(), chat_ids(sp), True)]
        for text, ids, is_chat in cases:
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
                    # A chat prompt's ids come from its template (special tokens), not from its text.
                    **({"chat": True} if is_chat else {}),
                    "ids": ids,
                    "next_token_logits": [round(float(x), 5) for x in logits[0, -1]],
                    "greedy": cont,
                    "greedy_text": sp.decode(cont),
                }
            )
    write_json(
        out_path("golden.json"),
        {
            "model": FAMILY["name"],
            "vocab_size": cfg.vocab_size,
            "bos_id": BOS_ID,
            "tokenizer_samples": tokenizer_samples(sp),
            "chat": {"template": FAMILY["chat_template"], "messages": CHAT, "text": chat_text(), "ids": chat_ids(sp)},
            "prompts": prompts,
        },
    )
    log("wrote golden.json and eval-slice.json")


if __name__ == "__main__":
    main()
