#include "pq_matmul.h"
#include "pq_vecdot.h"

#ifndef PQ_MMV_COL_FENCE
#define PQ_MMV_COL_FENCE 0  // a build that predefines the tuning macros (benchmarks/matmul_variants.py)
#endif
// Where a mat-vec kernel releases the kernel after it (pq_release_next; that kernel waits for this grid before
// it reads x or writes): 0 never, 1 at its start, 2 once its row loop is done. Quantized (PQ_MMVQ_RELEASE) and
// float (PQ_MMVF_RELEASE) weights. H100, session 8 run AC (benchmarks/NOTES.md): the float mat-vec at its start
// (F16 n = 1 41.5 -> 40.3 us on 4096x14336: the next call's weight loads start under its tail); the quantized
// ones never (at the start: Q4_0/Q4_1/Q5_1 +13-35 % where the weights fit the L2; after the loop: within 1 %
// at n = 1, 3-7 % slower for some types at n = 2 and Q6_K at n = 8).
#ifndef PQ_MMVQ_RELEASE
#define PQ_MMVQ_RELEASE 0
#endif
#ifndef PQ_MMVF_RELEASE
#define PQ_MMVF_RELEASE 1
#endif

// Mat-vec for 1..8 activation columns: dst[c][row] = sum_k W[row][k] * x[c][k] (ggml's mul_mat_vec_q and
// mul_mat_vec_f). Every weight byte is read from memory once for all columns.
//
// Quantized weights (mul_mat_vec_<type>_q8_1_c<N>), activations in the mat-vec Q8_1 layout
// (quantize_mmvq_q8_1_<in>, see pyquant/device/launch_matmul.py):
//  - a block takes RPW consecutive weight rows; its NWARPS warps split the row length: the rows are cut in
//    tiles of W * UPL units of 32 elements (W = PQ_WARP_SIZE) and warp w takes tiles w, w + NWARPS, ...
//    (a block has NWARPS tiles in flight, each warp a short chain of round trips);
//  - a warp copies its tile of the RPW rows (RPW * TB bytes of whole quant blocks) into its own shared-memory
//    slice with coalesced 16-, 8- or 4-byte loads (whatever the padded row stride's alignment allows), its
//    next tile's loads in flight in registers while the current one is computed: global reads are whole cache
//    lines whatever the block size (18, 22, 34, 110, 210 bytes...), odd alignments are dealt with in shared
//    memory;
//  - lane l takes units l, l + W, ... of the tile: it decodes them for the RPW rows once (pq_vecdot.h), then
//    for each column loads the activation unit (the two 16-byte halves of 32 units lie apart, so each load
//    instruction of a warp reads 512 contiguous bytes) and does RPW integer dot products;
//  - the end: butterfly sums over the W lanes of each warp (logical width W, written for 32 and 64), the
//    warps' sums added through shared memory, one store per (row, column).
// Float weights (mul_mat_vec_<f32|f16|bf16>_f32_c<N>): the same split of rows and row length, no staging (the
// rows are 16-byte aligned); per 8W-element step lane l takes elements 4l..4l+3 and 4W+4l..4W+4l+3, so every
// load instruction of a warp (weights and float32 activations alike) reads one contiguous span.

template <class T>
PQ_INLINE constexpr int pq_stage_vec_bytes(int tile_bytes) {
    // device row strides are multiples of 16 bytes (pyquant.device.launch.device_row_stride): a tile starts at
    // a multiple of tile_bytes in a 16-byte aligned row, so the widest vector dividing tile_bytes will do
    int v = 16;
    while (v > 4 && tile_bytes % v != 0) v /= 2;
    return v;
}

