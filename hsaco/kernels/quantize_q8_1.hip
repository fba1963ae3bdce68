#include "pq_matmul.h"

// Activations for the matmul kernels: Q8_1 quantization and float conversion, rows padded to kp elements.
//
// Q8_1 is ggml's quantize_row_q8_1_ref, operation for operation (the CPU's bytes, not ggml CUDA's, whose s is the
// sum of the floats): per 32-element block, amax = max |x|, d = amax / 127, id = d ? 1/d : 0, q = roundf(x * id),
// d stored as fp16, s = fp16(sum(q) * d). Division and roundf are IEEE (nvcc -prec-div=true; clang's default for
// HIP); no operation here can contract into an FMA.
//
// Geometry (launch spec: pyquant/device/launch_matmul.py quantize_spec): a thread takes 4 consecutive elements,
// 8 lanes a block; blockIdx.y is the row. Lanes past k (up to the padded kp) write zero blocks, as the CPU
// quantizer would for zeros. The 8-lane reductions use an explicit logical width of 8, the same on 32- and
// 64-lane waves.
//
// Two outputs: quantize_q8_1_<in> writes plain block_q8_1 rows (kp / 32 blocks a row); quantize_mmvq_q8_1_<in>
// writes the mat-vec layout (kp a multiple of 1024): int8 quants [n][kp], each group of 32 blocks as the blocks'
// first 16 quants then their last 16, then uint32 [n][kp / 32] = fp16 d | (int16 sum(q) << 16).

struct pq_x_f32 {
    static PQ_INLINE float ld(const void* x, int64_t i) {
        return ((const float*)x)[i];
    }
};
struct pq_x_f16 {
    static PQ_INLINE float ld(const void* x, int64_t i) {
        return pq_fp16_to_fp32(((const uint16_t*)x)[i]);
    }
};
struct pq_x_bf16 {
    static PQ_INLINE float ld(const void* x, int64_t i) {
        return pq_bf16_to_fp32(((const uint16_t*)x)[i]);
    }
};

// One 8-lane group's share of a Q8_1 block: this lane's 4 values v -> their quants (packed bytes), and for the
// block (the same in all 8 lanes) the fp16 scale d and its float value, and the exact sum of the 32 quants.
struct pq_q8_1_quad {
    uint32_t packed;
    int sum;
    float d;
    uint16_t dh;
};
PQ_INLINE pq_q8_1_quad pq_quantize_q8_1_quad(const float (&v)[4]) {
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) amax = pq_fmaxf(amax, __builtin_fabsf(v[j]));
    amax = warp_reduce_max<8>(amax);
    pq_q8_1_quad r;
    r.d = amax / 127.0f;
    const float id = r.d != 0.0f ? 1.0f / r.d : 0.0f;
    r.packed = 0;
    r.sum = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int q = (int)(int8_t)(int)__builtin_roundf(v[j] * id);
        r.sum += q;
        r.packed |= ((uint32_t)q & 0xFFu) << (8 * j);
    }
    r.sum = warp_reduce_sum<8>(r.sum);
    r.dh = pq_fp32_to_fp16(r.d);
    return r;
}

// Byte offset, within one column of the mat-vec activation layout, of the quants of elements i0..i0+3 (i0 % 4 == 0):
// per group of 32 blocks (1024 elements) the blocks' first 16 quants, then their last 16.
PQ_INLINE int64_t pq_mmvq_act_offset(int64_t i0) {
    const int64_t blk = i0 / 32, b = i0 & 31, g = blk >> 5, j = blk & 31;
    return 1024 * g + (b < 16 ? 16 * j + b : 512 + 16 * j + (b - 16));
}

// LAYOUT: 0 plain Q8_1 blocks, 1 the mat-vec layout, 2 its interleaved variant (each block's quants ordered x0,
// x16, x1, x17, ...: lane l < 4 of a block's 8 pairs its 4 quants with lane l + 4's, one shuffle)
template <class X, int LAYOUT>
PQ_INLINE void quantize_q8_1_rows(const void* __restrict__ x, void* __restrict__ out, int64_t n, int64_t k,
                                  int64_t x_row_stride, int64_t kp) {
    pq_release_next();   // the mat-vec launched after this may start: it waits for this grid before reading
    pq_wait_previous();  // x (and the output's previous reader) come from the kernel before (overlapped launch)
    const int64_t i0 = 4 * ((int64_t)blockIdx.x * blockDim.x + threadIdx.x);  // first of this thread's 4
    if (i0 >= kp) return;  // whole 8-lane groups leave together: kp is a multiple of 32
    for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
        float v[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) v[j] = i0 + j < k ? X::ld(x, row * x_row_stride + i0 + j) : 0.0f;
        const pq_q8_1_quad q = pq_quantize_q8_1_quad(v);
        const int64_t blk = i0 / 32;
        const int lane8 = (int)((i0 / 4) & 7);
        if (LAYOUT != 0) {
            uint32_t w = q.packed;
            int64_t e = i0;  // the element position of the word's first byte (interleaved in layout 2)
            if (LAYOUT == 2) {
                // lane8 < 4 holds x[b..b+3], lane8 + 4 x[b+16..b+19] (b = 4 lane8): the first writes x_b, x_b+16,
                // x_b+1, x_b+17 at interleaved position 2b, the second x_b+2, x_b+18, x_b+3, x_b+19 at 2b + 4
                const uint32_t other = (uint32_t)pq_shfl_xor<8>((int)q.packed, 4);
                const bool first = lane8 < 4;
                const uint32_t lo = first ? q.packed : other, hi = first ? other : q.packed;  // x_b.., x_b+16..
                w = first ? (lo & 0xFFu) | ((hi & 0xFFu) << 8) | ((lo & 0xFF00u) << 8) | ((hi & 0xFF00u) << 16)
                          : ((lo >> 16) & 0xFFu) | ((hi >> 8) & 0xFF00u) | ((lo >> 8) & 0xFF0000u) | (hi & 0xFF000000u);
                e = 32 * blk + (first ? 8 * lane8 : 8 * (lane8 - 4) + 4);
            }
            pq_st_u32((uint8_t*)out + row * kp + pq_mmvq_act_offset(e), w);
            if (lane8 == 0) {
                uint8_t* ds = (uint8_t*)out + n * kp + 4 * (row * (kp / 32) + blk);
                pq_st_u32(ds, (uint32_t)q.dh | ((uint32_t)(uint16_t)(int16_t)q.sum << 16));
            }
        } else {
            uint8_t* b = (uint8_t*)out + (row * (kp / 32) + blk) * 36;
            pq_st_u32(b + 4 + 4 * lane8, q.packed);
            if (lane8 == 0) pq_st_u32(b, (uint32_t)q.dh | ((uint32_t)pq_fp32_to_fp16((float)q.sum * q.d) << 16));
        }
    }
}

