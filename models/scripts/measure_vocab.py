"""Vocabulary-size measurement behind the 2k choice (docs/models.md): trains throwaway BPE
tokenizers of several sizes on the training split (same settings as train_tokenizer.py) and
prints, on the validation split, tokens per character, a unigram model's per-token perplexity and
bits per character, and the share of a dim-256 model's parameters the tied embedding would take.
Usage: measure_vocab.py [sizes...]   (run after prepare_corpus.py)
"""

import math
import os
import sys
import tempfile

import numpy as np
from common import read_json, work_path
from tokens import load_sp
from train_tokenizer import train

DIM = 256
NON_EMBEDDING_PARAMS = 2_361_600  # the 4-layer dim-256 FFN-512 body incl. norms (models/config.json)


def main() -> None:
    sizes = [int(s) for s in sys.argv[1:]] or [1024, 2048, 4096]
    train_docs = read_json(work_path("train-docs.json"))
    val_docs = read_json(work_path("validation-docs.json"))
    val_chars = sum(len(d) for d in val_docs)
    print("| vocab | tokens/char (validation) | unigram ppl / token | unigram bits / char | embedding share of params |")
    print("|---|---|---|---|---|")
    for v in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "sp.model")
            train(v, path)
            sp = load_sp(path)
            counts = np.ones(v)
            for ids in sp.encode(train_docs):
                np.add.at(counts, ids, 1)
            logp = np.log(counts / counts.sum())
            val_ids = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in sp.encode(val_docs)])
            nll = -float(logp[val_ids].sum())
            ppl = math.exp(nll / len(val_ids))
            bpc = nll / math.log(2) / val_chars
            share = v * DIM / (v * DIM + NON_EMBEDDING_PARAMS)
            print(f"| {v} | {len(val_ids) / val_chars:.3f} | {ppl:.1f} | {bpc:.3f} | {share:.0%} |")


if __name__ == "__main__":
    main()
