// AVX-512 kernels for matmul (F, BW, VL, DQ and VNNI; compiled with those flags plus FMA and F16C,
// called only when the CPU has them). See matmul.h for the numerics and matmul_internal.h for the
// rules of this file. The K-quants (Q4_K, Q5_K, Q6_K) have no 512-bit kernel yet and run the AVX2
// ones (matmul_avx2.cpp): same numbers either way.
//
// The same source is compiled a second time with PONDER_SIMD_EMU defined, against SIMDe's
// portable definitions of the AVX-512 intrinsics, as `block_avx512_emulated`: the tests run that
// copy on CPUs without AVX-512, so every line below is checked against the scalar reference on
// any x86-64 with AVX2. The few intrinsics SIMDe 0.7 lacks are written out below from the two
// 256-bit halves (conversions and widenings, exact either way).
//
// Shapes, as the AVX2 kernels (split() in matmul.cpp cuts the work the same way for both):
// - float types, prefill: tiles of R <= 4 weight rows x C <= 3 activation rows, 16 lanes;
//   decode: two rows side by side, four accumulators each.
// - Q8_0 / Q4_0: two blocks of 32 per 512-bit register (blocks b and b + 1 in the low and high
//   halves), integer dot products by VPDPBUSD. Prefill: one weight row x C <= 4 activation rows,
//   one accumulator per output; decode: two rows side by side, two accumulators per row (the
//   block pairs alternate between them).
// Each output's accumulators are updated by the same instructions in the same order whatever the
// tile shape, so a prefill's Y[t, n] does not depend on its tile or thread; decode (T = 1) has its
// own sequences.
#if defined(PONDER_SIMD_EMU)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#include <cstring>

#include "engine/cpu/matmul_internal.h"

namespace ponder::cpu::detail {
namespace {

// ---- Helpers: those SIMDe 0.7 lacks are built from the 256-bit halves under PONDER_SIMD_EMU ----

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

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

// Sixteen F16 / BF16 values at p widened to float (exact).
inline __m512 widen16_f16(const unsigned char* p) {
#if defined(PONDER_SIMD_EMU)
  return join256_ps(_mm256_cvtph_ps(load128(p)), _mm256_cvtph_ps(load128(p + 16)));
#else
  return _mm512_cvtph_ps(load256(p));
#endif
}

inline __m512 widen16_bf16(const unsigned char* p) {
#if defined(PONDER_SIMD_EMU)
  const __m256i lo = _mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16);
  const __m256i hi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p + 16)), 16);
  return _mm512_castsi512_ps(join256(lo, hi));
#else
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p)), 16));
#endif
}

// The 16 lanes summed in a fixed order: the halves added, then 8 -> 4 -> 2 -> 1.
inline float hsum(__m512 v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float half(const unsigned char* p) {
  unsigned short h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// a in lanes 0-7, b in lanes 8-15: the scales of a pair of blocks.
inline __m512 pair_ps(float a, float b) { return join256_ps(_mm256_set1_ps(a), _mm256_set1_ps(b)); }

// ---- F32 / F16 / BF16: widen 16 weights at a time, float FMAs ----

template <GgmlType Ty>
inline __m512 load16(const unsigned char* row, std::size_t k) {
  if constexpr (Ty == GgmlType::f32)
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  else if constexpr (Ty == GgmlType::f16)
    return widen16_f16(row + 2 * k);
  else
    return widen16_bf16(row + 2 * k);
}

template <GgmlType Ty>
inline float load1(const unsigned char* row, std::size_t k) {
  if constexpr (Ty == GgmlType::f32) {
    float f;
    std::memcpy(&f, row + 4 * k, 4);
    return f;
  } else if constexpr (Ty == GgmlType::f16) {
    return half(row + 2 * k);
  } else {
    unsigned short h;
    std::memcpy(&h, row + 2 * k, 2);
    const unsigned bits = static_cast<unsigned>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
}

// Prefill: R <= 4 weight rows x C <= 3 activation rows, one 16-lane accumulator per output; the
// last K % 16 elements one by one.
template <GgmlType Ty, int R, int C>
void float_tile(const MatmulArgs& a, std::size_t n, std::size_t t) {
  const unsigned char* w[R];
  const float* x[C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) w[r] = a.w + (n + r) * a.w_row_bytes;
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) x[c] = a.x + (t + c) * a.K;
  __m512 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  const std::size_t K = a.K;
  std::size_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 xv[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) xv[c] = _mm512_loadu_ps(x[c] + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 wv = load16<Ty>(w[r], k);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      float s = hsum(acc[r][c]);
      for (std::size_t kk = k; kk < K; ++kk) s += load1<Ty>(w[r], kk) * x[c][kk];
      a.y[(t + c) * a.N + n + r] = s;
    }
}

// Decode streams the weights: prefetch this far ahead of the loads.
constexpr std::size_t kPrefetchAhead = 2048;

// Decode: P rows side by side (the two halves of a task), four accumulators per row over
// interleaved runs of 16; each row goes through the same instructions whatever P is.
template <GgmlType Ty, int P>
void float_gemv_rows(const MatmulArgs& a, const std::size_t* n) {
  const unsigned char* w[P];
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p) w[p] = a.w + n[p] * a.w_row_bytes;
  const float* x = a.x;
  const std::size_t K = a.K;
  constexpr std::size_t kBytes = Ty == GgmlType::f32 ? 4 : 2;
  __m512 acc[P][4];
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = acc[p][2] = acc[p][3] = _mm512_setzero_ps();
  std::size_t k = 0;
  for (; k + 64 <= K; k += 64) {
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (std::size_t off = 0; off < 64 * kBytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(w[p] + kBytes * k + off) + kPrefetchAhead, _MM_HINT_T0);
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u)
        acc[p][u] = _mm512_fmadd_ps(load16<Ty>(w[p], k + 16 * u), _mm512_loadu_ps(x + k + 16 * u), acc[p][u]);
  }
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p) {
    std::size_t kk = k;
    for (; kk + 16 <= K; kk += 16) acc[p][0] = _mm512_fmadd_ps(load16<Ty>(w[p], kk), _mm512_loadu_ps(x + kk), acc[p][0]);
    float s = hsum(_mm512_add_ps(_mm512_add_ps(acc[p][0], acc[p][1]), _mm512_add_ps(acc[p][2], acc[p][3])));
    for (; kk < K; ++kk) s += load1<Ty>(w[p], kk) * x[kk];
    a.y[n[p]] = s;
  }
}

