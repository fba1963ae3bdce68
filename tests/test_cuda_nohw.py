"""The CUDA path up to the hardware, on a machine without a GPU.

1. Real cuda-python without a driver: selecting CUDA raises a clear error, never crashes.
2. A stand-in ``libcuda.so.1`` (C, compiled here, ~100 lines) exporting the driver calls pyquant uses, served
   to the *real* cuda-bindings through ``cuGetProcAddress_v2``: so cuda-bindings' own argument conversion
   (``kernelParams=((values), (ctypes types))``, pointers as ints, streams) runs for real. "Device memory" is
   host memory and a launched dequantize kernel is emulated by the CPU dequantizer, so the GPU test suite
   (tests/test_device.py) runs unchanged against it, in a subprocess (the fake driver stays loaded there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pyquant
from pyquant.device import codeobjects, runtime

ROOT = Path(__file__).resolve().parent.parent

FAKE_LIBCUDA = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
typedef int CUresult;
typedef unsigned long long CUdeviceptr;
static size_t g_limit = (size_t)1 << 32, g_used = 0;
static long g_frees = 0, g_launches = 0;
static int g_nparams = 5, g_major = 9, g_minor = 0;
typedef void (*launch_cb)(const char *name, const unsigned *dims, const uint64_t *params, int nparams);
static launch_cb g_cb = 0;
static const char *g_log[64]; static int g_nlog = 0;
static void note(const char *s) { if (g_nlog < 64) g_log[g_nlog++] = s; }
void fake_configure(size_t limit, int nparams, int major, int minor, launch_cb cb) {
  g_limit = limit; g_nparams = nparams; g_major = major; g_minor = minor; g_cb = cb; }
long fake_frees(void) { return g_frees; }
long fake_launches(void) { return g_launches; }
size_t fake_used(void) { return g_used; }
CUresult cuInit(unsigned f) { (void)f; return 0; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int i) { if (i != 0) return 101; *d = 0; return 0; }
CUresult cuDevicePrimaryCtxRetain(void **c, int d) { (void)d; *c = (void *)0x1000; return 0; }
CUresult cuCtxSetCurrent(void *c) { return c == (void *)0x1000 ? 0 : 201; }
CUresult cuCtxGetCurrent(void **c) { *c = (void *)0x1000; return 0; }
CUresult cuDeviceGetAttribute(int *v, int a, int d) {
  (void)d;
  switch (a) {
    case 75: *v = g_major; break; case 76: *v = g_minor; break;  /* compute capability */
    case 16: *v = 132; break; case 10: *v = 32; break; case 38: *v = 50 << 20; break;
    case 1: *v = 1024; break; case 5: *v = 2147483647; break; case 6: case 7: *v = 65535; break;
    default: *v = 0; }
  return 0; }
CUresult cuDeviceGetName(char *s, int len, int d) { (void)d; snprintf(s, len, "Fake NVIDIA"); return 0; }
CUresult cuDeviceTotalMem(size_t *b, int d) { (void)d; *b = g_limit; return 0; }
CUresult cuMemGetInfo(size_t *f, size_t *t) { *f = g_limit - g_used; *t = g_limit; return 0; }
CUresult cuModuleLoadData(void **m, const void *img) {
  const char *p = img;
  if (!(memcmp(p, "\x7f" "ELF", 4) == 0 || memcmp(p, "//", 2) == 0 || memcmp(p, ".version", 8) == 0)) return 200;
  *m = (void *)0x2000; return 0; }
CUresult cuModuleUnload(void *m) { (void)m; return 0; }
CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
  (void)m;
  if (strncmp(name, "dequantize_block_", 17) != 0 && strcmp(name, "k") != 0) return 500;
  *f = strdup(name); return 0; }
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shm, void *stream, void **params, void **extra) {
  (void)stream; (void)extra;
  unsigned dims[7] = {gx, gy, gz, bx, by, bz, shm};
  uint64_t vals[16] = {0};
  for (int i = 0; i < g_nparams && i < 16; i++) {
    if (!params || !params[i]) return 1;
    memcpy(&vals[i], params[i], 8);
  }
  g_launches++;
  if (g_cb) g_cb((const char *)f, dims, vals, g_nparams);
  return 0; }
typedef struct { size_t n; } hdr;
CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
  if (g_used + n > g_limit) return 2;
  hdr *h = malloc(sizeof(hdr) + n); if (!h) return 2;
  h->n = n; memset(h + 1, 0xA5, n); g_used += n; *p = (CUdeviceptr)(uintptr_t)(h + 1); return 0; }
CUresult cuMemFree(CUdeviceptr p) {
  if (!p) return 1;
  hdr *h = ((hdr *)(uintptr_t)p) - 1; g_used -= h->n; free(h); g_frees++; return 0; }
CUresult cuMemcpyHtoDAsync(CUdeviceptr d, const void *s, size_t n, void *st) { (void)st; memcpy((void *)(uintptr_t)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync(void *d, CUdeviceptr s, size_t n, void *st) { (void)st; memcpy(d, (void *)(uintptr_t)s, n); return 0; }
CUresult cuMemcpyDtoDAsync(CUdeviceptr d, CUdeviceptr s, size_t n, void *st) { (void)st; memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n); return 0; }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void *st) { (void)st; memset((void *)(uintptr_t)d, v, n); return 0; }
CUresult cuPointerGetAttribute(void *data, int attr, CUdeviceptr p) { (void)p; if (attr != 9) return 1; *(int *)data = 0; return 0; }
CUresult cuStreamCreate(void **s, unsigned f) { (void)f; *s = malloc(8); return 0; }
CUresult cuStreamDestroy(void *s) { free(s); return 0; }
CUresult cuStreamSynchronize(void *s) { (void)s; return 0; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuEventCreate(void **e, unsigned f) { (void)f; *e = malloc(8); return 0; }
CUresult cuEventDestroy(void *e) { free(e); return 0; }
CUresult cuEventRecord(void *e, void *s) { (void)e; (void)s; return 0; }
CUresult cuEventSynchronize(void *e) { (void)e; return 0; }
CUresult cuEventElapsedTime(float *ms, void *a, void *b) { (void)a; (void)b; *ms = 1.25f; return 0; }
static const char *errname(CUresult e) {
  switch (e) { case 0: return "CUDA_SUCCESS"; case 1: return "CUDA_ERROR_INVALID_VALUE";
    case 2: return "CUDA_ERROR_OUT_OF_MEMORY"; case 200: return "CUDA_ERROR_INVALID_IMAGE";
    case 500: return "CUDA_ERROR_NOT_FOUND"; default: return "CUDA_ERROR_UNKNOWN"; } }
CUresult cuGetErrorName(CUresult e, const char **s) { *s = errname(e); return 0; }
CUresult cuGetErrorString(CUresult e, const char **s) {
  *s = e == 2 ? "out of memory" : e == 500 ? "named symbol not found" : "error"; return 0; }
#define E(n) {#n, (void *)n}
static struct { const char *name; void *fn; } table[] = {
  E(cuInit), E(cuDriverGetVersion), E(cuDeviceGetCount), E(cuDeviceGet), E(cuDevicePrimaryCtxRetain),
  E(cuCtxSetCurrent), E(cuCtxGetCurrent), E(cuDeviceGetAttribute), E(cuDeviceGetName), E(cuDeviceTotalMem),
  E(cuMemGetInfo), E(cuModuleLoadData), E(cuModuleUnload), E(cuModuleGetFunction), E(cuLaunchKernel),
  E(cuMemAlloc), E(cuMemFree), E(cuMemcpyHtoDAsync), E(cuMemcpyDtoHAsync), E(cuMemcpyDtoDAsync),
  E(cuMemsetD8Async), E(cuPointerGetAttribute), E(cuStreamCreate), E(cuStreamDestroy), E(cuStreamSynchronize),
  E(cuCtxSynchronize), E(cuEventCreate), E(cuEventDestroy), E(cuEventRecord), E(cuEventSynchronize),
  E(cuEventElapsedTime), E(cuGetErrorName), E(cuGetErrorString), {0, 0}};
CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, uint64_t flags, int *status) {
  (void)ver; (void)flags;
  for (int i = 0; table[i].name; i++)
    if (strcmp(table[i].name, sym) == 0) { *pfn = table[i].fn; if (status) *status = 0; return 0; }
  *pfn = 0; if (status) *status = 1; note(sym); return 500; }
CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, uint64_t flags) {
  return cuGetProcAddress_v2(sym, pfn, ver, flags, 0); }

"""


