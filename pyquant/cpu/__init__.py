"""CPU kernels (Numba), one module per family; this file is the registry the API dispatches through.

Every kernel is pure arithmetic over contiguous 2-D arrays and runs rows in parallel (``prange``):

- ``quantize(x: float32[rows, n], out: uint8[rows, row_bytes], bad: uint8[rows])`` — ggml's ``quantize_row_<t>_ref``
  (for IQ4_NL and IQ4_XS: ``quantize_<t>`` without weights, the path ``ggml_quantize_chunk`` takes);
- ``quantize_imatrix(x, w: float32[n], out, bad)`` — ggml's ``quantize_<t>(…, quant_weights)``;
- ``dequantize(data: uint8[rows, row_bytes], out: float32[rows, n])`` — ggml's ``dequantize_row_<t>``.

A quantize kernel first scans each row for NaN/Inf (``common.row_bad``, in cache just before the row is
quantized): it sets ``bad[r] = 1`` and leaves that row of ``out`` unwritten, else sets ``bad[r] = 0``.
The caller raises on any bad row (ggml leaves non-finite input undefined) and discards ``out``.

Shapes, dtypes, validation and error messages live in :mod:`pyquant.quant`, not here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numba
from gguf import GGMLQuantizationType

# What ggml does with an importance matrix for a type:
WEIGHTED = "weighted"  # quantize_<t> uses it (a different, weighted search)
IGNORED = "ignored"  # quantize_<t> accepts it and ignores it (Q8_0, F16, BF16, F32)
UNSUPPORTED = "unsupported"  # ggml has no quantize_<t> that takes one (Q8_1, Q8_K: dot-product operands)


@dataclass(frozen=True)
class Kernels:
    quantize: Callable
    dequantize: Callable
    quantize_imatrix: Callable | None = None
    imatrix: str = WEIGHTED


_KERNELS: dict[GGMLQuantizationType, Kernels] = {}
_MODULES = ("floats", "legacy", "kquants", "iquants", "ternary")  # each calls register() for its types when imported
_loaded = False


#: Rows are handed to the threads in chunks of about this many elements (bytes, for dequantize's input), taken
#: dynamically: Numba's default splits a prange statically, one contiguous share per thread, so the call waits
#: for the slowest thread. Measured on a 2-vCPU VM (benchmarks/NOTES.md, session 4): never slower, and 1.26 ->
#: 1.62x (Q5_K), 1.02 -> 1.29x (Q6_K) for two threads over one on 1024 x 4096 dequantize.
CHUNK_ELEMENTS = 1 << 18


def rows_in_chunks(kernel: Callable) -> Callable:
    """``kernel`` (arguments: a 2-D array whose rows are the work items, then the rest) run with dynamic chunks
    of rows where there are at least two chunks; the kernel itself stays reachable as ``.kernel``."""

    def run(a, *rest):
        chunk = max(1, CHUNK_ELEMENTS // max(1, a.shape[1]))
        if a.shape[0] < 2 * chunk:
            return kernel(a, *rest)
        with numba.parallel_chunksize(chunk):
            return kernel(a, *rest)

    run.kernel = kernel
    run.__name__ = getattr(kernel, "__name__", "kernel")
    run.__doc__ = getattr(kernel, "__doc__", None)
    return run


def register(qtype: GGMLQuantizationType, kernels: Kernels) -> None:
    if qtype in _KERNELS:
        raise RuntimeError(f"CPU kernels for {qtype.name} registered twice")
    if (kernels.imatrix == WEIGHTED) != (kernels.quantize_imatrix is not None):
        raise RuntimeError(f"{qtype.name}: a weighted type needs quantize_imatrix, and only it")
    _KERNELS[qtype] = replace(
        kernels, quantize=rows_in_chunks(kernels.quantize), dequantize=rows_in_chunks(kernels.dequantize),
        quantize_imatrix=None if kernels.quantize_imatrix is None else rows_in_chunks(kernels.quantize_imatrix))


def _load() -> None:
    """Import every family once (a family imported directly first must not stop the others loading)."""
    global _loaded
    if not _loaded:
        for m in _MODULES:
            importlib.import_module(f"{__name__}.{m}")
        _loaded = True


def kernels(qtype: GGMLQuantizationType) -> Kernels:
    _load()
    try:
        return _KERNELS[qtype]
    except KeyError:
        raise NotImplementedError(f"no CPU kernels for {qtype.name} yet") from None


def available() -> tuple[GGMLQuantizationType, ...]:
    _load()
    return tuple(_KERNELS)