template <int V>
struct pq_vec;
template <>
struct pq_vec<16> {
    pq_u32x4 v;
    PQ_INLINE void load(const uint8_t* p) {
        v = pq_ld_u32x4(p);
    }
    PQ_INLINE void zero() {
        v = pq_make_u32x4(0, 0, 0, 0);
    }
    PQ_INLINE void store(uint8_t* p) const {
        pq_st_u32x4(p, v);
    }
};
template <>
struct pq_vec<8> {
    pq_u32x2 v;
    PQ_INLINE void load(const uint8_t* p) {
        v = pq_ld_u32x2(p);
    }
    PQ_INLINE void zero() {
        v.x = 0;
        v.y = 0;
    }
    PQ_INLINE void store(uint8_t* p) const {
        pq_st_u32(p, v.x);
        pq_st_u32(p + 4, v.y);
    }
};
template <>
struct pq_vec<4> {
    uint32_t v;
    PQ_INLINE void load(const uint8_t* p) {
        v = pq_ld_u32(p);
    }
    PQ_INLINE void zero() {
        v = 0;
    }
    PQ_INLINE void store(uint8_t* p) const {
        pq_st_u32(p, v);
    }
};

// Load one activation unit (block u of a column) from the mat-vec layout: per group of 32 units (1024
// elements), the first 16 bytes of each unit's quants, then the second 16 bytes.
template <bool HALF_SUMS>
PQ_INLINE void pq_load_act(const int8_t* __restrict__ aq, const uint32_t* __restrict__ ads, int qoff, int u,
                           pq_act_unit& a) {
    const uint8_t* p = (const uint8_t*)aq + qoff;
    const pq_u32x4 lo = pq_ld_u32x4(p), hi = pq_ld_u32x4(p + 512);
    a.q[0] = lo.x;
    a.q[1] = lo.y;
    a.q[2] = lo.z;
    a.q[3] = lo.w;
    a.q[4] = hi.x;
    a.q[5] = hi.y;
    a.q[6] = hi.z;
    a.q[7] = hi.w;
    const uint32_t ds = pq_ld_u32((const uint8_t*)(ads + u));
    a.d = pq_fp16_to_fp32(ds & 0xFFFFu);
    a.s = (int)(int16_t)(uint16_t)(ds >> 16);
    a.s_lo = 0;
    if (HALF_SUMS) {
#pragma unroll
        for (int i = 0; i < 4; ++i) a.s_lo = pq_dp4a((int)a.q[i], 0x01010101, a.s_lo);
    }
}

// Sum each acc over the W lanes of every warp and over the NWARPS warps (through shared memory), then thread
// c * RPW + r stores row r, column c.
template <int W, int NWARPS, int RPW, int NCOLS>
PQ_INLINE void pq_reduce_store(float (&acc)[RPW][NCOLS], float* __restrict__ dst, int64_t row0, int64_t m,
                               int64_t dst_stride, int lane, int warp) {
    static_assert(RPW * NCOLS <= W, "one lane per output");
    __shared__ float part[NWARPS][RPW * NCOLS];
    float mine = 0.0f;
#pragma unroll
    for (int c = 0; c < NCOLS; ++c) {
#pragma unroll
        for (int r = 0; r < RPW; ++r) {
            const float s = warp_reduce_sum<W>(acc[r][c]);
            if (lane == c * RPW + r) mine = s;
        }
    }
    if (NWARPS > 1) {
        if (lane < RPW * NCOLS) part[warp][lane] = mine;
        __syncthreads();
        if (warp == 0 && lane < RPW * NCOLS) {
#pragma unroll
            for (int w = 1; w < NWARPS; ++w) mine += part[w][lane];
        }
    }
    if (warp == 0 && lane < RPW * NCOLS) {
        const int c = lane / RPW, r = lane % RPW;
        if (row0 + r < m) dst[(int64_t)c * dst_stride + row0 + r] = mine;
    }
}

