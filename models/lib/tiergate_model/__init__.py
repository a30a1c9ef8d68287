"""tiergate reference model family: one LLaMA definition shared by training, export and the sidecar.

The names below load tiergate_model.llama (and torch) on first use, so modules that need no torch
(the family file, GGUF writers, `tiergate convert`'s weight streaming) stay light to import.
"""

__all__ = ["GGUF_TENSOR_NAMES", "Llama", "LlamaConfig", "gguf_name_for", "torch_name_for"]


def __getattr__(name: str):
    if name in __all__:
        from . import llama

        return getattr(llama, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
