"""Launch specs: which kernel, over what grid, with which argument types. Written once for both vendors.

The kernels live in ``hsaco/`` and are compiled ahead of time (``python hsaco/build.py``). The constants
below are the other half of their contract: ``hsaco/include/pq_launch.h`` is generated from them, and a test
checks the committed header against this module.

Dequantize kernels (``hsaco/kernels/dequantize.hip``)::

    dequantize_block_<ggml name>_<out>(const void* x, void* y, int64 nrows, int64 n, int64 x_row_stride_bytes)

``x`` holds ``nrows`` rows of quantized bytes, ``x_row_stride_bytes`` apart (device rows are padded to a
multiple of 512 elements); ``y`` is a contiguous ``(nrows, n)`` array of ``out`` (f32, f16 or bf16). Each
thread writes ``DEQUANT_UNROLL`` chunks of 16 bytes (4 float32 or 8 halves): chunk ``k`` of a thread sits
``blockDim.x`` chunks after chunk ``k - 1``, so every store instruction of a warp covers one contiguous span.
Rows go along ``y`` of the grid and of the block (short rows share a block); rows beyond what the grid covers
are looped over, so any ``nrows`` works within the 65535 limit on ``gridDim.y``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyquant.formats import MATRIX_ROW_PADDING, SUPPORTED, QTypeLike, ggml_name, layout, row_bytes

ArgType = Literal["ptr", "i64", "i32", "f32"]

#: threads per block of every dequantize kernel (the kernels' launch bound: blocks may not be larger)
DEQUANT_THREADS = 256
#: 16-byte chunks each thread dequantizes (independent loads in flight per thread)
DEQUANT_UNROLL = 4
#: threads the dequantize kernels are compiled to keep resident per SM / CU: caps registers at 64 per thread on
#: NVIDIA (4 blocks of 256), 4 waves/SIMD on CDNA, 8 on RDNA (see PQ_LAUNCH_BOUNDS in pq_port.h)
DEQUANT_RESIDENT = 1024
#: bytes per thread-chunk: one 16-byte store of 4 float32 or 8 half/bfloat16 values
DEQUANT_VEC_BYTES = 16
#: CUDA's limit on gridDim.y and gridDim.z (HIP allows more; the smaller limit is written once)
MAX_GRID_Y = 65535

OUT_DTYPES: dict[str, int] = {"f32": 4, "f16": 2, "bf16": 2}  # output name -> bytes per element
_OUT_ALIASES = {"float32": "f32", "float16": "f16", "half": "f16", "bfloat16": "bf16", "fp32": "f32", "fp16": "f16"}

DEQUANT_ARG_TYPES: tuple[ArgType, ...] = ("ptr", "ptr", "i64", "i64", "i64")


@dataclass(frozen=True)
class LaunchSpec:
    """One kernel launch: ``kernel`` name, ``grid`` and ``block`` (x, y, z), dynamic ``shared_mem`` in bytes,
    and ``arg_types``, one of ``'ptr' | 'i64' | 'i32' | 'f32'`` per kernel parameter, in order. ``overlap``: the
    kernel calls ``pq_wait_previous()`` before it touches what earlier work wrote, so it may be launched to
    overlap the kernel before it (see ``Backend.launch``)."""

    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_mem: int
    arg_types: tuple[ArgType, ...]
    overlap: bool = False


def out_name(out_dtype: str) -> str:
    """Normalise ``'f32' | 'float32' | 'f16' | 'float16' | 'bf16' | 'bfloat16'`` (or a numpy dtype) to f32/f16/bf16."""
    key = str(getattr(out_dtype, "name", out_dtype)).strip().lower()
    key = _OUT_ALIASES.get(key, key)
    if key not in OUT_DTYPES:
        raise ValueError(f"output dtype must be one of f32, f16, bf16 (or float32, float16, bfloat16), got {out_dtype!r}")
    return key


def dequantize_kernel_name(qtype: QTypeLike, out_dtype: str) -> str:
    """``dequantize_block_q4_K_f16`` for (Q4_K, 'f16')."""
    return f"dequantize_block_{ggml_name(layout(qtype).qtype)}_{out_name(out_dtype)}"


def dequantize_kernel_names() -> list[str]:
    """Every dequantize kernel the code objects must contain: each supported type times each output type."""
    return [dequantize_kernel_name(t, o) for t in SUPPORTED for o in OUT_DTYPES]


def row_alignment(qtype: QTypeLike) -> int:
    """Byte alignment the kernels need for ``x`` and ``x_row_stride_bytes``.

    The kernels read F32, F16 and BF16 rows in 16-byte vectors and block fields in 4-byte words where the block
    size allows (2-byte halves where it does not: an 18-byte Q4_0 block leaves every other
    block 2-byte aligned; bytes for MXFP4's 17-byte blocks). Rows padded to 512 elements always satisfy it.
    """
    lay = layout(qtype)
    if not lay.is_quantized:
        return 16
    return 4 if lay.type_size % 4 == 0 else 2 if lay.type_size % 2 == 0 else 1


#: Device row strides are multiples of this many bytes: every row starts 16-byte aligned, so the mat-vec kernels
#: stage any tile of whole blocks with 16- or 8-byte loads whatever the block size (210-byte Q6_K, 110-byte Q3_K).
ROW_STRIDE_ALIGN = 16


def device_row_stride(qtype: QTypeLike, n: int) -> int:
    """Bytes between device rows of ``n`` elements: the row padded to a multiple of ``MATRIX_ROW_PADDING`` (512)
    elements (ggml's convention: kernels may read whole tiles past the row end), then to a multiple of
    ``ROW_STRIDE_ALIGN`` bytes; the padding is zero bytes."""
    padded = -(-int(n) // MATRIX_ROW_PADDING) * MATRIX_ROW_PADDING if n else 0
    return -(-row_bytes(qtype, padded) // ROW_STRIDE_ALIGN) * ROW_STRIDE_ALIGN


def _pow2_at_least(v: int) -> int:
    return 1 << max(0, (v - 1).bit_length())


def dequantize_spec(qtype: QTypeLike, out_dtype: str, nrows: int, n: int,
                    x_row_stride_bytes: int | None = None) -> LaunchSpec:
    """Launch spec of ``dequantize_block_<type>_<out>`` for ``nrows`` rows of ``n`` elements.

    ``n`` must be a multiple of the type's block size. The spec is valid for any ``nrows >= 0`` (an empty
    tensor gets a 1x1x1 grid that writes nothing). Given ``x_row_stride_bytes``, it is checked too: at least a
    row's bytes and a multiple of :func:`row_alignment` (the base pointer must be as aligned; allocations are).
    """
    lay = layout(qtype)
    out = out_name(out_dtype)
    nrows, n = int(nrows), int(n)
    if nrows < 0 or n < 0:
        raise ValueError(f"nrows and n must be >= 0, got nrows={nrows}, n={n}")
    if n % lay.block_size:
        raise ValueError(f"row length {n} is not a multiple of {lay.name} block size {lay.block_size}")
    if x_row_stride_bytes is not None:
        need, align = n // lay.block_size * lay.type_size, row_alignment(lay.qtype)
        if x_row_stride_bytes < need or x_row_stride_bytes % align:
            raise ValueError(f"{lay.name} row stride {x_row_stride_bytes} bytes: expected a multiple of {align} "
                             f"that is at least the {need} bytes of a {n}-element row (pad rows to 512 elements)")
    if n >= 2**31:
        raise ValueError(f"row length {n} is too long for the dequantize kernels (at most 2**31 - 1 elements)")
    per_chunk = DEQUANT_VEC_BYTES // OUT_DTYPES[out]
    chunks = -(-n // per_chunk)  # chunks per row; the kernel writes a partial last chunk element by element
    # Enough threads along x for one row in one block when the row is short, a full block otherwise; the rest
    # of the block takes further rows, so tiny rows do not leave threads idle.
    tx = min(DEQUANT_THREADS, _pow2_at_least(max(1, -(-chunks // DEQUANT_UNROLL))))
    ty = DEQUANT_THREADS // tx
    gx = max(1, -(-chunks // (tx * DEQUANT_UNROLL)))
    gy = max(1, min(MAX_GRID_Y, -(-nrows // ty)))
    return LaunchSpec(dequantize_kernel_name(lay.qtype, out), (gx, gy, 1), (tx, ty, 1), 0, DEQUANT_ARG_TYPES)


def launch_header() -> str:
    """The text of ``hsaco/include/pq_launch.h``: the constants above, for the kernels."""
    return (
        "// GENERATED by hsaco/build.py from pyquant/device/launch.py: do not edit (a test compares).\n"
        "#pragma once\n\n"
        f"#define PQ_DEQUANT_THREADS {DEQUANT_THREADS}  // threads per block (the kernels' launch bound)\n"
        f"#define PQ_DEQUANT_UNROLL {DEQUANT_UNROLL}  // 16-byte chunks per thread\n"
        f"#define PQ_DEQUANT_RESIDENT {DEQUANT_RESIDENT}  // threads to keep resident per SM / CU (register cap)\n"
        f"#define PQ_DEQUANT_VEC_BYTES {DEQUANT_VEC_BYTES}  // bytes per chunk: one vector store\n"
    )