// EARLY (pq_matmul.h's PQ_MMVQ_EARLY(TYPE, NC)): the next tile's loads go out as soon as a tile is staged,
// else after the last unit's decode (fewer live registers while decoding). ROT (PQ_MMVQ_ROTATE(TYPE, NC)):
// block b walks its rows from tile round b mod iters on, wrapping around, so that the blocks of one wave do not
// all read the same columns of their rows at the same time.
template <class T, int NCOLS, int NWARPS, int RPW, int UPL, bool EARLY, bool ROT>
PQ_INLINE void mul_mat_vec_q(const uint8_t* __restrict__ w, const int8_t* __restrict__ aq,
                             const uint32_t* __restrict__ ads, float* __restrict__ dst, int64_t m, int64_t k,
                             int64_t w_stride, int64_t a_stride, int64_t dst_stride) {
    constexpr int W = PQ_WARP_SIZE;
    constexpr int UNITS = W * UPL;           // 32-element units per row per tile
    constexpr int BLOCKS = UNITS * 32 / T::QK;
    static_assert(BLOCKS * T::QK == UNITS * 32, "a tile is whole blocks");
    constexpr int TB = BLOCKS * T::TS;       // bytes per row per tile
    constexpr int V = pq_stage_vec_bytes<T>(TB);
    constexpr int VPR = TB / V;              // vectors per row per tile
    constexpr int PER = (VPR + W - 1) / W;   // vectors per lane per row per tile
    __shared__ __attribute__((aligned(16))) uint8_t tile[NWARPS * RPW * TB + 16];  // +16: pq_ld_words_a2 slack

    const int tid = (int)threadIdx.x, lane = tid % W, warp = tid / W;
    const int64_t row0 = (int64_t)blockIdx.x * RPW;
    const int64_t nunits = k / 32;
    const int64_t ntiles = (nunits + UNITS - 1) / UNITS;
    const int64_t iters = (ntiles + NWARPS - 1) / NWARPS;  // the same for every warp: barriers stay uniform
    uint8_t* const wtile = tile + warp * RPW * TB;  // this warp's slice: it stages and reads only these bytes
    const int as = (int)a_stride;  // the activations of 8 columns are < 2 GiB: 32-bit offsets

    // Vector i of a row is lane + i * W, so a load instruction covers W * V contiguous bytes. Rows past m and
    // bytes past the padded row read as zero. Offsets from one base are 32-bit (a row stride < 2 GiB): fewer
    // live registers than a 64-bit pointer per row.
    const uint8_t* const wbase = w + row0 * w_stride + lane * V;
    const int ws = (int)w_stride;
    pq_vec<V> pre[RPW][PER];
    auto fetch = [&](int64_t t) {
#pragma unroll
        for (int r = 0; r < RPW; ++r)
#pragma unroll
            for (int i = 0; i < PER; ++i) {
                const int off = (lane + i * W) * V;
                const int64_t toff = t * TB + off;
                if ((VPR % W == 0 || off < TB) && row0 + r < m && t < ntiles && toff < w_stride)
                    pre[r][i].load(wbase + (r * ws + (int)(t * TB) + i * W * V));
                else
                    pre[r][i].zero();
            }
    };

    float acc[RPW][NCOLS];
#pragma unroll
    for (int r = 0; r < RPW; ++r)
#pragma unroll
        for (int c = 0; c < NCOLS; ++c) acc[r][c] = 0.0f;

    // ROT: the tile of iteration i is that of round (i + rot) mod iters (a warp keeps its own tiles)
    const int64_t rot = ROT ? (int64_t)(blockIdx.x % (uint32_t)iters) : 0;
    auto tile_of = [&](int64_t i) { return (i + rot < iters ? i + rot : i + rot - iters) * NWARPS + warp; };
    if (PQ_MMVQ_RELEASE == 1) pq_release_next();
    fetch(ROT ? tile_of(0) : warp);
    pq_wait_previous();  // the activations come from the kernel before (overlapped launch): its first tile's
                         // weight loads are already in flight
    for (int64_t it = 0; it < iters; ++it) {
        const int64_t t = ROT ? tile_of(it) : it * NWARPS + warp;
        if (it) __syncthreads();  // this warp's lanes are done with its previous tile
#pragma unroll
        for (int r = 0; r < RPW; ++r)
#pragma unroll
            for (int i = 0; i < PER; ++i) {
                const int off = (lane + i * W) * V;
                if (VPR % W == 0 || off < TB) pre[r][i].store(wtile + r * TB + off);
            }
        __syncthreads();
        // EARLY: the next tile's loads go out as soon as this one is staged, in flight during all UPL units'
        // decode and dot products (more live registers)
        if (EARLY && it + 1 < iters) fetch(ROT ? tile_of(it + 1) : t + NWARPS);
#pragma unroll
        for (int j = 0; j < UPL; ++j) {
            const int ul = lane + j * W;
            const int64_t u = t * UNITS + ul;
            const bool live = u < nunits;
            typename T::unit wu[RPW];
            if (live) {
#pragma unroll
                for (int r = 0; r < RPW; ++r) T::decode(wtile + r * TB, ul, wu[r]);
            }
            // the next tile's loads go out once this tile's weights are in registers: they are in flight
            // during the dot products, and the decode's temporaries are dead by then
            if (!EARLY && j == UPL - 1 && it + 1 < iters) fetch(ROT ? tile_of(it + 1) : t + NWARPS);
            if (live) {
                const int ui = (int)u;
                const int qoff = 1024 * (ui >> 5) + 16 * (ui & 31);
#pragma unroll
                for (int c = 0; c < NCOLS; ++c) {
                    pq_act_unit a;
                    pq_load_act<T::HALF_SUMS>(aq, ads, c * as + qoff, c * (as / 32) + ui, a);
#pragma unroll
                    for (int r = 0; r < RPW; ++r) acc[r][c] += T::dot(wu[r], a);
                    // the family's register budget: no hoisting of later columns' loads above this point
                    if (PQ_MMV_COL_FENCE && c % PQ_MMV_COL_FENCE == PQ_MMV_COL_FENCE - 1 && c + 1 < NCOLS)
                        asm volatile("" ::: "memory");
                }
            }
        }
    }
    if (PQ_MMVQ_RELEASE == 2) pq_release_next();
    pq_reduce_store<W, NWARPS, RPW, NCOLS>(acc, dst, row0, m, dst_stride, lane, warp);
}

