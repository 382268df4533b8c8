#pragma once
// Pure arithmetic shared by kernels/rope.cu and kernels/attention.cu and compiled for the host
// too (by g++ in tests/engine/test_cuda_host_math.cpp, which checks it against engine/quant and
// the split rules without a GPU). Nothing here touches memory beyond its arguments.
#include <math.h>

#include <cstdint>

#if defined(__CUDACC__)
#define PONDER_HD __host__ __device__ __forceinline__
#else
#define PONDER_HD inline
#endif

namespace ponder::cuda::math {

// ---- Q8_0 (ggml block_q8_0: f16 d, 32 int8), rounded as engine/quant.cpp's quant_q8_0 ---------
// d = amax / 127 and id = 1 / d in IEEE float (nvcc's default -prec-div=true makes both divisions
// correctly rounded on the device too); q = roundf(x * id), half away from zero. The stored scale
// is d rounded to f16 (nearest even: __float2half_rn on the device), but the q use the float d,
// as the reference does.

/// The scale of a group whose largest |x| is `amax`, and its inverse (0 for an all-zero group).
struct Q8Scale {
  float d, id;
};
PONDER_HD Q8Scale q8_0_scale(float amax) {
  const float d = amax / 127.0f;
  return {d, d != 0.0f ? 1.0f / d : 0.0f};
}
/// One element's level.
PONDER_HD std::int8_t q8_0_level(float x, float id) { return static_cast<std::int8_t>(roundf(x * id)); }

// ---- RoPE pairs ---------------------------------------------------------------------------
/// The two elements of head-local pair i (i < head_dim / 2): rotate-half pairs (i, i + half),
/// adjacent pairs (2i, 2i + 1), as engine/cpu/cpu_backend.cpp's rope().
struct RopePair {
  std::uint32_t a, b;
};
PONDER_HD RopePair rope_pair(std::uint32_t i, std::uint32_t head_dim, bool adjacent) {
  return adjacent ? RopePair{2 * i, 2 * i + 1} : RopePair{i, i + head_dim / 2};
}

// ---- attention work split -----------------------------------------------------------------
/// Keys per tile of the attention kernels (one per lane of a warp in the score phase).
constexpr std::uint32_t kTileKeys = 32;

/// Decode's split s of n_splits over `length` keys: [begin, end), end ≤ begin when empty. Each
/// split but the last covers the same number of whole tiles; together they cover [0, length) once.
struct KeyRange {
  std::uint32_t begin, end;
};
PONDER_HD KeyRange decode_split(std::uint32_t length, std::uint32_t n_splits, std::uint32_t s) {
  const std::uint32_t tiles = (length + kTileKeys - 1) / kTileKeys;
  const std::uint32_t per_split = (tiles + n_splits - 1) / n_splits;  // tiles per split
  const std::uint64_t begin = std::uint64_t{s} * per_split * kTileKeys;
  const std::uint64_t end = begin + std::uint64_t{per_split} * kTileKeys;
  const std::uint32_t b = begin < length ? static_cast<std::uint32_t>(begin) : length;
  const std::uint32_t e = end < length ? static_cast<std::uint32_t>(end) : length;
  return {b, e};
}

/// Decode's splits per KV head: at least kMinDecodeSplits, doubled (up to kMaxDecodeSplits) while
/// the grid — `blocks_per_split` blocks per split, one per KV head and row tile — has fewer than
/// kDecodeTargetBlocks blocks: 2 KV heads × 32 splits would fill 64 SMs of an H200's 132.
constexpr std::uint32_t kMinDecodeSplits = 32, kMaxDecodeSplits = 128, kDecodeTargetBlocks = 256;
PONDER_HD std::uint32_t decode_splits(std::uint32_t blocks_per_split) {
  std::uint32_t splits = kMinDecodeSplits;
  while (splits < kMaxDecodeSplits && std::uint64_t{blocks_per_split} * splits < kDecodeTargetBlocks) splits *= 2;
  return splits;
}

/// Row r of an attention block: the flattened (query, head-of-group) index i = t * group + j of
/// the query rows that share one KV head.
struct QueryRow {
  std::uint32_t t, head_in_group;
};
PONDER_HD QueryRow query_row(std::uint32_t i, std::uint32_t group) { return {i / group, i % group}; }

}  // namespace ponder::cuda::math
