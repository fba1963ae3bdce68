"""llama.cpp importance-matrix files: the GGUF format and the legacy ``.dat`` format.

Follows llama.cpp's ``tools/imatrix/imatrix.cpp`` (writers), ``common/imatrix-loader.cpp`` and
``tools/quantize/quantize.cpp`` (``load_imatrix``: how the stored sums become the per-column weights that
``quantize_<type>(…, quant_weights)`` receives) (MIT).

- GGUF: ``general.type = "imatrix"``, ``imatrix.datasets``, ``imatrix.chunk_count``, ``imatrix.chunk_size``;
  per weight tensor ``<name>.in_sum2`` (F32, ne = [n_per_row, n_mat]: sums of squared activations) and
  ``<name>.counts`` (F32, ne = [1, n_mat]: rows seen, rounded to integers on load). The weight of column
  ``i`` of matrix ``j`` is ``in_sum2[j, i] / counts[j]`` (float32), or 1 where ``counts[j]`` is 0.
- legacy ``.dat`` (little-endian): ``int32 n_entries``; per entry ``int32 len, name, int32 ncall,
  int32 nval, float32[nval]``; then optionally ``int32 chunk_count, int32 len, dataset``. Weights are the
  stored values divided by ``ncall`` (float32), or the stored values when ``ncall`` is 0.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType

from .gguf_io import GGUFError, GGUFFile, GGUFSink, Metadata, open_input

__all__ = ["Imatrix", "ImatrixEntry", "ImatrixError", "load_imatrix", "save_imatrix"]

PathLike = str | os.PathLike


class ImatrixError(ValueError):
    """An imatrix file that cannot be read, or that does not fit the model (names or sizes)."""


@dataclass
class ImatrixEntry:
    """Accumulated statistics of one weight tensor: ``sums`` (n_mat, n_per_row) and ``counts`` (n_mat,)."""

    name: str
    sums: np.ndarray  # float32 (n_mat, n_per_row): sums of squared activations per column
    counts: np.ndarray  # int64 (n_mat,): rows accumulated per matrix (expert)
    legacy: bool = False

    @property
    def n_per_row(self) -> int:
        return int(self.sums.shape[1])

    @property
    def n_mat(self) -> int:
        return int(self.sums.shape[0])

    def weights(self) -> np.ndarray:
        """Per-column importance, float32 of shape (n_mat, n_per_row), as llama-quantize's load_imatrix."""
        s = self.sums
        if self.legacy:
            ncall = int(self.counts[0])
            if ncall > 0:
                return (s / np.float32(ncall)).astype(np.float32)
            return s.astype(np.float32, copy=True)
        out = np.ones_like(s, dtype=np.float32)
        for j, c in enumerate(self.counts):
            cf = np.float32(c)  # (float) entry.counts[j]
            if cf > 0:
                out[j] = s[j] / cf
        return out


@dataclass
class Imatrix:
    """An importance matrix: entries by weight-tensor name, plus what it was computed on."""

    entries: dict[str, ImatrixEntry]
    datasets: list[str] = field(default_factory=list)
    chunk_count: int = 0
    chunk_size: int = 0
    is_legacy: bool = False
    path: Path | None = None

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def weights(self, name: str) -> np.ndarray | None:
        """The flattened weights for tensor ``name`` (n_mat * n_per_row values), or ``None``."""
        e = self.entries.get(name)
        return None if e is None else e.weights().reshape(-1)

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray], count: int = 1) -> Imatrix:
        """An imatrix whose weights are ``weights[name]`` (1-D, or (n_mat, n) for expert tensors)."""
        entries = {}
        for name, w in weights.items():
            w = np.asarray(w, dtype=np.float32)
            w2 = w.reshape(1, -1) if w.ndim == 1 else w.reshape(w.shape[0], -1)
            entries[name] = ImatrixEntry(name, (w2 * np.float32(count)).astype(np.float32),
                                         np.full(w2.shape[0], count, dtype=np.int64))
        return cls(entries)

    def for_model(self, tensors: Iterable[tuple[str, Sequence[int]]], *,
                  warn: list[str] | None = None) -> dict[str, np.ndarray]:
        """Weights for the model tensors ``(name, numpy shape)`` that will be quantized, checked against them.

        Returns ``name -> float32 (n_mat, n_per_row)``. Raises :class:`ImatrixError` when a size does not match
        (except ``token_embd.weight``, which llama-quantize skips with a warning) or when no tensor of the
        model has an entry (an imatrix for another model). Tensors without an entry are listed in ``warn``.
        """
        where = f" in {self.path}" if self.path else ""
        out: dict[str, np.ndarray] = {}
        missing = []
        tensors = list(tensors)
        for name, shape in tensors:
            e = self.entries.get(name)
            if e is None:
                missing.append(name)
                continue
            n = int(shape[-1])
            n_mat = int(shape[-3]) if len(shape) >= 3 else 1
            w = e.weights().reshape(-1)
            if w.size != n * n_mat:
                msg = (f"imatrix entry {name!r}{where} has {w.size} values, but the model's tensor has rows of {n}"
                       + (f" in {n_mat} experts" if n_mat > 1 else "")
                       + f" (needs {n * n_mat}); was this imatrix computed for another model?")
                if name in ("token_embd.weight", "per_layer_token_embd.weight"):
                    if warn is not None:
                        warn.append(msg + " (ignored for the token embeddings, as llama-quantize does)")
                    continue
                raise ImatrixError(msg)
            if not np.isfinite(w).all():
                bad = float(w[~np.isfinite(w)][0])
                raise ImatrixError(f"imatrix entry {name!r}{where} contains a non-finite value ({bad})")
            out[name] = w.reshape(n_mat, n)
        if tensors and not out:
            have = ", ".join(sorted(self.entries)[:3])
            want = ", ".join(n for n, _ in tensors[:3])
            raise ImatrixError(
                f"the imatrix{where} has no entry for any tensor this model quantizes: it was computed for another"
                f" model (it has {have}, …; the model has {want}, …)"
            )
        if warn is not None and missing:
            for name in missing:
                warn.append(f"no imatrix data for {name}; quantizing it without importance weights")
        return out


