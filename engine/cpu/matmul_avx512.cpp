// AVX-512 kernels for matmul (F, BW, VL, DQ and VNNI; compiled with those flags plus FMA and F16C,
// called only when the CPU has them). See matmul.h for the numerics and matmul_internal.h for the
// rules of this file. The activations are quantized as for AVX2 (matmul_avx2.cpp).
//
// The same source is compiled a second time with PONDER_SIMD_EMU defined, against SIMDe's
// portable definitions of the AVX-512 intrinsics and an emulation of AMX
// (tests/engine/avx512_emulated.cpp), as `block_avx512_emulated` / `block_amx_emulated`: the
// tests run that copy on CPUs without AVX-512 or AMX, so every line below is checked against the
// scalar reference on any x86-64 with AVX2. The few intrinsics SIMDe 0.7 lacks are written out
// below from the two 256-bit halves (conversions and widenings, exact either way).
//
// Shapes, as the AVX2 kernels (split() in matmul.cpp cuts the work the same way for both):
// - float types, prefill: packed_block (kernel_common.h), 6 weight rows x 32 activation rows
//   (float_tile's 4 x 3 only for the amx path's F16 / BF16 rows past its tiles); decode: four
//   rows side by side (decode_rows), four accumulators each, software prefetch as Q8_0's below;
//   eight rows, two accumulators each, where not even one row fits beside X in L1 (float_decode).
// - Q8_0 / Q4_0, decode: two blocks of 32 per 512-bit register (blocks b and b + 1 in the low
//   and high halves), integer dot products by VPDPBUSD against X prepared once per call by
//   groups of 16 blocks (group_rows), two accumulators per row (the block pairs alternate
//   between them). Prefill: the task's weight rows repacked by 16 (vnni_block), then
//   VPDPBUSD outer products, 6 activation rows x 32 weight rows per tile, one accumulator per
//   output.
// - Q4_K / Q5_K / Q6_K, decode: 64 weights per register, VPMADDUBSW pairs times the sub-block
//   scales by VPDPWSSD, one float scale per super-block (Q4_K / Q5_K: super-blocks by fours,
//   as X is prepared for them). Prefill: repacked by 16 rows as Q8_0 (vnni_k_block), VPDPBUSD
//   outer products, a conversion and an FMA per sub-block.
// - The block types' decode: Q8_0 four rows side by side where they fit beside X in the L1
//   budget (decode_l1_bytes()), else two or one (decode_rows_fitting), with software prefetch
//   where stream_prefetch() says (into L1, and further ahead into L2); Q4_0 and the K-quants
//   two, with it (into L1 only; kPrefetchAhead and kPrefetchL2Ahead in kernel_common.h say why).
// - AMX (Isa::amx, at the end of the file): the prefill of BF16 weights (bf16 tiles, X split
//   exactly into bf16 parts), in tiles of 16 weight rows x 16 activation rows; everything else
//   as above (amx_takes in matmul.cpp says why).
// Each output's accumulators are updated by the same instructions in the same order whatever the
// tile shape, so a prefill's Y[t, n] does not depend on its tile or thread; decode (T = 1) has its
// own sequences.
#if !defined(PONDER_SIMD_EMU)  // else tests/engine/avx512_emulated.cpp has included the emulations
#include <immintrin.h>
#endif

#include <cstring>

#include "engine/cpu/matmul_internal.h"
#include "engine/cpu/kernel_common.h"
#include "engine/cpu/avx512_common.h"

namespace ponder::cpu::detail {
namespace {

// ---- Helpers (and avx512_common.h's) ----

// The first n (1 to 16) lanes of v stored at p (nothing past them is written).
inline void store_first(float* p, __m512 v, std::size_t n) {
#if defined(PONDER_SIMD_EMU)
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  for (std::size_t i = 0; i < n; ++i) p[i] = lanes[i];
#else
  _mm512_mask_storeu_ps(p, n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1), v);
#endif
}

// Sixteen BF16 values at p widened to float (exact).
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
inline float hsum(__m512 v) { return hsum(fold256(v)); }

inline __m512i zext256(__m256i v) { return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0); }

// VPERMW indices that pick the scale words of the K-quant decode kernels, one per 128-bit lane
// (8 words), from the constant table below (built at compile time: made with _mm_set1_epi16 and
// inserts, each was five instructions in the loop).
// - QK45 (words 8 i .. 8 i + 7: the scales of super-block i of four): [i][jj][h], lanes 0-1 take
//   word 8 i + 4 jj + h, lanes 2-3 word 8 i + 4 jj + 2 + h (h: the low or the high nibbles).
// - Q6K (words 0-15: the block's scales): [h][r], lane k takes word 8 h + 4 r + k (r: the
//   half's weights 0-63 or 64-127).
struct alignas(64) ScalePicks {
  std::uint16_t qk45[4][2][2][32];
  std::uint16_t q6k[2][2][32];
};
constexpr ScalePicks make_scale_picks() {
  ScalePicks p{};
  for (int i = 0; i < 4; ++i)
    for (int jj = 0; jj < 2; ++jj)
      for (int h = 0; h < 2; ++h)
        for (int k = 0; k < 32; ++k) p.qk45[i][jj][h][k] = static_cast<std::uint16_t>(8 * i + 4 * jj + h + (k >= 16 ? 2 : 0));
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < 2; ++r)
      for (int k = 0; k < 32; ++k) p.q6k[h][r][k] = static_cast<std::uint16_t>(8 * h + 4 * r + k / 8);
  return p;
}
constexpr ScalePicks kScalePicks = make_scale_picks();
inline __m512i load_picks(const std::uint16_t* p) { return _mm512_load_si512(p); }

// unpack_scales_k4 (kernel_common.h) of four Q4_K / Q5_K headers, one per 128-bit lane (d and
// dmin in dword 0, the 12 bytes of scales and mins u0 u1 u2 in dwords 1-3): lane i gets its
// eight scales in bytes 0-7, its eight mins in bytes 8-15. With A = u0 u2 u1 u2 and
// B = u0 u0 u1 u1, out = (A >> (0, 0, 0, 4)) & (0x3f.., 0x0f.., 0x3f.., 0x0f..) with, in dwords
// 1 and 3, bits 6-7 of B's bytes as bits 4-5 ((B >> 2) & 0x30..).
inline __m512i unpack_scales_k4x4(__m512i hdr) {
  const __m512i A = _mm512_permutexvar_epi32(_mm512_setr_epi32(1, 3, 2, 3, 5, 7, 6, 7, 9, 11, 10, 11, 13, 15, 14, 15), hdr);
  const __m512i B = _mm512_permutexvar_epi32(_mm512_setr_epi32(1, 1, 2, 2, 5, 5, 6, 6, 9, 9, 10, 10, 13, 13, 14, 14), hdr);
  const __m512i low_mask = _mm512_set4_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f);
  const __m512i low = _mm512_srlv_epi32(A, _mm512_set4_epi32(4, 0, 0, 0));
  // low_mask ? low : B >> 2, then only the bits either part has.
  const __m512i both = _mm512_ternarylogic_epi32(low_mask, low, _mm512_srli_epi32(B, 2), 0xCA);
  return _mm512_and_si512(both, _mm512_set4_epi32(0x3f3f3f3f, 0x3f3f3f3f, 0x3f3f3f3f, 0x3f3f3f3f));
}

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

