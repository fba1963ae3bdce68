"""Real weights: every 2-D weight of all-MiniLM-L6-v2 quantized to every type, bytes identical to ggml."""

from __future__ import annotations

import numpy as np
import pytest

import pyquant
from pyquant import cpu, oracle
from pyquant.formats import SUPPORTED, layout

from .test_differential import assert_same_bytes, assert_same_floats

safetensors_numpy = pytest.importorskip("safetensors.numpy")


@pytest.fixture(scope="module")
def minilm():
    from pyquant.data import minilm_path

    tensors = safetensors_numpy.load_file(str(minilm_path()))
    return {k: v.astype(np.float32) for k, v in tensors.items() if v.ndim == 2}


@pytest.mark.parametrize("qtype", SUPPORTED, ids=[t.name for t in SUPPORTED])
def test_minilm_every_weight_matches_ggml(minilm, qtype):
    bs = layout(qtype).block_size
    fits = {k: v for k, v in minilm.items() if v.shape[1] % bs == 0}
    # 384-wide rows take the 32-blocks; only the six 1536-wide FFN output weights take the 256-element k-quants
    assert len(fits) >= 6, f"{qtype.name}: expected at least the 6 FFN output weights to fit"
    weighted = cpu.kernels(qtype).imatrix == cpu.WEIGHTED
    for name, w in fits.items():
        q = pyquant.quantize(w, qtype)
        ref = oracle.quantize(w, qtype)
        assert_same_bytes(q.data, ref, qtype)
        assert_same_floats(q.dequantize(), oracle.dequantize(ref, qtype, w.shape[1]), f"{qtype.name} {name}")
        if weighted and "layer.0." in name:  # importance path on one layer: an activation-like profile
            imat = (np.abs(w).mean(axis=0) + 1e-3).astype(np.float32) ** 2
            assert_same_bytes(pyquant.quantize(w, qtype, imatrix=imat).data, oracle.quantize(w, qtype, imatrix=imat), qtype)
