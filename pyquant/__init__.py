"""pyquant: GGML/GGUF quantized tensors from Python, bit-exact with ggml, on CPU and GPU.

Formats and algorithms follow ggml (MIT), https://github.com/ggml-org/ggml.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType

from . import analysis
from .formats import SUPPORTED, QTypeLike, bits_per_weight, layout, qtype_of
from .linear import linear
from .quant import QuantizationError, dequantize, quantize_array
from .tensor import QTensor

__version__ = "0.1.0"
__all__ = [
    "GGMLQuantizationType", "QTensor", "analysis", "QuantizationError", "SUPPORTED", "bits_per_weight", "dequantize",
    "layout", "linear", "qtype_of", "quantize",
    "load_gguf", "save_gguf", "open_gguf", "quantize_model", "dequantize_model", "load_imatrix",
]


def quantize(x: np.ndarray, qtype: QTypeLike, imatrix: np.ndarray | None = None) -> QTensor:
    """Quantize ``x`` (float array of shape ``(..., n)``) to ``qtype`` exactly as ggml does.

    ``imatrix``: ``None`` (ggml's ``quantize_row_<t>_ref``) or a non-negative float array of shape
    ``(n,)``: the importance of each column (ggml's ``quantize_<t>(…, quant_weights)``).
    """
    data, t, shape = quantize_array(x, qtype, imatrix)
    return QTensor._of_checked(data, t, shape)


_LAZY = {
    "load_gguf": "gguf_io", "save_gguf": "gguf_io", "open_gguf": "gguf_io",
    "quantize_model": "recipes", "dequantize_model": "recipes", "load_imatrix": "imatrix",
}


def __getattr__(name: str):
    """GGUF and whole-model functions, imported on first use (``import pyquant`` stays light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'pyquant' has no attribute {name!r}")
