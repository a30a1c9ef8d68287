"""PyTorch side of the cross-framework check: builds the model from GGUF F32 (the file the PyTorch
sidecar serves) and prints JSON with, per golden prompt, the max |logit difference| to the stored
logits and the 32-token greedy continuation -- plus whether a left-padded batch row matches."""

import json

import torch
from common import out_path, read_json, variant_path

from tiergate_model.gguf_reader import load_llama_from_gguf


def main() -> None:
    torch.set_num_threads(1)
    model = load_llama_from_gguf(variant_path("gguf-f32"))
    golden = read_json(out_path("golden.json"))
    out = []
    with torch.no_grad():
        for p in golden["prompts"]:
            ids = torch.tensor([p["ids"]])
            logits, past = model(ids)
            diff = float((logits[0, -1] - torch.tensor(p["next_token_logits"])).abs().max())
            greedy, pos = [], ids.shape[1]
            for _ in range(len(p["greedy"])):
                nxt = int(logits[0, -1].argmax())
                greedy.append(nxt)
                logits, past = model(torch.tensor([[nxt]]), torch.tensor([[pos]]), None, past)
                pos += 1
            out.append({"max_abs_diff": diff, "greedy": greedy})
        # Padding safety: the shortest prompt left-padded next to the longest one.
        short = min(golden["prompts"], key=lambda p: len(p["ids"]))["ids"]
        long = max(golden["prompts"], key=lambda p: len(p["ids"]))["ids"]
        pad = len(long) - len(short)
        batch = torch.tensor([[0] * pad + short, long])
        mask = torch.tensor([[0] * pad + [1] * len(short), [1] * len(long)])
        pos = torch.tensor([[0] * pad + list(range(len(short))), list(range(len(long)))])
        padded, _ = model(batch, pos, mask)
        alone, _ = model(torch.tensor([short]))
        pad_diff = float((padded[0, pad:] - alone[0]).abs().max())
    print(json.dumps({"prompts": out, "padding_max_abs_diff": pad_diff}))


if __name__ == "__main__":
    main()
