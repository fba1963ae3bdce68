"""Q2_K, Q4_K and Q5_K kernels (pyquant.cpu.kquants_a) against ggml, and its lane search against search.py.

The generic differential tests draw shapes and distributions at random; here every distribution of
``strategies.KINDS`` and every imatrix kind of ``IMATRIX_KINDS`` runs for these three types, dequantization
is checked on arbitrary bytes (every scale and level pattern), and ``kquants_a.qkx_search`` (ggml's
make_qkx2_quants / make_qkx3_quants with the search steps in vector lanes) is compared, scale, min and levels,
with the literal transcriptions in ``pyquant.cpu.search`` for every parameter set these types call it with.
"""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from pyquant import cpu, oracle
from pyquant.formats import row_bytes

from .strategies import IMATRIX_KINDS, KINDS, make_imatrix, make_rows

cpu.available()  # load the registry's own families first: importing one family first would hide the others
from pyquant.cpu import kquants_a as ka  # noqa: E402
from pyquant.cpu import search  # noqa: E402
from pyquant.cpu.common import f32  # noqa: E402

TYPES = {
    T.Q2_K: (ka.quantize_q2_k, ka.quantize_imatrix_q2_k, ka.dequantize_q2_k),
    T.Q4_K: (ka.quantize_q4_k, ka.quantize_imatrix_q4_k, ka.dequantize_q4_k),
    T.Q5_K: (ka.quantize_q5_k, ka.quantize_imatrix_q5_k, ka.dequantize_q5_k),
}


def _quantize(qtype, x, w=None):
    q, qi, _ = TYPES[qtype]
    out = np.empty((x.shape[0], row_bytes(qtype, x.shape[1])), dtype=np.uint8)
    bad = np.ones(x.shape[0], dtype=np.uint8)
    q(x, out, bad) if w is None else qi(x, w, out, bad)
    assert not bad.any()
    return out


def _dequantize(qtype, data, n):
    out = np.empty((data.shape[0], n), dtype=np.float32)
    TYPES[qtype][2](data, out)
    return out


def _check(qtype, x, w=None, what=""):
    ours = _quantize(qtype, x, w)
    ref = oracle.quantize(x, qtype, imatrix=w)
    if not np.array_equal(ours, ref):
        r, c = np.argwhere(ours != ref)[0]
        size = ref.shape[1] // (x.shape[1] // 256)
        raise AssertionError(f"{qtype.name} {what}: bytes differ at row {r} block {c // size} byte {c % size}")
    y = _dequantize(qtype, ref, x.shape[1])
    y_ref = oracle.dequantize(ref, qtype, x.shape[1])
    assert np.array_equal(y.view(np.uint32), y_ref.view(np.uint32)), f"{qtype.name} {what}: dequantized floats differ"


def test_registered():
    for qtype, (q, qi, dq) in TYPES.items():
        k = cpu.kernels(qtype)
        assert (k.quantize.kernel, k.quantize_imatrix.kernel, k.dequantize.kernel, k.imatrix) == (q, qi, dq, cpu.WEIGHTED)


@pytest.mark.parametrize("qtype", list(TYPES), ids=lambda t: t.name)
@pytest.mark.parametrize("kind", KINDS)
def test_reference_path_every_distribution(qtype, kind):
    for seed, (rows, nb) in enumerate([(3, 1), (2, 3), (1, 5)]):
        _check(qtype, make_rows(kind, rows, nb * 256, 256, seed * 31 + len(kind)), what=kind)


@pytest.mark.parametrize("qtype", list(TYPES), ids=lambda t: t.name)
@pytest.mark.parametrize("kind", KINDS)
def test_imatrix_path_every_distribution(qtype, kind):
    for seed, wkind in enumerate(IMATRIX_KINDS):
        x = make_rows(kind, 2, 512, 256, 1000 + seed)
        _check(qtype, x, make_imatrix(wkind, 512, seed), what=f"{kind} imatrix={wkind}")


