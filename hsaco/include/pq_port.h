// pq_port.h: the one place that knows which vendor compiles the kernels.
//
// Kernel files include this header and write HIP/CUDA-style code against it; they contain no vendor #ifdefs.
//   AMD:    clang++ -x hip --offload-device-only -nogpuinc -nogpulib (no ROCm headers or device libraries:
//           everything below is built on clang's amdgcn builtins).
//   NVIDIA: nvcc (CUDA's own spellings; cuda_fp16.h for the half conversion).
//   Host:   -DPQ_HOST with a C++ compiler: a sequential emulation for tests only (hsaco/host/emulate.cpp runs
//           kernels without barriers or shuffles thread by thread and checks every load's alignment).
//
// Exactness: kernels are compiled with -ffp-contract=off (clang) and --fmad=false (nvcc), so a*b+c stays two
// roundings, as in ggml's C. Denormals are kept (the HIP and CUDA defaults; the static checks verify the AMD
// kernel descriptors).
#pragma once

#include <stddef.h>
#include <stdint.h>

#if defined(__HIP__) || defined(__AMDGCN__)
// ------------------------------------------------------------------------------------------------ AMD (HIP)
#define PQ_AMD 1

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define PQ_INLINE __attribute__((device, always_inline)) inline
// PQ_LAUNCH_BOUNDS(threads, resident): blocks have at most `threads` threads (the compiler's default plan,
// 1024, would halve the registers it may use), and `resident` threads should fit on one SM / CU at once, which
// caps registers per thread: on AMD as waves per SIMD (4 SIMDs per CU), halved on gfx906 (GCN5, no AGPRs),
// whose VGPR file is half of CDNA2's: 4 waves would cap it at 64 VGPRs and the matmul kernels would spill to
// scratch. gfx908 (CDNA1) has the same 256-VGPR file but also 256 AGPRs: at 4 waves the compiler keeps 64 VGPRs
// and parks what does not fit in AGPRs (v_accvgpr moves, no scratch; hsaco/build.py's check shows it).
#if defined(__gfx906__)
#define PQ_WAVES_PER_EU(resident) ((resident) / (PQ_WARP_SIZE * 8) > 0 ? (resident) / (PQ_WARP_SIZE * 8) : 1)
#else
#define PQ_WAVES_PER_EU(resident) ((resident) / (PQ_WARP_SIZE * 4) > 0 ? (resident) / (PQ_WARP_SIZE * 4) : 1)
#endif
#define PQ_LAUNCH_BOUNDS(threads, resident) \
    __attribute__((amdgpu_flat_work_group_size(1, threads), amdgpu_waves_per_eu(PQ_WAVES_PER_EU(resident))))

// clang-22 no longer predefines __AMDGCN_WAVEFRONT_SIZE__: the family decides (GCN/CDNA wave64, RDNA wave32).
#if defined(__GFX9__)
#define PQ_WARP_SIZE 64
#elif defined(__GFX10__) || defined(__GFX11__) || defined(__GFX12__)
#define PQ_WARP_SIZE 32
#elif defined(__HIP_DEVICE_COMPILE__)
#error "pq_port.h: unknown AMD GPU family (expected gfx9, gfx10, gfx11 or gfx12)"
#else
#define PQ_WARP_SIZE 64  // host pass of a non-device-only compile: never used for code
#endif

