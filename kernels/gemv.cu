// GEMV for decode: y[t, n] = Σ_k W[n, k] x[t, k] for T ≤ kGemvMaxRows rows of x, with W in its
// stored type (kernels/blocks.h decodes it). Memory-bound: every weight byte is read once, with
// 16-byte loads.
//
// Work split: a thread block of kWarps warps owns kRows consecutive rows of W (so a row of x
// loaded into registers serves kRows weight rows). The rows' K elements are cut into tiles of
// Tile<type>::kElements elements (whole blocks, ~1 KiB per row); tile i goes to warp
// i % kWarps, so for a small N the K dimension still spreads over the warps.
//
// One tile, one warp:
//   1. Stage. The tile's bytes of the kRows rows are copied to the warp's shared memory with
//      16-byte loads (uint4, streaming: ld.global.cs), 32 lanes on consecutive chunks (coalesced),
//      kLoads loads per lane issued before the first store (kLoads · 512 bytes in flight per
//      warp). Quant blocks are not 16-byte sized (Q8_0 is 34 bytes), so a row's tile generally
//      starts inside a 16-byte chunk: the copy is of whole aligned chunks and keeps each byte's
//      address modulo 16, so the blocks in shared memory are aligned as they are in global memory
//      (what blocks.h's typed loads need). Only a chunk that would run past the end of W is read
//      byte by byte.
//   2. Decode and multiply. Lane l takes the 8-element groups l, l + 32, ... of the tile
//      (consecutive lanes, consecutive groups: the x loads, two float4 per group and row of x,
//      are coalesced and shared by the kRows weight rows). A group decodes to
//      scale · q[i] − min (blocks.h), so Σ value·x = scale · Σ q·x − min · Σ x: per element one
//      FMA per row of x. F32/F16/BF16 rows whose K is not a multiple of 8 end in a partial group,
//      done element by element.
//   3. After the last tile: each (row, t) sum is reduced across the warp with shuffles, then
//      across the block's warps through shared memory, and written once.
//
// The index arithmetic (staging slots, staged row addresses) and a lane's product of one group
// are in kernels/gemv_tile.h, shared with a host test that runs them lane by lane without a GPU
// (tests/engine/test_cuda_gemv_host.cpp).
//
// Numerics: float accumulation of the exact dequantized weights (no activation quantization):
// against a float64 product of the dequantized weights, the error is float rounding (relative
// ‖Δ‖/‖y‖ ~1e-7 … 1e-6 for K ≤ 10^4). The CPU's quantized paths quantize x to int8 and differ
// from this by ~1e-3 … 1e-2 relative (their error, not this one's).
//
// Performance (written without a GPU: nothing here is measured yet). The floor is bytes / HBM
// bandwidth: a 1536 × 8960 Q4_K matrix is 7.7 MB, ~1.6 µs at 4.8 TB/s. Registers ≤ 128 a thread
// (__launch_bounds__(128, 4): ≥ 16 warps per SM), no spills, 11–19 KB of shared memory a block.
// Expected limits, to check first on a GPU: small N launches few blocks (N = 1536: 384 blocks of
// 4 warps on 132 SMs); every x load serves 4 weight rows, so x costs T · 4 bytes of L1 traffic
// per 4 weight elements, which at T = 8 with 4-bit weights (~8× the weight bytes) may make L1,
// not HBM, the limit; Q8_0 / Q4_0 / Q6_K blocks are only 2-byte aligned, so their groups are read
// from shared memory in 16-bit pieces.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/blocks.h"
#include "kernels/check.cuh"
#include "kernels/dispatch.cuh"
#include "kernels/gemv_tile.h"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

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

template <GgmlType kType, int kT>
bool launch_gemv(const unsigned char* w, std::size_t N, std::size_t K, const float* x, float* y,
                 cudaStream_t stream, std::string* error) {
  const std::size_t rb = row_bytes(kType, K);
  const bool x_vec = K % 4 == 0 && reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
  const auto grid = static_cast<unsigned>((N + kRows - 1) / kRows);
  gemv_kernel<kType, kT><<<grid, kThreads, 0, stream>>>(w, rb, w + N * rb, static_cast<int>(N),
                                                         static_cast<int>(K), x, x_vec, y);
  return check(cudaGetLastError(), "gemv launch", error);
}

template <GgmlType kType>
bool launch_gemv_rows(const unsigned char* w, std::size_t N, std::size_t K, const float* x,
                      std::size_t T, float* y, cudaStream_t stream, std::string* error) {
  switch (T) {
    case 1: return launch_gemv<kType, 1>(w, N, K, x, y, stream, error);
    case 2: return launch_gemv<kType, 2>(w, N, K, x, y, stream, error);
    case 3: return launch_gemv<kType, 3>(w, N, K, x, y, stream, error);
    case 4: return launch_gemv<kType, 4>(w, N, K, x, y, stream, error);
    case 5: return launch_gemv<kType, 5>(w, N, K, x, y, stream, error);
    case 6: return launch_gemv<kType, 6>(w, N, K, x, y, stream, error);
    case 7: return launch_gemv<kType, 7>(w, N, K, x, y, stream, error);
    case 8: return launch_gemv<kType, 8>(w, N, K, x, y, stream, error);
    default: return launch_refused("gemv", "T = " + std::to_string(T) + " is not 1..8", error);
  }
}

}  // namespace

bool supports(GgmlType type) {
  return dispatch_type(type, [](auto) { return true; });
}

bool gemv(const void* w, GgmlType type, std::size_t N, std::size_t K, const float* x,
          std::size_t T, float* y, cudaStream_t stream, std::string* error) {
  if (!supports(type)) return launch_refused("gemv", "unsupported weight type " + std::to_string(static_cast<unsigned>(type)), error);
  if (N == 0 || T == 0) return true;
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (K == 0 || K % info->block_elements != 0)
    return launch_refused("gemv", "K = " + std::to_string(K) + " is not a whole number of " + std::string(info->name) + " blocks", error);
  if (N > 0x7FFFFFFFu || K > 0x7FFFFFFFu) return launch_refused("gemv", "N or K too large", error);
  if (T > kGemvMaxRows) return launch_refused("gemv", "T = " + std::to_string(T) + " > kGemvMaxRows", error);
  if (reinterpret_cast<std::uintptr_t>(w) % 16 != 0) return launch_refused("gemv", "the weight is not 16-byte aligned", error);
  const auto* bytes = static_cast<const unsigned char*>(w);
  return dispatch_type(type, [&](auto tag) {
    return launch_gemv_rows<decltype(tag)::value>(bytes, N, K, x, T, y, stream, error);
  });
}

}  // namespace ponder::cuda
