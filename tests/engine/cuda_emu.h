#pragma once
// Just enough of CUDA to run the kernels of kernels/*_kernels.cuh on the host, without a GPU or
// the CUDA toolkit (tests/engine/test_cuda_emulated.cpp): every thread of a block is a fiber
// (ucontext) on the calling thread, switched cooperatively at __syncthreads, __syncwarp and the
// warp shuffles, which are implemented with block / warp barriers (threads run in order between
// barriers, in reverse order in every other block); blocks run one after another,
// so a `__shared__` variable can be a function-local static. Deterministic, slow (fine for small
// shapes), and strict where it matters: a barrier that not every live thread of the block (or warp)
// reaches deadlocks, which the scheduler reports as a failure instead of hanging.
//
// Float semantics: the host's (compile with FMA contraction off, as GCC's ISO mode does), with
// fmaf a true fused multiply-add; halves convert with engine/quant's f16 routines (nearest even).
// The kernels' `#pragma unroll` means nothing to g++: tests/CMakeLists.txt compiles the includer with
// -Wno-unknown-pragmas (and -fno-strict-aliasing: the kernels view memory through other types).
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "engine/quant.h"

#define PONDER_CUDA_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

struct __half {
  std::uint16_t bits;
};
struct alignas(4) __half2 {
  __half x, y;
};
inline float __half2float(__half h) { return ponder::f16_to_f32(h.bits); }
inline __half __float2half_rn(float f) { return {ponder::f32_to_f16(f)}; }
inline __half __ushort_as_half(unsigned short s) { return {s}; }
inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }
template <class T>
T __ldg(const T* p) {
  return *p;
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }

namespace ponder::emu {

struct Barrier {
  int expected = 0, arrived = 0;
  unsigned generation = 0;
};

struct Fiber {
  ucontext_t ctx;
  std::unique_ptr<char[]> stack;
  dim3 tid;
  bool done = false;
};

struct Block {
  dim3 block_dim, grid_dim, block_idx;
  std::vector<Fiber> fibers;
  Barrier block_barrier;
  std::vector<Barrier> warp_barriers;
  std::vector<std::uint64_t> shuffle;  // one slot per thread
  std::vector<float4> smem;            // dynamic shared memory, 16-byte aligned
  ucontext_t scheduler;
  int current = 0;
  long switches = 0;
};

inline Block*& block() {
  static Block* b = nullptr;
  return b;
}

inline void yield() {
  Block& b = *block();
  ++b.switches;
  swapcontext(&b.fibers[b.current].ctx, &b.scheduler);
}

inline void wait(Barrier& bar) {
  const unsigned gen = bar.generation;
  if (++bar.arrived == bar.expected) {
    bar.arrived = 0;
    ++bar.generation;
    return;
  }
  while (bar.generation == gen) yield();
}

// A thread that has returned leaves its barriers (as an exited CUDA thread does).
inline void leave(Barrier& bar) {
  --bar.expected;
  if (bar.arrived > 0 && bar.arrived == bar.expected) {
    bar.arrived = 0;
    ++bar.generation;
  }
}

inline int linear_tid() {
  const dim3& t = block()->fibers[block()->current].tid;
  const dim3& d = block()->block_dim;
  return static_cast<int>(t.x + d.x * (t.y + d.y * t.z));
}

inline void* current_kernel_call = nullptr;  // what the fibers' entry point calls

// A fiber about to run entry() on its own stack. Apart from launch() because getcontext returns
// twice (locals of its caller could be clobbered).
[[gnu::noinline]] inline void make_fiber(Fiber& f, std::size_t stack_bytes, void (*entry)()) {
  f.stack.reset(new char[stack_bytes]);
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack.get();
  f.ctx.uc_stack.ss_size = stack_bytes;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, entry, 0);
}

template <class Call>
void trampoline() {
  (*static_cast<Call*>(current_kernel_call))();
  Block& b = *block();
  const int t = linear_tid();
  b.fibers[b.current].done = true;
  leave(b.block_barrier);
  leave(b.warp_barriers[t / 32]);
  swapcontext(&b.fibers[b.current].ctx, &b.scheduler);
}

