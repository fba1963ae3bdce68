"""F32, F16 and BF16 rows: ggml's ``ggml_fp32_to_fp16_row`` / ``ggml_fp32_to_bf16_row_ref`` and back."""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from . import IGNORED, Kernels, register
from .common import PJIT, bits_f32, f32_bits, fp16_to_fp32, fp32_to_bf16, fp32_to_fp16, nonfinite, row_bad


@njit(**PJIT)
def quantize_rows_f32(x, out, bad):
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        for i in range(x.shape[1]):
            u = f32_bits(x[r, i])
            for b in range(4):
                out[r, 4 * i + b] = np.uint8((u >> np.uint32(8 * b)) & np.uint32(0xFF))


@njit(**PJIT)
def dequantize_rows_f32(data, out):
    for r in prange(out.shape[0]):
        row = data[r]
        for i in range(out.shape[1]):
            u = (
                np.uint32(row[4 * i])
                | (np.uint32(row[4 * i + 1]) << np.uint32(8))
                | (np.uint32(row[4 * i + 2]) << np.uint32(16))
                | (np.uint32(row[4 * i + 3]) << np.uint32(24))
            )
            out[r, i] = bits_f32(u)


@njit(**PJIT)
def quantize_rows_f16(x, out, bad):
    for r in prange(x.shape[0]):
        m = np.uint32(0)
        for i in range(x.shape[1]):
            m |= np.uint32(nonfinite(x[r, i]))  # checked in the same pass (see quantize_rows_bf16)
            h = fp32_to_fp16(x[r, i])
            out[r, 2 * i] = np.uint8(h & 0xFF)
            out[r, 2 * i + 1] = np.uint8(h >> 8)
        bad[r] = np.uint8(m)


@njit(**PJIT)
def dequantize_rows_f16(data, out):
    for r in prange(out.shape[0]):
        for i in range(out.shape[1]):
            out[r, i] = fp16_to_fp32(np.uint16(data[r, 2 * i]) | (np.uint16(data[r, 2 * i + 1]) << np.uint16(8)))


@njit(**PJIT)
def quantize_rows_bf16(x, out, bad):
    """The conversion is memory-bound, so the NaN/Inf check rides in the same pass (a pass of its own,
    ``row_bad``, cost Q4_1's quantizer a quarter of its time); a bad row's bytes are written, but
    :mod:`pyquant.quant` raises and never returns them."""
    for r in prange(x.shape[0]):
        m = np.uint32(0)
        for i in range(x.shape[1]):
            m |= np.uint32(nonfinite(x[r, i]))
            h = fp32_to_bf16(x[r, i])
            out[r, 2 * i] = np.uint8(h & 0xFF)
            out[r, 2 * i + 1] = np.uint8(h >> 8)
        bad[r] = np.uint8(m)


@njit(**PJIT)
def dequantize_rows_bf16(data, out):
    """The bytes read as uint16 (little-endian hosts, as the format) and widened into the float bits, one vector
    shift per 8 values; the views are taken once for the whole array (a view per row costs ~15 % on 384-wide
    rows)."""
    h = data.view(np.uint16)
    y = out.view(np.uint32)
    for r in prange(y.shape[0]):
        for i in range(y.shape[1]):
            y[r, i] = np.uint32(h[r, i]) << np.uint32(16)


register(T.F32, Kernels(quantize_rows_f32, dequantize_rows_f32, imatrix=IGNORED))
register(T.F16, Kernels(quantize_rows_f16, dequantize_rows_f16, imatrix=IGNORED))
register(T.BF16, Kernels(quantize_rows_bf16, dequantize_rows_bf16, imatrix=IGNORED))
