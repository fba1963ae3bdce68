// Dequantize kernels: every supported GGML type to float32, float16 and bfloat16.
//
// float32 results are bit-identical to ggml's dequantize_row_<type> (ggml-quants.c) and so to pyquant's CPU
// code: the same float32 operations in the same order, no FMA (the build passes -ffp-contract=off and
// --fmad=false). f16/bf16 results are those float32 values rounded to nearest even.
//
// Work split (launch spec: pyquant/device/launch.py): a thread-chunk is 16 bytes of output (4 float32 or 8
// halves) = CH consecutive elements of one row. Chunk k of a thread is blockDim.x chunks after chunk k-1, so
// each store instruction of a warp writes one contiguous span; the loads of all PQ_DEQUANT_UNROLL chunks are
// issued before the first store. A decoder reads its block's header once per chunk and the quants in 4-byte
// words (2-byte halves where a block size leaves only 2-byte alignment): neighbouring lanes read neighbouring
// words, so the quantized bytes arrive in whole cache lines; float rows are read in 16-byte vectors. The output
// is 2-7x the input for quantized types, and its stores are 16-byte vectors, contiguous per instruction.
//
// Decoder contract: dq<N>(xr, e, v) writes elements e..e+N-1 (N = 4 or 8, e % N == 0) of the row starting at xr
// to v[0..N-1]; dq1(xr, e) (float rows only) returns element e.

// ---------------------------------------------------------------------------------------------- float rows

struct dq_f32 {
    static constexpr int QK = 1;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const pq_u32x4 q = pq_ld_u32x4(xr + (size_t)e * 4 + 16 * w);
            v[4 * w + 0] = pq_bits_f32(q.x);
            v[4 * w + 1] = pq_bits_f32(q.y);
            v[4 * w + 2] = pq_bits_f32(q.z);
            v[4 * w + 3] = pq_bits_f32(q.w);
        }
    }
    static PQ_INLINE float dq1(const uint8_t* xr, int e) {
        return pq_bits_f32(pq_ld_u32(xr + (size_t)e * 4));
    }
};

// F16 and BF16: 8 values are one 16-byte load, 4 values one 8-byte load.
template <float (*CVT)(uint32_t)>
struct dq_halfwords {
    static constexpr int QK = 1;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        uint32_t w[N / 2];
        if constexpr (N == 8) {
            const pq_u32x4 q = pq_ld_u32x4(xr + (size_t)e * 2);
            w[0] = q.x, w[1] = q.y, w[2] = q.z, w[3] = q.w;
        } else {
            const pq_u32x2 q = pq_ld_u32x2(xr + (size_t)e * 2);
            w[0] = q.x, w[1] = q.y;
        }
#pragma unroll
        for (int i = 0; i < N / 2; ++i) {
            v[2 * i] = CVT(w[i] & 0xffffu);
            v[2 * i + 1] = CVT(w[i] >> 16);
        }
    }
    static PQ_INLINE float dq1(const uint8_t* xr, int e) {
        return CVT(pq_ld_u16(xr + (size_t)e * 2));
    }
};
using dq_f16 = dq_halfwords<pq_fp16_to_fp32>;
using dq_bf16 = dq_halfwords<pq_bf16_to_fp32>;

// ---------------------------------------------------------------------------------------------- legacy quants
// N consecutive elements (N = 4 or 8, e % N == 0) share a block, its scales and its nibble half, so the block
// header is read once per chunk and the quants as N/4 words. Quants are turned into float32 a word at a time:
// the word's four bytes become the four integer values (masks, shifts, a spread of the high bits), then
// pq_bytes_f32 converts them exactly; the float32 arithmetic that follows is ggml's, in ggml's order.

#define PQ_BLOCK_OF(T, xr, e) ((xr) + (size_t)((unsigned int)(e) / PQ_QK_##T) * sizeof(block_##T))
#define PQ_FIELD(T, b, f) ((b) + offsetof(block_##T, f))

// Bits 0..3 of h moved to bits 0, 8, 16, 24 (the shifted copies of h do not overlap, so nothing carries).
PQ_INLINE uint32_t pq_spread4(uint32_t h) {
    return ((h & 0xfu) * 0x00204081u) & 0x01010101u;
}