#define PQ_MMVQ_KERNEL(TYPE, NC)                                                                                 \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_MMVQ_NWARPS_##NC * PQ_WARP_SIZE, PQ_MMVQ_RESIDENT(TYPE, NC)) void                      \
        mul_mat_vec_##TYPE##_q8_1_c##NC(const void* __restrict__ w, const void* __restrict__ aq,                 \
                                        const void* __restrict__ ads, float* __restrict__ dst, int64_t m,        \
                                        int64_t k, int64_t w_stride, int64_t a_stride, int64_t dst_stride) {     \
        mul_mat_vec_q<vdq_##TYPE, NC, PQ_MMVQ_NWARPS_##NC, PQ_MMVQ_RPW(TYPE, NC), PQ_MMVQ_UPL(TYPE, NC),           \
                      PQ_MMVQ_EARLY(TYPE, NC) != 0, PQ_MMVQ_ROTATE(TYPE, NC) != 0>(                              \
            (const uint8_t*)w, (const int8_t*)aq, (const uint32_t*)ads, dst, m, k, w_stride, a_stride,           \
            dst_stride);                                                                                         \
    }

#define PQ_MMVQ_KERNELS(TYPE) \
    PQ_MMVQ_KERNEL(TYPE, 1)   \
    PQ_MMVQ_KERNEL(TYPE, 2)   \
    PQ_MMVQ_KERNEL(TYPE, 3)   \
    PQ_MMVQ_KERNEL(TYPE, 4)   \
    PQ_MMVQ_KERNEL(TYPE, 5)   \
    PQ_MMVQ_KERNEL(TYPE, 6)   \
    PQ_MMVQ_KERNEL(TYPE, 7)   \
    PQ_MMVQ_KERNEL(TYPE, 8)

PQ_MMVQ_KERNELS(q4_0)
PQ_MMVQ_KERNELS(q4_1)
PQ_MMVQ_KERNELS(q5_0)
PQ_MMVQ_KERNELS(q5_1)
PQ_MMVQ_KERNELS(q8_0)
PQ_MMVQ_KERNELS(q8_1)
PQ_MMVQ_KERNELS(q2_K)
PQ_MMVQ_KERNELS(q3_K)
PQ_MMVQ_KERNELS(q4_K)
PQ_MMVQ_KERNELS(q5_K)
PQ_MMVQ_KERNELS(q6_K)
PQ_MMVQ_KERNELS(q8_K)
PQ_MMVQ_KERNELS(iq4_nl)
PQ_MMVQ_KERNELS(iq4_xs)
PQ_MMVQ_KERNELS(mxfp4)
PQ_MMVQ_KERNELS(tq1_0)
PQ_MMVQ_KERNELS(tq2_0)