@pytest.mark.parametrize("qtype", list(TYPES), ids=lambda t: t.name)
def test_corner_blocks(qtype):
    """Blocks ggml treats specially: all-zero, ±0 only, constant (positive, negative), one non-zero value,
    single-signed, subnormal, values at the fp16 edge, and sub-blocks of 16 mixing all of them."""
    n = 256
    rows = [
        np.zeros(n), np.full(n, -0.0), np.where(np.arange(n) % 2, 0.0, -0.0), np.full(n, 3.5), np.full(n, -2.0),
        np.eye(1, n, 17)[0] * 5.0, np.eye(1, n, 200)[0] * -1e-3, np.linspace(0.5, 1.0, n), -np.linspace(0.5, 1.0, n),
        np.full(n, 1.4e-45), np.linspace(-1e-40, 1e-40, n), np.linspace(-6e4, 6e4, n), np.full(n, 6e4),
        np.arange(n) % 4 - 1.0,
    ]
    rng = np.random.default_rng(5)
    mixed = np.concatenate([rng.choice(rows)[:16] for _ in range(16)])
    x = np.stack(rows + [mixed]).astype(np.float32)
    _check(qtype, x, what="corners")
    for wkind in IMATRIX_KINDS:
        _check(qtype, x, make_imatrix(wkind, n, 3), what=f"corners imatrix={wkind}")
    w = np.zeros(n, np.float32)
    w[::7] = 1.0  # most weights zero: sub-blocks with one or two weighted values
    _check(qtype, x, w, what="corners sparse imatrix")


@pytest.mark.parametrize("qtype", list(TYPES), ids=lambda t: t.name)
def test_many_rows_in_parallel(qtype):
    x = make_rows("gaussian", 37, 1024, 256, 11)
    _check(qtype, x, what="37 rows")
    _check(qtype, x, make_imatrix("lognormal", 1024, 11), what="37 rows imatrix")


@pytest.mark.parametrize("qtype", list(TYPES), ids=lambda t: t.name)
@given(seed=st.integers(0, 2**32 - 1), nblocks=st.integers(1, 6), rows=st.integers(1, 3))
def test_dequantize_arbitrary_bytes(qtype, seed, nblocks, rows):
    """Every byte pattern (scales, mins, levels, half d/dmin incl. subnormal, inf and NaN) as ggml decodes it."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (rows, row_bytes(qtype, 256 * nblocks)), dtype=np.uint8)
    ours = _dequantize(qtype, data, 256 * nblocks)
    ref = oracle.dequantize(data, qtype, 256 * nblocks)
    assert np.array_equal(ours.view(np.uint32), ref.view(np.uint32))


# ------------------------------------------------------------------------------ the lane search vs search.py

# (n, nmax, rmin, rdelta, nstep, use_mad, x3) exactly as the quantizers call it
SEARCHES = {
    "Q2_K ref": (16, 3, -0.5, 0.1, 15, True, False),
    "Q4_K ref": (32, 15, -1.0, 0.1, 20, False, False),
    "Q5_K ref": (32, 31, -0.5, 0.1, 15, False, False),
    "Q2_K imatrix": (16, 3, -0.9, 0.05, 36, False, True),
    "Q4_K imatrix": (32, 15, -0.9, 0.05, 36, False, True),
    "Q5_K imatrix": (32, 31, -0.9, 0.05, 36, False, True),
}
_DRIVERS = {}


def _driver(name):
    """Both searches over every row of X (sub-blocks) with weights W, compiled with the call's constants."""
    if name in _DRIVERS:
        return _DRIVERS[name]
    n, nmax, rmin, rdelta, nstep, use_mad, x3 = SEARCHES[name]
    rmin, rdelta = f32(rmin), f32(rdelta)

    @njit
    def run(X, W, L_new, L_old, s_new, s_old):
        ln = np.empty(8 * ka.NLANE, np.float32)
        the_min = np.empty(1, np.float32)
        Laux = np.empty(n, np.uint8)
        for b in range(X.shape[0]):
            sc, mn = ka.qkx_search(n, nmax, X[b], 0, W[b], L_new[b], 0, rmin, rdelta, nstep, use_mad, x3, ln)
            s_new[b, 0] = sc
            s_new[b, 1] = mn
            if x3:
                sc = search.make_qkx3_quants(n, nmax, X[b], W[b], True, L_old[b], the_min, Laux, rmin, rdelta,
                                             nstep, use_mad)
            else:
                sc = search.make_qkx2_quants(n, nmax, X[b], W[b], L_old[b], the_min, Laux, rmin, rdelta, nstep,
                                             use_mad)
            s_old[b, 0] = sc
            s_old[b, 1] = the_min[0]

    _DRIVERS[name] = run
    return run


