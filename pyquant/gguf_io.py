"""GGUF files in and out: memory-mapped reading through ``gguf.GGUFReader``, atomic streaming writing.

Reading goes through gguf-py's ``GGUFReader``: tensors are its ``ReaderTensor.data`` views of the file's memory
map (no copy until used), metadata comes from its ``ReaderField``s (values, value types, array element types).
Plain ``GGUFReader`` builds one numpy view per array element (two per string): on the Gemma 3 270M Q4_K_M file
(262144 tokens, scores and token types) it took 19.5-22.8 s and 685 MB of memory on the 2-core development
machine, where :func:`load_gguf` with the subclass used here, :class:`_Reader`, takes 0.26-0.50 s. The subclass
overrides only how an array's elements are read (a numeric array is one view, a string array is sized by one
tight loop over its lengths; :class:`_ArrayField` keeps ``contents()`` equal to gguf-py's) and adds checks, so
that truncated or corrupt files give a :class:`GGUFError` naming the file, the problem and where it was found;
the tests compare its fields and tensors with plain ``GGUFReader``'s on every value type and on the Gemma file.
The 24-byte header is checked first, for the errors gguf-py does not give (big-endian files, whose tensors
pyquant would misread, and counts that cannot fit the file).

Writing goes through ``gguf.GGUFWriter`` (header, key/values and tensor infos first, then tensor data one
tensor at a time), into a temporary file in the output's directory that is fsynced and renamed over the
output only when complete: an error, a full disk or Ctrl-C leaves no partial file.

Shapes are numpy-ordered: a GGUF tensor with ``ne = [n, rows]`` is a ``QTensor`` of shape ``(rows, n)``.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGMLQuantizationType,
    GGUFReader,
    GGUFValueType,
    GGUFWriter,
    ReaderField,
)
from gguf.gguf_reader import READER_SUPPORTED_VERSIONS

from .formats import LAYOUTS
from .tensor import QTensor

__all__ = [
    "GGUFError", "GGUFFile", "GGUFSink", "Metadata", "RawTensor", "TensorInfo", "load_gguf", "open_gguf",
    "save_gguf", "tensor_nbytes",
]

PathLike = str | os.PathLike

GGUF_MAGIC = b"GGUF"
GGML_MAX_DIMS = 4
_SCALAR = {
    GGUFValueType.UINT8: ("<B", np.uint8), GGUFValueType.INT8: ("<b", np.int8),
    GGUFValueType.UINT16: ("<H", np.uint16), GGUFValueType.INT16: ("<h", np.int16),
    GGUFValueType.UINT32: ("<I", np.uint32), GGUFValueType.INT32: ("<i", np.int32),
    GGUFValueType.FLOAT32: ("<f", np.float32), GGUFValueType.UINT64: ("<Q", np.uint64),
    GGUFValueType.INT64: ("<q", np.int64), GGUFValueType.FLOAT64: ("<d", np.float64),
    GGUFValueType.BOOL: ("<?", np.bool_),
}
_NP_TO_VTYPE = {np.dtype(v[1]): k for k, v in _SCALAR.items()}


class GGUFError(ValueError):
    """A GGUF file that cannot be read or written; the message names the file and the problem."""


# ----------------------------------------------------------------------------------------------------------
# metadata


class Metadata(dict):
    """GGUF key/values in file order: ``key -> value`` plus each key's GGUF type in :attr:`types`.

    Values: ``int``/``float``/``bool``/``str`` for scalars, a read-only numpy array for numeric arrays,
    ``list[str]`` for string arrays. ``types[key]`` is ``(GGUFValueType, sub_type or None)``; keys set without
    a type get one inferred when written (see :func:`infer_type`).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.types: dict[str, tuple[GGUFValueType, GGUFValueType | None]] = {}

    def set(self, key: str, value: Any, vtype: GGUFValueType | None = None,
            sub_type: GGUFValueType | None = None, *, move_to_end: bool = False) -> None:
        """Set ``key`` with an explicit GGUF type (or one inferred); ``move_to_end`` re-appends it as gguf does."""
        if move_to_end:
            self.pop(key, None)
        self[key] = value
        if vtype is None:
            vtype, sub_type = infer_type(value)
        self.types[key] = (GGUFValueType(vtype), sub_type)

    def type_of(self, key: str) -> tuple[GGUFValueType, GGUFValueType | None]:
        t = self.types.get(key)
        return t if t is not None else infer_type(self[key])

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.types.pop(key, None)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self.types.pop(key, None)
        return super().pop(key, *default)

    def copy(self) -> Metadata:
        m = Metadata(self)
        m.types = dict(self.types)
        return m


