// Causal grouped-query attention over the KV cache (engine/cpu/attention.h defines the function):
// flash-attention style for prefill, split-K flash-decoding for decode, one kernel body for both.
//
// Work split. A block (kThreads = 256, 8 warps) owns one KV head g and kRows query rows of that
// group: the rows are the flattened (query t, head of the group) pairs i = t * group + j, so a
// block's rows share every K/V tile it loads (16 rows in prefill: e.g. 2 queries × 7 heads + 2
// rows of the next query; 8 in decode: the group's heads, the group split over blocks when it has
// more). Prefill: grid (row tiles, n_head_kv), the latest row tiles (most keys) first; each block
// walks keys [0, last row's position] in tiles of 32. Decode: grid (row tiles, n_head_kv,
// splits: kAttentionSplits, or up to 4× that for few KV heads, math::decode_splits): split s walks its share of the keys (math::decode_split, from the length
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
// query heads per block) plus n_head × splits × (head_dim + 2) floats of partials.
// Arithmetic is SIMT FMA (no tensor cores yet); F32 accumulation throughout. Results differ from
// engine/cpu/attention by float rounding only (summation order, FMA). Rows that see no key of a
// tile skip its dots, rows past the last query skip the value update (warp-uniform branches).
//
// Resources (ptxas, CUDA 13, sm_80 / 89 / 90a alike): __launch_bounds__(256, 2) caps registers at
// 128 — head_dim 128: F16 prefill ~120, decode ~80; F32 ~125 / ~99; Q8_0 128 / 128 (the raw block,
// 17 registers each for K and V, stays in flight). No spills but Q8_0 at a run-time head_dim
// (not 64/128) in decode (28-48 bytes). Dynamic shared memory: smem_floats() — head_dim 128:
// 43.6 KB prefill, 38.5 KB decode; 256: 84.7 / 75.4 KB (limit raised once per kernel).
//
// Known limits, to measure on a GPU: the score phase reads the K tile from shared memory once per
// warp (8×), and decode is bound by that and by SIMT arithmetic rather than HBM at large groups;
// decode's grid is at least 256 blocks (math::decode_splits), about 2 per SM. Tensor-core
// (mma.sync) scores and values are the next step.
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/attention_kernels.cuh"
#include "kernels/check.cuh"
#include "kernels/ops.h"

namespace ponder::cuda {
namespace {

using namespace attention_detail;

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
  // Above 48 KiB (head_dim > 128 only) a kernel needs its limit raised, once per kernel (at the
  // first call: a backend that captures graphs should make one call of each shape before).
  if (bytes > 48 * 1024) {
    static const cudaError_t raised = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
        static_cast<int>(smem_floats(kRows, kD ? kD : kMaxHeadDim) * sizeof(float)));
    if (!check(raised, what, error)) return false;
  }
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
  const std::size_t tiles = prefill_row_tiles(a.T, p.group);
  if (tiles > 0x7FFFFFFFu || a.n_head_kv > 65535) {
    if (error) *error = "attention_prefill: grid too large";
    return false;
  }
  const dim3 grid(static_cast<unsigned>(tiles), a.n_head_kv);
  return dispatch<kPrefillRows, false>(p, type, grid, stream, "attention_prefill launch", error);
}

std::size_t attention_decode_workspace(std::uint32_t n_head, std::uint32_t head_dim) {
  static_assert(kAttentionSplits == math::kMinDecodeSplits, "decode splits at least kAttentionSplits");
  return std::size_t{n_head} * math::kMaxDecodeSplits * (std::size_t{head_dim} + 2) * sizeof(float);
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
  const dim3 grid = decode_grid(p.group, a.n_head_kv);
  if (!dispatch<kDecodeRows, true>(p, type, grid, stream, "attention_decode launch", error)) return false;
  attention_combine_kernel<<<a.n_head, kCombineThreads, 0, stream>>>(
      p.partials, a.out, static_cast<int>(a.head_dim), static_cast<int>(grid.z));
  return check(cudaGetLastError(), "attention_combine launch", error);
}

}  // namespace ponder::cuda
