"""What two cores give on this machine: our one-thread kernel in N independent processes at once, against our
N-thread kernel, per type and operation, measured in one run.

    python benchmarks/cpu_cores.py                      # every type, quantize / +imatrix / dequantize
    python benchmarks/cpu_cores.py --types Q6_K --seconds 4

Issue 2 asks that all threads run >= 1.8x our one-thread figure. Processes share nothing in software (no Numba
thread pool, no reference counts, no allocator), so the aggregate throughput of N one-thread processes started
together is what the hardware gives N copies of the same work: when our threads scale like the processes, the
limit is the machine (memory bandwidth, shared caches, the host's scheduling of the vCPUs), not the kernel.

Each measurement is a fixed time window (calls counted), on a 1024 x 4096 Gaussian float32 matrix: windows of one
process alone and of N processes together alternate 3 times, then in one process 1-thread and N-thread windows
alternate 3 times; medians. The table goes to benchmarks/cpu_cores.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _setup(tname: str, op: str, rows: int):
    from pyquant import cpu, oracle
    from pyquant.formats import layout, qtype_of

    t = qtype_of(tname)
    k = cpu.kernels(t)
    lay = layout(t)
    x = np.random.default_rng(0).standard_normal((rows, 4096)).astype(np.float32)
    w = (np.abs(x).mean(axis=0) ** 2 + 1e-6).astype(np.float32)
    q = oracle.quantize(x, t)
    out_q = np.ones((rows, 4096 // lay.block_size * lay.type_size), np.uint8)
    out_f = np.ones_like(x)
    bad = np.zeros(rows, np.uint8)
    fn = {"quantize": lambda: k.quantize(x, out_q, bad),
          "quantize+imatrix": lambda: k.quantize_imatrix(x, w, out_q, bad),
          "dequantize": lambda: k.dequantize(q, out_f)}[op]
    fn()  # compiled (or loaded from the cache) and outputs touched before any window
    return fn, x.nbytes


def _window(fn, seconds: float) -> float:
    """Calls per second over a window of ``seconds``."""
    n = 0
    t0 = time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def child(tname: str, op: str, rows: int, start_at: float, seconds: float, rounds: int, index: int) -> None:
    """Windows at fixed wall-clock times: in even rounds only process 0 works (alone), in odd rounds all do."""
    import numba

    numba.set_num_threads(1)
    fn, _ = _setup(tname, op, rows)
    rates = {}
    for r in range(2 * rounds):
        time.sleep(max(0.0, start_at + r * (seconds + 0.5) - time.time()))
        if r % 2 or index == 0:
            rates[r] = _window(fn, seconds)
    print(json.dumps(rates), flush=True)


def processes(tname: str, op: str, rows: int, n: int, seconds: float, rounds: int = 3) -> tuple[float, float]:
    """Calls per second of one one-thread process alone and the aggregate of ``n`` of them at once, in windows
    that alternate ``rounds`` times (medians): this machine's speed drifts, so the two are measured in turn."""
    start_at = time.time() + 8.0  # room for every child to import and load its compiled kernel
    ps = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", tname, op, str(rows), repr(start_at),
                            repr(seconds), str(rounds), str(i)], stdout=subprocess.PIPE, text=True) for i in range(n)]
    rates = [{int(k): v for k, v in json.loads(p.communicate()[0].strip().splitlines()[-1]).items()} for p in ps]
    alone = [rates[0][r] for r in range(0, 2 * rounds, 2)]
    together = [sum(rt[r] for rt in rates) for r in range(1, 2 * rounds, 2)]
    return statistics.median(alone), statistics.median(together)


def threads(fn, n: int, seconds: float, rounds: int = 3) -> tuple[float, float]:
    """Calls per second of the kernel on 1 and on ``n`` threads, windows alternating ``rounds`` times (medians)."""
    import numba

    r1, rn = [], []
    for _ in range(rounds):
        numba.set_num_threads(1)
        r1.append(_window(fn, seconds))
        numba.set_num_threads(n)
        rn.append(_window(fn, seconds))
    return statistics.median(r1), statistics.median(rn)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", nargs="*", default=None)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "cpu_cores.md"))
    a = ap.parse_args(argv)
    import numba

    from pyquant import cpu
    from pyquant.formats import SUPPORTED, qtype_of

    n = numba.config.NUMBA_NUM_THREADS
    names = a.types or [t.name for t in SUPPORTED if t.name != "F32"]
    rows = []
    for tname in names:
        weighted = cpu.kernels(qtype_of(tname)).imatrix == cpu.WEIGHTED
        ops = ["quantize"] + (["quantize+imatrix"] if weighted else []) + ["dequantize"]
        for op in ops:
            fn, nbytes = _setup(tname, op, a.rows)
            alone, together = processes(tname, op, a.rows, n, a.seconds)
            t1, tn = threads(fn, n, a.seconds)
            mb = nbytes / 1e6
            rows.append((tname, op, alone * mb, together * mb, together / alone, t1 * mb, tn * mb, tn / t1))
            print(f"{tname:5s} {op:17s} 1 process {alone * mb:9.1f} MB/s  {n} processes {together * mb:9.1f} MB/s "
                  f"({together / alone:.2f}x)   threads 1 {t1 * mb:9.1f}  {n} {tn * mb:9.1f} MB/s ({tn / t1:.2f}x)",
                  flush=True)
    lines = [
        f"Our kernels on {os.cpu_count()} cores ({n} threads / processes), MB/s of float32, {a.rows}x4096 Gaussian,"
        f" {a.seconds:g} s windows. Processes: one-thread processes started together (aggregate); threads: one"
        " process, 1-thread and all-thread windows alternating. `python benchmarks/cpu_cores.py`",
        "",
        f"| type | op | 1 process | {n} processes | × | 1 thread | {n} threads | × |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {t} | {op} | {a1:.1f} | {an:.1f} | {ps:.2f} | {b1:.1f} | {bn:.1f} | {ts:.2f} |"
              for t, op, a1, an, ps, b1, bn, ts in rows]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"table written to {a.out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]),
              int(sys.argv[8]))
        raise SystemExit(0)
    raise SystemExit(main())
