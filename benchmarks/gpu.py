#!/usr/bin/env python3
"""Device dequantize throughput per type and output dtype, as a share of the device's copy bandwidth.

    python benchmarks/gpu.py [--rows 8192 --cols 16384] [--reps 15] [--out benchmarks/gpu_results.md]

Both numbers come from the same run on the same device: the copy is a device-to-device memcpy of a buffer
several times the L2 size, counting bytes read plus bytes written; a dequantize moves its quantized input
(read once) and its float output (written once). The default tensor is 8192 x 16384 = 2**27 elements, so every
output (256 MiB at bf16 and up) and every pass streams through L2 many times over.

Timing: device events around a batch of back-to-back launches (the queue is kept busy by one launch before the
start event, so Python's launch overhead never shows as GPU idle time); the figure is the median over batches.
Input bytes are random (no zeros: they can run faster than real data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyquant  # noqa: E402
from pyquant.device import get_device, runtime  # noqa: E402
from pyquant.device import tensor as dtensor  # noqa: E402
from pyquant.formats import SUPPORTED, layout, row_bytes  # noqa: E402

OUTS = ("float32", "float16", "bfloat16")


def time_batches(dev, enqueue, batch: int, reps: int) -> list[float]:
    """Milliseconds per call of ``enqueue``: median-ready list, one value per batch."""
    enqueue()
    dev.synchronize()
    start, end = dev.event(), dev.event()
    out = []
    for _ in range(reps):
        enqueue()  # keeps the GPU busy while the start event and the batch are queued
        start.record()
        for _ in range(batch):
            enqueue()
        end.record()
        out.append(end.elapsed_ms(start) / batch)
    return out


def copy_bandwidth(dev, nbytes: int, batch: int, reps: int) -> tuple[float, float]:
    """(GB/s counting read + write, ms per copy) of a device-to-device copy of ``nbytes``."""
    rng = np.random.default_rng(0)
    a = dev.from_host(rng.integers(0, 256, nbytes, dtype=np.uint8))
    b = dev.empty(nbytes, "uint8")
    times = time_batches(dev, lambda: dev.backend.memcpy_dtod(b.ptr, a.ptr, nbytes), batch, reps)
    ms = statistics.median(times)
    return 2 * nbytes / (ms * 1e-3) / 1e9, ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=8192)
    ap.add_argument("--cols", type=int, default=16384)
    ap.add_argument("--reps", type=int, default=15, help="batches timed (the median is reported)")
    ap.add_argument("--batch", type=int, default=8, help="launches per timed batch")
    ap.add_argument("--types", default="", help="comma-separated type names (default: every supported type)")
    ap.add_argument("--out", default="", help="also write the markdown table here")
    args = ap.parse_args()

    dev = get_device("gpu")
    p = dev.properties
    rows, cols = args.rows, args.cols
    elems = rows * cols
    co = dev.code_object
    copy_bytes = max(8 * p.l2_cache_bytes, 512 << 20)
    bw, copy_ms = copy_bandwidth(dev, copy_bytes, args.batch, args.reps)

    types = [pyquant.qtype_of(t) for t in args.types.split(",") if t] or list(SUPPORTED)
    pool_bytes = max(row_bytes(t, cols) * rows for t in types if cols % layout(t).block_size == 0)
    rng = np.random.default_rng(1)
    pool = rng.integers(0, 256, pool_bytes, dtype=np.uint8)

    lines = [
        f"# Device dequantize throughput ({p.name}, {dev.vendor}, {p.arch}, code object {co.path.name})",
        "",
        f"Tensor {rows} x {cols} ({elems / 2**20:.0f} Mi elements); L2 {p.l2_cache_bytes / 2**20:.0f} MiB; "
        f"copy bandwidth {bw:.0f} GB/s (device-to-device memcpy of {copy_bytes / 2**20:.0f} MiB, read + write, "
        f"{copy_ms:.3f} ms); median of {args.reps} batches of {args.batch} launches, device events.",
        "",
        "| type | out | in MiB | out MiB | ms | GB/s | % of copy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    worst = []
    t0 = time.time()
    for t in types:
        if cols % layout(t).block_size:
            continue
        rb = row_bytes(t, cols)
        qt = pyquant.QTensor(pool[: rows * rb].reshape(rows, rb), t, (rows, cols))
        g = qt.to(dev)
        st = g._device
        for out_name in OUTS:
            out = dev.empty((rows, cols), out_name)
            spec = dtensor.dequantize_spec(t, dtensor.DEQUANTIZE_DTYPES[out_name], rows, cols)
            fn = dev.function(spec.kernel)
            grid, block = runtime.dim3(spec.grid, "grid"), runtime.dim3(spec.block, "block")
            packed = runtime.pack_args(spec.arg_types, (st.ptr, out.ptr, rows, cols, st.row_stride), spec.kernel)
            times = time_batches(
                dev, lambda fn=fn, grid=grid, block=block, spec=spec, packed=packed: dev.backend.launch(
                    fn, grid, block, spec.shared_mem, None, packed), args.batch, args.reps)
            ms = statistics.median(times)
            nin, nout = rows * rb, out.nbytes
            gbs = (nin + nout) / (ms * 1e-3) / 1e9
            pct = 100 * gbs / bw
            worst.append((pct, t.name, out_name))
            spread = (max(times) - min(times)) / ms * 100
            lines.append(f"| {t.name} | {out_name} | {nin / 2**20:.1f} | {nout / 2**20:.1f} | {ms:.4f} | {gbs:.0f} | "
                         f"{pct:.1f} |")
            print(f"{t.name:5s} {out_name:8s} {ms:8.4f} ms {gbs:7.0f} GB/s {pct:5.1f}% (spread {spread:.1f}%)",
                  file=sys.stderr, flush=True)
            del out
        del g
    worst.sort()
    lines += ["", f"Lowest: {', '.join(f'{n} {o} {p:.1f}%' for p, n, o in worst[:5])}. "
              f"Types at >= 90%: {sum(p >= 90 for p, _, _ in worst)} of {len(worst)}. ({time.time() - t0:.0f} s)"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
