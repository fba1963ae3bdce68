"""Benchmark ``pyquant.linear`` on a GPU (issue 4): every type, three weight shapes, n activation columns.

    python benchmarks/matmul.py [--quick] [--out DIR] [--variants DIR]

Per (type, shape, n): the GPU time of one ``linear`` call (activation quantization or conversion included),
measured by replaying a CUDA graph of it (no Python launch overhead between kernels), median of several
replay batches; weight GB/s (quantized weight bytes / time), TFLOP/s (2 m k n / time) and the ratio to ggml's
own kernels on an H100 (shared/anchors/README.md: 4096 x 14336, n = 1, 8, 512). Same-run references: the
device-to-device copy bandwidth and torch's cuBLAS fp16 ``W @ x``. For n > 8 both paths are timed (mat-vec
passes, dequantize + GEMM) and "best" is the faster. ``--variants DIR`` also times tuning variants of the
mat-vec kernels (cubins built by benchmarks/matmul_variants.py) on a subset.

Weights are random bytes in each type's layout with finite, moderate scale fields (the timing does not depend
on the values); the weights of the 4096 x 14336 4-bit types fit in the H100's 50 MB L2, as in ggml's run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyquant  # noqa: E402
from pyquant.device import launch_matmul as lm  # noqa: E402
from pyquant.formats import SUPPORTED, layout, row_bytes  # noqa: E402

SHAPES = ((4096, 14336), (14336, 4096), (28672, 8192))
NS = (1, 2, 4, 8, 16, 64, 512)

# ggml (test-backend-ops perf -o MUL_MAT, H100, 4096 x 14336): type -> (n=1 us, n=8 us, n=512 us)
GGML_ANCHOR = {
    "F16": (40.56, 47.34, 143.1), "BF16": (40.26, 47.10, 122.0), "Q4_0": (14.83, 35.72, 320.8),
    "Q4_1": (13.18, 32.63, 353.7), "Q5_0": (19.04, 39.05, 361.1), "Q5_1": (20.34, 38.19, 386.9),
    "Q8_0": (27.63, 46.06, 333.7), "Q2_K": (16.97, 59.29, 541.2), "Q3_K": (29.14, 65.73, 436.5),
    "Q4_K": (18.01, 69.65, 357.0), "Q5_K": (20.48, 71.64, 377.3), "Q6_K": (30.05, 62.73, 429.1),
    "MXFP4": (20.45, 40.51, 330.1), "IQ4_NL": (16.89, 35.72, 324.6), "IQ4_XS": (15.33, 35.72, 297.2),
}


def random_weights(qtype, m: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(m, row_bytes) bytes of ``qtype`` with random quants and scale fields in [2^-10, 2^-4) (fp16/float)."""
    lay = layout(qtype)
    if not lay.is_quantized:
        w = (rng.standard_normal((m, k), dtype=np.float32) * np.float32(0.05))
        if lay.name == "F32":
            return w.view(np.uint8).reshape(m, -1)
        if lay.name == "F16":
            return w.astype(np.float16).view(np.uint8).reshape(m, -1)
        return (w.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(m, -1)
    nb = k // lay.block_size
    data = rng.integers(0, 256, size=(m, nb, lay.type_size), dtype=np.uint8)
    for f in lay.fields:
        if f.ctype == "half":
            h = rng.uniform(2.0**-10, 2.0**-4, size=(m, nb, f.count)).astype(np.float16)
            data[:, :, f.offset:f.offset + f.nbytes] = h.view(np.uint8).reshape(m, nb, -1)
        elif f.ctype == "float":
            v = rng.uniform(2.0**-10, 2.0**-4, size=(m, nb, f.count)).astype(np.float32)
            data[:, :, f.offset:f.offset + f.nbytes] = v.view(np.uint8).reshape(m, nb, -1)
        elif lay.name == "MXFP4" and f.name == "e":  # E8M0 scale: 2^-10 .. 2^-4 as well
            data[:, :, f.offset] = rng.integers(117, 124, size=(m, nb), dtype=np.uint8)
    return data.reshape(m, nb * lay.type_size)


class GraphTimer:
    """Times work enqueued on a stream by capturing it into a CUDA graph and replaying it.

    The graph holds ``calls`` back-to-back copies of the work, as ggml's test-backend-ops perf puts its op into one
    graph n_runs times: the time per call then excludes the device's fixed cost of starting a graph (about 1-2 us
    on an H100), which a call inside a model's graph does not pay either. ``calls = 0`` picks enough copies for a
    graph of about ``graph_us`` (at most 64); ``calls = 1`` is one call per graph (sessions 1-4's figures).
    """

    def __init__(self, dev, calls: int = 0, graph_us: float = 400.0):
        from cuda.bindings import driver

        self.d = driver
        self.dev = dev
        self.stream = dev.stream()
        self.calls = calls
        self.graph_us = graph_us

    def _ok(self, r, what):
        err = r[0] if isinstance(r, tuple) else r
        if int(err) != 0:
            raise RuntimeError(f"{what}: {err}")
        return r[1] if isinstance(r, tuple) and len(r) > 1 else None

    def _graph(self, enqueue, calls: int):
        d, s = self.d, self.stream
        self._ok(d.cuStreamBeginCapture(s.handle, d.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED), "capture")
        try:
            for _ in range(calls):
                enqueue(s)
        finally:
            graph = self._ok(d.cuStreamEndCapture(s.handle), "end capture")
        try:
            return graph, self._ok(d.cuGraphInstantiate(graph, 0), "instantiate")
        except Exception:
            d.cuGraphDestroy(graph)
            raise

    def _replay_ms(self, gexec, reps: int) -> float:
        s = self.stream
        e0, e1 = self.dev.event(), self.dev.event()
        e0.record(s)
        for _ in range(reps):
            self._ok(self.d.cuGraphLaunch(gexec, s.handle), "launch")
        e1.record(s)
        return e1.elapsed_ms(e0)

    def time_us(self, enqueue, target_ms: float = 3.0, batches: int = 7) -> float:
        """Median over ``batches`` replay batches of the time per call of ``enqueue``, in microseconds."""
        d, s = self.d, self.stream
        enqueue(s)  # warm-up: module loads, scratch allocation, library handles
        s.synchronize()
        calls = self.calls
        if calls <= 0:  # size the graph from one call's time
            graph, gexec = self._graph(enqueue, 1)
            try:
                self._replay_ms(gexec, 1)
                one_us = max(self._replay_ms(gexec, 3) * 1e3 / 3, 1.0)
            finally:
                d.cuGraphExecDestroy(gexec)
                d.cuGraphDestroy(graph)
            calls = int(min(64, max(1, self.graph_us / one_us)))
        graph, gexec = self._graph(enqueue, calls)
        try:
            one = max(self._replay_ms(gexec, 1), 1e-3)
            reps = int(min(500, max(3, target_ms / one)))
            times = [self._replay_ms(gexec, reps) * 1e3 / (reps * calls) for _ in range(batches)]
            return statistics.median(times)
        finally:
            d.cuGraphExecDestroy(gexec)
            d.cuGraphDestroy(graph)


def torch_refs(shapes, ns, out_lines):
    """Copy bandwidth and torch cuBLAS fp16 W @ x (median of 50 event-timed calls), same run."""
    try:
        import torch
    except ImportError:
        return {}
    res = {}
    a = torch.empty(256 * 2**20, dtype=torch.float32, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(10):
        st.record()
        b.copy_(a)
        en.record()
        en.synchronize()
        ts.append(st.elapsed_time(en))
    res["copy_GBps"] = 2 * a.numel() * 4 / (statistics.median(ts) * 1e-3) / 1e9
    del a, b
    for m, k in shapes:
        w = torch.randn(m, k, dtype=torch.float16, device="cuda")
        for n in ns:
            x = torch.randn(k, n, dtype=torch.float16, device="cuda")
            for _ in range(5):
                w @ x
            ts = []
            for _ in range(50):
                st.record()
                w @ x
                en.record()
                en.synchronize()
                ts.append(st.elapsed_time(en) * 1e3)
            res[f"torch_f16_{m}x{k}_n{n}"] = statistics.median(ts)
        del w
    torch.cuda.empty_cache()
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one shape, fewer types")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--variants", default=None, help="directory of tuning-variant cubins (matmul_variants.py)")
    ap.add_argument("--types", default=None)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--ns", default=None, help="comma-separated batch sizes (default: all)")
    ap.add_argument("--shapes", default=None, help="comma-separated MxK shapes (default: all)")
    ap.add_argument("--calls-per-graph", type=int, default=0, help="copies of the call in each timed CUDA graph "
                    "(0: enough for ~400 us, as ggml's perf repeats its op in one graph; 1: one call per graph)")
    ap.add_argument("--retable", action="store_true", help="only rewrite OUT/matmul.md from OUT/matmul.json and "
                    "OUT/ggml-perf.log")
    args = ap.parse_args()
    if args.retable:
        retable(Path(args.out))
        return 0
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    dev = pyquant.device.get_device("gpu")
    print(f"device: {dev!r}, {dev.properties.multiprocessors} SMs, L2 {dev.properties.l2_cache_bytes >> 20} MiB",
          flush=True)
    timer = GraphTimer(dev, calls=args.calls_per_graph)
    rng = np.random.default_rng(0)
    types = [t for t in SUPPORTED if t.name not in ("Q8_1", "Q8_K")]  # ggml has no matmul on these two
    if args.types:
        types = [t for t in SUPPORTED if t.name in args.types.split(",")]
    shapes = SHAPES[:1] if args.quick else SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in sh.split("x")) for sh in args.shapes.split(",")]
    ns = [int(v) for v in args.ns.split(",")] if args.ns else NS
    t_start = time.time()
    refs = {} if args.no_torch else torch_refs(shapes, ns, [])
    print(f"references: {json.dumps({k: round(v, 2) for k, v in refs.items()})}", flush=True)

    rows = []
    for m, k in shapes:
        for t in types:
            data = random_weights(t, m, k, rng)
            q = pyquant.QTensor(data, t, (m, k)).to(dev)
            wbytes = m * row_bytes(t, k)
            for n in ns:
                x = dev.from_host(rng.standard_normal((n, k), dtype=np.float32))
                out = dev.empty((n, m), "float32")
                quantized = layout(t).is_quantized
                paths = ["mmv"] if n <= lm.MAX_NCOLS and (quantized or n == 1) else ["mmv", "gemm"]
                if n > 64:
                    paths = ["gemm", "mmv"] if quantized else ["gemm"]
                res = {}
                for p in paths:
                    try:
                        res[p] = timer.time_us(lambda s, p=p, x=x, q=q, out=out: pyquant.linear(x, q, out=out, path=p,
                                                                                             stream=s))
                    except Exception as e:  # noqa: BLE001 - report and go on
                        print(f"  {t.name} {m}x{k} n={n} {p}: FAILED {e}", flush=True)
                if not res:
                    continue
                best = min(res, key=res.get)
                us = res[best]
                row = {"type": t.name, "m": m, "k": k, "n": n, "us": us, "path": best,
                       **{f"us_{p}": v for p, v in res.items()},
                       "weight_GBps": wbytes / (us * 1e-6) / 1e9, "TFLOPs": 2 * m * k * n / (us * 1e-6) / 1e12}
                anchor = GGML_ANCHOR.get(t.name)
                if anchor and (m, k) == (4096, 14336) and n in (1, 8, 512):
                    row["ggml_us"] = anchor[{1: 0, 8: 1, 512: 2}[n]]
                    row["speedup_vs_ggml"] = row["ggml_us"] / us
                tref = refs.get(f"torch_f16_{m}x{k}_n{n}")
                if tref:
                    row["torch_f16_us"] = tref
                if quantized and (m, k) == (4096, 14336) and n in (1, 8):
                    row.update(kernel_split(dev, timer, q, x, n, m, k))
                rows.append(row)
                extra = f" H100 anchor {row['ggml_us']:.1f} -> x{row['speedup_vs_ggml']:.2f}" if "ggml_us" in row else ""
                if "us_matvec_only" in row:
                    extra += f" [quantize {row['us_quantize_only']:.1f} + matvec {row['us_matvec_only']:.1f}]"
                print(f"{t.name:5s} {m:5d}x{k:5d} n={n:3d} {us:9.2f} us ({best:4s}) {row['weight_GBps']:7.0f} GB/s "
                      f"{row['TFLOPs']:7.2f} TF{extra}" + "".join(f" {p}={v:.1f}" for p, v in res.items()), flush=True)
                del x, out
            del q
    variants = run_variants(dev, timer, args.variants, rng) if args.variants else []
    (out_dir / "matmul.json").write_text(json.dumps({"device": repr(dev), "refs": refs, "rows": rows,
                                                    "variants": variants}, indent=1))
    write_table(rows, refs, out_dir / "matmul.md", repr(dev))
    if (out_dir / "ggml-perf.log").exists():  # matmul_run.sh times ggml first when it is built
        retable(out_dir)
    print(f"total {time.time() - t_start:.0f}s", flush=True)
    print((out_dir / "matmul.md").read_text())
    return 0


