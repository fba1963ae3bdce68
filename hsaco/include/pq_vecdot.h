// pq_vecdot.h: one 32-element unit of a quantized weight row times one q8_1 activation block, per type.
//
// The matmul kernels (kernels/mmvq.hip) cut every weight row into units of 32 consecutive elements, the size of
// a q8_1 block, so unit u of a row meets activation block u of each column. Per type, two functions:
//
//   decode(row, u, w)         unit u of the row whose bytes start at `row` (a tile of whole blocks in shared
//                             memory) -> w: the 32 quants as 8 words of 4 int8 (element 4i+b is byte b of q[i])
//                             and the unit's scales, all as the exact integers / floats ggml's dequantizer uses;
//   dot(w, a)                 the unit's contribution for one activation column a (8 words of int8, the block's
//                             scale d = fp16 value as float, and the integer sum of its 32 quants).
//
// Integer parts are exact: every partial sum below stays under 2**24, so converting it to float is exact too
// (worst case Q6_K: 2 * 128 * 16 * 32 * 127 = 16,646,144 < 16,777,216). Offsets (Q4_0's -8, Q5_0's -16) are
// taken out with the exact integer sum of the activation quants, never with ggml's rounded s = d * sum.
// The float result is da * (d_w * I - m_w * M) for integers I, M: a handful of float32 roundings per unit.
//
// Alignment: blocks of 2-byte-aligned types (Q4_0, Q5_0, Q8_0, Q3_K, Q6_K) are read with aligned words and a
// funnel shift (pq_ld_words_a2); the tile buffer has 16 bytes of slack for the word read past a block's end.
#pragma once

// ---------------------------------------------------------------------------------------------- helpers

// N little-endian words from an address whose low bits in MISALIGN may be set (2: 2-byte aligned; 3: any, as
// MXFP4's 17-byte blocks): N + 1 aligned loads and a funnel shift.
template <int N, unsigned int MISALIGN>
PQ_INLINE void pq_ld_words_shifted(const uint8_t* p, uint32_t (&out)[N]) {
    const uintptr_t a = (uintptr_t)p;
    const uint8_t* base = p - (a & MISALIGN);
    const unsigned int sh = (unsigned int)(a & MISALIGN) * 8u;
    uint32_t w[N + 1];
#pragma unroll
    for (int i = 0; i <= N; ++i) w[i] = pq_ld_u32(base + 4 * i);
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = (uint32_t)((((uint64_t)w[i + 1] << 32) | w[i]) >> sh);
}
template <int N>
PQ_INLINE void pq_ld_words_a2(const uint8_t* p, uint32_t (&out)[N]) {
    pq_ld_words_shifted<N, 2u>(p, out);
}
template <int N>
PQ_INLINE void pq_ld_words_a1(const uint8_t* p, uint32_t (&out)[N]) {
    pq_ld_words_shifted<N, 3u>(p, out);
}

// N words from a 4-byte-aligned address.
template <int N>
PQ_INLINE void pq_ld_words_a4(const uint8_t* p, uint32_t (&out)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = pq_ld_u32(p + 4 * i);
}

// N words (N a multiple of 4) from a 16-byte-aligned address.
template <int N>
PQ_INLINE void pq_ld_words_a16(const uint8_t* p, uint32_t (&out)[N]) {
    static_assert(N % 4 == 0, "N");
#pragma unroll
    for (int i = 0; i < N; i += 4) {
        const pq_u32x4 v = pq_ld_u32x4(p + 4 * i);
        out[i] = v.x;
        out[i + 1] = v.y;
        out[i + 2] = v.z;
        out[i + 3] = v.w;
    }
}

// Bytes b in [0, 2*off) -> the signed bytes b - off, four at a time, without borrows between bytes.
PQ_INLINE uint32_t pq_sub_bytes(uint32_t v, uint32_t off4) {
    return ((v | 0x80808080u) - off4) ^ 0x80808080u;
}

