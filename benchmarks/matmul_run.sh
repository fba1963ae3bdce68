#!/usr/bin/env bash
# Issue 4 in one device call: GPU correctness tests of pyquant.linear, then the benchmark table.
#
#   run(command="bash benchmarks/matmul_run.sh", carry=[".whl", ".device"])
#
# Carried: .whl (gguf; the image has no gguf), .device/kernels (code objects built here: python hsaco/build.py
# --arch sm_90 --out .device/kernels; else pyquant/kernels, else built there), .device/variants (optional:
# python benchmarks/matmul_variants.py .device/variants, the tuning experiment). Results go to $OUT: tests.log, bench.log, matmul.json, matmul.md.
# MATMUL_TESTS=0 skips the tests (MATMUL_TEST_FILES: which GPU test files), MATMUL_BENCH_ARGS passes options to
# benchmarks/matmul.py.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/matmul-out}
mkdir -p "$OUT"
if [ "${GGML_BUILD_ONLY:-0}" != 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv || true
if [ -f .device/kernels/manifest.json ]; then
  export PYQUANT_KERNELS_DIR=$PWD/.device/kernels  # built here: python hsaco/build.py --arch sm_90 --out .device/kernels
elif [ ! -f pyquant/kernels/manifest.json ]; then
  python3 hsaco/build.py --arch sm_90 2>&1 | tail -5
fi
# ggml's own kernels side by side (ORACLE.md): GGML=1 builds test-backend-ops from the carried source
# (.device/ggml: the ggml-python 0.0.45 sdist's vendor/ggml, CPU and CUDA back ends only) in the background
# while the benchmark runs, then times MUL_MAT 4096 x 14336, n = 1, 8, 512 for our types.
# GGML_BUILD_ONLY=1: only build it (a call of its own; the build stays in /tmp while the machine is warm), so that
# a following GGML=1 call times ggml first and then ours, with nothing compiling beside the timings.
TBO=$(find /tmp/ggml-build -name test-backend-ops -type f -perm -u+x 2>/dev/null | head -1)
# the MUL_MAT cases ggml times: our types (its names), the anchor shape at n = 1, 8, 512, and 28672 x 8192 (weights
# several times the H100's L2; a case that ggml_src_patch adds to the copy built here) at n = 1, 8
GGML_CASES='type_a=(f16|bf16|q4_0|q4_1|q5_0|q5_1|q8_0|q2_K|q3_K|q4_K|q5_K|q6_K|iq4_nl|iq4_xs|mxfp4),type_b=f32,m=(4096,n=(1|8|512),k=14336|28672,n=(1|8),k=8192),'
# ggml's source copied to /tmp, its perf list given the 28672 x 8192 mat-vec cases beside its 4096 x 14336 ones
ggml_src_patch() {
  rm -rf /tmp/ggml-src && cp -r .device/ggml /tmp/ggml-src \
    && sed -i 's|^\( *\)test_cases.emplace_back(new test_mul_mat(type_a, type_b, 4096, bs, 14336, {1,  1}, {1, 1}));|&\n\1if (bs == 1 \|\| bs == 8) test_cases.emplace_back(new test_mul_mat(type_a, type_b, 28672, bs, 8192, {1, 1}, {1, 1}));|' \
      /tmp/ggml-src/tests/test-backend-ops.cpp \
    && grep -q 'type_b, 28672, bs, 8192' /tmp/ggml-src/tests/test-backend-ops.cpp
}
if [ "${GGML_BUILD_ONLY:-0}" = 1 ]; then
  [ -n "$TBO" ] && { echo "ggml already built: $TBO"; exit 0; }
  ggml_src_patch && cmake -S /tmp/ggml-src -B /tmp/ggml-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90-real -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF -DGGML_BUILD_TESTS=ON \
      -DGGML_BUILD_EXAMPLES=OFF > "$OUT/ggml-build.log" 2>&1 \
    && cmake --build /tmp/ggml-build --target test-backend-ops -j "$(nproc)" >> "$OUT/ggml-build.log" 2>&1
  echo "ggml build rc=$? in ${SECONDS}s"; tail -3 "$OUT/ggml-build.log"; exit 0
fi
if [ "${GGML:-0}" = 1 ] && [ -n "$TBO" ]; then
  timeout "${GGML_PERF_TIMEOUT:-150}" "$TBO" perf -o MUL_MAT -b CUDA0 \
    -p "$GGML_CASES" \
    2>&1 | tee "$OUT/ggml-perf.log" | grep -E "MUL_MAT|Backend" | tail -40
elif [ "${GGML:-0}" = 1 ] && [ -d .device/ggml ]; then
  ( ggml_src_patch && cmake -S /tmp/ggml-src -B /tmp/ggml-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90-real -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF -DGGML_BUILD_TESTS=ON \
      -DGGML_BUILD_EXAMPLES=OFF > "$OUT/ggml-build.log" 2>&1 \
    && nice cmake --build /tmp/ggml-build --target test-backend-ops -j 14 >> "$OUT/ggml-build.log" 2>&1; \
    echo "ggml build rc=$?" >> "$OUT/ggml-build.log" ) &
  GGML_PID=$!
fi
if [ "${MATMUL_TESTS:-1}" != 0 ]; then
  timeout "${MATMUL_TEST_TIMEOUT:-200}" python3 -m pytest -q -m gpu ${MATMUL_TEST_FILES:-tests/test_linear_gpu.py} -p no:cacheprovider \
    2>&1 | tee "$OUT/tests.log" | tail -25
fi
VARIANTS=()
[ -f .device/variants/variants.json ] && VARIANTS=(--variants .device/variants)
python3 benchmarks/matmul.py --out "$OUT" "${VARIANTS[@]}" ${MATMUL_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log" | tail -150
# .device/kernels_base (objects of an earlier commit) + BASE_TYPES: the same benchmark of those objects, same run
if [ -f .device/kernels_base/manifest.json ] && [ -n "${BASE_TYPES:-}" ]; then
  PYQUANT_KERNELS_DIR=$PWD/.device/kernels_base python3 benchmarks/matmul.py --out "$OUT/base" --no-torch \
    --types "$BASE_TYPES" ${BASE_ARGS:-} > "$OUT/base.log" 2>&1
  echo "base objects ($BASE_TYPES): exit $?"; grep -E " n=  [18] " "$OUT/base.log"
fi
if [ -n "${GGML_PID:-}" ]; then
  wait "$GGML_PID"
  tail -3 "$OUT/ggml-build.log"
  TBO=$(find /tmp/ggml-build -name test-backend-ops -type f -perm -u+x | head -1)
  if [ -n "$TBO" ]; then
    timeout "${GGML_PERF_TIMEOUT:-150}" "$TBO" perf -o MUL_MAT -b CUDA0 \
      -p "$GGML_CASES" \
      2>&1 | tee "$OUT/ggml-perf.log" | grep -E "MUL_MAT|Backend" | tail -40
  fi
fi