// The vector path of the float drivers in kernel_common.h: 16 lanes.
struct Avx512 {
  using Vec = __m512;
  static constexpr std::size_t kLanes = 16;
  static constexpr int kDecodeRows = 4;  // decode_rows
  static constexpr int kPackedRows = 12;  // packed_tile
  static constexpr bool kDecodePrefetch = false;  // kPrefetchAhead; Avx512Stream below
  static constexpr bool kDecodePrefetchL2 = false;  // kPrefetchL2Ahead
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec loadx(const float* x) { return _mm512_loadu_ps(x); }
  template <GgmlType Ty>
  static Vec loadw(const unsigned char* row, std::size_t k) { return load16<Ty>(row, k); }
  static Vec fma(Vec w, Vec x, Vec acc) { return _mm512_fmadd_ps(w, x, acc); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static float hsum(Vec v) { return detail::hsum(v); }
  // Decode, 64 elements of a row into its four accumulators.
  template <GgmlType Ty>
  static void gemv_step(const unsigned char* w, const float* x, std::size_t k, Vec* acc) {
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) acc[u] = fma(load16<Ty>(w, k + 16 * u), loadx(x + k + 16 * u), acc[u]);
  }
};
// The same with decode's prefetches at level S (stream_prefetch(), matmul.h).
template <StreamPrefetch S>
struct Avx512Stream : Avx512 {
  static constexpr bool kDecodePrefetch = S != StreamPrefetch::none;
  static constexpr bool kDecodePrefetchL2 = S == StreamPrefetch::l1_l2;
};

// ---- Q8_0 / Q4_0 decode: groups of 16 blocks, pairs of blocks, VPDPBUSD ----
// A row by groups of 16 blocks, against X's groups prepared once per call (MatmulArgs::xgroups):
// - Per 4 blocks, the row's 4 F16 scales (scalar loads), widened and multiplied by X's scales.
// - Per pair of blocks (b and b + 1 in the low and high halves of a register): VPDPBUSD takes
//   the weights as unsigned bytes and starts lanes 0 and 8 at -offset x the block's sum of X, so
//   that a half's lanes add up to the block's exact dot product; the pair's two scales are picked
//   from the 4 by a permutation; then one conversion and FMA.
// X's registers are loaded once for the P rows of a step. X takes 1.25 bytes per value (K = 8960:
// 11 KB, in L1 beside the weights' lines; at 3 bytes a value, the weights' prefetched lines were
// evicted before their use and a GEMV of 1536 x 8960 Q8_0 rows read ~35% less per second).
// Against per-pair conversions of the scales (and of X, by pairs of BlockQ8x32), Q8_0 takes
// about 7 vector instructions per pair and row instead of about 20 (Q4_0 about 9: its nibbles).
// Q4_0 prefetches (kPrefetchAhead), in whole groups only: rows of fewer than 16 blocks (K < 512)
// stream without it.

// Lanes 0-7 from lane 2 j, lanes 8-15 from lane 2 j + 1: pair j's (j < 8) of 16 values.
alignas(64) constexpr std::int32_t kPairLanes[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15}};
inline __m512i pair_lanes(std::size_t j) { return _mm512_load_si512(kPairLanes[j]); }

// The F16 scales of `blocks` (1 to 4) blocks of kBytes bytes at w, widened (exact), in lanes
// 0-3; zeros past them. Packed by scalar loads into one 64-bit word: the cores' integer units
// are idle here. (VPGATHERDD of a group's 16 took ~40% of the time of a Q8_0 GEMV on Zen 4: the
// kernel alone read 35 GB/s per core with it, 55-60 without. The 16 by scalar loads at the
// group's start made the group's work wait for its last line: 16-17 GB/s from DRAM on one
// thread against 24-25. Four at a time: 25-26.)
template <std::size_t kBytes>
inline __m128 group_scales(const unsigned char* w, std::size_t blocks) {
  std::uint64_t h = 0;
#pragma GCC unroll 4
  for (std::size_t i = 0; i < blocks; ++i) {
    std::uint16_t v;
    std::memcpy(&v, w + kBytes * i, 2);
    h |= std::uint64_t{v} << (16 * i);
  }
  return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(h)));
}

// Q8_0: 34-byte blocks (f16 d, 32 x int8), read as w + 128. Step: acc + scales x (the pair's
// lanes), the lanes started at `start`.
// Prefetch: stream_prefetch() (matmul.h).
template <StreamPrefetch S>
struct Q8_0Pairs {
  static constexpr std::size_t kBytes = 34;
  static constexpr bool kPrefetch = S != StreamPrefetch::none, kPrefetchL2 = S == StreamPrefetch::l1_l2;
  template <bool Two>
  static __m512 step(const unsigned char* w, __m512i xq, __m512i start, __m512 scales, __m512 acc) {
    const __m512i q = Two ? join256(load256(w + 2), load256(w + kBytes + 2)) : zext256(load256(w + 2));
    const __m512i p = _mm512_dpbusd_epi32(start, _mm512_xor_si512(q, _mm512_set1_epi8(-128)), xq);
    return _mm512_fmadd_ps(scales, cvt_i32_f32(p), acc);
  }
};

// Q4_0: 18-byte blocks (f16 d, 16 bytes: weights 0-15 in the low nibbles, 16-31 in the high),
// read as the nibbles q = w + 8; the register's 128-bit quarters: block b's low nibbles, its high
// nibbles, then block b + 1's.
struct Q4_0Pairs {
  static constexpr std::size_t kBytes = 18;
  static constexpr bool kPrefetch = true, kPrefetchL2 = false;
  template <bool Two>
  static __m512 step(const unsigned char* w, __m512i xq, __m512i start, __m512 scales, __m512 acc) {
    const __m256i q = _mm256_set_m128i(Two ? load128(w + kBytes + 2) : _mm_setzero_si128(), load128(w + 2));
    const __m512i qq = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), _mm512_castsi256_si512(q));
    const __m512i qw = _mm512_and_si512(_mm512_srlv_epi64(qq, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)),
                                        _mm512_set1_epi8(0x0F));
    const __m512i p = _mm512_dpbusd_epi32(start, qw, xq);
    return _mm512_fmadd_ps(scales, cvt_i32_f32(p), acc);
  }
};

// Weight rows n[0..P) (from decode_rows: P streams per thread), one activation row. The pairs
// of blocks alternate between two accumulators per row; an odd last block is a pair with zeros.
template <class Pairs, int P>
void group_rows(const MatmulArgs& a, const std::size_t* n) {
  constexpr std::size_t kBytes = Pairs::kBytes, kGroup = 16 * kBytes;
  const unsigned char* w[P];
  __m512 acc[P][2];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) {
    w[p] = a.w + n[p] * a.w_row_bytes;
    acc[p][0] = acc[p][1] = _mm512_setzero_ps();
  }
  const std::size_t nb = a.K / 32;
  for (std::size_t g = 0; g * 16 < nb; ++g) {
    const GroupQ8x512& x = a.xgroups[g];
    const std::size_t blocks = nb - 16 * g < 16 ? nb - 16 * g : 16;
    const __m512i starts = _mm512_load_si512(x.start);
    // The rows' scales times X's, for 4 blocks at a time (lanes 0-3).
    __m512 scales[P];
    auto scales_of = [&](std::size_t first) {
      const std::size_t count = blocks - first < 4 ? blocks - first : 4;
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        const unsigned char* at = w[p] + g * kGroup + first * kBytes;
        // (A constant count for the usual case: its loop unrolled.)
        const __m128 ws = count == 4 ? group_scales<kBytes>(at, 4) : group_scales<kBytes>(at, count);
        scales[p] = _mm512_castps128_ps512(_mm_mul_ps(ws, _mm_load_ps(x.d + first)));
      }
    };
    // Pair j (the accumulators U; U = j % 2 where the group is whole): X's values, the start of
    // its lanes 0 and 8, and each row's step.
    auto pair = [&]<bool Two, int U>(std::size_t j) {
      const __m512i xq = _mm512_load_si512(x.qs + 64 * j);
      const __m512i start = _mm512_maskz_permutexvar_epi32(0x0101, pair_lanes(j), starts);
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p)
        acc[p][U] = Pairs::template step<Two>(w[p] + g * kGroup + 2 * j * kBytes, xq, start,
                                              _mm512_permutexvar_ps(pair_lanes(j % 2), scales[p]), acc[p][U]);
    };
    if (blocks == 16) {
#pragma GCC unroll 4
      for (std::size_t j = 0; j < 8; j += 2) {
        scales_of(2 * j);
        // Lines ahead of the 4 blocks' bytes (a few twice), spread over the group.
        if constexpr (Pairs::kPrefetch)
#pragma GCC unroll 4
          for (std::size_t off = 0; off < 4 * kBytes; off += 64)
#pragma GCC unroll 4
            for (int p = 0; p < P; ++p)
              prefetch_ahead<Pairs::kPrefetchL2>(w[p] + g * kGroup + 2 * j * kBytes + off);
        pair.template operator()<true, 0>(j);
        pair.template operator()<true, 1>(j + 1);
      }
    } else {  // the row's last group: whole pairs, then an odd block
      std::size_t j = 0;
      for (; 2 * j + 4 <= blocks; j += 2) {
        scales_of(2 * j);
        pair.template operator()<true, 0>(j);
        pair.template operator()<true, 1>(j + 1);
      }
      if (2 * j < blocks) scales_of(2 * j);
      if (2 * j + 2 <= blocks) {
        pair.template operator()<true, 0>(j++);
        if (2 * j < blocks) pair.template operator()<false, 1>(j);
      } else if (2 * j < blocks) {
        pair.template operator()<false, 0>(j);
      }
    }
  }
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) a.y[n[p]] = hsum(_mm512_add_ps(acc[p][0], acc[p][1]));
}

