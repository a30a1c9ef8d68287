"""Train the SentencePiece BPE tokenizer on the training split.

Settings chosen so llama.cpp's SPM tokenizer (which does no Unicode normalisation and no
whitespace collapsing, but does add a leading space) tokenises exactly like SentencePiece:
identity normalisation, no extra-whitespace removal, dummy prefix on. Byte fallback covers
every character outside the vocabulary (newlines included).

Usage: train_tokenizer.py [--vocab N] [--out PATH]
"""

import argparse
import io

import sentencepiece as spm
from common import BOS_ID, EOS_ID, UNK_ID, log, tiny_path, work_path


def train(vocab: int, out_prefix: str) -> None:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=work_path("train.txt"),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab,
        byte_fallback=True,
        character_coverage=0.9995,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    with open(out_prefix, "wb") as fh:
        fh.write(model.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--out", default=tiny_path("tokenizer.model"))
    args = ap.parse_args()
    train(args.vocab, args.out)
    log(f"tokenizer: BPE vocab {args.vocab} -> {args.out}")


if __name__ == "__main__":
    main()
