#!/usr/bin/env bash
# Issue 4 in one device call: GPU correctness tests of pyquant.linear, then the benchmark table.
#
#   run(command="bash benchmarks/matmul_run.sh", carry=[".whl", ".device"])
#
# Carried: .whl (gguf; the image has no gguf), .device/kernels (code objects built here: python hsaco/build.py
# --arch sm_90 --out .device/kernels; else pyquant/kernels, else built there), .device/variants (optional:
# python benchmarks/matmul_variants.py .device/variants, the tuning experiment). Results go to $OUT: tests.log, bench.log, matmul.json, matmul.md.
# MATMUL_TESTS=0 skips the tests, MATMUL_BENCH_ARGS passes options to benchmarks/matmul.py.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/matmul-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv || true
if [ -f .device/kernels/manifest.json ]; then
  export PYQUANT_KERNELS_DIR=$PWD/.device/kernels  # built here: python hsaco/build.py --arch sm_90 --out .device/kernels
elif [ ! -f pyquant/kernels/manifest.json ]; then
  python3 hsaco/build.py --arch sm_90 2>&1 | tail -5
fi
if [ "${MATMUL_TESTS:-1}" != 0 ]; then
  timeout "${MATMUL_TEST_TIMEOUT:-200}" python3 -m pytest -q -m gpu tests/test_linear_gpu.py -p no:cacheprovider \
    2>&1 | tee "$OUT/tests.log" | tail -25
fi
VARIANTS=()
[ -f .device/variants/variants.json ] && VARIANTS=(--variants .device/variants)
python3 benchmarks/matmul.py --out "$OUT" "${VARIANTS[@]}" ${MATMUL_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log" | tail -150
