// A small SIMT emulator for the matmul kernels (tests only): each GPU thread of a block is a fiber; barriers
// and shuffles are rendezvous points. Blocks run one after another, so `__shared__` (static) storage is the
// block's own. Deterministic: fibers run round-robin in thread order.
//
//   c++ -std=c++17 -O1 -fPIC -shared -U_FORTIFY_SOURCE -DPQ_WARP_SIZE=32 -I<hsaco/include> -I<this dir> simt.cpp -o libsimt32.so
//
// Exported: the kernels themselves (extern "C", by name) and two launchers, one per argument signature,
// returning 0 or an error code (1 deadlock: threads of a warp or block disagree on barriers or shuffles;
// 2: misaligned accesses, the count in pq_simt_faults()).
#include <setjmp.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "pq_port_simt.h"
#include "pq_blocks.h"

#include "../../hsaco/kernels/quantize_q8_1.hip"
#include "../../hsaco/kernels/mmvq.hip"

pq_uint3 pq_simt_block_idx, pq_simt_block_dim, pq_simt_grid_dim;

namespace {

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

// A fiber starts on its own stack through makecontext/setcontext, then every switch is _setjmp/_longjmp
// (no signal-mask system call per switch, unlike swapcontext: the emulation is switch-bound).
struct Fiber {
    ucontext_t ctx;
    jmp_buf jb;
    bool started = false;
    pq_uint3 tid;
    int linear = 0;
    State state = RUNNABLE;
};

constexpr size_t STACK = 256 * 1024;

struct Block {
    std::vector<Fiber> fibers;
    std::vector<std::vector<char>> stacks;
    std::vector<int> slot;  // shuffle mailboxes, one per thread
    jmp_buf sched;
    int cur = -1;
    void (*body)(void*) = nullptr;
    void* arg = nullptr;
};

Block blk;
long faults = 0;

void trampoline() {
    blk.body(blk.arg);
    blk.fibers[blk.cur].state = DONE;
    _longjmp(blk.sched, 1);
}

void yield_as(State s) {
    Fiber& f = blk.fibers[blk.cur];
    f.state = s;
    if (!_setjmp(f.jb)) _longjmp(blk.sched, 1);
}

void resume(int i) {
    Fiber& f = blk.fibers[i];
    blk.cur = i;
    if (!_setjmp(blk.sched)) {
        if (!f.started) {
            f.started = true;
            setcontext(&f.ctx);
        }
        _longjmp(f.jb, 1);
    }
}

// Runs one block to completion; false on deadlock.
bool run_block(unsigned int nthreads, void (*body)(void*), void* arg) {
    blk.body = body;
    blk.arg = arg;
    blk.fibers.resize(nthreads);
    blk.stacks.resize(nthreads);
    blk.slot.assign(nthreads, 0);
    const unsigned int bx = pq_simt_block_dim.x, by = pq_simt_block_dim.y;
    for (unsigned int i = 0; i < nthreads; ++i) {
        Fiber& f = blk.fibers[i];
        f.linear = (int)i;
        f.tid = {i % bx, (i / bx) % by, i / (bx * by)};
        f.state = RUNNABLE;
        f.started = false;
        if (blk.stacks[i].size() != STACK) blk.stacks[i].resize(STACK);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = blk.stacks[i].data();
        f.ctx.uc_stack.ss_size = STACK;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, trampoline, 0);
    }
    const unsigned int W = PQ_WARP_SIZE;
    const unsigned int nwarps = (nthreads + W - 1) / W;
    for (;;) {
        bool ran = false;
        for (unsigned int i = 0; i < nthreads; ++i) {
            if (blk.fibers[i].state != RUNNABLE) continue;
            resume((int)i);
            ran = true;
        }
        bool all_done = true, released = false;
        for (auto& f : blk.fibers) all_done &= f.state == DONE;
        if (all_done) return true;
        // a warp barrier opens when every live thread of the warp is at it
        for (unsigned int w = 0; w < nwarps; ++w) {
            bool ok = true, any = false;
            for (unsigned int i = w * W; i < nthreads && i < (w + 1) * W; ++i) {
                State s = blk.fibers[i].state;
                if (s == DONE) continue;
                ok &= s == AT_WARP_BARRIER;
                any = true;
            }
            if (ok && any) {
                for (unsigned int i = w * W; i < nthreads && i < (w + 1) * W; ++i)
                    if (blk.fibers[i].state == AT_WARP_BARRIER) blk.fibers[i].state = RUNNABLE;
                released = true;
            }
        }
        // the block barrier opens when every live thread is at it
        bool ok = true;
        for (auto& f : blk.fibers) ok &= f.state == DONE || f.state == AT_BLOCK_BARRIER;
        if (ok) {
            for (auto& f : blk.fibers)
                if (f.state == AT_BLOCK_BARRIER) f.state = RUNNABLE;
            released = true;
        }
        if (!ran && !released) return false;
    }
}