def infer_type(value: Any) -> tuple[GGUFValueType, GGUFValueType | None]:
    """The GGUF type for a Python/numpy value with no recorded type (ints become UINT32 when they fit)."""
    if isinstance(value, (bool, np.bool_)):
        return GGUFValueType.BOOL, None
    if isinstance(value, np.generic) and np.dtype(value.dtype) in _NP_TO_VTYPE:
        return _NP_TO_VTYPE[np.dtype(value.dtype)], None
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if 0 <= v < 2**32:
            return GGUFValueType.UINT32, None
        if -(2**31) <= v < 0:
            return GGUFValueType.INT32, None
        return (GGUFValueType.UINT64 if v >= 0 else GGUFValueType.INT64), None
    if isinstance(value, float):
        return GGUFValueType.FLOAT32, None
    if isinstance(value, str):
        return GGUFValueType.STRING, None
    if isinstance(value, np.ndarray):
        if value.dtype not in _NP_TO_VTYPE:
            raise TypeError(f"metadata arrays of dtype {value.dtype} have no GGUF type")
        return GGUFValueType.ARRAY, _NP_TO_VTYPE[value.dtype]
    if isinstance(value, (list, tuple)):
        if not value:
            raise TypeError("an empty metadata list needs an explicit sub_type (Metadata.set(..., sub_type=...))")
        sub = infer_type(value[0])[0]
        return GGUFValueType.ARRAY, sub
    raise TypeError(f"cannot store a {type(value).__name__} in GGUF metadata")


# ----------------------------------------------------------------------------------------------------------
# tensors


class RawTensor:
    """A tensor of a GGML type pyquant has no kernels for (I32, IQ2_XXS, …): bytes, type and shape only.

    It loads and saves unchanged; :meth:`dequantize` raises ``NotImplementedError``.
    """

    __slots__ = ("qtype", "shape", "data")

    def __init__(self, data: np.ndarray, qtype: GGMLQuantizationType | int, shape: Sequence[int]):
        self.qtype = qtype
        self.shape = tuple(int(s) for s in shape)
        self.data = np.asarray(data).reshape(-1).view(np.uint8)
        want = tensor_nbytes(qtype, self.shape)
        if self.data.size != want:
            raise ValueError(f"{_type_name(qtype)} data for shape {self.shape} must have {want} bytes, got {self.data.size}")

    @property
    def nbytes(self) -> int:
        return int(self.data.size)

    def dequantize(self, dtype: Any = None) -> np.ndarray:
        raise NotImplementedError(f"pyquant cannot dequantize {_type_name(self.qtype)} tensors yet")

    def __repr__(self) -> str:
        return f"RawTensor({_type_name(self.qtype)}, shape={self.shape}, {self.nbytes} bytes)"


AnyTensor = QTensor | RawTensor


def _type_name(t: GGMLQuantizationType | int) -> str:
    return t.name if isinstance(t, GGMLQuantizationType) else f"type {int(t)}"


def tensor_nbytes(qtype: GGMLQuantizationType | int, shape: Sequence[int]) -> int:
    """Bytes of a tensor of ``qtype`` and numpy-ordered ``shape`` (last axis a multiple of the block size)."""
    t = GGMLQuantizationType(int(qtype))
    block, size = (LAYOUTS[t].block_size, LAYOUTS[t].type_size) if t in LAYOUTS else GGML_QUANT_SIZES[t]
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    return n // block * size


def _make_tensor(data: np.ndarray, qtype: GGMLQuantizationType, shape: tuple[int, ...]) -> AnyTensor:
    if qtype in LAYOUTS:
        return QTensor(data, qtype, shape if shape else (1,))
    return RawTensor(data, qtype, shape)


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a GGUF file's tensor table: numpy-ordered ``shape``; ``offset`` from the start of the file."""

    name: str
    qtype: GGMLQuantizationType
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    @property
    def ne(self) -> tuple[int, ...]:
        """GGML's order: ``ne[0]`` (the row length) first."""
        return tuple(reversed(self.shape))

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


# ----------------------------------------------------------------------------------------------------------
# reading


class _ReadError(Exception):
    """A file the reader cannot parse; ``str()`` is the problem, :class:`GGUFFile` adds the path and ``kind``."""

    kind = "unreadable GGUF file"


class _Truncated(_ReadError):
    kind = "truncated or incomplete GGUF file"


class _Corrupt(_ReadError):
    kind = "corrupt GGUF file"


_U64 = struct.Struct("<Q")


