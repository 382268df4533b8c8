#pragma once
// The device code of kernels/rope.cu (described at the top of that file), in a header so that
// tests/engine/test_cuda_emulated.cpp can also run it on the host under tests/engine/cuda_emu.h.
#if !defined(PONDER_CUDA_EMU)  // else the includer has included tests/engine/cuda_emu.h
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/attention_math.h"

namespace ponder::cuda::rope_detail {
// Under the host emulator (tests/engine/cuda_emu.h) the kernels get other link names, so a test
// binary can hold both them and the real library's host stubs.
#ifdef PONDER_CUDA_EMU
inline namespace emulated {
#endif


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

#ifdef PONDER_CUDA_EMU
}  // namespace emulated
#endif
}  // namespace ponder::cuda::rope_detail