// One q8_1 activation block as the matmul kernels hold it: the 32 quants, the scale as float (the fp16 value
// the Q8_1 block stores, exactly), the integer sum of the quants, and (types that need it) the sum of the
// first 16.
struct pq_act_unit {
    uint32_t q[8];
    float d;
    int s;
    int s_lo;
};

PQ_INLINE int pq_dot8(const uint32_t (&w)[8], const uint32_t (&a)[8], int c) {
#pragma unroll
    for (int i = 0; i < 8; ++i) c = pq_dp4a((int)w[i], (int)a[i], c);
    return c;
}
PQ_INLINE int pq_dot4(const uint32_t (&w)[8], const uint32_t (&a)[8], int first) {
    int c = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) c = pq_dp4a((int)w[first + i], (int)a[first + i], c);
    return c;
}

// ggml's get_scale_min_k4 for scale index j in 0..7 on the 12 packed bytes held as words s0, s1, s2 (shifts
// and selects only: a run-time index into a register array would put it in scratch memory).
PQ_INLINE void pq_k4_scale_min(int j, uint32_t s0, uint32_t s1, uint32_t s2, int& sc, int& m) {
    const unsigned int sh = 8u * (unsigned int)(j & 3);
    const int b0 = (int)((s0 >> sh) & 0xFFu), b1 = (int)((s1 >> sh) & 0xFFu), b2 = (int)((s2 >> sh) & 0xFFu);
    if (j < 4) {
        sc = b0 & 63;
        m = b1 & 63;
    } else {
        sc = (b2 & 0xF) | ((b0 >> 6) << 4);
        m = (b2 >> 4) | ((b1 >> 6) << 4);
    }
}

// Q3_K's 6-bit scale j (0..15) from its 12 packed bytes held as words s0, s1, s2, minus 32 (ggml's
// dequantize_row_q3_K unpacking: low nibble from byte j % 8 (high nibble for j >= 8), two high bits from byte
// 8 + j % 4 at bit 2 * (j / 4)).
PQ_INLINE int pq_q3_K_scale(int j, uint32_t s0, uint32_t s1, uint32_t s2) {
    const unsigned int sh = 8u * (unsigned int)(j & 3);
    const uint32_t lo = (((j & 4) ? s1 : s0) >> sh >> (4 * (j >> 3))) & 0xFu;
    const uint32_t hi = (s2 >> sh >> (2 * (j >> 2))) & 3u;
    return (int)(lo | (hi << 4)) - 32;
}

// ---------------------------------------------------------------------------------------------- legacy types

// Q4_0: y = d * (q - 8). Unit = block. Low nibbles are elements 0..15, high nibbles 16..31.
struct vdq_q4_0 {
    static constexpr int QK = 32, TS = 18;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        uint32_t v[4];
        pq_ld_words_a2<4>(b + 2, v);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            w.q[i] = v[i] & 0x0F0F0F0Fu;
            w.q[4 + i] = (v[i] >> 4) & 0x0F0F0F0Fu;
        }
        w.d = pq_fp16_to_fp32(pq_ld_u16(b));
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = pq_dot8(w.q, a.q, 0) - 8 * a.s;
        return a.d * (w.d * (float)i);
    }
};

// Q4_1: y = d * q + m.
struct vdq_q4_1 {
    static constexpr int QK = 32, TS = 20;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d, m;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        uint32_t v[4];
        pq_ld_words_a4<4>(b + 4, v);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            w.q[i] = v[i] & 0x0F0F0F0Fu;
            w.q[4 + i] = (v[i] >> 4) & 0x0F0F0F0Fu;
        }
        const uint32_t dm = pq_ld_u32(b);
        w.d = pq_fp16_to_fp32(dm & 0xFFFFu);
        w.m = pq_fp16_to_fp32(dm >> 16);
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = pq_dot8(w.q, a.q, 0);
        return a.d * (w.d * (float)i + w.m * (float)a.s);
    }
};