// ggml's dequantize_row_q4_0: y = (q - 8) * d
struct dq_q4_0 {
    static constexpr int QK = PQ_QK_q4_0;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q4_0, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q4_0, b, d)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32_a2(PQ_FIELD(q4_0, b, qs) + (j & 15) + 4 * w);
            float x[4];
            pq_bytes_f32<8>((q >> (j < 16 ? 0 : 4)) & 0x0f0f0f0fu, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d;
        }
    }
};

// ggml's dequantize_row_q4_1: y = q * d + m
struct dq_q4_1 {
    static constexpr int QK = PQ_QK_q4_1;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q4_1, xr, e);
        const int j = e & (QK - 1);
        const uint32_t dm = pq_ld_u32(PQ_FIELD(q4_1, b, d));  // d and m, adjacent halves
        const float d = pq_fp16_to_fp32(dm & 0xffffu);
        const float m = pq_fp16_to_fp32(dm >> 16);
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32(PQ_FIELD(q4_1, b, qs) + (j & 15) + 4 * w);
            float x[4];
            pq_bytes_f32<0>((q >> (j < 16 ? 0 : 4)) & 0x0f0f0f0fu, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d + m;
        }
    }
};

// ggml's dequantize_row_q5_0: y = ((q | fifth bit << 4) - 16) * d; bit j of qh is element j's fifth bit
struct dq_q5_0 {
    static constexpr int QK = PQ_QK_q5_0;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q5_0, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q5_0, b, d)));
        const uint32_t qh = pq_ld_u32_a2(PQ_FIELD(q5_0, b, qh)) >> j;
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32_a2(PQ_FIELD(q5_0, b, qs) + (j & 15) + 4 * w);
            float x[4];
            pq_bytes_f32<16>(((q >> (j < 16 ? 0 : 4)) & 0x0f0f0f0fu) | (pq_spread4(qh >> (4 * w)) << 4), x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d;
        }
    }
};

// ggml's dequantize_row_q5_1: y = (q | fifth bit << 4) * d + m
struct dq_q5_1 {
    static constexpr int QK = PQ_QK_q5_1;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q5_1, xr, e);
        const int j = e & (QK - 1);
        const uint32_t dm = pq_ld_u32(PQ_FIELD(q5_1, b, d));
        const float d = pq_fp16_to_fp32(dm & 0xffffu);
        const float m = pq_fp16_to_fp32(dm >> 16);
        const uint32_t qh = pq_ld_u32(PQ_FIELD(q5_1, b, qh)) >> j;
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32(PQ_FIELD(q5_1, b, qs) + (j & 15) + 4 * w);
            float x[4];
            pq_bytes_f32<0>(((q >> (j < 16 ? 0 : 4)) & 0x0f0f0f0fu) | (pq_spread4(qh >> (4 * w)) << 4), x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d + m;
        }
    }
};

// ggml's dequantize_row_q8_0: y = q * d (int8 q: flipping the sign bit maps it to q + 128 in 0..255)
struct dq_q8_0 {
    static constexpr int QK = PQ_QK_q8_0;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q8_0, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q8_0, b, d)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            float x[4];
            pq_bytes_f32<128>(pq_ld_u32_a2(PQ_FIELD(q8_0, b, qs) + j + 4 * w) ^ 0x80808080u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d;
        }
    }
};

// Q8_1 (ggml has no dequantizer; the format's definition): y = d * q, d the half at offset 0 (s is d * sum q)
struct dq_q8_1 {
    static constexpr int QK = PQ_QK_q8_1;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q8_1, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q8_1, b, d)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            float x[4];
            pq_bytes_f32<128>(pq_ld_u32(PQ_FIELD(q8_1, b, qs) + j + 4 * w) ^ 0x80808080u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = d * x[i];
        }
    }
};

// ---------------------------------------------------------------------------------------------- k-quants
// Element j of a 256-element super-block, for Q2_K/Q3_K: half n = j/128 uses qs[32n .. 32n+31]; within it,
// shift step jj = (j/32)%4 picks bits 2jj..2jj+1 of byte qs[32n + j%32]; the 16-element scale index is j/16.

// ggml's dequantize_row_q2_K: y = (d * (sc & 0xF)) * q - (dmin * (sc >> 4))
struct dq_q2_K {
    static constexpr int QK = PQ_QK_q2_K;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q2_K, xr, e);
        const int j = e & (QK - 1);
        const int shift = 2 * ((j >> 5) & 3);
        const uint32_t dd = pq_ld_u32(PQ_FIELD(q2_K, b, d));  // d and dmin, adjacent halves
        const uint32_t sc = pq_ld_u8(PQ_FIELD(q2_K, b, scales) + (j >> 4));
        const float dl = pq_fp16_to_fp32(dd & 0xffffu) * pq_byte_f32<0>(sc & 0xfu, 0);
        const float ml = pq_fp16_to_fp32(dd >> 16) * pq_byte_f32<0>(sc >> 4, 0);
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32(PQ_FIELD(q2_K, b, qs) + 32 * (j >> 7) + (j & 31) + 4 * w);
            float x[4];
            pq_bytes_f32<0>((q >> shift) & 0x03030303u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = dl * x[i] - ml;
        }
    }
};

