"""Two threads over one for every CPU kernel, the two timed call by call in turn (issue 2's scaling criterion).

    python benchmarks/cpu_threads.py [--rows 1024] [--rounds 9] [--types Q4_K,Q6_K] [--out benchmarks/cpu_threads.md]

This machine's speed drifts by tens of percent within minutes, so a one-thread figure and an all-thread figure
taken in different minutes can differ by more than the scaling itself. Here every round calls each kernel once
with one thread and once with all, back to back (the order alternating between rounds), through pyquant's
registry (its dynamic row chunks), on a rows x 4096 Gaussian matrix; the ratio of the medians is the speed-up.
Three references are timed the same way in every round: ``fill`` and ``copy`` (parallel loops writing a float32
array of the dequantize output's size, from a constant or from the input: memory bandwidth) and ``alu`` (a
parallel loop of dependent float operations per row, no memory traffic: what the vCPUs give to pure computation
in that moment).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from pyquant import cpu
from pyquant.formats import SUPPORTED, layout


@njit(parallel=True, nogil=True, cache=True)
def _fill(y, v):
    for r in prange(y.shape[0]):
        for j in range(y.shape[1]):
            y[r, j] = v


@njit(parallel=True, nogil=True, cache=True)
def _copy(x, y):
    for r in prange(y.shape[0]):
        for j in range(y.shape[1]):
            y[r, j] = x[r, j]


@njit(parallel=True, nogil=True, cache=True)
def _alu(acc, steps):
    for r in prange(acc.shape[0]):
        a = np.float32(r)
        for _ in range(steps):
            a = a * np.float32(0.999) + np.float32(0.5)
        acc[r] = a


def _cases(types, rows: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 4096)).astype(np.float32)
    w = rng.uniform(0.1, 2.0, 4096).astype(np.float32)
    bad = np.zeros(rows, np.uint8)
    y = np.empty_like(x)
    acc = np.empty(rows, np.float32)
    out = [("fill", "-", lambda: _fill(y, np.float32(1.0))), ("copy", "-", lambda: _copy(x, y)),
           ("alu", "-", lambda: _alu(acc, 20000))]
    for t in types:
        k = cpu.kernels(t)
        lay = layout(t)
        q = np.empty((rows, 4096 // lay.block_size * lay.type_size), np.uint8)
        k.quantize(x, q, bad)
        out.append((t.name, "quantize", lambda k=k, q=q: k.quantize(x, q, bad)))
        if k.quantize_imatrix is not None:
            out.append((t.name, "quantize+imatrix", lambda k=k, q=q: k.quantize_imatrix(x, w, q, bad)))
        out.append((t.name, "dequantize", lambda k=k, q=q: k.dequantize(q, y)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--types", default=None, help="comma-separated type names (default: every type)")
    ap.add_argument("--out", default=None, help="markdown table to write")
    args = ap.parse_args()
    types = [t for t in SUPPORTED if args.types is None or t.name in args.types.split(",")]
    nmax = numba.config.NUMBA_NUM_THREADS
    cases = _cases(types, args.rows)
    for _, _, f in cases:  # compile / warm every kernel at both thread counts
        for nt in (1, nmax):
            numba.set_num_threads(nt)
            f()
    times = {(name, op): {1: [], nmax: []} for name, op, _ in cases}
    for rnd in range(args.rounds):
        order = (1, nmax) if rnd % 2 == 0 else (nmax, 1)
        for name, op, f in cases:
            for nt in order:
                numba.set_num_threads(nt)
                t0 = time.perf_counter()
                f()
                times[(name, op)][nt].append(time.perf_counter() - t0)
    numba.set_num_threads(nmax)
    lines = [f"Two threads over one, every kernel timed call by call in turn (`python benchmarks/cpu_threads.py "
             f"--rows {args.rows} --rounds {args.rounds}`; {nmax} threads, rows x 4096 Gaussian, medians). "
             "`fill`, `copy`: parallel writes of the dequantize output's size (memory bandwidth); `alu`: dependent "
             "float operations, no memory (the vCPUs' computation).", "",
             f"| type | op | 1 thread ms | {nmax} threads ms | x |", "|---|---|---|---|---|"]
    for (name, op), t in times.items():
        a, b = statistics.median(t[1]), statistics.median(t[nmax])
        lines.append(f"| {name} | {op} | {a * 1e3:.2f} | {b * 1e3:.2f} | {a / b:.2f} |")
        print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
