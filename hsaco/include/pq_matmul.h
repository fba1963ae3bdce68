// GENERATED from pyquant/device/launch_matmul.py (python -m pyquant.device.launch_matmul): do not edit;
// a test compares. Mat-vec geometry per architecture family, indexed by ncols - 1.
#pragma once

#define PQ_MMV_MAX_NCOLS 8
#define PQ_QUANTIZE_THREADS 256
#define PQ_CONVERT_THREADS 256
// threads that must fit on one CU/SM at once: 4 waves per SIMD on AMD (registers <= 1/4 of the file),
// at most 128 registers a thread on the H100 (sm_90, where the tuning was measured); other NVIDIA
// targets allow 168 (12 resident warps): their ptxas needs a few more for Q6_K/Q8_0 without spilling
#if defined(PQ_NVIDIA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ != 900
#define PQ_MATMUL_RESIDENT (12 * PQ_WARP_SIZE)
#else
#define PQ_MATMUL_RESIDENT (16 * PQ_WARP_SIZE)
#endif

// A build may predefine every PQ_MMVQ_* / PQ_MMVF_RPW_* / PQ_MMVF_NWARPS_* macro itself (benchmarks/matmul.py's tuning variants)
#ifndef PQ_MMVQ_NWARPS_1
#if defined(PQ_NVIDIA)  // nvidia
#define PQ_MATMUL_FAMILY "nvidia"
static_assert(PQ_WARP_SIZE == 32, "pq_matmul.h: nvidia has 32-lane waves");
#define PQ_MMVQ_NWARPS_1 1
#define PQ_MMVQ_NWARPS_2 1
#define PQ_MMVQ_NWARPS_3 1
#define PQ_MMVQ_NWARPS_4 1
#define PQ_MMVQ_NWARPS_5 1
#define PQ_MMVQ_NWARPS_6 1
#define PQ_MMVQ_NWARPS_7 1
#define PQ_MMVQ_NWARPS_8 1
#define PQ_MMVQ_RPW_1 2
#define PQ_MMVQ_RPW_2 2
#define PQ_MMVQ_RPW_3 2
#define PQ_MMVQ_RPW_4 2
#define PQ_MMVQ_RPW_5 2
#define PQ_MMVQ_RPW_6 2
#define PQ_MMVQ_RPW_7 2
#define PQ_MMVQ_RPW_8 2
#define PQ_MMVQ_UPL_1 4
#define PQ_MMVQ_UPL_2 2
#define PQ_MMVQ_UPL_3 1
#define PQ_MMVQ_UPL_4 1
#define PQ_MMVQ_UPL_5 1
#define PQ_MMVQ_UPL_6 1
#define PQ_MMVQ_UPL_7 1
#define PQ_MMVQ_UPL_8 1
#define PQ_MMVQ_UPL_MAX_q8_K 2
#define PQ_MMVF_RPW_1 1
#define PQ_MMVF_RPW_2 1
#define PQ_MMVF_RPW_3 2
#define PQ_MMVF_RPW_4 4
#define PQ_MMVF_RPW_5 2
#define PQ_MMVF_RPW_6 2
#define PQ_MMVF_RPW_7 2
#define PQ_MMVF_RPW_8 2
#define PQ_MMVF_NWARPS_1 8
#define PQ_MMVF_NWARPS_2 8
#define PQ_MMVF_NWARPS_3 4
#define PQ_MMVF_NWARPS_4 4
#define PQ_MMVF_NWARPS_5 4
#define PQ_MMVF_NWARPS_6 4
#define PQ_MMVF_NWARPS_7 4
#define PQ_MMVF_NWARPS_8 4
#define PQ_MMV_COL_FENCE 0
#define PQ_MMVQ_EARLY_FETCH 0xfe
#define PQ_MMVQ_EARLY_q4_0 0xff
#define PQ_MMVQ_EARLY_q4_1 0xff
#define PQ_MMVQ_EARLY_q5_0 0xff
#define PQ_MMVQ_EARLY_q5_1 0xff
#define PQ_MMVQ_EARLY_q8_0 0xfc
#define PQ_MMVQ_EARLY_q3_K 0x0
#define PQ_MMVQ_EARLY_q4_K 0x0
#define PQ_MMVQ_EARLY_iq4_nl 0xff
#define PQ_MMVQ_EARLY_iq4_xs 0xff
#define PQ_MMVQ_EARLY_mxfp4 0xff
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ == 900
#define PQ_MMVQ_N1_RESIDENT_q4_0 PQ_MATMUL_RESIDENT
#define PQ_MMVQ_N1_UPL_q4_0 2
#define PQ_MMVQ_N1_ROTATE_q4_0 1
#define PQ_MMVQ_N1_RESIDENT_q4_1 PQ_MATMUL_RESIDENT
#define PQ_MMVQ_N1_UPL_q4_1 2
#define PQ_MMVQ_N1_ROTATE_q4_1 1
#define PQ_MMVQ_N1_RESIDENT_q5_0 PQ_MATMUL_RESIDENT
#define PQ_MMVQ_N1_UPL_q5_0 2
#define PQ_MMVQ_N1_ROTATE_q5_0 1
#define PQ_MMVQ_N1_RESIDENT_q5_1 PQ_MATMUL_RESIDENT
#define PQ_MMVQ_N1_UPL_q5_1 2
#define PQ_MMVQ_N1_ROTATE_q5_1 1
#define PQ_MMVQ_N1_RESIDENT_q8_0 PQ_MATMUL_RESIDENT
#define PQ_MMVQ_N1_UPL_q8_0 2
#define PQ_MMVQ_N1_ROTATE_q8_0 1
#define PQ_MMVQ_N1_RESIDENT_q5_K PQ_MATMUL_RESIDENT
#define PQ_MMVQ_N1_UPL_q5_K 4
#define PQ_MMVQ_N1_ROTATE_q5_K 1
#endif
#elif defined(__GFX9__)  // cdna
#define PQ_MATMUL_FAMILY "cdna"
static_assert(PQ_WARP_SIZE == 64, "pq_matmul.h: cdna has 64-lane waves");
#define PQ_MMVQ_NWARPS_1 2
#define PQ_MMVQ_NWARPS_2 2
#define PQ_MMVQ_NWARPS_3 2
#define PQ_MMVQ_NWARPS_4 2
#define PQ_MMVQ_NWARPS_5 2
#define PQ_MMVQ_NWARPS_6 2
#define PQ_MMVQ_NWARPS_7 2
#define PQ_MMVQ_NWARPS_8 2
#define PQ_MMVQ_RPW_1 2
#define PQ_MMVQ_RPW_2 2
#define PQ_MMVQ_RPW_3 2
#define PQ_MMVQ_RPW_4 2
#define PQ_MMVQ_RPW_5 1
#define PQ_MMVQ_RPW_6 1
#define PQ_MMVQ_RPW_7 1
#define PQ_MMVQ_RPW_8 1
#define PQ_MMVQ_UPL_1 1
#define PQ_MMVQ_UPL_2 1
#define PQ_MMVQ_UPL_3 1
#define PQ_MMVQ_UPL_4 1
#define PQ_MMVQ_UPL_5 1
#define PQ_MMVQ_UPL_6 1
#define PQ_MMVQ_UPL_7 1
#define PQ_MMVQ_UPL_8 1
#define PQ_MMVQ_RPW_MAX_q3_K 1
#define PQ_MMVQ_RPW_MAX_q8_0 1
#define PQ_MMVQ_RPW_MAX_q8_1 1
#define PQ_MMVQ_RPW_MAX_q8_K 1
#define PQ_MMVF_RPW_1 1
#define PQ_MMVF_RPW_2 2
#define PQ_MMVF_RPW_3 2
#define PQ_MMVF_RPW_4 2
#define PQ_MMVF_RPW_5 1
#define PQ_MMVF_RPW_6 1
#define PQ_MMVF_RPW_7 1
#define PQ_MMVF_RPW_8 1
#define PQ_MMVF_NWARPS_1 4
#define PQ_MMVF_NWARPS_2 4
#define PQ_MMVF_NWARPS_3 4
#define PQ_MMVF_NWARPS_4 4
#define PQ_MMVF_NWARPS_5 4
#define PQ_MMVF_NWARPS_6 4
#define PQ_MMVF_NWARPS_7 4
#define PQ_MMVF_NWARPS_8 4
#define PQ_MMV_COL_FENCE 2
#define PQ_MMVQ_EARLY_FETCH 0x0
#elif defined(__GFX10__) && !defined(__gfx1030__) && !defined(__gfx1031__) && !defined(__gfx1032__) && !defined(__gfx1033__) && !defined(__gfx1034__) && !defined(__gfx1035__) && !defined(__gfx1036__)  // rdna1
#define PQ_MATMUL_FAMILY "rdna1"
static_assert(PQ_WARP_SIZE == 32, "pq_matmul.h: rdna1 has 32-lane waves");
#define PQ_MMVQ_NWARPS_1 4
#define PQ_MMVQ_NWARPS_2 4
#define PQ_MMVQ_NWARPS_3 4
#define PQ_MMVQ_NWARPS_4 4
#define PQ_MMVQ_NWARPS_5 4
#define PQ_MMVQ_NWARPS_6 4
#define PQ_MMVQ_NWARPS_7 4
#define PQ_MMVQ_NWARPS_8 4
#define PQ_MMVQ_RPW_1 2
#define PQ_MMVQ_RPW_2 2
#define PQ_MMVQ_RPW_3 2
#define PQ_MMVQ_RPW_4 2
#define PQ_MMVQ_RPW_5 2
#define PQ_MMVQ_RPW_6 2
#define PQ_MMVQ_RPW_7 2
#define PQ_MMVQ_RPW_8 2
#define PQ_MMVQ_UPL_1 1
#define PQ_MMVQ_UPL_2 1
#define PQ_MMVQ_UPL_3 1
#define PQ_MMVQ_UPL_4 1
#define PQ_MMVQ_UPL_5 1
#define PQ_MMVQ_UPL_6 1
#define PQ_MMVQ_UPL_7 1
#define PQ_MMVQ_UPL_8 1
#define PQ_MMVF_RPW_1 2
#define PQ_MMVF_RPW_2 2
#define PQ_MMVF_RPW_3 2
#define PQ_MMVF_RPW_4 2
#define PQ_MMVF_RPW_5 2
#define PQ_MMVF_RPW_6 2
#define PQ_MMVF_RPW_7 2
#define PQ_MMVF_RPW_8 2
#define PQ_MMVF_NWARPS_1 4
#define PQ_MMVF_NWARPS_2 4
#define PQ_MMVF_NWARPS_3 4
#define PQ_MMVF_NWARPS_4 4
#define PQ_MMVF_NWARPS_5 4
#define PQ_MMVF_NWARPS_6 4
#define PQ_MMVF_NWARPS_7 4
#define PQ_MMVF_NWARPS_8 4
#define PQ_MMV_COL_FENCE 0
#define PQ_MMVQ_EARLY_FETCH 0x0
#elif defined(__GFX10__)  // rdna2
#define PQ_MATMUL_FAMILY "rdna2"
static_assert(PQ_WARP_SIZE == 32, "pq_matmul.h: rdna2 has 32-lane waves");
#define PQ_MMVQ_NWARPS_1 4
#define PQ_MMVQ_NWARPS_2 4
#define PQ_MMVQ_NWARPS_3 4
#define PQ_MMVQ_NWARPS_4 4
#define PQ_MMVQ_NWARPS_5 4
#define PQ_MMVQ_NWARPS_6 4
#define PQ_MMVQ_NWARPS_7 4
#define PQ_MMVQ_NWARPS_8 4
#define PQ_MMVQ_RPW_1 2
#define PQ_MMVQ_RPW_2 2
#define PQ_MMVQ_RPW_3 2
#define PQ_MMVQ_RPW_4 2
#define PQ_MMVQ_RPW_5 2
#define PQ_MMVQ_RPW_6 2
#define PQ_MMVQ_RPW_7 2
#define PQ_MMVQ_RPW_8 2
#define PQ_MMVQ_UPL_1 1
#define PQ_MMVQ_UPL_2 1
#define PQ_MMVQ_UPL_3 1
#define PQ_MMVQ_UPL_4 1
#define PQ_MMVQ_UPL_5 1
#define PQ_MMVQ_UPL_6 1
#define PQ_MMVQ_UPL_7 1
#define PQ_MMVQ_UPL_8 1
#define PQ_MMVF_RPW_1 2
#define PQ_MMVF_RPW_2 2
#define PQ_MMVF_RPW_3 2
#define PQ_MMVF_RPW_4 2
#define PQ_MMVF_RPW_5 2
#define PQ_MMVF_RPW_6 2
#define PQ_MMVF_RPW_7 2
#define PQ_MMVF_RPW_8 2
#define PQ_MMVF_NWARPS_1 4
#define PQ_MMVF_NWARPS_2 4
#define PQ_MMVF_NWARPS_3 4
#define PQ_MMVF_NWARPS_4 4
#define PQ_MMVF_NWARPS_5 4
#define PQ_MMVF_NWARPS_6 4
#define PQ_MMVF_NWARPS_7 4
#define PQ_MMVF_NWARPS_8 4
#define PQ_MMV_COL_FENCE 0
#define PQ_MMVQ_EARLY_FETCH 0x0
#elif defined(__GFX11__)  // rdna3
#define PQ_MATMUL_FAMILY "rdna3"
static_assert(PQ_WARP_SIZE == 32, "pq_matmul.h: rdna3 has 32-lane waves");
#define PQ_MMVQ_NWARPS_1 4
#define PQ_MMVQ_NWARPS_2 4
#define PQ_MMVQ_NWARPS_3 4
#define PQ_MMVQ_NWARPS_4 4
#define PQ_MMVQ_NWARPS_5 4
#define PQ_MMVQ_NWARPS_6 4
#define PQ_MMVQ_NWARPS_7 4
#define PQ_MMVQ_NWARPS_8 4
#define PQ_MMVQ_RPW_1 2
#define PQ_MMVQ_RPW_2 2
#define PQ_MMVQ_RPW_3 2
#define PQ_MMVQ_RPW_4 2
#define PQ_MMVQ_RPW_5 2
#define PQ_MMVQ_RPW_6 2
#define PQ_MMVQ_RPW_7 2
#define PQ_MMVQ_RPW_8 2
#define PQ_MMVQ_UPL_1 2
#define PQ_MMVQ_UPL_2 1
#define PQ_MMVQ_UPL_3 1
#define PQ_MMVQ_UPL_4 1
#define PQ_MMVQ_UPL_5 1
#define PQ_MMVQ_UPL_6 1
#define PQ_MMVQ_UPL_7 1
#define PQ_MMVQ_UPL_8 1
#define PQ_MMVF_RPW_1 2
#define PQ_MMVF_RPW_2 2
#define PQ_MMVF_RPW_3 2
#define PQ_MMVF_RPW_4 2
#define PQ_MMVF_RPW_5 2
#define PQ_MMVF_RPW_6 2
#define PQ_MMVF_RPW_7 2
#define PQ_MMVF_RPW_8 2
#define PQ_MMVF_NWARPS_1 4
#define PQ_MMVF_NWARPS_2 4
#define PQ_MMVF_NWARPS_3 4
#define PQ_MMVF_NWARPS_4 4
#define PQ_MMVF_NWARPS_5 4
#define PQ_MMVF_NWARPS_6 4
#define PQ_MMVF_NWARPS_7 4
#define PQ_MMVF_NWARPS_8 4
#define PQ_MMV_COL_FENCE 0
#define PQ_MMVQ_EARLY_FETCH 0x0
#elif defined(__GFX12__)  // rdna4
#define PQ_MATMUL_FAMILY "rdna4"
static_assert(PQ_WARP_SIZE == 32, "pq_matmul.h: rdna4 has 32-lane waves");
#define PQ_MMVQ_NWARPS_1 4
#define PQ_MMVQ_NWARPS_2 4
#define PQ_MMVQ_NWARPS_3 4
#define PQ_MMVQ_NWARPS_4 4
#define PQ_MMVQ_NWARPS_5 4
#define PQ_MMVQ_NWARPS_6 4
#define PQ_MMVQ_NWARPS_7 4
#define PQ_MMVQ_NWARPS_8 4
#define PQ_MMVQ_RPW_1 2
#define PQ_MMVQ_RPW_2 2
#define PQ_MMVQ_RPW_3 2
#define PQ_MMVQ_RPW_4 2
#define PQ_MMVQ_RPW_5 2
#define PQ_MMVQ_RPW_6 2
#define PQ_MMVQ_RPW_7 2
#define PQ_MMVQ_RPW_8 2
#define PQ_MMVQ_UPL_1 2
#define PQ_MMVQ_UPL_2 1
#define PQ_MMVQ_UPL_3 1
#define PQ_MMVQ_UPL_4 1
#define PQ_MMVQ_UPL_5 1
#define PQ_MMVQ_UPL_6 1
#define PQ_MMVQ_UPL_7 1
#define PQ_MMVQ_UPL_8 1
#define PQ_MMVF_RPW_1 2
#define PQ_MMVF_RPW_2 2
#define PQ_MMVF_RPW_3 2
#define PQ_MMVF_RPW_4 2
#define PQ_MMVF_RPW_5 2
#define PQ_MMVF_RPW_6 2
#define PQ_MMVF_RPW_7 2
#define PQ_MMVF_RPW_8 2
#define PQ_MMVF_NWARPS_1 4
#define PQ_MMVF_NWARPS_2 4
#define PQ_MMVF_NWARPS_3 4
#define PQ_MMVF_NWARPS_4 4
#define PQ_MMVF_NWARPS_5 4
#define PQ_MMVF_NWARPS_6 4
#define PQ_MMVF_NWARPS_7 4
#define PQ_MMVF_NWARPS_8 4
#define PQ_MMV_COL_FENCE 0
#define PQ_MMVQ_EARLY_FETCH 0x0
#else
#error "pq_matmul.h: no tuning for this architecture family"
#endif
#endif  // PQ_MMVQ_NWARPS_1

