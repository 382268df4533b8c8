#pragma once
// The index arithmetic and the per-lane arithmetic of kernels/gemv.cu (see its top for the work
// split), as __host__ __device__ functions: the kernel calls them, and
// tests/engine/test_cuda_gemv_host.cpp runs them lane by lane on the host (staging, tiles, tails,
// the group products) against a float64 product, which checks the kernel's addressing without a
// GPU. Plain g++ can include this file.
#include <cstddef>
#include <cstdint>

#include "kernels/blocks.h"

namespace ponder::gemv {

constexpr int kWarps = 4;                 // per thread block
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 4;                  // weight rows per thread block
constexpr int kMinBlocks = 4;             // per multiprocessor: at most 128 registers a thread
constexpr int kPass = 32 * blocks::kGroup;  // elements one pass of a warp covers (256)

/// The tile of one type: elements per row (a multiple of 256 and of the block; ~1 KiB), the bytes
/// that holds, the 16-byte chunks staged per row (room for a start up to 14 bytes into a chunk:
/// blocks are at least 2-byte aligned) and the loads per lane.
template <GgmlType kType>
struct Tile {
  using Tr = blocks::Traits<kType>;
  static constexpr int kElements = kType == GgmlType::f32                               ? 256
                                   : kType == GgmlType::f16 || kType == GgmlType::bf16 ? 512
                                   : kType == GgmlType::q4_0 || kType == GgmlType::q4_k ? 2048
                                                                                        : 1024;
  static constexpr int kBytes = kElements / Tr::kElements * Tr::kBytes;
  static constexpr int kChunks = (kBytes + 14 + 15) / 16;
  static constexpr int kRowStage = kChunks * 16;  // bytes of one row's staging
  static constexpr int kLoads = (kRows * kChunks + 31) / 32;
  static_assert(kElements % kPass == 0 && kElements % Tr::kElements == 0, "tile of whole blocks");
};

PONDER_HD unsigned misalignment(const unsigned char* p) {
  return static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(p) & 15u);
}

/// Load i (< kLoads) of `lane` when staging a tile: chunk c = lane + 32 i is chunk j of row r
/// (rows of the block from `first_row`, `rows` of them valid). False when c is past the staging
/// (r ≥ kRows: nothing stored). Else `*dst` = the byte offset in the warp's staging, and `*src` =
/// the 16-byte aligned global address to copy from, or null when the chunk holds no byte of the
/// tile (r ≥ rows, or past the tile's end: zeros are stored). `tile_off`, `tile_bytes`: the
/// tile's bytes within each row.
template <GgmlType kType>
PONDER_HD bool stage_slot(int lane, int i, int rows, const unsigned char* first_row,
                          std::size_t row_bytes, std::size_t tile_off, int tile_bytes, int* dst,
                          const unsigned char** src) {
  using Sh = Tile<kType>;
  const int c = lane + 32 * i, r = c / Sh::kChunks, j = c % Sh::kChunks;
  if (r >= kRows) return false;
  *dst = r * Sh::kRowStage + 16 * j;
  *src = nullptr;
  if (r < rows) {
    const unsigned char* start = first_row + r * row_bytes + tile_off;
    const unsigned char* a = start - misalignment(start) + 16 * j;
    if (a < start + tile_bytes) *src = a;
  }
  return true;
}

/// Bytes of the 16-byte chunk at `a` that may be read: 16, or fewer for the chunk that runs past
/// `end` (the end of the weight; only its bytes before `end` are read, the rest staged as 0).
PONDER_HD int chunk_bytes(const unsigned char* a, const unsigned char* end) {
  return a + 16 <= end ? 16 : static_cast<int>(end - a);
}

/// Where row r's tile starts in the warp's staging: the same address modulo 16 as in global
/// memory, so the decoders' aligned loads stay aligned.
template <GgmlType kType>
PONDER_HD const unsigned char* staged_row(const unsigned char* stage, int r,
                                          const unsigned char* first_row, std::size_t row_bytes,
                                          std::size_t tile_off) {
  return stage + r * Tile<kType>::kRowStage + misalignment(first_row + r * row_bytes + tile_off);
}

/// x[i], i < 8, from `p` (16-byte aligned when `vec`).
PONDER_HD void load_x8(const float* __restrict__ p, bool vec, float* v) {
#ifdef __CUDA_ARCH__
  if (vec) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    return;
  }
  PONDER_UNROLL
  for (int i = 0; i < 8; ++i) v[i] = __ldg(p + i);
#else
  (void)vec;
  for (int i = 0; i < 8; ++i) v[i] = p[i];
#endif
}

PONDER_HD float load_x(const float* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

PONDER_HD float fma_(float a, float b, float c) {
#ifdef __CUDA_ARCH__
  return fmaf(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}

/// One lane's share of a tile: the group at element e of the tile (e < len, the tile's elements)
/// of the kRows staged rows, times the kT rows of x (xe = x + the tile's first column + e; rows of
/// K floats), added to acc[row][t]. The partial last group of an F32/F16/BF16 row is done element
/// by element.
template <GgmlType kType, int kT>
PONDER_HD void multiply_group(const unsigned char* const* rows, int e, int len, const float* xe,
                              int K, bool x_vec, float (&acc)[kRows][kT]) {
  using Tr = blocks::Traits<kType>;
  if (e + blocks::kGroup <= len) {
    blocks::Group g[kRows];
    PONDER_UNROLL
    for (int r = 0; r < kRows; ++r) blocks::load_group<kType>(rows[r], e, g[r]);
    PONDER_UNROLL
    for (int t = 0; t < kT; ++t) {
      float xv[blocks::kGroup];
      load_x8(xe + static_cast<std::size_t>(t) * K, x_vec, xv);
      float sum_x = 0.0f;
      if constexpr (Tr::kHasMin) {
        PONDER_UNROLL
        for (int i = 0; i < blocks::kGroup; ++i) sum_x += xv[i];
      }
      PONDER_UNROLL
      for (int r = 0; r < kRows; ++r) {
        float s = 0.0f;
        PONDER_UNROLL
        for (int i = 0; i < blocks::kGroup; ++i) s = fma_(g[r].q[i], xv[i], s);
        if constexpr (Tr::kFloat) {
          acc[r][t] += s;
        } else if constexpr (Tr::kHasMin) {
          acc[r][t] = fma_(g[r].scale, s, fma_(-g[r].min, sum_x, acc[r][t]));
        } else {
          acc[r][t] = fma_(g[r].scale, s, acc[r][t]);
        }
      }
    }
  } else if constexpr (Tr::kFloat) {
    for (int i = 0; i < len - e; ++i) {
      PONDER_UNROLL
      for (int r = 0; r < kRows; ++r) {
        const float v = blocks::decode1<kType>(rows[r], e + i);
        PONDER_UNROLL
        for (int t = 0; t < kT; ++t)
          acc[r][t] = fma_(v, load_x(xe + static_cast<std::size_t>(t) * K + i), acc[r][t]);
      }
    }
  }
}

}  // namespace ponder::gemv