// Spread bits 0..3 of h into bit 4 of each byte.
PQ_INLINE uint32_t pq_qh_to_bit4(uint32_t h) {
    return ((h << 4) & 0x10u) | ((h << 11) & 0x1000u) | ((h << 18) & 0x100000u) | ((h << 25) & 0x10000000u);
}

// Q5_0: y = d * (q - 16), q = low nibble | qh bit << 4; element j < 16 uses qh bit j, 16 + j bit j + 16.
struct vdq_q5_0 {
    static constexpr int QK = 32, TS = 22;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        uint32_t v[5];  // qh, then qs[0..15]: contiguous from offset 2
        pq_ld_words_a2<5>(b + 2, v);
        const uint32_t qh = v[0];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            w.q[i] = (v[1 + i] & 0x0F0F0F0Fu) | pq_qh_to_bit4(qh >> (4 * i));
            w.q[4 + i] = ((v[1 + i] >> 4) & 0x0F0F0F0Fu) | pq_qh_to_bit4(qh >> (16 + 4 * i));
        }
        w.d = pq_fp16_to_fp32(pq_ld_u16(b));
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = pq_dot8(w.q, a.q, 0) - 16 * a.s;
        return a.d * (w.d * (float)i);
    }
};

// Q5_1: y = d * q + m.
struct vdq_q5_1 {
    static constexpr int QK = 32, TS = 24;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d, m;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        uint32_t v[5];  // qh, qs[0..15]
        pq_ld_words_a4<5>(b + 4, v);
        const uint32_t qh = v[0];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            w.q[i] = (v[1 + i] & 0x0F0F0F0Fu) | pq_qh_to_bit4(qh >> (4 * i));
            w.q[4 + i] = ((v[1 + i] >> 4) & 0x0F0F0F0Fu) | pq_qh_to_bit4(qh >> (16 + 4 * i));
        }
        const uint32_t dm = pq_ld_u32(b);
        w.d = pq_fp16_to_fp32(dm & 0xFFFFu);
        w.m = pq_fp16_to_fp32(dm >> 16);
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = pq_dot8(w.q, a.q, 0);
        return a.d * (w.d * (float)i + w.m * (float)a.s);
    }
};

// Q8_0: y = d * q.
struct vdq_q8_0 {
    static constexpr int QK = 32, TS = 34;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        pq_ld_words_a2<8>(b + 2, w.q);
        w.d = pq_fp16_to_fp32(pq_ld_u16(b));
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        return a.d * (w.d * (float)pq_dot8(w.q, a.q, 0));
    }
};

// Q8_1 as weights: y = d * q (s is not needed).
struct vdq_q8_1 {
    static constexpr int QK = 32, TS = 36;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        pq_ld_words_a4<8>(b + 4, w.q);
        w.d = pq_fp16_to_fp32(pq_ld_u16(b));
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        return a.d * (w.d * (float)pq_dot8(w.q, a.q, 0));
    }
};

// ---------------------------------------------------------------------------------------------- k-quants
// A 256-element super-block holds 8 units; unit s of block b is row unit 8b + s.

// Q2_K: y = d * (sc & 15) * q - dmin * (sc >> 4), q 2-bit; 16-element sub-blocks. Unit s = 4h + j holds
// elements 128h + 32j + l: bits 2j..2j+1 of qs[32h + l], scale bytes 2s (l < 16) and 2s + 1.
struct vdq_q2_K {
    static constexpr int QK = 256, TS = 84;
    static constexpr bool HALF_SUMS = true;
    struct unit {
        uint32_t q[8];
        int sc0, sc1, m0, m1;
        float d, dmin;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7, h = s >> 2, j = s & 3;
        uint32_t v[8];
        pq_ld_words_a4<8>(b + 16 + 32 * h, v);
#pragma unroll
        for (int i = 0; i < 8; ++i) w.q[i] = (v[i] >> (2 * j)) & 0x03030303u;
        const uint32_t sc = pq_ld_u16(b + 2 * s);
        w.sc0 = sc & 0xF;
        w.m0 = (sc >> 4) & 0xF;
        w.sc1 = (sc >> 8) & 0xF;
        w.m1 = (sc >> 12) & 0xF;
        const uint32_t dd = pq_ld_u32(b + 80);
        w.d = pq_fp16_to_fp32(dd & 0xFFFFu);
        w.dmin = pq_fp16_to_fp32(dd >> 16);
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = w.sc0 * pq_dot4(w.q, a.q, 0) + w.sc1 * pq_dot4(w.q, a.q, 4);
        const int m = w.m0 * a.s_lo + w.m1 * (a.s - a.s_lo);
        return a.d * (w.d * (float)i - w.dmin * (float)m);
    }
};