// group_rows as a row kernel for int8_decode (one activation row only).
template <class Pairs>
struct Groups {
  template <int P, int C>
  static void rows(const MatmulArgs& a, const std::size_t* n, std::size_t) {
    static_assert(C == 1, "decode only (X prepared: MatmulArgs::xgroups)");
    group_rows<Pairs, P>(a, n);
  }
};

// Q8_0 decode: 4 rows side by side where they fit beside X in the L1 budget, else 2 or 1; 4
// where not even one fits (decode_rows_fitting).
template <StreamPrefetch S>
void q8_0_decode(const MatmulArgs& a, std::size_t n0, std::size_t n1) {
  switch (decode_rows_fitting(a.w_row_bytes, (a.K / 32 + 15) / 16 * sizeof(GroupQ8x512), 4, a.l1_budget)) {
    case 4: return int8_decode<Groups<Q8_0Pairs<S>>, 4>(a, n0, n1);
    case 2: return int8_decode<Groups<Q8_0Pairs<S>>, 2>(a, n0, n1);
    default: return int8_decode<Groups<Q8_0Pairs<S>>, 1>(a, n0, n1);
  }
}

// ---- Q4_K / Q5_K / Q6_K: 64 weights per 512-bit register, VPMADDUBSW then VPDPWSSD ----
// As the AVX2 kernels: unsigned quant values times signed activations in 16-bit pairs, then the
// pairs times their sub-block scales summed into 32-bit lanes (VPDPWSSD does the multiply and the
// add of VPMADDWD + VPADDD), one float scale per super-block.

// Q4_K and Q5_K: per 64 weights (group j), 32 bytes of low nibbles (sub-block 2j) and high
// nibbles (2j + 1); a register holds groups j (low half) and j + 1 (high half), so the low
// nibbles are sub-blocks 2j and 2j + 2, the high ones 2j + 1 and 2j + 3. Q5_K's fifth bits: bit
// 2j (low nibble) and 2j + 1 (high) of byte i of qh, for weight i of the group's 32. Decode
// only: X prepared once per call in this order (MatmulArgs::xsupers; joining its halves for
// each weight row was 4 instructions of ~40 per super-block), with its sums of 32 for the mins.
// A weight row's super-blocks are taken by fours, as X is prepared: their four headers (d, dmin
// and the 12 bytes of scales and mins, the first 16 bytes of each) in one register, unpacked
// together (unpack_scales_k4x4), their scale words picked for each register of weights by VPERMW,
// and their mins against X's sums by one VPDPWSSD. Unpacking each super-block's header on its
// own, and its mins in 128-bit registers, was more than half the ~42 vector instructions of a
// super-block. In-L2 GEMV (K = 1536 and 8960, one thread, best of 31 runs of 100 products, on
// the Xeon VM, 2026-12-01): 19.5-20.9 TSC cycles per super-block before, 16.5-17.6 after. Decode
// of Q4_K_M from memory there: the same within the noise (+0.6%, 2 threads; +0.1%, 1).
template <bool Five>
struct QK45 {
  template <int P, int C>
  static void rows(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
    static_assert(C == 1, "decode only (X prepared: MatmulArgs::xsupers)");
    static_assert(P <= 2, "the loops over the rows are unrolled by 2");
    constexpr std::size_t block_bytes = Five ? 176 : 144;
    const TileRows<BlockQ8x256, P, C> tr(a, n, t);
    const unsigned char* const* wrow = tr.w;
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit0 = _mm512_set1_epi8(1), bit1 = _mm512_set1_epi8(2);
    __m512 acc[P], mins[P];
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) acc[p] = mins[p] = _mm512_setzero_ps();
    const std::size_t supers = a.K / 256;
    for (std::size_t g = 0; g < (supers + 3) / 4; ++g) {
      const SuperQuadQ8& xg = a.xsupers[g];
      const int count = static_cast<int>(std::min<std::size_t>(4, supers - 4 * g));
      // d * xd and dmin * xd of the four come from [xd0 xd0 xd1 xd1 ..] (xd 0 past the row).
      const __m256 xd2 = _mm256_permutexvar_ps(_mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3),
                                               _mm256_castps128_ps256(_mm_load_ps(xg.d)));
      // Per row: the four headers unpacked, the mins added.
      __m512i scw[P];     // the four super-blocks' scales as words (super-block i's at 8 i ..)
      alignas(32) float scales[P][8];  // d * xd, dmin * xd of super-block i at 2 i, 2 i + 1
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p) {
        const __m512i hdr = headers4(wrow[p] + 4 * g * block_bytes, block_bytes, count);
        const __m512i sm = unpack_scales_k4x4(hdr);
        scw[p] = widen32_u8(_mm512_castsi512_si256(_mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 0, 2, 4, 6), sm)));
        const __m512i mw = widen32_u8(_mm512_castsi512_si256(
            _mm512_permutexvar_epi64(_mm512_setr_epi64(1, 3, 5, 7, 1, 3, 5, 7), sm)));  // the mins
        // d, dmin of each (dwords 0, 4, 8, 12 of the headers) times xd.
        const __m256 scale = _mm256_mul_ps(
            xd2, _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(
                     _mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), hdr))));
        // The mins: dmin * xd * m[j] * (sum of the activations of 32-block j), four lanes each.
        const __m512 mscale = _mm512_permutexvar_ps(
            _mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7), _mm512_castps256_ps512(scale));
        _mm256_store_ps(scales[p], scale);
        const __m512i msum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mw, _mm512_load_si512(xg.sums));
        mins[p] = _mm512_fmadd_ps(mscale, cvt_i32_f32(msum), mins[p]);
      }
      // Then the super-blocks, the rows' side by side (independent chains next to each other),
      // the products of the low and of the high nibbles in two chains (the in-L2 GEMV ~25%
      // faster in a throwaway loop than one chain of four VPDPWSSD per super-block).
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        if (i == count) break;
#pragma GCC unroll 2
        for (int p = 0; p < P; ++p) {
          const unsigned char* w = wrow[p] + (4 * g + i) * block_bytes;
          prefetch_block<C>(w, block_bytes);
          const unsigned char* qs = w + (Five ? 48 : 16);
          __m512i hb = _mm512_setzero_si512();
          if constexpr (Five) {
            const __m256i qh = load256(w + 16);
            hb = join256(qh, _mm256_srli_epi16(qh, 2));  // bits 0, 1: group j low half, j + 1 high
          }
          __m512i isum_lo = _mm512_setzero_si512(), isum_hi = _mm512_setzero_si512();
#pragma GCC unroll 2
          for (int jj = 0; jj < 2; ++jj) {  // groups 2jj and 2jj + 1
            const __m512i q = _mm512_loadu_si512(qs + 64 * jj);
            __m512i qlo = _mm512_and_si512(q, m4);
            __m512i qhi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            if constexpr (Five) {
              qlo = _mm512_or_si512(qlo, _mm512_slli_epi16(_mm512_and_si512(hb, bit0), 4));
              qhi = _mm512_or_si512(qhi, _mm512_slli_epi16(_mm512_and_si512(hb, bit1), 3));
              hb = _mm512_srli_epi16(hb, 4);
            }
            // Lanes 0-1: sub-block 4jj (low nibbles) or 4jj + 1 (high); lanes 2-3: two further.
            const __m512i slo = _mm512_permutexvar_epi16(load_picks(kScalePicks.qk45[i][jj][0]), scw[p]);
            const __m512i shi = _mm512_permutexvar_epi16(load_picks(kScalePicks.qk45[i][jj][1]), scw[p]);
            const std::int8_t* xq = xg.qs[i] + 128 * jj;  // as xlo, then xhi
            // q <= 31, |x| <= 127: pairs <= 7874; times scale <= 63, summed: far from overflow.
            isum_lo = _mm512_dpwssd_epi32(isum_lo, _mm512_maddubs_epi16(qlo, _mm512_load_si512(xq)), slo);
            isum_hi = _mm512_dpwssd_epi32(isum_hi, _mm512_maddubs_epi16(qhi, _mm512_load_si512(xq + 64)), shi);
          }
          acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(scales[p][2 * i]), cvt_i32_f32(_mm512_add_epi32(isum_lo, isum_hi)), acc[p]);
        }
      }
    }
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) a.y[t * a.N + n[p]] = hsum(acc[p]) - hsum(mins[p]);
  }

 private:
  // The first 16 bytes of super-blocks 0..count-1 from w0 in 128-bit lanes 0..count-1 (the lanes
  // past count zero, so that their scales and mins are 0, never Inf or NaN).
  static __m512i headers4(const unsigned char* w0, std::size_t block_bytes, int count) {
    const std::size_t last = static_cast<std::size_t>(count - 1);
    __m512i h = _mm512_castsi128_si512(load128(w0));
    h = _mm512_inserti32x4(h, load128(w0 + std::min<std::size_t>(1, last) * block_bytes), 1);
    h = _mm512_inserti32x4(h, load128(w0 + std::min<std::size_t>(2, last) * block_bytes), 2);
    h = _mm512_inserti32x4(h, load128(w0 + std::min<std::size_t>(3, last) * block_bytes), 3);
    if (count < 4) h = _mm512_maskz_mov_epi32(static_cast<__mmask16>((1u << (4 * count)) - 1), h);
    return h;
  }
};