template <GgmlType Ty, int R>
void float_rows(const MatmulArgs& a, std::size_t n, std::size_t t0, std::size_t t1) {
  std::size_t t = t0;
  for (; t + 3 <= t1; t += 3) float_tile<Ty, R, 3>(a, n, t);
  switch (t1 - t) {
    case 2: float_tile<Ty, R, 2>(a, n, t); break;
    case 1: float_tile<Ty, R, 1>(a, n, t); break;
    default: break;
  }
}

template <GgmlType Ty>
void float_block(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  if (a.T == 1) {  // decode: the first half of the rows beside the second half
    const std::size_t half_rows = (n1 - n0) / 2;
    for (std::size_t i = 0; i < half_rows; ++i) {
      const std::size_t rows[2] = {n0 + i, n0 + half_rows + i};
      float_gemv_rows<Ty, 2>(a, rows);
    }
    if ((n1 - n0) % 2) {
      const std::size_t last[1] = {n1 - 1};
      float_gemv_rows<Ty, 1>(a, last);
    }
    return;
  }
  std::size_t n = n0;
  for (; n + 4 <= n1; n += 4) float_rows<Ty, 4>(a, n, t0, t1);
  switch (n1 - n) {
    case 3: float_rows<Ty, 3>(a, n, t0, t1); break;
    case 2: float_rows<Ty, 2>(a, n, t0, t1); break;
    case 1: float_rows<Ty, 1>(a, n, t0, t1); break;
    default: break;
  }
}

// ---- Q8_0 / Q4_0: pairs of blocks, VPDPBUSD ----

inline const BlockQ8x32* xrow(const MatmulArgs& a, std::size_t t) {
  return reinterpret_cast<const BlockQ8x32*>(static_cast<const unsigned char*>(a.xq) + t * a.xq_row_bytes);
}

// The quantized activations of blocks b and b + 1 (Two) or of block b alone with zeros above
// (the last block of an odd count), and their scales in the same halves.
template <bool Two>
inline __m512i x_pair(const BlockQ8x32* x, std::size_t b) {
  return join256(load256(x[b].qs), Two ? load256(x[b + 1].qs) : _mm256_setzero_si256());
}
template <bool Two>
inline __m512 xd_pair(const BlockQ8x32* x, std::size_t b) {
  return pair_ps(x[b].d, Two ? x[b + 1].d : 0.0f);
}

// Q8_0: 34-byte blocks (f16 d, 32 x int8). VPDPBUSD multiplies unsigned by signed bytes, so as
// the AVX2 kernel: |w| times x with w's sign, each lane the exact sum of four products.
struct Q8_0 {
  static constexpr std::size_t kBytes = 34;
  template <bool Two, int C>
  static void pair(const unsigned char* w, std::size_t b, const BlockQ8x32* const* x, __m512* acc) {
    const __m512i qw = join256(load256(w + 2), Two ? load256(w + kBytes + 2) : _mm256_setzero_si256());
    const __m512i aw = _mm512_abs_epi8(qw);  // -128 -> 0x80, read as unsigned 128
    const __mmask64 neg = _mm512_movepi8_mask(qw);
    const __m512 dw = pair_ps(half(w), Two ? half(w + kBytes) : 0.0f);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m512i xq = x_pair<Two>(x[c], b);
      const __m512i sx = _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq);
      const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx);
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dw, xd_pair<Two>(x[c], b)), cvt_i32_f32(p), acc[c]);
    }
  }
};