template <class Args>
int launch(const unsigned int* grid, const unsigned int* block, void (*body)(void*), Args* a) {
    faults = 0;
    pq_simt_grid_dim = {grid[0], grid[1], grid[2]};
    pq_simt_block_dim = {block[0], block[1], block[2]};
    const unsigned int nthreads = block[0] * block[1] * block[2];
    for (unsigned int z = 0; z < grid[2]; ++z)
        for (unsigned int y = 0; y < grid[1]; ++y)
            for (unsigned int x = 0; x < grid[0]; ++x) {
                pq_simt_block_idx = {x, y, z};
                if (!run_block(nthreads, body, a)) {
                    fprintf(stderr, "simt: deadlock in block (%u, %u, %u)\n", x, y, z);
                    return 1;
                }
            }
    return faults ? 2 : 0;
}

struct ActArgs {
    void (*k)(const void*, void*, int64_t, int64_t, int64_t, int64_t);
    const void* x;
    void* out;
    int64_t n, k_, stride, kp;
};
void act_body(void* p) {
    ActArgs* a = (ActArgs*)p;
    a->k(a->x, a->out, a->n, a->k_, a->stride, a->kp);
}

struct MmvArgs {
    void (*k)(const void*, const void*, const void*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
    const void *w, *aq, *ads;
    float* dst;
    int64_t m, k_, ws, as, ds;
};
void mmv_body(void* p) {
    MmvArgs* a = (MmvArgs*)p;
    a->k(a->w, a->aq, a->ads, a->dst, a->m, a->k_, a->ws, a->as, a->ds);
}

}  // namespace

const pq_uint3& pq_simt_thread_idx() {
    return blk.fibers[blk.cur].tid;
}

void pq_simt_syncthreads() {
    yield_as(AT_BLOCK_BARRIER);
}

int pq_simt_shfl_xor(int v, int mask) {
    const int me = blk.fibers[blk.cur].linear;
    const int W = PQ_WARP_SIZE;
    blk.slot[me] = v;
    yield_as(AT_WARP_BARRIER);  // every lane has posted its value
    const int partner = (me / W) * W + ((me % W) ^ mask);
    const int r = partner < (int)blk.slot.size() ? blk.slot[partner] : 0;
    yield_as(AT_WARP_BARRIER);  // every lane has read before the next exchange overwrites
    return r;
}

void pq_simt_check_align(const void* p, int align) {
    faults += ((uintptr_t)p % (uintptr_t)align) != 0;
}

extern "C" long pq_simt_faults() {
    return faults;
}
extern "C" int pq_simt_warp_size() {
    return PQ_WARP_SIZE;
}

extern "C" int pq_simt_launch_act(void* kernel, const unsigned int* grid, const unsigned int* block, const void* x,
                                  void* out, int64_t n, int64_t k, int64_t stride, int64_t kp) {
    ActArgs a{(decltype(a.k))kernel, x, out, n, k, stride, kp};
    return launch(grid, block, act_body, &a);
}

extern "C" int pq_simt_launch_mmv(void* kernel, const unsigned int* grid, const unsigned int* block, const void* w,
                                  const void* aq, const void* ads, float* dst, int64_t m, int64_t k, int64_t ws,
                                  int64_t as, int64_t ds) {
    MmvArgs a{(decltype(a.k))kernel, w, aq, ads, dst, m, k, ws, as, ds};
    return launch(grid, block, mmv_body, &a);
}
