"""Differential tests: pyquant's bytes and floats against ggml's C library (pyquant.oracle), every type."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import pyquant
from pyquant import cpu, oracle
from pyquant.formats import SUPPORTED, layout

from .strategies import IMATRIX_KINDS, make_imatrix, rows_case

TYPES = [t for t in SUPPORTED]
WEIGHTED = [t for t in TYPES if t in cpu.available() and cpu.kernels(t).imatrix == cpu.WEIGHTED]


def _ids(ts):
    return [t.name for t in ts]


def assert_same_bytes(ours: np.ndarray, ref: np.ndarray, qtype) -> None:
    if not np.array_equal(ours, ref):
        lay = layout(qtype)
        diff = np.argwhere(ours.reshape(ours.shape[0], -1) != ref.reshape(ref.shape[0], -1))
        r, byte = diff[0]
        raise AssertionError(
            f"{qtype.name}: {len(diff)} bytes differ; first at row {r}, block {byte // lay.type_size},"
            f" byte {byte % lay.type_size}: ours {ours[r, byte]} ggml {ref[r, byte]}"
        )


def assert_same_floats(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    a, b = ours.view(np.uint32), ref.view(np.uint32)
    if not np.array_equal(a, b):
        i = np.argwhere(a != b)[0]
        raise AssertionError(f"{what}: floats differ at {tuple(i)}: ours {ours[tuple(i)]!r} ggml {ref[tuple(i)]!r}")


@pytest.mark.parametrize("qtype", TYPES, ids=_ids(TYPES))
@given(data=st.data())
def test_quantize_and_dequantize_match_ggml(qtype, data):
    kind, x, seed = data.draw(rows_case(layout(qtype).block_size, max_blocks=8 if layout(qtype).block_size > 1 else 64))
    note(f"kind={kind} shape={x.shape} seed={seed}")
    q = pyquant.quantize(x, qtype)
    ref = oracle.quantize(x, qtype)
    assert q.data.shape == ref.shape
    assert_same_bytes(q.data, ref, qtype)
    assert_same_floats(q.dequantize(), oracle.dequantize(ref, qtype, x.shape[1]), f"{qtype.name} dequantize")


@pytest.mark.parametrize("qtype", WEIGHTED, ids=_ids(WEIGHTED))
@given(data=st.data(), wkind=st.sampled_from(IMATRIX_KINDS))
def test_imatrix_quantize_matches_ggml(qtype, data, wkind):
    kind, x, seed = data.draw(rows_case(layout(qtype).block_size))
    w = make_imatrix(wkind, x.shape[1], seed)
    note(f"kind={kind} imatrix={wkind} shape={x.shape} seed={seed}")
    assert_same_bytes(pyquant.quantize(x, qtype, imatrix=w).data, oracle.quantize(x, qtype, imatrix=w), qtype)


@pytest.mark.parametrize("qtype", TYPES, ids=_ids(TYPES))
@given(seed=st.integers(0, 2**31 - 1))
def test_dequantize_arbitrary_bytes_matches_ggml(qtype, seed):
    """Dequantization is total: any bytes (with finite half scales) decode exactly as ggml decodes them."""
    lay = layout(qtype)
    rng = np.random.default_rng(seed)
    nblocks = int(rng.integers(1, 9))
    raw = rng.integers(0, 256, (2, nblocks * lay.type_size), dtype=np.uint8)
    # Replace scale fields by finite values: NaN payloads are not a property ggml defines either way.
    blocks = raw.reshape(-1, lay.type_size)
    for f in lay.fields:
        if f.ctype in ("half", "bf16", "float"):
            vals = rng.standard_normal((blocks.shape[0], f.count)).astype(np.float32)
            enc = vals.astype(np.float16) if f.ctype == "half" else vals
            if f.ctype == "bf16":
                enc = (vals.view(np.uint32) >> 16).astype(np.uint16)
            blocks[:, f.offset:f.offset + f.nbytes] = np.ascontiguousarray(enc).view(np.uint8).reshape(blocks.shape[0], -1)
    n = nblocks * lay.block_size
    ours = pyquant.dequantize(raw, qtype)
    assert ours.shape == (2, n)
    assert_same_floats(ours, oracle.dequantize(raw, qtype, n), f"{qtype.name} dequantize of random bytes")