def _strings(body: np.ndarray) -> list[str]:
    """The strings of a string array, from its bytes as stored: each a uint64 length, then that many UTF-8 bytes."""
    b = bytes(body)
    out: list[str] = []
    append, unpack = out.append, _U64.unpack_from
    o, end = 0, len(b)
    while o < end:
        (n,) = unpack(b, o)
        o += 8
        append(b[o:o + n].decode("utf-8"))
        o += n
    return out


class _ArrayField(ReaderField):
    """An array key/value as :class:`_Reader` builds it: a run of scalars or strings is one part.

    ``parts`` still tile the field's bytes in file order (key length, key, type, element type, count, elements)
    and ``data`` still indexes the parts that hold the elements, but each such part is one view of a whole
    numeric array (``int``/``float``/``bool`` elements) or of a whole string array's bytes (lengths and UTF-8
    bytes as stored), where gguf-py has one part per element (two per string). Nested arrays keep gguf-py's
    layout, with their innermost arrays so packed. :meth:`contents` gives what ``ReaderField.contents`` gives
    on gguf-py's layout: the elements (flattened for nested arrays), or the ones an index or slice selects.
    """

    __slots__ = ()

    def contents(self, index_or_slice: int | slice = slice(None)) -> Any:
        values: list[Any] = []
        for i in self.data:
            # every element part follows its array's element type and count
            sub = self.parts[i - 2][0]
            values += _strings(self.parts[i]) if sub == GGUFValueType.STRING else self.parts[i].tolist()
        return values[index_or_slice]


