#pragma once
// What the kernel files (matmul_avx2.cpp, matmul_avx512.cpp) share: SSE / AVX / F16C helpers, and
// the drivers that are the same for every vector width (float decode and prefill tiles, the
// block types' decode pairing and prefill tiling), as templates over the file's vector path.
// Include after the intrinsics header. In an unnamed namespace on purpose: each kernel file,
// compiled with its own ISA flags, gets its own copy (one inline copy merged across files by the
// linker could run AVX-512 instructions on an AVX2 machine).
#include <cstring>

#include "engine/cpu/matmul_internal.h"

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
// lanes 0 and 1; `m16` the eight mins as words; `bsums` the row's sums of each 16 activations
// (added in pairs: words, |.| <= 4064).
inline __m128 add_mins_k4(__m128 mins, __m128 scale, __m128i m16, const std::int16_t* bsums) {
  const __m128i sums = _mm_hadd_epi16(load128(bsums), load128(bsums + 8));
  return _mm_fmadd_ps(_mm_permute_ps(scale, _MM_SHUFFLE(1, 1, 1, 1)), _mm_cvtepi32_ps(_mm_madd_epi16(sums, m16)), mins);
}

// ---- Pointers into a call's operands ----

// Row t of the quantized activations (B = BlockQ8x32 or BlockQ8x256).
template <class B>
inline const B* xrow(const MatmulArgs& a, std::size_t t) {
  return reinterpret_cast<const B*>(static_cast<const unsigned char*>(a.xq) + t * a.xq_row_bytes);
}

// Weight rows n[0..P) and quantized activation rows [t, t + C), as a block kernel's tile takes
// them.
template <class B, int P, int C>
struct TileRows {
  const unsigned char* w[P];
  const B* x[C];
  TileRows(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) w[p] = a.w + n[p] * a.w_row_bytes;
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) x[c] = xrow<B>(a, t + c);
  }
};

// ---- F32 / F16 / BF16 ----

// Element k of a row of the float type Ty, widened.
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

// The vector path V of a kernel file provides: Vec, kLanes, kDecodeRows (decode_rows),
// kDecodePrefetch (kPrefetchAhead), kDecodePrefetchL2 (kPrefetchL2Ahead as well), zero(),
// loadx(const float*), loadw<Ty>(row, k) (kLanes weights widened), fma(w, x, acc), add(a, b),
// hsum(Vec), and gemv_step<Ty>(row, x, k, acc[4]): acc[u] += weights and x at k + u kLanes, u < 4.

// Decode prefetches kPrefetchAhead and kPrefetchL2Ahead ahead (matmul_internal.h says why).

// A stream's line at p: prefetched kPrefetchAhead ahead into L1 and, with L2,
// kPrefetchL2Ahead ahead into L2.
template <bool L2>
inline void prefetch_ahead(const unsigned char* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchAhead, _MM_HINT_T0);
  if constexpr (L2) _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchL2Ahead, _MM_HINT_T1);
}

// Decode (C = 1 activation row) streams the rows: every line of a block of `bytes` at w,
// kPrefetchAhead ahead.
template <int C>
inline void prefetch_block(const unsigned char* w, int bytes) {
  if constexpr (C == 1)
#pragma GCC unroll 4
    for (int off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(w) + kPrefetchAhead + off, _MM_HINT_T0);
}