// Q6_K: per 128 weights (half h of the block), 64 bytes of low nibbles (byte i: weight i in its
// low nibble, weight 64 + i in its high one) and 32 of 2-bit highs (byte i: weights i, 32 + i,
// 64 + i and 96 + i in bits 0-1, 2-3, 4-5 and 6-7); a signed 8-bit scale per 16 weights; value
// d * sc * (q - 32), q in 0..63. A register holds 64 consecutive weights of the half (four scales,
// one per 128-bit lane): with H = the highs joined with themselves shifted right by 2 (byte i:
// the highs of weight i in bits 0-1, of weight 64 + i in bits 4-5) and masked to those bits,
// weights 0-63 are ql's low nibbles with H << 4 above them, weights 64-127 ql's high nibbles with
// H, each by one bit select (VPTERNLOGD): five instructions for the half's 128 values, where
// widening each 32 on its own took 23. In-L2 GEMV (as QK45's): 28.3-30.6 TSC cycles per block
// before, 18.8-23.6 after.
struct Q6K {
  template <int P, int C>
  static void rows(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
    static_assert(P <= 2, "the loops over the rows are unrolled by 2");
    const TileRows<BlockQ8x256, P, C> tr(a, n, t);
    const unsigned char* const* wrow = tr.w;
    const BlockQ8x256* const* x = tr.x;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m33 = _mm512_set1_epi8(0x33);
    __m512 acc[P][C];
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[p][c] = _mm512_setzero_ps();
    for (std::size_t b = 0; b < a.K / 256; ++b) {
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p) {
        const unsigned char* w = wrow[p] + b * 210;
        prefetch_block<C>(w, 210);
        const float d = half(w + 208);
        const __m256i sc16 = _mm256_cvtepi8_epi16(load128(w + 192));
        const __m512i scw = _mm512_castsi256_si512(sc16);  // words 0-15 (VPERMW reads no others)
        __m512i isum[C];
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) isum[c] = _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m512i ql = _mm512_loadu_si512(w + 64 * h);
          const __m256i qh = load256(w + 128 + 32 * h);
          const __m512i hb = _mm512_and_si512(join256(qh, _mm256_srli_epi16(qh, 2)), m33);
          // m4 ? ql : H << 4, and m4 ? ql >> 4 : H (the bits that the 16-bit shifts bring in from
          // the neighbouring byte land where the select takes the other operand).
          const __m512i q01 = _mm512_ternarylogic_epi32(m4, ql, _mm512_slli_epi16(hb, 4), 0xCA);
          const __m512i q23 = _mm512_ternarylogic_epi32(m4, _mm512_srli_epi16(ql, 4), hb, 0xCA);
          const __m512i s01 = _mm512_permutexvar_epi16(load_picks(kScalePicks.q6k[h][0]), scw);
          const __m512i s23 = _mm512_permutexvar_epi16(load_picks(kScalePicks.q6k[h][1]), scw);
#pragma GCC unroll 4
          for (int c = 0; c < C; ++c) {
            const std::int8_t* xq = x[c][b].qs + 128 * h;
            // q <= 63, |x| <= 127: pairs <= 16002; times |scale| <= 128 and summed: below 2^29.
            isum[c] = _mm512_dpwssd_epi32(isum[c], _mm512_maddubs_epi16(q01, _mm512_loadu_si512(xq)), s01);
            isum[c] = _mm512_dpwssd_epi32(isum[c], _mm512_maddubs_epi16(q23, _mm512_loadu_si512(xq + 64)), s23);
          }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
          const BlockQ8x256& xb = x[c][b];
          // The -32 offset: 32 * sum over the 16-blocks of sc[g] * (sum of their activations).
          const __m256i off = _mm256_madd_epi16(sc16, load256(xb.bsums));
          isum[c] = _mm512_sub_epi32(isum[c], zext256(_mm256_slli_epi32(off, 5)));
          acc[p][c] = _mm512_fmadd_ps(_mm512_set1_ps(d * xb.d), cvt_i32_f32(isum[c]), acc[p][c]);
        }
      }
    }
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) a.y[(t + c) * a.N + n[p]] = hsum(acc[p][c]);
  }
};

// ---- AMX: the tile configuration ----

