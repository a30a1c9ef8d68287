"""GGUF F32 -> Q8_0 / Q4_K_M / Q3_K_S / Q2_K with llama.cpp's own quantizer.

Calls `llama_model_quantize` in the shared libraries node-llama-cpp ships
(node_modules/@node-llama-cpp/linux-x64/bins/*/), through ctypes: no hand-written quantizer.
"""

import argparse
import ctypes
import glob
import os

from common import REPO_DIR, log, tiny_path

# enum llama_ftype values (llama.h)
FTYPES = {"q8_0": 7, "q4_k_m": 15, "q3_k_s": 11, "q2_k": 10, "q4_0": 2}


class QuantizeParams(ctypes.Structure):
    # llama_model_quantize_params begins with int32 nthread, enum llama_ftype ftype; the rest
    # (types, flags, pointers) is kept as returned by llama_model_quantize_default_params().
    # The padding makes the buffer larger than the real struct, so receiving it by value is safe.
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int32), ("_rest", ctypes.c_uint8 * 248)]


def load_llama() -> ctypes.CDLL:
    bins = glob.glob(os.path.join(REPO_DIR, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "*"))
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=tiny_path("tiny-f32.gguf"))
    ap.add_argument("--out-dir", default=tiny_path(""))
    ap.add_argument("types", nargs="*", default=["q8_0", "q4_k_m", "q3_k_s", "q2_k"])
    args = ap.parse_args()
    lib = load_llama()
    for t in args.types:
        params = lib.llama_model_quantize_default_params()
        params.ftype = FTYPES[t]
        params.nthread = 1
        out = os.path.join(args.out_dir, f"tiny-{t}.gguf")
        rc = lib.llama_model_quantize(args.src.encode(), out.encode(), ctypes.byref(params))
        if rc != 0:
            raise SystemExit(f"llama_model_quantize({t}) failed with {rc}")
        log(f"quantized {t}: {os.path.getsize(out):,} bytes -> {out}")


if __name__ == "__main__":
    main()