class _Reader(GGUFReader):
    """``gguf.GGUFReader`` that reads large arrays in one piece and reports bad input precisely.

    gguf-py builds one numpy view per array element; on the Gemma 3 270M file (262144 tokens, scores and token
    types) that takes ~20 s and ~700 MB. Here (see :class:`_ArrayField`) an array of numbers is one view and a
    string array is sized by one pass over its lengths. The other overrides only check: every read must lie
    inside the file (gguf-py would slice short and fail later, or not at all), value and GGML types must be
    known, keys and tensor names unique, ``general.alignment`` a power of two, tensor shapes, offsets and
    sizes must fit; failures raise :class:`_Truncated` or :class:`_Corrupt` saying where the reader was.
    """

    _info_count = 0  # tensor infos begun; _info_at: where the latest began
    _info_at = 0
    _checking_tensors = False

    def __init__(self, path: PathLike):
        try:
            super().__init__(path, "r")
        except _ReadError as e:
            raise type(e)(f"{e}{self._where()}") from None
        except UnicodeDecodeError as e:
            raise _Corrupt(f"a name is not valid UTF-8 ({e.reason}){self._where()}") from None
        except (ValueError, KeyError, IndexError, OverflowError, ZeroDivisionError) as e:
            # a check of gguf-py's own that the overrides do not anticipate
            raise _Corrupt(f"{e}{self._where()}") from None

    def _where(self) -> str:
        """Which key/value or tensor info was being read, for error messages ('' once tensors are checked)."""
        if self._checking_tensors:
            return ""
        if self._info_count:
            what, start = f"tensor info #{self._info_count - 1}", self._info_at
        else:
            fields = getattr(self, "fields", None)
            if not fields:
                return ""
            last = next(reversed(fields.values()))  # the next key/value starts where the latest one ends
            what, start = f"key/value #{len(fields) - 3}", last.offset + sum(int(p.nbytes) for p in last.parts)
        try:
            name = bytes(self._get_str(start)[1]).decode("utf-8", "replace")
        except _ReadError:
            return f" (in {what})"
        return f" (in {what}, {name!r})"

    def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> np.ndarray:
        end = int(offset) + np.dtype(dtype).itemsize * int(count)
        if end > self.data.size:
            raise _Truncated(f"the file ends at byte {self.data.size}, but {end - int(offset)} bytes are needed"
                             f" at byte {int(offset)}")
        return super()._get(offset, dtype, count, override_order)

    def _get_field_parts(self, orig_offs: int, raw_type: int) -> tuple[int, list[np.ndarray], list[int], list[GGUFValueType]]:
        try:
            vtype = GGUFValueType(int(raw_type))
        except ValueError:
            raise _Corrupt(f"unknown value type {int(raw_type)}") from None
        if vtype != GGUFValueType.ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        raw_itype = self._get(orig_offs, np.uint32)
        alen = self._get(orig_offs + 4, np.uint64)
        try:
            itype = GGUFValueType(int(raw_itype[0]))
        except ValueError:
            raise _Corrupt(f"unknown array element type {int(raw_itype[0])}") from None
        n, offs = int(alen[0]), orig_offs + 12
        if n == 0 or itype == GGUFValueType.ARRAY:  # element by element, each inner array through this method
            return super()._get_field_parts(orig_offs, raw_type)
        if itype == GGUFValueType.STRING:
            buf, size, unpack = memoryview(self.data), self.data.size, _U64.unpack_from
            if offs + 8 * n > size:  # each string takes >= 8 bytes
                raise _Truncated(f"the file ({size} bytes) is too short for the {n} strings declared at byte {offs}")
            end = offs
            for i in range(n):
                if end + 8 > size:
                    raise _Truncated(f"the file ends at byte {size}, inside string {i} of {n}")
                end += 8 + unpack(buf, end)[0]
            if end > size:
                raise _Truncated(f"the file ends at byte {size}, inside string {n - 1} of {n}")
            values = self._get(offs, np.uint8, end - offs)
        else:
            values = self._get(offs, self.gguf_scalar_to_np[itype], n)
        return 12 + int(values.nbytes), [raw_itype, alen, values], [2], [vtype, itype]

    def _push_field(self, field: ReaderField, skip_sum: bool = False) -> int:
        if field.name in self.fields:
            raise _Corrupt(f"duplicate metadata key {field.name!r}")
        if field.name == "general.alignment":
            if field.types != [GGUFValueType.UINT32]:
                raise _Corrupt("general.alignment must be a UINT32")
            a = int(field.parts[-1][0])
            if a == 0 or a & (a - 1):
                raise _Corrupt(f"general.alignment {a} is not a power of two")
        if field.types[:1] == [GGUFValueType.ARRAY]:
            field = _ArrayField(*field)
        return super()._push_field(field, skip_sum)

    def _get_tensor_info_field(self, orig_offs: int) -> ReaderField:
        self._info_count += 1
        self._info_at = orig_offs
        name_len = self._get(orig_offs, np.uint64)
        n_dims = int(self._get(orig_offs + 8 + int(name_len[0]), np.uint32)[0])
        if n_dims > GGML_MAX_DIMS:
            raise _Corrupt(f"a tensor with {n_dims} dimensions; GGML allows at most {GGML_MAX_DIMS}")
        return super()._get_tensor_info_field(orig_offs)

    def _build_tensors(self, start_offs: int, fields: list[ReaderField]) -> None:
        self._checking_tensors = True
        align, size = int(self.alignment), int(self.data.size)
        names: set[str] = set()
        for f in fields:
            name, dims, raw_t, off = f.name, f.parts[3], int(f.parts[4][0]), int(f.parts[5][0])
            if name in names:
                raise _Corrupt(f"duplicate tensor name {name!r}")
            names.add(name)
            try:
                qtype = GGMLQuantizationType(raw_t)
            except ValueError:
                raise _Corrupt(f"tensor {name!r} has unknown GGML type id {raw_t}") from None
            if qtype not in GGML_QUANT_SIZES:
                raise _Corrupt(f"tensor {name!r} has GGML type {qtype.name}, which has no known block size")
            block, tsize = GGML_QUANT_SIZES[qtype]
            ne = [int(d) for d in dims]
            if any(d >= 2**62 for d in ne):
                raise _Corrupt(f"tensor {name!r} has an impossible shape {ne}")
            if block > 1 and (not ne or ne[0] % block):
                raise _Corrupt(f"tensor {name!r}: row length {ne[0] if ne else 1} is not a multiple of"
                               f" {qtype.name}'s block size {block}")
            nbytes = math.prod(ne) // block * tsize
            if off % align:
                raise _Corrupt(f"tensor {name!r}: data offset {off} is not a multiple of the alignment {align}")
            start = start_offs + off
            if start + nbytes > size:
                raise _Truncated(f"tensor {name!r} ({qtype.name}, {nbytes} bytes at byte {start}) extends past the"
                                 f" end of the file ({size} bytes)")
        super()._build_tensors(start_offs, fields)


