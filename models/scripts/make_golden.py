"""PyTorch FP32 reference data from the family's GGUF F32 (the weights every tier serves):

- eval-slice.json: the fixed validation slice every framework's perplexity uses;
- golden.json: SentencePiece ids of sample validation text (the gateway checks at start-up that
  its tokenizer reproduces them), a chat conversation with the ids its template must give, and
  fixed prompts with next-token logits (full vocabulary, last position) and 32-token greedy
  continuations;
- work/ppl-pytorch.json: PyTorch FP32 perplexity on the slice and a unigram baseline on it.

A family converted from a Hugging Face checkpoint (models/convert.py) uses its own tokenizer
(tokens.FamilyTokenizer: ids from the checkpoint's tokenizer, never from llama.cpp), is evaluated
on its eval text (as many windows as it holds, up to the usual slice) and has no training text,
so no unigram baseline; its chat template is rendered by node-llama-cpp's Jinja engine, as the
gateway renders it (models/render-chat.ts).
"""

import json
import math
import os
import re
import subprocess

import numpy as np
import torch
from common import FAMILY, MODELS_DIR, REPO_DIR, log, out_path, read_json, variant_path, work_path, write_json
from tokens import EVAL_LEN, EVAL_WINDOWS, eval_windows, load_tokenizer

from tiergate_model.chat_templates import chat_template
from tiergate_model.family import reference_variant
from tiergate_model.gguf_reader import load_llama_from_gguf

CONVERTED = FAMILY.get("source") is not None

PROMPTS = [
    "The jury said",
    "In the morning, the",
    "He looked at her and",
    "The government of the United States",
]
CHAT = [{"role": "user", "content": "What is the weather like today?"}]
GREEDY_TOKENS = 32


def gateway_rendered() -> bool:
    """Whether the golden chat is the gateway's own rendering (a regression check) rather than an
    independent reference: for every template but chatml, whose special-token ids are written
    out below. (node-llama-cpp, the gateway's renderer, derives a template's generation prompt
    from a model turn, so role-colon's prompt ends "assistant: " where the template says
    "assistant:".)"""
    return CONVERTED or FAMILY["chat_template"] != "chatml"


def chat_text() -> str:
    """CHAT rendered by the family's template, with the generation prompt."""
    if gateway_rendered():
        return "".join(v.get("text", v.get("special_text", "")) for v in rendered_chat())
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in CHAT) + "<|im_start|>assistant\n"


def chat_ids(sp) -> list:
    """Ids of CHAT under the family's template, as llama.cpp tokenises a prompt with special
    tokens parsed: BOS, then each stretch of text between special tokens encoded on its own
    (SentencePiece's dummy prefix space at its start), special tokens as their ids."""
    if gateway_rendered():
        return rendered_chat_ids(sp)
    start, end = sp.piece_to_id("<|im_start|>"), sp.piece_to_id("<|im_end|>")
    ids = sp.prefix
    for m in CHAT:
        ids += [start] + sp.encode(f"{m['role']}\n{m['content']}") + [end] + sp.encode("\n")
    return ids + [start] + sp.encode("assistant\n")


_RENDERED: list = []


def rendered_chat() -> list:
    """CHAT through the family's Jinja template in node-llama-cpp (the gateway's renderer): its
    values, {"text"} (message content), {"special_text"} (template text) or {"token"} (BOS, EOS)."""
    cached = work_path("chat-render.json")  # models/convert.py rendered it when checking the template
    if not _RENDERED and os.path.exists(cached):
        c = read_json(cached)
        if c["template"] == chat_template(FAMILY) and c["messages"] == CHAT:
            _RENDERED.extend(c["values"])
    if not _RENDERED:
        r = subprocess.run(
            ["node", "--import", "tsx", os.path.join(MODELS_DIR, "render-chat.ts")],
            input=json.dumps({"template": chat_template(FAMILY), "messages": CHAT}),
            capture_output=True, text=True, cwd=REPO_DIR,
        )
        if r.returncode != 0:
            raise SystemExit(f"the chat template does not render in node-llama-cpp's Jinja engine: {r.stderr.strip()[-800:]}")
        _RENDERED.extend(json.loads(r.stdout))
    return _RENDERED