// ---------------------------------------------------------------------------------------------- float weights

// 8 weights of a row, elements e..e+3 and e+4W..e+4W+3: ld (the raw bytes) and cvt (to float32, exact).
struct pq_wf_f32 {
    static constexpr int SIZE = 4;
    struct raw {
        pq_u32x4 a, b;
    };
    static PQ_INLINE void ld(const uint8_t* row, int64_t e, raw& v) {
        v.a = pq_ld_u32x4(row + 4 * e);
        v.b = pq_ld_u32x4(row + 4 * (e + 4 * PQ_WARP_SIZE));
    }
    static PQ_INLINE void cvt(const raw& v, float (&f)[8]) {
        f[0] = pq_bits_f32(v.a.x);
        f[1] = pq_bits_f32(v.a.y);
        f[2] = pq_bits_f32(v.a.z);
        f[3] = pq_bits_f32(v.a.w);
        f[4] = pq_bits_f32(v.b.x);
        f[5] = pq_bits_f32(v.b.y);
        f[6] = pq_bits_f32(v.b.z);
        f[7] = pq_bits_f32(v.b.w);
    }
};
template <bool BF16>
struct pq_wf_16 {
    static constexpr int SIZE = 2;
    struct raw {
        pq_u32x2 a, b;
    };
    static PQ_INLINE void ld(const uint8_t* row, int64_t e, raw& v) {
        v.a = pq_ld_u32x2(row + 2 * e);
        v.b = pq_ld_u32x2(row + 2 * (e + 4 * PQ_WARP_SIZE));
    }
    static PQ_INLINE float cvt1(uint32_t h) {
        return BF16 ? pq_bf16_to_fp32(h) : pq_fp16_to_fp32(h);
    }
    static PQ_INLINE void cvt(const raw& v, float (&f)[8]) {
        f[0] = cvt1(v.a.x & 0xFFFFu);
        f[1] = cvt1(v.a.x >> 16);
        f[2] = cvt1(v.a.y & 0xFFFFu);
        f[3] = cvt1(v.a.y >> 16);
        f[4] = cvt1(v.b.x & 0xFFFFu);
        f[5] = cvt1(v.b.x >> 16);
        f[6] = cvt1(v.b.y & 0xFFFFu);
        f[7] = cvt1(v.b.y >> 16);
    }
};
typedef pq_wf_16<false> pq_wf_f16;
typedef pq_wf_16<true> pq_wf_bf16;