// ggml's dequantize_row_q3_K: y = (d * (scale - 32)) * (q - (high bit ? 0 : 4)), computed as
// ((q | high bit << 2) - 4). The 6-bit scales are packed as 16 low nibbles in bytes 0..7 and 16 two-bit tops in
// bytes 8..11; the high bit of element j is bit 4*(j/128) + (j/32)%4 of hmask[j%32].
struct dq_q3_K {
    static constexpr int QK = PQ_QK_q3_K;
    // The 6-bit scale of 16-element group is (0..15): its low nibble in bytes 0..7, its top two bits in bytes
    // 8..11 (the bias of 32 is taken off by the caller's pq_byte_f32<32>).
    static PQ_INLINE uint32_t scale(const uint8_t* scales, int is) {
        const int k = is & 3, grp = is >> 2;
        const uint32_t lo = pq_ld_u8(scales + k + 4 * (grp & 1));
        const uint32_t hi = pq_ld_u8(scales + 8 + k);
        return (grp < 2 ? lo & 0xfu : lo >> 4) | (((hi >> (2 * grp)) & 3u) << 4);
    }
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q3_K, xr, e);
        const int j = e & (QK - 1);
        const int n = j >> 7, jj = (j >> 5) & 3, s = j & 31;
        const uint32_t sc = scale(PQ_FIELD(q3_K, b, scales), j >> 4);
        const float dl = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q3_K, b, d))) * pq_byte_f32<32>(sc, 0);
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = (pq_ld_u32_a2(PQ_FIELD(q3_K, b, qs) + 32 * n + s + 4 * w) >> (2 * jj)) & 0x03030303u;
            const uint32_t hm = (pq_ld_u32_a2(PQ_FIELD(q3_K, b, hmask) + s + 4 * w) >> (4 * n + jj)) & 0x01010101u;
            float x[4];
            pq_bytes_f32<4>(q | (hm << 2), x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = dl * x[i];
        }
    }
    // Elements e + 32k .. e + 32k + N-1 for k = 0..3 (e % 128 < 32): the four shift steps jj = k of the same
    // qs and hmask bytes, so each quant byte is loaded once for 4 elements (dq<N> loads it once per element
    // group of N); the four 16-element scales are 2 apart. Same float32 operations as dq<N>.
    template <int N>
    static PQ_INLINE void dq_quarters(const uint8_t* xr, int e, float (&v)[4][N]) {
        const uint8_t* b = PQ_BLOCK_OF(q3_K, xr, e);
        const int j = e & (QK - 1);
        const int n = j >> 7, s = j & 31;
        const uint8_t* scales = PQ_FIELD(q3_K, b, scales);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q3_K, b, d)));
        uint32_t q[N / 4], hm[N / 4];
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            q[w] = pq_ld_u32_a2(PQ_FIELD(q3_K, b, qs) + 32 * n + s + 4 * w);
            hm[w] = pq_ld_u32_a2(PQ_FIELD(q3_K, b, hmask) + s + 4 * w) >> (4 * n);
        }
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
            const float dl = d * pq_byte_f32<32>(scale(scales, 8 * n + 2 * jj + (s >> 4)), 0);
#pragma unroll
            for (int w = 0; w < N / 4; ++w) {
                float x[4];
                pq_bytes_f32<4>(((q[w] >> (2 * jj)) & 0x03030303u) | (((hm[w] >> jj) & 0x01010101u) << 2), x);
#pragma unroll
                for (int i = 0; i < 4; ++i) v[jj][4 * w + i] = dl * x[i];
            }
        }
    }
};

