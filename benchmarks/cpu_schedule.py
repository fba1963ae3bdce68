"""Numba's static row split against dynamic row chunks, two threads over one, per CPU kernel (session 4's A/B).

    python benchmarks/cpu_schedule.py [--rows 1024] [--chunks 0,16,64,128] [--rounds 15]

Calls each kernel itself (``.kernel``: no chunking of pyquant's own) under ``numba.parallel_chunksize(c)``
(0 = Numba's static split), one and two threads in turn every round, medians; prints two-thread speed-ups.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np

from pyquant import cpu
from pyquant.formats import layout, qtype_of

CASES = [("Q4_K", "q"), ("Q6_K", "q"), ("Q3_K", "i"), ("Q4_1", "q"), ("Q5_0", "i"), ("Q5_K", "d"), ("Q6_K", "d")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--chunks", default="0,16,64,128")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    chunks = [int(c) for c in args.chunks.split(",")]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, 4096)).astype(np.float32)
    w = rng.uniform(0.1, 2.0, 4096).astype(np.float32)
    bad = np.zeros(args.rows, np.uint8)
    for name, op in CASES:
        k = cpu.kernels(qtype_of(name))
        lay = layout(name)
        q = np.empty((args.rows, 4096 // lay.block_size * lay.type_size), np.uint8)
        k.quantize.kernel(x, q, bad)
        y = np.empty_like(x)
        f = {"q": lambda k=k, q=q: k.quantize.kernel(x, q, bad),
             "i": lambda k=k, q=q: k.quantize_imatrix.kernel(x, w, q, bad),
             "d": lambda k=k, q=q, y=y: k.dequantize.kernel(q, y)}[op]
        f()
        times = {(n, c): [] for n in (1, 2) for c in chunks}
        for _ in range(args.rounds):
            for key in times:
                numba.set_num_threads(key[0])
                with numba.parallel_chunksize(key[1]):
                    t0 = time.perf_counter()
                    f()
                    times[key].append(time.perf_counter() - t0)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        one = statistics.median(times[(1, 0)])
        line = f"{name} {dict(q='quantize', i='imatrix', d='dequantize')[op]:10s} 1 thread {one * 1e3:7.1f} ms;"
        for c in chunks:
            line += f" chunk {c}: x{one / statistics.median(times[(2, c)]):.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
