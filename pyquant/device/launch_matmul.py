"""Launch specs and per-architecture-family tuning of the matmul kernels (``hsaco/kernels/{quantize_q8_1,mmvq,
mmq}.hip``). Written once for both vendors; ``hsaco/include/pq_matmul.h`` is generated from this module
(``python -m pyquant.device.launch_matmul > hsaco/include/pq_matmul.h``) and a test compares the two.

The activation layout of the mat-vec kernels (``quantize_mmvq_q8_1_<in>`` writes it): for ``n`` columns of
``k`` elements, ``ka = padded_act(k)`` (a multiple of 1024) and one device buffer holding

- ``aq``: int8 ``[n][ka]``, the Q8_1 quants of each column (zero past ``k``), each group of 32 blocks (1024
  elements) stored as the 32 blocks' first 16 quants, then their last 16 (a warp's lane l takes block l of a
  group: each 16-byte load instruction of the warp then reads 512 contiguous bytes);
- ``ads``: uint32 ``[n][ka / 32]`` at byte ``n * ka``: per 32-element block, the Q8_1 ``d`` (fp16 bits) in the
  low half and the exact integer sum of the block's 32 quants (int16) in the high half.

These are the bytes of ``pyquant.quantize(x, "Q8_1")`` rearranged, with the rounded ``s = d * sum`` of a Q8_1
block replaced by the exact sum it rounds. ``quantize_q8_1_<in>`` writes the plain Q8_1 blocks, byte for byte
the CPU's. ``quantize_mmvq_il_q8_1_<in>`` writes the interleaved variant for the table types
(:data:`ACT_INTERLEAVED_TYPES`): the same, but each block's 32 quants in the order x0, x16, x1, x17, ...,
x15, x31 before the split into halves, the order their nibble lookup yields (one byte permute per 8 weights
fewer: pq_lut.h's ``pq_lut16_nibbles_il``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..formats import MATRIX_ROW_PADDING, SUPPORTED, QTypeLike, ggml_name, layout
from .launch import LaunchSpec

#: the weight types of the quantized mat-vec kernels (everything quantized pyquant supports)
MMVQ_TYPES = tuple(t for t in SUPPORTED if layout(t).is_quantized)
#: the weight types whose mat-vec reads the interleaved activation layout (module docstring)
ACT_INTERLEAVED_TYPES = tuple(t for t in MMVQ_TYPES if ggml_name(t) in ("iq4_nl", "iq4_xs", "mxfp4"))
#: the float weight types of the float mat-vec kernels
MMVF_TYPES = tuple(t for t in SUPPORTED if not layout(t).is_quantized)
#: input dtypes of the activation kernels
X_DTYPES = ("f32", "f16", "bf16")
#: the most activation columns one mat-vec launch takes (ggml's MMVQ_MAX_BATCH_SIZE)
MAX_NCOLS = 8

QUANTIZE_THREADS = 256  # threads per block of the quantize/convert kernels (8 lanes per q8_1 block)
CONVERT_THREADS = 256
RESIDENT_WAVES_PER_SIMD = 4  # the register budget every matmul kernel is compiled for (issue 4's static check)
NVIDIA_OTHER_RESIDENT_WARPS = 12  # NVIDIA targets other than sm_90: 168 registers (see header())


@dataclass(frozen=True)
class MatVecTune:
    """One family's mat-vec geometry per number of columns (index ``ncols - 1``).

    A block takes ``rows_per_warp`` weight rows (every warp holds them all: activation reuse, registers) and its
    ``nwarps`` warps split the row length in tiles of ``warp * units_per_lane * 32`` elements (tiles in flight
    per block; ``units_per_lane``: bytes in flight per warp). Shared memory: nwarps * rows * tile bytes.
    """

    nwarps: tuple[int, ...]
    rows_per_warp: tuple[int, ...]
    units_per_lane: tuple[int, ...]
    warp: int  # the physical wave/warp size of the family
    #: per weight type (ggml name), the most rows a warp may hold (registers of heavy decoders, LDS of big blocks)
    max_rows_per_warp: tuple[tuple[str, int], ...] = ()
    #: per weight type (ggml name), the most units per lane (registers: a tile's prefetch lives in them)
    max_units_per_lane: tuple[tuple[str, int], ...] = ()
    #: the float mat-vec (F32/F16/BF16 weights): rows per block and warps per block by ncols (the warps split
    #: the row length)
    f_rows_per_warp: tuple[int, ...] = (2, 2, 2, 4, 4, 4, 4, 4)
    f_nwarps: tuple[int, ...] = (4,) * 8
    #: a compiler fence between groups of this many columns in the mat-vec's column loop (0: none): stops the
    #: compiler from hoisting every column's activation loads at once where that exceeds the register budget
    col_fence: int = 0
    #: bit ``ncols - 1`` set: the ncols kernel issues its next tile's loads as soon as the current tile is staged
    #: (in flight during all of its units' decode and dot products; more live registers), else after the last
    #: unit's decode
    early_fetch: int = 0
    #: per weight type (ggml name), its own early_fetch bits
    early_fetch_by_type: tuple[tuple[str, int], ...] = ()
    #: per weight type (ggml name), its one-column kernel's own (warps resident per SM it is compiled for, units
    #: per lane, rotate): more, lighter warps, and blocks that start their rows at different tiles (``rotate``
    #: 1: block b at tile round b mod rounds). The NVIDIA row's apply to sm_90 (where they were measured; sm_86
    #: cannot keep 24 one-warp blocks an SM); other kernels and targets keep the family's values.
    n1_by_type: tuple[tuple[str, int, int, int], ...] = ()

    def rows(self, qtype: QTypeLike, ncols: int) -> int:
        """Rows per warp of type ``qtype`` at ``ncols`` columns."""
        cap = dict(self.max_rows_per_warp).get(ggml_name(layout(qtype).qtype), MAX_NCOLS)
        return min(self.rows_per_warp[ncols - 1], cap)

    def __post_init__(self):
        for f in (self.nwarps, self.rows_per_warp, self.units_per_lane, self.f_rows_per_warp, self.f_nwarps):
            assert len(f) == MAX_NCOLS and all(v >= 1 for v in f)


#: Architecture families: how a device's ``arch`` string maps to one (see :func:`family`).
FAMILIES = ("nvidia", "cdna", "rdna1", "rdna2", "rdna3", "rdna4")

# Starting points, measured only on NVIDIA (H100, benchmarks/NOTES.md); the AMD rows are derived from the same
# budget rules (>= 4 waves per SIMD, <= 16 KiB of LDS per block on 64 KiB CUs) and wait for hardware.
MATVEC_TUNING: dict[str, MatVecTune] = {
    # H100 runs 1-2 (benchmarks/NOTES.md): 2 warps per block beat 4 and 8 at every n (by 5-15 % from n = 2
    # on); 4 rows per block spill at n >= 4. Session 2 run D, after the 16-byte staging: 1 warp per block with
    # 4 units per lane at n = 1 and 2 at n = 2 beats that by up to 15 % (Q5_K n = 1 19.2 -> 16.4 us, Q4_K
    # 28672x8192 54.1 -> 51.3 us) except Q8_0 (+4 % at n = 1, +10 % at n = 8); Q8_K keeps 2 units (4 spill).
    # Session 6 (runs R and S, A/B in one call each): the next tile's loads issued as soon as a tile is staged
    # ("early") make n = 3..8 2-10 % faster for every type but Q3_K and Q4_K (even; Q4_K c8 spills with it:
    # off for both), n = 2 2-7 % faster but Q8_0 (5 % slower), and n = 1 3-4 % faster for the table types
    # (IQ4_NL, IQ4_XS, MXFP4: their lookups are the most work per byte); at n = 1 it costs the other types
    # 1-11 % (registers: Q3_K/Q6_K spill) and stays off there. Session 7 (runs Y and Z): the one-column kernel
    # compiled for 24 warps an SM (85 registers) with 2 units per lane, its blocks starting their rows at
    # rotated tiles, for Q4_0, Q4_1, Q5_1 (through pyquant.linear on 4096x14336: -3.5, -4, -1 %); rotation
    # alone for Q8_0 and Q5_K (-2.4, -2.5 %). Q4_K, Q6_K and IQ4_XS gained with them in the variant harness but
    # lost 2-4 % through pyquant.linear; the other types lose with either. Session 8 (runs AA-AC): 16 warps an SM
    # with 2 units per lane, rotated, and early tile loads at n = 1 for Q4_0, Q4_1, Q5_0, Q5_1 (-5, -6, -6,
    # -2.6 % on 4096x14336, up to +2 % on 28672x8192), without early loads for Q8_0 (-2.9 / -2.6 %); the float
    # mat-vec with 8 warps of one row at n = 1 and 2 (F16 43.5 -> 41.5 us at n = 1 with 4 warps of 2 rows).
    "nvidia": MatVecTune(nwarps=(1,) * 8, rows_per_warp=(2, 2, 2, 2, 2, 2, 2, 2),
                         units_per_lane=(4, 2, 1, 1, 1, 1, 1, 1), warp=32, max_units_per_lane=(("q8_K", 2),),
                         f_rows_per_warp=(1, 1, 2, 4, 2, 2, 2, 2), f_nwarps=(8, 8, 4, 4, 4, 4, 4, 4),
                         early_fetch=0b11111110,
                         early_fetch_by_type=(("q4_0", 0xFF), ("q4_1", 0xFF), ("q5_0", 0xFF), ("q5_1", 0xFF),
                                              ("q8_0", 0b11111100), ("q3_K", 0), ("q4_K", 0), ("iq4_nl", 0xFF),
                                              ("iq4_xs", 0xFF), ("mxfp4", 0xFF)),
                         n1_by_type=(("q4_0", 16, 2, 1), ("q4_1", 16, 2, 1), ("q5_0", 16, 2, 1), ("q5_1", 16, 2, 1),
                                     ("q8_0", 16, 2, 1), ("q5_K", 16, 4, 1))),
    # CDNA: 64 KiB of LDS per CU, so a block's tiles stay under 8 KiB (4 waves per SIMD): one row for the 34-
    # to 292-byte blocks; Q3_K's decoder needs the registers of a second row, and from 5 columns on the 128
    # VGPRs of 4 waves per SIMD hold one row's accumulators only.
    "cdna": MatVecTune(nwarps=(2,) * 8, rows_per_warp=(2, 2, 2, 2, 1, 1, 1, 1),
                       units_per_lane=(1,) * 8, warp=64,
                       max_rows_per_warp=(("q3_K", 1), ("q8_0", 1), ("q8_1", 1), ("q8_K", 1)),
                       f_rows_per_warp=(1, 2, 2, 2, 1, 1, 1, 1), col_fence=2),
    "rdna1": MatVecTune(nwarps=(4,) * 8, rows_per_warp=(2, 2, 2, 2, 2, 2, 2, 2),
                        units_per_lane=(1,) * 8, warp=32, f_rows_per_warp=(2,) * 8),
    "rdna2": MatVecTune(nwarps=(4,) * 8, rows_per_warp=(2, 2, 2, 2, 2, 2, 2, 2),
                        units_per_lane=(1,) * 8, warp=32, f_rows_per_warp=(2,) * 8),
    "rdna3": MatVecTune(nwarps=(4,) * 8, rows_per_warp=(2, 2, 2, 2, 2, 2, 2, 2),
                        units_per_lane=(2, 1, 1, 1, 1, 1, 1, 1), warp=32, f_rows_per_warp=(2,) * 8),
    "rdna4": MatVecTune(nwarps=(4,) * 8, rows_per_warp=(2, 2, 2, 2, 2, 2, 2, 2),
                        units_per_lane=(2, 1, 1, 1, 1, 1, 1, 1), warp=32, f_rows_per_warp=(2,) * 8),
}

# The header's preprocessor condition for each family (clang defines __GFX9__ ... __GFX12__ per target).
_FAMILY_CONDITION = {
    "nvidia": "defined(PQ_NVIDIA)",
    "cdna": "defined(__GFX9__)",
    "rdna1": "defined(__GFX10__) && !defined(__gfx1030__) && !defined(__gfx1031__) && !defined(__gfx1032__) && "
             "!defined(__gfx1033__) && !defined(__gfx1034__) && !defined(__gfx1035__) && !defined(__gfx1036__)",
    "rdna2": "defined(__GFX10__)",
    "rdna3": "defined(__GFX11__)",
    "rdna4": "defined(__GFX12__)",
}


def family(arch: str) -> str:
    """``"sm_90"`` -> ``"nvidia"``, ``"gfx942"`` -> ``"cdna"`` (gfx9 GCN too), ``"gfx1030"`` -> ``"rdna2"``, ..."""
    a = arch.strip().lower()
    if a.startswith(("sm_", "compute_")):
        return "nvidia"
    if a.startswith("gfx9"):
        return "cdna"
    if a.startswith("gfx10"):
        return "rdna1" if a.startswith("gfx101") else "rdna2"
    if a.startswith("gfx11"):
        return "rdna3"
    if a.startswith("gfx12"):
        return "rdna4"
    raise ValueError(f"no matmul tuning for architecture {arch!r}")


def header() -> str:
    """The text of ``hsaco/include/pq_matmul.h``: the tuning table for the kernels, by family."""
    out = [
        "// GENERATED from pyquant/device/launch_matmul.py (python -m pyquant.device.launch_matmul): do not edit;",
        "// a test compares. Mat-vec geometry per architecture family, indexed by ncols - 1.",
        "#pragma once",
        "",
        f"#define PQ_MMV_MAX_NCOLS {MAX_NCOLS}",
        f"#define PQ_QUANTIZE_THREADS {QUANTIZE_THREADS}",
        f"#define PQ_CONVERT_THREADS {CONVERT_THREADS}",
        "// threads that must fit on one CU/SM at once: 4 waves per SIMD on AMD (registers <= 1/4 of the file),",
        "// at most 128 registers a thread on the H100 (sm_90, where the tuning was measured); other NVIDIA",
        "// targets allow 168 (12 resident warps): their ptxas needs a few more for Q6_K/Q8_0 without spilling",
        "#if defined(PQ_NVIDIA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ != 900",
        f"#define PQ_MATMUL_RESIDENT ({NVIDIA_OTHER_RESIDENT_WARPS} * PQ_WARP_SIZE)",
        "#else",
        f"#define PQ_MATMUL_RESIDENT ({RESIDENT_WAVES_PER_SIMD * 4} * PQ_WARP_SIZE)",
        "#endif",
    ]
    out.append("")
    out.append("// A build may predefine every PQ_MMVQ_* / PQ_MMVF_RPW_* / PQ_MMVF_NWARPS_* macro itself (benchmarks/matmul.py's tuning variants)")
    out.append("#ifndef PQ_MMVQ_NWARPS_1")
    first = True
    for fam in FAMILIES:
        tune = MATVEC_TUNING[fam]
        out.append(f"#{'if' if first else 'elif'} {_FAMILY_CONDITION[fam]}  // {fam}")
        first = False
        out.append(f"#define PQ_MATMUL_FAMILY \"{fam}\"")
        out.append(f"static_assert(PQ_WARP_SIZE == {tune.warp}, \"pq_matmul.h: {fam} has {tune.warp}-lane waves\");")
        for name, vals in (("NWARPS", tune.nwarps), ("RPW", tune.rows_per_warp), ("UPL", tune.units_per_lane)):
            out += [f"#define PQ_MMVQ_{name}_{c} {v}" for c, v in enumerate(vals, 1)]
        out += [f"#define PQ_MMVQ_RPW_MAX_{t} {v}" for t, v in tune.max_rows_per_warp]
        out += [f"#define PQ_MMVQ_UPL_MAX_{t} {v}" for t, v in tune.max_units_per_lane]
        out += [f"#define PQ_MMVF_RPW_{c} {v}" for c, v in enumerate(tune.f_rows_per_warp, 1)]
        out += [f"#define PQ_MMVF_NWARPS_{c} {v}" for c, v in enumerate(tune.f_nwarps, 1)]
        out.append(f"#define PQ_MMV_COL_FENCE {tune.col_fence}")
        out.append(f"#define PQ_MMVQ_EARLY_FETCH {tune.early_fetch:#x}")
        out += [f"#define PQ_MMVQ_EARLY_{t} {v:#x}" for t, v in tune.early_fetch_by_type]
        if tune.n1_by_type:  # measured on the H100 only (and run by the SIMT emulator, which has no __CUDA_ARCH__)
            out.append("#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ == 900")
            for t, warps, upl, rot in tune.n1_by_type:
                res = "PQ_MATMUL_RESIDENT" if warps == RESIDENT_WAVES_PER_SIMD * 4 else f"({warps} * PQ_WARP_SIZE)"
                out += [f"#define PQ_MMVQ_N1_RESIDENT_{t} {res}", f"#define PQ_MMVQ_N1_UPL_{t} {upl}",
                        f"#define PQ_MMVQ_N1_ROTATE_{t} {rot}"]
            out.append("#endif")
    out.append("#else")
    out.append("#error \"pq_matmul.h: no tuning for this architecture family\"")
    out.append("#endif")
    out.append("#endif  // PQ_MMVQ_NWARPS_1")
    out.append("")
    out.append("// rows per warp and units per lane of TYPE at NC columns: the family's values, capped per type where the")
    out.append("// family says so; early fetch bits of TYPE: the family's, unless the family gives the type its own")
    defaults = [("PQ_MMVQ_EARLY_FETCH", "0"), ("PQ_MMVQ_N1_RESIDENT", "PQ_MATMUL_RESIDENT"),
                ("PQ_MMVQ_N1_UPL", "PQ_MMVQ_UPL_1"), ("PQ_MMVQ_N1_ROTATE", "0")]
    for t in MMVQ_TYPES:
        g = ggml_name(t)
        defaults += [(f"PQ_MMVQ_RPW_MAX_{g}", str(MAX_NCOLS)), (f"PQ_MMVQ_UPL_MAX_{g}", str(MAX_NCOLS)),
                     (f"PQ_MMVQ_EARLY_{g}", "PQ_MMVQ_EARLY_FETCH"), (f"PQ_MMVQ_N1_RESIDENT_{g}", "PQ_MMVQ_N1_RESIDENT"),
                     (f"PQ_MMVQ_N1_UPL_{g}", "PQ_MMVQ_N1_UPL"), (f"PQ_MMVQ_N1_ROTATE_{g}", "PQ_MMVQ_N1_ROTATE")]
    for name, value in defaults:
        out += [f"#ifndef {name}", f"#define {name} {value}", "#endif"]
    out.append("#define PQ_MMVQ_EARLY(TYPE, NC) (((PQ_MMVQ_EARLY_##TYPE) >> ((NC) - 1)) & 1)")
    out.append("#define PQ_MMVQ_RPW(TYPE, NC) \\")
    out.append("    (PQ_MMVQ_RPW_##NC < PQ_MMVQ_RPW_MAX_##TYPE ? PQ_MMVQ_RPW_##NC : PQ_MMVQ_RPW_MAX_##TYPE)")
    out.append("#define PQ_MMVQ_UPL_NC(TYPE, NC) ((NC) == 1 ? (PQ_MMVQ_N1_UPL_##TYPE) : PQ_MMVQ_UPL_##NC)")
    out.append("#define PQ_MMVQ_UPL(TYPE, NC) \\")
    out.append("    (PQ_MMVQ_UPL_NC(TYPE, NC) < PQ_MMVQ_UPL_MAX_##TYPE ? PQ_MMVQ_UPL_NC(TYPE, NC) : PQ_MMVQ_UPL_MAX_##TYPE)")
    out.append("// threads resident per SM / CU that the kernel of TYPE at NC columns is compiled for, and its rotation")
    out.append("#define PQ_MMVQ_RESIDENT(TYPE, NC) ((NC) == 1 ? (PQ_MMVQ_N1_RESIDENT_##TYPE) : PQ_MATMUL_RESIDENT)")
    out.append("#define PQ_MMVQ_ROTATE(TYPE, NC) ((NC) == 1 ? (PQ_MMVQ_N1_ROTATE_##TYPE) : 0)")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- names


def padded(k: int) -> int:
    return -(-int(k) // MATRIX_ROW_PADDING) * MATRIX_ROW_PADDING


ACT_GROUP = 1024  # elements per interleaved group of the mat-vec activation layout


def padded_act(k: int) -> int:
    """Row length of the mat-vec activation layout: ``k`` rounded up to a multiple of 1024."""
    return -(-int(k) // ACT_GROUP) * ACT_GROUP


def mmvq_kernel_name(qtype: QTypeLike, ncols: int) -> str:
    """``mul_mat_vec_q4_K_q8_1_c4`` for Q4_K weights and 4 columns (ggml's ``mul_mat_vec_q<type, ncols>``)."""
    return f"mul_mat_vec_{ggml_name(layout(qtype).qtype)}_q8_1_c{int(ncols)}"


def mmvf_kernel_name(qtype: QTypeLike, ncols: int) -> str:
    """``mul_mat_vec_f16_f32_c1``: float weights times float32 activations."""
    return f"mul_mat_vec_{ggml_name(layout(qtype).qtype)}_f32_c{int(ncols)}"


def quantize_kernel_name(x_dtype: str, split: bool, interleaved: bool = False) -> str:
    """``quantize_q8_1_f32`` (plain Q8_1 blocks), ``quantize_mmvq_q8_1_f32`` (the mat-vec layout) or
    ``quantize_mmvq_il_q8_1_f32`` (its interleaved variant)."""
    if interleaved and not split:
        raise ValueError("the interleaved activation layout is a mat-vec layout (split=True)")
    return f"quantize_{'mmvq_' if split else ''}{'il_' if interleaved else ''}q8_1_{_x(x_dtype)}"


def act_interleaved(qtype: QTypeLike) -> bool:
    """Whether the mat-vec kernels of ``qtype`` read the interleaved activation layout."""
    return layout(qtype).qtype in ACT_INTERLEAVED_TYPES


def convert_kernel_name(x_dtype: str, out: str) -> str:
    """``convert_f32_to_f16``: activations to the GEMM's (or the float mat-vec's) input type, rows padded."""
    return f"convert_{_x(x_dtype)}_to_{_x(out)}"


def matmul_kernel_names() -> list[str]:
    """Every kernel the matmul path needs in every code object."""
    names = [mmvq_kernel_name(t, c) for t in MMVQ_TYPES for c in range(1, MAX_NCOLS + 1)]
    names += [mmvf_kernel_name(t, c) for t in MMVF_TYPES for c in range(1, MAX_NCOLS + 1)]
    names += [quantize_kernel_name(x, s, i) for x in X_DTYPES for s, i in ((False, False), (True, False), (True, True))]
    names += [convert_kernel_name(x, o) for x in X_DTYPES for o in ("f32", "f16", "bf16")]
    return names


def _x(dtype: str) -> str:
    key = str(getattr(dtype, "name", dtype)).lower()
    key = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}.get(key, key)
    if key not in X_DTYPES:
        raise ValueError(f"activations must be float32, float16 or bfloat16, got {dtype!r}")
    return key