struct alignas(64) TileConfig {
  unsigned char palette, start_row, reserved0[14];
  unsigned short colsb[8];
  unsigned char reserved1[16];
  unsigned char rows[8];
  unsigned char reserved2[8];
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

// g++'s tile intrinsics are asm statements that take their buffers' addresses only, without
// saying that they read memory: a buffer written just before a tile load must be made visible
// to it (or the stores may be moved past the load, or dropped), and the next writes to it kept
// after it. This compiler barrier goes before and after such loads.
inline void tiles_read_memory() { asm volatile("" ::: "memory"); }

// ---- AMX: BF16 prefill, TDPBF16PS on X split exactly into bf16 parts ----
// TDPBF16PS multiplies pairs of bf16 values (exactly, in float) and adds them to float
// accumulators. So that nothing is rounded to bf16, X is split into bf16 parts that add up to it
// exactly, x = hi + mid + lo (AmxBf16Chunk, packed once per call by pack_amx_bf16); the BF16
// weights are used as they are, read in place. Per chunk of 32 values of K, each output's tile
// element accumulates, in this order,
//   w hi_x, w mid_x, w lo_x
// every product, each exact, over the whole of K in one float tile: no per-block scaling.
// (F16 weights took this path too, split into two bf16 parts, six products a chunk: slower than
// the AVX-512 FMA tiles on the one AMX CPU measured; amx_takes.)
// Exact down to |x| of about 2^-103: below, mid and lo are float denormals, which lose bits in
// bf16 and which TDPBF16PS reads as zero; an absolute error under 2^-126 |w|. Inf and NaN in X
// keep hi (NaN made quiet, so that truncation cannot turn it into Inf) and have mid = lo = 0, so
// that they come out as on the float paths (not as Inf - Inf = NaN).
// Tiles, all 16 rows x 64 bytes: 0 and 1 C (16 weight rows x 16 activation rows, for two groups
// of 16 activation rows), 2 A (the weights: 16 rows x 32 values), 4 and 5 B (hi and mid of
// group 0, then its lo in 4), 6 and 7 the same for group 1.

inline void configure_bf16_tiles() {
  TileConfig c = {};
  c.palette = 1;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  tiles_read_memory();
  _tile_loadconfig(&c);
}

// The high 16 bits of the 16 dwords of a, then of b: 32 bf16 from two vectors of floats whose
// low 16 bits are zero (as every part here is).
inline __m512i high_words(__m512i a, __m512i b) {
  alignas(64) static const std::uint16_t odd[32] = {1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21,
                                                    23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 43,
                                                    45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
  return _mm512_permutex2var_epi16(a, _mm512_load_si512(odd), b);
}

// v's top 8 significant bits (its low 16 bits cleared): a bf16 value, as float bits.
inline __m512i top8(__m512 v) {
  return _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)));
}

// v - part, part given as float bits (exact for the parts here: the same exponent range).
inline __m512 minus(__m512 v, __m512i part) { return _mm512_sub_ps(v, _mm512_castsi512_ps(part)); }

// Splits v into hi (its top 8 significant bits, as top8) and the rest v - hi (exact), for finite
// lanes; Inf and NaN lanes keep hi = v (a NaN with its quiet bit set, which truncation keeps) and
// get a rest of 0.
inline __m512 split_hi(__m512 v, __m512i* hi) {
  const __m512i bits = _mm512_castps_si512(v), exp_mask = _mm512_set1_epi32(0x7F800000);
  const __mmask16 finite = static_cast<__mmask16>(~_mm512_cmpeq_epi32_mask(_mm512_and_si512(bits, exp_mask), exp_mask));
  const __mmask16 nan = static_cast<__mmask16>(
      ~finite & ~_mm512_cmpeq_epi32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)), _mm512_setzero_si512()));
  *hi = _mm512_mask_or_epi32(top8(v), nan, top8(v), _mm512_set1_epi32(0x00400000));
  return _mm512_maskz_mov_ps(finite, minus(v, *hi));
}

// Values 32 c .. 32 c + 31 of a row of n floats (zeros past n) as two vectors.
inline void load_chunk(const float* row, std::size_t n, std::size_t c, __m512* v0, __m512* v1) {
  alignas(64) float tmp[32];
  const float* p = row + 32 * c;
  if (32 * c + 32 > n) {  // the last, partial chunk
    std::memset(tmp, 0, sizeof tmp);
    std::memcpy(tmp, p, (n - 32 * c) * sizeof(float));
    p = tmp;
  }
  *v0 = _mm512_loadu_ps(p);
  *v1 = _mm512_loadu_ps(p + 16);
}

// ---- Q8_0 / Q4_0 prefill: 16 weight rows per register, VPDPBUSD outer products ----
// The int8 kernels above hold 64 weights of one row per register and pay a conversion, a scale
// and an FMA per pair of blocks and activation row. Here a task first repacks its weight rows by
// 16: per block of 32, eight registers of 16 rows x 4 consecutive values (as unsigned bytes:
// Q8_0's w + 128, Q4_0's q in 0..15) and the 16 rows' scales. Then each VPDPBUSD multiplies 4
// values of 16 weight rows by the same 4 values of one activation row (broadcast), exact in
// 32-bit lanes; the offset (128 or 8 times the block's activation sum, from BlockQ8x32::sum) is
// where each lane's sum starts. After the block's 8 steps, one conversion and one FMA per
// (activation row, 16 weight rows) add d_w * d_x * sum. Tiles of up to 6 activation rows x 32
// weight rows (kVnniRows): 12 integer and 12 float accumulators. Every output is sum over
// blocks b in order of fma(float(isum_b), d_w,b * d_x,b, acc), whatever tile, task or thread
// computes it.

struct PackedQ8x16 {
  std::uint32_t q[8][16];  // q[j][r]: values 4 j .. 4 j + 3 of row r, unsigned bytes
  float d[16];
};

// Rows r0..r7 as 8 dwords each -> r[j] = dword j of the 8 rows.
inline void transpose8x8_epi32(__m256i r[8]) {
  __m256i t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {  // rows 4h .. 4h + 3
    u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
    u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
    u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
    u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

// 32 values (8 dwords) of each of 16 rows, chunk(row) for rows[r], transposed to dst[j][r] =
// dword j of row r.
template <class Chunk>
inline void transpose_rows16(const unsigned char* const* rows, Chunk chunk, std::uint32_t (*dst)[16]) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    __m256i v[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) v[r] = chunk(rows[8 * h + r]);
    transpose8x8_epi32(v);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) _mm256_storeu_si256(reinterpret_cast<__m256i*>(&dst[j][8 * h]), v[j]);
  }
}

// The 32 values of block b of a row as unsigned bytes in order (Q8_0: w + 128; Q4_0: q).
template <bool Four>
inline __m256i block_u8(const unsigned char* row, std::size_t b) {
  if constexpr (Four) {
    const __m128i q = load128(row + 18 * b + 2);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
  } else {
    return _mm256_xor_si256(load256(row + 34 * b + 2), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
}

// Weight rows n .. n + 15 (rows past `last` repeat it) packed, every block, at out[0 .. nb).
template <bool Four>
void pack_q8x16(const MatmulArgs& a, std::size_t n, std::size_t last, PackedQ8x16* out) {
  const unsigned char* rows[16];
  for (std::size_t r = 0; r < 16; ++r) rows[r] = a.w + (n + r <= last ? n + r : last) * a.w_row_bytes;
  constexpr std::size_t kBytes = Four ? 18 : 34;
  for (std::size_t b = 0; b < a.K / 32; ++b) {
    transpose_rows16(rows, [b](const unsigned char* row) { return block_u8<Four>(row, b); }, out[b].q);
    for (int r = 0; r < 16; ++r) out[b].d[r] = half(rows[r] + kBytes * b);
  }
}

// Activation rows x[0 .. RT) times the NV groups of 16 packed weight rows at w[v] (nb blocks
// each) into out[t][16 v + r]. `offset`: 128 (Q8_0) or 8 (Q4_0).
template <int RT, int NV>
void vnni_tile(const PackedQ8x16* const* w, std::size_t nb, const BlockQ8x32* const* x, int offset,
               float (*out)[32]) {
  __m512 acc[RT][NV];
#pragma GCC unroll 6
  for (int t = 0; t < RT; ++t)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_setzero_ps();
  for (std::size_t b = 0; b < nb; ++b) {
    __m512i isum[RT][NV];
#pragma GCC unroll 6
    for (int t = 0; t < RT; ++t) {
      const __m512i start = _mm512_set1_epi32(-offset * x[t][b].sum);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) isum[t][v] = start;
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      __m512i wv[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w[v][b].q[j]);
#pragma GCC unroll 6
      for (int t = 0; t < RT; ++t) {
        std::int32_t four;
        std::memcpy(&four, x[t][b].qs + 4 * j, 4);
        const __m512i xv = _mm512_set1_epi32(four);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) isum[t][v] = _mm512_dpbusd_epi32(isum[t][v], wv[v], xv);
      }
    }
    __m512 dw[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) dw[v] = _mm512_loadu_ps(w[v][b].d);
#pragma GCC unroll 6
    for (int t = 0; t < RT; ++t) {
      const __m512 dx = _mm512_set1_ps(x[t][b].d);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v)
        acc[t][v] = _mm512_fmadd_ps(cvt_i32_f32(isum[t][v]), _mm512_mul_ps(dw[v], dx), acc[t][v]);
    }
  }
