#pragma once
// The device code of kernels/sample.cu (the method is described at the top of that file), in a
// header so that tests/engine/test_cuda_emulated.cpp can also run it on the host under
// tests/engine/cuda_emu.h. One block of kSampleThreads threads.
#if !defined(PONDER_CUDA_EMU)  // else the includer has included tests/engine/cuda_emu.h
#include <cuda_runtime.h>
#endif

#include <cmath>
#include <cstdint>

#include "kernels/sample_args.h"

namespace ponder::cuda::sample_detail {
// Under the host emulator the kernel gets another link name (see attention_kernels.cuh).
#ifdef PONDER_CUDA_EMU
inline namespace emulated {
#endif

constexpr int kThreads = 1024;

// Order-preserving map of floats to unsigned keys: a < b ⇔ key(a) < key(b).
__device__ __forceinline__ std::uint32_t key_of(float f) {
  const std::uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Best {
  float value;
  int id;
};
constexpr int kWarps = kThreads / 32;

struct Shared {
  float part[kWarps];  // per-warp partials of the block reductions and the scan
  int part_id[kWarps];
  float hist[256];
  Best best;
  float mass;
  std::uint32_t prefix;
  int chosen;
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (a.value > b.value) return a;
  if (b.value > a.value) return b;
  return a.id <= b.id ? a : b;
}

// Block-wide reductions and scan over kThreads threads: warp shuffles, then the warps' partials
// through shared memory. Every thread gets the result; each ends with a barrier, so the partials
// can be reused at once.
__device__ Best block_best(Best v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const Best other{__shfl_xor_sync(0xffffffffu, v.value, o), __shfl_xor_sync(0xffffffffu, v.id, o)};
    v = better(v, other);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) s.part[warp] = v.value, s.part_id[warp] = v.id;
  __syncthreads();
  Best r{s.part[0], s.part_id[0]};
  for (int w = 1; w < kWarps; ++w) r = better(r, Best{s.part[w], s.part_id[w]});
  __syncthreads();
  return r;
}

__device__ float block_sum(float v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) s.part[threadIdx.x / 32] = v;
  __syncthreads();
  float r = 0;
  for (int w = 0; w < kWarps; ++w) r += s.part[w];  // the same order in every thread
  __syncthreads();
  return r;
}

__device__ int block_max(int v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const int other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  if (threadIdx.x % 32 == 0) s.part_id[threadIdx.x / 32] = v;
  __syncthreads();
  int r = s.part_id[0];
  for (int w = 1; w < kWarps; ++w) r = s.part_id[w] > r ? s.part_id[w] : r;
  __syncthreads();
  return r;
}

// Exclusive prefix sum of v over the threads in order, and the total. The first thread that holds
// anything gets exactly 0 (sums of zeros are exact), which the draw relies on.
__device__ void block_exclusive_sum(float v, float* before, float* total, Shared& s) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float inclusive = v;
  for (int d = 1; d < 32; d <<= 1) {
    const float up = __shfl_up_sync(0xffffffffu, inclusive, d);
    if (lane >= d) inclusive += up;
  }
  float exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
  if (lane == 0) exclusive = 0;
  if (lane == 31) s.part[warp] = inclusive;
  __syncthreads();
  float offset = 0, sum = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w == warp) offset = sum;
    sum += s.part[w];
  }
  __syncthreads();
  *before = offset + exclusive;
  *total = sum;
}


// Among the tokens whose key is ≥ lo, the largest threshold t such that the tokens with key ≥ t
// hold at least `target` (a count when `by_mass` is false, else a sum of weights).
// Radix selection from the top byte down; every thread returns the same value.
template <bool by_mass>
__device__ std::uint32_t select_threshold(const float* logits, int n, std::uint32_t lo, float max_logit,
                                          float inv_t, float target, Shared& s) {
  std::uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) s.hist[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kThreads) {
      const float l = logits[i];
      if (!isfinite(l)) continue;
      const std::uint32_t k = key_of(l);
      if (k < lo || (k & mask) != prefix) continue;
      atomicAdd(&s.hist[(k >> shift) & 255u], by_mass ? __expf((l - max_logit) * inv_t) : 1.0f);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float cum = 0;
      int chosen = -1, lowest = -1;
      for (int b = 255; b >= 0; --b) {
        if (s.hist[b] <= 0) continue;
        lowest = b;
        if (cum + s.hist[b] >= target) {
          chosen = b;
          break;
        }
        cum += s.hist[b];
      }
      if (chosen < 0) chosen = lowest < 0 ? 0 : lowest;  // rounding left the target unreached
      else target -= cum;
      s.prefix = prefix | (std::uint32_t(chosen) << shift);
      s.mass = target;
    }
    __syncthreads();
    prefix = s.prefix;
    target = s.mass;
    mask |= 255u << shift;
    __syncthreads();
  }
  return prefix > lo ? prefix : lo;
}