def test_real_cuda_python_without_driver_raises_clearly():
    pytest.importorskip("cuda.bindings", reason="cuda-python not installed (pip install cuda-bindings)")
    count, why = runtime.probe("cuda")
    if count:
        pytest.skip("an NVIDIA GPU is present: this test is about machines without one")
    assert "libcuda" in why or "cuInit" in why or "cuDeviceGetCount" in why, why
    with pytest.raises(pyquant.device.NoDeviceError, match=r"NVIDIA GPU \(CUDA\).*CUDA: "):
        pyquant.device.get_device("cuda")


@pytest.fixture(scope="module")
def fake_libcuda(tmp_path_factory):
    pytest.importorskip("cuda.bindings", reason="cuda-python not installed (pip install cuda-bindings)")
    cc = next((c for c in ("cc", "gcc", "clang", "clang-22") if shutil.which(c)), None)
    if cc is None:
        pytest.skip("no C compiler to build the stand-in libcuda")
    d = tmp_path_factory.mktemp("fakecuda")
    (d / "fake.c").write_text(FAKE_LIBCUDA)
    lib = d / "libcuda.so.1"
    r = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(lib), "-Wl,-soname,libcuda.so.1", str(d / "fake.c")],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"{cc} cannot build a shared library here: {r.stderr[-300:]}")
    kd = d / "kernels"
    kd.mkdir()
    from pyquant.device import launch

    objects = {"sm_90": {"file": "pyquant.sm_90.cubin", "compiler": "nvcc", "vendor": "nvidia", "wavefront_size": 32},
               "compute_80": {"file": "pyquant.compute_80.ptx", "compiler": "nvcc", "vendor": "nvidia",
                              "wavefront_size": 32}}
    (kd / "pyquant.sm_90.cubin").write_bytes(b"\x7fELF fake cubin")
    (kd / "pyquant.compute_80.ptx").write_bytes(b"// fake ptx\n.version 9.0\n")
    src_hash = codeobjects.source_hash() if (codeobjects.SOURCE_DIR / "pyquant.hip").exists() else "x"
    (kd / "manifest.json").write_text(json.dumps(
        {"source_hash": src_hash, "objects": objects, "kernels": launch.dequantize_kernel_names()}))
    return lib, kd


