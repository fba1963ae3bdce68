"""Run the matmul kernels on the CPU through the SIMT emulator (simt.cpp), with the real launch specs.

``Emulator(32)`` behaves as an NVIDIA/RDNA GPU (32-lane warps, the NVIDIA tuning rows), ``Emulator(64)`` as a
GCN/CDNA one (64-lane waves, the CDNA rows). The shared library is built on first use into a cache directory
keyed by the sources' hash; :func:`available` says whether a C++ compiler is there.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pyquant.device import launch_matmul as lm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCES = [HERE / "simt.cpp", HERE / "pq_port_simt.h", ROOT / "hsaco/include/pq_blocks.h",
           ROOT / "hsaco/include/pq_matmul.h", ROOT / "hsaco/include/pq_vecdot.h", ROOT / "hsaco/include/pq_lut.h",
           ROOT / "hsaco/kernels/quantize_q8_1.hip", ROOT / "hsaco/kernels/mmvq.hip"]
ARCH = {32: "sm_90", 64: "gfx942"}  # whose launch specs (and tuning rows) each width runs


def compiler() -> str | None:
    for c in (os.environ.get("CXX"), "g++", "clang++-22", "clang++", "c++"):
        if c and shutil.which(c):
            return c
    return None


def available() -> bool:
    return compiler() is not None


def _build(width: int) -> Path:
    h = hashlib.sha256()
    for p in SOURCES:
        h.update(p.read_bytes())
    cxx = compiler()
    h.update(f"{cxx} {width}".encode())
    cache = Path(os.environ.get("PYQUANT_SIMT_CACHE", Path(tempfile.gettempdir()) / "pyquant-simt"))
    cache.mkdir(parents=True, exist_ok=True)
    lib = cache / f"libsimt{width}-{h.hexdigest()[:16]}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        # -U_FORTIFY_SOURCE: fortified longjmp refuses to jump onto another stack, which the fibers do
        cmd = [cxx, "-std=c++17", "-O1", "-fPIC", "-shared", "-U_FORTIFY_SOURCE", f"-DPQ_WARP_SIZE={width}",
               f"-I{ROOT / 'hsaco/include'}", f"-I{HERE}", str(HERE / "simt.cpp"), "-o", str(tmp)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    return lib


class Emulator:
    def __init__(self, width: int = 32):
        self.width = width
        self.arch = ARCH[width]
        self.lib = ctypes.CDLL(str(_build(width)))
        u3 = ctypes.c_uint * 3
        self._u3 = u3
        vp, i64 = ctypes.c_void_p, ctypes.c_int64
        self.lib.pq_simt_launch_act.argtypes = [vp, u3, u3, vp, vp, i64, i64, i64, i64]
        self.lib.pq_simt_launch_mmv.argtypes = [vp, u3, u3, vp, vp, vp, vp, i64, i64, i64, i64, i64]
        self.lib.pq_simt_faults.restype = ctypes.c_long

    def _fn(self, name: str) -> int:
        return ctypes.cast(getattr(self.lib, name), ctypes.c_void_p).value

    def _check(self, rc: int, name: str) -> None:
        if rc == 1:
            raise RuntimeError(f"{name}: deadlock (threads disagree on barriers or shuffles)")
        if rc == 2:
            raise RuntimeError(f"{name}: {self.lib.pq_simt_faults()} misaligned accesses")

    def act(self, spec, x: np.ndarray, out: np.ndarray, n: int, k: int, stride: int, kp: int) -> None:
        rc = self.lib.pq_simt_launch_act(self._fn(spec.kernel), self._u3(*spec.grid), self._u3(*spec.block),
                                         x.ctypes.data, out.ctypes.data, n, k, stride, kp)
        self._check(rc, spec.kernel)

    def mmv(self, spec, w: np.ndarray, aq: np.ndarray, ads, dst: np.ndarray, m: int, k: int, ws: int, as_: int,
            ds: int) -> None:
        rc = self.lib.pq_simt_launch_mmv(self._fn(spec.kernel), self._u3(*spec.grid), self._u3(*spec.block),
                                         w.ctypes.data, aq.ctypes.data, 0 if ads is None else ads.ctypes.data,
                                         dst.ctypes.data, m, k, ws, as_, ds)
        self._check(rc, spec.kernel)

    # ---- the pipeline pyquant.linear runs on a GPU, on host arrays

    def quantize_q8_1(self, x: np.ndarray, split: bool) -> np.ndarray:
        """``x`` (n, k) float32/float16 (or uint16 bfloat16 bits with dtype name 'bf16' via ``x_dtype``)."""
        return self.quantize_q8_1_as(x, _dtype_name(x), split)

    def quantize_q8_1_as(self, x: np.ndarray, x_dtype: str, split: bool, interleaved: bool = False) -> np.ndarray:
        n, k = x.shape
        kp = lm.padded_act(k) if split else lm.padded(k)
        out = np.full(n * kp + n * kp // 32 * 4 if split else n * (kp // 32) * 36, 0xA5, dtype=np.uint8)  # poison
        self.act(lm.quantize_spec(x_dtype, n, k, split, interleaved), x, out, n, k, x.strides[0] // x.itemsize, kp)
        return out

    def convert(self, x: np.ndarray, x_dtype: str, out: str) -> np.ndarray:
        n, k = x.shape
        kp = lm.padded(k)
        y = np.full((n, kp), 0xFF, dtype={"f32": np.float32, "f16": np.float16, "bf16": np.uint16}[out])
        self.act(lm.convert_spec(x_dtype, out, n, k), x, y, n, k, x.strides[0] // x.itemsize, kp)
        return y

    def matvec(self, w_padded: np.ndarray, qtype, m: int, k: int, x: np.ndarray) -> np.ndarray:
        """``x @ W.T`` for ``x`` (n <= 8, k) float32 and ``w_padded`` the device layout (m, row_stride) bytes."""
        n = x.shape[0]
        kp = lm.padded(k)
        dst = np.full((n, m), np.nan, dtype=np.float32)  # poison: every output must be written
        spec = lm.matvec_spec(qtype, n, m, self.arch)
        from pyquant.formats import layout

        if layout(qtype).is_quantized:
            ka = lm.padded_act(k)
            act = self.quantize_q8_1_as(np.ascontiguousarray(x, dtype=np.float32), "f32", True,
                                        lm.act_interleaved(qtype))
            aq, ads = act[: n * ka], act[n * ka:]
            self.mmv(spec, w_padded, aq, ads, dst, m, k, w_padded.shape[1], ka, m)
        else:
            xf = self.convert(np.ascontiguousarray(x, dtype=np.float32), "f32", "f32")
            self.mmv(spec, w_padded, xf, None, dst, m, k, w_padded.shape[1], kp, m)
        return dst


def _dtype_name(x: np.ndarray) -> str:
    return {np.dtype(np.float32): "f32", np.dtype(np.float16): "f16"}[x.dtype]


def pad_rows(data: np.ndarray, qtype, k: int) -> np.ndarray:
    """Host bytes (m, row_bytes) -> the device layout: rows padded (512 elements, then 16 bytes) with zero bytes."""
    from pyquant.device.launch import device_row_stride

    stride = device_row_stride(qtype, k)
    out = np.zeros((data.shape[0], stride), dtype=np.uint8)
    out[:, : data.shape[1]] = data
    return out