struct pq_uint3 {
    unsigned int x, y, z;
};
PQ_INLINE pq_uint3 pq_thread_idx() {
    return {__builtin_amdgcn_workitem_id_x(), __builtin_amdgcn_workitem_id_y(), __builtin_amdgcn_workitem_id_z()};
}
PQ_INLINE pq_uint3 pq_block_idx() {
    return {__builtin_amdgcn_workgroup_id_x(), __builtin_amdgcn_workgroup_id_y(), __builtin_amdgcn_workgroup_id_z()};
}
#if __has_builtin(__builtin_amdgcn_workgroup_size_x) && !defined(PQ_DISPATCH_PACKET_SIZES)
PQ_INLINE pq_uint3 pq_block_dim() {
    return {(unsigned int)__builtin_amdgcn_workgroup_size_x(), (unsigned int)__builtin_amdgcn_workgroup_size_y(),
            (unsigned int)__builtin_amdgcn_workgroup_size_z()};
}
#else  // older clang (ROCm < 6.2): the workgroup sizes are 16-bit fields at bytes 4, 6, 8 of the dispatch packet
PQ_INLINE pq_uint3 pq_block_dim() {
    typedef const __attribute__((address_space(4))) uint16_t pq_packet_u16;
    pq_packet_u16* p = (pq_packet_u16*)__builtin_amdgcn_dispatch_ptr();
    return {p[2], p[3], p[4]};
}
#endif
// The dispatch packet holds the grid size in work-items; HIP's gridDim is that over the workgroup size.
PQ_INLINE pq_uint3 pq_grid_dim() {
    const pq_uint3 b = pq_block_dim();
    return {(__builtin_amdgcn_grid_size_x() + b.x - 1) / b.x, (__builtin_amdgcn_grid_size_y() + b.y - 1) / b.y,
            (__builtin_amdgcn_grid_size_z() + b.z - 1) / b.z};
}
#define threadIdx (pq_thread_idx())
#define blockIdx (pq_block_idx())
#define blockDim (pq_block_dim())
#define gridDim (pq_grid_dim())

PQ_INLINE void __syncthreads() {
    __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
    __builtin_amdgcn_s_barrier();
    __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}

PQ_INLINE unsigned int pq_lane_id() {
    return __builtin_amdgcn_mbcnt_hi(~0u, __builtin_amdgcn_mbcnt_lo(~0u, 0u));
}
// Butterfly exchange inside groups of WIDTH lanes (mask < WIDTH keeps the partner in the group).
PQ_INLINE int pq_shfl_xor_i32(int v, int mask) {
    return __builtin_amdgcn_ds_bpermute((int)((pq_lane_id() ^ (unsigned int)mask) << 2), v);
}

typedef unsigned int pq_u32x2 __attribute__((ext_vector_type(2)));
typedef unsigned int pq_u32x4 __attribute__((ext_vector_type(4)));

// Conversions (round to nearest even; a NaN stays a NaN, its payload is not specified).
PQ_INLINE float pq_fp16_to_fp32(uint32_t h) {
    return (float)__builtin_bit_cast(_Float16, (uint16_t)h);  // v_cvt_f32_f16 (exact, denormals kept)
}
PQ_INLINE uint16_t pq_fp32_to_fp16(float f) {
    return __builtin_bit_cast(uint16_t, (_Float16)f);  // v_cvt_f16_f32
}
PQ_INLINE uint32_t pq_pack_f16x2(float a, float b) {
    return (uint32_t)pq_fp32_to_fp16(a) | ((uint32_t)pq_fp32_to_fp16(b) << 16);
}
PQ_INLINE uint32_t pq_pack_bf16x2(float a, float b) {  // v_cvt_pk_bf16_f32 on gfx950, integer code elsewhere
    return (uint32_t)__builtin_bit_cast(uint16_t, (__bf16)a) | ((uint32_t)__builtin_bit_cast(uint16_t, (__bf16)b) << 16);
}
// Byte i of w as float32, minus OFF, exactly (v_cvt_f32_ubyte<i>).
template <int OFF>
PQ_INLINE float pq_byte_f32(uint32_t w, int i) {
    const float f = (float)((w >> (8 * i)) & 0xffu);
    return OFF ? f - (float)OFF : f;
}
PQ_INLINE float pq_fmaxf(float a, float b) {
    return __builtin_fmaxf(a, b);
}

