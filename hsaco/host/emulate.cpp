// Host emulation of the dequantize kernels, for tests on machines without a GPU (tests/test_codeobjects.py).
//
// Compiled with a C++ compiler and -DPQ_HOST, the kernel sources run sequentially, one (block, thread) at a
// time, with the launch geometry of pyquant/device/launch.py. This checks what the static checks cannot: the
// index arithmetic, that every output is written, bit-exactness against ggml, and (PQ_CHECK_ALIGN) that every
// vector or word access has the alignment the kernels claim. Kernels with barriers or shuffles cannot run here.
#define PQ_HOST 1
#include "pq_port.h"
#include "pq_blocks.h"
#include "pq_launch.h"

#include "../kernels/dequantize.hip"

thread_local pq_uint3 pq_host_thread_idx, pq_host_block_idx, pq_host_block_dim, pq_host_grid_dim;
int pq_host_faults = 0;

__attribute__((noinline)) void pq_host_check_align(const void* p, int align) {
    pq_host_faults += ((uintptr_t)p % (uintptr_t)align) != 0;
}

typedef void (*pq_dequantize_kernel)(const void*, void*, int64_t, int64_t, int64_t);

// Runs kernel over grid x block; returns the number of faults (0: clean).
extern "C" int pq_host_launch_dequantize(pq_dequantize_kernel kernel, const unsigned int* grid,
                                         const unsigned int* block, const void* x, void* y, int64_t nrows,
                                         int64_t n, int64_t x_row_stride_bytes) {
    pq_host_faults = 0;
    pq_host_grid_dim = {grid[0], grid[1], grid[2]};
    pq_host_block_dim = {block[0], block[1], block[2]};
    for (unsigned int bz = 0; bz < grid[2]; ++bz)
        for (unsigned int by = 0; by < grid[1]; ++by)
            for (unsigned int bx = 0; bx < grid[0]; ++bx) {
                pq_host_block_idx = {bx, by, bz};
                for (unsigned int tz = 0; tz < block[2]; ++tz)
                    for (unsigned int ty = 0; ty < block[1]; ++ty)
                        for (unsigned int tx = 0; tx < block[0]; ++tx) {
                            pq_host_thread_idx = {tx, ty, tz};
                            kernel(x, y, nrows, n, x_row_stride_bytes);
                        }
            }
    return pq_host_faults;
}
