"""The type registry and the one definition of every block layout.

Everything that knows how bytes are laid out reads it from here: the Numba code (through the
offsets below), the kernel header ``hsaco/include/pq_blocks.h`` (generated from :data:`LAYOUTS`
by ``hsaco/build.py`` and checked by a test), the GGUF layer and the device runtime.

Names, block sizes and type sizes come from ``gguf.GGMLQuantizationType`` and
``gguf.GGML_QUANT_SIZES``; the field order follows ggml's ``ggml-common.h`` (MIT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

QK_K = 256  # elements in a k-quant super-block
K_SCALE_SIZE = 12  # bytes of packed 6-bit scales and mins in Q4_K/Q5_K
MATRIX_ROW_PADDING = 512  # device rows are padded to a multiple of this many elements


@dataclass(frozen=True)
class Field:
    """One member of a block: ``count`` items of C type ``ctype`` at byte ``offset``."""

    name: str
    ctype: str  # "half", "bf16", "float", "uint8_t", "int8_t", "int16_t", "uint16_t"
    count: int
    offset: int

    @property
    def nbytes(self) -> int:
        return self.count * _CSIZE[self.ctype]


_CSIZE = {"half": 2, "bf16": 2, "float": 4, "uint8_t": 1, "int8_t": 1, "int16_t": 2, "uint16_t": 2}


@dataclass(frozen=True)
class Layout:
    """The byte layout of one block of a GGML type (a struct ``block_<name>`` in ggml-common.h)."""

    qtype: GGMLQuantizationType
    block_size: int  # elements per block
    type_size: int  # bytes per block
    fields: tuple[Field, ...]

    @property
    def name(self) -> str:
        return self.qtype.name

    @property
    def c_name(self) -> str:
        """ggml's spelling: ``block_q4_K`` for Q4_K, ``block_q4_0`` for Q4_0."""
        return "block_" + ggml_name(self.qtype)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def is_quantized(self) -> bool:
        return self.block_size > 1


def ggml_name(qtype: GGMLQuantizationType) -> str:
    """ggml's lower-case spelling that keeps the ``_K`` suffix: ``q4_K``, ``q8_0``, ``f16``."""
    n = qtype.name.lower()
    return n[:-2] + "_K" if n.endswith("_k") else n


# gguf-py 0.19 still lists Q8_1 with float32 d and s (40 bytes); ggml has used two halves (36 bytes) since
# 2023 (`block_q8_1` in ggml-common.h, `ggml_type_size(GGML_TYPE_Q8_1) == 36`). Q8_1 is a dot-product operand
# that never appears in a GGUF file, so this is the one place we follow ggml over gguf-py; a test pins it.
GGUF_SIZE_OVERRIDES: dict[GGMLQuantizationType, tuple[int, int]] = {GGMLQuantizationType.Q8_1: (32, 36)}


def _layout(qtype: GGMLQuantizationType, *members: tuple[str, str, int]) -> Layout:
    block_size, type_size = GGUF_SIZE_OVERRIDES.get(qtype) or GGML_QUANT_SIZES[qtype]
    fields, off = [], 0
    for name, ctype, count in members:
        fields.append(Field(name, ctype, count, off))
        off += count * _CSIZE[ctype]
    if off != type_size:  # the static_assert of ggml-common.h, against gguf's table
        raise AssertionError(f"{qtype.name}: fields add up to {off} bytes, gguf says {type_size}")
    return Layout(qtype, block_size, type_size, tuple(fields))