// Q3_K: y = d * (scale - 32) * (q - (hmask bit ? 0 : 4)). Unit s = 4h + j: bits 2j.. of qs[32h + l], hmask bit
// 4h + j of hmask[l], scales 2s and 2s + 1.
struct vdq_q3_K {
    static constexpr int QK = 256, TS = 110;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        int sc0, sc1;
        float d;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7, h = s >> 2, j = s & 3;
        uint32_t v[8], hm[8];
        pq_ld_words_a2<8>(b + 32 + 32 * h, v);
        pq_ld_words_a2<8>(b, hm);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t q = ((v[i] >> (2 * j)) & 0x03030303u) | (((hm[i] >> (4 * h + j)) & 0x01010101u) << 2);
            w.q[i] = pq_sub_bytes(q, 0x04040404u);
        }
        uint32_t sc[3];
        pq_ld_words_a2<3>(b + 96, sc);
        w.sc0 = pq_q3_K_scale(2 * s, sc[0], sc[1], sc[2]);
        w.sc1 = pq_q3_K_scale(2 * s + 1, sc[0], sc[1], sc[2]);
        w.d = pq_fp16_to_fp32(pq_ld_u16(b + 108));
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = w.sc0 * pq_dot4(w.q, a.q, 0) + w.sc1 * pq_dot4(w.q, a.q, 4);
        return a.d * (w.d * (float)i);
    }
};

// Q4_K: y = d * sc * q - dmin * m, 32-element sub-blocks. Unit s: nibble s % 2 of qs[32 * (s / 2) + l].
struct vdq_q4_K {
    static constexpr int QK = 256, TS = 144;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        int sc, m;
        float d, dmin;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7;
        uint32_t v[8];
        pq_ld_words_a16<8>(b + 16 + 32 * (s >> 1), v);
#pragma unroll
        for (int i = 0; i < 8; ++i) w.q[i] = (v[i] >> (4 * (s & 1))) & 0x0F0F0F0Fu;
        uint32_t sc[3];
        pq_ld_words_a4<3>(b + 4, sc);
        pq_k4_scale_min(s, sc[0], sc[1], sc[2], w.sc, w.m);
        const uint32_t dd = pq_ld_u32(b);
        w.d = pq_fp16_to_fp32(dd & 0xFFFFu);
        w.dmin = pq_fp16_to_fp32(dd >> 16);
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = w.sc * pq_dot8(w.q, a.q, 0);
        return a.d * (w.d * (float)i - w.dmin * (float)(w.m * a.s));
    }
};

// Q5_K: Q4_K plus a fifth bit: bit s of qh[l].
struct vdq_q5_K {
    static constexpr int QK = 256, TS = 176;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        int sc, m;
        float d, dmin;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7;
        uint32_t v[8], h[8];
        pq_ld_words_a16<8>(b + 48 + 32 * (s >> 1), v);
        pq_ld_words_a16<8>(b + 16, h);
#pragma unroll
        for (int i = 0; i < 8; ++i) w.q[i] = ((v[i] >> (4 * (s & 1))) & 0x0F0F0F0Fu) | (((h[i] >> s) & 0x01010101u) << 4);
        uint32_t sc[3];
        pq_ld_words_a4<3>(b + 4, sc);
        pq_k4_scale_min(s, sc[0], sc[1], sc[2], w.sc, w.m);
        const uint32_t dd = pq_ld_u32(b);
        w.d = pq_fp16_to_fp32(dd & 0xFFFFu);
        w.dmin = pq_fp16_to_fp32(dd >> 16);
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = w.sc * pq_dot8(w.q, a.q, 0);
        return a.d * (w.d * (float)i - w.dmin * (float)(w.m * a.s));
    }
};