DRIVER = textwrap.dedent("""
    import ctypes, os, sys
    lib = ctypes.CDLL(sys.argv[1], mode=os.RTLD_GLOBAL)  # found as "already loaded" by cuda-bindings
    sys.path.insert(0, os.getcwd())
    from tests.test_hip_nohw import emulate_dequantize
    CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint64),
                          ctypes.c_int)
    def on_launch(name, dims, params, n):
        name = name.decode()
        if name.startswith("dequantize_block_"):
            emulate_dequantize(name, *(int(params[i]) for i in range(5)))
    cb = CB(on_launch)
    lib.fake_configure.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, CB]
    lib.fake_configure(4 << 30, 5, 9, 0, cb)
    os.environ["PYQUANT_KERNELS_DIR"] = sys.argv[2]
    import pytest
    from pyquant.device import runtime
    runtime._warn_if_stale = lambda d: None  # kernel sources may change under a long run; not this test's subject
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-m", "gpu", "-W", "error::RuntimeWarning", *sys.argv[3:]])
    print("FAKE LAUNCHES", lib.fake_launches(), "FREES", lib.fake_frees())
    sys.exit(int(code))
""")

# The whole GPU suite takes minutes under emulation on a small CI machine: the runtime tests, and the
# bit-exactness tests for two types (the emulation computes what the CPU computes: this checks the plumbing).
SUBSET = ("identity or ptx or errors or memory or copies or padded or quantized_data "
          "or (random_blocks and (Q4_K or Q5_0))")


def test_gpu_suite_against_fake_driver(fake_libcuda):
    lib, kd = fake_libcuda
    r = subprocess.run([sys.executable, "-c", DRIVER, str(lib), str(kd), str(ROOT / "tests" / "test_device.py"),
                        "-k", os.environ.get("PYQUANT_FAKE_CUDA_K", SUBSET)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert " passed" in out and "FAKE LAUNCHES" in out, out[-3000:]
    launches = int(out.split("FAKE LAUNCHES")[1].split()[0])
    assert launches >= 20, out[-2000:]