#pragma GCC unroll 6
  for (int t = 0; t < RT; ++t)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out[t] + 16 * v, acc[t][v]);
}

template <int NV>
inline void vnni_rows(const PackedQ8x16* const* w, std::size_t nb, const BlockQ8x32* const* x, std::size_t rt,
                      int offset, float (*out)[32]) {
  switch (rt) {
    case 6: vnni_tile<6, NV>(w, nb, x, offset, out); break;
    case 5: vnni_tile<5, NV>(w, nb, x, offset, out); break;
    case 4: vnni_tile<4, NV>(w, nb, x, offset, out); break;
    case 3: vnni_tile<3, NV>(w, nb, x, offset, out); break;
    case 2: vnni_tile<2, NV>(w, nb, x, offset, out); break;
    default: vnni_tile<1, NV>(w, nb, x, offset, out); break;
  }
}

// Activation rows a VNNI tile takes at most (kVnniRows, matmul_internal.h): 6 x 2 groups of 16
// weight rows, 12 integer and 12 float accumulators in AVX-512's 32 registers. With 4 (8 of each)
// the integer chains were too few to keep both VPDPBUSD pipes busy: a standalone Q8_0 tile on one
// Xeon core (K = 1536 and 8960, alternated) ran at 321-345 GOP/s with 4 rows, 358-391 with 6 (the
// instruction's peak there: 656-687); the products of 3 layers of the 1.5B shape at T = 512 in the
// engine (2 threads, the two settings alternated pass by pass): Q8_0 1.147x, Q4_K 1.133x (medians
// of 16 pairs).

// The sweep of a VNNI prefill task over its packed groups of 16 weight rows (nb blocks each, at
// `packed`), two groups (32 rows) at a time, and its activation rows, kVnniRows at a time:
// tile(w, nv, x, rt, out) runs the tile kernel on nv groups and rt activation rows into
// out[t][16 v + r].
template <class Packed, class XBlock, class Tile>
void vnni_sweep(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1,
                const Packed* packed, std::size_t nb, Tile tile) {
  const std::size_t groups = (n1 - n0 + 15) / 16;
  alignas(64) float out[kVnniRows][32];
  for (std::size_t g = 0; g < groups; g += 2) {
    const std::size_t nv = groups - g >= 2 ? 2 : 1;
    const Packed* w[2] = {packed + g * nb, packed + (g + nv - 1) * nb};
    const std::size_t n = n0 + 16 * g, rows = n1 - n < 16 * nv ? n1 - n : 16 * nv;
    for (std::size_t t = t0; t < t1; t += kVnniRows) {
      const std::size_t rt = t1 - t < kVnniRows ? t1 - t : kVnniRows;
      const XBlock* x[kVnniRows];
      for (std::size_t i = 0; i < kVnniRows; ++i) x[i] = xrow<XBlock>(a, i < rt ? t + i : t);
      // The outputs' lines fetched while the tile runs (stored to unfetched lines, they held up
      // the stores: Q4_K products 1.034x in paired passes, 40 pairs), then each row's outputs,
      // contiguous in Y, stored as vectors (as a loop of floats, g++ made it a `rep movsq` per
      // row: ~6% of a Q4_K_M prefill by perf). Non-temporal stores instead: no better (1.036,
      // 16 pairs, against 1.018 for the prefetches in the same minutes).
      for (std::size_t i = 0; i < rt; ++i) {
        const float* y = a.y + (t + i) * a.N + n;
        _mm_prefetch(reinterpret_cast<const char*>(y), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(y + rows - 1), _MM_HINT_T0);
      }
      tile(w, nv, x, rt, out);
      for (std::size_t i = 0; i < rt; ++i) {
        float* y = a.y + (t + i) * a.N + n;
        store_first(y, _mm512_load_ps(out[i]), rows < 16 ? rows : 16);
        if (rows > 16) store_first(y + 16, _mm512_load_ps(out[i] + 16), rows - 16);
      }
    }
  }
}

// A prefill task of Q8_0 (Four false) or Q4_0 weights: its rows packed once, then swept.
template <bool Four>
void vnni_block(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  const std::size_t nb = a.K / 32, groups = (n1 - n0 + 15) / 16;
  auto* packed = reinterpret_cast<PackedQ8x16*>(packed_weight_buffer(groups * nb * sizeof(PackedQ8x16) / sizeof(float)));
  for (std::size_t g = 0; g < groups; ++g) pack_q8x16<Four>(a, n0 + 16 * g, n1 - 1, packed + g * nb);
  const int offset = Four ? 8 : 128;
  vnni_sweep<PackedQ8x16, BlockQ8x32>(
      a, n0, n1, t0, t1, packed, nb,
      [&](const PackedQ8x16* const* w, std::size_t nv, const BlockQ8x32* const* x, std::size_t rt, float (*out)[32]) {
        if (nv == 2)
          vnni_rows<2>(w, nb, x, rt, offset, out);
        else
          vnni_rows<1>(w, nb, x, rt, offset, out);
      });
}

// ---- Q4_K / Q5_K / Q6_K prefill: the same outer products, per sub-block ----
// Weight rows repacked by 16 per super-block of 256: the 256 values as unsigned bytes (Q4_K's and
// Q5_K's q, Q6_K's q in 0..63) in 64 registers of 4 values x 16 rows, and per sub-block the
// float scales d * sc (and for Q4_K / Q5_K dmin * m), exact in float. Per sub-block (32 values,
// 16 for Q6_K) and activation row: the VPDPBUSD steps (Q6_K's sum starting from -32 times the
// activations' 16-sum, for q - 32), then s = fma(float(isum), d * sc, s) and for Q4_K / Q5_K
// s = s - (dmin * m) * (sum of the sub-block's activations); after the super-block,
// acc = fma(s, d_x, acc) (s from 0 at each super-block).

struct PackedK16 {
  std::uint32_t q[64][16];  // q[j][r]: values 4 j .. 4 j + 3 of row r
  float sc[16][16];         // [sub-block][row]: d * sc (Q4_K / Q5_K: 8 sub-blocks of 32; Q6_K: 16 of 16)
  float mn[8][16];          // Q4_K / Q5_K: dmin * m
};

// Values 32 c .. 32 c + 31 of a super-block as unsigned bytes.
template <GgmlType Ty>
inline __m256i kquant_chunk(const unsigned char* blk, int c) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  if constexpr (Ty == GgmlType::q6_k) {
    const int h = c / 4, cc = c % 4;
    const __m256i ql = load256(blk + 64 * h + 32 * (cc & 1)), qh = load256(blk + 128 + 32 * h);
    const __m256i lo = cc < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
    const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * cc)), _mm256_set1_epi8(3));
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  } else {
    const unsigned char* qs = blk + (Ty == GgmlType::q5_k ? 48 : 16);
    const __m256i q = load256(qs + 32 * (c / 2));
    __m256i v = c % 2 == 0 ? _mm256_and_si256(q, m4) : _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if constexpr (Ty == GgmlType::q5_k) {
      const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(load256(blk + 16), _mm_cvtsi32_si128(c)), _mm256_set1_epi8(1));
      v = _mm256_or_si256(v, _mm256_slli_epi16(bit, 4));
    }
    return v;
  }
}