// The sum of weights of the tokens with key ≥ lo.
__device__ float kept_mass(const float* logits, int n, std::uint32_t lo, float max_logit, float inv_t, Shared& s) {
  float sum = 0;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float l = logits[i];
    if (isfinite(l) && key_of(l) >= lo) sum += __expf((l - max_logit) * inv_t);
  }
  return block_sum(sum, s);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs args) {
  __shared__ Shared s_;
  Shared& s = s_;
  const SampleParams a = *args.d_params;
  const float* logits = args.logits;
  const int n = static_cast<int>(args.n_valid);

  // The largest finite logit (ties to the lowest id): the greedy choice and the softmax's shift.
  Best mine{-INFINITY, 0x7fffffff};
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float l = logits[i];
    if (isfinite(l) && l > mine.value) mine = Best{l, i};  // ids rise: the first maximum stays
  }
  const Best best = block_best(mine, s);
  if (threadIdx.x == 0) s.best = best;
  __syncthreads();
  if (s.best.id == 0x7fffffff || a.temperature <= 0) {  // greedy, or no finite logit at all
    if (threadIdx.x == 0) *args.out = s.best.id == 0x7fffffff ? 0 : s.best.id;
    return;
  }
  const float m = s.best.value;
  const float t = a.temperature, inv_t = 1.0f / t;
  __syncthreads();

  // Floor: e^-30 of the most likely token (as the CPU sampler's).
  const std::uint32_t lo = key_of(m - 30.0f * t);
  // Top-k: the k-th largest logit among those above the floor (the others are dropped anyway).
  std::uint32_t keep = lo;
  if (a.top_k > 0 && a.top_k < args.n_valid)
    keep = select_threshold<false>(logits, n, lo, m, inv_t, static_cast<float>(a.top_k), s);
  // Top-p over what top-k kept: the highest threshold holding top_p of that mass.
  if (a.top_p < 1) {
    const float mass = kept_mass(logits, n, keep, m, inv_t, s);
    keep = select_threshold<true>(logits, n, keep, m, inv_t, a.top_p * mass, s);
  }
  // Min-p last (relative to the best token, so it does not depend on what the others cut).
  if (a.min_p > 0) {
    const std::uint32_t min_p_key = key_of(m + t * logf(a.min_p));
    keep = min_p_key > keep ? min_p_key : keep;
  }

  // The draw: u × (mass kept), located by a prefix sum over contiguous ranges of ids.
  const int per = (n + kThreads - 1) / kThreads;
  const int begin = threadIdx.x * per, end = begin + per < n ? begin + per : n;
  float local = 0;
  int last_kept = -1;
  for (int i = begin; i < end; ++i) {
    const float l = logits[i];
    if (isfinite(l) && key_of(l) >= keep) local += __expf((l - m) * inv_t), last_kept = i;
  }
  float before = 0, total = 0;
  block_exclusive_sum(local, &before, &total, s);
  const double u = static_cast<double>(splitmix64(a.seed ^ splitmix64(a.step)) >> 11) * 0x1.0p-53;
  const float target = static_cast<float>(u * total);
  // The owner of the target: the last thread holding kept mass whose range starts at or before it.
  // (Not "before <= target < before + local": the scan's sums are rounded in another order than
  // before + local, so that test can hold for two threads or for none.) The thread of the first
  // kept token has before = 0 exactly, so an owner exists whenever anything is kept.
  const int claim = local > 0 && target >= before ? static_cast<int>(threadIdx.x) : -1;
  const int owner = block_max(claim, s);
  if (threadIdx.x == 0) s.chosen = owner;
  __syncthreads();
  if (s.chosen < 0) {  // nothing kept (cannot happen: the best token always is)
    if (threadIdx.x == 0) *args.out = s.best.id;
    return;
  }
  if (static_cast<int>(threadIdx.x) == s.chosen) {
    float cum = before;
    int pick = last_kept;  // rounding put the target past this range's end: its last kept token
    for (int i = begin; i < end; ++i) {
      const float l = logits[i];
      if (!isfinite(l) || key_of(l) < keep) continue;
      cum += __expf((l - m) * inv_t);
      if (target < cum) {
        pick = i;
        break;
      }
    }
    *args.out = pick;
  }
}

#ifdef PONDER_CUDA_EMU
}  // namespace emulated
#endif
}  // namespace ponder::cuda::sample_detail