// Q4_0: 18-byte blocks (f16 d, 16 bytes: weights 0-15 in the low nibbles, 16-31 in the high),
// value q - 8. The nibbles 0..15 go in unsigned; the -8 offset, -8 * (sum of the block's
// activations), starts lane 0 of the block's half.
struct Q4_0 {
  static constexpr std::size_t kBytes = 18;
  template <bool Two, int C>
  static void pair(const unsigned char* w, std::size_t b, const BlockQ8x32* const* x, __m512* acc) {
    const __m128i q0 = load128(w + 2);
    const __m128i q1 = Two ? load128(w + kBytes + 2) : _mm_setzero_si128();
    const __m512i qw = _mm512_and_si512(join256(_mm256_set_m128i(_mm_srli_epi16(q0, 4), q0),
                                                _mm256_set_m128i(_mm_srli_epi16(q1, 4), q1)),
                                        _mm512_set1_epi8(0x0F));
    const __m512 dw = pair_ps(half(w), Two ? half(w + kBytes) : 0.0f);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m512i off = _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, -8 * x[c][b].sum), 0x0100,
                                                 Two ? -8 * x[c][b + 1].sum : 0);
      const __m512i p = _mm512_dpbusd_epi32(off, qw, x_pair<Two>(x[c], b));
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dw, xd_pair<Two>(x[c], b)), cvt_i32_f32(p), acc[c]);
    }
  }
};

// Weight rows n[0..P) x activation rows [t, t + C), A accumulators per output: pair j of blocks
// (blocks 2j, 2j + 1) goes to accumulator j % A; an odd last block alone, to the next.
template <class Tile, int P, int C, int A>
void run_pairs(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
  const unsigned char* w[P];
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p) w[p] = a.w + n[p] * a.w_row_bytes;
  const BlockQ8x32* x[C];
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) x[c] = xrow(a, t + c);
  __m512 acc[P][A][C];
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
    for (int u = 0; u < A; ++u)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[p][u][c] = _mm512_setzero_ps();
  const std::size_t nb = a.K / 32;
  std::size_t b = 0;
  for (; b + 2 * A <= nb; b += 2 * A) {
    if constexpr (C == 1) {  // decode streams the rows: a line ahead per 64 bytes read
#pragma GCC unroll 4
      for (std::size_t off = 0; off < 2 * A * Tile::kBytes; off += 64)
#pragma GCC unroll 2
        for (int p = 0; p < P; ++p)
          _mm_prefetch(reinterpret_cast<const char*>(w[p] + b * Tile::kBytes + off) + kPrefetchAhead, _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (int u = 0; u < A; ++u)
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p)
        Tile::template pair<true, C>(w[p] + (b + 2 * u) * Tile::kBytes, b + 2 * u, x, acc[p][u]);
  }
  // What is left: fewer than 2A blocks, in pairs, then an odd one alone.
  int u = 0;
  for (; b + 2 <= nb; b += 2, ++u)
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) Tile::template pair<true, C>(w[p] + b * Tile::kBytes, b, x, acc[p][u]);
  if (b < nb)
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) Tile::template pair<false, C>(w[p] + b * Tile::kBytes, b, x, acc[p][u % A]);
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      __m512 s = acc[p][0][c];
      if constexpr (A == 2) s = _mm512_add_ps(s, acc[p][1][c]);
      a.y[(t + c) * a.N + n[p]] = hsum(s);
    }
}

template <class Tile>
void pairs_block(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  if (a.T == 1) {  // decode: the first half of the rows beside the second half, two accumulators
    const std::size_t half_rows = (n1 - n0) / 2;
    for (std::size_t i = 0; i < half_rows; ++i) {
      const std::size_t rows[2] = {n0 + i, n0 + half_rows + i};
      run_pairs<Tile, 2, 1, 2>(a, rows, 0);
    }
    if ((n1 - n0) % 2) {
      const std::size_t last[1] = {n1 - 1};
      run_pairs<Tile, 1, 1, 2>(a, last, 0);
    }
    return;
  }
  for (std::size_t n = n0; n < n1; ++n) {
    const std::size_t row[1] = {n};
    std::size_t t = t0;
    for (; t + 4 <= t1; t += 4) run_pairs<Tile, 1, 4, 1>(a, row, t);
    switch (t1 - t) {
      case 3: run_pairs<Tile, 1, 3, 1>(a, row, t); break;
      case 2: run_pairs<Tile, 1, 2, 1>(a, row, t); break;
      case 1: run_pairs<Tile, 1, 1, 1>(a, row, t); break;
      default: break;
    }
  }
}

}  // namespace

#if defined(PONDER_SIMD_EMU)
void block_avx512_emulated(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
#else
void block_avx512(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
#endif
  switch (a.type) {
    case GgmlType::f32: float_block<GgmlType::f32>(a, n0, n1, t0, t1); break;
    case GgmlType::f16: float_block<GgmlType::f16>(a, n0, n1, t0, t1); break;
    case GgmlType::bf16: float_block<GgmlType::bf16>(a, n0, n1, t0, t1); break;
    case GgmlType::q8_0: pairs_block<Q8_0>(a, n0, n1, t0, t1); break;
    case GgmlType::q4_0: pairs_block<Q4_0>(a, n0, n1, t0, t1); break;
    default: block_avx2(a, n0, n1, t0, t1); break;  // the K-quants (see the top of this file)
  }
}

}  // namespace ponder::cpu::detail
