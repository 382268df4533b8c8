#pragma once
// The device code of kernels/attention.cu (the work split and memory traffic are described at the top
// of that file): the kernels and their parameter block, in a header so that
// tests/engine/test_cuda_emulated.cpp can also run them on the host under tests/engine/cuda_emu.h.
#if !defined(PONDER_CUDA_EMU)  // else the includer has included tests/engine/cuda_emu.h
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/attention_math.h"

namespace ponder::cuda::attention_detail {
// Under the host emulator (tests/engine/cuda_emu.h) the kernels get other link names, so a test
// binary can hold both them and the real library's host stubs.
#ifdef PONDER_CUDA_EMU
inline namespace emulated {
#endif


constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = static_cast<int>(math::kTileKeys);  // keys per tile: one per lane
static_assert(kTile == 32, "the score phase maps one key to each lane");
constexpr int kPrefillRows = 16;
constexpr int kDecodeRows = 8;
constexpr int kMaxHeadDim = 256;

#if !defined(PONDER_CUDA_EMU)
// The block's dynamic shared memory (the emulator supplies its own).
__device__ __forceinline__ float* dynamic_smem() {
  extern __shared__ __align__(16) float smem_[];
  return smem_;
}
#endif

enum CacheType : int { kCacheF32 = 0, kCacheF16 = 1, kCacheQ8 = 2 };

struct AttnParams {
  const float* q;
  float* out;
  const unsigned char* k;
  const unsigned char* v;
  std::size_t row_bytes;
  std::uint32_t n_head, n_head_kv, head_dim, group;
  std::uint32_t T;
  const std::int32_t* d_pos;
  std::uint32_t max_positions;  // decode: the length is clamped to it (0: no clamp)
  float scale;                  // 1 / sqrt(head_dim)
  float* partials;              // decode: [n_head][splits][head_dim + 2] = m, l, acc
};

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Shared memory of a block, in floats: Q rows, K tile (padded rows), V tile, p, alpha, m, l.
__host__ __device__ constexpr std::size_t smem_floats(int rows, int D) {
  return std::size_t(rows) * D + std::size_t(kTile) * (D + 4) + std::size_t(kTile) * D +
         std::size_t(rows) * kTile + 3 * std::size_t(rows);
}

// One tile of K and V rows in flight in registers: fetch() issues the global loads, store()
// widens them into shared memory. A unit is 16 bytes (F32: 4 elements, F16: 8) or one Q8_0 block.
template <int kType, int kD>
struct TileLoader {
  static constexpr int kUnitElems = kType == kCacheF32 ? 4 : kType == kCacheF16 ? 8 : 32;
  static constexpr int kMaxD = kD ? kD : kMaxHeadDim;
  static constexpr int kMaxUnits = (kTile * kMaxD / kUnitElems + kThreads - 1) / kThreads;
  static constexpr int kRawWords = kType == kCacheQ8 ? 17 : 1;  // ushorts (Q8_0) or uint4s
  using Raw = std::conditional_t<kType == kCacheQ8, unsigned short, uint4>;

  Raw k[kMaxUnits][kRawWords], v[kMaxUnits][kRawWords];

  // Loads keys [j0, j0 + kTile) of KV head g; keys ≥ end become zeros (finite: p = 0 times a
  // zero, never times garbage).
  __device__ __forceinline__ void fetch(const AttnParams& p, int D, std::uint32_t g, std::uint32_t j0,
                                        std::uint32_t end) {
    const int units_per_row = D / kUnitElems;
    const int units = kTile * units_per_row;
    const std::size_t head_bytes =
        kType == kCacheQ8 ? std::size_t(D) / 32 * 34 : std::size_t(D) * (kType == kCacheF32 ? 4 : 2);
#pragma unroll
    for (int u = 0; u < kMaxUnits; ++u) {
      const int unit = static_cast<int>(threadIdx.x) + u * kThreads;
      if (unit >= units) break;
      const int row = unit / units_per_row, c = unit % units_per_row;
      const std::uint32_t key = j0 + static_cast<std::uint32_t>(row);
      const std::size_t offset = std::size_t(key) * p.row_bytes + g * head_bytes +
                                 std::size_t(c) * (kType == kCacheQ8 ? 34 : 16);
      if constexpr (kType == kCacheQ8) {
        const auto* ks = reinterpret_cast<const unsigned short*>(p.k + offset);
        const auto* vs = reinterpret_cast<const unsigned short*>(p.v + offset);
#pragma unroll
        for (int w = 0; w < kRawWords; ++w) {
          k[u][w] = key < end ? __ldg(ks + w) : static_cast<unsigned short>(0);
          v[u][w] = key < end ? __ldg(vs + w) : static_cast<unsigned short>(0);
        }
      } else {
        k[u][0] = key < end ? __ldg(reinterpret_cast<const uint4*>(p.k + offset)) : make_uint4(0, 0, 0, 0);
        v[u][0] = key < end ? __ldg(reinterpret_cast<const uint4*>(p.v + offset)) : make_uint4(0, 0, 0, 0);
      }
    }
  }

  __device__ __forceinline__ void store(float* Ks, float* Vs, int D) const {
    const int units_per_row = D / kUnitElems;
    const int units = kTile * units_per_row;
#pragma unroll
    for (int u = 0; u < kMaxUnits; ++u) {
      const int unit = static_cast<int>(threadIdx.x) + u * kThreads;
      if (unit >= units) break;
      const int row = unit / units_per_row, c = unit % units_per_row;
      float* kd = Ks + row * (D + 4) + c * kUnitElems;
      float* vd = Vs + row * D + c * kUnitElems;
      if constexpr (kType == kCacheF32) {
        *reinterpret_cast<float4*>(kd) = as_float4(k[u][0]);
        *reinterpret_cast<float4*>(vd) = as_float4(v[u][0]);
      } else if constexpr (kType == kCacheF16) {
        widen_f16(k[u][0], kd);
        widen_f16(v[u][0], vd);
      } else {
        widen_q8(k[u], kd);
        widen_q8(v[u], vd);
      }
    }
  }

  static __device__ __forceinline__ float4 as_float4(const uint4& raw) {
    float4 f;
    memcpy(&f, &raw, sizeof f);  // a bit cast: register moves
    return f;
  }
  static __device__ __forceinline__ void widen_f16(const uint4& raw, float* dst) {
    __half2 h[4];
    memcpy(h, &raw, sizeof h);
    const float2 a = __half22float2(h[0]), b = __half22float2(h[1]);
    const float2 c = __half22float2(h[2]), d = __half22float2(h[3]);
    reinterpret_cast<float4*>(dst)[0] = make_float4(a.x, a.y, b.x, b.y);
    reinterpret_cast<float4*>(dst)[1] = make_float4(c.x, c.y, d.x, d.y);
  }
  // ushort 0: the f16 scale; ushorts 1..16: the 32 levels, two per ushort (little-endian).
  static __device__ __forceinline__ void widen_q8(const unsigned short (&raw)[kRawWords], float* dst) {
    const float d = __half2float(__ushort_as_half(raw[0]));
#pragma unroll
    for (int i = 0; i < 16; i += 2) {
      const float x0 = static_cast<float>(static_cast<signed char>(raw[1 + i] & 0xFF)) * d;
      const float x1 = static_cast<float>(static_cast<signed char>(raw[1 + i] >> 8)) * d;
      const float x2 = static_cast<float>(static_cast<signed char>(raw[2 + i] & 0xFF)) * d;
      const float x3 = static_cast<float>(static_cast<signed char>(raw[2 + i] >> 8)) * d;
      reinterpret_cast<float4*>(dst)[i / 2] = make_float4(x0, x1, x2, x3);
    }
  }
};

// kD: head_dim when specialised (64, 128), 0 for any multiple of 32 up to 256 read at run time.
// kRows: query rows per block (a multiple of kWarps). kDecode: T = 1, split over blockIdx.z,
// partials out; else prefill, final rows out.
template <int kType, int kD, int kRows, bool kDecode>
__global__ void __launch_bounds__(kThreads, 2) attention_kernel(AttnParams p) {
  static_assert(kRows % kWarps == 0, "each warp owns whole rows");
  constexpr int kRowsPerWarp = kRows / kWarps;
  constexpr int kMaxD = kD ? kD : kMaxHeadDim;
  constexpr int kAcc = kRows * kMaxD / kThreads;  // accumulator elements per thread (at most)
  static_assert(kRows * 32 % kThreads == 0, "every head_dim gives whole accumulators per thread");
  // When head_dim divides kThreads every accumulator of a thread has the same column.
  constexpr int kDiv = kD ? kD : 1;  // kD, never 0 in an expression
  constexpr bool kSameColumn = kD != 0 && kThreads % kDiv == 0;

  float* smem = dynamic_smem();
  const int D = kD ? kD : static_cast<int>(p.head_dim);
  const int n_acc = kRows * D / kThreads;
  float* Qs = smem;                    // [kRows][D]
  float* Ks = Qs + kRows * D;          // [kTile][D + 4]
  float* Vs = Ks + kTile * (D + 4);    // [kTile][D]
  float* Ps = Vs + kTile * D;          // [kRows][kTile]
  float* Alpha = Ps + kRows * kTile;   // [kRows]
  float* Msm = Alpha + kRows;          // [kRows]
  float* Lsm = Msm + kRows;            // [kRows]

  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const std::uint32_t g = blockIdx.y;
  const std::uint32_t row_tile = kDecode ? blockIdx.x : gridDim.x - 1 - blockIdx.x;  // prefill: long rows first
  const std::uint32_t first_pos = static_cast<std::uint32_t>(*p.d_pos);
  const std::uint32_t total_rows = p.T * p.group;
  const std::uint32_t i0 = row_tile * kRows;

  // This block's keys.
  std::uint32_t begin = 0, end;
  if constexpr (kDecode) {
    std::uint32_t length = first_pos + 1;
    if (p.max_positions && length > p.max_positions) length = p.max_positions;
    const math::KeyRange r = math::decode_split(length, gridDim.z, blockIdx.z);
    begin = r.begin, end = r.end;
  } else {
    const std::uint32_t last = (i0 + kRows < total_rows ? i0 + kRows : total_rows) - 1;
    end = first_pos + math::query_row(last, p.group).t + 1;
  }

  // Q rows into shared memory (inactive rows: zeros).
  for (int e = tid; e < kRows * D; e += kThreads) {
    const int r = e / D, d = e % D;
    const std::uint32_t i = i0 + static_cast<std::uint32_t>(r);
    float x = 0.0f;
    if (i < total_rows) {
      const math::QueryRow qr = math::query_row(i, p.group);
      x = p.q[(std::size_t(qr.t) * p.n_head + g * p.group + qr.head_in_group) * D + d];
    }
    Qs[e] = x;
  }

  // The rows this warp scores and normalises: w, w + 8, ...; their last key + 1 (0: inactive).
  float m[kRowsPerWarp], l[kRowsPerWarp];
  std::uint32_t row_end[kRowsPerWarp];
#pragma unroll
  for (int k = 0; k < kRowsPerWarp; ++k) {
    m[k] = -INFINITY, l[k] = 0.0f;
    const std::uint32_t i = i0 + static_cast<std::uint32_t>(warp + k * kWarps);
    const std::uint32_t causal = i < total_rows ? first_pos + math::query_row(i, p.group).t + 1 : 0;
    row_end[k] = causal < end ? causal : end;
  }

  const int live_rows = static_cast<int>(total_rows > i0 ? (total_rows - i0 < kRows ? total_rows - i0 : kRows) : 0);
  float acc[kAcc];
#pragma unroll
  for (int a = 0; a < kAcc; ++a) acc[a] = 0.0f;

  TileLoader<kType, kD> tile;
  if (begin < end) tile.fetch(p, D, g, begin, end);
  for (std::uint32_t j0 = begin; j0 < end; j0 += kTile) {
    __syncthreads();  // the previous tile's readers are done (and Qs is written, first time)
    tile.store(Ks, Vs, D);
    __syncthreads();
    if (j0 + kTile < end) tile.fetch(p, D, g, j0 + kTile, end);  // in flight during the arithmetic

    // Scores and the online softmax: lane = key j0 + lane.
    {
      // A row that sees no key of this tile (inactive, or causally before it) skips the dots
      // (warp-uniform: a warp's rows are its own); its scores are masked below anyway.
      float s[kRowsPerWarp];
      bool live[kRowsPerWarp], any_live = false;
#pragma unroll
      for (int k = 0; k < kRowsPerWarp; ++k) s[k] = 0.0f, live[k] = row_end[k] > j0, any_live |= live[k];
      const float* krow = Ks + lane * (D + 4);
#pragma unroll 4
      for (int d = 0; d < (any_live ? D : 0); d += 4) {
        const float4 k4 = *reinterpret_cast<const float4*>(krow + d);
#pragma unroll
        for (int k = 0; k < kRowsPerWarp; ++k) {
          if (!live[k]) continue;
          const float4 q4 = *reinterpret_cast<const float4*>(Qs + (warp + k * kWarps) * D + d);
          s[k] = fmaf(q4.x, k4.x, s[k]);
          s[k] = fmaf(q4.y, k4.y, s[k]);
          s[k] = fmaf(q4.z, k4.z, s[k]);
          s[k] = fmaf(q4.w, k4.w, s[k]);
        }
      }
      const std::uint32_t key = j0 + static_cast<std::uint32_t>(lane);
#pragma unroll
      for (int k = 0; k < kRowsPerWarp; ++k) {
        const int r = warp + k * kWarps;
        const float sc = key < row_end[k] ? s[k] * p.scale : -INFINITY;
        const float m_new = fmaxf(m[k], warp_max(sc));
        const float pr = sc == -INFINITY ? 0.0f : expf(sc - m_new);
        const float alpha = m[k] == -INFINITY ? 0.0f : expf(m[k] - m_new);
        l[k] = l[k] * alpha + warp_sum(pr);
        m[k] = m_new;
        Ps[r * kTile + lane] = pr;
        if (lane == 0) Alpha[r] = alpha;
      }
    }
    __syncthreads();

    // Values: acc[a] is element tid + 256 a of the kRows × D accumulator. Rows past the last
    // query row (decode with a group smaller than kRows, the last prefill tile) are skipped
    // (uniform per warp: a warp's 32 elements lie in one row); they are never written out.
    if constexpr (kSameColumn) {
      const int d = tid % kDiv;
#pragma unroll
      for (int a = 0; a < kAcc; ++a) acc[a] *= Alpha[tid / kDiv + a * (kThreads / kDiv)];
#pragma unroll 2
      for (int j = 0; j < kTile; j += 4) {
        const float v0 = Vs[(j + 0) * kDiv + d], v1 = Vs[(j + 1) * kDiv + d];
        const float v2 = Vs[(j + 2) * kDiv + d], v3 = Vs[(j + 3) * kDiv + d];
#pragma unroll
        for (int a = 0; a < kAcc; ++a) {
          if (tid / kDiv + a * (kThreads / kDiv) >= live_rows) continue;
          const float4 p4 = *reinterpret_cast<const float4*>(Ps + (tid / kDiv + a * (kThreads / kDiv)) * kTile + j);
          acc[a] = fmaf(p4.x, v0, acc[a]);
          acc[a] = fmaf(p4.y, v1, acc[a]);
          acc[a] = fmaf(p4.z, v2, acc[a]);
          acc[a] = fmaf(p4.w, v3, acc[a]);
        }
      }
    } else {
#pragma unroll
      for (int a = 0; a < kAcc; ++a) {
        if (a >= n_acc) break;
        const int e = tid + a * kThreads, r = e / D, d = e % D;
        if (r >= live_rows) continue;
        float x = acc[a] * Alpha[r];
        for (int j = 0; j < kTile; j += 4) {
          const float4 p4 = *reinterpret_cast<const float4*>(Ps + r * kTile + j);
          x = fmaf(p4.x, Vs[(j + 0) * D + d], x);
          x = fmaf(p4.y, Vs[(j + 1) * D + d], x);
          x = fmaf(p4.z, Vs[(j + 2) * D + d], x);
          x = fmaf(p4.w, Vs[(j + 3) * D + d], x);
        }
        acc[a] = x;
      }
    }
  }

  // Each row's m and l to every thread.
#pragma unroll
  for (int k = 0; k < kRowsPerWarp; ++k)
    if (lane == 0) Msm[warp + k * kWarps] = m[k], Lsm[warp + k * kWarps] = l[k];
  __syncthreads();

#pragma unroll
  for (int a = 0; a < kAcc; ++a) {
    if (a >= n_acc) break;
    const int e = tid + a * kThreads, r = e / D, d = e % D;
    const std::uint32_t i = i0 + static_cast<std::uint32_t>(r);
    if (i >= total_rows) continue;
    const math::QueryRow qr = math::query_row(i, p.group);
    const std::uint32_t h = g * p.group + qr.head_in_group;
    if constexpr (kDecode) {
      float* part = p.partials + (std::size_t(h) * gridDim.z + blockIdx.z) * (D + 2);
      part[2 + d] = acc[a];
      if (d == 0) part[0] = Msm[r], part[1] = Lsm[r];
    } else {
      p.out[(std::size_t(qr.t) * p.n_head + h) * D + d] = acc[a] / Lsm[r];
    }
  }
}

// The grids (shared by the launchers and the emulated tests). Prefill: (row tiles, KV heads).
// Decode: (row tiles of the group, KV heads, math::decode_splits).
inline std::size_t prefill_row_tiles(std::size_t T, std::uint32_t group) {
  return (T * group + kPrefillRows - 1) / kPrefillRows;
}
inline dim3 decode_grid(std::uint32_t group, std::uint32_t n_head_kv) {
  const std::uint32_t row_tiles = (group + kDecodeRows - 1) / kDecodeRows;
  return dim3(row_tiles, n_head_kv, math::decode_splits(row_tiles * n_head_kv));
}

// Decode's second kernel: one block per head merges the splits' partials:
// out = Σ_s e^(m_s − M) acc_s / Σ_s e^(m_s − M) l_s, M = max_s m_s (empty splits weigh 0).
constexpr int kCombineThreads = 128;
__global__ void __launch_bounds__(kCombineThreads)
    attention_combine_kernel(const float* __restrict__ partials, float* __restrict__ out, int D, int splits) {
  const std::uint32_t h = blockIdx.x;
  const float* base = partials + std::size_t(h) * splits * (D + 2);
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, base[std::size_t(s) * (D + 2)]);
  float L = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float ms = base[std::size_t(s) * (D + 2)];
    if (ms != -INFINITY) L += expf(ms - M) * base[std::size_t(s) * (D + 2) + 1];
  }
  for (int d = static_cast<int>(threadIdx.x); d < D; d += kCombineThreads) {
    float o = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float ms = base[std::size_t(s) * (D + 2)];
      if (ms != -INFINITY) o += expf(ms - M) * base[std::size_t(s) * (D + 2) + 2 + d];
    }
    out[std::size_t(h) * D + d] = o / L;
  }
}

#ifdef PONDER_CUDA_EMU
}  // namespace emulated
#endif
}  // namespace ponder::cuda::attention_detail
