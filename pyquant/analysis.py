"""Error analysis of quantized tensors: error metrics, per-block errors, type comparisons, block fields.

Everything here works on host arrays and the public API (:func:`pyquant.quantize`, :class:`QTensor`,
:data:`pyquant.formats.LAYOUTS`); the notebooks in ``notebooks/`` are built on it.

Conventions: ``x`` is the original float array, ``y`` its reconstruction (same shape), errors are ``y - x``.
Sums are accumulated in float64 so that metrics of million-element tensors are not limited by float32
rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .formats import LAYOUTS, QTypeLike, bits_per_weight, layout, qtype_of
from .tensor import QTensor

__all__ = [
    "ErrorReport", "block_fields", "block_rmse", "compare_types", "error_report", "imatrix_from_activations",
    "max_abs", "pareto_front", "rmse", "snr_db", "weighted_rmse",
]


def _pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("error metrics need at least one element")
    return x, y


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    """Root-mean-square error ``sqrt(mean((y - x)**2))``, in the units of ``x``."""
    x, y = _pair(x, y)
    return float(np.sqrt(np.mean((y - x) ** 2)))


def max_abs(x: np.ndarray, y: np.ndarray) -> float:
    """Largest absolute error ``max |y - x|``, in the units of ``x``."""
    x, y = _pair(x, y)
    return float(np.max(np.abs(y - x)))


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    """Signal-to-noise ratio ``10 log10(sum x^2 / sum (y - x)^2)`` in dB; ``inf`` when ``y == x``."""
    x, y = _pair(x, y)
    noise = float(np.sum((y - x) ** 2))
    signal = float(np.sum(x**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))


def weighted_rmse(x: np.ndarray, y: np.ndarray, importance: np.ndarray) -> float:
    """RMSE with per-column weights: ``sqrt(sum_ij w_j (y-x)_ij^2 / (rows * sum_j w_j))``.

    With ``importance`` the mean squared activation of each input column (an imatrix), this is the RMS error
    of the layer's output per unit activation when the activations are uncorrelated; with equal weights it is
    :func:`rmse`.
    """
    x, y = _pair(x, y)
    w = np.asarray(importance, dtype=np.float64)
    if w.shape != (x.shape[-1],):
        raise ValueError(f"importance must have shape ({x.shape[-1]},), got {w.shape}")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() == 0:
        raise ValueError("importance must be finite, non-negative and not all zero")
    e2 = ((y - x) ** 2).reshape(-1, x.shape[-1])
    return float(np.sqrt((e2 @ w).sum() / (e2.shape[0] * w.sum())))


def block_rmse(x: np.ndarray, y: np.ndarray, block_size: int) -> np.ndarray:
    """RMSE of each run of ``block_size`` consecutive elements along the last axis: shape ``(..., n // block_size)``."""
    x, y = _pair(x, y)
    n = x.shape[-1]
    if block_size <= 0 or n % block_size:
        raise ValueError(f"row length {n} is not a multiple of block_size {block_size}")
    e2 = ((y - x) ** 2).reshape(x.shape[:-1] + (n // block_size, block_size))
    return np.sqrt(e2.mean(axis=-1))


def imatrix_from_activations(acts: np.ndarray) -> np.ndarray:
    """An importance matrix from activations ``(tokens, n)``: the mean of each column's square, float32 ``(n,)``.

    This is what llama.cpp's ``llama-imatrix`` accumulates for a weight (sum of squared inputs divided by the
    number of tokens).
    """
    a = np.asarray(acts, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"activations must have shape (tokens, n) with tokens > 0, got {a.shape}")
    return np.mean(a**2, axis=0).astype(np.float32)


@dataclass(frozen=True)
class ErrorReport:
    """Reconstruction error of one tensor quantized to one type (errors in the units of the input)."""

    qtype: str
    bits_per_weight: float
    rmse: float
    rel_rmse: float  # rmse / rms(x)
    max_abs: float
    snr_db: float
    weighted_rmse: float | None = None  # with the importance the report was asked for, if any

    def as_dict(self) -> dict:
        return asdict(self)


def error_report(x: np.ndarray, qtype: QTypeLike, imatrix: np.ndarray | None = None,
                 importance: np.ndarray | None = None) -> ErrorReport:
    """Quantize ``x`` to ``qtype`` (with ``imatrix`` if given), dequantize, and measure the error.

    ``importance`` (default: ``imatrix``) weights the columns for :attr:`ErrorReport.weighted_rmse`; pass it
    separately to score a quantization made without an imatrix by the same yardstick.
    """
    from . import quantize  # the package's public entry point (imported here: pyquant imports this module)

    t = qtype_of(qtype)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    y = quantize(x32, t, imatrix=imatrix).dequantize()
    imp = imatrix if importance is None else importance
    ms = float(np.mean(x32.astype(np.float64) ** 2))
    r = rmse(x32, y)
    return ErrorReport(
        qtype=t.name,
        bits_per_weight=float(bits_per_weight(t)),
        rmse=r,
        rel_rmse=r / np.sqrt(ms) if ms > 0 else float("inf"),
        max_abs=max_abs(x32, y),
        snr_db=snr_db(x32, y),
        weighted_rmse=None if imp is None else weighted_rmse(x32, y, imp),
    )


def compare_types(x: np.ndarray, qtypes: Iterable[QTypeLike], imatrix: np.ndarray | None = None,
                  importance: np.ndarray | None = None) -> list[ErrorReport]:
    """:func:`error_report` for each type in ``qtypes``, in order."""
    return [error_report(x, t, imatrix=imatrix, importance=importance) for t in qtypes]


def pareto_front(bits: Sequence[float], errors: Sequence[float]) -> np.ndarray:
    """Indices of the points no other point beats: none has ``bits <=`` and ``error <=`` with one strict.

    Returned in order of increasing bits (and so decreasing error).
    """
    b = np.asarray(bits, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if b.shape != e.shape or b.ndim != 1:
        raise ValueError(f"bits and errors must be 1-D of the same length, got {b.shape} and {e.shape}")
    order = np.lexsort((e, b))  # by bits, ties by error
    front: list[int] = []
    best = np.inf
    for i in order:
        if e[i] < best:
            if front and b[front[-1]] == b[i]:  # same bits, and the earlier one had a lower error
                continue
            front.append(int(i))
            best = e[i]
    return np.asarray(front, dtype=np.int64)


_NP_CTYPE = {"half": np.float16, "float": np.float32, "uint8_t": np.uint8, "int8_t": np.int8, "int16_t": np.int16}


def block_fields(q: QTensor) -> dict[str, np.ndarray]:
    """The members of every block of ``q`` as arrays of shape ``(n_blocks, count)``, read at the offsets of
    :data:`pyquant.formats.LAYOUTS`.

    ``half`` members (``d``, ``dmin``, ``m``, ``s``) come back as float32, ``bf16`` as float32, integer members
    in their C type, still packed (Q4_K's 6-bit ``scales``, ``qs`` nibbles and ``qh`` high bits are bytes as
    stored). Blocks are numbered row by row.
    """
    lay = layout(q.qtype)
    raw = np.ascontiguousarray(q.data).reshape(-1, lay.type_size)
    out: dict[str, np.ndarray] = {}
    for f in LAYOUTS[q.qtype].fields:
        chunk = np.ascontiguousarray(raw[:, f.offset:f.offset + f.nbytes])
        if f.ctype == "bf16":
            v = (chunk.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            v = chunk.view(np.dtype(_NP_CTYPE[f.ctype]).newbyteorder("<"))
            if f.ctype == "half":
                v = v.astype(np.float32)
        out[f.name] = v.reshape(raw.shape[0], f.count)
    return out
