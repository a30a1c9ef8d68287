"""Checkpoint -> models/tiny/tiny-f32.gguf (architecture `llama`, SentencePiece vocabulary, chat template).

Metadata keys follow llama.cpp's loader (llama-arch.cpp / llama-vocab.cpp): general.*, llama.*,
tokenizer.ggml.* with model "llama" (SPM). Tensor names come from tiergate_model.llama.
"""

import argparse

import torch
from common import BOS_ID, EOS_ID, UNK_ID, log, tiny_path, work_path
from tokens import load_sp

from tiergate_model import Llama, LlamaConfig
from tiergate_model.gguf_writer import T_ARRAY, T_BOOL, T_FLOAT32, T_INT32, T_STRING, T_UINT32, GGUFWriter

# Plain-text role markers: encodable by the BPE vocabulary without special tokens, so llama.cpp,
# SentencePiece and the gateway all see the same ids. Rendered by the gateway (Jinja subset).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)

# llama_token_type: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte.
def token_type(sp, i: int) -> int:
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_byte(i):
        return 6
    if sp.is_unused(i):
        return 5
    return 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=work_path("ckpt.pt"))
    ap.add_argument("--out", default=tiny_path("tiny-f32.gguf"))
    args = ap.parse_args()
    ckpt = torch.load(args.ckpt, map_location="cpu")
    cfg = LlamaConfig(**ckpt["config"])
    model = Llama(cfg)
    model.load_state_dict(ckpt["model"])
    sp = load_sp()
    n = sp.get_piece_size()

    w = GGUFWriter()
    w.add("general.architecture", T_STRING, "llama")
    w.add("general.name", T_STRING, "tiergate-tiny")
    w.add("general.file_type", T_UINT32, 0)  # LLAMA_FTYPE_ALL_F32
    w.add("llama.context_length", T_UINT32, cfg.max_seq_len)
    w.add("llama.embedding_length", T_UINT32, cfg.dim)
    w.add("llama.block_count", T_UINT32, cfg.n_layers)
    w.add("llama.feed_forward_length", T_UINT32, cfg.ffn_dim)
    w.add("llama.attention.head_count", T_UINT32, cfg.n_heads)
    w.add("llama.attention.head_count_kv", T_UINT32, cfg.n_kv_heads)
    w.add("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, cfg.norm_eps)
    w.add("llama.rope.freq_base", T_FLOAT32, cfg.rope_theta)
    w.add("llama.rope.dimension_count", T_UINT32, cfg.head_dim)
    w.add("llama.vocab_size", T_UINT32, cfg.vocab_size)
    w.add("tokenizer.ggml.model", T_STRING, "llama")
    w.add("tokenizer.ggml.tokens", T_ARRAY, [sp.id_to_piece(i) for i in range(n)], T_STRING)
    w.add("tokenizer.ggml.scores", T_ARRAY, [sp.get_score(i) for i in range(n)], T_FLOAT32)
    w.add("tokenizer.ggml.token_type", T_ARRAY, [token_type(sp, i) for i in range(n)], T_INT32)
    w.add("tokenizer.ggml.bos_token_id", T_UINT32, BOS_ID)
    w.add("tokenizer.ggml.eos_token_id", T_UINT32, EOS_ID)
    w.add("tokenizer.ggml.unknown_token_id", T_UINT32, UNK_ID)
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", T_BOOL, False)
    w.add("tokenizer.ggml.add_space_prefix", T_BOOL, True)
    w.add("tokenizer.chat_template", T_STRING, CHAT_TEMPLATE)
    for name, data in model.named_weights_for_gguf():
        w.add_tensor(name, data)
    with open(args.out, "wb") as fh:
        w.write(fh)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
