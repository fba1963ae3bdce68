"""Hypothesis strategies: float rows of the shapes and distributions quantizers meet (and break on)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

# Largest magnitude we draw: short of fp16 overflow for the scales (65504) with margin for the types whose
# block scale is max/-8 or max/15 (ggml's behaviour past fp16 range is inf scales: not a useful test).
LARGE = 6.0e4

KINDS = (
    "gaussian", "uniform", "heavy", "outliers", "constant_blocks", "zero_blocks", "signed_zeros",
    "tiny", "subnormal", "large", "mixed_scales", "positive", "integers", "sparse",
)


def make_rows(kind: str, rows: int, n: int, block: int, seed: int) -> np.ndarray:
    """Deterministic float32 data of one named distribution."""
    rng = np.random.default_rng(seed)
    shape = (rows, n)
    if kind == "gaussian":
        x = rng.standard_normal(shape) * rng.choice([1e-3, 0.02, 1.0, 30.0])
    elif kind == "uniform":
        x = rng.uniform(-1, 1, shape) * rng.choice([0.01, 1.0, 100.0])
    elif kind == "heavy":
        x = rng.standard_t(df=2, size=shape) * 0.05
    elif kind == "outliers":
        x = rng.standard_normal(shape) * 0.02
        idx = rng.integers(0, x.size, max(1, x.size // 200))
        x.flat[idx] = rng.choice([-1, 1], idx.size) * rng.uniform(1, 20, idx.size)
    elif kind == "constant_blocks":
        x = np.repeat(rng.standard_normal((rows, n // block)), block, axis=1)
        x[:, ::3] = np.repeat(rng.standard_normal((rows, 1)), x[:, ::3].shape[1], axis=1)
    elif kind == "zero_blocks":
        x = rng.standard_normal(shape)
        mask = rng.random((rows, n // block)) < 0.5
        x[np.repeat(mask, block, axis=1)] = 0.0
    elif kind == "signed_zeros":
        x = np.where(rng.random(shape) < 0.5, -0.0, 0.0)
        x[rng.random(shape) < 0.1] = rng.standard_normal() or 1.0
    elif kind == "tiny":
        x = rng.standard_normal(shape) * 1e-30
    elif kind == "subnormal":
        x = rng.standard_normal(shape) * 1e-39  # float32 subnormals
        x[rng.random(shape) < 0.3] = 1.4e-45
    elif kind == "large":
        x = rng.uniform(-LARGE, LARGE, shape)
    elif kind == "mixed_scales":
        scales = 10.0 ** rng.uniform(-6, 4, (rows, n // block))
        x = rng.standard_normal(shape) * np.repeat(scales, block, axis=1)
    elif kind == "positive":
        x = np.abs(rng.standard_normal(shape)) + rng.choice([0.0, 5.0])
    elif kind == "integers":
        x = rng.integers(-8, 8, shape).astype(np.float64)
    elif kind == "sparse":
        x = rng.standard_normal(shape) * (rng.random(shape) < 0.05)
    else:
        raise ValueError(kind)
    return np.clip(x, -LARGE, LARGE).astype(np.float32)


def make_imatrix(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 7919)
    if kind == "uniform":
        w = rng.uniform(0, 1, n)
    elif kind == "lognormal":  # real activations' second moments span decades
        w = np.exp(rng.standard_normal(n) * 2)
    elif kind == "sparse":
        w = rng.uniform(0, 1, n) * (rng.random(n) < 0.3)
    elif kind == "zeros":
        w = np.zeros(n)
    elif kind == "ones":
        w = np.ones(n)
    else:
        raise ValueError(kind)
    return w.astype(np.float32)


IMATRIX_KINDS = ("uniform", "lognormal", "sparse", "zeros", "ones")


@st.composite
def rows_case(draw, block: int, max_blocks: int = 6):
    rows = draw(st.integers(1, 3))
    nblocks = draw(st.integers(1, max_blocks))
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**31 - 1))
    return kind, make_rows(kind, rows, nblocks * block, block, seed), seed
