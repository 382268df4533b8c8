#pragma once
// The device code of kernels/gemv.cu (the work split is described at the top of that file), in a
// header so that tests/engine/test_cuda_emulated_gemv.cpp can also run it on the host under
// tests/engine/cuda_emu.h.
#if !defined(PONDER_CUDA_EMU)  // else the includer has included tests/engine/cuda_emu.h
#include <cuda_runtime.h>
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/blocks.h"
#include "kernels/gemv_tile.h"

namespace ponder::cuda::gemv_detail {
// Under the host emulator the kernel gets another link name (see attention_kernels.cuh).
#ifdef PONDER_CUDA_EMU
inline namespace emulated {
#endif

using gemv::kRows;
using gemv::kThreads;
using gemv::kWarps;

/// 16 bytes at `a` (16-byte aligned); only the first `n` are read when n < 16 (the rest 0).
__device__ __forceinline__ uint4 load_chunk(const unsigned char* a, int n) {
  if (n == 16) return __ldcs(reinterpret_cast<const uint4*>(a));
  unsigned words[4] = {0, 0, 0, 0};
#pragma unroll
  for (int i = 0; i < 16; ++i)  // unrolled: constant indices, the words stay in registers
    if (i < n) words[i / 4] |= static_cast<unsigned>(a[i]) << (8 * (i % 4));
  return make_uint4(words[0], words[1], words[2], words[3]);
}

/// w: N rows of `row_bytes` (16-byte aligned), ending at w_end; x: [kT][K] (16-byte aligned rows
/// when x_vec); y: [kT][N]. grid = ceil(N / kRows), block = kThreads.
template <GgmlType kType, int kT>
__global__ void __launch_bounds__(kThreads, gemv::kMinBlocks)
gemv_kernel(const unsigned char* __restrict__ w, std::size_t row_bytes, const unsigned char* w_end,
            int N, int K, const float* __restrict__ x, bool x_vec, float* __restrict__ y) {
  using Tr = blocks::Traits<kType>;
  using Sh = gemv::Tile<kType>;
  __shared__ __align__(16) unsigned char stage[kWarps][kRows * Sh::kRowStage];
  __shared__ float partial[kWarps][kRows * kT];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kRows;
  const int rows = min(kRows, N - row0);  // ≥ 1
  const unsigned char* first_row = w + static_cast<std::size_t>(row0) * row_bytes;

  float acc[kRows][kT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int t = 0; t < kT; ++t) acc[r][t] = 0.0f;

  const int tiles = (K + Sh::kElements - 1) / Sh::kElements;
  for (int tile = warp; tile < tiles; tile += kWarps) {
    const int e0 = tile * Sh::kElements;
    const int len = min(Sh::kElements, K - e0);  // whole blocks
    const std::size_t tile_off = static_cast<std::size_t>(e0 / Tr::kElements) * Tr::kBytes;
    const int tile_bytes = len / Tr::kElements * Tr::kBytes;

    // 1. Stage: all loads first, then the stores.
    uint4 buf[Sh::kLoads];
#pragma unroll
    for (int i = 0; i < Sh::kLoads; ++i) {
      int dst;
      const unsigned char* src;
      buf[i] = make_uint4(0, 0, 0, 0);
      if (gemv::stage_slot<kType>(lane, i, rows, first_row, row_bytes, tile_off, tile_bytes, &dst, &src) && src)
        buf[i] = load_chunk(src, gemv::chunk_bytes(src, w_end));
    }
#pragma unroll
    for (int i = 0; i < Sh::kLoads; ++i) {
      int dst;
      const unsigned char* src;
      if (gemv::stage_slot<kType>(lane, i, rows, first_row, row_bytes, tile_off, tile_bytes, &dst, &src))
        *reinterpret_cast<uint4*>(&stage[warp][dst]) = buf[i];
    }
    __syncwarp();

    // 2. Decode and multiply. Rows past N decode their zeros; never written.
    const unsigned char* staged[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      staged[r] = gemv::staged_row<kType>(stage[warp], r, first_row, row_bytes, tile_off);
#pragma unroll 1
    for (int pass = 0; pass < Sh::kElements / gemv::kPass; ++pass) {
      const int e = (lane + 32 * pass) * blocks::kGroup;  // within the tile
      if (e >= len) break;
      gemv::multiply_group<kType, kT>(staged, e, len, x + e0 + e, K, x_vec, acc);
    }
    __syncwarp();  // the next tile's staging overwrites this one
  }

  // 3. Reduce: across the warp, then across the warps.
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int t = 0; t < kT; ++t) {
      float v = acc[r][t];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) partial[warp][r * kT + t] = v;
    }
  __syncthreads();
  if (threadIdx.x < kRows * kT) {
    const int r = threadIdx.x / kT, t = threadIdx.x % kT;
    if (r < rows) {
      float s = 0.0f;
#pragma unroll
      for (int k = 0; k < kWarps; ++k) s += partial[k][threadIdx.x];
      y[static_cast<std::size_t>(t) * N + row0 + r] = s;
    }
  }
}

#ifdef PONDER_CUDA_EMU
}  // namespace emulated
#endif
}  // namespace ponder::cuda::gemv_detail