// x: float32 [NCOLS][a_stride] (a_stride a multiple of 512 >= k, zero past k; the weight rows are zero-padded
// to a multiple of 512 too). Warp w of the block takes steps w, w + NWARPS, ... of 8W elements; the weight
// loads of STEPS of its steps go out together (a batch) after the products of the batch before (issuing them
// before, with twice the registers, was 4 % slower: benchmarks/NOTES.md, run AA). The first batch's loads go
// out before the wait for the kernel before: the weights do not depend on it.
template <class WF, int NCOLS, int NWARPS, int RPW>
PQ_INLINE void mul_mat_vec_f(const uint8_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ dst,
                             int64_t m, int64_t k, int64_t w_stride, int64_t a_stride, int64_t dst_stride) {
    constexpr int W = PQ_WARP_SIZE;
    constexpr int STEPS = 64 / (8 * WF::SIZE) / NCOLS > 1 ? 64 / (8 * WF::SIZE) / NCOLS : 1;
    constexpr int STEP = 8 * W;
    const int tid = (int)threadIdx.x, lane = tid % W, warp = tid / W;
    const int64_t row0 = (int64_t)blockIdx.x * RPW;
    const int64_t kp = (k + 511) / 512 * 512;  // a multiple of STEP: a step is wholly inside or outside
    const int64_t batch = (int64_t)NWARPS * STEP * STEPS;
    const uint8_t* rows[RPW];
#pragma unroll
    for (int r = 0; r < RPW; ++r) rows[r] = w + (row0 + r < m ? row0 + r : m - 1) * w_stride;  // clamp: no OOB
    float acc[RPW][NCOLS];
#pragma unroll
    for (int r = 0; r < RPW; ++r)
#pragma unroll
        for (int c = 0; c < NCOLS; ++c) acc[r][c] = 0.0f;
    typename WF::raw wr[STEPS][RPW];
    auto fetch = [&](int64_t e0) {
#pragma unroll
        for (int s = 0; s < STEPS; ++s)
#pragma unroll
            for (int r = 0; r < RPW; ++r)
                if (e0 + s * NWARPS * STEP < kp) WF::ld(rows[r], e0 + s * NWARPS * STEP, wr[s][r]);
    };
    int64_t e0 = (int64_t)warp * STEP + 4 * lane;
    if (PQ_MMVF_RELEASE == 1) pq_release_next();
    fetch(e0);
    pq_wait_previous();  // x comes from the conversion kernel before (overlapped launch)
    for (; e0 < kp; e0 += batch) {
#pragma unroll
        for (int s = 0; s < STEPS; ++s) {
            const int64_t e = e0 + s * NWARPS * STEP;
            if (e < kp) {
                float wv[RPW][8];
#pragma unroll
                for (int r = 0; r < RPW; ++r) WF::cvt(wr[s][r], wv[r]);
#pragma unroll
                for (int c = 0; c < NCOLS; ++c) {
                    const float* xc = x + c * a_stride + e;
                    const pq_u32x4 a = pq_ld_u32x4((const uint8_t*)xc), b = pq_ld_u32x4((const uint8_t*)(xc + 4 * W));
                    const float xv[8] = {pq_bits_f32(a.x), pq_bits_f32(a.y), pq_bits_f32(a.z), pq_bits_f32(a.w),
                                         pq_bits_f32(b.x), pq_bits_f32(b.y), pq_bits_f32(b.z), pq_bits_f32(b.w)};
#pragma unroll
                    for (int r = 0; r < RPW; ++r) {
                        float sum = acc[r][c];
#pragma unroll
                        for (int i = 0; i < 8; ++i) sum += wv[r][i] * xv[i];
                        acc[r][c] = sum;
                    }
                }
            }
        }
        if (e0 + batch < kp) fetch(e0 + batch);
    }
    if (PQ_MMVF_RELEASE == 2) pq_release_next();
    pq_reduce_store<W, NWARPS, RPW, NCOLS>(acc, dst, row0, m, dst_stride, lane, warp);
}

#define PQ_MMVF_KERNEL(TYPE, NC)                                                                                 \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_MMVF_NWARPS_##NC * PQ_WARP_SIZE, PQ_MATMUL_RESIDENT) void mul_mat_vec_##TYPE##_f32_c##NC(  \
        const void* __restrict__ w, const void* __restrict__ x, const void* __restrict__ unused,                 \
        float* __restrict__ dst, int64_t m, int64_t k, int64_t w_stride, int64_t a_stride, int64_t dst_stride) { \
        (void)unused;                                                                                            \
        mul_mat_vec_f<pq_wf_##TYPE, NC, PQ_MMVF_NWARPS_##NC, PQ_MMVF_RPW_##NC>((const uint8_t*)w, (const float*)x, \
                                                                              dst, m, k, w_stride, a_stride,     \
                                                                              dst_stride);                       \
    }

#define PQ_MMVF_KERNELS(TYPE) \
    PQ_MMVF_KERNEL(TYPE, 1)   \
    PQ_MMVF_KERNEL(TYPE, 2)   \
    PQ_MMVF_KERNEL(TYPE, 3)   \
    PQ_MMVF_KERNEL(TYPE, 4)   \
    PQ_MMVF_KERNEL(TYPE, 5)   \
    PQ_MMVF_KERNEL(TYPE, 6)   \
    PQ_MMVF_KERNEL(TYPE, 7)   \
    PQ_MMVF_KERNEL(TYPE, 8)

PQ_MMVF_KERNELS(f32)
PQ_MMVF_KERNELS(f16)
PQ_MMVF_KERNELS(bf16)