// 4-way int8 dot product accumulated into c (llama.cpp's dp4a): sdot4 where the dot1 instructions exist,
// sudot4 (both operands signed) on RDNA3/4, a scalar fallback elsewhere.
PQ_INLINE int pq_dp4a(int a, int b, int c) {
#if defined(__gfx906__) || defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) || \
    defined(__gfx941__) || defined(__gfx942__) || defined(__gfx950__) || defined(__gfx1030__) || \
    defined(__gfx1031__) || defined(__gfx1032__) || defined(__gfx1033__) || defined(__gfx1034__) || \
    defined(__gfx1035__) || defined(__gfx1036__)
    return __builtin_amdgcn_sdot4(a, b, c, false);
#elif defined(__GFX11__) || defined(__GFX12__)
    return __builtin_amdgcn_sudot4(true, a, true, b, c, false);
#else
    const int8_t* a8 = (const int8_t*)&a;
    const int8_t* b8 = (const int8_t*)&b;
    return c + a8[0] * b8[0] + a8[1] * b8[1] + a8[2] * b8[2] + a8[3] * b8[3];
#endif
}

#elif defined(__CUDACC__)
// ------------------------------------------------------------------------------------------------ NVIDIA (CUDA)
#define PQ_NVIDIA 1
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define PQ_INLINE __device__ __forceinline__
#define PQ_LAUNCH_BOUNDS(threads, resident) __launch_bounds__(threads, (resident) / (threads))
#define PQ_WARP_SIZE 32

PQ_INLINE unsigned int pq_lane_id() {
    unsigned int lane;
    asm("mov.u32 %0, %%laneid;" : "=r"(lane));  // also right for 2-D blocks whose x is under 32
    return lane;
}
PQ_INLINE int pq_shfl_xor_i32(int v, int mask) {
    return __shfl_xor_sync(0xffffffffu, v, mask, 32);
}

typedef uint2 pq_u32x2;
typedef uint4 pq_u32x4;

// Conversions (round to nearest even; a NaN stays a NaN, its payload is not specified).
PQ_INLINE float pq_fp16_to_fp32(uint32_t h) {
    return __half2float(__ushort_as_half((unsigned short)h));
}
PQ_INLINE uint16_t pq_fp32_to_fp16(float f) {
    return __half_as_ushort(__float2half_rn(f));
}
PQ_INLINE uint32_t pq_pack_f16x2(float a, float b) {  // one F2FP.PACK_AB
    const __half2 h = __floats2half2_rn(a, b);
    return *(const uint32_t*)&h;
}
PQ_INLINE uint32_t pq_pack_bf16x2(float a, float b) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *(const uint32_t*)&h;
}
// Byte i of w as float32, minus OFF, exactly: 0x4B0000bb is 2^23 + b, so one PRMT and one FADD replace the
// quarter-rate I2F conversion.
template <int OFF>
PQ_INLINE float pq_byte_f32(uint32_t w, int i) {
    return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440u + i)) - (8388608.0f + (float)OFF);
}
PQ_INLINE float pq_fmaxf(float a, float b) {
    return fmaxf(a, b);
}

PQ_INLINE int pq_dp4a(int a, int b, int c) {
    return __dp4a(a, b, c);
}

#elif defined(PQ_HOST)
// ------------------------------------------------------------------------------------------------ host emulation
#define PQ_HOST_EMULATION 1
#define __global__
#define __device__
#define __shared__ static
#define PQ_INLINE inline __attribute__((always_inline))
#define PQ_LAUNCH_BOUNDS(threads, resident)
#define PQ_WARP_SIZE 32

struct pq_uint3 {
    unsigned int x, y, z;
};
extern thread_local pq_uint3 pq_host_thread_idx, pq_host_block_idx, pq_host_block_dim, pq_host_grid_dim;
#define threadIdx pq_host_thread_idx
#define blockIdx pq_host_block_idx
#define blockDim pq_host_block_dim
#define gridDim pq_host_grid_dim

// Faults (a misaligned access, a barrier or shuffle, which need real threads) are counted, not fatal: the
// driver returns the count.
extern int pq_host_faults;
inline void __syncthreads() {
    ++pq_host_faults;
}
inline unsigned int pq_lane_id() {
    return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % PQ_WARP_SIZE;
}
inline int pq_shfl_xor_i32(int v, int) {
    ++pq_host_faults;
    return v;
}
inline float pq_fmaxf(float a, float b) {
    return __builtin_fmaxf(a, b);
}

struct pq_u32x2 {
    uint32_t x, y;
};
struct pq_u32x4 {
    uint32_t x, y, z, w;
};

