"""Token streams of the corpus splits: each document is BOS + ids + EOS, documents concatenated
in split order."""

from typing import List

import numpy as np
import sentencepiece as spm
from common import BOS_ID, EOS_ID, out_path, read_json, work_path


def load_sp(path: str = "") -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=path or out_path("tokenizer.model"))


def split_stream(sp: spm.SentencePieceProcessor, split_name: str) -> np.ndarray:
    docs: List[str] = read_json(work_path(f"{split_name}-docs.json"))
    out: List[int] = []
    for ids in sp.encode(docs):
        out.append(BOS_ID)
        out.extend(ids)
        out.append(EOS_ID)
    return np.asarray(out, dtype=np.int64)


# Validation slice used by every framework's perplexity: EVAL_WINDOWS windows of EVAL_LEN tokens,
# evenly spaced over the validation stream; the first token of each window is context only.
EVAL_WINDOWS = 32
EVAL_LEN = 256


def eval_windows(val: np.ndarray, windows: int = EVAL_WINDOWS, length: int = EVAL_LEN) -> np.ndarray:
    stride = (len(val) - length) // (windows - 1)
    return np.stack([val[i * stride : i * stride + length] for i in range(windows)])
