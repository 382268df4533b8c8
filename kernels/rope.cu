// The per-token work between the Q/K/V products and attention, fused into one kernel: bias add,
// per-head RMSNorm (Qwen3's q_norm / k_norm), RoPE, and the store of k and v into the KV cache.
//
// Work split: one warp per (token, head slot), the slots of a token being its n_head query heads,
// then its n_head_kv key heads, then its n_head_kv value heads; kWarps warps per block. Lane l
// holds elements l, l + 32, ... of its head (head_dim a multiple of 32, at most 256: ≤ 8 each), so
// a Q8_0 block of 32 is exactly one register of every lane: its amax is one warp reduction.
// RoPE pairs elements that live in other lanes (i and i + half, or 2i and 2i + 1), so the head goes
// through a per-warp row of shared memory for the rotation; each lane rotates whole pairs, reading
// and writing only its own pairs (no barrier but __syncwarp between the phases).
//
// Memory traffic: q, k, v read once and q written once (F32), the biases / norm weights / inverse
// frequencies (small, cached), and one K and one V row slice written per (token, KV head) in the
// cache type. Tiny next to the matrix products around it; the point is one launch instead of five.
//
// Rounding follows engine/cpu/cpu_backend.cpp so that the CPU and GPU caches can agree bit for bit:
// the angle pos * inv_freq and its sin/cos in double, scaled by rope_scale in double, rounded to
// float; the rotation x0*c - x1*s with separately rounded products (__fmul_rn: no FMA contraction,
// as GCC compiles the CPU code); RMSNorm's sum of squares in double, x * scale * w in float. The
// one difference: QkvArgs carries rope_scale as a float, the CPU backend keeps it as a double.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/attention_math.h"
#include "kernels/check.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxPerLane = kMaxHeadDim / 32;

enum CacheType : int { kCacheF32 = 0, kCacheF16 = 1, kCacheQ8 = 2 };

struct RopeParams {
  float* q;
  const float *k, *v, *bq, *bk, *bv, *q_norm, *k_norm;
  float eps;
  const double* inv_freq;
  double rope_scale;
  bool adjacent;
  std::uint32_t n_head, n_head_kv, head_dim;
  std::uint32_t slots;  // T * (n_head + 2 * n_head_kv)
  const std::int32_t* d_pos;
  unsigned char *k_cache, *v_cache;
  std::size_t row_bytes;
};

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Stores one head (lane's elements x[c] = element lane + 32c) at `dst` in the cache type.
template <int kType>
__device__ void store_head(const float (&x)[kMaxPerLane], int chunks, unsigned char* dst, int lane) {
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    if (c >= chunks) break;
    const int e = lane + 32 * c;
    if constexpr (kType == kCacheF32) {
      reinterpret_cast<float*>(dst)[e] = x[c];
    } else if constexpr (kType == kCacheF16) {
      reinterpret_cast<__half*>(dst)[e] = __float2half_rn(x[c]);
    } else {
      // Block c: 2 bytes of scale, then 32 levels.
      unsigned char* block = dst + 34 * c;
      const math::Q8Scale s = math::q8_0_scale(warp_max(fabsf(x[c])));
      if (lane == 0) *reinterpret_cast<__half*>(block) = __float2half_rn(s.d);
      reinterpret_cast<std::int8_t*>(block + 2)[lane] = math::q8_0_level(x[c], s.id);
    }
  }
}

// grid: ceil(slots / kWarps) blocks of 32 * kWarps threads.
template <int kType>
__global__ void __launch_bounds__(32 * kWarps) qkv_rope_store_kernel(RopeParams p) {
  __shared__ float rows[kWarps][kMaxHeadDim];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::uint32_t slot = blockIdx.x * kWarps + warp;
  if (slot >= p.slots) return;  // whole warps only: no barrier below spans warps
  const std::uint32_t per_token = p.n_head + 2 * p.n_head_kv;
  const std::uint32_t t = slot / per_token, hs = slot % per_token;
  const std::uint32_t D = p.head_dim;
  const int chunks = static_cast<int>(D / 32);

  // Which head, and where it comes from.
  enum { kQ, kK, kV } kind;
  std::uint32_t h;
  const float *src, *bias, *norm;
  if (hs < p.n_head) {
    kind = kQ, h = hs;
    src = p.q + (std::size_t{t} * p.n_head + h) * D, bias = p.bq, norm = p.q_norm;
  } else if (hs < p.n_head + p.n_head_kv) {
    kind = kK, h = hs - p.n_head;
    src = p.k + (std::size_t{t} * p.n_head_kv + h) * D, bias = p.bk, norm = p.k_norm;
  } else {
    kind = kV, h = hs - p.n_head - p.n_head_kv;
    src = p.v + (std::size_t{t} * p.n_head_kv + h) * D, bias = p.bv, norm = nullptr;
  }

  float x[kMaxPerLane];
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    if (c >= chunks) break;
    const int e = lane + 32 * c;
    x[c] = src[e];
    if (bias) x[c] = __fadd_rn(x[c], bias[std::size_t{h} * D + e]);
  }

  if (kind != kV) {
    if (norm) {
      double sum = 0;
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c)
        if (c < chunks) sum += double(x[c]) * double(x[c]);
      sum = warp_sum(sum);
      const float scale = static_cast<float>(1.0 / sqrt(sum / double(D) + double(p.eps)));
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c)
        if (c < chunks) x[c] = __fmul_rn(__fmul_rn(x[c], scale), norm[lane + 32 * c]);
    }
    // RoPE through the warp's row: lane rotates pairs i = lane, lane + 32, ... < D / 2.
    float* row = rows[warp];
