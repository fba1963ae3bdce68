"""pyquant.analysis: error metrics, Pareto front and block-field decoding, on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

import pyquant
import pyquant.analysis as pqa


def test_metrics_on_a_known_error():
    x = np.array([[1.0, -2.0, 3.0, 0.0]], np.float32)
    y = x + np.array([[0.5, -0.5, 0.5, -0.5]], np.float32)
    assert pqa.rmse(x, y) == 0.5
    assert pqa.max_abs(x, y) == 0.5
    # signal 1 + 4 + 9 = 14, noise 4 * 0.25 = 1
    assert pqa.snr_db(x, y) == pytest.approx(10 * np.log10(14.0), abs=1e-12)
    assert pqa.snr_db(x, x) == float("inf")
    assert pqa.snr_db(np.zeros(4), np.ones(4)) == float("-inf")


def test_metrics_refuse_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="same shape"):
        pqa.rmse(np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match="at least one"):
        pqa.rmse(np.zeros(0), np.zeros(0))


def test_weighted_rmse():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8))
    y = x + rng.standard_normal((3, 8))
    assert pqa.weighted_rmse(x, y, np.ones(8)) == pytest.approx(pqa.rmse(x, y), rel=1e-12)
    w = np.zeros(8)
    w[5] = 7.0  # all weight on one column: the RMSE of that column
    assert pqa.weighted_rmse(x, y, w) == pytest.approx(float(np.sqrt(np.mean((y - x)[:, 5] ** 2))), rel=1e-12)
    for bad in (np.ones(7), -np.ones(8), np.zeros(8), np.full(8, np.nan)):
        with pytest.raises(ValueError):
            pqa.weighted_rmse(x, y, bad)


def test_block_rmse():
    x = np.zeros((2, 6))
    y = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 2, 2, 2]], np.float64)
    np.testing.assert_array_equal(pqa.block_rmse(x, y, 3), [[1, 0], [0, 2]])
    with pytest.raises(ValueError, match="multiple"):
        pqa.block_rmse(x, y, 4)


def test_imatrix_from_activations():
    a = np.array([[1.0, 2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(pqa.imatrix_from_activations(a), np.array([5.0, 10.0], np.float32))
    with pytest.raises(ValueError):
        pqa.imatrix_from_activations(np.zeros((0, 3)))


def test_pareto_front():
    bits = [2, 3, 3, 4, 5, 6]
    err = [0.5, 0.3, 0.4, 0.35, 0.1, 0.1]
    # (3, 0.4) loses to (3, 0.3); (4, 0.35) to (3, 0.3); (6, 0.1) ties (5, 0.1) with more bits
    np.testing.assert_array_equal(pqa.pareto_front(bits, err), [0, 1, 4])
    assert pqa.pareto_front([1.0], [1.0]).tolist() == [0]
    with pytest.raises(ValueError):
        pqa.pareto_front([1, 2], [1.0])


def test_error_report_and_compare_types():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 256)).astype(np.float32)
    exact = pqa.error_report(x, "F32")
    assert exact.rmse == 0 and exact.max_abs == 0 and exact.snr_db == float("inf") and exact.bits_per_weight == 32
    r = pqa.error_report(x, "Q8_0")
    y = pyquant.quantize(x, "Q8_0").dequantize()
    assert r.qtype == "Q8_0" and r.bits_per_weight == 8.5 and r.weighted_rmse is None
    assert r.rmse == pqa.rmse(x, y) and r.max_abs == pqa.max_abs(x, y)
    assert r.rel_rmse == pytest.approx(r.rmse / np.sqrt(np.mean(x.astype(np.float64) ** 2)), rel=1e-12)
    imp = rng.random(256).astype(np.float32)
    scored = pqa.error_report(x, "Q4_K", importance=imp)  # quantized without imatrix, scored with importance
    assert scored.weighted_rmse == pytest.approx(pqa.weighted_rmse(x, pyquant.quantize(x, "Q4_K").dequantize(), imp))
    reps = pqa.compare_types(x, ["Q8_0", "Q4_K"])
    assert [q.qtype for q in reps] == ["Q8_0", "Q4_K"] and reps[0].rmse < reps[1].rmse


def test_block_fields_reproduce_q8_0_and_q4_k_headers():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 512)).astype(np.float32)
    q = pyquant.quantize(x, "Q8_0")
    f = pqa.block_fields(q)
    assert f["d"].shape == (48, 1) and f["qs"].shape == (48, 32) and f["qs"].dtype == np.int8
    # Q8_0 dequantization is d * qs, element by element
    np.testing.assert_array_equal((f["d"] * f["qs"].astype(np.float32)).reshape(3, 512), q.dequantize())

    q4 = pyquant.quantize(x, "Q4_K")
    f4 = pqa.block_fields(q4)
    raw = q4.data.reshape(-1, 144)
    np.testing.assert_array_equal(f4["d"][:, 0], raw[:, 0:2].copy().view("<f2")[:, 0].astype(np.float32))
    np.testing.assert_array_equal(f4["dmin"][:, 0], raw[:, 2:4].copy().view("<f2")[:, 0].astype(np.float32))
    np.testing.assert_array_equal(f4["qs"], raw[:, 16:144])
    assert set(f4) == {"d", "dmin", "scales", "qs"}


def test_block_fields_bf16_and_f16():
    x = np.array([[1.5, -2.25, 3.0e-3, 65504.0]], np.float32)
    for t in ("F16", "BF16"):
        q = pyquant.quantize(x, t)
        np.testing.assert_array_equal(pqa.block_fields(q)["v"].reshape(1, 4), q.dequantize())
