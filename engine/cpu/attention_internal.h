#pragma once
// Shared by attention.cpp and the per-ISA attention kernels: the unit of work and the kernel
// entry point. The same rule as matmul_internal.h: kernel files compiled with ISA flags use
// nothing from the standard library that could be instantiated; plain C++ and intrinsics only.
#include <cstddef>
#include <cstdint>

#include "engine/cpu/attention.h"

namespace ponder::cpu::detail {

/// Keys scored at once by the online softmax (a multiple of 16: the vector widths of the kernels).
constexpr std::uint32_t kAttentionKeyBlock = 64;
/// Query rows (query × head) of one tile at most (attention.cpp takes fewer where that leaves fewer
/// than 4 tasks per thread).
constexpr std::uint32_t kAttentionMaxRows = 128;

/// Decode (one query) from 128 keys of context takes chunks of its keys (attention_chunk), merged
/// in order: this many keys a chunk for a context of n_keys (whole key blocks, at most 64
/// chunks), 0 where it takes the tiles instead. It depends on n_keys only, so the output does not
/// depend on the thread count; each thread takes a run of consecutive chunks. (bench_attention,
/// 2 Zen 4 threads, every layer's F16 cache from memory, ms a layer: after 300 keys the tiles
/// 0.030-0.031, chunks 0.023-0.025; after 8,191 keys chunks of 512 handed out one at a time
/// 0.44-0.46, runs of chunks of 128 0.39.)
constexpr std::size_t attention_chunk_keys(std::size_t n_keys) {
  if (n_keys < 128) return 0;
  const std::size_t per = (n_keys + 63) / 64;
  return (per + kAttentionKeyBlock - 1) / kAttentionKeyBlock * kAttentionKeyBlock;
}

/// The cache line at p prefetched into L2, and the lines of `bytes` (> 0) bytes at p, each once
/// (a head's 256 bytes of an F16 row: 4 prefetches; 5 before, the last line twice: decode
/// attention after 8,191 keys, bench_attention medians 3-12% quicker, its best runs level). (By an
/// asm statement: g++ 12 dropped __builtin_prefetch / _mm_prefetch from attention_chunk's
/// lambdas, and nothing showed it.)
inline void prefetch_l2(const unsigned char* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht1 %0" : : "m"(*p));
#else
  (void)p;
#endif
}
inline void prefetch_bytes(const unsigned char* p, std::size_t bytes) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t last = (at + bytes - 1) & ~std::uintptr_t{63};
  for (std::uintptr_t line = at & ~std::uintptr_t{63}; line <= last; line += 64)
    prefetch_l2(reinterpret_cast<const unsigned char*>(line));
}

/// Floats of one chunk's partial result: D accumulators, the maximum and the sum of each head.
constexpr std::size_t attention_chunk_floats(std::size_t n_head, std::size_t head_dim) {
  return n_head * (head_dim + 2);
}

/// One task of the tiled path: query heads [head0, head0 + n_heads) of KV head `kv_head`
/// (n_heads ≤ kAttentionMaxRows) for queries [t0, t1), (t1 - t0) × n_heads ≤ kAttentionMaxRows.
struct AttentionTile {
  std::uint32_t kv_head, head0, n_heads;
  std::size_t t0, t1;
  std::size_t head_offset;  // bytes from the start of a cache row to KV head kv_head
};

/// Floats of workspace one call of an attention tile kernel needs.
std::size_t attention_tile_workspace(std::uint32_t head_dim);

/// The tile kernels (attention_kernel.h): compute the tile's output rows; `workspace` holds
/// attention_tile_workspace(head_dim) floats.
/// attention_avx2.cpp (compiled with -mavx2 -mfma -mf16c): needs head_dim % 8 == 0.
void attention_tile_avx2(const AttentionArgs& a, const AttentionTile& tile, float* workspace);
/// attention_avx2.cpp: decode over long contexts in chunks (attention_kernel.h's attention_chunk),
/// and the merge of the chunks' partial results into a.out.
void attention_chunk_avx2(const AttentionArgs& a, std::size_t j_begin, std::size_t j_end, std::size_t prefetch_end,
                          float* partial, float* workspace);
void attention_merge_avx2(const AttentionArgs& a, const float* partials, std::size_t chunks);
/// Tests: true makes the avx512 and amx paths take their 16-lane tiles on AMD CPUs too (where by
/// default attention takes the 8-lane tiles: attention.cpp), so that both kernels are checked on
/// any machine.
void set_wide_attention_everywhere(bool on);
/// swiglu (attention.h) on the avx2 path: attention_kernel.h's swiglu_lanes.
void swiglu_avx2(float* g, const float* u, std::size_t n);
/// rms_norm (rms_norm.h) on the vector paths: the same sums in the same order, the same bits.
void rms_norm_avx2(const float* x, const float* weight, float* out, std::size_t rows, std::size_t n, float eps);
/// rope and add_to (attention.h) on the vector paths: the same operations, the same bits.
void rope_avx2(float* x, std::uint32_t n_heads, std::uint32_t d, const float* cos, const float* sin, bool adjacent);
void add_to_avx2(float* x, const float* y, std::size_t n);
/// store_kv_row's F16 on the avx2 path (F16C, round to nearest even).
void f16_row_avx2(const float* src, std::uint16_t* dst, std::size_t n);
/// attention_avx512.cpp (compiled as matmul_avx512.cpp): needs head_dim % 16 == 0. Its copy
/// compiled against SIMDe (tests only: tests/engine/attention_avx512_emulated.cpp) runs on any CPU
/// with AVX2.
void attention_tile_avx512(const AttentionArgs& a, const AttentionTile& tile, float* workspace);
/// attention_avx512.cpp, native only: the 8-lane kernels of attention_avx2.cpp with AVX-512's 32
/// registers (6 query rows at a time, no accumulator on the stack), for CPUs where 16 lanes bring
/// no more arithmetic (attention.cpp).
void attention_tile_lanes8_avx512(const AttentionArgs& a, const AttentionTile& tile, float* workspace);
void attention_chunk_lanes8_avx512(const AttentionArgs& a, std::size_t j_begin, std::size_t j_end,
                                   std::size_t prefetch_end, float* partial, float* workspace);
void attention_merge_lanes8_avx512(const AttentionArgs& a, const float* partials, std::size_t chunks);
void attention_tile_avx512_emulated(const AttentionArgs& a, const AttentionTile& tile, float* workspace);

}  // namespace ponder::cpu::detail
