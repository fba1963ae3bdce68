// pyquant.hip: the one translation unit of pyquant's GPU code. hsaco/build.py compiles it once per
// architecture (HSACO with clang -x hip, cubin/PTX with nvcc), so every kernel of an architecture lives in one
// code object. A new kernel file is added here with one #include line.
#include "pq_port.h"
#include "pq_blocks.h"
#include "pq_launch.h"

#include "kernels/dequantize.hip"
#include "kernels/quantize_q8_1.hip"
#include "kernels/mmvq.hip"
