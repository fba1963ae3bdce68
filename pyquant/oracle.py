"""The reference: ggml's own C quantizers, called through ctypes from the ``ggml-python`` package.

Used by the differential tests and the CPU benchmark; pyquant itself never needs it. Install with
``pip install ggml-python`` (it builds ggml from source; the ``dev`` extra pulls it in).

Entry points follow ``include/ggml.h``: ``ggml_quantize_chunk`` for every type it handles (reference
path without an importance matrix, ``quantize_<type>(…, quant_weights)`` with one), the type traits'
``to_float`` for dequantization, and the row functions for the dot-product operand types Q8_1 and Q8_K,
on which ``ggml_quantize_chunk`` aborts.
"""

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np
from gguf import GGMLQuantizationType

from .formats import QTypeLike, layout, qtype_of

_FP = ctypes.POINTER(ctypes.c_float)
_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _FP, ctypes.c_int64)


class _Traits(ctypes.Structure):
    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


@functools.cache
def library() -> ctypes.CDLL:
    """``libggml-base.so`` from the installed ``ggml`` package (ggml-python)."""
    try:
        import ggml  # noqa: F401  (ggml-python)
    except ImportError as e:
        raise ImportError("the ggml oracle needs ggml-python: pip install ggml-python") from e
    path = os.path.join(os.path.dirname(ggml.__file__), "lib", "libggml-base.so")
    lib = ctypes.CDLL(path)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, _FP, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, _FP,
    ]
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    lib.ggml_get_type_traits.restype = ctypes.POINTER(_Traits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    for name in ("quantize_row_q8_1_ref", "quantize_row_q8_K_ref"):
        getattr(lib, name).argtypes = [_FP, ctypes.c_void_p, ctypes.c_int64]
    lib.dequantize_row_q8_K.argtypes = [ctypes.c_void_p, _FP, ctypes.c_int64]
    lib.ggml_type_size.restype = ctypes.c_size_t
    lib.ggml_type_size.argtypes = [ctypes.c_int]
    return lib


def type_size(qtype: QTypeLike) -> int:
    """ggml's own ``ggml_type_size`` (bytes per block)."""
    return int(library().ggml_type_size(int(qtype_of(qtype))))


def _f32(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError("oracle takes a 2-D float32 array (rows, n_per_row)")
    return x


def quantize(x: np.ndarray, qtype: QTypeLike, imatrix: np.ndarray | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
    """ggml's bytes for ``x`` of shape (rows, n): shape (rows, row_bytes), uint8 (into ``out`` if given: a
    C-contiguous uint8 array of that shape, as benchmarks pass to time the C code alone)."""
    t = qtype_of(qtype)
    x = _f32(x)
    nrows, n = x.shape
    lay = layout(t)
    shape = (nrows, n // lay.block_size * lay.type_size)
    if out is None:
        out = np.zeros(shape, dtype=np.uint8)
    elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
    lib = library()
    xp = x.ctypes.data_as(_FP)
    if t in (GGMLQuantizationType.Q8_1, GGMLQuantizationType.Q8_K):
        fn = lib.quantize_row_q8_1_ref if t == GGMLQuantizationType.Q8_1 else lib.quantize_row_q8_K_ref
        fn(xp, out.ctypes.data, x.size)  # rows are contiguous and block-aligned: one call covers them
        return out
    if t == GGMLQuantizationType.F32:
        out[...] = x.view(np.uint8).reshape(nrows, -1)
        return out
    w = None
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, dtype=np.float32)
        w = imatrix.ctypes.data_as(_FP)
    lib.ggml_quantize_init(int(t))
    written = lib.ggml_quantize_chunk(int(t), xp, out.ctypes.data, 0, nrows, n, w)
    assert written == out.size, (written, out.size)
    return out


def dequantize(data: np.ndarray, qtype: QTypeLike, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """ggml's float32 for rows of bytes ``data`` (rows, row_bytes) holding ``n`` elements per row (into ``out``
    if given: a C-contiguous float32 array of shape (rows, n))."""
    t = qtype_of(qtype)
    data = np.ascontiguousarray(data, dtype=np.uint8)
    nrows = data.shape[0]
    if out is None:
        out = np.empty((nrows, n), dtype=np.float32)
    elif out.shape != (nrows, n) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(nrows, n)}")
    if t == GGMLQuantizationType.F32:
        out[...] = data.view(np.float32).reshape(nrows, n)
        return out
    if t == GGMLQuantizationType.Q8_1:
        # ggml has no Q8_1 dequantizer: its definition is y = d * q (d the half at offset 0).
        blocks = data.reshape(-1, 36)
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        q = blocks[:, 4:].view(np.int8).astype(np.float32)
        out[...] = (d * q).astype(np.float32).reshape(nrows, n)
        return out
    lib = library()
    if t == GGMLQuantizationType.Q8_K:
        lib.dequantize_row_q8_K(data.ctypes.data, out.ctypes.data_as(_FP), out.size)
        return out
    fn = _TO_FLOAT(lib.ggml_get_type_traits(int(t)).contents.to_float)
    fn(data.ctypes.data, out.ctypes.data_as(_FP), out.size)
    return out