def _weights(name, X, rng, wkind):
    """The weights the quantizer itself would pass, or imatrix-style weights of one kind."""
    if name == "Q2_K ref":
        return np.abs(X)
    if name.endswith("ref"):
        av = np.sqrt((X.astype(np.float32) ** 2).sum(axis=1, dtype=np.float32) / np.float32(X.shape[1]))
        return (av[:, None] + np.abs(X)).astype(np.float32)
    qw = make_imatrix(wkind, X.size, int(rng.integers(1 << 30))).reshape(X.shape)
    return (qw * np.sqrt(np.float32(1.0) + X * X)).astype(np.float32)


def _compare_search(name, X, W):
    X = np.ascontiguousarray(X, dtype=np.float32)
    W = np.ascontiguousarray(W, dtype=np.float32)
    nb, n = X.shape
    L_new = np.zeros((nb, n), np.uint8)
    L_old = np.zeros((nb, n), np.uint8)
    s_new = np.zeros((nb, 2), np.float32)
    s_old = np.zeros((nb, 2), np.float32)
    _driver(name)(X, W, L_new, L_old, s_new, s_old)
    bad = np.flatnonzero((s_new.view(np.uint32) != s_old.view(np.uint32)).any(axis=1) | (L_new != L_old).any(axis=1))
    if bad.size:
        b = bad[0]
        raise AssertionError(
            f"{name}: {bad.size} of {nb} sub-blocks differ; first x={X[b].tolist()} w={W[b].tolist()}:"
            f" (scale, min) {s_new[b].tolist()} vs {s_old[b].tolist()}, L {L_new[b].tolist()} vs {L_old[b].tolist()}"
        )


@pytest.mark.parametrize("name", list(SEARCHES))
def test_lane_search_matches_search_py_every_distribution(name):
    n = SEARCHES[name][0]
    rng = np.random.default_rng(len(name))
    for i, kind in enumerate(KINDS):
        X = make_rows(kind, 64, 8 * n, n, 100 + i).reshape(-1, n)
        for wkind in IMATRIX_KINDS if name.endswith("imatrix") else ("own",):
            _compare_search(name, X, _weights(name, X, rng, wkind))


@pytest.mark.parametrize("name", list(SEARCHES))
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-30, 1e-3, 1.0, 7.0, 1e4]),
       levels=st.sampled_from([0, 2, 5, 40]))
def test_lane_search_matches_search_py_random(name, seed, scale, levels):
    """Random sub-blocks and arbitrary non-negative weights (zeros included), values on a coarse grid
    (levels > 0) to provoke equal errors between steps, where C keeps the earlier one."""
    n = SEARCHES[name][0]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((256, n))
    if levels:
        X = np.round(X * levels) / levels
    X = (X * scale + rng.choice([0.0, 0.0, scale, -scale], (256, 1))).astype(np.float32)
    W = rng.exponential(1.0, (256, n)) * (rng.random((256, n)) < rng.choice([0.2, 0.9, 1.0], (256, 1)))
    _compare_search(name, X, W)