// rows per warp and units per lane of TYPE at NC columns: the family's values, capped per type where the
// family says so; early fetch bits of TYPE: the family's, unless the family gives the type its own
#ifndef PQ_MMVQ_EARLY_FETCH
#define PQ_MMVQ_EARLY_FETCH 0
#endif
#ifndef PQ_MMVQ_N1_RESIDENT
#define PQ_MMVQ_N1_RESIDENT PQ_MATMUL_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL
#define PQ_MMVQ_N1_UPL PQ_MMVQ_UPL_1
#endif
#ifndef PQ_MMVQ_N1_ROTATE
#define PQ_MMVQ_N1_ROTATE 0
#endif
#ifndef PQ_MMVQ_RPW_MAX_q4_0
#define PQ_MMVQ_RPW_MAX_q4_0 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q4_0
#define PQ_MMVQ_UPL_MAX_q4_0 8
#endif
#ifndef PQ_MMVQ_EARLY_q4_0
#define PQ_MMVQ_EARLY_q4_0 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q4_0
#define PQ_MMVQ_N1_RESIDENT_q4_0 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q4_0
#define PQ_MMVQ_N1_UPL_q4_0 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q4_0
#define PQ_MMVQ_N1_ROTATE_q4_0 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q4_1
#define PQ_MMVQ_RPW_MAX_q4_1 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q4_1
#define PQ_MMVQ_UPL_MAX_q4_1 8
#endif
#ifndef PQ_MMVQ_EARLY_q4_1
#define PQ_MMVQ_EARLY_q4_1 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q4_1
#define PQ_MMVQ_N1_RESIDENT_q4_1 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q4_1
#define PQ_MMVQ_N1_UPL_q4_1 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q4_1
#define PQ_MMVQ_N1_ROTATE_q4_1 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q5_0
#define PQ_MMVQ_RPW_MAX_q5_0 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q5_0
#define PQ_MMVQ_UPL_MAX_q5_0 8
#endif
#ifndef PQ_MMVQ_EARLY_q5_0
#define PQ_MMVQ_EARLY_q5_0 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q5_0
#define PQ_MMVQ_N1_RESIDENT_q5_0 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q5_0
#define PQ_MMVQ_N1_UPL_q5_0 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q5_0
#define PQ_MMVQ_N1_ROTATE_q5_0 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q5_1
#define PQ_MMVQ_RPW_MAX_q5_1 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q5_1
#define PQ_MMVQ_UPL_MAX_q5_1 8
#endif
#ifndef PQ_MMVQ_EARLY_q5_1
#define PQ_MMVQ_EARLY_q5_1 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q5_1
#define PQ_MMVQ_N1_RESIDENT_q5_1 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q5_1
#define PQ_MMVQ_N1_UPL_q5_1 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q5_1
#define PQ_MMVQ_N1_ROTATE_q5_1 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q8_0
#define PQ_MMVQ_RPW_MAX_q8_0 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q8_0
#define PQ_MMVQ_UPL_MAX_q8_0 8
#endif
#ifndef PQ_MMVQ_EARLY_q8_0
#define PQ_MMVQ_EARLY_q8_0 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q8_0
#define PQ_MMVQ_N1_RESIDENT_q8_0 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q8_0
#define PQ_MMVQ_N1_UPL_q8_0 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q8_0
#define PQ_MMVQ_N1_ROTATE_q8_0 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q8_1
#define PQ_MMVQ_RPW_MAX_q8_1 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q8_1
#define PQ_MMVQ_UPL_MAX_q8_1 8
#endif
#ifndef PQ_MMVQ_EARLY_q8_1
#define PQ_MMVQ_EARLY_q8_1 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q8_1
#define PQ_MMVQ_N1_RESIDENT_q8_1 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q8_1
#define PQ_MMVQ_N1_UPL_q8_1 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q8_1
#define PQ_MMVQ_N1_ROTATE_q8_1 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q2_K
#define PQ_MMVQ_RPW_MAX_q2_K 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q2_K
#define PQ_MMVQ_UPL_MAX_q2_K 8
#endif
#ifndef PQ_MMVQ_EARLY_q2_K
#define PQ_MMVQ_EARLY_q2_K PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q2_K
#define PQ_MMVQ_N1_RESIDENT_q2_K PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q2_K
#define PQ_MMVQ_N1_UPL_q2_K PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q2_K
#define PQ_MMVQ_N1_ROTATE_q2_K PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q3_K
#define PQ_MMVQ_RPW_MAX_q3_K 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q3_K
#define PQ_MMVQ_UPL_MAX_q3_K 8
#endif
#ifndef PQ_MMVQ_EARLY_q3_K
#define PQ_MMVQ_EARLY_q3_K PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q3_K
#define PQ_MMVQ_N1_RESIDENT_q3_K PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q3_K
#define PQ_MMVQ_N1_UPL_q3_K PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q3_K
#define PQ_MMVQ_N1_ROTATE_q3_K PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q4_K
#define PQ_MMVQ_RPW_MAX_q4_K 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q4_K
#define PQ_MMVQ_UPL_MAX_q4_K 8
#endif
#ifndef PQ_MMVQ_EARLY_q4_K
#define PQ_MMVQ_EARLY_q4_K PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q4_K
#define PQ_MMVQ_N1_RESIDENT_q4_K PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q4_K
#define PQ_MMVQ_N1_UPL_q4_K PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q4_K
#define PQ_MMVQ_N1_ROTATE_q4_K PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q5_K
#define PQ_MMVQ_RPW_MAX_q5_K 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q5_K
#define PQ_MMVQ_UPL_MAX_q5_K 8
#endif
#ifndef PQ_MMVQ_EARLY_q5_K
#define PQ_MMVQ_EARLY_q5_K PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q5_K
#define PQ_MMVQ_N1_RESIDENT_q5_K PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q5_K
#define PQ_MMVQ_N1_UPL_q5_K PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q5_K
#define PQ_MMVQ_N1_ROTATE_q5_K PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q6_K
#define PQ_MMVQ_RPW_MAX_q6_K 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q6_K
#define PQ_MMVQ_UPL_MAX_q6_K 8
#endif
#ifndef PQ_MMVQ_EARLY_q6_K
#define PQ_MMVQ_EARLY_q6_K PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q6_K
#define PQ_MMVQ_N1_RESIDENT_q6_K PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q6_K
#define PQ_MMVQ_N1_UPL_q6_K PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q6_K
#define PQ_MMVQ_N1_ROTATE_q6_K PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_q8_K
#define PQ_MMVQ_RPW_MAX_q8_K 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_q8_K
#define PQ_MMVQ_UPL_MAX_q8_K 8
#endif
#ifndef PQ_MMVQ_EARLY_q8_K
#define PQ_MMVQ_EARLY_q8_K PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_q8_K
#define PQ_MMVQ_N1_RESIDENT_q8_K PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_q8_K
#define PQ_MMVQ_N1_UPL_q8_K PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_q8_K
#define PQ_MMVQ_N1_ROTATE_q8_K PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_iq4_nl
#define PQ_MMVQ_RPW_MAX_iq4_nl 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_iq4_nl
#define PQ_MMVQ_UPL_MAX_iq4_nl 8
#endif
#ifndef PQ_MMVQ_EARLY_iq4_nl
#define PQ_MMVQ_EARLY_iq4_nl PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_iq4_nl
#define PQ_MMVQ_N1_RESIDENT_iq4_nl PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_iq4_nl
#define PQ_MMVQ_N1_UPL_iq4_nl PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_iq4_nl
#define PQ_MMVQ_N1_ROTATE_iq4_nl PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_iq4_xs
#define PQ_MMVQ_RPW_MAX_iq4_xs 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_iq4_xs
#define PQ_MMVQ_UPL_MAX_iq4_xs 8
#endif
#ifndef PQ_MMVQ_EARLY_iq4_xs
#define PQ_MMVQ_EARLY_iq4_xs PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_iq4_xs
#define PQ_MMVQ_N1_RESIDENT_iq4_xs PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_iq4_xs
#define PQ_MMVQ_N1_UPL_iq4_xs PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_iq4_xs
#define PQ_MMVQ_N1_ROTATE_iq4_xs PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_mxfp4
#define PQ_MMVQ_RPW_MAX_mxfp4 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_mxfp4
#define PQ_MMVQ_UPL_MAX_mxfp4 8
#endif
#ifndef PQ_MMVQ_EARLY_mxfp4
#define PQ_MMVQ_EARLY_mxfp4 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_mxfp4
#define PQ_MMVQ_N1_RESIDENT_mxfp4 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_mxfp4
#define PQ_MMVQ_N1_UPL_mxfp4 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_mxfp4
#define PQ_MMVQ_N1_ROTATE_mxfp4 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_tq1_0
#define PQ_MMVQ_RPW_MAX_tq1_0 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_tq1_0
#define PQ_MMVQ_UPL_MAX_tq1_0 8
#endif
#ifndef PQ_MMVQ_EARLY_tq1_0
#define PQ_MMVQ_EARLY_tq1_0 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_tq1_0
#define PQ_MMVQ_N1_RESIDENT_tq1_0 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_tq1_0
#define PQ_MMVQ_N1_UPL_tq1_0 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_tq1_0
#define PQ_MMVQ_N1_ROTATE_tq1_0 PQ_MMVQ_N1_ROTATE
#endif
#ifndef PQ_MMVQ_RPW_MAX_tq2_0
#define PQ_MMVQ_RPW_MAX_tq2_0 8
#endif
#ifndef PQ_MMVQ_UPL_MAX_tq2_0
#define PQ_MMVQ_UPL_MAX_tq2_0 8
#endif
#ifndef PQ_MMVQ_EARLY_tq2_0
#define PQ_MMVQ_EARLY_tq2_0 PQ_MMVQ_EARLY_FETCH
#endif
#ifndef PQ_MMVQ_N1_RESIDENT_tq2_0
#define PQ_MMVQ_N1_RESIDENT_tq2_0 PQ_MMVQ_N1_RESIDENT
#endif
#ifndef PQ_MMVQ_N1_UPL_tq2_0
#define PQ_MMVQ_N1_UPL_tq2_0 PQ_MMVQ_N1_UPL
#endif
#ifndef PQ_MMVQ_N1_ROTATE_tq2_0
#define PQ_MMVQ_N1_ROTATE_tq2_0 PQ_MMVQ_N1_ROTATE
#endif
#define PQ_MMVQ_EARLY(TYPE, NC) (((PQ_MMVQ_EARLY_##TYPE) >> ((NC) - 1)) & 1)
#define PQ_MMVQ_RPW(TYPE, NC) \
    (PQ_MMVQ_RPW_##NC < PQ_MMVQ_RPW_MAX_##TYPE ? PQ_MMVQ_RPW_##NC : PQ_MMVQ_RPW_MAX_##TYPE)
#define PQ_MMVQ_UPL_NC(TYPE, NC) ((NC) == 1 ? (PQ_MMVQ_N1_UPL_##TYPE) : PQ_MMVQ_UPL_##NC)
#define PQ_MMVQ_UPL(TYPE, NC) \
    (PQ_MMVQ_UPL_NC(TYPE, NC) < PQ_MMVQ_UPL_MAX_##TYPE ? PQ_MMVQ_UPL_NC(TYPE, NC) : PQ_MMVQ_UPL_MAX_##TYPE)
// threads resident per SM / CU that the kernel of TYPE at NC columns is compiled for, and its rotation
#define PQ_MMVQ_RESIDENT(TYPE, NC) ((NC) == 1 ? (PQ_MMVQ_N1_RESIDENT_##TYPE) : PQ_MATMUL_RESIDENT)
#define PQ_MMVQ_ROTATE(TYPE, NC) ((NC) == 1 ? (PQ_MMVQ_N1_ROTATE_##TYPE) : 0)