// Activations converted (exactly, or rounded to nearest even for f16/bf16 outputs) into rows of kp elements,
// zero past k: the input of the float mat-vec kernels (f32) and of the vendor GEMM (f16/bf16).
struct pq_y_f32 {
    static PQ_INLINE void st(void* y, int64_t i, float v) {
        ((float*)y)[i] = v;
    }
};
struct pq_y_f16 {
    static PQ_INLINE void st(void* y, int64_t i, float v) {
        ((uint16_t*)y)[i] = pq_fp32_to_fp16(v);
    }
};
struct pq_y_bf16 {
    static PQ_INLINE void st(void* y, int64_t i, float v) {
        ((uint16_t*)y)[i] = pq_fp32_to_bf16(v);
    }
};

template <class X, class Y>
PQ_INLINE void convert_rows(const void* __restrict__ x, void* __restrict__ y, int64_t n, int64_t k,
                            int64_t x_row_stride, int64_t kp) {
    pq_release_next();   // the float mat-vec launched after this may start (it waits for this grid)
    pq_wait_previous();  // x (and the output's previous reader) come from the kernel before (overlapped launch)
    const int64_t i0 = 4 * ((int64_t)blockIdx.x * blockDim.x + threadIdx.x);
    if (i0 >= kp) return;
    for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float v = i0 + j < k ? X::ld(x, row * x_row_stride + i0 + j) : 0.0f;
            Y::st(y, row * kp + i0 + j, v);
        }
    }
}

#define PQ_ACT_KERNELS(IN)                                                                                       \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_QUANTIZE_THREADS, PQ_MATMUL_RESIDENT) void quantize_q8_1_##IN(                        \
        const void* __restrict__ x, void* __restrict__ out, int64_t n, int64_t k, int64_t x_row_stride,          \
        int64_t kp) {                                                                                            \
        quantize_q8_1_rows<pq_x_##IN, 0>(x, out, n, k, x_row_stride, kp);                                        \
    }                                                                                                            \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_QUANTIZE_THREADS, PQ_MATMUL_RESIDENT) void quantize_mmvq_q8_1_##IN(                   \
        const void* __restrict__ x, void* __restrict__ out, int64_t n, int64_t k, int64_t x_row_stride,          \
        int64_t kp) {                                                                                            \
        quantize_q8_1_rows<pq_x_##IN, 1>(x, out, n, k, x_row_stride, kp);                                        \
    }                                                                                                            \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_QUANTIZE_THREADS, PQ_MATMUL_RESIDENT) void quantize_mmvq_il_q8_1_##IN(                \
        const void* __restrict__ x, void* __restrict__ out, int64_t n, int64_t k, int64_t x_row_stride,          \
        int64_t kp) {                                                                                            \
        quantize_q8_1_rows<pq_x_##IN, 2>(x, out, n, k, x_row_stride, kp);                                        \
    }                                                                                                            \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_CONVERT_THREADS, PQ_MATMUL_RESIDENT) void convert_##IN##_to_f32(                      \
        const void* __restrict__ x, void* __restrict__ y, int64_t n, int64_t k, int64_t x_row_stride,            \
        int64_t kp) {                                                                                            \
        convert_rows<pq_x_##IN, pq_y_f32>(x, y, n, k, x_row_stride, kp);                                         \
    }                                                                                                            \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_CONVERT_THREADS, PQ_MATMUL_RESIDENT) void convert_##IN##_to_f16(                      \
        const void* __restrict__ x, void* __restrict__ y, int64_t n, int64_t k, int64_t x_row_stride,            \
        int64_t kp) {                                                                                            \
        convert_rows<pq_x_##IN, pq_y_f16>(x, y, n, k, x_row_stride, kp);                                         \
    }                                                                                                            \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_CONVERT_THREADS, PQ_MATMUL_RESIDENT) void convert_##IN##_to_bf16(                     \
        const void* __restrict__ x, void* __restrict__ y, int64_t n, int64_t k, int64_t x_row_stride,            \
        int64_t kp) {                                                                                            \
        convert_rows<pq_x_##IN, pq_y_bf16>(x, y, n, k, x_row_stride, kp);                                        \
    }

PQ_ACT_KERNELS(f32)
PQ_ACT_KERNELS(f16)
PQ_ACT_KERNELS(bf16)