def open_input(path: Path, error: type[Exception], what: str):
    """``open(path, "rb")``, or ``error`` naming the file and why not (missing, a directory, unreadable)."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise error(f"{path}: no such file (expected a {what})") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot open ({e.strerror})") from None


def _check_header(path: Path) -> None:
    """The fixed 24-byte header (magic, version, counts), for the errors gguf-py does not give: it reads
    big-endian files (whose tensors pyquant would misread) and does not compare the counts with the file size."""
    with open_input(path, GGUFError, "GGUF file") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(24)
    if size == 0:
        raise GGUFError(f"{path}: the file is empty, expected a GGUF file")
    truncated = f"{path}: {_Truncated.kind}: the file ends at byte {len(head)} inside"
    if len(head) < 4:
        raise GGUFError(f"{truncated} the magic number")
    if head[:4] != GGUF_MAGIC:
        raise GGUFError(f"{path}: {_Corrupt.kind}: bad magic {head[:4]!r} (expected {GGUF_MAGIC!r}); this is not a"
                        " GGUF file")
    if len(head) < 8:
        raise GGUFError(f"{truncated} the version")
    version = int.from_bytes(head[4:8], "little")
    if version & 0xFFFF == 0 and version != 0:
        raise GGUFError(f"{path}: {_Corrupt.kind}: big-endian GGUF files are not supported")
    if version not in READER_SUPPORTED_VERSIONS:
        raise GGUFError(f"{path}: {_Corrupt.kind}: unsupported GGUF version {version} (pyquant reads versions"
                        f" {', '.join(map(str, READER_SUPPORTED_VERSIONS))})")
    if len(head) < 24:
        raise GGUFError(f"{truncated} the tensor and key/value counts")
    n_tensors, n_kv = struct.unpack_from("<QQ", head, 8)
    # every key/value takes >= 12 bytes and every tensor info >= 24: larger counts cannot fit the file
    if n_kv * 12 > size or n_tensors * 24 > size:
        raise GGUFError(f"{path}: {_Truncated.kind}: the file ({size} bytes) is too short for the {n_kv}"
                        f" key/values and {n_tensors} tensors its header declares")


def _array_value(parts: list[np.ndarray], i: int) -> tuple[Any, int]:
    """The value of the array whose element type is ``parts[i]`` (a :class:`_Reader` field), and the next index."""
    itype, n = GGUFValueType(int(parts[i][0])), int(parts[i + 1][0])
    i += 2
    if itype == GGUFValueType.ARRAY:
        items = []
        for _ in range(n):
            v, i = _array_value(parts, i)
            items.append(v)
        return items, i
    if n == 0:  # no element part
        if itype == GGUFValueType.STRING:
            return [], i
        empty = np.empty(0, GGUFReader.gguf_scalar_to_np[itype])
        empty.flags.writeable = False
        return empty, i
    if itype == GGUFValueType.STRING:
        return _strings(parts[i]), i + 1
    return np.asarray(parts[i]), i + 1


class GGUFFile:
    """A memory-mapped GGUF file: :attr:`metadata`, :attr:`infos` (tensor table) and zero-copy tensors.

    Read by :attr:`reader`, a ``gguf.GGUFReader``: tensor bytes are views of its memory map.

    >>> f = GGUFFile("model.gguf")            # doctest: +SKIP
    >>> f["blk.0.attn_q.weight"].dequantize()  # doctest: +SKIP
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        _check_header(self.path)
        try:
            r = _Reader(self.path)
        except _ReadError as e:
            raise GGUFError(f"{self.path}: {e.kind}: {e}") from None
        except OSError as e:
            raise GGUFError(f"{self.path}: cannot read ({e.strerror or e})") from None
        self.reader: GGUFReader = r
        self.version = int(r.fields["GGUF.version"].parts[0][0])
        self.alignment = int(r.alignment)
        self.data_offset = int(r.data_offset)
        self.file_size = int(r.data.size)
        meta = Metadata()
        for key, f in r.fields.items():
            if key.startswith("GGUF."):  # the header, not key/values
                continue
            vtype = f.types[0]
            try:
                if vtype == GGUFValueType.ARRAY:
                    meta[key], sub = _array_value(f.parts, 3)[0], GGUFValueType(int(f.parts[3][0]))
                else:
                    meta[key], sub = f.contents(), None
            except UnicodeDecodeError as e:
                raise GGUFError(f"{self.path}: {_Corrupt.kind}: a string of key {key!r} is not valid UTF-8"
                                f" ({e.reason})") from None
            meta.types[key] = (vtype, sub)
        self.metadata = meta
        self.infos: list[TensorInfo] = []
        self._raw: dict[str, np.ndarray] = {}
        for t in r.tensors:
            self.infos.append(TensorInfo(t.name, t.tensor_type, tuple(int(d) for d in reversed(t.shape.tolist())),
                                         int(t.data_offset), int(t.n_bytes)))
            self._raw[t.name] = np.asarray(t.data).reshape(-1).view(np.uint8)
        self._by_name = {ti.name: ti for ti in self.infos}


    # -- access -------------------------------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> AnyTensor:
        return self.tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self.infos)

    def info(self, name: str) -> TensorInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.path} has no tensor {name!r}") from None

    def raw(self, name_or_info: str | TensorInfo) -> np.ndarray:
        """The tensor's bytes: a read-only uint8 view of the mapping."""
        name = name_or_info.name if isinstance(name_or_info, TensorInfo) else name_or_info
        if name not in self._raw:
            self.info(name)  # raises, naming the file
        return self._raw[name]

    def tensor(self, name_or_info: str | TensorInfo) -> AnyTensor:
        """A :class:`QTensor` (or :class:`RawTensor` for types pyquant has no kernels for) over the mapping."""
        ti = name_or_info if isinstance(name_or_info, TensorInfo) else self.info(name_or_info)
        return _make_tensor(self.raw(ti), ti.qtype, ti.shape)

    def tensors(self) -> dict[str, AnyTensor]:
        return {ti.name: self.tensor(ti) for ti in self.infos}

    @property
    def architecture(self) -> str | None:
        a = self.metadata.get("general.architecture")
        return a if isinstance(a, str) else None

    def __repr__(self) -> str:
        return f"GGUFFile({str(self.path)!r}, {len(self.infos)} tensors, {len(self.metadata)} keys)"


