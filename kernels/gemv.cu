// GEMV for decode: y[t, n] = Σ_k W[n, k] x[t, k] for T ≤ kGemvMaxRows rows of x, with W in its
// stored type (kernels/blocks.h decodes it). Memory-bound: every weight byte is read once, with
// 16-byte loads.
//
// Work split: a thread block of kWarps warps owns kRows consecutive rows of W (so a row of x
// loaded into registers serves kRows weight rows). The rows' K elements are cut into tiles of
// kTile elements (a whole number of blocks, ~1 KiB of bytes per row); tile i goes to warp
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
// Numerics: float accumulation of the exact dequantized weights (no activation quantization):
// against a float64 product of the dequantized weights, the error is float rounding (relative
// ‖Δ‖/‖y‖ ~1e-7 … 1e-6 for K ≤ 10^4). The CPU's quantized paths quantize x to int8 and differ
// from this by ~1e-3 … 1e-2 relative (their error, not this one's).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/blocks.h"
#include "kernels/check.cuh"
#include "kernels/dispatch.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

constexpr int kWarps = 4;                  // per thread block
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 4;                   // weight rows per thread block
constexpr int kLanesGroups = 32 * blocks::kGroup;  // elements one pass of a warp covers (256)

/// The tile of one type: elements per row (a multiple of 256 and of the block), the bytes that
/// holds, the 16-byte chunks staged per row (room for a start up to 14 bytes into a chunk) and
/// the loads per lane.
template <GgmlType kType>
struct Tile {
  using Tr = blocks::Traits<kType>;
  static constexpr int kElements = kType == GgmlType::f32                               ? 256
                                   : kType == GgmlType::f16 || kType == GgmlType::bf16 ? 512
                                   : kType == GgmlType::q4_0 || kType == GgmlType::q4_k ? 2048
                                                                                        : 1024;
  static constexpr int kBytes = kElements / Tr::kElements * Tr::kBytes;
  static constexpr int kChunks = (kBytes + 14 + 15) / 16;
  static constexpr int kLoads = (kRows * kChunks + 31) / 32;
  static_assert(kElements % kLanesGroups == 0 && kElements % Tr::kElements == 0);
};

/// 16 bytes at `a` (16-byte aligned), of which only those before `end` are read (the rest 0).
__device__ __forceinline__ uint4 load_chunk(const unsigned char* a, const unsigned char* end) {
  if (a + 16 <= end) return __ldcs(reinterpret_cast<const uint4*>(a));
  unsigned char bytes[16] = {};
  for (int i = 0; i < 16; ++i)
    if (a + i < end) bytes[i] = a[i];
  uint4 v;
  v.x = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (static_cast<unsigned>(bytes[3]) << 24);
  v.y = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (static_cast<unsigned>(bytes[7]) << 24);
  v.z = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (static_cast<unsigned>(bytes[11]) << 24);
  v.w = bytes[12] | (bytes[13] << 8) | (bytes[14] << 16) | (static_cast<unsigned>(bytes[15]) << 24);
  return v;
}

/// x[i], i < 8, from `p` (16-byte aligned when `vec`).
__device__ __forceinline__ void load_x8(const float* __restrict__ p, bool vec, float* v) {
  if (vec) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = __ldg(p + i);
  }
}

/// w: N rows of `row_bytes` (16-byte aligned), ending at w_end; x: [kT][K] (16-byte aligned rows
/// when x_vec); y: [kT][N]. grid = ceil(N / kRows), block = kThreads.
template <GgmlType kType, int kT>
__global__ void __launch_bounds__(kThreads)
gemv_kernel(const unsigned char* __restrict__ w, std::size_t row_bytes, const unsigned char* w_end,
            int N, int K, const float* __restrict__ x, bool x_vec, float* __restrict__ y) {
  using Tr = blocks::Traits<kType>;
  using Sh = Tile<kType>;
  __shared__ __align__(16) unsigned char stage[kWarps][kRows][Sh::kChunks * 16];
  __shared__ float partial[kWarps][kRows * kT];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kRows;
  const int rows = min(kRows, N - row0);  // ≥ 1
  const unsigned char* row_start = w + static_cast<std::size_t>(row0) * row_bytes;

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
      const int c = lane + 32 * i, r = c / Sh::kChunks, j = c % Sh::kChunks;
      buf[i] = make_uint4(0, 0, 0, 0);
      if (r < rows) {
        const unsigned char* start = row_start + r * row_bytes + tile_off;
        const unsigned char* a =
            reinterpret_cast<const unsigned char*>(reinterpret_cast<std::uintptr_t>(start) & ~std::uintptr_t{15}) + 16 * j;
        if (a < start + tile_bytes) buf[i] = load_chunk(a, w_end);
      }
    }
