// Causal grouped-query attention over the KV cache (engine/cpu/attention.h defines the function):
// flash-attention style for prefill, split-K flash-decoding for decode, one kernel body for both.
//
// Work split. A block (kThreads = 256, 8 warps) owns one KV head g and kRows query rows of that
// group: the rows are the flattened (query t, head of the group) pairs i = t * group + j, so a
// block's rows share every K/V tile it loads (16 rows in prefill: e.g. 2 queries × 7 heads + 2
// rows of the next query; 8 in decode: the group's heads, the group split over blocks when it has
// more). Prefill: grid (row tiles, n_head_kv), the latest row tiles (most keys) first; each block
// walks keys [0, last row's position] in tiles of 32. Decode: grid (row tiles, n_head_kv,
// kAttentionSplits): split s walks its share of the keys (math::decode_split, from the length
// *d_pos + 1 read on the device, so the fixed grid stays valid in a captured graph; a split with no
// keys writes a neutral partial m = -inf, l = 0, acc = 0) and writes (m, l, acc[head_dim]) per
// head to the workspace; a second kernel combines the splits of each head.
//
// Per tile of 32 keys:
//   1. load: the tile's K and V row slices (head g) are read from global memory with coalesced
//      loads — 16 bytes per thread for F32/F16 (consecutive threads, consecutive 16-byte pieces of
//      a row), one Q8_0 block (34 bytes as 2-byte loads: blocks are only 2-byte aligned) per thread
//      for Q8_0 — widened to F32 into shared memory (K rows padded to head_dim + 4 floats so that
//      the score phase's float4 reads of 8 different rows hit distinct banks). The next tile's
//      loads are issued into registers before this tile's arithmetic, so they are in flight while
//      it runs (register double buffering: one barrier fewer than two shared buffers).
//   2. scores: warp w computes rows w and w + 8 (prefill) or w (decode), lane = key: a dot of
//      q (float4 broadcast from shared memory) with the lane's K row. Masked keys (beyond the
//      row's causal end or the split's range) score -inf. The online softmax of the tile runs in
//      the same warp (max and sum by shuffles, std::exp-accurate expf): p to shared memory, the
//      running max m and sum l in registers, the rescale factor of each row to shared memory.
//   3. values: thread owns elements tid + 256 i of the kRows × head_dim accumulator (kRows ×
//      head_dim / 256 registers); acc = acc · alpha + Σ_j p[r][j] V[j][d], p read as float4
//      broadcasts, V reads conflict-free (a warp covers 32 consecutive elements of one row).
// Never a T × T matrix: shared memory is O(kRows · head_dim + 32 · head_dim) per block.
//
// Memory traffic: prefill reads each K/V row once per (row tile, KV head) that sees it — the
// queries of a group share it, so about T · group / 16 tiles × causal half of the cache; decode
// reads the cache once (each split its range, every KV head once for all its query heads: 8
// query heads per block) plus n_head × kAttentionSplits × (head_dim + 2) floats of partials.
// Arithmetic is SIMT FMA (no tensor cores yet); F32 accumulation throughout. Results differ from
// engine/cpu/attention by float rounding only (summation order, FMA).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/attention_math.h"
#include "kernels/check.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = static_cast<int>(math::kTileKeys);  // keys per tile: one per lane
static_assert(kTile == 32, "the score phase maps one key to each lane");
constexpr int kPrefillRows = 16;
constexpr int kDecodeRows = 8;
constexpr int kMaxHeadDim = 256;

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
        *reinterpret_cast<float4*>(kd) = *reinterpret_cast<const float4*>(&k[u][0]);
        *reinterpret_cast<float4*>(vd) = *reinterpret_cast<const float4*>(&v[u][0]);
      } else if constexpr (kType == kCacheF16) {
        widen_f16(k[u][0], kd);
        widen_f16(v[u][0], vd);
      } else {
        widen_q8(k[u], kd);
        widen_q8(v[u], vd);
      }
    }
  }

  static __device__ __forceinline__ void widen_f16(const uint4& raw, float* dst) {
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
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
__global__ void __launch_bounds__(kThreads) attention_kernel(AttnParams p) {
  static_assert(kRows % kWarps == 0, "each warp owns whole rows");
  constexpr int kRowsPerWarp = kRows / kWarps;
  constexpr int kMaxD = kD ? kD : kMaxHeadDim;
  constexpr int kAcc = kRows * kMaxD / kThreads;  // accumulator elements per thread (at most)
  static_assert(kRows * 32 % kThreads == 0, "every head_dim gives whole accumulators per thread");
  // When head_dim divides kThreads every accumulator of a thread has the same column.
  constexpr int kDiv = kD ? kD : 1;  // kD, never 0 in an expression
  constexpr bool kSameColumn = kD != 0 && kThreads % kDiv == 0;

  extern __shared__ __align__(16) float smem[];
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
      float s[kRowsPerWarp];
#pragma unroll
      for (int k = 0; k < kRowsPerWarp; ++k) s[k] = 0.0f;
      const float* krow = Ks + lane * (D + 4);
#pragma unroll 4
      for (int d = 0; d < D; d += 4) {
        const float4 k4 = *reinterpret_cast<const float4*>(krow + d);
#pragma unroll
        for (int k = 0; k < kRowsPerWarp; ++k) {
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

    // Values: acc[a] is element tid + 256 a of the kRows × D accumulator.
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

// The checks both launchers share; fills `p` and `type`.
bool prepare(const AttentionArgs& a, const char* what, AttnParams* p, int* type, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = std::string(what) + ": " + why;
    return false;
  };
  if (a.head_dim == 0 || a.head_dim % 32 != 0 || a.head_dim > kMaxHeadDim)
    return fail("head_dim must be a multiple of 32 up to 256");
  if (a.n_head_kv == 0 || a.n_head == 0 || a.n_head % a.n_head_kv != 0)
    return fail("n_head must be a positive multiple of n_head_kv");
  if (!a.q || !a.out || !a.k || !a.v || !a.d_pos) return fail("null pointer");
  if (a.T > 0xFFFFFFFFu / a.n_head) return fail("too many queries in one call");
  std::size_t align = 16;
  switch (a.kv_type) {
    case GgmlType::f32: *type = kCacheF32; break;
    case GgmlType::f16: *type = kCacheF16; break;
    case GgmlType::q8_0: *type = kCacheQ8, align = 2; break;
    default: return fail("KV cache type must be f32, f16 or q8_0");
  }
  if (reinterpret_cast<std::uintptr_t>(a.k) % align || reinterpret_cast<std::uintptr_t>(a.v) % align ||
      a.row_bytes % align)
    return fail("K/V cache rows must be " + std::to_string(align) + "-byte aligned");
  p->q = a.q, p->out = a.out;
  p->k = static_cast<const unsigned char*>(a.k), p->v = static_cast<const unsigned char*>(a.v);
  p->row_bytes = a.row_bytes;
  p->n_head = a.n_head, p->n_head_kv = a.n_head_kv, p->head_dim = a.head_dim;
  p->group = a.n_head / a.n_head_kv;
  p->T = static_cast<std::uint32_t>(a.T);
  p->d_pos = a.d_pos, p->max_positions = a.max_positions;
  p->scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim));  // as engine/cpu/attention.cpp
  p->partials = nullptr;
  return true;
}

template <int kType, int kD, int kRows, bool kDecode>
bool launch(const AttnParams& p, dim3 grid, cudaStream_t stream, const char* what, std::string* error) {
  auto kernel = attention_kernel<kType, kD, kRows, kDecode>;
  const std::size_t bytes = smem_floats(kRows, static_cast<int>(p.head_dim)) * sizeof(float);
  if (bytes > 48 * 1024 &&
      !check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
             what, error))
    return false;
  kernel<<<grid, kThreads, bytes, stream>>>(p);
  return check(cudaGetLastError(), what, error);
}