def rendered_chat_ids(tok) -> list:
    """src/text/chat-context-tokens.ts's rule: text between special tokens is one fragment,
    control-token markup counts only in template text, BOS first when the model adds one."""
    named = {"BOS": tok.bos_id, "EOS": tok.eos_id}
    specials = sorted(tok.control, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, specials))) if specials else None
    out, pending = [], ""

    def special(i) -> None:
        nonlocal pending
        if pending:
            out.extend(tok.encode(pending))
        pending = ""
        out.append(i)

    for v in rendered_chat():
        if "text" in v:
            pending += v["text"]
        elif "token" in v:
            if named.get(v["token"]) is None:
                raise SystemExit(f"chat template: special token {v['token']} has no id in this vocabulary")
            special(named[v["token"]])
        elif pattern is None:
            pending += v["special_text"]
        else:
            at = 0
            for m in pattern.finditer(v["special_text"]):
                pending += v["special_text"][at : m.start()]
                special(tok.control[m.group(0)])
                at = m.end()
            pending += v["special_text"][at:]
    if pending:
        out.extend(tok.encode(pending))
    if tok.add_bos and (not out or out[0] != tok.bos_id):
        out.insert(0, tok.bos_id)
    return out


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
    if CONVERTED:
        texts += converted_samples(sp, "\n\n".join(docs))
    return [{"text": t, "ids": sp.encode(t)} for t in texts]


def converted_samples(tok, text: str) -> list:
    """More of the eval text and the cases byte-level pre-tokenizers treat specially: digit runs,
    whitespace runs, scripts and emoji, contractions, control-token markup as plain text (the
    gateway never parses it in prompts) and user-defined added tokens (always matched)."""
    mid = len(text) // 2
    out = [
        text[mid : mid + 1200],
        "Digits: 0 7 42 123 4567 89012 3.14159 1,000,000 -12e5 2026-12-05 0x1F",
        "Whitespace:\t\ttabs,   three spaces,\n\n\nnewlines  \n   indented\r\nCRLF  trailing   ",
        "Scripts: naïve façade, Ελληνικά, русский, 日本語のテキスト, 한국어, हिन्दी, emoji 🙂👍🏽, math ∑∫√ ½",
        "Contractions: I'm, you're, it's, we've, they'll, he'd, DON'T, O'Neil's 'quoted'",
    ]
    controls = [t for t in tok.control if t and not t.startswith("[PAD")][:4]
    if controls:
        out.append("Markup as text: " + " hello ".join(controls) + " end")
    added = tok.checkpoint.added if tok.checkpoint is not None else {}
    user = [t for t, (_, special) in added.items() if not special][:2]
    if user:
        out.append("Added tokens: " + " and ".join(user) + " inside text")
    return out


def main() -> None:
    tok = sp = load_tokenizer()
    model = load_llama_from_gguf(variant_path(reference_variant(FAMILY)))
    cfg = model.cfg

    val = tok.stream(read_json(work_path("validation-docs.json")))
    length = min(EVAL_LEN, cfg.max_seq_len)
    count = min(EVAL_WINDOWS, len(val) // length)
    if count < 1:
        raise SystemExit(f"the evaluation text gives {len(val)} tokens; one window needs {length}: give a longer --eval-text")
    windows = eval_windows(val, count, length) if count > 1 else val[None, :length]
    write_json(
        out_path("eval-slice.json"),
        {
            "description": (
                f"{count} windows of {length} tokens evenly spaced over the validation token stream "
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

    unigram = None
    if not CONVERTED:  # a converted checkpoint comes without its training text
        train = tok.stream(read_json(work_path("train-docs.json")))
        counts = np.bincount(train, minlength=cfg.vocab_size).astype(np.float64) + 1.0  # add-one smoothing
        logp = np.log(counts / counts.sum())
        targets = windows[:, 1:].reshape(-1)
        unigram = math.exp(-float(logp[targets].mean()))
    write_json(work_path("ppl-pytorch.json"), {"pytorch-fp32": ppl, "unigram": unigram, "tokens": n, "windows": count, "window_tokens": length})
    log(f"PyTorch FP32 validation perplexity {ppl:.3f}; unigram {'-' if unigram is None else f'{unigram:.3f}'} ({n} tokens)")

    prompts = []
    with torch.no_grad():
        cases = [(t, tok.prefix + tok.encode(t), False) for t in PROMPTS] + [(chat_text(), chat_ids(tok), True)]
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
                    "greedy_text": tok.decode(cont),
                }
            )
    write_json(
        out_path("golden.json"),
        {
            "model": FAMILY["name"],
            "vocab_size": cfg.vocab_size,
            "bos_id": tok.bos_id,
            "tokenizer_samples": tokenizer_samples(tok),
            "chat": {
                "template": FAMILY["chat_template"] if isinstance(FAMILY["chat_template"], str) else "custom",
                "messages": CHAT,
                "text": chat_text(),
                "ids": chat_ids(tok),
            },
            "prompts": prompts,
        },
    )
    log("wrote golden.json and eval-slice.json")


if __name__ == "__main__":
    main()