def kernel_split(dev, timer, q, x, n, m, k) -> dict:
    """The two kernels of one mat-vec call timed apart: activation quantization and the mat-vec itself."""
    ka = lm.padded_act(k)
    act = dev.empty((n * ka + n * ka // 32 * 4,), "uint8")
    out = dev.empty((n, m), "float32")
    st = q._device
    qspec = lm.quantize_spec("f32", n, k, True, lm.act_interleaved(q.qtype))
    mspec = lm.matvec_spec(q.qtype, n, m, dev.arch)
    dev.launch(qspec, (x.ptr, act.ptr, n, k, k, ka))
    margs = (st.ptr, act.ptr, act.ptr + n * ka, out.ptr, m, k, st.row_stride, ka, m)
    return {"us_quantize_only": timer.time_us(lambda s: dev.launch(qspec, (x.ptr, act.ptr, n, k, k, ka), s)),
            "us_matvec_only": timer.time_us(lambda s: dev.launch(mspec, margs, s))}


def ggml_perf(path: Path) -> dict:
    """{(TYPE, m, k, n): us} from test-backend-ops perf -o MUL_MAT output, if the file exists."""
    import re

    got = {}
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            g = re.search(r"type_a=(\w+),type_b=f32,m=(\d+),n=(\d+),k=(\d+),.*?([\d.]+) us/run", line)
            if g:
                got[(g.group(1).upper(), int(g.group(2)), int(g.group(4)), int(g.group(3)))] = float(g.group(5))
    return got


def retable(out_dir: Path) -> None:
    """Rewrite matmul.md from matmul.json, with ggml's times from ggml-perf.log of the same call where present
    (else the anchors)."""
    d = json.loads((out_dir / "matmul.json").read_text())
    same_run = ggml_perf(out_dir / "ggml-perf.log")
    for r in d["rows"]:
        g = same_run.get((r["type"], r["m"], r["k"], r["n"]))
        if g:
            r["ggml_us"], r["speedup_vs_ggml"] = g, g / r["us"]
        elif same_run:  # ggml ran in this call but not this case: no ratio to another machine's anchor
            r.pop("ggml_us", None)
            r.pop("speedup_vs_ggml", None)
    write_table(d["rows"], d["refs"], out_dir / "matmul.md", d["device"],
                "ggml: test-backend-ops perf in the same call" if same_run else "ggml: the anchors")


def write_table(rows, refs, path: Path, device: str, ggml_source: str = "ggml: the anchors") -> None:
    lines = [f"device: {device}; same-run copy {refs.get('copy_GBps', float('nan')):.0f} GB/s (read + write); "
             f"{ggml_source}", ""]
    lines.append("| type | m x k | n | us | path | weight GB/s | TFLOP/s | ggml us | vs ggml | torch f16 us |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lines.append(
            f"| {r['type']} | {r['m']}x{r['k']} | {r['n']} | {r['us']:.2f} | {r['path']} | {r['weight_GBps']:.0f} | "
            f"{r['TFLOPs']:.2f} | {r.get('ggml_us', '')} | "
            f"{format(r['speedup_vs_ggml'], '.2f') if 'speedup_vs_ggml' in r else ''} | "
            f"{format(r['torch_f16_us'], '.1f') if 'torch_f16_us' in r else ''} |")
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------- tuning variants


def run_variants(dev, timer, directory, rng):
    """Time the mat-vec kernels of each variant cubin (same kernels, other geometry) on a subset of cases."""
    vdir = Path(directory)
    cfgs = json.loads((vdir / "variants.json").read_text())
    results = []
    types = os.environ.get("VARIANT_TYPES", "Q4_0,Q4_1,Q5_0,Q5_1,Q8_0,Q5_K,IQ4_NL,MXFP4").split(",")
    big = [t for t in os.environ.get("VARIANT_BIG", "Q4_1,Q8_0").split(",") if t]
    ns = tuple(int(v) for v in os.environ.get("VARIANT_NS", "1").split(","))
    big_ns = tuple(int(v) for v in os.environ.get("VARIANT_BIG_NS", "1").split(","))
    cases = [(t, 4096, 14336, ns) for t in types] + [(t, 28672, 8192, big_ns) for t in big]
    weights, first = {}, {}
    for name, cfg in cfgs.items():
        module = dev.backend.load_module((vdir / cfg["file"]).read_bytes(), "cubin")
        for tname, m, k, case_ns in cases:
            t = pyquant.qtype_of(tname)
            if (tname, m, k) not in weights:
                weights[(tname, m, k)] = pyquant.QTensor(random_weights(t, m, k, rng), t, (m, k)).to(dev)
            q = weights[(tname, m, k)]
            st = q._device
            kp = lm.padded_act(k) if layout(t).is_quantized else lm.padded(k)
            for n in case_ns:
                # the same x for every variant: each output is compared with the first variant's
                x = dev.from_host(np.random.default_rng((m, k, n)).standard_normal((n, k), dtype=np.float32))
                out = dev.empty((n, m), "float32")
                quantized = layout(t).is_quantized
                if quantized:
                    act = dev.empty((n * kp + n * kp // 32 * 4,), "uint8")
                    nw = cfg["nwarps"][n - 1]
                    rpw = min(cfg["rpw"][n - 1], cfg.get("rpw_max", {}).get(lm.ggml_name(t), lm.MAX_NCOLS))
                    fn = dev.backend.get_function(module, lm.mmvq_kernel_name(t, n))
                else:
                    act = dev.empty((n * kp * 4,), "uint8")
                    nw, rpw = cfg["fnwarps"][n - 1], cfg["frpw"][n - 1]
                    fn = dev.backend.get_function(module, lm.mmvf_kernel_name(t, n))
                grid = (math.ceil(m / rpw), 1, 1)
                block = (nw * 32, 1, 1)
                from pyquant.device.runtime import pack_args

                interleaved = quantized and lm.act_interleaved(t)
                # float32 rows of kp floats are read in place, as pyquant.linear does
                xin = x.ptr if not quantized and k == kp else act.ptr
                margs = pack_args(lm.MMV_ARGS, (st.ptr, xin, act.ptr + n * kp, out.ptr, m, k, st.row_stride,
                                                k if xin == x.ptr else kp, m))

                def enqueue(s, quantized=quantized, x=x, act=act, fn=fn, grid=grid, block=block, margs=margs, n=n,
                            k=k, kp=kp, il=interleaved):
                    if quantized:
                        dev.launch(lm.quantize_spec("f32", n, k, True, il), (x.ptr, act.ptr, n, k, k, kp), s)
                    elif k != kp:
                        dev.launch(lm.convert_spec("f32", "f32", n, k), (x.ptr, act.ptr, n, k, k, kp), s)
                    dev.backend.launch(fn, grid, block, 0, s.handle, margs, overlap=True)  # as pyquant.linear

                us = timer.time_us(enqueue)
                wbytes = m * row_bytes(t, k)
                # a wrong variant must not pass for a fast one: its output against the first variant's (another
                # geometry sums in another order: ~1e-6 apart)
                y = out.cpu().astype(np.float64)
                y0 = first.setdefault((tname, m, k, n), y)
                dev_rel = float(np.abs(y - y0).max() / max(np.abs(y0).max(), 1e-30))
                results.append({"variant": name, "type": tname, "m": m, "k": k, "n": n, "us": us,
                                "weight_GBps": wbytes / (us * 1e-6) / 1e9, "rel_diff_to_first": dev_rel})
                print(f"variant {name:8s} {tname:5s} {m}x{k} n={n}: {us:8.2f} us {wbytes / us / 1e3:7.0f} GB/s"
                      f"{'' if dev_rel < 1e-4 else f'  WRONG: {dev_rel:.2e} from the first variant'}", flush=True)
        dev.backend.unload_module(module)
    return results


if __name__ == "__main__":
    sys.exit(main())
