"""CPU throughput of pyquant against ggml's C library (and gguf-py where it has the type), measured in one run.

For each type: quantize, quantize with an importance matrix, dequantize; MB/s of float32 (input for quantize,
output for dequantize); one thread and all threads; medians over repeats. ggml's quantizers are single-threaded
C calls: "all threads" runs them over row chunks in a thread pool (ctypes releases the GIL), as llama-quantize does.

    python benchmarks/cpu.py                       # 4096x4096 Gaussian + MiniLM weights, all types
    python benchmarks/cpu.py --types Q4_K Q6_K --repeats 5 --out benchmarks/cpu_table.md
"""

# ruff: noqa: B023  (the timing lambdas are called inside the iteration that defines them)
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


def ggml_parallel(fn, x: np.ndarray, threads: int, out: np.ndarray | None = None):
    """ggml's single-threaded C over row chunks in a thread pool; with ``out``, each chunk writes its rows of it."""
    if threads == 1:
        return fn(x) if out is None else fn(x, out)
    chunks = [c for c in np.array_split(np.arange(x.shape[0]), threads) if c.size]
    with ThreadPoolExecutor(threads) as ex:
        if out is not None:
            list(ex.map(lambda idx: fn(x[idx[0]:idx[-1] + 1], out[idx[0]:idx[-1] + 1]), chunks))
            return out
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


@numba.njit(parallel=True, cache=True)
def _stream(src, dst):
    """The memory traffic of a dequantize with none of its arithmetic: read ``src``, write every float of ``dst``
    (a new array, as pyquant.dequantize and the oracle both allocate), rows in parallel."""
    for r in numba.prange(dst.shape[0]):
        s = np.float32(src[r, 0])
        for j in range(dst.shape[1]):
            dst[r, j] = s
    return dst


@numba.njit(parallel=True, cache=True)
def _traffic(src, dst):
    """An operation's memory traffic with none of its arithmetic: read every byte of each row of ``src`` (as
    uint32 words), write every byte of the same row of ``dst`` (rows in parallel, as the kernels run)."""
    for r in numba.prange(dst.shape[0]):
        m = np.uint32(0)
        for j in range(src.shape[1]):
            m |= src[r, j]
        for j in range(dst.shape[1]):
            dst[r, j] = m


