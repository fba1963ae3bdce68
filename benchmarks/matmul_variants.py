"""Build tuning variants of the mat-vec kernels for NVIDIA (cubins), for benchmarks/matmul.py --variants.

    python benchmarks/matmul_variants.py OUTDIR [--arch sm_90]

Each variant is the matmul kernels (hsaco/kernels/{quantize_q8_1,mmvq}.hip) compiled with every tuning macro
of hsaco/include/pq_matmul.h predefined (the header then skips its own table), plus ``variants.json`` giving
each variant's geometry so the benchmark launches it right.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pyquant.device import launch_matmul as lm  # noqa: E402

# rpw / frpw: rows per block; fnwarps: warps per block of the float mat-vec (every warp of the block holds them; the nwarps warps split the row length)
_REST = dict(nwarps=[1] * 7, rpw=[2] * 7, upl=[2, 1, 1, 1, 1, 1, 1])  # the adopted NVIDIA table from 2 columns on


def _n1(nwarps: int, rpw: int, upl: int) -> dict:
    """The adopted table with another geometry at n = 1."""
    nv = lm.MATVEC_TUNING["nvidia"]
    return dict(nwarps=[nwarps] + _REST["nwarps"], rpw=[rpw] + _REST["rpw"], upl=[upl] + _REST["upl"],
                frpw=list(nv.f_rows_per_warp), fnwarps=list(nv.f_nwarps))


_BASE = _n1(1, 2, 4)  # the adopted NVIDIA table

# the adopted early-fetch bits, read from the NVIDIA row of the tuning table
_EARLY = dict(early=lm.MATVEC_TUNING["nvidia"].early_fetch,
              early_by_type=dict(lm.MATVEC_TUNING["nvidia"].early_fetch_by_type))

# the adopted one-column geometry per type: (warps resident per SM, units per lane, rotate)
_N1 = {t: (w, u, r) for t, w, u, r in lm.MATVEC_TUNING["nvidia"].n1_by_type}


def _early1(types) -> dict:
    """The adopted early bits with the one-column kernel's bit set for ``types`` too."""
    by = dict(_EARLY["early_by_type"])
    return dict(early=_EARLY["early"],
                early_by_type={**by, **{t: by.get(t, _EARLY["early"]) | 1 for t in types}})


VARIANTS = {
    # session 6, run U: the n = 1 geometry for the types still under issue 4's n = 1 criteria (IQ4_XS and MXFP4
    # under 85 % of copy on 28672x8192; Q4_1, Q5_0, Q5_1, Q8_0, IQ4_XS under 1.15x ggml on 4096x14336) with the
    # adopted early fetch: 4 rows per warp (each activation unit loaded once for 4 rows) at 2 or 1 units per
    # lane (8 units per lane, twice the bytes in flight, spills for them): both slower beyond the L2. Runs R-T
    # timed where the tile loads go out (adopted) and an exact float epilogue of the Q3_K/Q6_K dot products
    # (4-6 % slower: removed); run V the table types' table kept in registers (1-8 % slower: removed).
    # Session 7, run W: tiles through a shared-memory ring filled by cp.async (2-8 stages, up to 13 KiB a warp;
    # the code is in benchmarks/NOTES.md's account only): slower at n = 1 for every type but Q8_0, 3-23 % slower
    # from 2 columns on. Runs X and Y: 24 or 32 warps an SM, rotated tile order (adopted per type, ``_N1``).
    "base": dict(_BASE, **_EARLY, n1_by_type=_N1),
    # session 8, run AA: the stragglers' one-column kernel with early tile loads (e1) and lighter geometries
    # (16 or 24 warps, 2 units per lane, rotated; g16u2 / g16u2e / g24u2e with early loads): adopted for Q4_1 and
    # Q5_0 (g16u2e) and Q8_0 (g16u2); the float mat-vec at n = 1 with its next batch of weight loads in flight
    # during the products (fpipe, slower), 8 warps of one row (adopted), a warp's whole share in one batch (fsteps).
    # Run AB: the chained overlapped launches (mat-vec kernels releasing their successor at their start)
    # cost Q4_0/Q4_1/Q5_1 13-35 % on 4096x14336 and gained F16 3 % and the big shape 1-2 %; Q5_1 and Q8_0 with
    # (16, 2, rotated) and early loads (q16e), with 24 warps (q24e); F16 with 8 or 16 warps of one row at
    # n <= 2. Run AC: where the mat-vec releases its successor: never (rn), at its start (base), after its row
    # loop (re); with (16, 2, rotated) and early loads for Q4_0, Q4_1, Q5_1 (re16, rn16).
    # Run AD: the table types' interleaved activations (adopted). Run AE: the table types' one-column kernel
    # with (24 or 16 warps, 2 units, rotated); Q8_0 and Q5_1 with one row a warp (``rpw_max``): all slower.
    # Run AG: tiles 1..a of each warp prefetched into the L2 before the wait for the activation kernel
    # (prefetch.global.L2; a = 1, 2, 4): at most 3 % at n = 1 where the weights fit the L2, 2 % slower for
    # IQ4_XS/MXFP4 on 28672x8192, Q6_K slower everywhere; removed (the code is in NOTES' account only).
}

