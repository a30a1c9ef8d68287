"""A Hugging Face checkpoint's tokenizer for `tiergate convert`: the GGUF vocabulary llama.cpp
needs to reproduce it, and a reference encoder (independent of llama.cpp) for the golden ids.

Kinds (anything else is refused with the field that decides it):
- SentencePiece BPE with byte fallback, from tokenizer.model (SentencePiece's own encoder is the
  reference) or from a tokenizer.json of that shape (normalizer Prepend/Replace "▁" or a
  Metaspace pre-tokenizer, BPE model with byte_fallback). GGUF tokenizer model `llama`: llama.cpp
  merges the adjacent pair whose joined piece scores highest, so a tokenizer.json's merge ranks
  become scores (-rank of the first merge producing the piece).
- Byte-level BPE (GPT-2 / Llama 3 style): tokenizer.json with a ByteLevel pre-tokenizer, merges
  and a pre-tokenizer llama.cpp implements under a name (`tokenizer.ggml.pre`): the structure and
  regex must match one in PRE_TOKENIZERS exactly. GGUF tokenizer model `gpt2` with merges.

tokenizer.json (the `tokenizers` library's serialisation) is read from its documented structure:
normalizer, pre_tokenizer, model {type BPE, vocab, merges, byte_fallback, ignore_merges},
added_tokens [{id, content, special, lstrip, rstrip, single_word, normalized}], post_processor.
The reference encoder below implements the parts named here, nothing more.

GGUF token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
Added tokens marked special become control tokens (matched in text only where special-token
parsing is on: chat templates), the others user-defined (always matched, as Hugging Face does).
"""

from __future__ import annotations

import heapq
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .hf_checkpoint import ConvertError, read_json

T_NORMAL, T_UNKNOWN, T_CONTROL, T_USER_DEFINED, T_UNUSED, T_BYTE = 1, 2, 3, 4, 5, 6
SPACE_MARK = "\u2581"  # SentencePiece's escaped space

# --- regexes: Python's re has no \p{..}; classes are expanded from unicodedata ---------------

# Oniguruma's \s (Unicode White_Space); Python's \s also matches U+001C..U+001F.
_WS_RANGES = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_CATEGORY_RANGES: Dict[str, List[Tuple[int, int]]] = {}


def _category_ranges() -> Dict[str, List[Tuple[int, int]]]:
    if not _CATEGORY_RANGES:
        cur, start = None, 0
        for cp in range(0x110001):
            cat = unicodedata.category(chr(cp)) if cp <= 0x10FFFF else None
            if cat != cur:
                if cur is not None:
                    _CATEGORY_RANGES.setdefault(cur, []).append((start, cp - 1))
                cur, start = cat, cp
    return _CATEGORY_RANGES


def unicode_class(name: str) -> str:
    """Character-class body (no brackets) for \\p{name}: a general category (Lu) or group (L)."""
    cats = _category_ranges()
    keys = [k for k in cats if k == name or (len(name) == 1 and k[0] == name)]
    if not keys:
        raise ConvertError(f"regex class \\p{{{name}}} is not supported")
    ranges = sorted(r for k in keys for r in cats[k])
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


