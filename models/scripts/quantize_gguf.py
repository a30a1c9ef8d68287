"""GGUF F32 -> the family's llama.cpp quantizations (Q8_0, Q4_K_M, Q3_K_S, Q2_K, Q4_0: whichever
its variants list), with llama.cpp's own quantizer.

Calls `llama_model_quantize` in the shared libraries node-llama-cpp ships
(node_modules/@node-llama-cpp/linux-x64/bins/*/), through ctypes: no hand-written quantizer.
Afterwards it reads back every tensor's type: the real mix goes to work/gguf-types.json for the
manifest, and a tensor that llama.cpp stored in a non-K type under a K-quant label (it does so
for rows that are not multiples of 256) is reported, so the label never claims more than is there.
"""

import ctypes
import glob
import os
from collections import Counter

from common import FAMILY, NODE_MODULES, log, variant_path, work_path, write_json

from tiergate_model.family import VARIANTS, reference_variant
from tiergate_model.gguf_reader import tensor_types

# enum llama_ftype values (llama.h)
FTYPES = {"q8_0": 7, "q4_k_m": 15, "q3_k_s": 11, "q2_k": 10, "q4_0": 2}
K_TYPES = {"q2_K", "q3_K", "q4_K", "q5_K", "q6_K"}


class QuantizeParams(ctypes.Structure):
    # llama_model_quantize_params begins with int32 nthread, enum llama_ftype ftype; the rest
    # (types, flags, pointers) is kept as returned by llama_model_quantize_default_params().
    # The padding makes the buffer larger than the real struct, so receiving it by value is safe.
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int32), ("_rest", ctypes.c_uint8 * 248)]


def load_llama() -> ctypes.CDLL:
    bins = glob.glob(os.path.join(NODE_MODULES, "@node-llama-cpp", "linux-x64", "bins", "*"))
    if not bins:
        raise SystemExit("node_modules/@node-llama-cpp/linux-x64 is missing: run scripts/install.sh")
    d = bins[0]
    ctypes.CDLL(os.path.join(d, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    ctypes.CDLL(glob.glob(os.path.join(d, "libggml.*.so"))[0], mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(glob.glob(os.path.join(d, "libllama.*.so"))[0])
    lib.llama_model_quantize_default_params.restype = QuantizeParams
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(QuantizeParams)]
    lib.llama_model_quantize.restype = ctypes.c_uint32
    lib.llama_backend_init()
    return lib


def type_mix(path: str) -> dict:
    counts = Counter(tensor_types(path).values())
    return dict(sorted(counts.items()))


def main() -> None:
    wanted = [v for v in FAMILY["variants"] if VARIANTS[v][1] == "gguf" and VARIANTS[v][2] in FTYPES]
    lib = load_llama()
    ref = reference_variant(FAMILY)  # gguf-f32, or a converted family's F16 reference
    src = variant_path(ref)
    mixes = {ref: type_mix(src)}
    for v in ("gguf-f16",):
        if v in FAMILY["variants"] and v != ref:
            mixes[v] = type_mix(variant_path(v))
    for v in wanted:
        precision = VARIANTS[v][2]
        params = lib.llama_model_quantize_default_params()
        params.ftype = FTYPES[precision]
        params.nthread = 1  # deterministic, and the build shares 2 cores with other work
        out = variant_path(v)
        rc = lib.llama_model_quantize(src.encode(), out.encode(), ctypes.byref(params))
        if rc != 0:
            raise SystemExit(f"llama_model_quantize({precision}) failed with {rc}")
        types = tensor_types(out)
        mixes[v] = dict(sorted(Counter(types.values()).items()))
        log(f"quantized {v}: {os.path.getsize(out):,} bytes, tensor types {mixes[v]}")
        if "_k" in precision:
            fallback = [n for n, t in types.items() if n.endswith(".weight") and t not in K_TYPES and t not in ("f32", "f16")]
            if fallback:
                log(f"WARNING {v}: {len(fallback)} tensors are not K-quants ({', '.join(fallback[:4])}...): "
                    "llama.cpp fell back to other types (rows not multiples of 256); the manifest records the real mix")
    write_json(work_path("gguf-types.json"), mixes)


if __name__ == "__main__":
    main()
