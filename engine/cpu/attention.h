#pragma once
// Causal grouped-query attention of a chunk of new queries over a KV cache in host memory, with
// an online softmax over blocks of keys (memory O(context), never a T×T matrix):
//
//   out[t, h] = Σ_{j ≤ first_pos + t} softmax_j(q[t, h] · K[j, g] / √D) · V[j, g],   g = h / (H / H_kv)
//
// The cache holds one row per position: n_head_kv × head_dim elements of K (or V) in F32, F16 or
// Q8_0 (ggml's blocks of 32: an F16 scale and 32 int8; head_dim a multiple of 32, so no block
// straddles two heads). Every position the queries see must be written before the call.
//
// Paths (chosen by matmul's active_isa(), so force_isa() picks them for tests too):
// - portable: one task per (query, head); each key's head slice widened to float by the
//   reference dequantizer, float dot products, std::exp. The reference for the other path.
// - avx2 (AVX2 + FMA + F16C; head_dim a multiple of 8): one task per (KV head, tile of queries ×
//   the query heads of the group). Each block of K and V rows is widened to float once and used
//   by every query row of the tile, so a K/V row is read once per group, not once per head; 8-lane
//   FMAs and a polynomial exp (relative error ~2e-7). Each output row is computed by the same
//   instructions whatever tile or thread it lands in, so results do not depend on the thread
//   count. Differs from the portable path by float rounding only.
// - avx512 and amx (head_dim a multiple of 16; else as avx2): the same tiles in 16-lane vectors,
//   except on AMD CPUs, where the 8-lane ones are faster (attention.cpp): there the avx2 tiles,
//   compiled with AVX-512's 32 registers (6 query rows at a time; the same bits as avx2's).
// - Decode (T = 1) from 128 keys of context on the vector paths: fixed chunks of the keys
//   (attention_chunk_keys: 64 or more, by the context's length only), a run of consecutive chunks
//   per thread, every head of a chunk over its cache rows in order, merged in chunk order; 8-lane
//   kernels, with 32 registers where the CPU has AVX-512. The output does not depend on the
//   thread count either, but a decode row is then not the same bits as the same row inside a
//   prefill chunk (T > 1), which takes the tiles: the sums are grouped differently (float
//   rounding).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/cpu/thread_pool.h"
#include "engine/quant.h"

namespace ponder::cpu {

struct AttentionArgs {
  const float* q = nullptr;         // F32 [T][n_head][head_dim], RoPE applied
  float* out = nullptr;             // F32 [T][n_head][head_dim]
  const unsigned char* k = nullptr;  // K cache: position p's row at k + p * row_bytes
  const unsigned char* v = nullptr;  // V cache, same layout
  std::size_t row_bytes = 0;         // bytes of one position's row: n_head_kv × head_dim of kv_type
  GgmlType kv_type = GgmlType::f32;  // f32, f16 or q8_0
  std::uint32_t n_head = 0, n_head_kv = 0, head_dim = 0;  // n_head a multiple of n_head_kv
  std::uint32_t first_pos = 0;  // position of query 0: query t sees keys [0, first_pos + t]
  std::size_t T = 0;            // queries
};

/// True when `kv_type` can be read by attention with heads of `head_dim` elements.
bool attention_supports(GgmlType kv_type, std::uint32_t head_dim);

/// Computes `a.out`. Preconditions (not checked): attention_supports(a.kv_type, a.head_dim), T ≥ 1,
/// and the cache rows of positions [0, first_pos + T) written. `pool` null runs on the calling
/// thread only. `workspace`: scratch that grows as needed and is kept by the caller between calls
/// (not shared between concurrent calls).
void attention(const AttentionArgs& a, ThreadPool* pool, std::vector<float>* workspace);

/// The SwiGLU MLP's product, in place: g[i] = g[i] / (1 + e^-g[i]) * u[i], i < n. On the vector
/// paths with the attention kernels' exp (relative error ~2e-7; 0 where g[i] < -87, for a true
/// value below ~1e-36 in magnitude); portable: std::exp.
void swiglu(float* g, const float* u, std::size_t n);

/// RoPE: each of n_heads heads of d values at x (d even) turned by the angles whose cos and sin
/// are given (d / 2 of each): the pairs (v[i], v[i + d / 2]) (rotate-half: Qwen2, HF Llama) or,
/// with `adjacent`, (v[2 i], v[2 i + 1]) (GGUF Llama); a' = a cos - b sin, b' = b cos + a sin,
/// each product rounded (no fused multiply-add): the same bits on every path.
void rope(float* x, std::uint32_t n_heads, std::uint32_t d, const float* cos, const float* sin, bool adjacent);

/// x[i] += y[i], i < n (a residual, a bias): the same bits on every path.
void add_to(float* x, const float* y, std::size_t n);

/// A row of n values into a KV cache of `type` (F32, F16 or Q8_0): the bits quantize() writes
/// (engine/quant.h), F16 with the CPU's conversion instruction where it has one (the same bits for
/// every value but a NaN's payload: a NaN stays a NaN).
void store_kv_row(GgmlType type, const float* src, void* dst, std::size_t n);

}  // namespace ponder::cpu