// Decode: each row read as one sequential stream (four neighbouring rows side by side are four
// short streams, which the prefetchers follow badly: F16 rows of 1536 ran at half the speed of
// rows of 8960), with A = 4 accumulators over interleaved runs of kLanes for the FMA latency, or
// A = 2 where 8 rows side by side give 16 chains anyway (32 registers). (Its rounding differs
// from the prefill tiles' one chain per output; T = 1 always comes here, whatever the thread
// count.) P rows side by side (from decode_rows: P sequential streams per thread, as the block
// kernels in decode); each row goes through the same instructions whatever P is, for a given A
// (float_decode picks A by the product, never by where a row falls).
template <class V, GgmlType Ty, int P, int A = 4>
void float_gemv_rows(const MatmulArgs& a, const std::size_t* n) {
  static_assert(A == 4 || A == 2);
  using Vec = typename V::Vec;
  const unsigned char* w[P];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) w[p] = a.w + n[p] * a.w_row_bytes;
  const float* x = a.x;
  const std::size_t K = a.K;
  Vec acc[P][A];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int u = 0; u < A; ++u) acc[p][u] = V::zero();
  constexpr std::size_t kBytes = Ty == GgmlType::f32 ? 4 : 2, kStep = 4 * V::kLanes;
  std::size_t k = 0;
  for (; k + kStep <= K; k += kStep) {
    if constexpr (V::kDecodePrefetch)
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
        for (std::size_t off = 0; off < kStep * kBytes; off += 64)
          prefetch_ahead<V::kDecodePrefetchL2>(w[p] + kBytes * k + off);
    if constexpr (A == 2) {
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        const Vec xv = V::loadx(x + k + u * V::kLanes);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p)
          acc[p][u % 2] = V::fma(V::template loadw<Ty>(w[p], k + u * V::kLanes), xv, acc[p][u % 2]);
      }
    } else {
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) V::template gemv_step<Ty>(w[p], x, k, acc[p]);
    }
  }
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) {
    std::size_t kk = k;
    for (; kk + V::kLanes <= K; kk += V::kLanes)
      acc[p][0] = V::fma(V::template loadw<Ty>(w[p], kk), V::loadx(x + kk), acc[p][0]);
    float s;
    if constexpr (A == 4)
      s = V::hsum(V::add(V::add(acc[p][0], acc[p][1]), V::add(acc[p][2], acc[p][3])));
    else
      s = V::hsum(V::add(acc[p][0], acc[p][1]));
    for (; kk < K; ++kk) s += load1<Ty>(w[p], kk) * x[kk];
    a.y[n[p]] = s;
  }
}

