"""``linear`` on the CPU: ``x @ W.T`` with ``W`` quantized (torch's ``F.linear`` convention).

The weights are dequantized a slab of rows at a time by the type's Numba kernel (bit-identical to ggml's
``dequantize_row_<t>``) and each slab meets the activations while it is still in the cache, so the float copy of
the whole matrix never exists. Few activation rows (the decode case): a Numba dot product per (weight row,
activation row), rows in parallel; many: NumPy's BLAS. Products and sums are float32 (or float64 on request);
unlike ggml's CPU path the activations are never quantized, so the only errors are the float accumulation's.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType
from numba import njit, prange

from ..formats import layout
from . import kernels
from .common import PJIT

SLAB_ELEMENTS = 1 << 19  # 2 MiB of float32 weights per slab: stays in a core's L2 on most machines
BLAS_MIN_ROWS = 16  # from this many activation rows on, the BLAS's blocking beats the plain dot products


def slab_rows(k: int) -> int:
    """Weight rows per slab for rows of ``k`` elements (at least 1)."""
    return max(1, SLAB_ELEMENTS // max(1, k))


@njit(**PJIT)
def slab_dot(w, x, part):
    """``part[r, c] = w[r] . x[c]``: eight interleaved partial sums (independent chains, no reassociation
    needed), weight rows in parallel."""
    rows, k = w.shape
    n = x.shape[0]
    z = w.dtype.type(0)
    k8 = k - k % 8
    for r in prange(rows):
        for c in range(n):
            s0 = z
            s1 = z
            s2 = z
            s3 = z
            s4 = z
            s5 = z
            s6 = z
            s7 = z
            for j in range(0, k8, 8):
                s0 += w[r, j] * x[c, j]
                s1 += w[r, j + 1] * x[c, j + 1]
                s2 += w[r, j + 2] * x[c, j + 2]
                s3 += w[r, j + 3] * x[c, j + 3]
                s4 += w[r, j + 4] * x[c, j + 4]
                s5 += w[r, j + 5] * x[c, j + 5]
                s6 += w[r, j + 6] * x[c, j + 6]
                s7 += w[r, j + 7] * x[c, j + 7]
            for j in range(k8, k):
                s0 += w[r, j] * x[c, j]
            part[r, c] = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


def linear(x: np.ndarray, data: np.ndarray, qtype: GGMLQuantizationType, k: int,
           out: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
    """``x @ dequantize(data).T``.

    ``x``: float array (n, k); ``data``: uint8 (m, row_bytes) in ggml's layout; returns ``dtype`` (n, m),
    ``dtype`` float32 or float64 being the precision of the products and sums. ``out`` (n, m) of ``dtype`` is
    written in place when given.
    """
    lay = layout(qtype)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"linear computes in float32 or float64, not {dtype}")
    m, n = data.shape[0], x.shape[0]
    if x.ndim != 2 or x.shape[1] != k or data.ndim != 2 or data.shape[1] != k // lay.block_size * lay.type_size:
        raise ValueError(f"linear: x {x.shape} and {qtype.name} weights {data.shape} do not agree on k={k}")
    x = np.ascontiguousarray(x, dtype=dtype)
    if out is None:
        out = np.empty((n, m), dtype=dtype)
    if m == 0 or n == 0:
        return out
    deq = kernels(qtype).dequantize
    rows = min(m, slab_rows(k))
    w32 = np.empty((rows, k), dtype=np.float32)
    w = w32 if dtype == np.float32 else np.empty((rows, k), dtype=dtype)
    part = np.empty((rows, n), dtype=dtype)  # the slab's columns of out, contiguous
    data = np.ascontiguousarray(data)
    for r0 in range(0, m, rows):
        r1 = min(m, r0 + rows)
        deq(data[r0:r1], w32[: r1 - r0])
        if w is not w32:
            w[: r1 - r0] = w32[: r1 - r0]
        if n < BLAS_MIN_ROWS:
            slab_dot(w[: r1 - r0], x, part[: r1 - r0])
        else:
            np.matmul(w[: r1 - r0], x.T, out=part[: r1 - r0])
        out[:, r0:r1] = part[: r1 - r0].T
    return out
