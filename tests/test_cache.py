"""Compiled kernels are cached on disk: a second process loads them instead of compiling again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, numpy as np, pyquant
from pyquant import cpu
x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)
q = pyquant.quantize(x, "Q4_K"); q.dequantize()
k = cpu.kernels(q.qtype)
stats = {name: fn.kernel.stats for name, fn in (("quantize", k.quantize), ("dequantize", k.dequantize))}
print(json.dumps({name: [sum(s.cache_hits.values()), sum(s.cache_misses.values())] for name, s in stats.items()}))
"""


def _run(env):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_kernels_from_disk_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    _run(env)  # first process: compiles and writes the cache (or finds it written already)
    second = _run(env)
    for fn, (hits, misses) in second.items():
        assert misses == 0 and hits >= 1, f"{fn}: second process recompiled (hits={hits}, misses={misses})"