#pragma unroll
    for (int i = 0; i < Sh::kLoads; ++i) {
      const int c = lane + 32 * i, r = c / Sh::kChunks, j = c % Sh::kChunks;
      if (r < kRows) *reinterpret_cast<uint4*>(&stage[warp][r][16 * j]) = buf[i];
    }
    __syncwarp();

    // 2. Decode and multiply. Rows past N decode whatever their staging holds; never written.
    const unsigned char* tile_rows[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const auto misalign = static_cast<unsigned>(
          reinterpret_cast<std::uintptr_t>(row_start + r * row_bytes + tile_off) & 15u);
      tile_rows[r] = &stage[warp][r][misalign];
    }
#pragma unroll
    for (int pass = 0; pass < Sh::kElements / kLanesGroups; ++pass) {
      const int e = (lane + 32 * pass) * blocks::kGroup;  // within the tile
      if (e >= len) break;
      const float* xe = x + e0 + e;
      if (e + blocks::kGroup <= len) {
        blocks::Group g[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) blocks::load_group<kType>(tile_rows[r], e, g[r]);
#pragma unroll
        for (int t = 0; t < kT; ++t) {
          float xv[blocks::kGroup];
          load_x8(xe + static_cast<std::size_t>(t) * K, x_vec, xv);
          float sum_x = 0.0f;
          if constexpr (Tr::kHasMin) {
#pragma unroll
            for (int i = 0; i < blocks::kGroup; ++i) sum_x += xv[i];
          }
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < blocks::kGroup; ++i) s = fmaf(g[r].q[i], xv[i], s);
            if constexpr (Tr::kFloat) {
              acc[r][t] += s;
            } else if constexpr (Tr::kHasMin) {
              acc[r][t] = fmaf(g[r].scale, s, fmaf(-g[r].min, sum_x, acc[r][t]));
            } else {
              acc[r][t] = fmaf(g[r].scale, s, acc[r][t]);
            }
          }
        }
      } else if constexpr (Tr::kFloat) {
        // The partial last group of an F32/F16/BF16 row (K not a multiple of 8).
        for (int i = 0; i < len - e; ++i) {
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            const float v = blocks::decode1<kType>(tile_rows[r], e + i);
#pragma unroll
            for (int t = 0; t < kT; ++t)
              acc[r][t] = fmaf(v, __ldg(xe + static_cast<std::size_t>(t) * K + i), acc[r][t]);
          }
        }
      }
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
    default: return fail("gemv", "T = " + std::to_string(T) + " is not 1..8", error);
  }
}

}  // namespace

bool supports(GgmlType type) {
  return dispatch_type(type, [](auto) { return true; });
}

bool gemv(const void* w, GgmlType type, std::size_t N, std::size_t K, const float* x,
          std::size_t T, float* y, cudaStream_t stream, std::string* error) {
  if (!supports(type)) return fail("gemv", "unsupported weight type " + std::to_string(static_cast<unsigned>(type)), error);
  if (N == 0 || T == 0) return true;
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (K == 0 || K % info->block_elements != 0)
    return fail("gemv", "K = " + std::to_string(K) + " is not a whole number of " + std::string(info->name) + " blocks", error);
  if (N > 0x7FFFFFFFu || K > 0x7FFFFFFFu) return fail("gemv", "N or K too large", error);
  if (T > kGemvMaxRows) return fail("gemv", "T = " + std::to_string(T) + " > kGemvMaxRows", error);
  if (reinterpret_cast<std::uintptr_t>(w) % 16 != 0) return fail("gemv", "the weight is not 16-byte aligned", error);
  const auto* bytes = static_cast<const unsigned char*>(w);
  return dispatch_type(type, [&](auto tag) {
    return launch_gemv_rows<decltype(tag)::value>(bytes, N, K, x, T, y, stream, error);
  });
}

}  // namespace ponder::cuda