// Prefill: a tile of R <= 4 weight rows x C <= 3 activation rows, one accumulator per output (12
// at most): the C activation vectors are loaded, then each weight row's values are widened once
// and used C times; the last K % kLanes elements one by one. (2 x 4 tiles, 8 accumulators, one
// FMA chain each per step, were bound by the FMA latency: with AVX2, 44 GFLOP/s per core on F16
// in L2 against 79 for 4 x 3.)
template <class V, GgmlType Ty, int R, int C>
void float_tile(const MatmulArgs& a, std::size_t n, std::size_t t) {
  using Vec = typename V::Vec;
  const unsigned char* w[R];
  const float* x[C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) w[r] = a.w + (n + r) * a.w_row_bytes;
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) x[c] = a.x + (t + c) * a.K;
  Vec acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = V::zero();
  const std::size_t K = a.K;
  std::size_t k = 0;
  for (; k + V::kLanes <= K; k += V::kLanes) {
    Vec xv[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) xv[c] = V::loadx(x[c] + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const Vec wv = V::template loadw<Ty>(w[r], k);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = V::fma(wv, xv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      float s = V::hsum(acc[r][c]);
      for (std::size_t kk = k; kk < K; ++kk) s += load1<Ty>(w[r], kk) * x[c][kk];
      a.y[(t + c) * a.N + n + r] = s;
    }
}

template <class V, GgmlType Ty, int R>
void float_rows(const MatmulArgs& a, std::size_t n, std::size_t t0, std::size_t t1) {
  std::size_t t = t0;
  for (; t + 3 <= t1; t += 3) float_tile<V, Ty, R, 3>(a, n, t);
  switch (t1 - t) {
    case 2: float_tile<V, Ty, R, 2>(a, n, t); break;
    case 1: float_tile<V, Ty, R, 1>(a, n, t); break;
    default: break;
  }
}

// Decode (T = 1) of rows [n0, n1) as P sequential streams per thread: the task's rows cut into P
// runs, row i of each side by side: many(rows) takes rows[0..P); one(rows) each of the last
// (n1 - n0) % P rows. P = 4 where the kernel has the registers and the compute margin (the
// vector path's kDecodeRows, int8_decode's P; fewer or more for long rows: decode_rows_fitting,
// float_decode): in alternating windows on the 2-core Zen 4 VM
// (1.5B shape, 2 threads, no software prefetch either way), against P = 2, whole decode steps
// were faster by 2.6% (Q8_0) and 3.2% (F16) in its slow minutes, 1.5% (Q8_0) in its fast ones;
// the K = 8960 product (ffn_down) by 2-4% (Q8_0) and 12% (F16): X's pass serves 4 rows, so there
// is less of it in L1 per byte of weights. Q4_0 and the K-quants, compute-bound, were slower
// with 4 (their ffn_down by 4-14%).
template <int P, class Many, class One>
inline void decode_rows(std::size_t n0, std::size_t n1, Many many, One one) {
  const std::size_t run = (n1 - n0) / P;
  for (std::size_t i = 0; i < run; ++i) {
    std::size_t rows[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) rows[p] = n0 + p * run + i;
    many(rows);
  }
  for (std::size_t n = n0 + P * run; n < n1; ++n) {
    const std::size_t last[1] = {n};
    one(last);
  }
}

template <class V, GgmlType Ty>
void float_decode(const MatmulArgs& a, std::size_t n0, std::size_t n1) {
  // Rows too long for X to stay in L1 beside even one (decode_rows_fitting), where the vector
  // path has the registers: 8 rows side by side, so that X comes from L2 once per 8 rows. F16
  // ffn_down of the 1.5B shape (K = 8960: X 35 KB) in alternating windows on the 2-core Zen 4
  // VM: 45.5 -> 48.5 GB/s in its fast minutes (150 windows), whole decode steps +1.4%; the same
  // in its slow ones. (8 rows for every product lost: gate + up 49.0 -> 43.4 in fast minutes.)
  if constexpr (V::kDecodeRows == 4)
    if (!fits_beside_x(1, a.w_row_bytes, a.K * sizeof(float), a.l1_budget))
      return decode_rows<8>(
          n0, n1, [&](const std::size_t* rows) { float_gemv_rows<V, Ty, 8, 2>(a, rows); },
          [&](const std::size_t* rows) { float_gemv_rows<V, Ty, 1, 2>(a, rows); });
  decode_rows<V::kDecodeRows>(
      n0, n1, [&](const std::size_t* rows) { float_gemv_rows<V, Ty, V::kDecodeRows>(a, rows); },
      [&](const std::size_t* rows) { float_gemv_rows<V, Ty, 1>(a, rows); });
}

// Decode (float_decode) and prefill in tiles of 4 x 3: the AVX-512 path's prefill of the amx
// path's F16 / BF16 rows past its tiles (other float prefill is packed_block's).
template <class V, GgmlType Ty>
void float_block(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  if (a.T == 1) return float_decode<V, Ty>(a, n0, n1);
  // One tile of 3 activation rows at a time, swept over every weight row of the task: the 3
  // rows stay in L1 where they fit (K = 1536: 18 KB; K = 8960: 105 KB, in L2). With the weight
  // rows outside, the task's activation rows were re-read for each group of 4 weight rows; this
  // order made F16 prefill ~9% faster (pp512 on the 1.5B shape, medians of 4 alternated runs).
  for (std::size_t t = t0; t < t1; t += 3) {
    const std::size_t te = t + 3 < t1 ? t + 3 : t1;
    std::size_t n = n0;
    for (; n + 4 <= n1; n += 4) float_rows<V, Ty, 4>(a, n, t, te);
    switch (n1 - n) {
      case 3: float_rows<V, Ty, 3>(a, n, t, te); break;
      case 2: float_rows<V, Ty, 2>(a, n, t, te); break;
      case 1: float_rows<V, Ty, 1>(a, n, t, te); break;
      default: break;
    }
  }
}

// ---- Prefill of F32 / F16 / BF16 (and on AVX2 Q8_0 / Q4_0): widened weights, outer products ----
// Each task widens V::kPackedRows weight rows at a time (6 on AVX2, 12 on AVX-512) to float
// (exactly the reference dequantizer's values) into a buffer of its thread, then multiplies them
// by 2 kLanes activation rows at a time, taken from X packed by 16 rows (matmul_internal.h,
// MatmulArgs::xt): per k, two vectors of kLanes activation rows and kPackedRows broadcast
// weights, 2 kPackedRows FMAs into as many accumulators, no lane sums. Every
// output is one chain of FMAs over k = 0 .. K-1 in order (acc = fma(w[k], x[k], acc)), whatever
// path (AVX2 or AVX-512: the same bits), tile, task or thread computes it, and however many
// activation rows are prefilled together (a tile of at most kLanes rows takes one vector per k:
// the same chain per lane). Measured on a Zen 4 (AVX-512; not yet on an AVX2-only CPU): the F16
// tiles of either width reach ~100-105 GFLOP/s on one core in a standalone test, where
// float_tile (4 weight rows x 3 activation rows, a conversion per 8 weights in the loop, lane
// sums at the end) ran at 80-94 in bench_matmul; on two threads F32 prefill went from 82-99 to
// 180-188 GFLOP/s. For Q8_0 / Q4_0 on AVX2 the float products replace the 8-bit ones (sign,
// maddubs, madd, convert, scale, FMA per 32 products; 153-159 -> 172-190 GFLOP/s there with
// the AVX2 path) and take the activations as they are (no 8-bit rounding).

// The widened weight rows of a packed prefill group: by chunks of kChunk columns, chunk c of the
// group's R rows at w + c R kChunk, row j's values of it at + j kChunk. A tile's step k reads all
// R rows' values at one base and constant offsets (one stream, no pointer per row: with the rows
// kw apart, GCC kept the 12 row pointers in spilled registers and reloaded them every step).
constexpr std::size_t kChunk = 16;
constexpr std::size_t chunked_index(std::size_t k, std::size_t R) { return k / kChunk * R * kChunk + k % kChunk; }
// Floats that R rows of k columns take in chunks (the last chunk whole).
constexpr std::size_t chunked_floats(std::size_t k, std::size_t R) { return (k + kChunk - 1) / kChunk * R * kChunk; }

// Weight row `row` (K values of type Ty) as floats from out, in the group's chunks (R rows):
// value k at out[chunked_index(k, R)]. The reference dequantizer's values (Q8_0: d * q; Q4_0:
// d * (q - 8); both exact in float). The float types a vector (V::kLanes values, in one chunk)
// at a time: on AVX-512 a whole chunk per conversion (against two 256-bit ones: F16 products
// 1.025-1.030x in paired passes, bench/RESULTS.md); Q8_0 / Q4_0 (AVX2 only) 8 values at a time.
template <class V, GgmlType Ty>
void widen_row(const unsigned char* row, std::size_t K, float* out, std::size_t R) {
  auto at = [&](std::size_t k) { return out + chunked_index(k, R); };
  if constexpr (Ty == GgmlType::f32 || Ty == GgmlType::f16 || Ty == GgmlType::bf16) {
    static_assert(kChunk % V::kLanes == 0, "a vector of values stays in one chunk");
    std::size_t k = 0;
    for (; k + V::kLanes <= K; k += V::kLanes) V::store(at(k), V::template loadw<Ty>(row, k));
    for (; k < K; ++k) *at(k) = load1<Ty>(row, k);
  } else if constexpr (Ty == GgmlType::q8_0) {
    for (std::size_t b = 0; b < K / 32; ++b, row += 34) {
      const __m256 d = _mm256_set1_ps(half(row));
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 2 + 8 * i)));
        _mm256_storeu_ps(at(32 * b + 8 * i), _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
      }
    }
  } else {  // Q4_0: low nibbles are values 0..15, high nibbles 16..31
    const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (std::size_t b = 0; b < K / 32; ++b, row += 18) {
      const __m256 d = _mm256_set1_ps(half(row));
      const __m128i q = load128(row + 2);
      const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
      const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
      const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i)
        _mm256_storeu_ps(at(32 * b + 8 * i), _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[i]))));
    }
  }
}

