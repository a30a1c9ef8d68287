"""tiergate reference model family: one LLaMA definition shared by training, export and the sidecar."""

from .llama import GGUF_TENSOR_NAMES, Llama, LlamaConfig, gguf_name_for, torch_name_for

__all__ = ["GGUF_TENSOR_NAMES", "Llama", "LlamaConfig", "gguf_name_for", "torch_name_for"]
