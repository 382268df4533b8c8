#pragma once
// The device code of kernels/dequantize.cu (described at the top of that file), in a header so that
// tests/engine/test_cuda_emulated_small.cpp can also run it on the host under tests/engine/cuda_emu.h.
#if !defined(PONDER_CUDA_EMU)  // else the includer has included tests/engine/cuda_emu.h
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/blocks.h"

namespace ponder::cuda::dequantize_detail {
// Under the host emulator the kernels get other link names (see attention_kernels.cuh).
#ifdef PONDER_CUDA_EMU
inline namespace emulated {
#endif

constexpr int kBlock = 256;
constexpr std::size_t kMaxGrid = 1u << 16;  // then grid-stride

__device__ __forceinline__ void store8(float* out, const float* v, bool vec) {
  if (vec) {
    reinterpret_cast<float4*>(out)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(out)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = v[i];
  }
}

__device__ __forceinline__ void store8(__half* out, const float* v, bool vec) {
  if (vec) {
    const auto pair = [v](int i) {
      return static_cast<unsigned>(__half_as_ushort(__float2half_rn(v[2 * i]))) |
             (static_cast<unsigned>(__half_as_ushort(__float2half_rn(v[2 * i + 1]))) << 16);
    };
    *reinterpret_cast<uint4*>(out) = make_uint4(pair(0), pair(1), pair(2), pair(3));
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __float2half_rn(v[i]);
  }
}

__device__ __forceinline__ void store1(float* out, float v) { *out = v; }
__device__ __forceinline__ void store1(__half* out, float v) { *out = __float2half_rn(v); }

// w: n elements of kType (16-byte aligned); out: n elements (16-byte aligned when out_vec).
template <GgmlType kType, class Out>
__global__ void __launch_bounds__(kBlock)
dequantize_kernel(const unsigned char* __restrict__ w, std::size_t n, Out* __restrict__ out,
                  bool out_vec) {
  const std::size_t groups = n / blocks::kGroup;
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * kBlock + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * kBlock;
  for (std::size_t g = first; g < groups; g += stride) {
    float v[blocks::kGroup];
    blocks::decode8<kType>(w, g * blocks::kGroup, v);
    store8(out + g * blocks::kGroup, v, out_vec);
  }
  const std::size_t tail = groups * blocks::kGroup + first;  // < 8 elements, F types only
  if (tail < n) store1(out + tail, blocks::decode1<kType>(w, tail));
}

#ifdef PONDER_CUDA_EMU
}  // namespace emulated
#endif
}  // namespace ponder::cuda::dequantize_detail
