"""Paths and small helpers shared by the build scripts (run with Debian's /usr/bin/python3).

Every script works on one family, named by TIERGATE_FAMILY_FILE (models/build.py sets it;
default models/families/tiny.json). Its files go to models/<id>/ unless TIERGATE_MODELS_OUT
points elsewhere (the build stages into models/<id>/work/stage/ and moves the finished family in
at the end, so nobody reading models/<id>/ during a rebuild sees a half-written mix); its
intermediate files (corpus text, checkpoint, measurements) live in models/<id>/work/ or
TIERGATE_WORK_DIR.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

MODELS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(MODELS_DIR)
sys.path.insert(0, os.path.join(MODELS_DIR, "lib"))

from tiergate_model.family import load_family, variant_file  # noqa: E402

FAMILY_FILE = os.environ.get("TIERGATE_FAMILY_FILE") or os.path.join(MODELS_DIR, "families", "tiny.json")
FAMILY = load_family(FAMILY_FILE)
FAMILY_ID = FAMILY["id"]
OUT_DIR = os.environ.get("TIERGATE_MODELS_OUT") or os.path.join(MODELS_DIR, FAMILY_ID)
WORK_DIR = os.environ.get("TIERGATE_WORK_DIR") or os.path.join(MODELS_DIR, FAMILY_ID, "work")
NODE_MODULES = os.path.join(REPO_DIR, "node_modules")

# SentencePiece ids fixed for every family (the GGUF metadata, manifest and gateway rely on
# them); a family's special tokens follow at 3, 4, ...
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2


def work_path(name: str) -> str:
    os.makedirs(WORK_DIR, exist_ok=True)
    return os.path.join(WORK_DIR, name)


def out_path(name: str) -> str:
    os.makedirs(OUT_DIR, exist_ok=True)
    return os.path.join(OUT_DIR, name)


def variant_path(variant: str) -> str:
    """Path of a variant's file in the output folder, e.g. gguf-q8_0 -> models/tiny/tiny-q8_0.gguf."""
    return out_path(variant_file(FAMILY, variant))


def write_json(path: str, data) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, path)


def read_json(path: str):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def log(msg: str) -> None:
    print(f"[models:{FAMILY_ID}] {msg}", flush=True)