def translate_regex(pattern: str) -> "re.Pattern[str]":
    """An Oniguruma-style pattern of a tokenizer.json -> Python re (\\p{..}, \\s, \\S expanded)."""
    out: List[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in "pP" and pattern[i + 2 : i + 3] == "{":
                j = pattern.index("}", i)
                body = unicode_class(pattern[i + 3 : j])
                if in_class and nxt == "P":
                    raise ConvertError(f"regex {pattern!r}: \\P{{..}} inside a class is not supported")
                out.append(body if in_class else ("[^" if nxt == "P" else "[") + body + "]")
                i = j + 1
                continue
            if nxt == "s":
                out.append(_WS_RANGES if in_class else f"[{_WS_RANGES}]")
            elif nxt == "S":
                if in_class:
                    raise ConvertError(f"regex {pattern!r}: \\S inside a class is not supported")
                out.append(f"[^{_WS_RANGES}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            i += 1
            continue
        if ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as err:
        raise ConvertError(f"regex {pattern!r} cannot be compiled: {err}") from None


def _byte_chars() -> Dict[int, str]:
    """GPT-2's byte -> printable character table: printable Latin-1 bytes map to themselves, the
    others to U+0100 onwards in byte order."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(0x100 + n)
            n += 1
    return table


BYTE_CHARS = _byte_chars()
CHAR_BYTES = {c: b for b, c in BYTE_CHARS.items()}

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Pre-tokenizers llama.cpp implements (src/llama-vocab.cpp, by `tokenizer.ggml.pre` name), each as
# the tokenizer.json structure that means the same thing, and whether llama.cpp then ignores merges
# for whole words found in the vocabulary (which must match the BPE model's ignore_merges).
PRE_TOKENIZERS = [
    ("gpt-2", [("ByteLevel", {"add_prefix_space": False, "use_regex": True})], False),
    ("llama-bpe", [("Split", {"pattern": LLAMA3_REGEX}), ("ByteLevel", {"add_prefix_space": False, "use_regex": False})], True),
    ("smollm", [("Digits", {"individual_digits": True}), ("ByteLevel", {"add_prefix_space": False, "use_regex": True})], False),
]


def _flatten(node: Optional[dict], what: str) -> List[dict]:
    if node is None:
        return []
    if not isinstance(node, dict) or "type" not in node:
        raise ConvertError(f"tokenizer.json: {what} is malformed")
    if node["type"] == "Sequence":
        key = {"pre_tokenizer": "pretokenizers", "normalizer": "normalizers", "post_processor": "processors"}.get(what, "decoders")
        return [s for child in node.get(key, []) for s in _flatten(child, what)]
    return [node]


def _regex_of(step: dict) -> str:
    pat = step.get("pattern") or {}
    return pat.get("Regex") if isinstance(pat, dict) and "Regex" in pat else pat.get("String", "")


def match_pre_tokenizer(pre: Optional[dict]) -> Tuple[str, bool]:
    """(llama.cpp pre-tokenizer name, its ignore_merges) for a byte-level tokenizer.json."""
    steps = _flatten(pre, "pre_tokenizer")
    for name, shape, ignore in PRE_TOKENIZERS:
        if len(steps) != len(shape):
            continue
        ok = True
        for step, (kind, want) in zip(steps, shape):
            if step.get("type") != kind:
                ok = False
            elif kind == "Split":
                ok = ok and _regex_of(step) == want["pattern"] and step.get("behavior") == "Isolated" and not step.get("invert")
            else:
                ok = ok and all(step.get(k, False if k == "add_prefix_space" else True) == v for k, v in want.items())
        if ok:
            return name, ignore
    summary = json.dumps(pre)[:300]
    raise ConvertError(
        f"tokenizer.json: pre_tokenizer {summary}: no llama.cpp pre-tokenizer known to reproduce it "
        f"(supported: {', '.join(n for n, _, _ in PRE_TOKENIZERS)})"
    )


# --- BPE ----------------------------------------------------------------------------------------


class Bpe:
    """Byte-pair merging as the `tokenizers` BPE model and llama.cpp's BPE session do it: the
    adjacent pair with the lowest merge rank first, the leftmost among equals."""

    def __init__(self, vocab: Dict[str, int], merges: Sequence[Tuple[str, str]], ignore_merges: bool, byte_fallback: bool, unk: Optional[int]):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.ignore_merges = ignore_merges
        self.byte_fallback = byte_fallback
        self.unk = unk
        self.cache: Dict[str, List[int]] = {}

    def word(self, w: str) -> List[int]:
        hit = self.cache.get(w)
        if hit is not None:
            return hit
        ids = self._word(w)
        if len(self.cache) < 200_000:
            self.cache[w] = ids
        return ids

    def _word(self, w: str) -> List[int]:
        if self.ignore_merges and w in self.vocab:
            return [self.vocab[w]]
        syms: List[str] = []
        for ch in w:
            if ch in self.vocab or not self.byte_fallback:
                syms.append(ch)
            else:
                syms.extend(f"<0x{b:02X}>" for b in ch.encode("utf-8"))
        nxt = list(range(1, len(syms) + 1))
        prv = list(range(-1, len(syms) - 1))
        heap: List[Tuple[int, int, str, str]] = []

        def push(i: int) -> None:
            j = nxt[i]
            if i < 0 or j >= len(syms):
                return
            r = self.ranks.get((syms[i], syms[j]))
            if r is not None:
                heapq.heappush(heap, (r, i, syms[i], syms[j]))

        for i in range(len(syms) - 1):
            push(i)
        while heap:
            _, i, a, b = heapq.heappop(heap)
            j = nxt[i]
            if syms[i] != a or j >= len(syms) or syms[j] != b:
                continue  # stale: one side was merged since
            syms[i] = a + b
            syms[j] = ""
            nxt[i] = nxt[j]
            if nxt[j] < len(syms):
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        out: List[int] = []
        i = 0
        while i < len(syms):
            s = syms[i]
            if s in self.vocab:
                out.append(self.vocab[s])
            elif self.unk is not None:
                if not (out and out[-1] == self.unk):
                    out.append(self.unk)
            else:
                raise ConvertError(f"tokenizer.json: no token for {s!r} and no unk_token")
            i = nxt[i]
        return out


# --- the tokenizer -------------------------------------------------------------------------------


@dataclass
class GgufVocab:
    model: str  # "llama" (SentencePiece BPE) | "gpt2" (byte-level BPE)
    tokens: List[str]
    types: List[int]
    scores: List[float] = field(default_factory=list)
    merges: List[str] = field(default_factory=list)
    pre: Optional[str] = None
    add_space_prefix: bool = False


@dataclass
class CheckpointTokenizer:
    kind: str  # sentencepiece-bpe | byte-level-bpe
    source_file: str  # tokenizer.model | tokenizer.json
    vocab: GgufVocab
    bos_id: Optional[int]
    eos_id: Optional[int]
    unk_id: Optional[int]
    extra_eog_ids: List[int]  # besides EOS (generation_config / config eos lists)
    add_bos: bool
    add_eos: bool
    chat_template: Optional[str]
    added: Dict[str, Tuple[int, bool]]  # added token text -> (id, special)
    notes: List[str] = field(default_factory=list)
    _encoder: Optional["ReferenceEncoder"] = field(default=None, repr=False)

    @property
    def n_tokens(self) -> int:
        return len(self.vocab.tokens)

    def special_tokens(self) -> List[str]:
        """Added tokens other than BOS/EOS/UNK (the family's special_tokens)."""
        skip = {self.bos_id, self.eos_id, self.unk_id}
        return [t for t, (i, _) in sorted(self.added.items(), key=lambda kv: kv[1][0]) if i not in skip]

    def eog_tokens(self) -> List[str]:
        return [self.vocab.tokens[i] for i in ([self.eos_id] if self.eos_id is not None else []) + self.extra_eog_ids]


def _content(v) -> Optional[str]:
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def _chat_template(ckpt: str, tcfg: dict) -> Optional[str]:
    t = tcfg.get("chat_template")
    if isinstance(t, list):
        named = {e.get("name"): e.get("template") for e in t if isinstance(e, dict)}
        t = named.get("default")
    if isinstance(t, str) and t:
        return t
    path = os.path.join(ckpt, "chat_template.jinja")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    path = os.path.join(ckpt, "chat_template.json")
    if os.path.isfile(path):
        t = read_json(path, "chat template").get("chat_template")
        return t if isinstance(t, str) and t else None
    return None


def _added_tokens(tj: Optional[dict], tcfg: dict) -> Dict[int, dict]:
    out: Dict[int, dict] = {}
    for k, v in (tcfg.get("added_tokens_decoder") or {}).items():
        if isinstance(v, dict) and isinstance(v.get("content"), str):
            out[int(k)] = v
    for v in (tj or {}).get("added_tokens") or []:
        if isinstance(v, dict) and isinstance(v.get("content"), str) and isinstance(v.get("id"), int):
            out[v["id"]] = v
    for i, v in out.items():
        for flag in ("lstrip", "rstrip", "single_word"):
            if v.get(flag):
                raise ConvertError(
                    f"added token {v['content']!r} (id {i}) has {flag} = true: llama.cpp matches added tokens "
                    "without stripping or word boundaries, so prompts around it would tokenise differently"
                )
    return out


def load_tokenizer(ckpt: str, cfg_bos: Optional[int], cfg_eos: List[int], rows: int) -> CheckpointTokenizer:
    """Reads tokenizer.model and/or tokenizer.json (+ tokenizer_config.json, generation_config.json)
    and builds the GGUF vocabulary padded to `rows` (the embedding's row count)."""
    tcfg_path = os.path.join(ckpt, "tokenizer_config.json")
    tcfg = read_json(tcfg_path, "tokenizer settings") if os.path.exists(tcfg_path) else {}
    gen_path = os.path.join(ckpt, "generation_config.json")
    gen = read_json(gen_path, "generation settings") if os.path.exists(gen_path) else {}
    model_path = os.path.join(ckpt, "tokenizer.model")
    json_path = os.path.join(ckpt, "tokenizer.json")
    tj = read_json(json_path, "tokenizer") if os.path.exists(json_path) else None
    added = _added_tokens(tj, tcfg)
    if os.path.exists(model_path):
        tok = _from_sentencepiece(model_path, added, rows)
    elif tj is not None:
        tok = _from_tokenizer_json(tj, added, rows)
    else:
        raise ConvertError(f"{ckpt}: no tokenizer: expected tokenizer.model (SentencePiece) or tokenizer.json")
    ids = {t: i for i, t in enumerate(tok.vocab.tokens)}

    def token_id(key: str, fallback: Optional[int]) -> Optional[int]:
        text = _content(tcfg.get(key))
        if text is not None:
            if text not in ids:
                raise ConvertError(f"tokenizer_config.json: {key} = {text!r} is not in the vocabulary")
            return ids[text]
        return fallback

    gen_eos = _ids_of(gen.get("eos_token_id"))
    tok.bos_id = token_id("bos_token", _first([i for i in (cfg_bos, _first(_ids_of(gen.get("bos_token_id"))), tok.bos_id) if i is not None]))
    tok.eos_id = token_id("eos_token", _first(cfg_eos + gen_eos + ([tok.eos_id] if tok.eos_id is not None else [])))
    tok.extra_eog_ids = [i for i in dict.fromkeys(cfg_eos + gen_eos) if i != tok.eos_id]
    for i in [tok.bos_id, tok.eos_id, *tok.extra_eog_ids]:
        if i is not None and not 0 <= i < tok.n_tokens:
            raise ConvertError(f"special token id {i} is outside the vocabulary ({tok.n_tokens} tokens)")
    if len(tok.extra_eog_ids) > 2:
        tok.notes.append(
            f"end-of-generation ids {tok.extra_eog_ids[2:]} beyond EOS and two more are not marked in the GGUF "
            "(llama.cpp has one EOT and one EOM key)"
        )
    if isinstance(tcfg.get("add_bos_token"), bool):
        tok.add_bos = tcfg["add_bos_token"]
    elif tok.kind == "byte-level-bpe":
        tok.add_bos = _post_processor_adds_bos(tj, tok.bos_id)
    if isinstance(tcfg.get("add_eos_token"), bool):
        tok.add_eos = tcfg["add_eos_token"]
    if tok.add_bos and tok.bos_id is None:
        raise ConvertError("tokenizer_config.json: add_bos_token = true but there is no bos_token")
    tok.chat_template = _chat_template(ckpt, tcfg)
    return tok


def _first(ids: List[int]) -> Optional[int]:
    return ids[0] if ids else None


def _ids_of(v) -> List[int]:
    if isinstance(v, list):
        return [int(x) for x in v if isinstance(x, int)]
    return [v] if isinstance(v, int) and not isinstance(v, bool) else []


def _post_processor_adds_bos(tj: Optional[dict], bos: Optional[int]) -> bool:
    steps = _flatten((tj or {}).get("post_processor"), "post_processor") if (tj or {}).get("post_processor") else []
    for step in steps:
        if step.get("type") == "TemplateProcessing":
            single = step.get("single") or []
            first = single[0] if single else {}
            special = first.get("SpecialToken") if isinstance(first, dict) else None
            if special is not None:
                ids = (step.get("special_tokens") or {}).get(special.get("id"), {}).get("ids") or []
                return bos is not None and bos in ids
    return False


def _pad_and_add(tokens: List[Optional[str]], types: List[int], added: Dict[int, dict], rows: int, where: str) -> Dict[str, Tuple[int, bool]]:
    """Places added tokens at their ids (control when special, else user-defined) and pads up to
    `rows` with unused [PAD<id>] tokens, as the embedding has rows no token uses."""
    out: Dict[str, Tuple[int, bool]] = {}
    top = max([len(tokens) - 1, *added.keys()]) if added else len(tokens) - 1
    if top >= rows:
        raise ConvertError(f"config.json: vocab_size = {rows}, but the tokenizer has token id {top} ({where})")
    tokens.extend([None] * (rows - len(tokens)))
    types.extend([T_UNUSED] * (rows - len(types)))
    for i, v in sorted(added.items()):
        text, special = v["content"], bool(v.get("special"))
        if tokens[i] is not None and tokens[i] != text:
            raise ConvertError(f"added token {text!r} has id {i}, which the vocabulary gives to {tokens[i]!r}")
        tokens[i] = text
        if types[i] in (T_NORMAL, T_UNUSED):
            types[i] = T_CONTROL if special else T_USER_DEFINED
        out[text] = (i, special)
    for i, t in enumerate(tokens):
        if t is None:
            tokens[i] = f"[PAD{i}]"
            types[i] = T_UNUSED
    seen: Dict[str, int] = {}
    for i, t in enumerate(tokens):
        if t in seen:
            raise ConvertError(f"token {t!r} appears twice in the vocabulary (ids {seen[t]} and {i}); llama.cpp refuses duplicates")
        seen[t] = i
    return out


def _from_sentencepiece(path: str, added: Dict[int, dict], rows: int) -> CheckpointTokenizer:
    from sentencepiece import sentencepiece_model_pb2 as pb  # Debian python3-sentencepiece

    m = pb.ModelProto()
    try:
        with open(path, "rb") as fh:
            m.ParseFromString(fh.read())
    except Exception as err:  # protobuf's DecodeError and friends
        raise ConvertError(f"tokenizer.model: not a SentencePiece model ({err}): corrupt file") from None
    if not m.pieces:
        raise ConvertError("tokenizer.model: no pieces: corrupt file")
    if m.trainer_spec.model_type != pb.TrainerSpec.BPE:
        raise ConvertError(
            f"tokenizer.model: model_type = {pb.TrainerSpec.ModelType.Name(m.trainer_spec.model_type)}: llama.cpp reproduces "
            "SentencePiece only for BPE models (a unigram vocabulary would be silently mis-tokenised)"
        )
    ns = m.normalizer_spec
    if ns.name not in ("identity", "") and ns.precompiled_charsmap:
        raise ConvertError(f"tokenizer.model: normalizer_spec.name = {ns.name!r}: llama.cpp does no Unicode normalisation (needs identity)")
    if ns.remove_extra_whitespaces:
        raise ConvertError("tokenizer.model: normalizer_spec.remove_extra_whitespaces = true: llama.cpp keeps whitespace runs")
    tokens: List[Optional[str]] = [p.piece for p in m.pieces]
    types = [int(p.type) for p in m.pieces]
    scores = [float(p.score) for p in m.pieces]
    if sum(1 for t in types if t == T_BYTE) != 256:
        raise ConvertError("tokenizer.model: no byte pieces (byte_fallback false): text outside the vocabulary cannot be encoded")
    # SentencePiece's own control and unknown pieces (<s>, </s>, <unk>, chat markers) are matched
    # where special tokens are parsed, like the added tokens of tokenizer.json/tokenizer_config.json.
    specials = {i: {"content": p.piece, "special": True} for i, p in enumerate(m.pieces) if p.type in (T_CONTROL, T_UNKNOWN)}
    named = _pad_and_add(tokens, types, {**specials, **added}, rows, "tokenizer.model + added tokens")
    scores.extend([0.0] * (len(tokens) - len(scores)))
    unk = next((i for i, t in enumerate(types) if t == T_UNKNOWN), None)
    vocab = GgufVocab("llama", [t or "" for t in tokens], types, scores=scores, add_space_prefix=bool(ns.add_dummy_prefix))
    bos = m.trainer_spec.bos_id if m.trainer_spec.bos_id >= 0 else None
    eos = m.trainer_spec.eos_id if m.trainer_spec.eos_id >= 0 else None
    tok = CheckpointTokenizer("sentencepiece-bpe", "tokenizer.model", vocab, bos, eos, unk, [], True, False, None, named)
    tok._encoder = ReferenceEncoder.sentencepiece(path, tok)
    return tok


def _merges(model: dict) -> List[Tuple[str, str]]:
    out = []
    for m in model.get("merges") or []:
        if isinstance(m, str):
            parts = m.split(" ")
        elif isinstance(m, list):
            parts = m
        else:
            parts = []
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise ConvertError(f"tokenizer.json: merge {m!r} is not a pair of tokens")
        out.append((parts[0], parts[1]))
    return out


def _from_tokenizer_json(tj: dict, added: Dict[int, dict], rows: int) -> CheckpointTokenizer:
    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        raise ConvertError(f"tokenizer.json: model.type = {json.dumps(model.get('type'))}: only BPE tokenizers are supported")
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            raise ConvertError(f"tokenizer.json: model.{key} = {json.dumps(model[key])}: not supported")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise ConvertError("tokenizer.json: model.vocab is missing or empty")
    merges = _merges(model)
    pre_steps = _flatten(tj.get("pre_tokenizer"), "pre_tokenizer")
    norm_steps = _flatten(tj.get("normalizer"), "normalizer")
    byte_level = any(s.get("type") == "ByteLevel" for s in pre_steps) or any(
        s.get("type") == "ByteLevel" for s in _flatten(tj.get("decoder"), "decoder")
    )
    n = max(vocab.values()) + 1
    tokens: List[Optional[str]] = [None] * n
    for text, i in vocab.items():
        tokens[i] = text
    types = [T_NORMAL] * n
    unk_text = model.get("unk_token")
    unk = vocab.get(unk_text) if isinstance(unk_text, str) else None
    if unk is not None:
        types[unk] = T_UNKNOWN
    if byte_level:
        if norm_steps:
            raise ConvertError(
                f"tokenizer.json: normalizer {json.dumps(tj.get('normalizer'))[:200]}: llama.cpp's byte-level BPE does not normalise text"
            )
        if model.get("byte_fallback"):
            raise ConvertError("tokenizer.json: byte_fallback = true in a byte-level BPE: not supported")
        pre, ignore = match_pre_tokenizer(tj.get("pre_tokenizer"))
        if bool(model.get("ignore_merges", False)) != ignore:
            raise ConvertError(
                f"tokenizer.json: model.ignore_merges = {json.dumps(bool(model.get('ignore_merges', False)))}, but llama.cpp's "
                f"{pre} pre-tokenizer uses {json.dumps(ignore)}"
            )
        missing = [b for b, c in BYTE_CHARS.items() if c not in vocab]
        if missing:
            raise ConvertError(f"tokenizer.json: the byte-level vocabulary has no token for byte 0x{missing[0]:02X} ({len(missing)} bytes missing)")
        named = _pad_and_add(tokens, types, added, rows, "tokenizer.json")
        gv = GgufVocab("gpt2", [t or "" for t in tokens], types, merges=[f"{a} {b}" for a, b in merges], pre=pre)
        tok = CheckpointTokenizer("byte-level-bpe", "tokenizer.json", gv, None, None, unk, [], False, False, None, named)
        tok._encoder = ReferenceEncoder.hf(tj, tok, pre_steps, [])
        return tok

    # SentencePiece-style BPE: spaces as "▁", byte fallback, scores from merge ranks.
    prefix, escape = False, False
    for s in norm_steps:
        t = s.get("type")
        if t == "Prepend" and s.get("prepend") == SPACE_MARK:
            prefix = True
        elif t == "Replace" and (s.get("pattern") or {}).get("String") == " " and s.get("content") == SPACE_MARK:
            escape = True
        else:
            raise ConvertError(f"tokenizer.json: normalizer step {json.dumps(s)[:200]}: not supported (llama.cpp does no normalisation)")
    for s in pre_steps:
        if s.get("type") == "Metaspace" and s.get("replacement", SPACE_MARK) == SPACE_MARK:
            escape = True
            scheme = s.get("prepend_scheme", "always" if s.get("add_prefix_space", True) else "never")
            prefix = prefix or scheme in ("always", "first")
        else:
            raise ConvertError(f"tokenizer.json: pre_tokenizer step {json.dumps(s)[:200]}: not supported for a SentencePiece-style BPE")
    if not escape:
        raise ConvertError("tokenizer.json: neither byte-level nor SentencePiece-style (no ByteLevel pre-tokenizer, no ▁ replacement)")
    if not model.get("byte_fallback"):
        raise ConvertError("tokenizer.json: model.byte_fallback = false: text outside the vocabulary would become <unk>")
    for b in range(256):
        piece = f"<0x{b:02X}>"
        if piece not in vocab:
            raise ConvertError(f"tokenizer.json: byte-fallback token {piece} missing from the vocabulary")
        types[vocab[piece]] = T_BYTE
    first_rank: Dict[str, int] = {}
    for r, (a, b) in enumerate(merges):
        first_rank.setdefault(a + b, r)
    # llama.cpp's SPM merges the highest-scoring joined piece first: -rank keeps the merge order;
    # pieces no merge produces keep the lowest score.
    scores = [-float(first_rank[t]) if t in first_rank else (0.0 if t is not None and len(t) == 1 else -1e9) for t in tokens]
    named = _pad_and_add(tokens, types, added, rows, "tokenizer.json")
    scores.extend([-1e9] * (len(tokens) - len(scores)))
    gv = GgufVocab("llama", [t or "" for t in tokens], types, scores=scores, add_space_prefix=prefix)
    tok = CheckpointTokenizer("sentencepiece-bpe", "tokenizer.json", gv, None, None, unk, [], True, False, None, named)
    tok._encoder = ReferenceEncoder.hf(tj, tok, pre_steps, norm_steps)
    return tok


# --- reference encoder ---------------------------------------------------------------------------


class ReferenceEncoder:
    """Text -> ids as the checkpoint's own tokenizer gives them (SentencePiece, or the tokenizer.json
    pipeline), independent of llama.cpp. `encode(text)` parses no special (control) tokens but
    splits out user-defined added tokens, like llama.cpp's tokenize(text, parse_special=false) and
    Hugging Face with split_special_tokens; `encode(text, specials=True)` also matches control tokens."""

    def __init__(self, tok: CheckpointTokenizer):
        self.tok = tok
        self.sp = None
        self.bpe: Optional[Bpe] = None
        self.pre_steps: List[dict] = []
        self.norm_steps: List[dict] = []
        self.regexes: Dict[str, "re.Pattern[str]"] = {}
        self._patterns: Dict[bool, Optional["re.Pattern[str]"]] = {}

    @classmethod
    def sentencepiece(cls, path: str, tok: CheckpointTokenizer) -> "ReferenceEncoder":
        import sentencepiece as spm

        enc = cls(tok)
        enc.sp = spm.SentencePieceProcessor(model_file=path)
        return enc

    @classmethod
    def hf(cls, tj: dict, tok: CheckpointTokenizer, pre_steps: List[dict], norm_steps: List[dict]) -> "ReferenceEncoder":
        enc = cls(tok)
        model = tj["model"]
        enc.bpe = Bpe(dict(model["vocab"]), _merges(model), bool(model.get("ignore_merges")), bool(model.get("byte_fallback")), tok.unk_id)
        enc.pre_steps = pre_steps
        enc.norm_steps = norm_steps
        for s in pre_steps:
            if s.get("type") == "Split":
                enc.regexes[_regex_of(s)] = translate_regex(_regex_of(s))
            if s.get("type") == "ByteLevel" and s.get("use_regex", True):
                enc.regexes[GPT2_REGEX] = translate_regex(GPT2_REGEX)
        return enc

    def _added_pattern(self, specials: bool) -> Optional["re.Pattern[str]"]:
        if specials not in self._patterns:
            texts = [t for t, (_, sp) in self.tok.added.items() if specials or not sp]
            texts.sort(key=len, reverse=True)
            self._patterns[specials] = re.compile("|".join(map(re.escape, texts))) if texts else None
        return self._patterns[specials]

    def encode(self, text: str, specials: bool = False) -> List[int]:
        out: List[int] = []
        pattern = self._added_pattern(specials)
        at = 0
        if pattern is not None:
            for m in pattern.finditer(text):
                if m.start() > at:
                    out += self._segment(text[at : m.start()], at == 0)
                out.append(self.tok.added[m.group(0)][0])
                at = m.end()
        if at < len(text):
            out += self._segment(text[at:], at == 0)
        return out

    def _segment(self, text: str, first: bool) -> List[int]:
        if self.sp is not None:
            return list(self.sp.encode(text))
        for s in self.norm_steps:
            if s["type"] == "Prepend":
                text = s["prepend"] + text
            elif s["type"] == "Replace":
                text = text.replace(s["pattern"]["String"], s["content"])
        pieces = [text]
        for s in self.pre_steps:
            pieces = [p for piece in pieces for p in self._pre(s, piece, first) if p]
        assert self.bpe is not None
        return [i for p in pieces for i in self.bpe.word(p)]

    def _pre(self, step: dict, text: str, first: bool) -> List[str]:
        kind = step["type"]
        if kind == "Split":
            return _isolate(self.regexes[_regex_of(step)], text)
        if kind == "Digits":
            # tokenizers' Digits splits on char::is_numeric, i.e. \p{N} (llama.cpp's smollm regex too).
            key = r"\p{N}" if step.get("individual_digits") else r"\p{N}+"
            if key not in self.regexes:
                self.regexes[key] = translate_regex(key)
            return _isolate(self.regexes[key], text)
        if kind == "ByteLevel":
            parts = _isolate(self.regexes[GPT2_REGEX], text) if step.get("use_regex", True) else [text]
            return ["".join(BYTE_CHARS[b] for b in p.encode("utf-8")) for p in parts]
        if kind == "Metaspace":
            rep = step.get("replacement", SPACE_MARK)
            scheme = step.get("prepend_scheme", "always" if step.get("add_prefix_space", True) else "never")
            text = text.replace(" ", rep)
            if (scheme == "always" or (scheme == "first" and first)) and not text.startswith(rep):
                text = rep + text
            # split: words with their leading "▁" (behaviour MergedWithNext)
            return [p for p in re.split(f"(?={re.escape(rep)})", text) if p] if step.get("split") else [text]
        raise ConvertError(f"tokenizer.json: pre-tokenizer {kind} is not supported")

    def decode(self, ids: Sequence[int]) -> str:
        if self.sp is not None:
            return self.sp.decode([i for i in ids if i < self.sp.get_piece_size()])
        texts = self.tok.vocab.tokens
        types = self.tok.vocab.types
        if self.tok.kind == "byte-level-bpe":
            data = bytearray()
            for i in ids:
                if types[i] in (T_CONTROL, T_UNUSED):
                    continue
                t = texts[i]
                data += t.encode("utf-8") if types[i] == T_USER_DEFINED else bytes(CHAR_BYTES.get(c, 0x3F) for c in t)
            return data.decode("utf-8", errors="replace")
        data = bytearray()
        for i in ids:
            if types[i] in (T_CONTROL, T_UNUSED, T_UNKNOWN):
                continue
            t = texts[i]
            data += bytes([int(t[3:5], 16)]) if types[i] == T_BYTE else t.replace(SPACE_MARK, " ").encode("utf-8")
        s = data.decode("utf-8", errors="replace")
        return s[1:] if self.tok.vocab.add_space_prefix and s.startswith(" ") else s


def _isolate(pattern: "re.Pattern[str]", text: str) -> List[str]:
    """Split with behaviour Isolated: every match and every stretch between matches is a piece."""
    out, at = [], 0
    for m in pattern.finditer(text):
        if m.start() > at:
            out.append(text[at : m.start()])
        if m.end() > m.start():
            out.append(m.group(0))
        at = m.end()
    if at < len(text):
        out.append(text[at:])
    return out


def encoder(tok: CheckpointTokenizer) -> ReferenceEncoder:
    assert tok._encoder is not None
    return tok._encoder