// Lines a tile prefetches (to L2) while it runs: `rows` runs of `bytes` bytes, `stride` apart,
// from `p` (the weight rows the next widening reads), spread evenly over the tile's k steps.
struct PrefetchPlan {
  const char* p = nullptr;
  std::size_t stride = 0, bytes = 0, rows = 0;
  std::size_t lines() const { return rows * ((bytes + 63) / 64); }
};

// V::kPackedRows widened weight rows (at w, in chunks: widen_row; columns [k0, k0 + kw) of K)
// times H vectors of V::kLanes activation rows from xt (the tile's first group of 16; lane block
// h is rows h kLanes .. of the tile: group h kLanes / 16, offset h kLanes % 16), into
// sums[j][h kLanes + i]: from zero where `first`, else on from the sums there (the same chain).
template <class V, int H>
inline void packed_tile(const float* w, std::size_t kw, const float* xt, std::size_t K, std::size_t k0,
                        float (*sums)[32], bool first, PrefetchPlan pf) {
  using Vec = typename V::Vec;
  constexpr std::size_t L = V::kLanes;
  constexpr int R = V::kPackedRows;
  const float* xh[H];
#pragma GCC unroll 2
  for (int h = 0; h < H; ++h) xh[h] = xt + (h * L / 16) * 16 * K + (h * L) % 16 + 16 * k0;
  Vec acc[R][H];
#pragma GCC unroll 12
  for (int j = 0; j < R; ++j)
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h) acc[j][h] = first ? V::zero() : V::loadx(sums[j] + h * L);
  // Step k of the chunk at wc (k within it: kk).
  auto step = [&](const float* wc, std::size_t k, std::size_t kk) __attribute__((always_inline)) {
    Vec xv[H];
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h) xv[h] = V::loadx(xh[h] + 16 * k);
#pragma GCC unroll 12
    for (int j = 0; j < R; ++j) {
      const Vec wv = V::broadcast(wc + j * kChunk + kk);
#pragma GCC unroll 2
      for (int h = 0; h < H; ++h) acc[j][h] = V::fma(wv, xv[h], acc[j][h]);
    }
  };
  // The prefetches, as evenly as whole chunks allow (none in the tail's steps).
  const std::size_t chunks = kw / kChunk, tail = kw % kChunk;
  const std::size_t row_lines = (pf.bytes + 63) / 64;
  std::size_t left = pf.lines(), row_left = row_lines;
  const std::size_t per_chunk = chunks > 0 ? (left + chunks - 1) / chunks : 0;
  const char* line = pf.p;
  for (std::size_t c = 0; c < chunks; ++c) {
    for (std::size_t i = 0; i < per_chunk && left > 0; ++i, --left) {
      _mm_prefetch(line, _MM_HINT_T1);
      if (--row_left == 0) {
        pf.p += pf.stride;
        line = pf.p;
        row_left = row_lines;
      } else {
        line += 64;
      }
    }
    const float* wc = w + c * R * kChunk;
#pragma GCC unroll 16
    for (std::size_t kk = 0; kk < kChunk; ++kk) step(wc, c * kChunk + kk, kk);
  }
  for (std::size_t kk = 0; kk < tail; ++kk) step(w + chunks * R * kChunk, chunks * kChunk + kk, kk);
