"""CPU throughput of pyquant against ggml's C library (and gguf-py where it has the type), measured in one run.

For each type: quantize, quantize with an importance matrix, dequantize; MB/s of float32 (input for quantize,
output for dequantize); one thread and all threads; medians over repeats. ggml's quantizers are single-threaded
C calls: "all threads" runs them over row chunks in a thread pool (ctypes releases the GIL), as llama-quantize does.

    python benchmarks/cpu.py                       # 4096x4096 Gaussian + MiniLM weights, all types
    python benchmarks/cpu.py --types Q4_K Q6_K --repeats 5 --out benchmarks/cpu_table.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import pyquant  # noqa: E402
from pyquant import cpu, oracle  # noqa: E402
from pyquant.formats import SUPPORTED, layout  # noqa: E402


def median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def ggml_parallel(fn, x: np.ndarray, threads: int):
    if threads == 1:
        return fn(x)
    chunks = [c for c in np.array_split(np.arange(x.shape[0]), threads) if c.size]
    with ThreadPoolExecutor(threads) as ex:
        parts = list(ex.map(lambda idx: fn(x[idx[0]:idx[-1] + 1]), chunks))
    return np.concatenate(parts)


def gguf_py_quantize(x, t):
    import gguf.quants as gq

    return gq.quantize(x, t)


def gguf_py_has(t) -> bool:
    import gguf.quants as gq

    x = np.zeros((1, layout(t).block_size), np.float32)
    try:
        gq.quantize(x, t)
        return True
    except (NotImplementedError, KeyError, TypeError):
        return False


def bench_matrix(label: str, x: np.ndarray, types, repeats: int, all_threads: int):
    import gguf.quants as gq

    rows = []
    one_thread = {}  # (type, op) -> our one-thread MB/s, for the all-threads scaling column
    mb = x.nbytes / 1e6
    for t in types:
        lay = layout(t)
        if x.shape[1] % lay.block_size:
            continue
        weighted = cpu.kernels(t).imatrix == cpu.WEIGHTED
        w = (np.abs(x).mean(axis=0) ** 2 + 1e-6).astype(np.float32)
        q = pyquant.quantize(x[:2], t)  # compile outside the timing
        if weighted:
            pyquant.quantize(x[:2], t, imatrix=w)
        pyquant.dequantize(q.data, t)
        ref_bytes = oracle.quantize(x, t)
        for threads in (1, all_threads):
            numba.set_num_threads(threads)
            ops = [("quantize", lambda: pyquant.quantize(x, t), lambda: ggml_parallel(lambda a: oracle.quantize(a, t), x, threads))]
            if weighted:
                ops.append(("quantize+imatrix", lambda: pyquant.quantize(x, t, imatrix=w),
                            lambda: ggml_parallel(lambda a: oracle.quantize(a, t, imatrix=w), x, threads)))
            ops.append(("dequantize", lambda: pyquant.dequantize(ref_bytes, t),
                        lambda: ggml_parallel(lambda a: oracle.dequantize(a, t, x.shape[1]), ref_bytes, threads)))
            for op, ours, ggml in ops:
                t_ours = median_time(ours, repeats)
                t_ggml = median_time(ggml, repeats)
                gp = ""
                if threads == 1 and op != "quantize+imatrix" and (op == "dequantize" or gguf_py_has(t)):
                    try:
                        f = (lambda: gq.dequantize(ref_bytes, t)) if op == "dequantize" else (lambda: gguf_py_quantize(x, t))
                        gp = f"{median_time(f, max(1, repeats // 2)) / t_ours:.2f}x"
                    except Exception:  # gguf-py lacks it
                        gp = "–"
                if threads == 1:
                    one_thread[(t.name, op)] = mb / t_ours
                scale = "" if threads == 1 else f"{(mb / t_ours) / one_thread[(t.name, op)]:.2f}x"
                rows.append((label, t.name, op, threads, mb / t_ours, mb / t_ggml, t_ggml / t_ours, gp, scale))
                print(f"{label:10s} {t.name:5s} {op:17s} thr={threads} pyquant {mb / t_ours:9.1f} MB/s  ggml {mb / t_ggml:9.1f} MB/s"
                      f"  ratio {t_ggml / t_ours:5.2f}  vs gguf-py {gp}  scaling {scale}", flush=True)
    numba.set_num_threads(all_threads)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", nargs="*", default=[t.name for t in SUPPORTED if t.name != "F32"])
    ap.add_argument("--size", type=int, default=4096, help="Gaussian matrix is SIZE x SIZE (default 4096)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "cpu_table.md"))
    a = ap.parse_args(argv)
    types = [pyquant.qtype_of(n) for n in a.types]
    all_threads = numba.config.NUMBA_NUM_THREADS
    x = np.random.default_rng(0).standard_normal((a.size, a.size)).astype(np.float32)
    rows = bench_matrix(f"gauss{a.size}", x, types, a.repeats, all_threads)
    if not a.no_minilm:
        import safetensors.numpy as stn

        from pyquant.data import minilm_path

        ws = [v.astype(np.float32) for v in stn.load_file(str(minilm_path())).values() if v.ndim == 2]
        for width in sorted({w.shape[1] for w in ws}):
            same = np.concatenate([w for w in ws if w.shape[1] == width])
            rows += bench_matrix(f"minilm-{width}", same, types, a.repeats, all_threads)
    lines = [
        f"CPU throughput, MB/s of float32; {os.cpu_count()} cores, all threads = {all_threads}; medians of {a.repeats};"
        " ratio = pyquant / ggml (same run); gguf-py column = pyquant / gguf-py (1 thread);"
        " scaling = pyquant all threads / pyquant one thread",
        "",
        "| data | type | op | threads | pyquant MB/s | ggml MB/s | × ggml | × gguf-py | scaling |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {d} | {t} | {op} | {th} | {o:.1f} | {g:.1f} | {r:.2f} | {gp} | {sc} |" for d, t, op, th, o, g, r, gp, sc in rows]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"table written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
