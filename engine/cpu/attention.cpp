#include "engine/cpu/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "engine/cpu/attention_internal.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/matmul_internal.h"

namespace ponder::cpu {
namespace detail {

std::size_t attention_tile_workspace(std::uint32_t head_dim) {
  // K and V blocks widened to float, the scores, the accumulators, and m and l of each row.
  return 2 * std::size_t{kAttentionKeyBlock} * head_dim + std::size_t{kAttentionMaxRows} * kAttentionKeyBlock +
         std::size_t{kAttentionMaxRows} * head_dim + 2 * kAttentionMaxRows;
}

namespace {

std::atomic<bool> g_wide_everywhere{false};

// The portable path for query t, head h: each key's head slice widened by the reference
// dequantizer; an online softmax over blocks of keys. `ws`: kAttentionKeyBlock + 2 head_dim floats.
void attention_row_portable(const AttentionArgs& a, std::size_t t, std::uint32_t h, float* ws) {
  const std::size_t D = a.head_dim;
  const std::uint32_t g = h / (a.n_head / a.n_head_kv);
  const std::size_t head_offset = row_bytes(a.kv_type, std::size_t{g} * D);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float* q = a.q + (t * a.n_head + h) * D;
  float* scores = ws;
  float* acc = scores + kAttentionKeyBlock;
  float* row = acc + D;  // one key's (or value's) head slice
  std::fill(acc, acc + D, 0.0f);
  float m = -std::numeric_limits<float>::infinity(), sum = 0;
  const std::uint32_t n_keys = a.first_pos + static_cast<std::uint32_t>(t) + 1;
  for (std::uint32_t j0 = 0; j0 < n_keys; j0 += kAttentionKeyBlock) {
    const std::uint32_t nb = std::min(kAttentionKeyBlock, n_keys - j0);
    float block_max = -std::numeric_limits<float>::infinity();
    for (std::uint32_t j = 0; j < nb; ++j) {
      dequantize(a.kv_type, a.k + (j0 + j) * a.row_bytes + head_offset, row, D, nullptr);
      float dot = 0;
      for (std::size_t i = 0; i < D; ++i) dot += q[i] * row[i];
      scores[j] = dot * scale;
      block_max = std::max(block_max, scores[j]);
    }
    const float new_max = std::max(m, block_max);
    const float correction = std::exp(m - new_max);  // 0 on the first block
    sum *= correction;
    for (std::size_t i = 0; i < D; ++i) acc[i] *= correction;
    for (std::uint32_t j = 0; j < nb; ++j) {
      const float p = std::exp(scores[j] - new_max);
      sum += p;
      dequantize(a.kv_type, a.v + (j0 + j) * a.row_bytes + head_offset, row, D, nullptr);
      for (std::size_t i = 0; i < D; ++i) acc[i] += p * row[i];
    }
    m = new_max;
  }
  float* out = a.out + (t * a.n_head + h) * D;
  for (std::size_t i = 0; i < D; ++i) out[i] = acc[i] / sum;
}

}  // namespace
}  // namespace detail

void detail::set_wide_attention_everywhere(bool on) { g_wide_everywhere.store(on, std::memory_order_relaxed); }

bool attention_supports(GgmlType kv_type, std::uint32_t head_dim) {
  switch (kv_type) {
    case GgmlType::f32: case GgmlType::f16: return head_dim > 0;
    case GgmlType::q8_0: return head_dim > 0 && head_dim % 32 == 0;
    default: return false;
  }
}

void attention(const AttentionArgs& a, ThreadPool* pool, std::vector<float>* workspace) {
  using namespace detail;
  const unsigned threads = pool ? pool->size() : 1;
  auto run = [&](std::size_t n_tasks, std::size_t per_thread, auto&& task) {
    if (workspace->size() < threads * per_thread) workspace->resize(threads * per_thread);
    float* base = workspace->data();
    auto fn = [&](std::size_t i, unsigned thread) { task(i, base + thread * per_thread); };
    if (pool)
      pool->parallel_for(n_tasks, fn);
    else
      for (std::size_t i = 0; i < n_tasks; ++i) fn(i, 0);
  };

#if defined(__x86_64__)
  if (active_isa() != Isa::portable && a.head_dim % 8 == 0) {
    // The AVX-512 kernel where the path has it and the heads are whole vectors of 16, except on
    // AMD CPUs: Zen 4 runs a 512-bit FMA as two 256-bit halves, so 16 lanes bring no more
    // arithmetic, while each score's lane sum then takes a 16 -> 8 fold on top (with heads of 128,
    // a score is 8 FMAs of 16 lanes against 16 of 8). A 2,048-token Q8_0 prefill of the 1.5B
    // shape there: 151-157 t/s with the 16-lane kernel, 170-178 with the 8-lane one. (Intel's
    // cores with two 512-bit FMA units are not measured.)
    static const bool amd = __builtin_cpu_is("amd");
    const bool wide = !amd || g_wide_everywhere.load(std::memory_order_relaxed);
    // The 8-lane kernels: AVX2's, or the same with AVX-512's 32 registers where the CPU has them.
    const bool lanes8_avx512 = active_isa() >= Isa::avx512 && detect_isa() >= Isa::avx512;
    // Decode over a long context: chunks of its keys (attention_chunk_keys), each over every head,
    // reading its rows of the cache in order (a task per KV head read each row's slices of the
    // other heads' lines apart, between widening blocks of keys into the workspace: ~0.8 ms per
    // layer after 8,192 tokens of the 1.5B shape on 2 Zen 4 threads, ~3x the F16 cache's read).
    // A task per thread, each a run of consecutive chunks (as even as whole chunks allow), its
    // rows prefetched a block ahead across the chunks of the run. 8-lane kernels on every vector
    // path (no 16-lane one is written for it).
    const std::size_t n_keys = std::size_t{a.first_pos} + 1, chunk_keys = attention_chunk_keys(n_keys);
    if (a.T == 1 && chunk_keys != 0 && a.n_head <= kAttentionMaxRows) {
      const std::size_t chunks = (n_keys + chunk_keys - 1) / chunk_keys;
      const std::size_t per_thread = attention_tile_workspace(a.head_dim);
      const std::size_t per_chunk = attention_chunk_floats(a.n_head, a.head_dim);
      if (workspace->size() < threads * per_thread + chunks * per_chunk)
        workspace->resize(threads * per_thread + chunks * per_chunk);
      float* partials = workspace->data() + threads * per_thread;
      const auto chunk = lanes8_avx512 ? attention_chunk_lanes8_avx512 : attention_chunk_avx2;
      const std::size_t runs = std::min<std::size_t>(threads, chunks);
      run(runs, per_thread, [&](std::size_t r, float* ws) {
        const std::size_t c0 = r * chunks / runs, c1 = (r + 1) * chunks / runs;
        const std::size_t end = std::min(n_keys, c1 * chunk_keys);
        // The run's first block of rows (the kernel prefetches the others a block ahead).
        for (std::size_t j = c0 * chunk_keys; j < std::min(end, c0 * chunk_keys + kAttentionKeyBlock); ++j)
          for (const unsigned char* row : {a.k + j * a.row_bytes, a.v + j * a.row_bytes})
            prefetch_bytes(row, a.row_bytes);
        for (std::size_t c = c0; c < c1; ++c)
          chunk(a, c * chunk_keys, std::min(n_keys, (c + 1) * chunk_keys), end, partials + c * per_chunk, ws);
      });
      (lanes8_avx512 ? attention_merge_lanes8_avx512 : attention_merge_avx2)(a, partials, chunks);
      return;
    }
    const AttentionTileFn kernel = active_isa() >= Isa::avx512 && a.head_dim % 16 == 0 && wide
                                       ? attention_kernel_for(active_isa())
                                   : lanes8_avx512 ? attention_tile_lanes8_avx512
                                                   : attention_tile_avx2;
    // Tiles: the query heads of a group (split in `parts` only when there would be fewer tasks
    // than threads, as in decode with few KV heads) × as many queries as fit kAttentionMaxRows.
    const std::uint32_t group = a.n_head / a.n_head_kv;
    std::uint32_t parts = (group + kAttentionMaxRows - 1) / kAttentionMaxRows, heads = 0;
    std::size_t per_tile = 0, tiles = 0;
    for (;; ++parts) {
      heads = (group + parts - 1) / parts;
      per_tile = std::max<std::size_t>(1, kAttentionMaxRows / heads);
      tiles = (a.T + per_tile - 1) / per_tile;
      if (heads == 1 || std::size_t{a.n_head_kv} * parts * tiles >= threads) break;
    }
    parts = (group + heads - 1) / heads;
    // Tiles of up to kAttentionMaxRows rows: each block of K and V is widened once per tile, so
    // larger tiles widen less (bench_attention, 2 threads, 512 queries after 3,584: 143-145
    // GFLOP/s with tiles of 32 rows, 152-153 with 128; after 15,872: 121-122 and 149-152). But
    // at least 4 tasks per thread where the queries allow: the causal work differs between
    // tiles, and claiming them evens it out.
    while (per_tile > 1 && std::size_t{a.n_head_kv} * parts * tiles < 4 * std::size_t{threads}) {
      per_tile = (per_tile + 1) / 2;
      tiles = (a.T + per_tile - 1) / per_tile;
    }
    const std::size_t per_tile_row = std::size_t{a.n_head_kv} * parts;
    // Causal work grows with the query index: the last tiles go first, so that the threads'
    // shares even out as they claim tasks.
    run(tiles * per_tile_row, attention_tile_workspace(a.head_dim), [&](std::size_t i, float* ws) {
      AttentionTile tile;
      const std::size_t tile_index = tiles - 1 - i / per_tile_row;
      tile.kv_head = static_cast<std::uint32_t>(i % per_tile_row / parts);
      tile.head0 = static_cast<std::uint32_t>(i % parts) * heads;
      tile.n_heads = std::min(heads, group - tile.head0);
      tile.t0 = tile_index * per_tile;
      tile.t1 = std::min(a.T, tile.t0 + per_tile);
      tile.head_offset = row_bytes(a.kv_type, std::size_t{tile.kv_head} * a.head_dim);
      kernel(a, tile, ws);
    });
    return;
  }
#endif
  run(a.T * a.n_head, kAttentionKeyBlock + 2 * std::size_t{a.head_dim}, [&](std::size_t i, float* ws) {
    attention_row_portable(a, i / a.n_head, static_cast<std::uint32_t>(i % a.n_head), ws);
  });
}

void swiglu(float* g, const float* u, std::size_t n) {
#if defined(__x86_64__)
  if (active_isa() != Isa::portable) {
    detail::swiglu_avx2(g, u, n);
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void rope(float* x, std::uint32_t n_heads, std::uint32_t d, const float* cos, const float* sin, bool adjacent) {
#if defined(__x86_64__)
  if (active_isa() != Isa::portable) {
    detail::rope_avx2(x, n_heads, d, cos, sin, adjacent);
    return;
  }
#endif
  const std::uint32_t half = d / 2;
  // The pairs (a[i * step], b[i * step]).
  auto turn = [&](float* a, float* b, std::size_t step) {
    for (std::uint32_t i = 0; i < half; ++i) {
      const float x0 = a[i * step], x1 = b[i * step];
      a[i * step] = x0 * cos[i] - x1 * sin[i];
      b[i * step] = x1 * cos[i] + x0 * sin[i];
    }
  };
  for (std::uint32_t h = 0; h < n_heads; ++h) {
    float* v = x + std::size_t{h} * d;
    if (adjacent)
      turn(v, v + 1, 2);
    else
      turn(v, v + half, 1);
  }
}

void add_to(float* x, const float* y, std::size_t n) {
#if defined(__x86_64__)
  if (active_isa() != Isa::portable) {
    detail::add_to_avx2(x, y, n);
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) x[i] += y[i];
}

void store_kv_row(GgmlType type, const float* src, void* dst, std::size_t n) {
#if defined(__x86_64__)
  if (type == GgmlType::f16 && active_isa() != Isa::portable) {
    detail::f16_row_avx2(src, static_cast<std::uint16_t*>(dst), n);
    return;
  }
#endif
  quantize(type, src, dst, n, nullptr);
}

}  // namespace ponder::cpu
