"""The public API's contract and its refusals: every bad input gets an error naming expected and got."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

import pyquant
from pyquant import QuantizationError, oracle
from pyquant.formats import GGUF_SIZE_OVERRIDES, LAYOUTS, SUPPORTED, layout, qtype_of


def test_registry_follows_gguf_and_ggml():
    for t, lay in LAYOUTS.items():
        assert (lay.block_size, lay.type_size) == (GGUF_SIZE_OVERRIDES.get(t) or GGML_QUANT_SIZES[t])
        assert lay.type_size == oracle.type_size(t), t.name  # ggml's own ggml_type_size
        assert sum(f.nbytes for f in lay.fields) == lay.type_size
    # the one deliberate difference: gguf-py's stale Q8_1 size
    assert GGML_QUANT_SIZES[GGMLQuantizationType.Q8_1] == (32, 40)
    assert layout("Q8_1").type_size == 36


@pytest.mark.parametrize("name", ["q4_k", "Q4_K", " Q4_K ", 12, GGMLQuantizationType.Q4_K])
def test_type_names_resolve(name):
    assert qtype_of(name) is GGMLQuantizationType.Q4_K


@pytest.mark.parametrize("bad,exc,msg", [
    ("Q4_Z", ValueError, "unknown quantization type 'Q4_Z'"),
    ("IQ2_XXS", ValueError, "not supported"),
    (999, ValueError, "unknown GGML type number 999"),
    (1.5, TypeError, "must be a name"),
])
def test_unknown_types_are_refused(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        qtype_of(bad)


def test_quantize_returns_qtensor_with_contract_fields():
    x = np.random.default_rng(0).standard_normal((2, 3, 64)).astype(np.float32)
    q = pyquant.quantize(x, "Q8_0")
    assert q.qtype is GGMLQuantizationType.Q8_0
    assert q.shape == (2, 3, 64)
    assert q.data.dtype == np.uint8 and q.data.shape == (2, 3, 2 * 34)
    y = q.dequantize()
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(pyquant.dequantize(q.data, "Q8_0"), y)
    np.testing.assert_array_equal(pyquant.dequantize(q.data.tobytes(), "Q8_0", shape=(6, 64)), y.reshape(6, 64))


def test_float64_and_float16_inputs_are_converted_to_float32_first():
    x = np.random.default_rng(1).standard_normal((4, 32))
    for dt in (np.float64, np.float16):
        xd = x.astype(dt)
        assert np.array_equal(pyquant.quantize(xd, "Q4_0").data, pyquant.quantize(xd.astype(np.float32), "Q4_0").data)


def test_row_length_not_multiple_of_block():
    with pytest.raises(QuantizationError, match="row length 100 is not a multiple of Q4_K's block size 256"):
        pyquant.quantize(np.zeros((2, 100), np.float32), "Q4_K")


@pytest.mark.parametrize("x", [np.zeros((2, 32), np.int32), np.zeros(32, bool), np.array(["a"] * 32)])
def test_non_float_input(x):
    with pytest.raises(QuantizationError, match=f"floating-point array.*got dtype {x.dtype}"):
        pyquant.quantize(x, "Q8_0")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_first_bad_row(bad):
    x = np.ones((3, 4, 32), np.float32)
    x[1, 2, 5] = bad
    x[2, 0, 0] = bad
    with pytest.raises(QuantizationError, match=r"row \(1, 2\) at column 5"):
        pyquant.quantize(x, "Q4_0")


# Every bit pattern that is a NaN or an Inf, at both signs: the kernels find them by integer comparisons of the
# patterns (the memory-bound ones while scanning a block for its scale), so the edges of those ranges are tested.
_NONFINITE_BITS = [0x7F800000, 0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0xFF800000, 0xFF800001, 0xFFC00000, 0xFFFFFFFF]
# and the finite patterns right next to them, which must pass
_EXTREME_FINITE_BITS = [0x7F7FFFFF, 0xFF7FFFFF, 0x00000001, 0x80000001, 0x80000000, 0x00000000]


@pytest.mark.parametrize("t", [t.name for t in SUPPORTED])
def test_every_nan_and_inf_pattern_is_refused_by_every_type(t):
    bs = layout(t).block_size
    n = bs * max(2, 64 // bs)
    rng = np.random.default_rng(7)
    for i, bits in enumerate(_NONFINITE_BITS):
        x = rng.standard_normal((3, n)).astype(np.float32)
        col = [0, n - 1, n // 2, 31, 32, n // 2 - 1, 1, n - 2][i]  # first, last, block edges
        x.view(np.uint32)[1, col] = bits
        with pytest.raises(QuantizationError, match=rf"row \(1,\) at column {col}"):
            pyquant.quantize(x, t)
    x = np.zeros((1, n), np.float32)
    x.view(np.uint32)[0, : len(_EXTREME_FINITE_BITS)] = _EXTREME_FINITE_BITS
    if t not in ("F16", "BF16"):  # FLT_MAX overflows fp16 (C's conversion makes it Inf, as ggml's does)
        pyquant.quantize(x, t)


def test_float64_overflowing_float32_is_reported_as_such():
    x = np.ones((1, 32))
    x[0, 3] = 1e300
    with pytest.raises(QuantizationError, match="after conversion to float32"):
        pyquant.quantize(x, "Q8_0")


@pytest.mark.parametrize("w,msg", [
    (np.ones(31), r"shape \(32,\)"),
    (np.ones((1, 32)), r"shape \(32,\)"),
    (-np.ones(32), "non-negative"),
    (np.full(32, np.nan), "non-finite"),
    (np.array(["x"] * 32), "float array"),
])
def test_bad_imatrix(w, msg):
    with pytest.raises(QuantizationError, match=msg):
        pyquant.quantize(np.ones((2, 32), np.float32), "Q4_0", imatrix=w)


@pytest.mark.parametrize("t", ["Q8_1", "Q8_K"])
def test_imatrix_refused_where_ggml_has_no_weighted_quantizer(t):
    n = layout(t).block_size
    with pytest.raises(QuantizationError, match="no importance-weighted quantizer"):
        pyquant.quantize(np.ones((1, n), np.float32), t, imatrix=np.ones(n))


def test_imatrix_ignored_where_ggml_ignores_it():
    x = np.random.default_rng(2).standard_normal((2, 64)).astype(np.float32)
    w = np.random.default_rng(3).random(64)
    for t in ("Q8_0", "F16", "BF16", "F32"):
        assert np.array_equal(pyquant.quantize(x, t, imatrix=w).data, pyquant.quantize(x, t).data)


def test_dequantize_wrong_sizes():
    q = pyquant.quantize(np.ones((2, 64), np.float32), "Q8_0")
    with pytest.raises(QuantizationError, match="needs 204 bytes .* got 136"):
        pyquant.dequantize(q.data, "Q8_0", shape=(3, 64))
    with pytest.raises(QuantizationError, match="multiple of its block size in bytes"):
        pyquant.dequantize(q.data[:, :-1], "Q8_0")
    with pytest.raises(QuantizationError, match="uint8"):
        pyquant.dequantize(q.data.astype(np.int16), "Q8_0")
    with pytest.raises(QuantizationError, match="positive multiple of the block size 32"):
        pyquant.dequantize(q.data, "Q8_0", shape=(2, 50))


def test_empty_row_count_is_fine():
    q = pyquant.quantize(np.zeros((0, 32), np.float32), "Q4_0")
    assert q.data.shape == (0, 18) and q.dequantize().shape == (0, 32)


def test_every_supported_type_round_trips_shape():
    for t in SUPPORTED:
        n = layout(t).block_size * 2
        x = np.linspace(-1, 1, 3 * n, dtype=np.float32).reshape(3, n)
        q = pyquant.quantize(x, t)
        assert q.dequantize().shape == (3, n), t


def test_rows_are_handed_out_in_dynamic_chunks_with_the_same_bytes():
    """Tall inputs run their rows in dynamic chunks (pyquant.cpu.rows_in_chunks); the bytes and floats are those
    of the kernel run with Numba's static split, and a short input takes the kernel directly."""
    import numba

    from pyquant import cpu

    k = cpu.kernels(qtype_of("Q6_K"))
    rows = 2 * cpu.CHUNK_ELEMENTS // 256 + 3  # two chunks and a partial one
    x = np.random.default_rng(4).standard_normal((rows, 256)).astype(np.float32)
    got, want = np.empty((rows, 210), np.uint8), np.empty((rows, 210), np.uint8)
    bad = np.zeros(rows, np.uint8)
    calls = []
    real = numba.parallel_chunksize
    try:
        numba.parallel_chunksize = lambda c: calls.append(c) or real(c)
        k.quantize(x, got, bad)
        k.quantize(x[:5], got[:5], bad[:5])
    finally:
        numba.parallel_chunksize = real
    assert calls == [cpu.CHUNK_ELEMENTS // 256]
    k.quantize.kernel(x, want, bad)
    assert (got == want).all()
    y, y0 = np.empty_like(x), np.empty_like(x)
    k.dequantize(got, y)
    k.dequantize.kernel(got, y0)
    assert y.view(np.uint32).tolist() == y0.view(np.uint32).tolist()
