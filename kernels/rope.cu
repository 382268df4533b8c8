// The per-token work between the Q/K/V products and attention, fused into one kernel: bias add,
// per-head RMSNorm (Qwen3's q_norm / k_norm), RoPE, and the store of k and v into the KV cache.
//
// Work split: one warp per (token, head slot), the slots of a token being its n_head query heads,
// then its n_head_kv key heads, then its n_head_kv value heads; kWarps warps per block. Lane l
// holds elements l, l + 32, ... of its head (head_dim a multiple of 32, at most 256: ≤ 8 each), so
// a Q8_0 block of 32 is exactly one register of every lane: its amax is one warp reduction.
// RoPE pairs elements that live in other lanes (i and i + half, or 2i and 2i + 1), so the head goes
// through a per-warp row of shared memory for the rotation; each lane rotates whole pairs, reading
// and writing only its own pairs (no barrier but __syncwarp between the phases).
//
// Memory traffic: q, k, v read once and q written once (F32), the biases / norm weights / inverse
// frequencies (small, cached), and one K and one V row slice written per (token, KV head) in the
// cache type. Tiny next to the matrix products around it; the point is one launch instead of five.
//
// Rounding follows engine/cpu/cpu_backend.cpp so that the CPU and GPU caches can agree bit for bit:
// the angle pos * inv_freq and its sin/cos in double, scaled by rope_scale in double, rounded to
// float; the rotation x0*c - x1*s with separately rounded products (__fmul_rn: no FMA contraction,
// as GCC compiles the CPU code); RMSNorm's sum of squares in double, x * scale * w in float. The
// one difference: QkvArgs carries rope_scale as a float, the CPU backend keeps it as a double.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/check.cuh"
#include "kernels/ops.h"
#include "kernels/rope_kernels.cuh"

namespace ponder::cuda {
namespace {

using namespace rope_detail;

}  // namespace

bool qkv_rope_store(const QkvArgs& a, cudaStream_t stream, std::string* error) {
  if (a.T == 0) return true;
  if (a.head_dim == 0 || a.head_dim % 32 != 0 || a.head_dim > kMaxHeadDim || a.n_head == 0 ||
      a.n_head_kv == 0 || !a.q || !a.k || !a.v || !a.inv_freq || !a.d_pos || !a.k_cache || !a.v_cache) {
    if (error) *error = "qkv_rope_store: bad arguments (head_dim must be a multiple of 32 up to 256)";
    return false;
  }
  int type;
  switch (a.kv_type) {
    case GgmlType::f32: type = kCacheF32; break;
    case GgmlType::f16: type = kCacheF16; break;
    case GgmlType::q8_0: type = kCacheQ8; break;
    default:
      if (error) *error = "qkv_rope_store: KV cache type must be f32, f16 or q8_0";
      return false;
  }
  RopeParams p{};
  p.q = a.q, p.k = a.k, p.v = a.v, p.bq = a.bq, p.bk = a.bk, p.bv = a.bv;
  p.q_norm = a.q_norm, p.k_norm = a.k_norm, p.eps = a.eps, p.inv_freq = a.inv_freq;
  p.rope_scale = a.rope_scale, p.adjacent = a.adjacent_pairs;
  p.n_head = a.n_head, p.n_head_kv = a.n_head_kv, p.head_dim = a.head_dim;
  const std::size_t slots = a.T * (std::size_t{a.n_head} + 2 * std::size_t{a.n_head_kv});
  if (slots > 0xFFFFFFFFu) {
    if (error) *error = "qkv_rope_store: too many tokens in one call";
    return false;
  }
  p.slots = static_cast<std::uint32_t>(slots);
  p.d_pos = a.d_pos;
  p.k_cache = static_cast<unsigned char*>(a.k_cache), p.v_cache = static_cast<unsigned char*>(a.v_cache);
  p.row_bytes = a.row_bytes;
  const unsigned blocks = static_cast<unsigned>((slots + kWarps - 1) / kWarps);
  switch (type) {
    case kCacheF32: qkv_rope_store_kernel<kCacheF32><<<blocks, 32 * kWarps, 0, stream>>>(p); break;
    case kCacheF16: qkv_rope_store_kernel<kCacheF16><<<blocks, 32 * kWarps, 0, stream>>>(p); break;
    default: qkv_rope_store_kernel<kCacheQ8><<<blocks, 32 * kWarps, 0, stream>>>(p); break;
  }
  return check(cudaGetLastError(), "qkv_rope_store launch", error);
}

}  // namespace ponder::cuda