// Q6_K: y = d * sc * (q - 32), q = 4 bits of ql | 2 bits of qh << 4. Unit s = 4n + t holds elements
// 128n + 32t + l: nibble t / 2 of ql[64n + 32(t % 2) + l], bits 2t.. of qh[32n + l], scales 8n + 2t (+1).
struct vdq_q6_K {
    static constexpr int QK = 256, TS = 210;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        int sc0, sc1;
        float d;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7, n = s >> 2, t = s & 3;
        uint32_t l[8], h[8];
        pq_ld_words_a2<8>(b + 64 * n + 32 * (t & 1), l);
        pq_ld_words_a2<8>(b + 128 + 32 * n, h);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t q = ((l[i] >> (4 * (t >> 1))) & 0x0F0F0F0Fu) | (((h[i] >> (2 * t)) & 0x03030303u) << 4);
            w.q[i] = pq_sub_bytes(q, 0x20202020u);
        }
        const uint32_t sc = pq_ld_u16(b + 192 + 8 * n + 2 * t);
        w.sc0 = (int)(int8_t)(sc & 0xFFu);
        w.sc1 = (int)(int8_t)(sc >> 8);
        w.d = pq_fp16_to_fp32(pq_ld_u16(b + 208));
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        const int i = w.sc0 * pq_dot4(w.q, a.q, 0) + w.sc1 * pq_dot4(w.q, a.q, 4);
        return a.d * (w.d * (float)i);
    }
};

// Q8_K as weights: y = d * q, d a float32.
struct vdq_q8_K {
    static constexpr int QK = 256, TS = 292;
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d;
    };
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        pq_ld_words_a4<8>(b + 4 + 32 * (u & 7), w.q);
        w.d = pq_bits_f32(pq_ld_u32(b));
    }
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        return a.d * (w.d * (float)pq_dot8(w.q, a.q, 0));
    }
};

// ---------------------------------------------------------------------------------------------- table types

// The 32 table values of a Q4_0-style nibble block (4 words: low nibbles are elements 0..15, high 16..31) in the
// interleaved order x0, x16, x1, x17, ... of their activations (the table types' mat-vec reads the interleaved
// activation layout: launch_matmul.ACT_INTERLEAVED_TYPES).
PQ_INLINE void pq_lut16_unit(const uint32_t (&v)[4], uint32_t t0, uint32_t t1, uint32_t t2, uint32_t t3,
                             uint32_t (&q)[8]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) pq_lut16_nibbles_il(v[i], t0, t1, t2, t3, q[2 * i], q[2 * i + 1]);
}

// A unit of 32 int8 table values times one float scale (the table types): its dot product.
struct pq_vdq_table {
    static constexpr bool HALF_SUMS = false;
    struct unit {
        uint32_t q[8];
        float d;
    };
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        return a.d * (w.d * (float)pq_dot8(w.q, a.q, 0));
    }
};

// IQ4_NL: y = d * kvalues_iq4nl[q]. Unit = block.
struct vdq_iq4_nl : pq_vdq_table {
    static constexpr int QK = 32, TS = 18;
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        uint32_t v[4];
        pq_ld_words_a2<4>(b + 2, v);
        pq_lut16_unit(v, PQ_KVALUES_IQ4NL, w.q);
        w.d = pq_fp16_to_fp32(pq_ld_u16(b));
    }
};