// ggml's get_scale_min_k4 on the 12 scale bytes held as three little-endian words s0, s1, s2. Both cases are
// computed and blended with a mask (lanes of a warp sit in different groups; a ternary here becomes a branch
// with its own load on AMD).
PQ_INLINE void pq_scale_min_k4(int is, uint32_t s0, uint32_t s1, uint32_t s2, uint32_t& sc, uint32_t& m) {
    const int sh = 8 * (is & 3);
    const uint32_t a = s0 >> sh, b = s1 >> sh, c = s2 >> sh;
    const uint32_t low = 0u - (uint32_t)(is < 4);  // all ones for is < 4
    sc = ((a & 63u) & low) | (((c & 0xfu) | ((a >> 6 & 3u) << 4)) & ~low);
    m = ((b & 63u) & low) | (((c >> 4 & 0xfu) | ((b >> 6 & 3u) << 4)) & ~low);
}

// Element j of Q4_K/Q5_K: group g = j/64 of qs[32g .. 32g+31], low nibbles for the first 32 elements of the
// group and high nibbles for the next 32; scale/min index 2g + (j/32)%2.

// ggml's dequantize_row_q4_K: y = (d * sc) * q - (dmin * m)
struct dq_q4_K {
    static constexpr int QK = PQ_QK_q4_K;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q4_K, xr, e);
        const int j = e & (QK - 1);
        const int g = j >> 6, hi = (j >> 5) & 1;
        const uint32_t dd = pq_ld_u32(PQ_FIELD(q4_K, b, d));
        const uint8_t* scales = PQ_FIELD(q4_K, b, scales);
        uint32_t sc, m;
        pq_scale_min_k4(2 * g + hi, pq_ld_u32(scales), pq_ld_u32(scales + 4), pq_ld_u32(scales + 8), sc, m);
        const float d1 = pq_fp16_to_fp32(dd & 0xffffu) * pq_byte_f32<0>(sc, 0);
        const float m1 = pq_fp16_to_fp32(dd >> 16) * pq_byte_f32<0>(m, 0);
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32(PQ_FIELD(q4_K, b, qs) + 32 * g + (j & 31) + 4 * w);
            float x[4];
            pq_bytes_f32<0>((q >> (4 * hi)) & 0x0f0f0f0fu, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = d1 * x[i] - m1;
        }
    }
};

// ggml's dequantize_row_q5_K: y = (d * sc) * (q + (high bit ? 16 : 0)) - (dmin * m); the high bit of element
// j is bit 2g + (j/32)%2 of qh[j%32]
struct dq_q5_K {
    static constexpr int QK = PQ_QK_q5_K;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q5_K, xr, e);
        const int j = e & (QK - 1);
        const int g = j >> 6, hi = (j >> 5) & 1;
        const uint32_t dd = pq_ld_u32(PQ_FIELD(q5_K, b, d));
        const uint8_t* scales = PQ_FIELD(q5_K, b, scales);
        uint32_t sc, m;
        pq_scale_min_k4(2 * g + hi, pq_ld_u32(scales), pq_ld_u32(scales + 4), pq_ld_u32(scales + 8), sc, m);
        const float d1 = pq_fp16_to_fp32(dd & 0xffffu) * pq_byte_f32<0>(sc, 0);
        const float m1 = pq_fp16_to_fp32(dd >> 16) * pq_byte_f32<0>(m, 0);
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = (pq_ld_u32(PQ_FIELD(q5_K, b, qs) + 32 * g + (j & 31) + 4 * w) >> (4 * hi)) & 0x0f0f0f0fu;
            const uint32_t qh = (pq_ld_u32(PQ_FIELD(q5_K, b, qh) + (j & 31) + 4 * w) >> (2 * g + hi)) & 0x01010101u;
            float x[4];
            pq_bytes_f32<0>(q | (qh << 4), x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = d1 * x[i] - m1;
        }
    }
};

