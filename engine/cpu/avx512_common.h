#pragma once
// Helpers of the AVX-512 kernel files (matmul_avx512.cpp, attention_avx512.cpp). Include after
// the intrinsics header; in an unnamed namespace, as kernel_common.h. Those SIMDe 0.7 lacks
// (the tests compile these files against SIMDe with PONDER_SIMD_EMU defined) are built from the
// two 256-bit halves there: conversions and widenings, exact either way.

namespace ponder::cpu::detail {
namespace {

inline __m256i high256(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }
inline __m512i join256(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
inline __m512 join256_ps(__m256 lo, __m256 hi) { return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1); }

inline __m512 cvt_i32_f32(__m512i v) {
#if defined(PONDER_SIMD_EMU)
  return join256_ps(_mm256_cvtepi32_ps(_mm512_castsi512_si256(v)), _mm256_cvtepi32_ps(high256(v)));
#else
  return _mm512_cvtepi32_ps(v);
#endif
}

// 32 unsigned bytes widened to words.
inline __m512i widen32_u8(__m256i v) {
#if defined(PONDER_SIMD_EMU)
  return join256(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(v)), _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1)));
#else
  return _mm512_cvtepu8_epi16(v);
#endif
}

// Sixteen F16 values at p widened to float (exact).
inline __m512 widen16_f16(const unsigned char* p) {
#if defined(PONDER_SIMD_EMU)
  return join256_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
                    _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16))));
#else
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#endif
}

// Sixteen int8 at p as floats (exact).
inline __m512 widen16_i8(const unsigned char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
#if defined(PONDER_SIMD_EMU)
  return join256_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))));
#else
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v));
#endif
}

// The two 256-bit halves added: 8 lanes whose sum is the 16 lanes' sum.
inline __m256 fold256(__m512 v) {
  return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

}  // namespace
}  // namespace ponder::cpu::detail
