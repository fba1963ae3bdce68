#!/usr/bin/env bash
# The one script the GPU machine runs: install carried wheels, build code objects if none were carried,
# run the GPU tests and the dequantize benchmark (then a memcheck pass if time is left); logs and tables to $OUT.
#
#   device run, carrying .whl pyquant/kernels .device:   bash benchmarks/device_run.sh
#
# Prepare here (nothing can be fetched there):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 -d .whl gguf==0.19.0       # the image lacks gguf
#   python hsaco/build.py --check                                    # pyquant/kernels (cubins need nvcc)
#   python -m tests.test_device --gemma-parts .device/gemma 5        # the whole Gemma model in 5 parts of ~47 MiB
#   python hsaco/build.py --arch sm_90,compute_80 --out .device/kernels
#
# GEMMA_PART=i tests part i (default 0; carry only that part: .device/gemma/part<i>.npz). PARTS_ONLY=1 runs only
# the Gemma test (the other parts, one call each). .device/kernels_base (optional: objects of an earlier commit)
# adds the dequantize benchmark of those objects for the types in BASE_TYPES, same run.
#
# Budget: stays under ~7 minutes (each step has a timeout; the memcheck pass runs only if time is left).
# Files in $OUT (at most 8 come back): summary.txt, build.log, pytest.log, junit.xml, bench.log, gpu_table.md,
# memcheck.log.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/pyquant_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/numba_cache
DEADLINE=${DEADLINE:-420}  # seconds for the whole script
S="$OUT/summary.txt"
note() { echo "== [$SECONDS s] $*" | tee -a "$S"; }
left() { echo $(( DEADLINE - SECONDS )); }

# 1. wheels (gguf; anything else carried in .whl)
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { note "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi

# 2. what machine this is
note "environment"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
    --format=csv 2>&1
  python3 -c 'import sys, numpy, numba, cuda.bindings as cb; print(sys.version.split()[0], "numpy", numpy.__version__, "numba", numba.__version__, "cuda-bindings", cb.__version__)'
  nvcc --version 2>/dev/null | tail -1; nproc; } 2>&1 | tee -a "$S"

# 3. code objects: use the carried ones when they cover this GPU and match the sources, else build here
if python3 - >>"$S" 2>&1 <<'EOF'
import sys
from pyquant.device import codeobjects, get_device, select_code_object
why = codeobjects.staleness()
co = select_code_object(get_device("gpu").properties)
print("code object:", co.path.name, co.kind, "| stale:", why)
sys.exit(1 if why or co.kind != "cubin" else 0)
EOF
then note "carried code objects fit"
else
  note "building code objects (nvcc)"
  timeout 300 python3 hsaco/build.py --nvidia-only --check >"$OUT/build.log" 2>&1; note "build exit $?"
fi

PART=.device/gemma/part${GEMMA_PART:-0}.npz
if [ -f "$PART" ]; then export PYQUANT_GEMMA_PART=$PWD/$PART; note "Gemma part: $PART"; fi
if [ "${PARTS_ONLY:-0}" = 1 ]; then
  note "pytest -m gpu (Gemma part only)"
  timeout $(( $(left) - 20 )) python3 -m pytest -m gpu -q -rs -s -p no:cacheprovider tests/test_device.py \
    -k gemma_every_tensor 2>&1 | tee "$OUT/pytest.log" | tail -8
  note "pytest exit ${PIPESTATUS[0]}"
  exit 0
fi

# 4. warm Numba's cache in parallel (one process per type: CPU references compile once, not inside the tests)
note "warming Numba cache"
timeout 200 python3 - >>"$S" 2>&1 <<'EOF'
import concurrent.futures as cf, time
from pyquant.formats import SUPPORTED
def warm(name):
    import numpy as np, pyquant
    t = time.time()
    x = np.random.default_rng(0).standard_normal((2, 256)).astype(np.float32)
    pyquant.quantize(x, name).dequantize()
    return f"{name} {time.time() - t:.0f}s"
with cf.ProcessPoolExecutor(len(SUPPORTED)) as ex:
    print(" ".join(ex.map(warm, [t.name for t in SUPPORTED])))
EOF
note "warm exit $?"

# 5. the GPU tests: device dequantize (with one Gemma part) and pyquant.linear
note "pytest -m gpu"
timeout $(( $(left) - 150 > 60 ? $(left) - 150 : 60 )) python3 -m pytest -m gpu -q -rs -p no:cacheprovider \
  tests/test_device.py tests/test_linear_gpu.py --junitxml="$OUT/junit.xml" 2>&1 | tee "$OUT/pytest.log" | tail -25
note "pytest exit ${PIPESTATUS[0]}"

# 6. the benchmark
note "benchmark"
timeout $(( $(left) > 60 ? $(left) : 60 )) python3 benchmarks/gpu.py --out "$OUT/gpu_table.md" >"$OUT/bench.log" 2>&1
note "benchmark exit $?"
cat "$OUT/gpu_table.md" 2>/dev/null || tail -20 "$OUT/bench.log"
if [ -f .device/kernels_base/manifest.json ]; then
  note "benchmark, base objects (${BASE_TYPES:=Q2_K,Q3_K,Q4_K,Q6_K})"
  PYQUANT_KERNELS_DIR=$PWD/.device/kernels_base timeout 120 python3 benchmarks/gpu.py --types "$BASE_TYPES" \
    --out "$OUT/gpu_table_base.md" >>"$OUT/bench.log" 2>&1
  note "base benchmark exit $?"
  cat "$OUT/gpu_table_base.md" 2>/dev/null
fi

# 7. memcheck over small odd shapes, if time is left (out-of-bounds reads/writes in the kernels)
if [ "$(left)" -gt 90 ] && command -v compute-sanitizer >/dev/null; then
  note "compute-sanitizer memcheck"
  timeout $(( $(left) - 20 )) compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 \
    python3 -m pytest -m gpu -q -x -p no:cacheprovider tests/test_device.py -k "random_blocks and float32" \
    >"$OUT/memcheck.log" 2>&1
  note "memcheck exit $? ($(grep -c 'Invalid' "$OUT/memcheck.log") invalid accesses reported)"
  tail -5 "$OUT/memcheck.log"
else
  note "memcheck skipped ($(left) s left)"
fi
note "done"
