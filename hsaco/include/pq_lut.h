// pq_lut.h: 16-entry byte tables (IQ4_NL/IQ4_XS's kvalues_iq4nl, MXFP4's e2m1 values), MXFP4's E8M0 scale and
// TQ1_0's base-3 bytes.
//
// Included at the end of pq_port.h (and of tests/simt/pq_port_simt.h), which define PQ_INLINE, pq_bits_f32 and
// one byte permute:
//   PQ_LUT_PRMT:  pq_prmt(x, y, s), CUDA's __byte_perm: byte n of the result is byte s[4n+2:4n] (3 bits) of the
//                 eight bytes y:x (x's are 0..3);
//   PQ_LUT_VPERM: pq_vperm(s0, s1, sel), AMD's v_perm_b32: byte n of the result is byte sel[8n+7:8n] (0..7 here)
//                 of the eight bytes s0:s1 (s1's are 0..3).
// PQ_LUT_EMULATE adds host versions of both (pq_emulated_prmt, pq_emulated_vperm) for the tests, which run the
// NVIDIA algorithm with 32-lane warps and the AMD one with 64-lane waves.
#pragma once

#if defined(PQ_LUT_EMULATE)
inline uint32_t pq_emulated_prmt(uint32_t x, uint32_t y, uint32_t s) {
    const uint64_t b = ((uint64_t)y << 32) | x;
    uint32_t r = 0;
    for (int n = 0; n < 4; ++n) r |= (uint32_t)((b >> (8 * ((s >> (4 * n)) & 7u))) & 0xFFu) << (8 * n);
    return r;
}
inline uint32_t pq_emulated_vperm(uint32_t s0, uint32_t s1, uint32_t sel) {
    const uint64_t b = ((uint64_t)s0 << 32) | s1;
    uint32_t r = 0;
    for (int n = 0; n < 4; ++n) {
        const uint32_t c = (sel >> (8 * n)) & 0xFFu;  // 8..255 select constants on the GPU; never asked for here
        r |= (c < 8u ? (uint32_t)((b >> (8 * c)) & 0xFFu) : 0xEEu) << (8 * n);
    }
    return r;
}
#endif

// The table t (16 bytes as the little-endian words t0..t3) at the four indices held in the bytes of idx (each
// 0..15): byte i of the result is t[byte i of idx]. A permute picks from 8 bytes by a 3-bit index, so the low
// and the high half of the table are each looked up with bits 0..2, and bit 3 picks between the two results.
PQ_INLINE uint32_t pq_lut16(uint32_t idx, uint32_t t0, uint32_t t1, uint32_t t2, uint32_t t3) {
#if defined(PQ_LUT_VPERM)
    const uint32_t lo3 = idx & 0x07070707u;
    const uint32_t a = pq_vperm(t1, t0, lo3), b = pq_vperm(t3, t2, lo3);
    return pq_vperm(b, a, 0x03020100u | ((idx & 0x08080808u) >> 1));
#elif defined(PQ_LUT_PRMT)
    // PRMT takes its four selectors as the nibbles of the low half-word: gather the four indices there first
    const uint32_t s = pq_prmt(idx | (idx >> 4), 0u, 0x0020u);
    const uint32_t a = pq_prmt(t0, t1, s), b = pq_prmt(t2, t3, s);
    return pq_prmt(a, b, 0x3210u | ((s & 0x8888u) >> 1));
#else
#error "pq_lut.h: define PQ_LUT_PRMT or PQ_LUT_VPERM"
#endif
}

// The table entries of the eight 4-bit indices packed in v (a Q4_0-style word: the low nibbles of its four bytes
// are elements 0..3 of a 32-element group, the high nibbles elements 16..19), in the order PRMT yields them with
// the nibbles as selectors as they lie: e0 = the entries of lo0, hi0, lo1, hi1 (bytes 0 and 1 of v, low nibble
// first), e1 those of lo2, hi2, lo3, hi3 (6 permutes; the activations are laid out to match: the interleaved
// layout of pyquant/device/launch_matmul.py). With v_perm the indices are interleaved first (2 permutes).
PQ_INLINE void pq_lut16_nibbles_il(uint32_t v, uint32_t t0, uint32_t t1, uint32_t t2, uint32_t t3, uint32_t& e0,
                                   uint32_t& e1) {
#if defined(PQ_LUT_PRMT)
    const uint32_t half = 0x32103210u | ((v & 0x88888888u) >> 1);
    const uint32_t s1 = v >> 16;
    e0 = pq_prmt(pq_prmt(t0, t1, v), pq_prmt(t2, t3, v), half);
    e1 = pq_prmt(pq_prmt(t0, t1, s1), pq_prmt(t2, t3, s1), half >> 16);
#else
    const uint32_t lo = v & 0x0F0F0F0Fu, hi = (v >> 4) & 0x0F0F0F0Fu;
    e0 = pq_lut16(pq_vperm(hi, lo, 0x05010400u), t0, t1, t2, t3);
    e1 = pq_lut16(pq_vperm(hi, lo, 0x07030602u), t0, t1, t2, t3);
#endif
}

// ggml's kvalues_iq4nl {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113} as int8 bytes
#define PQ_KVALUES_IQ4NL 0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u
// ggml's kvalues_mxfp4 {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}: e2m1 values times 2
#define PQ_KVALUES_MXFP4 0x03020100u, 0x0C080604u, 0xFDFEFF00u, 0xF4F8FAFCu

// ggml's GGML_E8M0_TO_FP32_HALF: the E8M0 scale 2^(e - 127) halved (MXFP4's table holds doubled values), as
// float32 bits; e = 0 and 1 give the subnormals 2^-128 and 2^-127.
PQ_INLINE float pq_e8m0_half_f32(uint32_t e) {
    return pq_bits_f32(e < 2u ? 0x00200000u << e : (e - 1u) << 23);
}

// 3^n for n = 0..4
PQ_INLINE uint32_t pq_pow3(int n) {
    return n == 0 ? 1u : n == 1 ? 3u : n == 2 ? 9u : n == 3 ? 27u : 81u;
}
// For each byte b of w, the trit ((uint8_t)(b * p) * 3) >> 8 (0, 1 or 2) as a byte, p <= 81: two bytes at a time
// in 16-bit lanes (b * p <= 20655 and q * 3 <= 765 stay inside a lane).
PQ_INLINE uint32_t pq_tq1_trits(uint32_t w, uint32_t p) {
    const uint32_t ev = ((w & 0x00FF00FFu) * p) & 0x00FF00FFu, od = (((w >> 8) & 0x00FF00FFu) * p) & 0x00FF00FFu;
    return (((ev * 3u) >> 8) & 0x00030003u) | ((((od * 3u) >> 8) & 0x00030003u) << 8);
}