#pragma GCC unroll 12
  for (int j = 0; j < R; ++j)
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h) V::store(sums[j] + h * L, acc[j][h]);
}

// Where column k of a row of type Ty starts, in bytes (k on a block for the block types).
template <GgmlType Ty>
constexpr std::size_t packed_column_bytes(std::size_t k) {
  if constexpr (Ty == GgmlType::f32) return 4 * k;
  else if constexpr (Ty == GgmlType::f16 || Ty == GgmlType::bf16) return 2 * k;
  else if constexpr (Ty == GgmlType::q8_0) return k / 32 * 34;
  else return k / 32 * 18;  // Q4_0
}

// A prefill task: weight rows [n0, n1), activation rows [t0, t1) (t0 on a group of 16), in
// tiles of 2 kLanes activation rows. K goes in blocks (packed_k_block): per block, each group of
// kPackedRows weight rows is widened (its block of columns) and swept over all of the task's
// tiles, while the tiles prefetch what the next widening reads. Where K is one block, the sums
// stay in a tile's registers; else they wait between blocks in a buffer of the task's, and each
// output is still one chain of FMAs over k = 0 .. K-1 in order. On a Xeon VM with a 2 MiB L2
// (2 threads, F16 pp512 of the 1.5B shape, 4 alternated rounds), against 6 rows, K in one block,
// tasks of 64 activation rows and no prefetch: 41.9 -> 57.4 t/s (medians; bench/RESULTS.md);
// then the widened rows in chunks (kChunk): 64.3 -> 70.1 (5 rounds).
template <class V, GgmlType Ty>
void packed_block(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  constexpr std::size_t L = V::kLanes;
  static_assert(L == 8 || L == 16, "a tile is one group of 16 rows (AVX2) or two (AVX-512)");
  constexpr std::size_t R = V::kPackedRows, kTile = 2 * L;
  const std::size_t K = a.K;
  const std::size_t kc = packed_k_block(K, t1 - t0);
  const std::size_t tiles = (t1 - t0 + kTile - 1) / kTile, groups = (n1 - n0 + R - 1) / R;
  float* w = packed_weight_buffer(chunked_floats(kc, R));
  alignas(64) float one[R][32];
  auto* sums = kc < K ? reinterpret_cast<float(*)[32]>(packed_sum_buffer(groups * tiles * R * 32)) : one;
  for (std::size_t kb = 0; kb < K; kb += kc) {
    const std::size_t kw = std::min(kc, K - kb);
    const std::size_t col = packed_column_bytes<Ty>(kb), col_bytes = packed_column_bytes<Ty>(kb + kw) - col;
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t n = n0 + g * R, rows = std::min(R, n1 - n);
      // Rows past n1: zeros (their outputs are dropped; zeros keep the arithmetic ordinary).
      if (rows < R) std::memset(w, 0, chunked_floats(kw, R) * sizeof(float));
      for (std::size_t j = 0; j < rows; ++j) widen_row<V, Ty>(a.w + (n + j) * a.w_row_bytes + col, kw, w + j * kChunk, R);
      // What the next widening reads: the next group's columns, or the first group's next block.
      PrefetchPlan next;
      std::size_t next_rows = 0;
      if (g + 1 < groups) {
        next.p = reinterpret_cast<const char*>(a.w + (n + R) * a.w_row_bytes + col);
        next.bytes = col_bytes;
        next_rows = std::min(R, n1 - n - R);
      } else if (kb + kw < K) {
        const std::size_t next_col = packed_column_bytes<Ty>(kb + kw);
        next.p = reinterpret_cast<const char*>(a.w + n0 * a.w_row_bytes + next_col);
        next.bytes = packed_column_bytes<Ty>(std::min(K, kb + kw + kc)) - next_col;
        next_rows = std::min(R, n1 - n0);
      }
      next.stride = a.w_row_bytes;
      for (std::size_t i = 0; i < tiles; ++i) {
        const std::size_t t = t0 + i * kTile, count = std::min(kTile, t1 - t);
        float(*tile_sums)[32] = kc < K ? sums + (g * tiles + i) * R : one;
        PrefetchPlan share = next;  // rows [i next_rows / tiles, (i + 1) next_rows / tiles)
        const std::size_t r0 = i * next_rows / tiles, r1 = (i + 1) * next_rows / tiles;
        share.p = next.p + r0 * next.stride;
        share.rows = r1 - r0;
        const float* xt = a.xt + t * K;  // group t / 16: 16 K floats
        const bool last = kb + kw == K;
        // The outputs' lines (a run of `rows` floats in each of `count` rows of Y), fetched while
        // the tile runs: stored to unfetched, they held up the stores (~5% of an F16 prefill).
        if (last)
          for (std::size_t r = 0; r < count; ++r) {
            const float* out = a.y + (t + r) * a.N + n;
            _mm_prefetch(reinterpret_cast<const char*>(out), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(out + rows - 1), _MM_HINT_T0);
          }
        if (count > L)
          packed_tile<V, 2>(w, kw, xt, K, kb, tile_sums, kb == 0, share);
        else
          packed_tile<V, 1>(w, kw, xt, K, kb, tile_sums, kb == 0, share);
        if (last)
          for (std::size_t r = 0; r < count; ++r)
            for (std::size_t j = 0; j < rows; ++j) a.y[(t + r) * a.N + n + j] = tile_sums[j][r];
      }
    }
  }
}

