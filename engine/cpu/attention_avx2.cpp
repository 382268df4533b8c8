// AVX2 + FMA + F16C attention kernel (compiled with -mavx2 -mfma -mf16c; called only when the
// CPU has them): attention_kernel.h's tile over 8-lane vectors, its SwiGLU product, and the
// F16 rows of the KV cache. See attention.h for what it computes and attention_internal.h for the
// rules of this file.
#include <immintrin.h>

#include "engine/cpu/attention_kernel.h"
#include "engine/cpu/attention_lanes8.h"

namespace ponder::cpu::detail {

void attention_tile_avx2(const AttentionArgs& a, const AttentionTile& tile, float* workspace) {
  attention_tile<AttentionAvx2, 3>(a, tile, workspace);
}

void attention_chunk_avx2(const AttentionArgs& a, std::size_t j_begin, std::size_t j_end, std::size_t prefetch_end,
                          float* partial, float* workspace) {
  attention_chunk<AttentionAvx2, 3>(a, j_begin, j_end, prefetch_end, partial, workspace);
}

void attention_merge_avx2(const AttentionArgs& a, const float* partials, std::size_t chunks) {
  attention_merge<AttentionAvx2>(a, partials, chunks);
}

void swiglu_avx2(float* g, const float* u, std::size_t n) { swiglu_lanes<AttentionAvx2>(g, u, n); }

void f16_row_avx2(const float* src, std::uint16_t* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) dst[i] = static_cast<std::uint16_t>(_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace ponder::cpu::detail
