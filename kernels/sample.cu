// Sampling on the device: the next token is chosen where the logits are, and only its id crosses
// to the host (4 bytes instead of 600 KB per token), which also lets the sampler sit inside the
// captured decode graph.
//
// One block of 1024 threads over the row (152K logits = 600 KB, resident in L2 after the logits
// product wrote them). Every truncation keeps the tokens whose logit is at least a threshold, so
// they compose by taking the largest threshold, found as an order-preserving 32-bit key:
//   floor  : weight w = exp((l - max) / T) ≥ e^-30          (the CPU sampler's floor)
//   top-k  : the k-th largest key, by radix selection on counts (4 passes of 8 bits)
//   top-p  : the largest key whose tokens at or above it hold ≥ top_p of the mass of the tokens
//            top-k kept (radix selection on sums of weights)
//   min-p  : w ≥ min_p, i.e. l ≥ max + T ln(min_p) (applied last, as the CPU sampler does)
// then the draw: target = u × (mass kept), found by a block-wide prefix sum in id order.
// Passes over the row: max, (4 top-k), mass, (4 top-p), draw.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "kernels/check.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

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
struct BestOp {
  __device__ Best operator()(const Best& a, const Best& b) const {
    if (a.value > b.value) return a;
    if (b.value > a.value) return b;
    return a.id <= b.id ? a : b;
  }
};

struct MaxOp {
  __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};

struct Shared {
  union {
    cub::BlockReduce<Best, kThreads>::TempStorage best;
    cub::BlockReduce<float, kThreads>::TempStorage sum;
    cub::BlockReduce<int, kThreads>::TempStorage max_id;
    cub::BlockScan<float, kThreads>::TempStorage scan;
  } cub;
  float hist[256];
  Best best;
  float mass;
  std::uint32_t prefix;
  int chosen;
};

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
  const float total = cub::BlockReduce<float, kThreads>(s.cub.sum).Sum(sum);
  if (threadIdx.x == 0) s.mass = total;
  __syncthreads();
  const float r = s.mass;
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs args) {
  __shared__ Shared s;
  const SampleParams a = *args.d_params;
  const float* logits = args.logits;
  const int n = static_cast<int>(args.n_valid);

  // The largest finite logit (ties to the lowest id): the greedy choice and the softmax's shift.
  Best mine{-INFINITY, 0x7fffffff};
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float l = logits[i];
    if (isfinite(l) && l > mine.value) mine = Best{l, i};  // ids rise: the first maximum stays
  }
  const Best best = cub::BlockReduce<Best, kThreads>(s.cub.best).Reduce(mine, BestOp());
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
  cub::BlockScan<float, kThreads>(s.cub.scan).ExclusiveSum(local, before, total);
  const double u = static_cast<double>(splitmix64(a.seed ^ splitmix64(a.step)) >> 11) * 0x1.0p-53;
  const float target = static_cast<float>(u * total);
  // The owner of the target: the last thread holding kept mass whose range starts at or before it.
  // (Not "before <= target < before + local": the scan's sums are rounded in another order than
  // before + local, so that test can hold for two threads or for none.) The thread of the first
  // kept token has before = 0 exactly, so an owner exists whenever anything is kept.
  const int claim = local > 0 && target >= before ? static_cast<int>(threadIdx.x) : -1;
  __syncthreads();  // the scan's temporary storage is reused by the reduction
  const int owner = cub::BlockReduce<int, kThreads>(s.cub.max_id).Reduce(claim, MaxOp());
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

}  // namespace

std::size_t sample_workspace(std::uint32_t) { return 0; }

bool sample(const SampleArgs& a, void*, cudaStream_t stream, std::string* error) {
  if (a.n_valid == 0 || !a.logits || !a.out || !a.d_params) {
    if (error) *error = "sample: no logits";
    return false;
  }
  sample_kernel<<<1, kThreads, 0, stream>>>(a);
  return check(cudaGetLastError(), "sample_kernel launch", error);
}

}  // namespace ponder::cuda
