"""Token streams of the corpus splits: each document is BOS + ids + EOS, documents concatenated
in split order."""

from typing import List

import numpy as np
import sentencepiece as spm
from common import BOS_ID, EOS_ID, FAMILY, OUT_DIR, UNK_ID, out_path, read_json, work_path


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


class FamilyTokenizer:
    """The family's tokenizer as the golden and manifest steps use it: SentencePiece for a trained
    family (ids fixed by common.py), or a converted checkpoint's own tokenizer (hf_tokenizer's
    reference encoder over the tokenizer files convert copied into the family folder)."""

    def __init__(self, sp=None, checkpoint=None) -> None:
        self.sp = sp
        self.checkpoint = checkpoint
        if checkpoint is not None:
            from tiergate_model.hf_tokenizer import T_CONTROL, encoder

            self._enc = encoder(checkpoint)
            self.bos_id, self.eos_id, self.unk_id = checkpoint.bos_id, checkpoint.eos_id, checkpoint.unk_id
            self.add_bos = checkpoint.add_bos
            self.vocab_size = checkpoint.n_tokens
            self.file = checkpoint.source_file
            # What llama.cpp matches where special tokens are parsed (chat templates): control tokens.
            self.control = {t: i for i, t in enumerate(checkpoint.vocab.tokens) if checkpoint.vocab.types[i] == T_CONTROL}
        else:
            self.bos_id, self.eos_id, self.unk_id = BOS_ID, EOS_ID, UNK_ID
            self.add_bos = True
            self.vocab_size = sp.get_piece_size()
            self.file = "tokenizer.model"
            self.control = {sp.id_to_piece(i): i for i in range(self.vocab_size) if sp.is_control(i)}

    @property
    def prefix(self) -> List[int]:
        """What a prompt starts with (BOS when the model adds one)."""
        return [self.bos_id] if self.add_bos else []

    def encode(self, text: str) -> List[int]:
        return list(self.sp.encode(text)) if self.sp is not None else self._enc.encode(text)

    def decode(self, ids: List[int]) -> str:
        return self.sp.decode(ids) if self.sp is not None else self._enc.decode(ids)

    def piece_to_id(self, text: str) -> int:
        if self.sp is not None:
            return self.sp.piece_to_id(text)
        if not hasattr(self, "_ids"):
            self._ids = {t: i for i, t in enumerate(self.checkpoint.vocab.tokens)}
        return self._ids[text]

    def stream(self, docs: List[str]) -> np.ndarray:
        """Documents as one token stream: each is [BOS] + ids + EOS (BOS when the model adds one)."""
        out: List[int] = []
        encoded = self.sp.encode(docs) if self.sp is not None else [self._enc.encode(d) for d in docs]
        for ids in encoded:
            out.extend(self.prefix)
            out.extend(ids)
            out.append(self.eos_id)
        return np.asarray(out, dtype=np.int64)


def load_tokenizer() -> FamilyTokenizer:
    source = FAMILY.get("source")
    if source is None:
        return FamilyTokenizer(sp=load_sp())
    from tiergate_model.hf_tokenizer import load_tokenizer as load_checkpoint_tokenizer

    t = FAMILY["tokenizer"]
    return FamilyTokenizer(checkpoint=load_checkpoint_tokenizer(OUT_DIR, t.get("bos_id"), t.get("eos_ids", []), t["vocab_size"]))
