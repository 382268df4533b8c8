// AVX2 + FMA + F16C attention kernel (compiled with -mavx2 -mfma -mf16c; called only when the
// CPU has them): attention_kernel.h's tile over 8-lane vectors, its SwiGLU product, RMSNorm,
// RoPE, additions and the F16 rows of the KV cache. See attention.h for what it computes and
// attention_internal.h for the rules of this file.
#include <immintrin.h>

#include "engine/cpu/attention_kernel.h"
#include "engine/cpu/attention_lanes8.h"

namespace ponder::cpu::detail {

void attention_tile_avx2(const AttentionArgs& a, const AttentionTile& tile, float* workspace) {
  attention_tile<AttentionAvx2, 3, 4>(a, tile, workspace);
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

void rope_avx2(float* x, std::uint32_t n_heads, std::uint32_t d, const float* cos, const float* sin, bool adjacent) {
  const std::uint32_t half = d / 2;
  // The pairs (a[i * step], b[i * step]) from i on, one at a time: what the registers leave.
  auto turn = [&](float* a, float* b, std::size_t step, std::uint32_t i) {
    for (; i < half; ++i) {
      const float x0 = a[i * step], x1 = b[i * step];
      a[i * step] = x0 * cos[i] - x1 * sin[i];
      b[i * step] = x1 * cos[i] + x0 * sin[i];
    }
  };
  for (std::uint32_t h = 0; h < n_heads; ++h) {
    float* v = x + std::size_t{h} * d;
    std::uint32_t i = 0;
    if (adjacent) {
      // 4 pairs a register: (a, b) times (cos, cos), and (b, a) times (sin, sin), then a - and a +.
      for (; i + 4 <= half; i += 4) {
        const __m256 xv = _mm256_loadu_ps(v + 2 * i);
        const __m256 c = _mm256_castps128_ps256(_mm_loadu_ps(cos + i)), s = _mm256_castps128_ps256(_mm_loadu_ps(sin + i));
        const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        const __m256 cc = _mm256_permutevar8x32_ps(c, dup), ss = _mm256_permutevar8x32_ps(s, dup);
        const __m256 swapped = _mm256_permute_ps(xv, 0xB1);
        _mm256_storeu_ps(v + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(xv, cc), _mm256_mul_ps(swapped, ss)));
      }
      turn(v, v + 1, 2, i);
    } else {
      float* b = v + half;
      for (; i + 8 <= half; i += 8) {
        const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(b + i);
        const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
        _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
        _mm256_storeu_ps(b + i, _mm256_add_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x0, s)));
      }
      turn(v, b, 1, i);
    }
  }
}

void add_to_avx2(float* x, const float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) x[i] += y[i];
}

void f16_row_avx2(const float* src, std::uint16_t* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) dst[i] = static_cast<std::uint16_t>(_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace ponder::cpu::detail