// ---- Block types ----

// The work of a block kernel (Kernel::rows<P, C>(a, n, t): weight rows n[0..P) x activation rows
// [t, t + C)). Decode (T = 1) takes P rows at a time as decode_rows gives them; prefill (the AVX2
// path's) one weight row x up to 4 activation rows.
template <class Kernel, int P = 2>
void int8_decode(const MatmulArgs& a, std::size_t n0, std::size_t n1) {
  decode_rows<P>(
      n0, n1, [&](const std::size_t* rows) { Kernel::template rows<P, 1>(a, rows, 0); },
      [&](const std::size_t* rows) { Kernel::template rows<1, 1>(a, rows, 0); });
}

template <class Kernel>
void int8_block(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  if (a.T == 1) return int8_decode<Kernel>(a, n0, n1);
  // Each tile of 4 activation rows swept over every weight row of the task, as float_block
  // does (Q4_K_M pp512 ~4% faster, Q8_0 the same within the noise).
  std::size_t t = t0;
  for (; t + 4 <= t1; t += 4)
    for (std::size_t n = n0; n < n1; ++n) {
      const std::size_t row[1] = {n};
      Kernel::template rows<1, 4>(a, row, t);
    }
  for (std::size_t n = n0; n < n1; ++n) {
    const std::size_t row[1] = {n};
    switch (t1 - t) {
      case 3: Kernel::template rows<1, 3>(a, row, t); break;
      case 2: Kernel::template rows<1, 2>(a, row, t); break;
      case 1: Kernel::template rows<1, 1>(a, row, t); break;
      default: break;
    }
  }
}

}  // namespace
}  // namespace ponder::cpu::detail