# ---------------------------------------------------------------------------------------------- specs

ACT_ARGS = ("ptr", "ptr", "i64", "i64", "i64", "i64")  # x, out, n (rows), k, x_row_stride (elements), kp


def quantize_spec(x_dtype: str, n: int, k: int, split: bool, interleaved: bool = False) -> LaunchSpec:
    """``quantize_[mmvq_[il_]]q8_1_<in>(x, out, n, k, x_row_stride, kp)``: ``n`` rows of ``k`` activations.

    Plain (``split=False``, ``kp = padded(k)``): ``out`` is ``n`` rows of ``kp / 32`` Q8_1 blocks (36 bytes each),
    blocks past ``k`` zero. Split (``kp = padded_act(k)``): the mat-vec layout of the module docstring, its
    interleaved variant with ``interleaved``. Grid: x over 8-lane groups (one per 32-element block) of a padded
    row, y over rows.
    """
    kp = padded_act(k) if split else padded(k)
    threads = QUANTIZE_THREADS
    gx = -(-(kp // 4) // threads)
    gy = max(1, min(65535, int(n)))
    # overlap: the activation kernels wait (pq_wait_previous) for the kernel before them before reading x or
    # writing (the float mat-vec releases its successor at its start: mmvq.hip's PQ_MMVF_RELEASE)
    name = quantize_kernel_name(x_dtype, split, interleaved)
    return LaunchSpec(name, (gx, gy, 1), (threads, 1, 1), 0, ACT_ARGS, overlap=True)


def convert_spec(x_dtype: str, out: str, n: int, k: int) -> LaunchSpec:
    """``convert_<in>_to_<out>(x, y, n, k, x_row_stride, kp)``: rows padded to ``kp`` with zeros."""
    kp = padded(k)
    gx = -(-kp // (4 * CONVERT_THREADS))
    gy = max(1, min(65535, int(n)))
    return LaunchSpec(convert_kernel_name(x_dtype, out), (gx, gy, 1), (CONVERT_THREADS, 1, 1), 0, ACT_ARGS,
                      overlap=True)  # as quantize_spec


MMV_ARGS = ("ptr", "ptr", "ptr", "ptr", "i64", "i64", "i64", "i64", "i64")
# w, aq (or x for float), ads (unused for float), dst, m, k, w_row_stride (bytes), a_col_stride (elements, kp),
# dst_col_stride (elements)


def matvec_spec(qtype: QTypeLike, ncols: int, m: int, arch: str) -> LaunchSpec:
    """Launch spec of the mat-vec kernel for ``ncols`` (1..8) columns and ``m`` weight rows on ``arch``."""
    lay = layout(qtype)
    c = int(ncols)
    if not 1 <= c <= MAX_NCOLS:
        raise ValueError(f"a mat-vec launch takes 1 to {MAX_NCOLS} columns, got {ncols}")
    tune = MATVEC_TUNING[family(arch)]
    if lay.is_quantized:
        nw, rows = tune.nwarps[c - 1], tune.rows(lay.qtype, c)
        name = mmvq_kernel_name(lay.qtype, c)
    else:
        nw, rows = tune.f_nwarps[c - 1], tune.f_rows_per_warp[c - 1]
        name = mmvf_kernel_name(lay.qtype, c)
    grid = max(1, -(-int(m) // rows))
    if grid >= 2**31:
        raise ValueError(f"too many weight rows for one launch: {m}")
    # overlap: the mat-vec kernels wait (pq_wait_previous) for the activation kernel before them before reading
    # activations or writing dst, so their weight loads start while it finishes; the float ones release the
    # kernel after them at their start (PQ_MMVF_RELEASE), which waits in turn
    return LaunchSpec(name, (grid, 1, 1), (nw * tune.warp, 1, 1), 0, MMV_ARGS, overlap=True)


if __name__ == "__main__":
    print(header(), end="")


# ---------------------------------------------------------------------------------------------- dispatch

#: Per family, the most activation columns that still go through the mat-vec kernels (in passes of 8) when a
#: vendor GEMM is available; beyond, weights are dequantized to 16-bit and multiplied by the GEMM. The
#: mat-vec re-reads the weights once per pass, the GEMM path pays one dequantize (weights in, 2 bytes/weight
#: out) plus the GEMM: on an H100, 4096 x 14336 Q4_0 costs ~28 us per 8-column pass and ~105 us through the
#: GEMM at 16-64 columns; 28672 x 8192 ~100 us per pass and ~390 us (benchmarks/NOTES.md): 3 passes win, 4 tie.
MMV_MAX_BATCH = {"nvidia": 24, "cdna": 24, "rdna1": 24, "rdna2": 24, "rdna3": 24, "rdna4": 24}
#: Float weights need no dequantize: the GEMM takes F16/BF16 from 5 columns on (H100: the float mat-vec ties
#: cuBLAS up to 4 columns, 59 vs 48 us at 8 on 4096 x 14336), F32 from 9 (cuBLAS' float32 path is slow).
MMVF_MAX_BATCH = {"F32": MAX_NCOLS, "F16": 4, "BF16": 4}


def plan(qtype: QTypeLike, n: int, arch: str, gemm_ok: bool) -> str:
    """``"mmv"`` (mat-vec passes of up to 8 columns) or ``"gemm"`` (vendor GEMM) for ``n`` columns."""
    lay = layout(qtype)
    if not gemm_ok:
        return "mmv"
    limit = MMV_MAX_BATCH[family(arch)] if lay.is_quantized else MMVF_MAX_BATCH[lay.name]
    return "mmv" if n <= limit else "gemm"


# ---------------------------------------------------------------------------------------------- static checks


def expectations() -> dict:
    """What the matmul launch specs need of the code objects, in the form of ``codeobjects.check_all``'s
    arguments (hsaco/build.py merges it with the dequantize kernels'): every kernel of
    :func:`matmul_kernel_names`, its argument types, the largest block it is launched with, and the waves per
    SIMD it is compiled for (``RESIDENT_WAVES_PER_SIMD``, from registers and LDS both)."""
    from . import codeobjects

    names = matmul_kernel_names()
    arg_types = {}
    for name in names:
        arg_types[name] = MMV_ARGS if name.startswith("mul_mat_vec_") else ACT_ARGS
    # the check is per kernel name, not per architecture: the narrowest block any family launches (the launch
    # bounds come from the same table as the specs, so each architecture's own is exact by construction)
    widest = min(min(min(t.nwarps), min(t.f_nwarps)) * t.warp for t in MATVEC_TUNING.values())
    return {
        "expected_kernels": names,
        "arg_types": arg_types,
        "min_workgroup": {"quantize_": QUANTIZE_THREADS, "convert_": CONVERT_THREADS, "mul_mat_vec_": widest},
        # PQ_MATMUL_RESIDENT's waves per SIMD as PQ_LAUNCH_BOUNDS asks them of each target (halved on gfx906)
        "min_waves": lambda arch, name: (codeobjects.resident_waves(
            arch, RESIDENT_WAVES_PER_SIMD * 4 * codeobjects.wavefront_size(arch)) if name in arg_types else None),
    }