def open_gguf(path: PathLike) -> GGUFFile:
    """Open and validate a GGUF file (header, tensor table, bounds); tensors stay memory-mapped."""
    return GGUFFile(path)


def load_gguf(path: PathLike) -> tuple[dict[str, AnyTensor], Metadata]:
    """Read a GGUF file: ``(tensors, metadata)``.

    ``tensors`` maps names to :class:`QTensor` (numpy-ordered shape ``(..., n)``, bytes memory-mapped, not
    copied) in file order; types pyquant has no kernels for come as :class:`RawTensor`. ``metadata`` is a
    :class:`Metadata` (values plus their GGUF types), without the header fields. Raises :class:`GGUFError`
    naming the file and the problem for missing, truncated or corrupt files.
    """
    f = GGUFFile(path)
    return f.tensors(), f.metadata


# ----------------------------------------------------------------------------------------------------------
# writing


class _Writer(GGUFWriter):
    """GGUFWriter that also packs numpy arrays, empty arrays and nested arrays (which gguf-py refuses)."""

    def _pack_val(self, val: Any, vtype: GGUFValueType, add_vtype: bool, sub_type: GGUFValueType | None = None) -> bytes:
        if vtype != GGUFValueType.ARRAY:
            if vtype == GGUFValueType.BOOL:
                val = bool(val)
            return super()._pack_val(val, vtype, add_vtype, sub_type)
        if sub_type is None:
            sub_type = infer_type(val)[1]
        out = bytearray()
        if add_vtype:
            out += struct.pack("<I", GGUFValueType.ARRAY)
        out += struct.pack("<IQ", sub_type, len(val))
        if sub_type in _SCALAR:
            out += np.asarray(val, dtype=np.dtype(_SCALAR[sub_type][1]).newbyteorder("<")).tobytes()
        elif sub_type == GGUFValueType.STRING:
            for s in val:
                b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
                out += struct.pack("<Q", len(b))
                out += b
        elif sub_type == GGUFValueType.ARRAY:
            for item in val:
                out += self._pack_val(item, GGUFValueType.ARRAY, add_vtype=False)
        else:
            raise ValueError(f"cannot pack metadata arrays of {sub_type!r}")
        return bytes(out)


