"""References and error bounds for ``x @ W.T`` with quantized ``W`` (shared by the CPU, emulator and GPU tests).

Notation: ``w`` the weights exactly as the CPU dequantizes them (float32 values, exact in float64), ``x`` the
activations, ``u = 2**-24`` (float32's unit roundoff), ``k`` the row length.

1. The Q8_1 rounding of one activation block (ggml's quantize_row_q8_1_ref, which the GPU reproduces byte for
   byte). With ``amax`` the block's max |x|: ``d = fl(amax / 127)``, ``id = fl(1 / d)``, ``q = round(fl(x * id))``,
   the block stores ``d16 = fp16(d)`` and the value it stands for is ``x^ = d16 * q``. Then
     ``|x * id - x / d| <= 2u |x / d| <= 254u``       (two roundings, |x / d| <= 127 (1 + u))
     ``|x - d q| <= d (1/2 + 254u)``                   (round to nearest on top)
     ``|d - d16| <= 2**-11 d`` (normal fp16) or ``<= 2**-25`` (subnormal fp16, absolute), and ``|q| <= 127``,
   so ``|x - x^| <= e_b := (amax / 127)(1 + u)(1/2 + 254u + 127 * 2**-11) + 127 * 2**-25``.
   Summed over the row: ``|sum w x - sum w x^| <= sum_k |w_k| e_b(k)``: :func:`q8_1_bound`.

2. The kernel's own arithmetic, given ``x^``. Per 32-element unit it forms exact integers (int8 dot products,
   scale * dot, min * sum(q); every partial sum < 2**24, so also exact as float32) and combines them with at
   most 4 float32 roundings: ``da * (dw * I - m * M)``. The GPU's effective weight is the exact decomposition
   ``d * sc * q - dmin * m`` where the CPU rounds ``d * sc`` and ``dmin * m`` first: at most 3 more roundings of
   terms bounded by ``|w| + 2 |w0|``, ``w0`` the dequantized weights with every quant bit zeroed (the offset
   part: ``-8 d``, ``m``, ``-dmin * m``, ...), since ``|scale * q| = |w - w0| <= |w| + |w0|``. Each lane then
   adds its units in sequence (at most ``k / 32`` terms) and a butterfly adds the lanes (``log2(64) = 6``
   levels). So ``|y - sum w x^| <= (k / 32 + 16) u * S`` with ``S = sum (|w| + 2 |w0|) |x^|``:
   :func:`accumulation_bound`. Float weights (F32/F16/BF16, float32 activations, no quantization): each lane
   sums ``k / W`` products in sequence: ``(k + 16) u * sum |w| |x|`` bounds it with room.

3. ggml's own criterion (test-backend-ops): normalized MSE ``sum (y - ref)**2 / sum ref**2 <= 5e-4`` against
   the float64 product with the unquantized activations, a floor that catches gross errors whatever the data.
"""

from __future__ import annotations

import numpy as np

import pyquant
from pyquant.formats import layout

U = 2.0**-24
QUANT_FIELDS = ("qs", "qh", "ql", "hmask")  # the fields holding quant bits (scales and offsets elsewhere)


def dequant64(q: pyquant.QTensor) -> np.ndarray:
    return q.dequantize().astype(np.float64)


def zero_quant_weights(q: pyquant.QTensor) -> np.ndarray:
    """``w0``: the dequantized weights of ``q`` with every quant bit zeroed (float64)."""
    lay = layout(q.qtype)
    if not lay.is_quantized:
        return np.zeros(q.shape, dtype=np.float64)
    data = q.data.reshape(-1, lay.type_size).copy()
    for f in lay.fields:
        if f.name in QUANT_FIELDS:
            data[:, f.offset:f.offset + f.nbytes] = 0
    return pyquant.dequantize(data.reshape(q.data.shape), q.qtype, q.shape).astype(np.float64)


def q8_1_values(x: np.ndarray) -> np.ndarray:
    """``x^``: the values the Q8_1 bytes of ``x`` (the CPU's, which the GPU reproduces) stand for, float64."""
    return pyquant.quantize(np.ascontiguousarray(x, dtype=np.float32), "Q8_1").dequantize().astype(np.float64)


def q8_1_block_error(x: np.ndarray) -> np.ndarray:
    """``e_b`` of section 1 for every element (the bound of its block), float64, shape of ``x``."""
    x64 = np.abs(x.astype(np.float64))
    amax = x64.reshape(x.shape[0], -1, 32).max(axis=2)
    e = (amax / 127.0) * (1 + U) * (0.5 + 254 * U + 127 * 2.0**-11) + 127 * 2.0**-25
    return np.repeat(e, 32, axis=1)


def q8_1_bound(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Section 1: the most the Q8_1 rounding of ``x`` can move each output, shape (n, m)."""
    return q8_1_block_error(x) @ np.abs(w).T


def accumulation_bound(q: pyquant.QTensor, xhat: np.ndarray) -> np.ndarray:
    """Section 2: the most the kernel's float32 arithmetic can add, given the activations it multiplies."""
    w = dequant64(q)
    k = q.shape[-1]
    if layout(q.qtype).is_quantized:
        s = np.abs(xhat) @ (np.abs(w) + 2 * np.abs(zero_quant_weights(q))).T
        return (k / 32 + 16) * U * s
    return (k + 16) * U * (np.abs(xhat) @ np.abs(w).T)


def nmse(y: np.ndarray, ref: np.ndarray) -> float:
    den = float(np.sum(ref * ref))
    return float(np.sum((y - ref) ** 2)) / den if den else float(np.sum(y * y))


def check_quantized_path(y: np.ndarray, q: pyquant.QTensor, x: np.ndarray, ggml_floor: bool = False) -> None:
    """Checks 1 and 2 for a result ``y`` (n, m) of the Q8_1 path (or the float mat-vec for float weights), and
    check 3 when ``ggml_floor`` (data drawn as test-backend-ops draws it: uniform in [-1, 1]; activations with
    outlier features make Q8_1's own rounding exceed ggml's threshold, and bounds 1-2 cover them)."""
    assert np.isfinite(y).all(), "non-finite output (an output left unwritten reads as the NaN poison)"
    w = dequant64(q)
    quantized = layout(q.qtype).is_quantized
    xhat = q8_1_values(x) if quantized else x.astype(np.float64)
    acc = accumulation_bound(q, xhat)
    ref_hat = xhat @ w.T
    err_hat = np.abs(y - ref_hat)
    worst = np.unravel_index(np.argmax(err_hat - acc), err_hat.shape)
    assert (err_hat <= acc).all(), (
        f"{q.qtype.name}: |y - x^ W^T| = {err_hat[worst]:.3e} > accumulation bound {acc[worst]:.3e} at {worst}")
    ref = x.astype(np.float64) @ w.T
    bound = (q8_1_bound(w, x) if quantized else 0.0) + acc
    assert (np.abs(y - ref) <= bound).all(), f"{q.qtype.name}: error beyond the Q8_1 rounding bound"
    if ggml_floor:
        assert nmse(y, ref) <= 5e-4, f"{q.qtype.name}: NMSE {nmse(y, ref):.2e} > 5e-4"
