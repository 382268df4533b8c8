#pragma once
// The device code of kernels/embedding.cu (described at the top of that file), in a header so that
// tests/engine/test_cuda_emulated_small.cpp can also run it on the host under tests/engine/cuda_emu.h.
#if !defined(PONDER_CUDA_EMU)  // else the includer has included tests/engine/cuda_emu.h
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/blocks.h"

namespace ponder::cuda::embedding_detail {
// Under the host emulator the kernels get other link names (see attention_kernels.cuh).
#ifdef PONDER_CUDA_EMU
inline namespace emulated {
#endif

constexpr int kBlock = 128;

// table: rows of row_bytes (16-byte aligned start); out: [T][n_embd].
template <GgmlType kType>
__global__ void __launch_bounds__(kBlock)
embed_kernel(const unsigned char* __restrict__ table, std::size_t row_bytes, std::size_t n_embd,
             const std::int32_t* __restrict__ tokens, std::size_t T, float* __restrict__ out,
             bool out_vec) {
  const std::size_t groups = n_embd / blocks::kGroup;
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * kBlock + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * kBlock;
  for (std::size_t t = blockIdx.y; t < T; t += gridDim.y) {
    const unsigned char* row = table + static_cast<std::size_t>(tokens[t]) * row_bytes;
    float* o = out + t * n_embd;
    for (std::size_t g = first; g < groups; g += stride) {
      float v[blocks::kGroup];
      blocks::decode8<kType>(row, g * blocks::kGroup, v);
      float* dst = o + g * blocks::kGroup;
      if (out_vec) {
        reinterpret_cast<float4*>(dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
        reinterpret_cast<float4*>(dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
      } else {
#pragma unroll
        for (int i = 0; i < blocks::kGroup; ++i) dst[i] = v[i];
      }
    }
    const std::size_t tail = groups * blocks::kGroup + first;
    if (tail < n_embd) o[tail] = blocks::decode1<kType>(row, tail);
  }
}

#ifdef PONDER_CUDA_EMU
}  // namespace emulated
#endif
}  // namespace ponder::cuda::embedding_detail