// Weight rows n .. n + 15 (rows past `last` repeat it), super-block b, packed at out.
template <GgmlType Ty>
void pack_k16(const MatmulArgs& a, std::size_t n, std::size_t last, std::size_t b, PackedK16* out) {
  constexpr std::size_t kBytes = Ty == GgmlType::q6_k ? 210 : Ty == GgmlType::q5_k ? 176 : 144;
  const unsigned char* blk[16];
  for (std::size_t r = 0; r < 16; ++r) blk[r] = a.w + (n + r <= last ? n + r : last) * a.w_row_bytes + b * kBytes;
  for (int c = 0; c < 8; ++c)
    transpose_rows16(blk, [c](const unsigned char* row) { return kquant_chunk<Ty>(row, c); }, out->q + 8 * c);
  for (int r = 0; r < 16; ++r) {
    if constexpr (Ty == GgmlType::q6_k) {
      const float d = half(blk[r] + 208);
      const auto* sc = reinterpret_cast<const std::int8_t*>(blk[r] + 192);
      for (int i = 0; i < 16; ++i) out->sc[i][r] = d * static_cast<float>(sc[i]);
    } else {
      const float d = half(blk[r]), dmin = half(blk[r] + 2);
      alignas(16) unsigned char sm[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(sm), unpack_scales_k4(blk[r] + 4));
      for (int j = 0; j < 8; ++j) {
        out->sc[j][r] = d * static_cast<float>(sm[j]);
        out->mn[j][r] = dmin * static_cast<float>(sm[8 + j]);
      }
    }
  }
}

// Activation rows x[0 .. RT) times the NV packed groups w[v] (one super-block each, then the
// next: stride nb) over every super-block, into out[t][16 v + r]. Six: Q6_K.
template <int RT, int NV, bool Six>
void vnni_k_tile(const PackedK16* const* w, std::size_t nb, const BlockQ8x256* const* x, float (*out)[32]) {
  constexpr int kSub = Six ? 16 : 8, kSteps = Six ? 4 : 8;  // sub-blocks, 4-value steps per sub-block
  // The outputs accumulate in out (once per super-block); a super-block's sum is in registers
  // and takes d_x at its end.
#pragma GCC unroll 6
  for (int t = 0; t < RT; ++t)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out[t] + 16 * v, _mm512_setzero_ps());
  for (std::size_t b = 0; b < nb; ++b) {
    __m512 sacc[RT][NV];
#pragma GCC unroll 6
    for (int t = 0; t < RT; ++t)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) sacc[t][v] = _mm512_setzero_ps();
    for (int i = 0; i < kSub; ++i) {
      __m512i isum[RT][NV];
#pragma GCC unroll 6
      for (int t = 0; t < RT; ++t) {
        const __m512i start = Six ? _mm512_set1_epi32(-32 * x[t][b].bsums[i]) : _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) isum[t][v] = start;
      }
#pragma GCC unroll 8
      for (int s = 0; s < kSteps; ++s) {
        __m512i wv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w[v][b].q[kSteps * i + s]);
#pragma GCC unroll 6
        for (int t = 0; t < RT; ++t) {
          std::int32_t four;
          std::memcpy(&four, x[t][b].qs + 4 * (kSteps * i + s), 4);
          const __m512i xv = _mm512_set1_epi32(four);
#pragma GCC unroll 2
          for (int v = 0; v < NV; ++v) isum[t][v] = _mm512_dpbusd_epi32(isum[t][v], wv[v], xv);
        }
      }
      __m512 sc[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) sc[v] = _mm512_loadu_ps(w[v][b].sc[i]);
#pragma GCC unroll 6
      for (int t = 0; t < RT; ++t) {
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) sacc[t][v] = _mm512_fmadd_ps(cvt_i32_f32(isum[t][v]), sc[v], sacc[t][v]);
        if constexpr (!Six) {
          const __m512 xs = _mm512_set1_ps(static_cast<float>(x[t][b].bsums[2 * i] + x[t][b].bsums[2 * i + 1]));
#pragma GCC unroll 2
          for (int v = 0; v < NV; ++v) sacc[t][v] = _mm512_fnmadd_ps(_mm512_loadu_ps(w[v][b].mn[i]), xs, sacc[t][v]);
        }
      }
    }
#pragma GCC unroll 6
    for (int t = 0; t < RT; ++t) {
      const __m512 dx = _mm512_set1_ps(x[t][b].d);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v)
        _mm512_storeu_ps(out[t] + 16 * v, _mm512_fmadd_ps(sacc[t][v], dx, _mm512_loadu_ps(out[t] + 16 * v)));
    }
  }
}

template <int NV, bool Six>
inline void vnni_k_rows(const PackedK16* const* w, std::size_t nb, const BlockQ8x256* const* x, std::size_t rt,
                        float (*out)[32]) {
  switch (rt) {
    case 6: vnni_k_tile<6, NV, Six>(w, nb, x, out); break;
    case 5: vnni_k_tile<5, NV, Six>(w, nb, x, out); break;
    case 4: vnni_k_tile<4, NV, Six>(w, nb, x, out); break;
    case 3: vnni_k_tile<3, NV, Six>(w, nb, x, out); break;
    case 2: vnni_k_tile<2, NV, Six>(w, nb, x, out); break;
    default: vnni_k_tile<1, NV, Six>(w, nb, x, out); break;
  }
}

// A prefill task of K-quant weights, as vnni_block.
template <GgmlType Ty>
void vnni_k_block(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  constexpr bool kSix = Ty == GgmlType::q6_k;
  const std::size_t nb = a.K / 256, groups = (n1 - n0 + 15) / 16;
  auto* packed = reinterpret_cast<PackedK16*>(packed_weight_buffer(groups * nb * sizeof(PackedK16) / sizeof(float)));
  for (std::size_t g = 0; g < groups; ++g)
    for (std::size_t b = 0; b < nb; ++b) pack_k16<Ty>(a, n0 + 16 * g, n1 - 1, b, packed + g * nb + b);
  vnni_sweep<PackedK16, BlockQ8x256>(
      a, n0, n1, t0, t1, packed, nb,
      [&](const PackedK16* const* w, std::size_t nv, const BlockQ8x256* const* x, std::size_t rt, float (*out)[32]) {
        if (nv == 2)
          vnni_k_rows<2, kSix>(w, nb, x, rt, out);
        else
          vnni_k_rows<1, kSix>(w, nb, x, rt, out);
      });
}

}  // namespace

#if defined(PONDER_SIMD_EMU)
#define PONDER_AVX512_ENTRY block_avx512_emulated
#define PONDER_AMX_ENTRY block_amx_emulated
#define PONDER_PACK_BF16_ENTRY pack_amx_bf16_emulated
#else
#define PONDER_AVX512_ENTRY block_avx512
#define PONDER_AMX_ENTRY block_amx
#define PONDER_PACK_BF16_ENTRY pack_amx_bf16
#endif