T = GGMLQuantizationType
LAYOUTS: dict[GGMLQuantizationType, Layout] = {
    lay.qtype: lay
    for lay in (
        _layout(T.F32, ("v", "float", 1)),
        _layout(T.F16, ("v", "half", 1)),
        _layout(T.BF16, ("v", "bf16", 1)),
        _layout(T.Q4_0, ("d", "half", 1), ("qs", "uint8_t", 16)),
        _layout(T.Q4_1, ("d", "half", 1), ("m", "half", 1), ("qs", "uint8_t", 16)),
        _layout(T.Q5_0, ("d", "half", 1), ("qh", "uint8_t", 4), ("qs", "uint8_t", 16)),
        _layout(T.Q5_1, ("d", "half", 1), ("m", "half", 1), ("qh", "uint8_t", 4), ("qs", "uint8_t", 16)),
        _layout(T.Q8_0, ("d", "half", 1), ("qs", "int8_t", 32)),
        _layout(T.Q8_1, ("d", "half", 1), ("s", "half", 1), ("qs", "int8_t", 32)),
        _layout(T.Q2_K, ("scales", "uint8_t", 16), ("qs", "uint8_t", 64), ("d", "half", 1), ("dmin", "half", 1)),
        _layout(T.Q3_K, ("hmask", "uint8_t", 32), ("qs", "uint8_t", 64), ("scales", "uint8_t", 12), ("d", "half", 1)),
        _layout(T.Q4_K, ("d", "half", 1), ("dmin", "half", 1), ("scales", "uint8_t", 12), ("qs", "uint8_t", 128)),
        _layout(
            T.Q5_K,
            ("d", "half", 1), ("dmin", "half", 1), ("scales", "uint8_t", 12), ("qh", "uint8_t", 32), ("qs", "uint8_t", 128),
        ),
        _layout(T.Q6_K, ("ql", "uint8_t", 128), ("qh", "uint8_t", 64), ("scales", "int8_t", 16), ("d", "half", 1)),
        _layout(T.Q8_K, ("d", "float", 1), ("qs", "int8_t", 256), ("bsums", "int16_t", 16)),
        _layout(T.IQ4_NL, ("d", "half", 1), ("qs", "uint8_t", 16)),
        _layout(T.IQ4_XS, ("d", "half", 1), ("scales_h", "uint16_t", 1), ("scales_l", "uint8_t", 4), ("qs", "uint8_t", 128)),
        _layout(T.MXFP4, ("e", "uint8_t", 1), ("qs", "uint8_t", 16)),
        _layout(T.TQ1_0, ("qs", "uint8_t", 48), ("qh", "uint8_t", 4), ("d", "half", 1)),
        _layout(T.TQ2_0, ("qs", "uint8_t", 64), ("d", "half", 1)),
    )
}
del T

#: The types pyquant quantizes and dequantizes, in registry order.
SUPPORTED: tuple[GGMLQuantizationType, ...] = tuple(LAYOUTS)

QTypeLike = str | int | GGMLQuantizationType


def qtype_of(q: QTypeLike) -> GGMLQuantizationType:
    """Resolve ``"Q4_K"``, ``"q4_k"``, ``12`` or a ``GGMLQuantizationType`` to a supported type."""
    if isinstance(q, GGMLQuantizationType):
        t = q
    elif isinstance(q, str):
        key = q.strip().upper()
        try:
            t = GGMLQuantizationType[key]
        except KeyError:
            raise ValueError(
                f"unknown quantization type {q!r}; expected one of {', '.join(x.name for x in SUPPORTED)}"
            ) from None
    elif isinstance(q, (int, np.integer)) and not isinstance(q, bool):
        try:
            t = GGMLQuantizationType(int(q))
        except ValueError:
            raise ValueError(f"unknown GGML type number {q}") from None
    else:
        raise TypeError(f"quantization type must be a name or GGMLQuantizationType, got {type(q).__name__}")
    if t not in LAYOUTS:
        raise ValueError(
            f"type {t.name} is not supported by pyquant yet; supported: {', '.join(x.name for x in SUPPORTED)}"
        )
    return t


def layout(q: QTypeLike) -> Layout:
    return LAYOUTS[qtype_of(q)]


def row_bytes(q: QTypeLike, n: int) -> int:
    """Bytes of one row of ``n`` elements (``n`` must be a multiple of the block size)."""
    lay = layout(q)
    return n // lay.block_size * lay.type_size


def bits_per_weight(q: QTypeLike) -> float:
    lay = layout(q)
    return 8.0 * lay.type_size / lay.block_size
