#pragma once
// The 8-lane vector path of attention_kernel.h (AVX2 + FMA + F16C intrinsics), for the files that
// include it: attention_avx2.cpp (16 registers) and attention_avx512.cpp (the same kernels with
// AVX-512's 32 registers). Include after the intrinsics header and attention_kernel.h. In an
// unnamed namespace on purpose, as attention_kernel.h.

namespace ponder::cpu::detail {
namespace {

struct AttentionAvx2 {
  using Vec = __m256;
  using Lanes8 = AttentionAvx2;
  static constexpr std::size_t kLanes = 8;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec set1(float f) { return _mm256_set1_ps(f); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec fnmadd(Vec a, Vec b, Vec c) { return _mm256_fnmadd_ps(a, b, c); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec round(Vec v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Vec pow2(Vec n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static Vec zero_below(Vec x, Vec y, float limit) {
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(limit), _CMP_LT_OQ), y);
  }
  static Vec widen_f16(const unsigned char* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static Vec widen_i8(const unsigned char* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static __m256 fold(Vec v) { return v; }
  static __m256 fold_max(Vec v) { return v; }
  static Vec neg_abs(Vec x) { return _mm256_or_ps(x, _mm256_set1_ps(-0.0f)); }
  static Vec div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
  static Vec select_nonneg(Vec x, Vec a, Vec b) {
    return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
  }
  static Vec visible(Vec p, std::size_t j, std::size_t seen) {
    const __m256i index = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(seen)), index)), p);
  }
};

}  // namespace
}  // namespace ponder::cpu::detail
