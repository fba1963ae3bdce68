// pq_port_simt.h: the kernel-facing API of hsaco/include/pq_port.h for a host C++ compiler, with real barriers
// and shuffles: every GPU thread of a block is a fiber (ucontext) and __syncthreads / shuffles are rendezvous
// points (simt.cpp schedules them). Tests only: it runs the matmul kernels, which need barriers and lane
// exchanges that the sequential emulation of pq_port.h (-DPQ_HOST) counts as faults.
//
// PQ_WARP_SIZE comes from the compile line (32 or 64), so the same source runs as NVIDIA/RDNA (32-lane warps)
// and as GCN/CDNA (64-lane waves). The family macro picks pq_matmul.h's tuning for that width.
// Every word and vector access checks its alignment (a misaligned one is counted: the launch returns it).
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef PQ_WARP_SIZE
#error "compile with -DPQ_WARP_SIZE=32 or 64"
#endif
#if PQ_WARP_SIZE == 32
#define PQ_NVIDIA 1  // pq_matmul.h: the NVIDIA rows (32-lane warps)
#else
#define __GFX9__ 1  // pq_matmul.h: the CDNA rows (64-lane waves)
#endif
#define PQ_SIMT_EMULATION 1

#define __global__
#define __device__
#define __shared__ static
#define PQ_INLINE inline __attribute__((always_inline))
#define PQ_LAUNCH_BOUNDS(threads, resident)
inline void pq_wait_previous() {}  // programmatic dependent launch: nothing to overlap here
inline void pq_release_next() {}

struct pq_uint3 {
    unsigned int x, y, z;
};
extern pq_uint3 pq_simt_block_idx, pq_simt_block_dim, pq_simt_grid_dim;
const pq_uint3& pq_simt_thread_idx();
#define threadIdx (pq_simt_thread_idx())
#define blockIdx pq_simt_block_idx
#define blockDim pq_simt_block_dim
#define gridDim pq_simt_grid_dim

void pq_simt_syncthreads();
int pq_simt_shfl_xor(int v, int mask);
void pq_simt_check_align(const void* p, int align);

inline void __syncthreads() {
    pq_simt_syncthreads();
}
inline unsigned int pq_lane_id() {
    return threadIdx.x % PQ_WARP_SIZE;
}
inline int pq_shfl_xor_i32(int v, int mask) {
    return pq_simt_shfl_xor(v, mask);
}

struct pq_u32x2 {
    uint32_t x, y;
};
struct pq_u32x4 {
    uint32_t x, y, z, w;
};

inline uint32_t pq_f32_bits(float f) {
    return __builtin_bit_cast(uint32_t, f);
}
inline float pq_bits_f32(uint32_t u) {
    return __builtin_bit_cast(float, u);
}
inline float pq_fp16_to_fp32(uint32_t h) {
    return (float)__builtin_bit_cast(_Float16, (uint16_t)h);
}
inline uint16_t pq_fp32_to_fp16(float f) {  // RNE; NaN as ggml's quiet 0x7e00 with the sign
    const uint32_t u = pq_f32_bits(f);
    const uint16_t h = __builtin_bit_cast(uint16_t, (_Float16)f);
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)(((u >> 16) & 0x8000u) | 0x7e00u) : h;
}
inline float pq_bf16_to_fp32(uint32_t h) {
    return pq_bits_f32(h << 16);
}
inline uint16_t pq_fp32_to_bf16(float f) {
    const uint32_t u = pq_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64u);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}
inline float pq_fmaxf(float a, float b) {
    return __builtin_fmaxf(a, b);
}
inline int pq_dp4a(int a, int b, int c) {
    const int8_t* a8 = (const int8_t*)&a;
    const int8_t* b8 = (const int8_t*)&b;
    return c + a8[0] * b8[0] + a8[1] * b8[1] + a8[2] * b8[2] + a8[3] * b8[3];
}

template <int WIDTH>
PQ_INLINE int pq_shfl_xor(int v, int mask) {
    static_assert(WIDTH >= 1 && WIDTH <= PQ_WARP_SIZE && (WIDTH & (WIDTH - 1)) == 0, "WIDTH: power of two <= warp");
    return pq_shfl_xor_i32(v, mask);
}
template <int WIDTH>
PQ_INLINE float pq_shfl_xor(float v, int mask) {
    return pq_bits_f32((uint32_t)pq_shfl_xor<WIDTH>((int)pq_f32_bits(v), mask));
}
template <int WIDTH>
PQ_INLINE float warp_reduce_sum(float x) {
    for (int offset = WIDTH / 2; offset > 0; offset >>= 1) x += pq_shfl_xor<WIDTH>(x, offset);
    return x;
}
template <int WIDTH>
PQ_INLINE int warp_reduce_sum(int x) {
    for (int offset = WIDTH / 2; offset > 0; offset >>= 1) x += pq_shfl_xor<WIDTH>(x, offset);
    return x;
}
template <int WIDTH>
PQ_INLINE float warp_reduce_max(float x) {
    for (int offset = WIDTH / 2; offset > 0; offset >>= 1) x = pq_fmaxf(x, pq_shfl_xor<WIDTH>(x, offset));
    return x;
}

template <class T>
inline T pq_simt_load(const void* p, int align) {
    pq_simt_check_align(p, align);
    T v;
    memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
inline void pq_simt_store(void* p, const T& v, int align) {
    pq_simt_check_align(p, align);
    memcpy(p, &v, sizeof v);
}
inline uint32_t pq_ld_u8(const uint8_t* p) {
    return *p;
}
inline uint32_t pq_ld_u16(const uint8_t* p) {
    return pq_simt_load<uint16_t>(p, 2);
}
inline uint32_t pq_ld_u32(const uint8_t* p) {
    return pq_simt_load<uint32_t>(p, 4);
}
inline uint32_t pq_ld_u32_a2(const uint8_t* p) {
    return pq_ld_u16(p) | (pq_ld_u16(p + 2) << 16);
}
inline uint32_t pq_ld_u32_a1(const uint8_t* p) {
    return pq_ld_u8(p) | (pq_ld_u8(p + 1) << 8) | (pq_ld_u8(p + 2) << 16) | (pq_ld_u8(p + 3) << 24);
}
inline pq_u32x2 pq_ld_u32x2(const uint8_t* p) {
    return pq_simt_load<pq_u32x2>(p, 8);
}
inline pq_u32x4 pq_ld_u32x4(const uint8_t* p) {
    return pq_simt_load<pq_u32x4>(p, 16);
}
inline pq_u32x4 pq_make_u32x4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    return pq_u32x4{a, b, c, d};
}
inline void pq_st_u32x4(uint8_t* p, pq_u32x4 v) {
    pq_simt_store(p, v, 16);
}
inline void pq_st_u32(uint8_t* p, uint32_t v) {
    pq_simt_store(p, v, 4);
}
inline void pq_st_u16(uint8_t* p, uint16_t v) {
    pq_simt_store(p, v, 2);
}

// the table lookups of hsaco/include/pq_lut.h on emulated byte permutes: NVIDIA's PRMT with 32-lane warps,
// AMD's v_perm_b32 with 64-lane waves
#define PQ_LUT_EMULATE 1
#if PQ_WARP_SIZE == 32
#define PQ_LUT_PRMT 1
#define pq_prmt pq_emulated_prmt
#else
#define PQ_LUT_VPERM 1
#define pq_vperm pq_emulated_vperm
#endif
#include "pq_lut.h"