def traffic_ceiling(src: np.ndarray, dst_shape: tuple, dst_dtype, threads: int, repeats: int, prealloc: bool):
    """Seconds that ``threads`` threads take to read ``src`` and write an array of ``dst_shape``/``dst_dtype`` (a new
    one per call unless ``prealloc``): the floor under any operation with that traffic on this machine, measured
    beside it. Used for the scaling bound: our all-threads time is at least this, so all threads over our one
    thread is at most ``our one-thread time / this``."""
    s32 = np.ascontiguousarray(src).view(np.uint8).reshape(src.shape[0], -1)
    s32 = s32[:, : s32.shape[1] // 4 * 4].copy().view(np.uint32)
    nbytes = int(np.prod(dst_shape)) * np.dtype(dst_dtype).itemsize
    words = (src.shape[0], nbytes // src.shape[0] // 4)
    dst = np.ones(words, np.uint32)
    numba.set_num_threads(threads)
    _traffic(s32[:2], dst[:2])
    fn = (lambda: _traffic(s32, dst)) if prealloc else (lambda: _traffic(s32, np.empty(words, np.uint32)))
    return median_time(fn, repeats)


def bench_memory(x: np.ndarray, repeats: int, all_threads: int, prealloc: bool = False):
    """The ceiling for memory-bound operations on this machine: a parallel fill of a float32 array of x's size
    (from a quarter of its bytes, as a 4-bit dequantize reads), one thread and all threads; a new array per call
    as the API allocates, or one allocated once (``prealloc``)."""
    src = np.zeros((x.shape[0], x.shape[1] // 8), np.uint32)
    _stream(src[:2], np.empty((2, x.shape[1]), np.float32))
    dst = np.ones(x.shape, np.float32)
    rows = []
    one = None
    for threads in (1, all_threads):
        numba.set_num_threads(threads)
        t = median_time((lambda: _stream(src, dst)) if prealloc else (lambda: _stream(src, np.empty(x.shape, np.float32))),
                        repeats)
        mbs = x.nbytes / 1e6 / t
        one = one or mbs
        scale = "" if threads == 1 else f"{mbs / one:.2f}x"
        what = "memory fill (ceiling)" + (", preallocated" if prealloc else ", new array")
        rows.append((f"gauss{x.shape[0]}", "-", what, threads, mbs, float("nan"), float("nan"), "", scale, ""))
        print(f"{what} ({x.nbytes >> 20} MiB float32) thr={threads}: {mbs:9.1f} MB/s  scaling {scale}", flush=True)
    numba.set_num_threads(all_threads)
    return rows


def bench_matrix(label: str, x: np.ndarray, types, repeats: int, all_threads: int, prealloc: bool = False):
    """``prealloc``: both sides write into output arrays allocated (and touched) once, so the kernels are timed
    without the page faults of a fresh output (ours: the registered Numba kernels themselves, ggml: the same C
    calls with ``out=``); otherwise the public API as users call it, each call allocating its output."""
    import gguf.quants as gq

    rows = []
    mb = x.nbytes / 1e6
    for t in types:
        lay = layout(t)
        if x.shape[1] % lay.block_size:
            continue
        k = cpu.kernels(t)
        weighted = k.imatrix == cpu.WEIGHTED
        w = (np.abs(x).mean(axis=0) ** 2 + 1e-6).astype(np.float32)
        q = pyquant.quantize(x[:2], t)  # compile outside the timing
        if weighted:
            pyquant.quantize(x[:2], t, imatrix=w)
        pyquant.dequantize(q.data, t)
        ref_bytes = oracle.quantize(x, t)
        # each op: (name, ours(threads), ggml(threads)); numba's thread count is set by the caller
        if prealloc:
            qo, qo2 = np.ones_like(ref_bytes), np.ones_like(ref_bytes)
            fo, fo2 = np.ones_like(x), np.ones_like(x)
            bad = np.zeros(x.shape[0], np.uint8)
            ops = [("quantize", lambda th: k.quantize(x, qo, bad),
                    lambda th: ggml_parallel(lambda a, o: oracle.quantize(a, t, out=o), x, th, qo2))]
            if weighted:
                ops.append(("quantize+imatrix", lambda th: k.quantize_imatrix(x, w, qo, bad),
                            lambda th: ggml_parallel(lambda a, o: oracle.quantize(a, t, imatrix=w, out=o), x, th, qo2)))
            ops.append(("dequantize", lambda th: k.dequantize(ref_bytes, fo),
                        lambda th: ggml_parallel(lambda a, o: oracle.dequantize(a, t, x.shape[1], out=o), ref_bytes,
                                                 th, fo2)))
        else:
            ops = [("quantize", lambda th: pyquant.quantize(x, t),
                    lambda th: ggml_parallel(lambda a: oracle.quantize(a, t), x, th))]
            if weighted:
                ops.append(("quantize+imatrix", lambda th: pyquant.quantize(x, t, imatrix=w),
                            lambda th: ggml_parallel(lambda a: oracle.quantize(a, t, imatrix=w), x, th)))
            ops.append(("dequantize", lambda th: pyquant.dequantize(ref_bytes, t),
                        lambda th: ggml_parallel(lambda a: oracle.dequantize(a, t, x.shape[1]), ref_bytes, th)))
        for op, ours, ggml in ops:
            # ours and ggml, one thread and all threads, all four timed in turn in every round: this machine's
            # speed drifts by tens of percent over minutes, and the scaling column compares two of these timings
            times = {}
            for _ in range(1 + repeats):  # the first round (page faults of the outputs, compilation) is dropped
                for threads in (1, all_threads):
                    numba.set_num_threads(threads)
                    for side, fn in (("ours", ours), ("ggml", ggml)):
                        t0 = time.perf_counter()
                        fn(threads)
                        times.setdefault((side, threads), []).append(time.perf_counter() - t0)
            med = {key: statistics.median(v[1:]) for key, v in times.items()}
            src, dshape, ddt = (ref_bytes, x.shape, np.float32) if op == "dequantize" else (x, ref_bytes.shape, np.uint8)
            for threads in (1, all_threads):
                t_ours, t_ggml = med[("ours", threads)], med[("ggml", threads)]
                gp = ""
                if t.name == "Q8_1" and op == "dequantize":
                    gp = "(ggml has no Q8_1 dequantizer: the 'ggml' column is numpy's d * q)"
                elif threads == 1 and op != "quantize+imatrix" and (op == "dequantize" or gguf_py_has(t)):
                    try:
                        f = (lambda: gq.dequantize(ref_bytes, t)) if op == "dequantize" else (lambda: gguf_py_quantize(x, t))
                        gp = f"{median_time(f, max(1, repeats // 2)) / t_ours:.2f}x"
                    except Exception:  # gguf-py lacks it
                        gp = "–"
                scale = bound = ""
                if threads > 1:
                    t1 = med[("ours", 1)]
                    bound = f"{t1 / traffic_ceiling(src, dshape, ddt, threads, repeats, prealloc):.2f}x"
                    scale = f"{t1 / t_ours:.2f}x"
                rows.append((label, t.name, op, threads, mb / t_ours, mb / t_ggml, t_ggml / t_ours, gp, scale, bound))
                print(f"{label:10s} {t.name:5s} {op:17s} thr={threads} pyquant {mb / t_ours:9.1f} MB/s  ggml {mb / t_ggml:9.1f} MB/s"
                      f"  ratio {t_ggml / t_ours:5.2f}  vs gguf-py {gp}  scaling {scale} (bound {bound})", flush=True)
    numba.set_num_threads(all_threads)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", nargs="*", default=[t.name for t in SUPPORTED if t.name != "F32"])
    ap.add_argument("--size", type=int, default=4096, help="Gaussian matrix is SIZE x SIZE (default 4096)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--out", default=None, help="table path (default benchmarks/cpu_table[_prealloc].md)")
    ap.add_argument("--prealloc", action="store_true",
                    help="time the kernels into preallocated outputs, both sides (no page faults of fresh outputs)")
    a = ap.parse_args(argv)
    if a.out is None:
        a.out = os.path.join(os.path.dirname(__file__), "cpu_table_prealloc.md" if a.prealloc else "cpu_table.md")
    types = [pyquant.qtype_of(n) for n in a.types]
    all_threads = numba.config.NUMBA_NUM_THREADS
    x = np.random.default_rng(0).standard_normal((a.size, a.size)).astype(np.float32)
    rows = bench_memory(x, a.repeats, all_threads, a.prealloc)
    rows += bench_matrix(f"gauss{a.size}", x, types, a.repeats, all_threads, a.prealloc)
    if not a.no_minilm:
        import safetensors.numpy as stn

        from pyquant.data import minilm_path

        ws = [v.astype(np.float32) for v in stn.load_file(str(minilm_path())).values() if v.ndim == 2]
        for width in sorted({w.shape[1] for w in ws}):
            same = np.concatenate([w for w in ws if w.shape[1] == width])
            rows += bench_matrix(f"minilm-{width}", same, types, a.repeats, all_threads, a.prealloc)
    lines = [
        f"CPU throughput, MB/s of float32; {os.cpu_count()} cores, all threads = {all_threads}; medians of {a.repeats}"
        f" (ours and ggml alternating); {'kernels into preallocated outputs' if a.prealloc else 'the public API'};"
        " ratio = pyquant / ggml (same run); gguf-py column = pyquant / gguf-py (1 thread);"
        " scaling = pyquant all threads / pyquant one thread; bound = the most that scaling can be here: pyquant's"
        " one-thread time over the time all threads take just to read the operation's input and write its output"
        " (measured in the same run, `_traffic`)",
        "",
        "| data | type | op | threads | pyquant MB/s | ggml MB/s | × ggml | × gguf-py | scaling | bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {d} | {t} | {op} | {th} | {o:.1f} | {g:.1f} | {r:.2f} | {gp} | {sc} | {b} |"
              for d, t, op, th, o, g, r, gp, sc, b in rows]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"table written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
