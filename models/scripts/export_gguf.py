"""Checkpoint -> the family's GGUF reference files (architecture `llama`, SentencePiece
vocabulary, special tokens, chat template).

Without a master (tiny): work/ckpt.pt -> <id>-f32.gguf.
With `master: gguf-f16` (small): work/ckpt.pt -> <id>-f16.gguf (2-D weights as IEEE half, norms
F32, as llama.cpp's own converter stores them), then <id>-f32.gguf as its exact upcast, so every
framework's FP32 reference holds the F16-valued weights of the committed master.
--from-master: only the upcast, from the master already in the output folder.

Metadata keys follow llama.cpp's loader (llama-arch.cpp / llama-vocab.cpp): general.*, llama.*,
tokenizer.ggml.* with model "llama" (SPM; the only type the family file allows). Tensor names
come from tiergate_model.llama.
"""

import argparse
import os

import torch
from common import BOS_ID, EOS_ID, FAMILY, UNK_ID, log, variant_path, work_path
from tokens import load_sp

from tiergate_model import Llama, LlamaConfig
from tiergate_model.chat_templates import chat_template
from tiergate_model.gguf_reader import config_from_gguf, read_gguf
from tiergate_model.gguf_writer import T_ARRAY, T_BOOL, T_FLOAT32, T_INT32, T_STRING, T_UINT32, GGUFWriter


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


def write_gguf(path: str, cfg: LlamaConfig, weights, f16: bool) -> None:
    """weights: (gguf name, float32 numpy array) pairs in file order."""
    sp = load_sp()
    n = sp.get_piece_size()
    if n != cfg.vocab_size:
        raise SystemExit(f"tokenizer has {n} pieces but the model {cfg.vocab_size} rows")
    w = GGUFWriter()
    w.add("general.architecture", T_STRING, "llama")
    w.add("general.name", T_STRING, FAMILY["name"])
    w.add("general.file_type", T_UINT32, 1 if f16 else 0)  # LLAMA_FTYPE_MOSTLY_F16 / ALL_F32
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
    eog = FAMILY["tokenizer"]["eog_tokens"]
    if eog:
        # End of turn (e.g. ChatML's <|im_end|>): llama.cpp counts it as end-of-generation.
        w.add("tokenizer.ggml.eot_token_id", T_UINT32, sp.piece_to_id(eog[0]))
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", T_BOOL, False)
    w.add("tokenizer.ggml.add_space_prefix", T_BOOL, True)
    w.add("tokenizer.chat_template", T_STRING, chat_template(FAMILY))
    for name, data in weights:
        w.add_tensor(name, data, f16=f16 and data.ndim == 2)
    with open(path, "wb") as fh:
        w.write(fh)
    log(f"wrote {path} ({os.path.getsize(path):,} bytes)")


def upcast_master() -> None:
    meta, tensors = read_gguf(variant_path("gguf-f16"))
    cfg = config_from_gguf(meta)
    write_gguf(variant_path("gguf-f32"), cfg, list(tensors.items()), f16=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=work_path("ckpt.pt"))
    ap.add_argument("--from-master", action="store_true")
    args = ap.parse_args()
    if args.from_master:
        upcast_master()
        return
    ckpt = torch.load(args.ckpt, map_location="cpu")
    cfg = LlamaConfig(**ckpt["config"])
    model = Llama(cfg)
    model.load_state_dict(ckpt["model"])
    weights = list(model.named_weights_for_gguf())
    if FAMILY["master"] == "gguf-f16":
        write_gguf(variant_path("gguf-f16"), cfg, weights, f16=True)
        upcast_master()
    else:
        write_gguf(variant_path("gguf-f32"), cfg, weights, f16=False)


if __name__ == "__main__":
    main()