#pragma unroll
    for (int c = 0; c < kMaxPerLane; ++c)
      if (c < chunks) row[lane + 32 * c] = x[c];
    __syncwarp();
    const double pos = static_cast<double>(*p.d_pos) + static_cast<double>(t);
    for (std::uint32_t i = lane; i < D / 2; i += 32) {
      double sn, cs;
      sincos(pos * p.inv_freq[i], &sn, &cs);
      const float cf = static_cast<float>(p.rope_scale * cs), sf = static_cast<float>(p.rope_scale * sn);
      const math::RopePair pr = math::rope_pair(i, D, p.adjacent);
      const float x0 = row[pr.a], x1 = row[pr.b];
      row[pr.a] = __fsub_rn(__fmul_rn(x0, cf), __fmul_rn(x1, sf));
      row[pr.b] = __fadd_rn(__fmul_rn(x1, cf), __fmul_rn(x0, sf));
    }
    __syncwarp();
#pragma unroll
    for (int c = 0; c < kMaxPerLane; ++c)
      if (c < chunks) x[c] = row[lane + 32 * c];
    if (kind == kQ) {
      float* dst = p.q + (std::size_t{t} * p.n_head + h) * D;
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c)
        if (c < chunks) dst[lane + 32 * c] = x[c];
      return;
    }
  }

  const std::size_t position = static_cast<std::size_t>(*p.d_pos) + t;
  unsigned char* cache = kind == kK ? p.k_cache : p.v_cache;
  const std::size_t head_bytes =
      kType == kCacheF32 ? std::size_t{D} * 4 : kType == kCacheF16 ? std::size_t{D} * 2 : std::size_t{D} / 32 * 34;
  store_head<kType>(x, chunks, cache + position * p.row_bytes + h * head_bytes, lane);
}

}  // namespace

bool qkv_rope_store(const QkvArgs& a, cudaStream_t stream, std::string* error) {
  if (a.T == 0) return true;
  if (a.head_dim == 0 || a.head_dim % 32 != 0 || a.head_dim > kMaxHeadDim || a.n_head == 0 ||
      a.n_head_kv == 0 || !a.q || !a.k || !a.v || !a.inv_freq || !a.d_pos || !a.k_cache || !a.v_cache) {
    if (error) *error = "qkv_rope_store: bad arguments (head_dim must be a multiple of 32 up to 256)";
    return false;
  }
  int type;
  switch (a.kv_type) {
    case GgmlType::f32: type = kCacheF32; break;
    case GgmlType::f16: type = kCacheF16; break;
    case GgmlType::q8_0: type = kCacheQ8; break;
    default:
      if (error) *error = "qkv_rope_store: KV cache type must be f32, f16 or q8_0";
      return false;
  }
  RopeParams p{};
  p.q = a.q, p.k = a.k, p.v = a.v, p.bq = a.bq, p.bk = a.bk, p.bv = a.bv;
  p.q_norm = a.q_norm, p.k_norm = a.k_norm, p.eps = a.eps, p.inv_freq = a.inv_freq;
  p.rope_scale = a.rope_scale, p.adjacent = a.adjacent_pairs;
  p.n_head = a.n_head, p.n_head_kv = a.n_head_kv, p.head_dim = a.head_dim;
  const std::size_t slots = a.T * (std::size_t{a.n_head} + 2 * std::size_t{a.n_head_kv});
  if (slots > 0xFFFFFFFFu) {
    if (error) *error = "qkv_rope_store: too many tokens in one call";
    return false;
  }
  p.slots = static_cast<std::uint32_t>(slots);
  p.d_pos = a.d_pos;
  p.k_cache = static_cast<unsigned char*>(a.k_cache), p.v_cache = static_cast<unsigned char*>(a.v_cache);
  p.row_bytes = a.row_bytes;
  const unsigned blocks = static_cast<unsigned>((slots + kWarps - 1) / kWarps);
  switch (type) {
    case kCacheF32: qkv_rope_store_kernel<kCacheF32><<<blocks, 32 * kWarps, 0, stream>>>(p); break;
    case kCacheF16: qkv_rope_store_kernel<kCacheF16><<<blocks, 32 * kWarps, 0, stream>>>(p); break;
    default: qkv_rope_store_kernel<kCacheQ8><<<blocks, 32 * kWarps, 0, stream>>>(p); break;
  }
  return check(cudaGetLastError(), "qkv_rope_store launch", error);
}

}  // namespace ponder::cuda