// ggml's dequantize_row_q6_K: y = (d * sc) * (q - 32). Element j: half n = j/128, quarter t = (j%128)/32,
// l = j%32: low/high nibble (t >= 2) of ql[64n + l + 32(t%2)], bits 2t..2t+1 of qh[32n + l] on top,
// scale sc[8n + l/16 + 2t] (int8).
struct dq_q6_K {
    static constexpr int QK = PQ_QK_q6_K;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q6_K, xr, e);
        const int j = e & (QK - 1);
        const int n = j >> 7, t = (j >> 5) & 3, l = j & 31;
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q6_K, b, d)));
        const uint32_t sc = pq_ld_u8(PQ_FIELD(q6_K, b, scales) + 8 * n + (l >> 4) + 2 * t);
        const float ds = d * pq_byte_f32<128>(sc ^ 0x80u, 0);
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t ql =
                (pq_ld_u32_a2(PQ_FIELD(q6_K, b, ql) + 64 * n + l + 32 * (t & 1) + 4 * w) >> (4 * (t >> 1))) & 0x0f0f0f0fu;
            const uint32_t qh = (pq_ld_u32_a2(PQ_FIELD(q6_K, b, qh) + 32 * n + l + 4 * w) >> (2 * t)) & 0x03030303u;
            float x[4];
            pq_bytes_f32<32>(ql | (qh << 4), x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = ds * x[i];
        }
    }
    // Elements e + 32t .. e + 32t + N-1 for t = 0..3 (e % 128 < 32): the low and high nibbles of two ql runs
    // and the four bit pairs of one qh run, each byte loaded once for 2 or 4 elements. Same float32 operations
    // as dq<N>.
    template <int N>
    static PQ_INLINE void dq_quarters(const uint8_t* xr, int e, float (&v)[4][N]) {
        const uint8_t* b = PQ_BLOCK_OF(q6_K, xr, e);
        const int j = e & (QK - 1);
        const int n = j >> 7, l = j & 31;
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(q6_K, b, d)));
        uint32_t ql0[N / 4], ql1[N / 4], qh[N / 4];
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            ql0[w] = pq_ld_u32_a2(PQ_FIELD(q6_K, b, ql) + 64 * n + l + 4 * w);
            ql1[w] = pq_ld_u32_a2(PQ_FIELD(q6_K, b, ql) + 64 * n + l + 32 + 4 * w);
            qh[w] = pq_ld_u32_a2(PQ_FIELD(q6_K, b, qh) + 32 * n + l + 4 * w);
        }
#pragma unroll
        for (int t = 0; t < 4; ++t) {
            const uint32_t sc = pq_ld_u8(PQ_FIELD(q6_K, b, scales) + 8 * n + (l >> 4) + 2 * t);
            const float ds = d * pq_byte_f32<128>(sc ^ 0x80u, 0);
#pragma unroll
            for (int w = 0; w < N / 4; ++w) {
                const uint32_t lo = ((t & 1 ? ql1[w] : ql0[w]) >> (4 * (t >> 1))) & 0x0f0f0f0fu;
                float x[4];
                pq_bytes_f32<32>(lo | (((qh[w] >> (2 * t)) & 0x03030303u) << 4), x);
#pragma unroll
                for (int i = 0; i < 4; ++i) v[t][4 * w + i] = ds * x[i];
            }
        }
    }
};

