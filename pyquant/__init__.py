"""pyquant: GGML/GGUF quantized tensors from Python, bit-exact with ggml, on CPU and GPU.

Formats and algorithms follow ggml (MIT), https://github.com/ggml-org/ggml.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from gguf import GGMLQuantizationType

from . import analysis
from .formats import QTypeLike, SUPPORTED, bits_per_weight, layout, qtype_of
from .linear import linear
from .quant import QuantizationError, dequantize, quantize_array
from .tensor import QTensor

__version__ = "0.1.0"
__all__ = [
    "GGMLQuantizationType", "QTensor", "analysis", "QuantizationError", "SUPPORTED", "bits_per_weight", "dequantize",
    "layout", "linear", "qtype_of", "quantize",
]


def quantize(x: np.ndarray, qtype: QTypeLike, imatrix: Optional[np.ndarray] = None) -> QTensor:
    """Quantize ``x`` (float array of shape ``(..., n)``) to ``qtype`` exactly as ggml does.

    ``imatrix``: ``None`` (ggml's ``quantize_row_<t>_ref``) or a non-negative float array of shape
    ``(n,)``: the importance of each column (ggml's ``quantize_<t>(…, quant_weights)``).
    """
    data, t, shape = quantize_array(x, qtype, imatrix)
    return QTensor(data, t, shape)