# ----------------------------------------------------------------------------------------------------------
# reading


def load_imatrix(path: PathLike) -> Imatrix:
    """Read an imatrix file in llama.cpp's GGUF format or its legacy ``.dat`` format (detected by content)."""
    p = Path(path)
    with open_input(p, ImatrixError, "imatrix file") as fh:
        head = fh.read(4)
    if head == b"GGUF":
        im = _load_gguf(p)
    else:
        im = _load_legacy(p)
    im.path = p
    return im


def _load_gguf(p: Path) -> Imatrix:
    try:
        f = GGUFFile(p)
    except GGUFError as e:
        raise ImatrixError(f"not a readable imatrix: {e}") from None
    if not f.infos:
        raise ImatrixError(f"{p}: no data in the imatrix file (no tensors)")
    groups: dict[str, dict[str, object]] = {}
    for ti in f.infos:
        for suffix in (".in_sum2", ".counts", ".in_sum"):
            if ti.name.endswith(suffix):
                groups.setdefault(ti.name[: -len(suffix)], {})[suffix] = ti
                break
    if not groups:
        raise ImatrixError(f"{p}: a GGUF file without '<name>.in_sum2' / '<name>.counts' tensors is not an imatrix"
                           f" (its first tensor is {f.infos[0].name!r}; is this a model file?)")
    entries = {}
    for name in sorted(groups):
        g = groups[name]
        s2, cnt, s1 = g.get(".in_sum2"), g.get(".counts"), g.get(".in_sum")
        if s2 is None or cnt is None or (s1 is not None and s1.n_elements != s2.n_elements):
            raise ImatrixError(f"{p}: mismatched sums and counts for {name!r}")
        for ti in (s2, cnt, s1):
            if ti is not None and ti.qtype != GGMLQuantizationType.F32:
                raise ImatrixError(f"{p}: {ti.name} must be F32, got {ti.qtype.name}")
        n_mat = cnt.n_elements
        if n_mat == 0 or s2.n_elements % n_mat:
            raise ImatrixError(f"{p}: {name!r} has {s2.n_elements} sums for {n_mat} counts")
        sums = f.raw(s2).view("<f4").reshape(n_mat, s2.n_elements // n_mat).astype(np.float32)
        counts_f = f.raw(cnt).view("<f4").astype(np.float64)
        if not np.isfinite(counts_f).all():
            raise ImatrixError(f"{p}: {name}.counts has non-finite values")
        # std::lround: halves away from zero
        counts = (np.sign(counts_f) * np.floor(np.abs(counts_f) + 0.5)).astype(np.int64)
        entries[name] = ImatrixEntry(name, sums, counts)
    md = f.metadata
    ds = md.get("imatrix.datasets")
    datasets = list(ds) if isinstance(ds, list) else []
    return Imatrix(entries, datasets, int(md.get("imatrix.chunk_count", 0) or 0),
                   int(md.get("imatrix.chunk_size", 0) or 0), is_legacy=False)


def _load_legacy(p: Path) -> Imatrix:
    data = p.read_bytes()
    off = 0

    def take(fmt: str, what: str) -> int:
        nonlocal off
        n = struct.calcsize(fmt)
        if off + n > len(data):
            raise ImatrixError(f"{p}: truncated legacy imatrix file (ends while reading {what} at byte {off})")
        v = struct.unpack_from(fmt, data, off)[0]
        off += n
        return v

    if len(data) < 4:
        raise ImatrixError(f"{p}: not an imatrix file (too short: {len(data)} bytes)")
    n_entries = take("<i", "the entry count")
    if n_entries < 1 or n_entries * 12 > len(data):
        raise ImatrixError(f"{p}: not an imatrix file (neither GGUF nor legacy: first word {n_entries})")
    entries = {}
    for i in range(n_entries):
        ln = take("<i", f"the name length of entry {i + 1}")
        if ln < 0 or off + ln > len(data):
            raise ImatrixError(f"{p}: failed reading the name of entry {i + 1} (bad or truncated legacy imatrix)")
        try:
            name = data[off:off + ln].split(b"\0", 1)[0].decode("utf-8")
        except UnicodeDecodeError:
            raise ImatrixError(f"{p}: entry {i + 1} has a name that is not UTF-8 (not an imatrix file?)") from None
        off += ln
        ncall = take("<i", f"the call count of {name!r}")
        nval = take("<i", f"the value count of {name!r}")
        if nval < 1:
            raise ImatrixError(f"{p}: failed reading the number of values for {name!r} ({nval})")
        if off + 4 * nval > len(data):
            raise ImatrixError(f"{p}: truncated legacy imatrix file (data of {name!r})")
        vals = np.frombuffer(data, dtype="<f4", count=nval, offset=off).astype(np.float32)
        off += 4 * nval
        entries[name] = ImatrixEntry(name, vals.reshape(1, nval), np.array([ncall], dtype=np.int64), legacy=True)
    chunk_count, datasets = 0, []
    if off + 4 <= len(data):
        chunk_count = struct.unpack_from("<i", data, off)[0]
        off += 4
        if off + 4 <= len(data):
            ln = struct.unpack_from("<i", data, off)[0]
            off += 4
            if 0 < ln and off + ln <= len(data):
                datasets.append(data[off:off + ln].decode("utf-8", errors="replace"))
    return Imatrix(entries, datasets, chunk_count, 0, is_legacy=True)


# ----------------------------------------------------------------------------------------------------------
# writing (for tools and tests; llama-imatrix's layouts)


def save_imatrix(path: PathLike, imatrix: Imatrix, *, legacy: bool = False, force: bool = False) -> Path:
    """Write ``imatrix`` in llama.cpp's GGUF format (default) or its legacy ``.dat`` format."""
    p = Path(path)
    names = sorted(imatrix.entries)
    if legacy:
        if p.exists() and not force:
            raise ImatrixError(f"{p}: output file exists; pass force=True to overwrite it")
        out = bytearray(struct.pack("<i", len(names)))
        chunk = imatrix.chunk_size
        for name in names:
            e = imatrix.entries[name]
            b = name.encode("utf-8")
            if e.legacy:
                ncall = int(e.counts[0])
                vals = e.sums.reshape(-1).astype(np.float32)
            else:
                mx = int(e.counts.max())
                ncall = -(-mx // chunk) if chunk > 0 else mx  # ceiling division, as llama-imatrix
                w = e.sums.astype(np.float32)
                c = e.counts.astype(np.float32)[:, None]
                zero = (c == 0).reshape(-1)
                w = np.where(zero[:, None], np.float32(1), w)
                c = np.where(c == 0, np.float32(1), c)
                vals = ((w / c) * np.float32(ncall)).astype(np.float32).reshape(-1)
            out += struct.pack("<i", len(b)) + b + struct.pack("<ii", ncall, vals.size) + vals.astype("<f4").tobytes()
        out += struct.pack("<i", int(imatrix.chunk_count))
        ds = (imatrix.datasets[-1] if imatrix.datasets else "").encode("utf-8")
        out += struct.pack("<i", len(ds)) + ds
        tmp = p.with_name(f".{p.name}.partial")
        try:
            tmp.write_bytes(bytes(out))
            os.replace(tmp, p)
        finally:
            if tmp.exists():
                tmp.unlink()
        return p
    meta = Metadata()
    meta.set("general.type", "imatrix", GGUFValueType.STRING)
    meta.set("imatrix.datasets", list(imatrix.datasets), GGUFValueType.ARRAY, GGUFValueType.STRING)
    meta.set("imatrix.chunk_count", int(imatrix.chunk_count), GGUFValueType.UINT32)
    meta.set("imatrix.chunk_size", int(imatrix.chunk_size), GGUFValueType.UINT32)
    arrays = []
    for name in names:
        e = imatrix.entries[name]
        if e.legacy:  # legacy values are sums/ncall * ncall-per-chunk: store them as sums over ncall rows
            counts = np.maximum(e.counts, 0).astype(np.float32)
            sums = e.sums.astype(np.float32)
        else:
            counts = e.counts.astype(np.float32)
            sums = e.sums.astype(np.float32)
        arrays.append((f"{name}.in_sum2", np.ascontiguousarray(sums, dtype=np.float32)))
        arrays.append((f"{name}.counts", counts.reshape(-1, 1)))
    with GGUFSink(p, meta, [(n, GGMLQuantizationType.F32, a.shape) for n, a in arrays], force=force) as sink:
        for n, a in arrays:
            sink.write(n, a)
    return p