// IQ4_XS: unit s of a super-block is group s, y = d * (ls - 32) * kvalues_iq4nl[q] with the 6-bit ls of
// dequantize_row_iq4_xs. |dot| <= 32 * 127 * 127, exact.
struct vdq_iq4_xs : pq_vdq_table {
    static constexpr int QK = 256, TS = 136;
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7;
        uint32_t v[4];
        pq_ld_words_a4<4>(b + 8 + 16 * s, v);
        pq_lut16_unit(v, PQ_KVALUES_IQ4NL, w.q);
        const uint32_t dh = pq_ld_u32(b);  // d, scales_h
        const uint32_t sl = pq_ld_u8(b + 4 + (s >> 1));
        const int ls = (int)(((sl >> (4 * (s & 1))) & 0xFu) | (((dh >> (16 + 2 * s)) & 3u) << 4));
        w.d = pq_fp16_to_fp32(dh & 0xFFFFu) * (float)(ls - 32);
    }
};

// MXFP4: y = kvalues_mxfp4[q] * 2^(e - 128) (doubled e2m1 values, halved E8M0 scale). Unit = block of 17 bytes.
struct vdq_mxfp4 : pq_vdq_table {
    static constexpr int QK = 32, TS = 17;
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * u;
        uint32_t v[4];
        pq_ld_words_a1<4>(b + 1, v);
        pq_lut16_unit(v, PQ_KVALUES_MXFP4, w.q);
        w.d = pq_e8m0_half_f32(pq_ld_u8(b));
    }
};

// ---------------------------------------------------------------------------------------------- ternary types
// Trits xi in {0, 1, 2} for (xi - 1) * d (pyquant/cpu/ternary.py spells out both layouts): sum((xi - 1) * a) is
// dot(xi, a) - sum(a), with the activation unit's exact sum of quants a.s. |dot| <= 32 * 2 * 127, exact. The
// unit is the table types' (32 int8 values and one float scale); only the dot product differs.
struct pq_vdq_ternary : pq_vdq_table {
    static PQ_INLINE float dot(const unit& w, const pq_act_unit& a) {
        return a.d * (w.d * (float)(pq_dot8(w.q, a.q, 0) - a.s));
    }
};

// TQ1_0 (54-byte blocks, 2-byte aligned): unit s < 5 is trit s of qs[0..31]; unit 5 trits 0 and 1 of qs[32..47],
// unit 6 trits 2 and 3; unit 7 trit 4 of qs[32..47], then qh[0..3] with trits 0..3, one word each. Every lane
// loads all three ranges and selects (no divergence between lanes decoding different units).
struct vdq_tq1_0 : pq_vdq_ternary {
    static constexpr int QK = 256, TS = 54;
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7;
        uint32_t full[8], lo[4];
        pq_ld_words_a2<8>(b, full);
        pq_ld_words_a2<4>(b + 32, lo);
        const uint32_t qh = pq_ld_u32_a2(b + 48);
        const uint32_t p_lo = s < 5 ? pq_pow3(s) : s == 5 ? 1u : s == 6 ? 9u : 81u;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            w.q[i] = pq_tq1_trits(s < 5 ? full[i] : lo[i], p_lo);
            const uint32_t p_hi = s < 5 ? p_lo : s == 5 ? 3u : s == 6 ? 27u : pq_pow3(i);
            w.q[4 + i] = pq_tq1_trits(s < 5 ? full[4 + i] : s == 7 ? qh : lo[i], p_hi);
        }
        w.d = pq_fp16_to_fp32(pq_ld_u16(b + 52));
    }
};

// TQ2_0 (66-byte blocks, 2-byte aligned): unit s is bits 2 (s % 4), +1 of qs[32 (s / 4) .. 32 (s / 4) + 31].
struct vdq_tq2_0 : pq_vdq_ternary {
    static constexpr int QK = 256, TS = 66;
    static PQ_INLINE void decode(const uint8_t* row, int u, unit& w) {
        const uint8_t* b = row + TS * (u >> 3);
        const int s = u & 7;
        uint32_t v[8];
        pq_ld_words_a2<8>(b + 32 * (s >> 2), v);
#pragma unroll
        for (int i = 0; i < 8; ++i) w.q[i] = (v[i] >> (2 * (s & 3))) & 0x03030303u;
        w.d = pq_fp16_to_fp32(pq_ld_u16(b + 64));
    }
};
