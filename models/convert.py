"""`tiergate convert`: a Hugging Face LLaMA-family checkpoint -> a servable tiergate family.

    /usr/bin/python3 models/convert.py --from CKPT --out DIR [--variants a,b,...] [--eval-text FILE]
        [--id ID] [--name NAME] [--gguf auto|f32|f16] [--force] [--keep-work] [--until STAGE]

src/cli/convert-command.ts runs it (and draws the progress bar); docs/own-model.md is the guide.

1. Inspects the checkpoint (tiergate_model.hf_checkpoint / hf_tokenizer): config.json, every
   weights header, the tokenizer, the tensor plan, and the chat template rendered by the gateway's
   Jinja engine. Anything it would not reproduce exactly is refused here, before a file is written.
2. Writes the family file into a work folder beside DIR and runs models/build.py's converted
   stages (convert, quantize-gguf, onnx, quantize-onnx, golden, ppl, manifest, verify).
3. Moves the staged family to DIR only when every stage succeeded, adds DIR/serve.yaml (a gateway
   config serving it) and prints a summary. The work folder is removed either way (--keep-work
   keeps it), so a failed conversion leaves nothing at DIR.

Exit codes: 0 converted, 2 refused (checkpoint, files or options), 1 a stage failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

MODELS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(MODELS_DIR)
sys.path.insert(0, os.path.join(MODELS_DIR, "lib"))

from tiergate_model.family import VARIANTS, FamilyError, validate, variant_file  # noqa: E402
from tiergate_model.hf_checkpoint import ConvertError, index_weights, plan_tensors, read_config  # noqa: E402
from tiergate_model.hf_tokenizer import load_tokenizer  # noqa: E402

# Beyond this F32 size the reference GGUF is F16 (`--gguf auto`): a 1B-parameter model already
# makes a 4 GiB F32 file, and every quantization is made from the reference anyway.
F32_LIMIT = 4 << 30
# serve.yaml's context per sequence when the checkpoint allows more: the edge tier reserves a KV
# cache of sequences x context (docs/gateway.md), which at 128k tokens would not fit in memory.
SERVE_CONTEXT = 4096
STAGES = ["convert", "quantize-gguf", "onnx", "quantize-onnx", "golden", "ppl", "manifest", "verify"]
# make_golden.py's golden conversation: its rendering is kept for that step (work/chat-render.json).
CHAT_MESSAGES = [{"role": "user", "content": "What is the weather like today?"}]


def refuse(msg: str) -> None:
    print(f"tiergate convert: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def family_id(out: str, given: str) -> str:
    fid = given or re.sub(r"[^a-z0-9-]+", "-", os.path.basename(os.path.normpath(out)).lower()).strip("-")[:40]
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", fid):
        refuse(f"--id {fid!r}: use lower-case letters, digits and '-' (at most 41 characters)")
    return fid


def default_variants(dim: int, ffn: int, reference: str) -> list:
    """Every framework's full precision plus the quantizations whose blocks fit the widths
    (K-quants need rows of 256, Q8_0/Q4_0 and ONNX INT4 of 32). ONNX has no size limit: its
    weights are external data (tiergate_model/onnx_writer.py)."""
    fits = lambda block: dim % block == 0 and ffn % block == 0  # noqa: E731
    out = ["pytorch-fp32", reference]
    if fits(32):
        out.append("gguf-q8_0")
    if fits(256):
        out.append("gguf-q4_k_m")
    elif fits(32):
        out.append("gguf-q4_0")
    out += ["onnx-fp32", "onnx-int8"] + (["onnx-int4"] if fits(32) else [])
    return out


def render_template(template: str) -> list:
    """The gateway renders chats with node-llama-cpp's Jinja engine: a template it rejects is
    refused now rather than at the first chat request."""
    r = subprocess.run(
        ["node", "--import", "tsx", os.path.join(MODELS_DIR, "render-chat.ts")],
        input=json.dumps({"template": template, "messages": CHAT_MESSAGES}),
        capture_output=True, text=True, cwd=REPO_DIR,
    )
    if r.returncode != 0:
        refuse(f"chat_template: does not render in the gateway's Jinja engine (node-llama-cpp): {r.stderr.strip()[-400:]}")
    return json.loads(r.stdout)


def check_eval_text(path: str) -> None:
    if not os.path.isfile(path):
        refuse(f"--eval-text {path}: no such file")
    try:
        with open(path, encoding="utf-8") as fh:
            if path.endswith(".jsonl"):
                for n, line in enumerate(fh, 1):
                    if line.strip() and not isinstance(json.loads(line).get("text"), str):
                        refuse(f"--eval-text {path}: line {n} has no \"text\" string")
            elif not fh.read().strip():
                refuse(f"--eval-text {path}: empty")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        refuse(f"--eval-text {path}: not UTF-8 text or JSON lines ({err})")


def serve_config(fam: dict) -> str:
    """A gateway config serving the family from its own folder (paths resolve against the file)."""
    fid, variants = fam["id"], fam["variants"]
    edge = next((v for v in ("gguf-q4_k_m", "gguf-q4_0", "gguf-q8_0", "gguf-f32", "gguf-f16") if v in variants))
    trained = fam["architecture"]["max_seq_len"]
    cap = trained > SERVE_CONTEXT
    note = f"  # the checkpoint allows {trained}: raise it if memory allows" if cap else ""
    lines = [
        f"# tiergate serving {fam['name']} (written by tiergate convert; docs/own-model.md)",
        "#   tiergate serve --config serve.yaml      tiergate eval --config serve.yaml",
        "server:", "  host: 127.0.0.1", "  port: 8080",
        "logging:", "  level: info",
        "family:", "  dir: .",
        "tokenizer:", "  kind: gguf",
        "chat:", "  template: auto",
        "tiers:",
        "  edge:", "    kind: llamacpp", f"    model: {edge}", "    threads: 1", "    sequences: 8", "    flashAttention: false",
    ] + ([f"    contextSize: {SERVE_CONTEXT}{note}"] if cap else [])
    tiers = ["edge"]
    if "onnx-fp32" in variants:
        lines += ["  main:", "    kind: onnx", "    model: onnx-fp32", "    workers: 1", "    maxBatchSize: 16"]
        lines += [f"    contextLength: {SERVE_CONTEXT}{note}"] if cap else []
        tiers.append("main")
    if "pytorch-fp32" in variants:
        lines += ["  fallback:", "    kind: remote", "    spawn: true", "    model: pytorch-fp32", "    threads: 1", "    maxConcurrent: 2"]
        tiers.append("fallback")
    lines += ["models:", f"  {fid}:", "    tier: edge"]
    for t in tiers:
        lines += [f"  {fid}-{t}:", f"    tier: {t}"]
    lines += [f"  {fid}-auto:", "    tier: edge", "    description: Routed per request by latency budget and accuracy floor (docs/routing.md)"]
    cost = ", ".join(f"{t}: {c}" for t, c in zip(tiers, ("0.1", "0.4", "1.0")))
    lines += [
        "routing:", "  byModel:", f"    {fid}-auto: balanced", "  policies:", "    balanced:",
        f"      tiers: [{', '.join(tiers)}]", "      objective: cheapest", "      latencyBudgetMs: 5000", "      accuracyFloor: 0",
        f"      fallback: [{', '.join(tiers[1:])}]" if len(tiers) > 1 else "      fallback: []",
        f"      costPer1kTokens: {{ {cost} }}", "      onInfeasible: best_effort",
    ]
    return "\n".join(lines) + "\n"


def summary(fam: dict, out: str, stats: dict, ckpt_bytes: int, seconds: float) -> str:
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    a, t, s = manifest["architecture"], manifest["tokenizer"], fam["source"]
    rows = [
        f"converted {s['dir']} -> {out} in {seconds:.0f} s",
        f"  model: {s['architecture']}, {a['n_layers']} layers, dim {a['dim']}, heads {a['n_heads']}/{a['n_kv_heads']}, "
        f"FFN {a['ffn_dim']}, vocabulary {a['vocab_size']}, context {a['max_seq_len']}, {manifest['parameters']:,} parameters",
        f"  weights: {s['weights']} {'/'.join(s['dtypes'])}, {ckpt_bytes / 2**20:,.1f} MiB; tokenizer: {t['type']} from {t['file']} "
        f"(GGUF {t['gguf_model']}{' pre ' + t['pre'] if t.get('pre') else ''}); chat template: {s['chat_template']}",
        f"  evaluation: {manifest['evaluation']['tokens']:,} tokens of {manifest['corpus']['name']}",
        "",
        f"  {'variant':<14} {'framework':<12} {'file':<28} {'MiB':>9} {'perplexity':>11}",
    ]
    for v in manifest["variants"]:
        rows.append(f"  {v['id']:<14} {v['framework']:<12} {v['file']:<28} {v['bytes'] / 2**20:>9.2f} {v['perplexity']:>11.4f}")
    rows += ["", "  stage           seconds   peak RSS"]
    for name, st in stats.items():
        ratio = f"  ({st['peak_rss_bytes'] / ckpt_bytes:.2f}x the checkpoint)" if name == "convert" else ""
        rows.append(f"  {name:<14} {st['seconds']:>8.1f} {st['peak_rss_bytes'] / 2**20:>8.0f} MiB{ratio}")
    rows += ["", f"serve:    tiergate serve --config {os.path.join(out, 'serve.yaml')}",
             f"evaluate: tiergate eval --config {os.path.join(out, 'serve.yaml')}", "", "serve.yaml:"]
    with open(os.path.join(out, "serve.yaml"), encoding="utf-8") as fh:
        rows += ["  " + line for line in fh.read().splitlines()]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description="Convert a Hugging Face LLaMA-family checkpoint into a tiergate family.")
    ap.add_argument("--from", dest="src", required=True, help="checkpoint folder (config.json, weights, tokenizer)")
    ap.add_argument("--out", required=True, help="family folder to create")
    ap.add_argument("--variants", default="", help=f"comma-separated variant ids (known: {', '.join(VARIANTS)})")
    ap.add_argument("--eval-text", default="", help="UTF-8 text (one document) or .jsonl of {\"text\"} to measure perplexity on")
    ap.add_argument("--id", default="", help="family id (default: from the output folder's name)")
    ap.add_argument("--name", default="", help="model name in the manifest and GGUF (default: the id)")
    ap.add_argument("--gguf", choices=("auto", "f32", "f16"), default="auto", help="reference GGUF precision (auto: F16 above 4 GiB of F32)")
    ap.add_argument("--force", action="store_true", help="replace an existing output folder")
    ap.add_argument("--keep-work", action="store_true", help="keep the work folder (logs, staged files)")
    ap.add_argument("--work-dir", default="", help="work folder (default: a hidden folder beside --out)")
    ap.add_argument("--until", default="", choices=[""] + STAGES, help="stop after this stage; nothing is moved to --out")
    args = ap.parse_args()

    t0 = time.time()
    src, out = os.path.abspath(args.src), os.path.abspath(args.out)
    if not os.path.isdir(src):
        refuse(f"--from {args.src}: no such folder")
    if os.path.exists(out) and not args.force and not args.until:
        refuse(f"--out {args.out}: already exists (choose another folder, or --force to replace it)")
    fid = family_id(out, args.id)
    if args.eval_text:
        check_eval_text(args.eval_text)
    try:
        cfg = read_config(src)
        weights = index_weights(src)
        tok = load_tokenizer(src, cfg.bos_token_id, cfg.eos_token_ids, cfg.vocab_size)
        plan_tensors(cfg, weights, tok.n_tokens)
        weights.release()
    except ConvertError as err:
        refuse(str(err))
    f32_bytes = cfg.parameters() * 4
    reference = {"f32": "gguf-f32", "f16": "gguf-f16"}.get(args.gguf) or ("gguf-f16" if f32_bytes > F32_LIMIT else "gguf-f32")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] or default_variants(cfg.dim, cfg.ffn_dim, reference)
    if args.variants:
        # The list decides (F32 when it has both); an explicit --gguf must agree with it.
        reference = "gguf-f32" if "gguf-f32" in variants else "gguf-f16"
        if args.gguf != "auto" and f"gguf-{args.gguf}" not in variants:
            refuse(f"--gguf {args.gguf}: --variants does not include gguf-{args.gguf}")
    template = tok.chat_template
    chat = {"jinja": template} if template else "role-colon"
    from tiergate_model.chat_templates import TEMPLATES

    rendered = render_template(template or TEMPLATES["role-colon"])
    dtypes = sorted({t.dtype for t in weights.tensors.values()})
    with open(os.path.join(src, "config.json"), "rb") as fh:
        import hashlib

        config_sha = hashlib.sha256(fh.read()).hexdigest()
    fam = {
        "id": fid,
        "name": args.name or fid,
        "description": f"{cfg.architecture} checkpoint {os.path.basename(src)} converted by tiergate convert",
        "architecture": {
            "dim": cfg.dim, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads,
            "ffn_dim": cfg.ffn_dim, "norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
            "max_seq_len": cfg.max_seq_len, "tie_embeddings": cfg.tie_embeddings,
        },
        "tokenizer": {
            "type": tok.kind,
            "vocab_size": tok.n_tokens,
            "special_tokens": list(dict.fromkeys([t for t in tok.added if not t.startswith("[PAD")] + tok.eog_tokens())),
            "eog_tokens": tok.eog_tokens(),
            "bos_id": tok.bos_id,
            "eos_ids": ([tok.eos_id] if tok.eos_id is not None else []) + tok.extra_eog_ids,
            "add_bos": tok.add_bos,
            "gguf_model": tok.vocab.model,
            "pre": tok.vocab.pre,
            "file": tok.source_file,
        },
        "chat_template": chat,
        "corpus": {"sources": ["eval-text"], "eval_text": os.path.abspath(args.eval_text) if args.eval_text else None},
        "source": {
            "format": "huggingface",
            "dir": src,
            "architecture": cfg.architecture,
            "weights": weights.kind,
            "files": [os.path.basename(f) for f in weights.files],
            "dtypes": dtypes,
            "bytes": weights.bytes,
            "config_sha256": config_sha,
            "tokenizer": tok.source_file,
            "chat_template": "from the checkpoint" if template else "none in the checkpoint: role-colon",
        },
        "variants": variants,
        "master": None,
    }
    try:
        validate(json.loads(json.dumps(fam)))
    except FamilyError as err:
        refuse(str(err))
    if reference not in variants:
        refuse(f"--variants: include {reference} (the reference every other variant is made from)")
    for note in tok.notes:
        print(f"[convert] note: {note}", flush=True)

    work = os.path.abspath(args.work_dir or os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.convert-{os.getpid()}"))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    ok = False
    try:
        family_file = os.path.join(work, "family.json")
        with open(family_file, "w", encoding="utf-8") as fh:
            json.dump(fam, fh, indent=1)
        with open(os.path.join(work, "chat-render.json"), "w", encoding="utf-8") as fh:
            json.dump({"template": template or TEMPLATES["role-colon"], "messages": CHAT_MESSAGES, "values": rendered}, fh)
        stage = os.path.join(work, "stage")
        until = args.until or "verify"
        cmd = [sys.executable, os.path.join(MODELS_DIR, "build.py"), "--family-file", family_file, "--out", out,
               "--work-dir", work, "--until", until]
        rc = subprocess.call(cmd, cwd=REPO_DIR)
        if rc != 0:
            print(f"tiergate convert: a stage failed; nothing was written to {out}"
                  + (f" (work folder kept: {work})" if args.keep_work else " (rerun with --keep-work to keep the staged files)"),
                  file=sys.stderr, flush=True)
            raise SystemExit(1)
        if args.until:
            ok = True
            print(f"[convert] stopped after {until}: files in {stage}", flush=True)
            return
        with open(os.path.join(stage, "serve.yaml"), "w", encoding="utf-8") as fh:
            fh.write(serve_config(fam))
        # `tiergate eval --full` scores the whole evaluation text from the family's work folder.
        os.makedirs(os.path.join(stage, "work"), exist_ok=True)
        for name in ("validation-docs.json", "stage-stats.json"):
            shutil.copyfile(os.path.join(work, name), os.path.join(stage, "work", name))
        with open(os.path.join(work, "stage-stats.json"), encoding="utf-8") as fh:
            stats = json.load(fh)
        old = f"{out}.old-{os.getpid()}"
        if os.path.exists(out):
            os.rename(out, old)
        os.rename(stage, out)
        shutil.rmtree(old, ignore_errors=True)
        ok = True
        print("@@result", flush=True)
        print(summary(fam, out, stats, weights.bytes, time.time() - t0), flush=True)
    finally:
        if not args.keep_work and not (args.until and ok):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
