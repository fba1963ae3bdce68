"""``quantize`` and ``dequantize``: validation, shapes and dispatch, written once for every type."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from gguf import GGMLQuantizationType

from . import cpu
from .formats import QTypeLike, layout, qtype_of

ArrayLike = np.ndarray | Sequence[float]


class QuantizationError(ValueError):
    """Input that pyquant refuses to quantize or dequantize; the message names expected and got."""


def _rows_2d(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)


def check_input(x: ArrayLike, qtype: GGMLQuantizationType) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 array of at least one dimension, or raise.

    Finiteness is not checked here: the kernels check each row as they quantize it (``bad``), and
    :func:`quantize_array` raises through :func:`_raise_nonfinite`.
    """
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise QuantizationError(
            f"quantize expects a floating-point array (float16, float32 or float64), got dtype {arr.dtype}"
        )
    if arr.ndim == 0:
        raise QuantizationError("quantize expects an array of shape (..., n), got a scalar")
    lay = layout(qtype)
    n = arr.shape[-1]
    if n == 0 or n % lay.block_size:
        raise QuantizationError(
            f"row length {n} is not a multiple of {qtype.name}'s block size {lay.block_size}"
            f" (array shape {arr.shape})"
        )
    if arr.dtype.itemsize <= 4:  # float16/float32: every value fits (errstate costs a small call 1-2 us)
        return np.ascontiguousarray(arr, dtype=np.float32)
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: reported below
        return np.ascontiguousarray(arr, dtype=np.float32)


def _raise_nonfinite(arr: np.ndarray, x32: np.ndarray, bad: np.ndarray) -> None:
    """Raise for the first row the kernel flagged; the column is found with numpy on that one row."""
    rows = _rows_2d(x32)
    b = int(np.argmax(bad))
    where = np.unravel_index(b, x32.shape[:-1]) if x32.ndim > 1 else ()
    col = int(np.argmin(np.isfinite(rows[b])))
    val = rows[b, col]
    origin = " after conversion to float32" if arr.dtype.itemsize > 4 and np.isfinite(_rows_2d(arr)[b, col]) else ""
    raise QuantizationError(
        f"input has a non-finite value{origin} ({val}) in row {tuple(int(i) for i in where) or 0}"
        f" at column {col}; ggml leaves NaN/Inf undefined, so pyquant refuses them"
    )


def check_imatrix(imatrix: ArrayLike, n: int) -> np.ndarray:
    w = np.asarray(imatrix)
    if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
        raise QuantizationError(f"imatrix must be a float array, got dtype {w.dtype}")
    if w.shape != (n,):
        raise QuantizationError(f"imatrix must have shape ({n},) to match the row length, got {w.shape}")
    w = np.ascontiguousarray(w, dtype=np.float32)
    if not np.isfinite(w).all():
        i = int(np.argmin(np.isfinite(w)))
        raise QuantizationError(f"imatrix has a non-finite value ({w[i]}) at index {i}")
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise QuantizationError(f"imatrix must be non-negative, got {w[i]} at index {i}")
    return w


def quantize_array(x: ArrayLike, qtype: QTypeLike, imatrix: ArrayLike | None = None) -> tuple[np.ndarray, GGMLQuantizationType, tuple[int, ...]]:
    """Quantize to raw bytes: returns ``(data, qtype, shape)`` with data of shape (..., row_bytes)."""
    t = qtype_of(qtype)
    x32 = check_input(x, t)
    n = x32.shape[-1]
    w = None if imatrix is None else check_imatrix(imatrix, n)
    k = cpu.kernels(t)
    if w is not None:
        if k.imatrix == cpu.UNSUPPORTED:
            raise QuantizationError(
                f"{t.name} has no importance-weighted quantizer in ggml (it is a dot-product operand type); "
                "quantize it without an imatrix"
            )
    lay = layout(t)
    rows = _rows_2d(x32)
    out = np.empty((rows.shape[0], n // lay.block_size * lay.type_size), dtype=np.uint8)
    if rows.shape[0]:
        bad = np.zeros(rows.shape[0], dtype=np.uint8)
        if w is not None and k.imatrix == cpu.WEIGHTED:
            k.quantize_imatrix(rows, w, out, bad)
        else:
            k.quantize(rows, out, bad)
        if np.count_nonzero(bad):  # (cheaper than bad.any() on the small tensors where it shows)
            _raise_nonfinite(np.asarray(x), x32, bad)
    return out.reshape(x32.shape[:-1] + (out.shape[1],)), t, tuple(x32.shape)


def dequantize(data: np.ndarray | bytes | bytearray | memoryview, qtype: QTypeLike,
               shape: Sequence[int] | None = None) -> np.ndarray:
    """Dequantize raw bytes in gguf-py's layout to float32.

    ``data``: uint8 array of shape (..., row_bytes), or any bytes-like object when ``shape`` is given.
    ``shape``: the logical shape (..., n); defaults to the data's shape with the last axis in elements.
    Output: float32 of the logical shape, bit-identical to ggml's ``dequantize_row_<type>``.
    """
    t = qtype_of(qtype)
    lay = layout(t)
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = np.frombuffer(data, dtype=np.uint8)
    else:
        raw = np.asarray(data)
        if raw.dtype != np.uint8:
            raise QuantizationError(f"quantized data must be a uint8 array, got dtype {raw.dtype}")
    if shape is None:
        if raw.ndim == 0 or raw.shape[-1] % lay.type_size:
            raise QuantizationError(
                f"last axis of {t.name} data must be a multiple of its block size in bytes ({lay.type_size}),"
                f" got shape {raw.shape}; pass shape= for flat data"
            )
        shape = raw.shape[:-1] + (raw.shape[-1] // lay.type_size * lay.block_size,)
    shape = tuple(int(s) for s in shape)
    if not shape or shape[-1] <= 0 or shape[-1] % lay.block_size or any(s < 0 for s in shape):
        raise QuantizationError(
            f"shape {shape} is not valid for {t.name}: the last axis must be a positive multiple of"
            f" the block size {lay.block_size}"
        )
    n = shape[-1]
    nrows = math.prod(shape[:-1])
    rb = n // lay.block_size * lay.type_size
    if raw.size != nrows * rb:
        raise QuantizationError(
            f"{t.name} data of shape {shape} needs {nrows * rb} bytes ({nrows} rows x {rb}), got {raw.size}"
        )
    rows = np.ascontiguousarray(raw).reshape(nrows, rb)
    out = np.empty((nrows, n), dtype=np.float32)
    if nrows:
        cpu.kernels(t).dequantize(rows, out)
    return out.reshape(shape)