template <int kRows, bool kDecode>
bool dispatch(const AttnParams& p, int type, dim3 grid, cudaStream_t stream, const char* what, std::string* error) {
  switch (type * 1000 + static_cast<int>(p.head_dim == 64 || p.head_dim == 128 ? p.head_dim : 0)) {
    case kCacheF32 * 1000 + 64: return launch<kCacheF32, 64, kRows, kDecode>(p, grid, stream, what, error);
    case kCacheF32 * 1000 + 128: return launch<kCacheF32, 128, kRows, kDecode>(p, grid, stream, what, error);
    case kCacheF32 * 1000: return launch<kCacheF32, 0, kRows, kDecode>(p, grid, stream, what, error);
    case kCacheF16 * 1000 + 64: return launch<kCacheF16, 64, kRows, kDecode>(p, grid, stream, what, error);
    case kCacheF16 * 1000 + 128: return launch<kCacheF16, 128, kRows, kDecode>(p, grid, stream, what, error);
    case kCacheF16 * 1000: return launch<kCacheF16, 0, kRows, kDecode>(p, grid, stream, what, error);
    case kCacheQ8 * 1000 + 64: return launch<kCacheQ8, 64, kRows, kDecode>(p, grid, stream, what, error);
    case kCacheQ8 * 1000 + 128: return launch<kCacheQ8, 128, kRows, kDecode>(p, grid, stream, what, error);
    default: return launch<kCacheQ8, 0, kRows, kDecode>(p, grid, stream, what, error);
  }
}

}  // namespace

bool attention_prefill(const AttentionArgs& a, cudaStream_t stream, std::string* error) {
  if (a.T == 0) return true;
  AttnParams p;
  int type = 0;
  if (!prepare(a, "attention_prefill", &p, &type, error)) return false;
  const std::size_t tiles = (a.T * p.group + kPrefillRows - 1) / kPrefillRows;
  if (tiles > 0x7FFFFFFFu || a.n_head_kv > 65535) {
    if (error) *error = "attention_prefill: grid too large";
    return false;
  }
  const dim3 grid(static_cast<unsigned>(tiles), a.n_head_kv);
  return dispatch<kPrefillRows, false>(p, type, grid, stream, "attention_prefill launch", error);
}

std::size_t attention_decode_workspace(std::uint32_t n_head, std::uint32_t head_dim) {
  return std::size_t{n_head} * kAttentionSplits * (std::size_t{head_dim} + 2) * sizeof(float);
}

bool attention_decode(const AttentionArgs& a, void* workspace, cudaStream_t stream, std::string* error) {
  AttnParams p;
  int type = 0;
  if (!prepare(a, "attention_decode", &p, &type, error)) return false;
  if (a.T != 1 || !workspace || a.n_head_kv > 65535) {
    if (error) *error = "attention_decode: needs T = 1 and a workspace";
    return false;
  }
  p.partials = static_cast<float*>(workspace);
  const dim3 grid((p.group + kDecodeRows - 1) / kDecodeRows, a.n_head_kv, kAttentionSplits);
  if (!dispatch<kDecodeRows, true>(p, type, grid, stream, "attention_decode launch", error)) return false;
  attention_combine_kernel<<<a.n_head, kCombineThreads, 0, stream>>>(
      p.partials, a.out, static_cast<int>(a.head_dim), static_cast<int>(kAttentionSplits));
  return check(cudaGetLastError(), "attention_combine launch", error);
}

}  // namespace ponder::cuda
