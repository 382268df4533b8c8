// AVX2 + FMA + F16C attention kernel (compiled with -mavx2 -mfma -mf16c; called only when the
// CPU has them): attention_kernel.h's tile over 8-lane vectors, its SwiGLU product, RMSNorm and
// the F16 rows of the KV cache. See attention.h for what it computes and attention_internal.h
// for the rules of this file.
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

void rms_norm_avx2(const float* x, const float* weight, float* out, std::size_t rows, std::size_t n, float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = out + r * n;
    // rms_norm.cpp's 8 sums of every 8th square, in two registers of 4 doubles: the same sums
    // (a float's square is exact in double, so whether the compiler fuses the multiply and the
    // add changes nothing), the same bits.
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(xr + i);
      const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      lo = _mm256_add_pd(lo, _mm256_mul_pd(a, a));
      hi = _mm256_add_pd(hi, _mm256_mul_pd(b, b));
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, lo);
    _mm256_storeu_pd(lanes + 4, hi);
    for (std::size_t j = 0; i < n; ++i, ++j) lanes[j] += double(xr[i]) * double(xr[i]);
    const double sum =
        ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    const float scale = static_cast<float>(1.0 / __builtin_sqrt(sum / double(n) + double(eps)));
    const __m256 s = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
      _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), s), _mm256_loadu_ps(weight + i)));
    for (; i < n; ++i) yr[i] = xr[i] * scale * weight[i];
  }
}

void f16_row_avx2(const float* src, std::uint16_t* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) dst[i] = static_cast<std::uint16_t>(_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace ponder::cpu::detail
