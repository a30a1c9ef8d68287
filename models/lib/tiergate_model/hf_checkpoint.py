"""Reads a Hugging Face LLaMA-family checkpoint for `tiergate convert` (models/convert.py): its
config.json (refusing what tiergate_model.llama does not compute), an index of its weights
(safetensors, single or sharded, or pytorch_model.bin) and one tensor at a time, converted to
tiergate's layout.

Formats, from their public descriptions:
- safetensors: 8-byte little-endian header length N, N bytes of JSON
  {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data;
  offsets are relative to the first byte after the header. Tensors are read with one seek and
  one read each, so a multi-GB checkpoint is never held in memory.
- sharded: model.safetensors.index.json {"weight_map": {tensor name: shard file}}.
- pytorch_model.bin (and pytorch_model.bin.index.json shards): torch.load(weights_only=True),
  which torch 1.13 supports but cannot memory-map: a shard is held whole while it is read.

Rotary layout: Hugging Face's LlamaAttention rotates (x[i], x[i + d/2]) pairs (rotate_half);
tiergate_model.llama and llama.cpp's `llama` architecture rotate adjacent pairs (x[2i], x[2i+1]).
Per head, HF row i becomes row 2i and HF row i + d/2 becomes row 2i + 1 of Q and K (K with the
KV head count), which makes both compute the same attention scores.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral"}
# safetensors dtype -> (numpy dtype of the stored bytes, bytes per value)
ST_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2)}
# A safetensors header is JSON text; anything far larger is a corrupt length field.
MAX_HEADER = 256 << 20


class ConvertError(Exception):
    """A checkpoint tiergate cannot convert exactly; the message names the file, field and value."""


def read_json(path: str, what: str) -> dict:
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: missing ({what})")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConvertError(f"{path}: not valid JSON ({err}): corrupt or truncated file") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path}: expected a JSON object")
    return data


@dataclass
class CheckpointConfig:
    architecture: str
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    norm_eps: float
    rope_theta: float
    max_seq_len: int
    tie_embeddings: bool
    vocab_size: int
    bos_token_id: Optional[int]
    eos_token_ids: List[int]
    torch_dtype: str
    raw: dict = field(repr=False, default_factory=dict)

    def llama_config(self, vocab_size: Optional[int] = None):
        from .llama import LlamaConfig  # torch: only when a model is built

        return LlamaConfig(
            dim=self.dim, n_layers=self.n_layers, n_heads=self.n_heads, n_kv_heads=self.n_kv_heads,
            vocab_size=vocab_size or self.vocab_size, ffn_dim=self.ffn_dim, norm_eps=self.norm_eps,
            rope_theta=self.rope_theta, max_seq_len=self.max_seq_len, tie_embeddings=self.tie_embeddings,
        )

    def parameters(self) -> int:
        attn = self.dim * self.head_dim * (2 * self.n_heads + 2 * self.n_kv_heads)
        per_layer = attn + 3 * self.dim * self.ffn_dim + 2 * self.dim
        return self.n_layers * per_layer + self.vocab_size * self.dim * (1 if self.tie_embeddings else 2) + self.dim


def _ids(value) -> List[int]:
    if value is None:
        return []
    if isinstance(value, list):
        return [int(v) for v in value if isinstance(v, int)]
    return [int(value)] if isinstance(value, int) else []


def read_config(ckpt: str) -> CheckpointConfig:
    """config.json -> CheckpointConfig; anything the conversion would not reproduce exactly is
    refused with the field and its value."""
    path = os.path.join(ckpt, "config.json")
    c = read_json(path, "the model's config.json")

    def refuse(key: str, why: str) -> None:
        raise ConvertError(f"config.json: {key} = {json.dumps(c.get(key))}: {why}")

    archs = c.get("architectures")
    if not isinstance(archs, list) or len(archs) != 1 or archs[0] not in ARCHITECTURES:
        refuse("architectures", f"supported are {', '.join(ARCHITECTURES)} (a LLaMA decoder: RMSNorm, rotary, GQA, SwiGLU)")
    model_type = c.get("model_type")
    if model_type not in ARCHITECTURES.values():
        refuse("model_type", "supported are llama and mistral")
    for key in ("attention_bias", "mlp_bias"):
        if c.get(key):
            refuse(key, "biases in the attention/MLP projections are not supported (tiergate's LLaMA has none)")
    if c.get("sliding_window") is not None:
        refuse("sliding_window", "sliding-window attention is not implemented (every tier attends to the whole context)")
    for key in ("num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size"):
        if c.get(key):
            refuse(key, "mixture-of-experts models are not supported")
    if c.get("quantization_config") is not None:
        refuse("quantization_config", "pre-quantized checkpoints (GPTQ, AWQ, bitsandbytes, ...) are not supported: convert the full-precision one")
    if c.get("hidden_act", "silu") != "silu":
        refuse("hidden_act", "only silu (SwiGLU) is implemented")
    rope = c.get("rope_scaling")
    params = c.get("rope_parameters") if isinstance(c.get("rope_parameters"), dict) else {}
    rope_type = (rope or {}).get("rope_type", (rope or {}).get("type")) if isinstance(rope, dict) else None
    if rope is not None and (not isinstance(rope, dict) or rope_type not in (None, "default")):
        refuse("rope_scaling", "rope scaling is not implemented (only plain rotary embedding)")
    if params.get("rope_type", "default") != "default":
        raise ConvertError(f"config.json: rope_parameters.rope_type = {json.dumps(params.get('rope_type'))}: rope scaling is not implemented")
    if c.get("partial_rotary_factor", 1.0) != 1.0:
        refuse("partial_rotary_factor", "partial rotary embedding is not implemented")

    def need_int(key: str, default=None) -> int:
        v = c.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConvertError(f"config.json: {key} = {json.dumps(v)}: expected a positive integer")
        return v

    dim = need_int("hidden_size")
    n_heads = need_int("num_attention_heads")
    n_kv = need_int("num_key_value_heads", n_heads)
    if dim % n_heads:
        refuse("hidden_size", f"not a multiple of num_attention_heads {n_heads}")
    if n_heads % n_kv:
        refuse("num_key_value_heads", f"num_attention_heads {n_heads} is not a multiple of it")
    head_dim = c.get("head_dim") or dim // n_heads
    if head_dim != dim // n_heads:
        refuse("head_dim", f"differs from hidden_size / num_attention_heads = {dim // n_heads}; tiergate's LLaMA derives it")
    if head_dim % 2:
        refuse("head_dim", "must be even for rotary embedding")
    theta = params.get("rope_theta", c.get("rope_theta", 10000.0))
    eps = c.get("rms_norm_eps", 1e-6)
    for key, v in (("rope_theta", theta), ("rms_norm_eps", eps)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise ConvertError(f"config.json: {key} = {json.dumps(v)}: expected a positive number")
    tie = c.get("tie_word_embeddings", False)
    if not isinstance(tie, bool):
        refuse("tie_word_embeddings", "expected true or false")
    bos = c.get("bos_token_id")
    return CheckpointConfig(
        architecture=archs[0],
        dim=dim,
        n_layers=need_int("num_hidden_layers"),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        ffn_dim=need_int("intermediate_size"),
        norm_eps=float(eps),
        rope_theta=float(theta),
        max_seq_len=need_int("max_position_embeddings"),
        tie_embeddings=tie,
        vocab_size=need_int("vocab_size"),
        bos_token_id=bos if isinstance(bos, int) and not isinstance(bos, bool) else None,
        eos_token_ids=_ids(c.get("eos_token_id")),
        torch_dtype=str(c.get("torch_dtype", c.get("dtype", "unknown"))),
        raw=c,
    )


# --- weights ---------------------------------------------------------------------------------


@dataclass
class TensorInfo:
    name: str
    dtype: str  # F32, F16, BF16
    shape: Tuple[int, ...]
    path: str  # the file holding it
    start: int = 0  # absolute byte offset (safetensors)
    # pytorch_model.bin: the shard is loaded whole on first use (see Weights.read)
    from_bin: bool = False

    @property
    def count(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


def read_safetensors_header(path: str) -> Dict[str, TensorInfo]:
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: missing (a weights file)")
    size = os.path.getsize(path)
    where = os.path.basename(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ConvertError(f"{where}: truncated ({size} bytes): not a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER):
            raise ConvertError(f"{where}: header length {n:,} exceeds the file ({size:,} bytes): truncated or not a safetensors file")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConvertError(f"{where}: header is not valid JSON ({err}): corrupt file") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{where}: header is not a JSON object: corrupt file")
    data_start = 8 + n
    out: Dict[str, TensorInfo] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ConvertError(f"{where}: tensor {name}: malformed header entry {json.dumps(info)[:200]}") from None
        if dtype not in ST_DTYPES:
            raise ConvertError(f"{where}: tensor {name} has dtype {dtype}; supported are F32, F16 and BF16")
        expected = int(np.prod(shape)) * ST_DTYPES[dtype][1] if shape else ST_DTYPES[dtype][1]
        if end - begin != expected or begin < 0:
            raise ConvertError(f"{where}: tensor {name}: data_offsets {begin}..{end} do not hold shape {list(shape)} of {dtype}: corrupt header")
        if data_start + end > size:
            raise ConvertError(
                f"{where}: truncated: tensor {name} ends at byte {data_start + end:,} but the file has {size:,} bytes"
            )
        out[name] = TensorInfo(name, dtype, shape, path, data_start + begin)
    return out


_TORCH_DTYPES = {"torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16"}


def _load_bin(path: str) -> dict:
    import torch  # only for pytorch_model.bin checkpoints

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt zip/pickle data
        raise ConvertError(f"{os.path.basename(path)}: cannot be read by torch.load(weights_only=True): {err}") from None
    if not isinstance(state, dict):
        raise ConvertError(f"{os.path.basename(path)}: not a state dict")
    return state


class Weights:
    """Where every tensor of the checkpoint is; `read(name)` returns it as float32."""

    def __init__(self, kind: str, files: List[str], tensors: Dict[str, TensorInfo]):
        self.kind = kind  # safetensors | safetensors-sharded | pytorch-bin | pytorch-bin-sharded
        self.files = files
        self.tensors = tensors
        self.bytes = sum(os.path.getsize(f) for f in files)
        self._bin_path = ""
        self._bin_state: dict = {}

    def read(self, name: str) -> np.ndarray:
        info = self.tensors[name]
        if info.from_bin:
            return self._read_bin(info)
        n = info.count
        np_dtype, width = ST_DTYPES[info.dtype]
        with open(info.path, "rb") as fh:
            fh.seek(info.start)
            raw = np.fromfile(fh, dtype=np_dtype, count=n)
        if raw.size != n:
            raise ConvertError(f"{os.path.basename(info.path)}: truncated while reading tensor {name}")
        if info.dtype == "BF16":
            # bfloat16 is the upper half of a float32: widening is exact.
            wide = raw.astype(np.uint32)
            del raw
            wide <<= 16
            arr = wide.view(np.float32)
        elif info.dtype == "F16":
            arr = raw.astype(np.float32)
        else:
            arr = raw.astype(np.float32, copy=False)
        return arr.reshape(info.shape)

    def _read_bin(self, info: TensorInfo) -> np.ndarray:
        if self._bin_path != info.path:
            self._bin_state = {}  # drop the previous shard before loading the next
            self._bin_state = _load_bin(info.path)
            self._bin_path = info.path
        t = self._bin_state[info.name]
        return t.float().numpy() if info.dtype == "BF16" else t.numpy().astype(np.float32, copy=False)

    def release(self) -> None:
        self._bin_state = {}
        self._bin_path = ""


def _bin_index(paths: List[str]) -> Dict[str, TensorInfo]:
    out: Dict[str, TensorInfo] = {}
    for p in paths:
        state = _load_bin(p)
        for name, t in state.items():
            dtype = _TORCH_DTYPES.get(str(getattr(t, "dtype", "")))
            if dtype is None:
                raise ConvertError(f"{os.path.basename(p)}: tensor {name} has dtype {getattr(t, 'dtype', type(t).__name__)}; supported are float32, float16 and bfloat16")
            out[name] = TensorInfo(name, dtype, tuple(t.shape), p, from_bin=True)
        del state
    return out


def index_weights(ckpt: str) -> Weights:
    """Finds the weights (safetensors first, then pytorch_model.bin) and validates every header."""
    st_index = os.path.join(ckpt, "model.safetensors.index.json")
    st_single = os.path.join(ckpt, "model.safetensors")
    bin_index = os.path.join(ckpt, "pytorch_model.bin.index.json")
    bin_single = os.path.join(ckpt, "pytorch_model.bin")
    if os.path.exists(st_index) or os.path.exists(bin_index):
        index_path = st_index if os.path.exists(st_index) else bin_index
        index = read_json(index_path, "the shard index")
        wmap = index.get("weight_map")
        if not isinstance(wmap, dict) or not wmap:
            raise ConvertError(f"{os.path.basename(index_path)}: no weight_map")
        shards = sorted(set(wmap.values()))
        paths = [os.path.join(ckpt, s) for s in shards]
        for s, p in zip(shards, paths):
            if not os.path.isfile(p):
                raise ConvertError(f"{os.path.basename(index_path)} names shard {s}, which is missing")
        if index_path == st_index:
            tensors: Dict[str, TensorInfo] = {}
            for p in paths:
                tensors.update(read_safetensors_header(p))
            kind = "safetensors-sharded"
        else:
            tensors = _bin_index(paths)
            kind = "pytorch-bin-sharded"
        for name, shard in wmap.items():
            t = tensors.get(name)
            if t is None or os.path.basename(t.path) != shard:
                raise ConvertError(f"{os.path.basename(index_path)}: tensor {name} is not in shard {shard}: corrupt index or shard")
        return Weights(kind, paths, tensors)
    if os.path.exists(st_single):
        return Weights("safetensors", [st_single], read_safetensors_header(st_single))
    if os.path.exists(bin_single):
        return Weights("pytorch-bin", [bin_single], _bin_index([bin_single]))
    raise ConvertError(
        f"{ckpt}: no weights: expected model.safetensors, model.safetensors.index.json with its shards, or pytorch_model.bin"
    )


# --- tiergate layout ---------------------------------------------------------------------------

# Hugging Face name (per layer) -> GGUF tensor name (tiergate_model.llama's table).
_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
# Buffers some checkpoints carry that the maths recomputes (rotary frequencies).
_IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)


@dataclass
class PlannedTensor:
    gguf_name: str
    source: str  # Hugging Face tensor name
    shape: Tuple[int, ...]  # numpy (row-major) shape, as GGUF stores it reversed
    permute_heads: int = 0  # rotate-half -> adjacent pairs over this many heads (Q, K)


def plan_tensors(cfg: CheckpointConfig, weights: Weights, vocab_rows: int) -> List[PlannedTensor]:
    """The GGUF tensors in file order, each from one checkpoint tensor; refuses unknown, missing
    and mis-shaped tensors and ties it cannot express."""
    hd = cfg.head_dim
    shapes = {
        "input_layernorm.weight": (cfg.dim,),
        "self_attn.q_proj.weight": (cfg.n_heads * hd, cfg.dim),
        "self_attn.k_proj.weight": (cfg.n_kv_heads * hd, cfg.dim),
        "self_attn.v_proj.weight": (cfg.n_kv_heads * hd, cfg.dim),
        "self_attn.o_proj.weight": (cfg.dim, cfg.n_heads * hd),
        "post_attention_layernorm.weight": (cfg.dim,),
        "mlp.gate_proj.weight": (cfg.ffn_dim, cfg.dim),
        "mlp.up_proj.weight": (cfg.ffn_dim, cfg.dim),
        "mlp.down_proj.weight": (cfg.dim, cfg.ffn_dim),
    }
    plan = [PlannedTensor("token_embd.weight", "model.embed_tokens.weight", (cfg.vocab_size, cfg.dim))]
    for i in range(cfg.n_layers):
        for suffix, gguf in _LAYER.items():
            heads = cfg.n_heads if suffix.startswith("self_attn.q_") else cfg.n_kv_heads if suffix.startswith("self_attn.k_") else 0
            plan.append(PlannedTensor(f"blk.{i}.{gguf}", f"model.layers.{i}.{suffix}", shapes[suffix], heads))
    plan.append(PlannedTensor("output_norm.weight", "model.norm.weight", (cfg.dim,)))
    has_head = "lm_head.weight" in weights.tensors
    if cfg.tie_embeddings:
        if has_head and not _same_tensor(weights, "lm_head.weight", "model.embed_tokens.weight"):
            raise ConvertError(
                "config.json: tie_word_embeddings = true, but lm_head.weight differs from model.embed_tokens.weight: "
                "the tied output cannot express it (set tie_word_embeddings to false if the head is separate)"
            )
    else:
        if not has_head:
            raise ConvertError("lm_head.weight: missing from the checkpoint while config.json has tie_word_embeddings = false")
        plan.append(PlannedTensor("output.weight", "lm_head.weight", (cfg.vocab_size, cfg.dim)))

    wanted = {p.source for p in plan} | ({"lm_head.weight"} if cfg.tie_embeddings and has_head else set())
    unknown = sorted(n for n in weights.tensors if n not in wanted and not n.endswith(_IGNORED_SUFFIXES))
    if unknown:
        bias = [n for n in unknown if n.endswith(".bias")]
        why = "biases are not supported" if bias else "not part of the LLaMA architecture tiergate serves"
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConvertError(f"tensor {(bias or unknown)[0]}{more}: {why}")
    for p in plan:
        t = weights.tensors.get(p.source)
        if t is None:
            raise ConvertError(f"tensor {p.source}: missing from the checkpoint ({', '.join(os.path.basename(f) for f in weights.files)})")
        if tuple(t.shape) != p.shape:
            raise ConvertError(f"tensor {p.source}: shape {list(t.shape)}, but config.json implies {list(p.shape)}")
    if vocab_rows != cfg.vocab_size:
        raise ConvertError(f"config.json: vocab_size = {cfg.vocab_size}, but the tokenizer needs {vocab_rows} rows")
    return plan


def _same_tensor(weights: Weights, a: str, b: str) -> bool:
    ta, tb = weights.tensors[a], weights.tensors[b]
    if ta.shape != tb.shape:
        return False
    return bool(np.array_equal(weights.read(a), weights.read(b)))


def rotate_half_to_adjacent(w: np.ndarray, heads: int) -> np.ndarray:
    """Q/K rows of each head from HF's rotate-half order to adjacent pairs (module docstring)."""
    out_dim, in_dim = w.shape
    half = out_dim // heads // 2
    return np.ascontiguousarray(w.reshape(heads, 2, half, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim))


def adjacent_to_rotate_half(w: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of rotate_half_to_adjacent (tests write HF checkpoints from tiergate models)."""
    out_dim, in_dim = w.shape
    half = out_dim // heads // 2
    return np.ascontiguousarray(w.reshape(heads, half, 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim))


def read_planned(weights: Weights, p: PlannedTensor) -> np.ndarray:
    arr = weights.read(p.source)
    return rotate_half_to_adjacent(arr, p.permute_heads) if p.permute_heads else arr


ProgressFn = Callable[[int, int, str], None]
