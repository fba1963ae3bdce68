"""Scalar helpers every CPU kernel shares: bit casts, ggml's fp16/bf16 conversions, ``nearest_int``.

All arithmetic here is float32, as in ggml's C (a Python float literal would silently promote a
Numba expression to float64 and change roundings: always wrap constants in ``f32``).
No ``fastmath``: contraction into FMA or reassociation would break bit-exactness with ggml.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ..formats import layout

f32 = np.float32
JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)
PJIT = dict(JIT, parallel=True)


def offsets(qtype, *names, block_size: int | None = None) -> tuple[int, ...]:
    """``(type_size, offset of field names[0], ...)`` of ``qtype``'s block, from the one layout table (module
    globals holding them are compile-time constants in the kernels); ``block_size``, if given, is asserted."""
    lay = layout(qtype)
    assert block_size is None or lay.block_size == block_size
    return (lay.type_size,) + tuple(lay.field(n).offset for n in names)


@intrinsic
def f32_bits(typingctx, x):
    """Reinterpret a float32 as uint32 (C's memcpy / union cast)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, x):
    """Reinterpret the low 32 bits of an integer as float32."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if x.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        elif x.bitwidth < 32:
            v = builder.zext(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(x), codegen


@njit(**JIT)
def fp16_to_fp32(h):
    """ggml_compute_fp16_to_fp32: IEEE half (as an integer) to float32, exactly."""
    h = np.uint32(h) & np.uint32(0xFFFF)
    sign = (h & np.uint32(0x8000)) << np.uint32(16)
    exp = (h >> np.uint32(10)) & np.uint32(0x1F)
    man = h & np.uint32(0x3FF)
    if exp == 0:
        if man == 0:
            return bits_f32(sign)
        # subnormal half: man * 2^-24, exact in float32
        v = f32(man) * f32(5.9604644775390625e-08)
        return -v if sign else v
    if exp == 31:
        return bits_f32(sign | np.uint32(0x7F800000) | (man << np.uint32(13)))
    return bits_f32(sign | ((exp + np.uint32(112)) << np.uint32(23)) | (man << np.uint32(13)))


@njit(**JIT)
def fp32_to_fp16(f):
    """ggml_compute_fp32_to_fp16 (round to nearest even), returning the half's bits as uint16."""
    f = f32(f)
    base = (abs(f) * f32(5.192296858534828e33)) * f32(7.703719777548943e-34)  # 2^112, 2^-110
    w = f32_bits(f)
    shl1_w = np.uint32((np.uint64(w) + np.uint64(w)) & np.uint64(0xFFFFFFFF))  # C's uint32 wrap-around
    sign = w & np.uint32(0x80000000)
    bias = shl1_w & np.uint32(0xFF000000)
    if bias < np.uint32(0x71000000):
        bias = np.uint32(0x71000000)
    base = bits_f32((bias >> np.uint32(1)) + np.uint32(0x07800000)) + base
    bits = f32_bits(base)
    exp_bits = (bits >> np.uint32(13)) & np.uint32(0x00007C00)
    mantissa_bits = bits & np.uint32(0x00000FFF)
    nonsign = exp_bits + mantissa_bits
    if shl1_w > np.uint32(0xFF000000):
        out = (sign >> np.uint32(16)) | np.uint32(0x7E00)
    else:
        out = (sign >> np.uint32(16)) | nonsign
    return np.uint16(out)


@njit(**JIT)
def fp16_round(f):
    """float32 -> half -> float32: the value ggml stores and reads back."""
    return fp16_to_fp32(fp32_to_fp16(f))


@njit(**JIT)
def fp32_to_bf16(f):
    """ggml_compute_fp32_to_bf16: round to nearest even, NaN made quiet."""
    u = f32_bits(f32(f))
    if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
        return np.uint16((u >> np.uint32(16)) | np.uint32(64))
    return np.uint16((u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16))


@njit(**JIT)
def bf16_to_fp32(h):
    return bits_f32(np.uint32(h) << np.uint32(16))


@njit(**JIT)
def nearest_int(fval):
    """ggml's nearest_int: adds 1.5*2^23 in float32, which rounds half to even for |fval| < 2^22."""
    return np.int32(np.rint(f32(fval)))


@njit(**JIT)
def put_u16(out, pos, v):
    """Store a little-endian uint16 (a half's bits) into a byte row."""
    out[pos] = np.uint8(v & 0xFF)
    out[pos + 1] = np.uint8((v >> 8) & 0xFF)


@njit(**JIT)
def get_u16(data, pos):
    return np.uint16(data[pos]) | (np.uint16(data[pos + 1]) << np.uint16(8))


@njit(**JIT)
def put_f16(out, pos, f):
    put_u16(out, pos, fp32_to_fp16(f))


@njit(**JIT)
def get_f16(data, pos):
    return fp16_to_fp32(get_u16(data, pos))


@njit(**JIT)
def put_f32(out, pos, f):
    u = f32_bits(f32(f))
    out[pos] = np.uint8(u & np.uint32(0xFF))
    out[pos + 1] = np.uint8((u >> np.uint32(8)) & np.uint32(0xFF))
    out[pos + 2] = np.uint8((u >> np.uint32(16)) & np.uint32(0xFF))
    out[pos + 3] = np.uint8((u >> np.uint32(24)) & np.uint32(0xFF))


@njit(**JIT)
def get_f32(data, pos):
    u = (
        np.uint32(data[pos])
        | (np.uint32(data[pos + 1]) << np.uint32(8))
        | (np.uint32(data[pos + 2]) << np.uint32(16))
        | (np.uint32(data[pos + 3]) << np.uint32(24))
    )
    return bits_f32(u)


@njit(**JIT, inline="always")
def nonfinite(v):
    """NaN or Inf (a float32): the exponent bits all ones; :func:`row_bad` is the same test over a row."""
    return (f32_bits(v) & np.uint32(0x7F800000)) == np.uint32(0x7F800000)


@njit(**JIT, inline="always")
def row_bad(x, r, bad):
    """True (and ``bad[r] = 1``) when row ``r`` of ``x`` holds a NaN or Inf; else ``bad[r] = 0``.

    The compute-bound quantize kernels call this first in their row loop and skip a bad row (ggml leaves NaN/Inf
    undefined; :mod:`pyquant.quant` raises). A vectorizable scan of the float bits: exponent all ones. The
    memory-bound ones (the legacy reference quantizers, F16, BF16) find NaN/Inf in the pass they make anyway,
    since a pass of its own costs them up to a quarter of their time.
    """
    xb = x[r].view(np.int32)
    m = np.int32(0)
    for j in range(xb.shape[0]):
        m |= np.int32((xb[j] & np.int32(0x7F800000)) == np.int32(0x7F800000))
    bad[r] = np.uint8(m)
    return m != np.int32(0)


@njit(**JIT, inline="always")
def put_half(o, r, pos, f):
    """Store ``f`` rounded to fp16 (ggml's GGML_FP32_TO_FP16) little-endian at ``o[r, pos:pos + 2]``."""
    h = fp32_to_fp16(f)
    o[r, pos] = np.uint8(h & np.uint16(0xFF))
    o[r, pos + 1] = np.uint8(h >> np.uint16(8))


@njit(**JIT, inline="always")
def get_half(data, r, pos):
    """The fp16 at ``data[r, pos:pos + 2]`` (little-endian) as float32, exactly."""
    return fp16_to_fp32(np.uint16(data[r, pos]) | (np.uint16(data[r, pos + 1]) << np.uint16(8)))