SOURCE = """#include "pq_port.h"
#include "pq_blocks.h"
#include "pq_launch.h"
#include "kernels/quantize_q8_1.hip"
#include "kernels/mmvq.hip"
"""


def defines(cfg: dict) -> list[str]:
    out = []
    for key, macro in (("nwarps", "PQ_MMVQ_NWARPS"), ("rpw", "PQ_MMVQ_RPW"), ("upl", "PQ_MMVQ_UPL"),
                       ("frpw", "PQ_MMVF_RPW"), ("fnwarps", "PQ_MMVF_NWARPS")):
        out += [f"-D{macro}_{c}={v}" for c, v in enumerate(cfg[key], 1)]
    if "n1" in cfg:  # every type's one-column kernel: (warps resident per SM, units per lane, rotate)
        warps, upl, rot = cfg["n1"]
        out += [f"-DPQ_MMVQ_N1_RESIDENT=({warps}*32)", f"-DPQ_MMVQ_N1_UPL={upl}", f"-DPQ_MMVQ_N1_ROTATE={rot}"]
    nv = lm.MATVEC_TUNING["nvidia"]
    caps = {**dict(nv.max_rows_per_warp), **cfg.get("rpw_max", {})}  # rows per warp at most, per type
    out += [f"-DPQ_MMVQ_RPW_MAX_{t}={v}" for t, v in caps.items()]
    out += [f"-DPQ_MMVQ_UPL_MAX_{t}={v}" for t, v in nv.max_units_per_lane]
    for t, (warps, upl, rot) in cfg.get("n1_by_type", {}).items():  # one type's one-column kernel
        out += [f"-DPQ_MMVQ_N1_RESIDENT_{t}=({warps}*32)", f"-DPQ_MMVQ_N1_UPL_{t}={upl}",
                f"-DPQ_MMVQ_N1_ROTATE_{t}={rot}"]
    for key, macro in (("qrelease", "PQ_MMVQ_RELEASE"), ("frelease", "PQ_MMVF_RELEASE")):
        if key in cfg:  # where the quantized / float mat-vec releases the kernel after it (mmvq.hip)
            out.append(f"-D{macro}={cfg[key]}")
    return out + [f"-DPQ_MMV_COL_FENCE={cfg.get('fence', 0)}", f"-DPQ_MMVQ_EARLY_FETCH={cfg.get('early', 0)}",
                  *(f"-DPQ_MMVQ_EARLY_{t}={v}" for t, v in cfg.get("early_by_type", {}).items())]


def build(name: str, cfg: dict, out: Path, arch: str) -> tuple[str, str]:
    src = out / "variant.hip"
    cubin = out / f"{name}.{arch}.cubin"
    cmd = ["nvcc", "-x", "cu", "-std=c++17", "-O3", "--fmad=false", "-ftz=false", "-prec-div=true", "-cubin",
           f"-arch={arch}", f"-I{ROOT / 'hsaco/include'}", f"-I{ROOT / 'hsaco'}", "-Xptxas=-v",
           *defines(cfg), "-o", str(cubin), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{name}: {r.stderr[-2000:]}")
    spills, fn = [], ""
    for ln in r.stderr.splitlines():
        if "Function properties for" in ln:
            fn = ln.split("for", 1)[1].strip().rstrip(":")
        elif "spill" in ln and " 0 bytes spill stores" not in ln:
            spills.append(fn)
    return name, f"{len(spills)} kernels with spills {' '.join(spills)}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", default="sm_90")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "variant.hip").write_text(SOURCE)
    meta = {}
    with concurrent.futures.ThreadPoolExecutor(int(os.environ.get("JOBS", "2"))) as ex:
        for name, note in ex.map(lambda kv: build(kv[0], kv[1], out, args.arch), VARIANTS.items()):
            print(name, note, flush=True)
            meta[name] = dict(VARIANTS[name], file=f"{name}.{args.arch}.cubin")
    (out / "variants.json").write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
