#pragma once
// SSE / AVX / F16C helpers shared by the kernel files (matmul_avx2.cpp, matmul_avx512.cpp). Include after
// the intrinsics header. In an unnamed namespace on purpose: each kernel file, compiled with its
// own ISA flags, gets its own copy (one inline copy merged across files by the linker could run
// AVX-512 instructions on an AVX2 machine).
#include <cstring>

namespace ponder::cpu::detail {
namespace {

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// An f16 at p, widened to float.
inline float half(const unsigned char* p) {
  unsigned short h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The 8 lanes summed in a fixed order: 8 -> 4 -> 2 -> 1.
inline float hsum(__m256 v) { return hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

// Q4_K / Q5_K scales: eight 6-bit scales and eight 6-bit mins from 12 bytes, returned as bytes
// 0..7 (scales) and 8..15 (mins): llama.cpp's rearrangement of the three words u0 u1 u2, lane by
// lane in one register (no trip through memory):
//   out0 = u0 & 0x3f..   out1 = (u2 & 0x0f..) | ((u0 >> 6) & 0x03..) << 4
//   out2 = u1 & 0x3f..   out3 = ((u2 >> 4) & 0x0f..) | ((u1 >> 6) & 0x03..) << 4
// `p` points at the 12 bytes; 16 are read (the next 4 are in the same block).
inline __m128i unpack_scales_k4(const unsigned char* p) {
  const __m128i v = load128(p);
  const __m128i A = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));  // u0 u2 u1 u2
  const __m128i B = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));  // u0 u0 u1 u1
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(A, _mm_setr_epi32(0, 0, 0, 4)),
                                    _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i high = _mm_and_si128(
      _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(B, 6), _mm_set1_epi32(0x03030303)), 4),
      _mm_setr_epi32(0, -1, 0, -1));
  return _mm_or_si128(low, high);
}

// The Q4_K / Q5_K mins of one super-block for one activation row, added into `mins` (four lanes):
// dmin * xd * m[j] * (sum of the activations of 32-block j). `scale` holds d * xd, dmin * xd in
// lanes 0 and 1; `m16` the eight mins as words; `bsums` the row's sums of each 16 activations.
inline __m128 add_mins_k4(__m128 mins, __m128 scale, __m128i m16, const std::int16_t* bsums) {
  const __m128i pairs = _mm_hadd_epi16(load128(bsums), load128(bsums + 8));  // |.| <= 4064
  return _mm_fmadd_ps(_mm_permute_ps(scale, _MM_SHUFFLE(1, 1, 1, 1)), _mm_cvtepi32_ps(_mm_madd_epi16(pairs, m16)),
                      mins);
}

}  // namespace
}  // namespace ponder::cpu::detail