void PONDER_PACK_BF16_ENTRY(const float* x, std::size_t K, std::size_t T, std::size_t g, AmxBf16Chunk* out) {
  const std::size_t chunks = (K + 31) / 32;
  std::memset(out, 0, chunks * sizeof *out);
  for (std::size_t j = 0; j < 16 && 16 * g + j < T; ++j) {
    const float* row = x + (16 * g + j) * K;
    for (std::size_t c = 0; c < chunks; ++c) {
      __m512 v0, v1;
      load_chunk(row, K, c, &v0, &v1);
      // hi: the top 8 significant bits; the rest r = x - hi (exact) splits the same way into
      // mid and lo = r - mid (exact, at most 8 significant bits: a bf16 as it is).
      __m512i h0, h1;
      const __m512 r0 = split_hi(v0, &h0), r1 = split_hi(v1, &h1);
      const __m512i m0 = top8(r0), m1 = top8(r1);
      const __m512 l0 = minus(r0, m0), l1 = minus(r1, m1);
      const __m512i parts[3] = {high_words(h0, h1), high_words(m0, m1),
                                high_words(_mm512_castps_si512(l0), _mm512_castps_si512(l1))};
      for (int p = 0; p < 3; ++p) {
        // Dword r of the 32 values (the pair 2 r, 2 r + 1) goes to row r, column j.
        alignas(64) std::uint32_t pairs[16];
        _mm512_store_si512(pairs, parts[p]);
        for (int r = 0; r < 16; ++r) std::memcpy(&out[c].v[p][r][2 * j], &pairs[r], 4);
      }
    }
  }
}

namespace {

// Tile 2 from the 16 BF16 weight rows at w, chunk c: read in place (a whole chunk) or from a
// zero-padded copy (the last, partial chunk).
inline void load_weight_chunk(const unsigned char* w, std::size_t rb, std::size_t K, std::size_t c,
                              std::uint16_t (*tail)[32]) {
  if (32 * c + 32 <= K) {
    _tile_loadd(2, w + 64 * c, rb);
    return;
  }
  for (int i = 0; i < 16; ++i) {
    std::memset(tail[i], 0, 64);
    std::memcpy(tail[i], w + i * rb + 64 * c, 2 * (K - 32 * c));
  }
  tiles_read_memory();
  _tile_loadd(2, tail, 64);
  tiles_read_memory();
}

// One chunk's products into tile 0 (group x0) and, when Two, tile 1 (group x1), in the order
// above; every output goes through the same sequence whether its group is in tile 0 or 1.
template <bool Two>
inline void bf16_products(const AmxBf16Chunk* x0, const AmxBf16Chunk* x1) {
  _tile_loadd(4, x0->v[0], 64);
  _tile_loadd(5, x0->v[1], 64);
  if constexpr (Two) {
    _tile_loadd(6, x1->v[0], 64);
    _tile_loadd(7, x1->v[1], 64);
  }
  _tile_dpbf16ps(0, 2, 4);
  if constexpr (Two) _tile_dpbf16ps(1, 2, 6);
  _tile_dpbf16ps(0, 2, 5);
  if constexpr (Two) _tile_dpbf16ps(1, 2, 7);
  _tile_loadd(4, x0->v[2], 64);
  if constexpr (Two) _tile_loadd(6, x1->v[2], 64);
  _tile_dpbf16ps(0, 2, 4);
  if constexpr (Two) _tile_dpbf16ps(1, 2, 6);
}

// Weight rows [n0, n1) (whole groups of 16) x activation rows [t0, t1) (t0 a multiple of 16), 32
// activation rows (two C tiles) at a time.
void amx_bf16_run(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  configure_bf16_tiles();
  const std::size_t chunks = (a.K + 31) / 32, rb = a.w_row_bytes;
  alignas(64) std::uint16_t tail[16][32];
  alignas(64) float out[2][16][16];
  for (std::size_t n = n0; n + 16 <= n1; n += 16) {
    const unsigned char* w = a.w + n * rb;
    for (std::size_t t = t0; t < t1; t += 32) {
      const bool two = t1 - t > 16;
      const AmxBf16Chunk* x0 = a.xbf16 + (t / 16) * chunks;
      _tile_zero(0);
      if (two) _tile_zero(1);
      for (std::size_t c = 0; c < chunks; ++c) {
        load_weight_chunk(w, rb, a.K, c, tail);
        if (two)
          bf16_products<true>(x0 + c, x0 + chunks + c);
        else
          bf16_products<false>(x0 + c, nullptr);
      }
      _tile_stored(0, out[0], 64);
      if (two) _tile_stored(1, out[1], 64);
      const std::size_t tn = t1 - t < 32 ? t1 - t : 32;
      for (std::size_t j = 0; j < tn; ++j)
        for (int i = 0; i < 16; ++i) a.y[(t + j) * a.N + n + i] = out[j / 16][i][j % 16];
    }
  }
  _tile_release();
}

}  // namespace

// Prefill of BF16 weights (amx_takes): the whole groups of 16 weight rows by AMX, the last N % 16
// rows and everything else by the AVX-512 kernels.
void PONDER_AMX_ENTRY(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  if (!amx_takes(a.type, a.T) || a.xbf16 == nullptr) {
    PONDER_AVX512_ENTRY(a, n0, n1, t0, t1);
    return;
  }
  const std::size_t whole = a.N / 16 * 16, amx_end = n1 < whole ? n1 : whole;
  if (n0 < amx_end) amx_bf16_run(a, n0, amx_end, t0, t1);
  if (n1 > amx_end) PONDER_AVX512_ENTRY(a, n0 > amx_end ? n0 : amx_end, n1, t0, t1);
}

void PONDER_AVX512_ENTRY(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  if (a.xt != nullptr) {  // packed prefill of the float types (packed_takes)
    switch (a.type) {
      case GgmlType::f32: return packed_block<Avx512, GgmlType::f32>(a, n0, n1, t0, t1);
      case GgmlType::f16: return packed_block<Avx512, GgmlType::f16>(a, n0, n1, t0, t1);
      case GgmlType::bf16: return packed_block<Avx512, GgmlType::bf16>(a, n0, n1, t0, t1);
      default: break;
    }
  }
  if (a.T > 1) {  // prefill of the block types: VNNI outer products
    switch (a.type) {
      case GgmlType::q8_0: return vnni_block<false>(a, n0, n1, t0, t1);
      case GgmlType::q4_0: return vnni_block<true>(a, n0, n1, t0, t1);
      case GgmlType::q4_k: return vnni_k_block<GgmlType::q4_k>(a, n0, n1, t0, t1);
      case GgmlType::q5_k: return vnni_k_block<GgmlType::q5_k>(a, n0, n1, t0, t1);
      case GgmlType::q6_k: return vnni_k_block<GgmlType::q6_k>(a, n0, n1, t0, t1);
      default: break;
    }
  }
  // Decode's prefetch level as a template argument (a.prefetch: none in prefill, matmul_on).
  switch (a.type) {
    case GgmlType::f32:
      return with_stream_prefetch(a.prefetch,
                                  [&](auto s) { float_block<Avx512Stream<s()>, GgmlType::f32>(a, n0, n1, t0, t1); });
    case GgmlType::f16:
      return with_stream_prefetch(a.prefetch,
                                  [&](auto s) { float_block<Avx512Stream<s()>, GgmlType::f16>(a, n0, n1, t0, t1); });
    case GgmlType::bf16:
      return with_stream_prefetch(a.prefetch,
                                  [&](auto s) { float_block<Avx512Stream<s()>, GgmlType::bf16>(a, n0, n1, t0, t1); });
    case GgmlType::q8_0: return with_stream_prefetch(a.prefetch, [&](auto s) { q8_0_decode<s()>(a, n0, n1); });
    case GgmlType::q4_0: int8_decode<Groups<Q4_0Pairs>>(a, n0, n1); break;
    case GgmlType::q4_k: int8_decode<QK45<false>>(a, n0, n1); break;
    case GgmlType::q5_k: int8_decode<QK45<true>>(a, n0, n1); break;
    case GgmlType::q6_k: int8_decode<Q6K>(a, n0, n1); break;
    default: break;
  }
}

}  // namespace ponder::cpu::detail