/// Runs kernel(args...) over the grid, blocks in order, threads as fibers. Throws when a block
/// deadlocks (a barrier some live thread never reaches).
template <class Kernel, class... Args>
void launch(dim3 grid, dim3 block_dim, std::size_t smem_bytes, Kernel kernel, Args... args) {
  const int n = static_cast<int>(block_dim.x * block_dim.y * block_dim.z);
  constexpr std::size_t kStack = 256 * 1024;
  auto call = [&] { kernel(args...); };
  using Call = decltype(call);
  const std::unique_ptr<Call> payload(new Call(call));
  current_kernel_call = payload.get();
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        Block b;
        b.block_dim = block_dim, b.grid_dim = grid, b.block_idx = dim3(bx, by, bz);
        b.fibers.resize(n);
        b.block_barrier.expected = n;
        b.warp_barriers.resize((n + 31) / 32);
        for (int w = 0; w < (n + 31) / 32; ++w) b.warp_barriers[w].expected = std::min(32, n - 32 * w);
        b.shuffle.assign(n, 0);
        b.smem.assign((smem_bytes + 15) / 16, float4{NAN, NAN, NAN, NAN});  // garbage until written
        block() = &b;
        // Between barriers a fiber runs alone until it waits: a read of shared memory that some
        // other thread writes before a barrier that is missing sees stale data only if the
        // writer runs later. Odd blocks run their threads in reverse order, so both directions show.
        const bool reverse = (bx + grid.x * (by + grid.y * bz)) % 2 == 1;
        for (int t = 0; t < n; ++t) {
          Fiber& f = b.fibers[t];
          f.tid = dim3(t % block_dim.x, t / block_dim.x % block_dim.y, t / (block_dim.x * block_dim.y));
          make_fiber(f, kStack, &trampoline<Call>);
        }
        // Round robin until every fiber is done. A kernel passes a few barriers per tile, each
        // taking at most one round; a block still running after this many rounds is deadlocked.
        for (long rounds = 0;; ++rounds) {
          bool any = false;
          for (int i = 0; i < n; ++i) {
            const int t = reverse ? n - 1 - i : i;
            if (b.fibers[t].done) continue;
            any = true;
            b.current = t;
            swapcontext(&b.scheduler, &b.fibers[t].ctx);
          }
          if (!any) break;
          if (rounds > 2000000) throw std::runtime_error("emulated block deadlocked");
        }
        block() = nullptr;
      }
}

}  // namespace ponder::emu

// The CUDA built-ins, per fiber.
#define threadIdx (::ponder::emu::block()->fibers[::ponder::emu::block()->current].tid)
#define blockIdx (::ponder::emu::block()->block_idx)
#define blockDim (::ponder::emu::block()->block_dim)
#define gridDim (::ponder::emu::block()->grid_dim)

inline void __syncthreads() { ponder::emu::wait(ponder::emu::block()->block_barrier); }
inline void __syncwarp(unsigned = 0xffffffffu) {
  ponder::emu::wait(ponder::emu::block()->warp_barriers[ponder::emu::linear_tid() / 32]);
}
namespace ponder::emu {
// A warp shuffle: every lane publishes v, then reads the value of lane src(its own lane).
template <class T, class Src>
T shuffle(T v, Src src) {
  static_assert(sizeof(T) <= 8, "one slot");
  auto& b = *block();
  const int t = linear_tid();
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  b.shuffle[t] = bits;
  __syncwarp();
  T r;
  std::memcpy(&r, &b.shuffle[(t & ~31) | src(t & 31)], sizeof(T));
  __syncwarp();
  return r;
}
}  // namespace ponder::emu
template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask) {
  return ponder::emu::shuffle(v, [lane_mask](int lane) { return lane ^ lane_mask; });
}
template <class T>
T __shfl_up_sync(unsigned, T v, unsigned delta) {  // lanes below delta keep their own value
  const int d = static_cast<int>(delta);
  return ponder::emu::shuffle(v, [d](int lane) { return lane >= d ? lane - d : lane; });
}
// Fibers switch only at barriers, so an atomic is a plain read-modify-write.
template <class T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
inline float __expf(float x) { return std::exp(x); }
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
using std::isfinite;
inline int min(int a, int b) { return a < b ? a : b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
template <class T>
T __ldcs(const T* p) {
  return *p;
}
inline float* dynamic_smem() { return reinterpret_cast<float*>(ponder::emu::block()->smem.data()); }