def _as_writable(t: Any, name: str) -> tuple[np.ndarray, GGMLQuantizationType, tuple[int, ...]]:
    """(bytes, type, numpy shape) for a QTensor, RawTensor or float32/float16 numpy array."""
    if isinstance(t, QTensor):
        return t.data.reshape(-1), t.qtype, t.shape
    if isinstance(t, RawTensor):
        return t.data, GGMLQuantizationType(int(t.qtype)), t.shape
    if isinstance(t, np.ndarray):
        kinds = {np.dtype(np.float32): GGMLQuantizationType.F32, np.dtype(np.float16): GGMLQuantizationType.F16,
                 np.dtype(np.int32): GGMLQuantizationType.I32, np.dtype(np.int8): GGMLQuantizationType.I8,
                 np.dtype(np.int16): GGMLQuantizationType.I16, np.dtype(np.int64): GGMLQuantizationType.I64,
                 np.dtype(np.float64): GGMLQuantizationType.F64}
        if t.dtype not in kinds:
            raise TypeError(f"tensor {name!r}: numpy arrays of dtype {t.dtype} cannot be written; quantize it first")
        a = np.ascontiguousarray(t)
        return a.reshape(-1).view(np.uint8), kinds[a.dtype], tuple(a.shape)
    raise TypeError(f"tensor {name!r}: expected a QTensor, RawTensor or numpy array, got {type(t).__name__}")


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class GGUFSink:
    """Stream a GGUF file tensor by tensor: declare every tensor up front, then :meth:`write` each in order.

    The file appears at ``path`` only when the ``with`` block ends without an exception (temporary file in
    the same directory, fsync, ``os.replace``); otherwise the temporary file is removed.

    >>> with GGUFSink("out.gguf", meta, [("w", GGMLQuantizationType.Q8_0, (4, 32))]) as sink:  # doctest: +SKIP
    ...     sink.write("w", q.data)
    """

    def __init__(self, path: PathLike, metadata: Mapping[str, Any] | None,
                 tensors: Iterable[tuple[str, GGMLQuantizationType | int, Sequence[int]]], *, force: bool = False):
        self.path = Path(path)
        self.force = force
        self.metadata = metadata if metadata is not None else Metadata()
        self.plan: list[tuple[str, GGMLQuantizationType, tuple[int, ...], int]] = []
        seen = set()
        for name, qtype, shape in tensors:
            if name in seen:
                raise ValueError(f"duplicate tensor name {name!r}")
            seen.add(name)
            t = GGMLQuantizationType(int(qtype))
            shape = tuple(int(s) for s in shape)
            self.plan.append((name, t, shape, tensor_nbytes(t, shape)))
        self._next = 0
        self._tmp: Path | None = None
        self._writer: _Writer | None = None

    @property
    def total_bytes(self) -> int:
        return sum(p[3] for p in self.plan)

    def _check_target(self) -> None:
        if self.path.is_dir():
            raise GGUFError(f"{self.path}: is a directory, expected an output file name")
        if self.path.exists() and not self.force:
            raise GGUFError(f"{self.path}: output file exists; pass force=True (--force) to overwrite it")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise GGUFError(f"{self.path}: directory {parent} does not exist")

    def __enter__(self) -> GGUFSink:
        self._check_target()
        parent = self.path.parent if str(self.path.parent) else Path(".")
        align = int(self.metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT))
        need = self.total_bytes + align * (len(self.plan) + 1)
        try:
            free = shutil.disk_usage(parent).free
        except OSError:
            free = None
        if free is not None and need > free:
            raise GGUFError(
                f"{self.path}: not enough disk space: the output needs about {need / 2**20:.1f} MiB,"
                f" {free / 2**20:.1f} MiB are free on that file system"
            )
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{self.path.name}.", suffix=".partial")
        except OSError as e:
            raise GGUFError(f"{self.path}: cannot create a file in {parent} ({e.strerror})") from None
        os.close(fd)
        self._tmp = Path(tmp)
        # mkstemp makes the file 0600; the output should get the mode a plain open() would give it
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self._tmp, 0o666 & ~mask)
        try:
            w = _Writer(None, arch="")  # arch "" adds no key; every key comes from `metadata`, in its order
            w.data_alignment = align
            types = getattr(self.metadata, "types", {})
            for key, value in self.metadata.items():
                vt = types.get(key) or infer_type(value)
                w.add_key_value(key, value, vt[0], sub_type=vt[1])
            for name, t, shape, nbytes in self.plan:
                # a non-uint8 dtype: gguf-py would otherwise read `shape` as a byte shape and convert it
                w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=t)
            w.open_output_file(self._tmp)
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_ti_data_to_file()
            self._writer = w
        except BaseException as e:
            self._abort()
            self._raise_io(e)
            raise
        return self

    def write(self, name: str, data: np.ndarray | QTensor | RawTensor) -> None:
        """Write the next tensor's bytes (in the declared order)."""
        if self._writer is None:
            raise RuntimeError("GGUFSink.write outside its with block")
        if self._next >= len(self.plan):
            raise ValueError(f"tensor {name!r} was not declared")
        pname, t, shape, nbytes = self.plan[self._next]
        if name != pname:
            raise ValueError(f"tensors must be written in declared order: expected {pname!r}, got {name!r}")
        if isinstance(data, (QTensor, RawTensor)):
            raw, dt, dshape = _as_writable(data, name)
            if dt != t or tuple(dshape) != shape:
                raise ValueError(f"tensor {name!r}: declared {t.name} {shape}, got {dt.name} {tuple(dshape)}")
        else:
            raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if raw.size != nbytes:
            raise ValueError(f"tensor {name!r}: {t.name} {shape} takes {nbytes} bytes, got {raw.size}")
        try:
            self._writer.write_tensor_data(raw)
        except OSError as e:
            self._raise_io(e)
            raise
        self._next += 1

    def write_rows(self, name: str, chunks: Iterable[np.ndarray]) -> None:
        """Write the next tensor's bytes from consecutive chunks (rows), without holding the whole tensor."""
        if self._writer is None:
            raise RuntimeError("GGUFSink.write_rows outside its with block")
        if self._next >= len(self.plan) or self.plan[self._next][0] != name:
            want = self.plan[self._next][0] if self._next < len(self.plan) else None
            raise ValueError(f"tensors must be written in declared order: expected {want!r}, got {name!r}")
        _, t, shape, nbytes = self.plan[self._next]
        w = self._writer
        assert w.fout is not None
        fout = w.fout[0]
        written = 0
        try:
            w.write_padding(fout, fout.tell())
            for c in chunks:
                raw = np.ascontiguousarray(c).reshape(-1).view(np.uint8)
                if written + raw.size > nbytes:
                    raise ValueError(f"tensor {name!r}: more than the {nbytes} bytes of {t.name} {shape}")
                raw.tofile(fout)
                written += raw.size
            if written != nbytes:
                raise ValueError(f"tensor {name!r}: got {written} of the {nbytes} bytes of {t.name} {shape}")
            w.write_padding(fout, nbytes)
        except OSError as e:
            self._raise_io(e)
            raise
        # keep GGUFWriter's bookkeeping as write_tensor_data would
        w.tensors[0].pop(name)
        from gguf.gguf_writer import WriterState

        w.state = WriterState.WEIGHTS
        self._next += 1

    def _raise_io(self, e: BaseException) -> None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise GGUFError(f"{self.path}: disk full while writing; no output file was left behind") from None
        if isinstance(e, OSError) and not isinstance(e, GGUFError):
            raise GGUFError(f"{self.path}: write failed ({e.strerror or e}); no output file was left behind") from None

    def _abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError:
                pass
            self._writer = None
        if self._tmp is not None:
            try:
                self._tmp.unlink()
            except FileNotFoundError:
                pass
            self._tmp = None

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if et is not None:
            self._abort()
            if ev is not None:
                self._raise_io(ev)
            return
        try:
            if self._next != len(self.plan):
                missing = [p[0] for p in self.plan[self._next:]]
                raise ValueError(f"{len(missing)} declared tensors were not written (first: {missing[0]!r})")
            w = self._writer
            assert w is not None and w.fout is not None
            if not self.plan:  # no tensor data: the header still ends padded to the alignment
                w.write_padding(w.fout[0], w.fout[0].tell())
            w.flush()
            os.fsync(w.fout[0].fileno())
            w.close()
            self._writer = None
            if self.path.exists() and not self.force:
                raise GGUFError(f"{self.path}: output file appeared while writing; pass force=True to overwrite it")
            assert self._tmp is not None
            os.replace(self._tmp, self.path)
            self._tmp = None
            _fsync_dir(self.path.parent if str(self.path.parent) else Path("."))
        except BaseException as e:
            self._abort()
            self._raise_io(e)
            raise


def save_gguf(path: PathLike, tensors: Mapping[str, Any], metadata: Mapping[str, Any] | None = None, *,
              force: bool = False, progress: bool = False) -> Path:
    """Write ``tensors`` (name -> :class:`QTensor`, :class:`RawTensor` or float32/float16 numpy array) and
    ``metadata`` (a :class:`Metadata` keeps each key's GGUF type; a plain dict gets types inferred) to a GGUF file.

    Atomic: written to a temporary file beside ``path``, fsynced, then renamed; on any error or Ctrl-C nothing
    is left at ``path``. Refuses an existing ``path`` unless ``force``. Raises :class:`GGUFError` for
    user-facing problems (existing output, missing directory, full disk).
    """
    items = [(name, *_as_writable(t, name)) for name, t in tensors.items()]
    meta = metadata if metadata is not None else Metadata()
    sink = GGUFSink(path, meta, [(n, t, s) for n, _, t, s in items], force=force)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sink.total_bytes, unit="B", unit_scale=True, desc=f"writing {Path(path).name}")
    try:
        with sink:
            for name, raw, _, _ in items:
                sink.write(name, raw)
                if bar is not None:
                    bar.update(raw.size)
    finally:
        if bar is not None:
            bar.close()
    return Path(path)
