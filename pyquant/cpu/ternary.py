"""TQ1_0 and TQ2_0: ggml's ternary types (``ggml-quants.c``), bit-exact with ggml.

Both store every element of a 256-element super-block as a trit ``xi`` in {0, 1, 2} for the value
``(xi - 1) * d``, with ``d`` = the block's largest magnitude as fp16 (offsets read from
:data:`pyquant.formats.LAYOUTS`):

- TQ2_0 (66 B): qs[64], d. Byte ``qs[32 c + m]`` holds element ``128 c + 32 l + m`` in bits ``2l, 2l + 1``.
- TQ1_0 (54 B): qs[48], qh[4], d, five trits a byte as a base-3 number scaled to a byte: the trits
  ``t0 t1 t2 t3 t4`` (``t0`` most significant) become ``ceil((t0 3^4 + ... + t4) * 256 / 243)``, and trit ``n``
  comes back as ``((uint8_t)(byte * 3^n) * 3) >> 8``. Bytes ``qs[0..31]`` hold elements ``m + 32 n`` (n = 0..4),
  ``qs[32..47]`` elements ``160 + m + 16 n``, and ``qh[j]`` the four trits of elements ``240 + j + 4 n`` (n =
  0..3) followed by a zero trit.

The quantizer is ``quantize_row_tq<k>_0_ref``: ``id = d ? 1/d : 0`` and ``xi = lroundf(x * id) + 1`` in float32
(lroundf rounds half away from zero); ``quantize_tq<k>_0`` ignores an importance matrix.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from ..formats import QK_K, layout
from . import IGNORED, Kernels, register
from .common import JIT, PJIT, bits_f32, f32, f32_bits, get_half, offsets, put_half, row_bad

_ABS = np.uint32(0x7FFFFFFF)


T1_B, T1_QS, T1_QH, T1_D = offsets(T.TQ1_0, "qs", "qh", "d")
T2_B, T2_QS, T2_D = offsets(T.TQ2_0, "qs", "d")
T1_NQS = layout(T.TQ1_0).field("qs").count  # 48: 32 bytes of 5 x 32 elements, then 16 of 5 x 16
T1_NQH = layout(T.TQ1_0).field("qh").count  # 4
POW3 = np.array([1, 3, 9, 27, 81], np.uint8)  # 3^n for trit n of a byte


@njit(**JIT, inline="always")
def _block_scale(x, r, base):
    """``d = amax`` over the super-block (the largest magnitude, compared as bit patterns: finite input) and
    ``id = d ? 1/d : 0``, both float32."""
    m = np.uint32(0)
    for j in range(QK_K):
        a = f32_bits(x[r, base + j]) & _ABS
        m = a if a > m else m
    d = bits_f32(m)
    return d, (f32(1) / d if d != f32(0) else f32(0))


@njit(**JIT, inline="always")
def _trit(v, id):
    """``(int)(lroundf(v * id) + 1)``: half away from zero (|v * id| <= 1 when id is finite; exact in float64).

    A block whose amax is under 2^-128 has ``id = 1/amax = inf``, so ``v * id`` is +-inf, or NaN for zeros; x86-64's
    lroundf returns LONG_MIN for those (cvttss2si's "integer indefinite"), whose ``+ 1`` truncated to int is 1.
    """
    t = f32(v * id)
    if not abs(t) < f32(2.0**31):
        return np.int32(1)
    a = np.floor(np.float64(abs(t)) + 0.5)
    return np.int32(a if t >= f32(0) else -a) + np.int32(1)


@njit(**JIT, inline="always")
def _base3(x, r, e, stride, count, id):
    """The trits of ``x[r, e]``, ``x[r, e + stride]``, ... (``count`` of them) as a base-3 number, the first most
    significant (ggml's ``q *= 3; q += xi``)."""
    acc = np.uint32(0)
    for n in range(count):
        acc = acc * np.uint32(3) + np.uint32(_trit(x[r, e + stride * n], id))
    return acc


@njit(**JIT, inline="always")
def _pack5(acc):
    """ceil(acc * 256 / 243) of a base-3 number of five trits, as ggml's uint16 arithmetic stores it."""
    return np.uint8((np.uint32(acc) * np.uint32(256) + np.uint32(242)) // np.uint32(243))


@njit(**JIT, inline="always")
def _pack_runs(x, r, out, dst, e, nbytes, width, id):
    """``nbytes`` qs bytes from ``dst`` on, ``width`` at a time: byte ``m`` of a run holds the trits of elements
    ``e + m + width * n`` (n = 0..4), the next run starts ``5 * width`` elements later. Returns the element after."""
    for j in range(0, nbytes, width):
        for m in range(width):
            out[r, dst + j + m] = _pack5(_base3(x, r, e + m, width, 5, id))
        e += 5 * width
    return e


@njit(**PJIT)
def quantize_rows_tq1_0(x, out, bad):
    """ggml's quantize_row_tq1_0_ref (quantize_tq1_0 ignores quant_weights), row by row."""
    nb = x.shape[1] // QK_K
    n32 = T1_NQS - T1_NQS % 32
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        for ib in range(nb):
            base = ib * QK_K
            p = ib * T1_B
            d, id = _block_scale(x, r, base)
            put_half(out, r, p + T1_D, d)
            e = _pack_runs(x, r, out, p + T1_QS, base, n32, 32, id)
            e = _pack_runs(x, r, out, p + T1_QS + n32, e, T1_NQS - n32, 16, id)
            for j in range(T1_NQH):  # four trits, then the first one moved to the top: a fifth trit of 0
                out[r, p + T1_QH + j] = _pack5(_base3(x, r, e + j, T1_NQH, 4, id) * np.uint32(3))


@njit(**PJIT)
def quantize_rows_tq2_0(x, out, bad):
    """ggml's quantize_row_tq2_0_ref (quantize_tq2_0 ignores quant_weights), row by row."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        for ib in range(nb):
            base = ib * QK_K
            p = ib * T2_B
            d, id = _block_scale(x, r, base)
            put_half(out, r, p + T2_D, d)
            for j in range(0, QK_K // 4, 32):
                e = base + 4 * j
                for m in range(32):
                    q = np.uint32(0)
                    for n in range(4):
                        q |= np.uint32(_trit(x[r, e + m + 32 * n], id) & np.int32(3)) << np.uint32(2 * n)
                    out[r, p + T2_QS + j + m] = np.uint8(q)


@njit(**JIT, inline="always")
def _untrit_run(data, r, src, out, dst, count, n, d):
    """Trit ``n`` of the TQ1_0 bytes ``data[r, src:src + count]``, ``((uint8_t)(b * 3^n) * 3) >> 8``, as
    ``(float)(xi - 1) * d`` into ``out[r, dst:dst + count]``.

    One thread runs at 0.5-0.6x ggml's dequantize_row_tq1_0 here (benchmarks/NOTES.md, session 7): Numba widens
    these byte products to 64-bit lanes, where GCC multiplies 16 bytes at a time; float forms that vectorize
    (floor-based, exact) were slower still on 32- and 16-element runs.
    """
    p3 = np.uint32(POW3[n])
    for m in range(count):
        q = (np.uint32(data[r, src + m]) * p3) & np.uint32(0xFF)
        out[r, dst + m] = f32(np.int32((q * np.uint32(3)) >> np.uint32(8)) - np.int32(1)) * d


@njit(**JIT, inline="always")
def _untrit_runs(data, r, src, out, e, nbytes, width, d):
    """The inverse of :func:`_pack_runs`: ``nbytes`` qs bytes from ``src`` on, ``width`` at a time, five trits
    each, into ``out[r, e:]``. Returns the element after."""
    for j in range(0, nbytes, width):
        for n in range(5):
            _untrit_run(data, r, src + j, out, e, width, n, d)
            e += width
    return e


@njit(**JIT, inline="always")
def _runs(n, nb):
    """32 (elements a run of qs bytes covers), computed so that LLVM cannot see it: a constant-trip inner loop is
    fully unrolled before the loop vectorizer sees it (pyquant/cpu/legacy.py's module docstring)."""
    return (n // nb) // 8 if nb > 0 else 0


@njit(**PJIT)
def dequantize_rows_tq1_0(data, out):
    """ggml's dequantize_row_tq1_0: y = (float)(xi - 1) * d."""
    nb = out.shape[1] // QK_K
    n32 = T1_NQS - T1_NQS % 32
    for r in prange(out.shape[0]):
        for ib in range(nb):
            p = ib * T1_B
            d = get_half(data, r, p + T1_D)
            e = _untrit_runs(data, r, p + T1_QS, out, ib * QK_K, n32, 32, d)
            e = _untrit_runs(data, r, p + T1_QS + n32, out, e, T1_NQS - n32, 16, d)
            for n in range(4):
                _untrit_run(data, r, p + T1_QH, out, e, T1_NQH, n, d)
                e += T1_NQH


@njit(**PJIT)
def dequantize_rows_tq2_0(data, out):
    """ggml's dequantize_row_tq2_0: y = (float)(q - 1) * d, q = 2 bits of a qs byte."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        c32 = _runs(out.shape[1], nb)
        for ib in range(nb):
            p = ib * T2_B
            d = get_half(data, r, p + T2_D)
            e = ib * QK_K
            for j in range(0, QK_K // 4, 32):
                for sh in range(4):
                    s2 = np.int32(2 * sh)
                    for m in range(c32):
                        q = (np.int32(data[r, p + T2_QS + j + m]) >> s2) & np.int32(3)
                        out[r, e + m] = f32(q - np.int32(1)) * d
                    e += 32


register(T.TQ1_0, Kernels(quantize_rows_tq1_0, dequantize_rows_tq1_0, imatrix=IGNORED))
register(T.TQ2_0, Kernels(quantize_rows_tq2_0, dequantize_rows_tq2_0, imatrix=IGNORED))