// ggml's dequantize_row_q8_K: y = d * q with a float32 d
struct dq_q8_K {
    static constexpr int QK = PQ_QK_q8_K;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(q8_K, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_bits_f32(pq_ld_u32(PQ_FIELD(q8_K, b, d)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            float x[4];
            pq_bytes_f32<128>(pq_ld_u32(PQ_FIELD(q8_K, b, qs) + j + 4 * w) ^ 0x80808080u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = d * x[i];
        }
    }
};

// ---------------------------------------------------------------------------------------------- table types
// IQ4_NL, IQ4_XS and MXFP4 store 4-bit indices into a 16-entry table of small integers (nibbles laid out as in
// Q4_0: low nibbles are elements 0..15 of a 32-element group, high nibbles 16..31). A word of four indices
// becomes the four table bytes with one pq_lut16, then float32 exactly as for Q8_0.

// ggml's dequantize_row_iq4_nl: y = d * kvalues_iq4nl[q]
struct dq_iq4_nl {
    static constexpr int QK = PQ_QK_iq4_nl;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(iq4_nl, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(iq4_nl, b, d)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32_a2(PQ_FIELD(iq4_nl, b, qs) + (j & 15) + 4 * w);
            const uint32_t t = pq_lut16((q >> (j < 16 ? 0 : 4)) & 0x0f0f0f0fu, PQ_KVALUES_IQ4NL);
            float x[4];
            pq_bytes_f32<128>(t ^ 0x80808080u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = d * x[i];
        }
    }
};

// ggml's dequantize_row_iq4_xs: 8 groups of 32 a super-block, group ib scaled by dl = d * (ls - 32) with the
// 6-bit ls = low nibble (scales_l[ib / 2] >> 4 * (ib % 2)) | two bits (scales_h >> 2 * ib) << 4;
// y = dl * kvalues_iq4nl[q]
struct dq_iq4_xs {
    static constexpr int QK = PQ_QK_iq4_xs;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(iq4_xs, xr, e);
        const int j = e & (QK - 1), ib = j >> 5, jj = j & 31;
        const uint32_t dh = pq_ld_u32(PQ_FIELD(iq4_xs, b, d));  // d and scales_h, adjacent halves
        const uint32_t sl = pq_ld_u8(PQ_FIELD(iq4_xs, b, scales_l) + (ib >> 1));
        const int ls = (int)(((sl >> (4 * (ib & 1))) & 0xfu) | (((dh >> (16 + 2 * ib)) & 3u) << 4));
        const float dl = pq_fp16_to_fp32(dh & 0xffffu) * (float)(ls - 32);
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32(PQ_FIELD(iq4_xs, b, qs) + 16 * ib + (jj & 15) + 4 * w);
            const uint32_t t = pq_lut16((q >> (jj < 16 ? 0 : 4)) & 0x0f0f0f0fu, PQ_KVALUES_IQ4NL);
            float x[4];
            pq_bytes_f32<128>(t ^ 0x80808080u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = dl * x[i];
        }
    }
};

// ggml's dequantize_row_mxfp4: y = kvalues_mxfp4[q] * d, d = GGML_E8M0_TO_FP32_HALF(e). 17-byte blocks: the
// quants are read a byte at a time.
struct dq_mxfp4 {
    static constexpr int QK = PQ_QK_mxfp4;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(mxfp4, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_e8m0_half_f32(pq_ld_u8(PQ_FIELD(mxfp4, b, e)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32_a1(PQ_FIELD(mxfp4, b, qs) + (j & 15) + 4 * w);
            const uint32_t t = pq_lut16((q >> (j < 16 ? 0 : 4)) & 0x0f0f0f0fu, PQ_KVALUES_MXFP4);
            float x[4];
            pq_bytes_f32<128>(t ^ 0x80808080u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d;
        }
    }
};

// ---------------------------------------------------------------------------------------------- ternary
// TQ1_0 and TQ2_0 store trits xi in {0, 1, 2} for y = (float)(xi - 1) * d (the 256-element layouts are spelled
// out in pyquant/cpu/ternary.py). Both blocks are only 2-byte aligned (54 and 66 bytes).

// ggml's dequantize_row_tq1_0: five trits a byte as ceil(base-3 number * 256 / 243); trit n of byte b is
// ((uint8_t)(b * 3^n) * 3) >> 8. Elements 0..159: qs[m] trit n = j / 32 (m = j % 32); 160..239: qs[32 + m]
// trit (j - 160) / 16; 240..255: qh[(j - 240) % 4] trit (j - 240) / 4.
struct dq_tq1_0 {
    static constexpr int QK = PQ_QK_tq1_0;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(tq1_0, xr, e);
        const int j = e & (QK - 1);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(tq1_0, b, d)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const int jw = j + 4 * w;
            int off, n;
            if (jw < 160) {
                off = jw & 31, n = jw >> 5;
            } else if (jw < 240) {
                off = 32 + ((jw - 160) & 15), n = (jw - 160) >> 4;
            } else {
                off = 48, n = (jw - 240) >> 2;
            }
            const uint32_t t = pq_tq1_trits(pq_ld_u32_a2(PQ_FIELD(tq1_0, b, qs) + off), pq_pow3(n));
            float x[4];
            pq_bytes_f32<1>(t, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d;
        }
    }
};

// ggml's dequantize_row_tq2_0: element 128 c + 32 l + m is bits 2l, 2l + 1 of qs[32 c + m].
struct dq_tq2_0 {
    static constexpr int QK = PQ_QK_tq2_0;
    template <int N>
    static PQ_INLINE void dq(const uint8_t* xr, int e, float* v) {
        const uint8_t* b = PQ_BLOCK_OF(tq2_0, xr, e);
        const int j = e & (QK - 1);
        const int shift = 2 * ((j >> 5) & 3);
        const float d = pq_fp16_to_fp32(pq_ld_u16(PQ_FIELD(tq2_0, b, d)));
#pragma unroll
        for (int w = 0; w < N / 4; ++w) {
            const uint32_t q = pq_ld_u32_a2(PQ_FIELD(tq2_0, b, qs) + 32 * (j >> 7) + (j & 31) + 4 * w);
            float x[4];
            pq_bytes_f32<1>((q >> shift) & 0x03030303u, x);
#pragma unroll
            for (int i = 0; i < 4; ++i) v[4 * w + i] = x[i] * d;
        }
    }
};

// ---------------------------------------------------------------------------------------------- outputs
// pack(v): one chunk (CH float32 values) as the 16 bytes that are stored; store1: one element (unaligned rows).

struct out_f32 {
    static constexpr int SIZE = 4;
    static PQ_INLINE pq_u32x4 pack(const float* v) {
        return pq_make_u32x4(pq_f32_bits(v[0]), pq_f32_bits(v[1]), pq_f32_bits(v[2]), pq_f32_bits(v[3]));
    }
    static PQ_INLINE void store1(uint8_t* p, float v) {
        pq_st_u32(p, pq_f32_bits(v));
    }
};

struct out_f16 {
    static constexpr int SIZE = 2;
    static PQ_INLINE pq_u32x4 pack(const float* v) {
        return pq_make_u32x4(pq_pack_f16x2(v[0], v[1]), pq_pack_f16x2(v[2], v[3]), pq_pack_f16x2(v[4], v[5]),
                             pq_pack_f16x2(v[6], v[7]));
    }
    static PQ_INLINE void store1(uint8_t* p, float v) {
        pq_st_u16(p, pq_fp32_to_fp16(v));
    }
};

struct out_bf16 {
    static constexpr int SIZE = 2;
    static PQ_INLINE pq_u32x4 pack(const float* v) {
        return pq_make_u32x4(pq_pack_bf16x2(v[0], v[1]), pq_pack_bf16x2(v[2], v[3]), pq_pack_bf16x2(v[4], v[5]),
                             pq_pack_bf16x2(v[6], v[7]));
    }
    static PQ_INLINE void store1(uint8_t* p, float v) {
        pq_st_u16(p, (uint16_t)pq_pack_bf16x2(v, 0.0f));
    }
};

// ---------------------------------------------------------------------------------------------- the kernel body

// Decoders with dq_quarters (Q3_K, Q6_K: one quant byte feeds elements 32 apart) take the thread's U = 4 chunks
// as the four 32-element quarters of a 128-element half block instead of chunks blockDim.x apart.
template <class T, class = void>
struct pq_has_quarters {
    static constexpr bool value = false;
};
template <class T>
struct pq_has_quarters<T, decltype((void)&T::template dq_quarters<4>, void())> {
    static constexpr bool value = true;
};

template <class DQ, class OUT>
PQ_INLINE void dequantize_rows(const uint8_t* __restrict__ x, uint8_t* __restrict__ y, int64_t nrows, int64_t n,
                               int64_t x_row_stride_bytes) {
    constexpr int CH = PQ_DEQUANT_VEC_BYTES / OUT::SIZE;  // elements per chunk
    constexpr int U = PQ_DEQUANT_UNROLL;
    static_assert(CH % 4 == 0 && (DQ::QK == 1 || DQ::QK % CH == 0), "a chunk never straddles a block");
    const int nn = (int)n;  // < 2**31 (launch spec)
    const int chunks = (int)(((unsigned int)nn + CH - 1) / CH);
    const unsigned int tx = threadIdx.x, bx = blockDim.x;
    const int c0 = (int)(blockIdx.x * bx * U + tx);
    const int64_t row_step = (int64_t)gridDim.y * blockDim.y;
    // Only float rows can have n % CH != 0 (quantized n is a multiple of the block size >= 32): such rows are
    // not 16-byte aligned in y, so they are written element by element.
    const bool vec = DQ::QK > 1 || nn % CH == 0;
    for (int64_t row = (int64_t)blockIdx.y * blockDim.y + threadIdx.y; row < nrows; row += row_step) {
        const uint8_t* xr = x + row * x_row_stride_bytes;
        uint8_t* yr = y + row * n * OUT::SIZE;
        if constexpr (pq_has_quarters<DQ>::value) {
            // A CTA covers the same bx * U chunks as below, as whole halves of blocks: G = 32 / CH lanes share a
            // half, lane i of them writing chunks i, i + G, i + 2G, i + 3G of it (so each store instruction of a
            // warp writes 32 / G runs of 16 * G contiguous bytes). Rows are whole blocks: a half is wholly
            // inside or outside the row.
            static_assert(U == 4 && DQ::QK % 128 == 0, "four quarters of a half block per thread");
            constexpr int G = 32 / CH;
            const int c = (int)(blockIdx.x * bx * U) + (int)(tx / G) * 4 * G + (int)(tx % G);
            if (c < chunks) {
                float v[4][CH];
                DQ::template dq_quarters<CH>(xr, c * CH, v);
                pq_u32x4 out[4];
#pragma unroll
                for (int k = 0; k < 4; ++k) out[k] = OUT::pack(v[k]);
#pragma unroll
                for (int k = 0; k < 4; ++k) pq_st_u32x4(yr + (size_t)(c + k * G) * PQ_DEQUANT_VEC_BYTES, out[k]);
            }
        } else if (vec) {
            // Decode (and pack) every chunk before the first store, so the loads of all chunks are in flight
            // together and only the packed 16 bytes per chunk stay live until the stores. The common case (all
            // chunks of the thread inside the row) has no per-chunk condition, which would stop the compilers
            // from hoisting the loads.
            pq_u32x4 out[U];
            if (c0 + (U - 1) * (int)bx < chunks) {
#pragma unroll
                for (int k = 0; k < U; ++k) {
                    float v[CH];
                    DQ::template dq<CH>(xr, (c0 + k * (int)bx) * CH, v);
                    out[k] = OUT::pack(v);
                }
#pragma unroll
                for (int k = 0; k < U; ++k)
                    pq_st_u32x4(yr + (size_t)(c0 + k * (int)bx) * PQ_DEQUANT_VEC_BYTES, out[k]);
            } else {
#pragma unroll
                for (int k = 0; k < U; ++k) {
                    const int c = c0 + k * (int)bx;
                    if (c < chunks) {
                        float v[CH];
                        DQ::template dq<CH>(xr, c * CH, v);
                        out[k] = OUT::pack(v);
                    }
                }
#pragma unroll
                for (int k = 0; k < U; ++k) {
                    const int c = c0 + k * (int)bx;
                    if (c < chunks) pq_st_u32x4(yr + (size_t)c * PQ_DEQUANT_VEC_BYTES, out[k]);
                }
            }
        } else {
            if constexpr (DQ::QK == 1) {
#pragma unroll 1
                for (int k = 0; k < U; ++k) {
                    const int c = c0 + k * (int)bx;
#pragma unroll 1
                    for (int h = 0; h < CH; ++h) {
                        const int e = c * CH + h;
                        if (c < chunks && e < nn) OUT::store1(yr + (size_t)e * OUT::SIZE, DQ::dq1(xr, e));
                    }
                }
            }
        }
    }
}

#define PQ_DEQUANTIZE_KERNEL(T, OUT)                                                                              \
    extern "C" __global__ PQ_LAUNCH_BOUNDS(PQ_DEQUANT_THREADS, PQ_DEQUANT_RESIDENT) void dequantize_block_##T##_##OUT(                 \
        const void* __restrict__ x, void* __restrict__ y, int64_t nrows, int64_t n, int64_t x_row_stride_bytes) { \
        dequantize_rows<dq_##T, out_##OUT>((const uint8_t*)x, (uint8_t*)y, nrows, n, x_row_stride_bytes);         \
    }

#define PQ_DEQUANTIZE_KERNELS(T) \
    PQ_DEQUANTIZE_KERNEL(T, f32) \
    PQ_DEQUANTIZE_KERNEL(T, f16) \
    PQ_DEQUANTIZE_KERNEL(T, bf16)

PQ_DEQUANTIZE_KERNELS(f32)
PQ_DEQUANTIZE_KERNELS(f16)
PQ_DEQUANTIZE_KERNELS(bf16)
PQ_DEQUANTIZE_KERNELS(q4_0)
PQ_DEQUANTIZE_KERNELS(q4_1)
PQ_DEQUANTIZE_KERNELS(q5_0)
PQ_DEQUANTIZE_KERNELS(q5_1)
PQ_DEQUANTIZE_KERNELS(q8_0)
PQ_DEQUANTIZE_KERNELS(q8_1)
PQ_DEQUANTIZE_KERNELS(q2_K)
PQ_DEQUANTIZE_KERNELS(q3_K)
PQ_DEQUANTIZE_KERNELS(q4_K)
PQ_DEQUANTIZE_KERNELS(q5_K)
PQ_DEQUANTIZE_KERNELS(q6_K)
PQ_DEQUANTIZE_KERNELS(q8_K)
PQ_DEQUANTIZE_KERNELS(iq4_nl)
PQ_DEQUANTIZE_KERNELS(iq4_xs)
PQ_DEQUANTIZE_KERNELS(mxfp4)
PQ_DEQUANTIZE_KERNELS(tq1_0)
PQ_DEQUANTIZE_KERNELS(tq2_0)