inline float pq_fp16_to_fp32(uint32_t h) {
    return (float)__builtin_bit_cast(_Float16, (uint16_t)h);
}
inline uint16_t pq_fp32_to_fp16(float f) {
    return __builtin_bit_cast(uint16_t, (_Float16)f);
}
inline uint32_t pq_pack_f16x2(float a, float b) {
    return (uint32_t)pq_fp32_to_fp16(a) | ((uint32_t)pq_fp32_to_fp16(b) << 16);
}
inline uint16_t pq_fp32_to_bf16(float f);  // below: ggml's integer rounding (no libgcc/compiler-rt helper needed)
inline uint32_t pq_pack_bf16x2(float a, float b) {
    return (uint32_t)pq_fp32_to_bf16(a) | ((uint32_t)pq_fp32_to_bf16(b) << 16);
}
// The NVIDIA formula (2^23 + byte, then subtract), so the emulation tests it.
template <int OFF>
inline float pq_byte_f32(uint32_t w, int i) {
    return __builtin_bit_cast(float, 0x4B000000u | ((w >> (8 * i)) & 0xffu)) - (8388608.0f + (float)OFF);
}
inline int pq_dp4a(int a, int b, int c) {
    const int8_t* a8 = (const int8_t*)&a;
    const int8_t* b8 = (const int8_t*)&b;
    return c + a8[0] * b8[0] + a8[1] * b8[1] + a8[2] * b8[2] + a8[3] * b8[3];
}
// Every vector or word access checks the alignment the kernels claim (launch.row_alignment), through memcpy
// (a typed access would let the compiler assume the alignment and drop the check).
void pq_host_check_align(const void* p, int align);
#define PQ_LOAD(T, p, a) (pq_host_check_align((p), (a)), pq_host_memcpy_load<T>(p))
#define PQ_STORE(T, p, v, a) (pq_host_check_align((p), (a)), __builtin_memcpy((p), &(v), sizeof(T)))
template <class T>
inline T pq_host_memcpy_load(const void* p) {
    T v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

#else
#error "pq_port.h: compile with clang -x hip (AMD), nvcc (NVIDIA) or -DPQ_HOST (tests)"
#endif

// ------------------------------------------------------------------------------------------------ both vendors

static_assert(PQ_WARP_SIZE == 32 || PQ_WARP_SIZE == 64, "PQ_WARP_SIZE");

// Programmatic dependent launch (NVIDIA sm_90 and newer): a kernel that the host launches with `overlap`
// (LaunchSpec.overlap, pyquant/device/cuda.py) may start while the kernel before it in the stream still runs.
// pq_wait_previous() blocks until that kernel has finished and its writes are visible; pq_release_next(), in
// the kernel before, lets such a kernel start early. Both are no-ops on AMD, on older NVIDIA targets (the PTX
// fallback included) and when the launch did not ask for overlap (the wait then returns at once).
PQ_INLINE void pq_wait_previous() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
PQ_INLINE void pq_release_next() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

PQ_INLINE uint32_t pq_f32_bits(float f) {
    return __builtin_bit_cast(uint32_t, f);
}
PQ_INLINE float pq_bits_f32(uint32_t u) {
    return __builtin_bit_cast(float, u);
}

// Shuffles and reductions take the logical width explicitly: a reduction over 32 lanes means the same on a
// wave64 GCN/CDNA GPU as on RDNA or NVIDIA (HIP's own __shfl_xor defaults to the physical width, 64 on CDNA).
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
#pragma unroll
    for (int offset = WIDTH / 2; offset > 0; offset >>= 1) x += pq_shfl_xor<WIDTH>(x, offset);
    return x;
}
template <int WIDTH>
PQ_INLINE int warp_reduce_sum(int x) {
#pragma unroll
    for (int offset = WIDTH / 2; offset > 0; offset >>= 1) x += pq_shfl_xor<WIDTH>(x, offset);
    return x;
}
template <int WIDTH>
PQ_INLINE float warp_reduce_max(float x) {
#pragma unroll
    for (int offset = WIDTH / 2; offset > 0; offset >>= 1) x = pq_fmaxf(x, pq_shfl_xor<WIDTH>(x, offset));
    return x;
}

