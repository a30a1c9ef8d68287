"""Train the family's SentencePiece BPE tokenizer on its training text.

Settings chosen so llama.cpp's SPM tokenizer (which does no Unicode normalisation and no
whitespace collapsing, but does add a leading space) tokenises exactly like SentencePiece:
identity normalisation, no extra-whitespace removal, dummy prefix on. Byte fallback covers
every character outside the vocabulary (newlines included). The family's special tokens
(e.g. ChatML's <|im_start|>, <|im_end|>) are control symbols: ids 3, 4, ... in the order the
family file lists them, never produced from plain text by SentencePiece; llama.cpp and the
gateway match them only where a chat template puts them.

Usage: train_tokenizer.py [--vocab N] [--out PATH]   (defaults from the family file)
"""

import argparse
import io

import sentencepiece as spm
from common import BOS_ID, EOS_ID, FAMILY, UNK_ID, log, out_path, work_path


def train(vocab: int, out_path_: str, specials=(), split_digits: bool = True) -> None:
    model = io.BytesIO()
    extra = {"control_symbols": list(specials)} if specials else {}
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
        split_digits=split_digits,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
        # Long SOTU lines are cut to ~2,000 characters (corpus.lines_for_tokenizer).
        max_sentence_length=8192,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        **extra,
    )
    with open(out_path_, "wb") as fh:
        fh.write(model.getvalue())


def main() -> None:
    tok = FAMILY["tokenizer"]
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=tok["vocab_size"])
    ap.add_argument("--out", default=out_path("tokenizer.model"))
    args = ap.parse_args()
    specials = tok["special_tokens"]
    train(args.vocab, args.out, specials, tok["split_digits"])
    sp = spm.SentencePieceProcessor(model_file=args.out)
    for i, s in enumerate(specials):
        if sp.piece_to_id(s) != 3 + i or not sp.is_control(3 + i):
            raise SystemExit(f"special token {s} got id {sp.piece_to_id(s)}, expected control id {3 + i}")
    log(f"tokenizer: BPE vocab {args.vocab}, special tokens {specials or 'none'} -> {args.out}")


if __name__ == "__main__":
    main()