// ---- bfloat16 (the ggml reference conversion, for code that must store bf16 exactly as ggml does)

PQ_INLINE float pq_bf16_to_fp32(uint32_t h) {
    return pq_bits_f32(h << 16);
}

// ggml_compute_fp32_to_bf16: round to nearest even, NaN made quiet.
PQ_INLINE uint16_t pq_fp32_to_bf16(float f) {
    const uint32_t u = pq_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64u);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// Four bytes of w as float32 values minus OFF (exact: the values are small integers).
template <int OFF>
PQ_INLINE void pq_bytes_f32(uint32_t w, float* f) {
#pragma unroll
    for (int i = 0; i < 4; ++i) f[i] = pq_byte_f32<OFF>(w, i);
}

// ---- loads of little-endian fields at a known alignment (the caller states it by the function it picks)

#ifndef PQ_LOAD
#define PQ_LOAD(T, p, a) (*(const T*)(p))
#define PQ_STORE(T, p, v, a) (*(T*)(p) = (v))
#endif

PQ_INLINE uint32_t pq_ld_u8(const uint8_t* p) {
    return *p;
}
PQ_INLINE uint32_t pq_ld_u16(const uint8_t* p) {  // p 2-byte aligned
    return PQ_LOAD(uint16_t, p, 2);
}
PQ_INLINE uint32_t pq_ld_u32(const uint8_t* p) {  // p 4-byte aligned
    return PQ_LOAD(uint32_t, p, 4);
}
PQ_INLINE uint32_t pq_ld_u32_a2(const uint8_t* p) {  // p 2-byte aligned
    return pq_ld_u16(p) | (pq_ld_u16(p + 2) << 16);
}
PQ_INLINE uint32_t pq_ld_u32_a1(const uint8_t* p) {  // any alignment (MXFP4's 17-byte blocks)
    return pq_ld_u8(p) | (pq_ld_u8(p + 1) << 8) | (pq_ld_u8(p + 2) << 16) | (pq_ld_u8(p + 3) << 24);
}
PQ_INLINE pq_u32x2 pq_ld_u32x2(const uint8_t* p) {  // p 8-byte aligned
    return PQ_LOAD(pq_u32x2, p, 8);
}
PQ_INLINE pq_u32x4 pq_ld_u32x4(const uint8_t* p) {  // p 16-byte aligned
    return PQ_LOAD(pq_u32x4, p, 16);
}
PQ_INLINE pq_u32x4 pq_make_u32x4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    pq_u32x4 r;
    r.x = a;
    r.y = b;
    r.z = c;
    r.w = d;
    return r;
}
PQ_INLINE void pq_st_u32x4(uint8_t* p, pq_u32x4 v) {  // p 16-byte aligned
    PQ_STORE(pq_u32x4, p, v, 16);
}
PQ_INLINE void pq_st_u32(uint8_t* p, uint32_t v) {  // p 4-byte aligned
    PQ_STORE(uint32_t, p, v, 4);
}
PQ_INLINE void pq_st_u16(uint8_t* p, uint16_t v) {  // p 2-byte aligned
    PQ_STORE(uint16_t, p, v, 2);
}

// 16-entry byte tables (IQ4_NL, IQ4_XS, MXFP4) on this vendor's byte permute
#if defined(PQ_AMD)
#define PQ_LUT_VPERM 1
PQ_INLINE uint32_t pq_vperm(uint32_t s0, uint32_t s1, uint32_t sel) {
    return __builtin_amdgcn_perm(s0, s1, sel);
}
#elif defined(PQ_NVIDIA)
#define PQ_LUT_PRMT 1
PQ_INLINE uint32_t pq_prmt(uint32_t x, uint32_t y, uint32_t s) {
    return __byte_perm(x, y, s);
}
#else
#define PQ_LUT_EMULATE 1  // the host emulation runs the NVIDIA algorithm (tests/simt runs both)
#define PQ_LUT_PRMT 1
#define pq_prmt pq_emulated_prmt
#endif
#include "pq_lut.h"
