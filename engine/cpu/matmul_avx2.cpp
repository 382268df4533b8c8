// AVX2 + FMA + F16C kernels for matmul (compiled with -mavx2 -mfma -mf16c; called only when the
// CPU has them). See matmul.h for the numerics and matmul_internal.h for the rules of this file.
//
// Shapes: a "tile" of prefill (T > 1) is R weight rows x C activation rows. Each output element
// has its own accumulators, updated by the same instructions in the same order in every tile
// shape, so a prefill's Y[t, n] does not depend on which tile (or which thread) computed it, nor
// on how many rows were prefilled together. Decode (T = 1) has its own instruction sequences (the
// float types' float_gemv_rows; four accumulators per row instead of two for Q8_0/Q4_0), so its
// rounding differs from a prefill's; T = 1 always takes them, whatever the thread count, one row
// or two side by side.
//
// The loops over the C activation rows (C <= 4) carry `#pragma GCC unroll 4`: g++ -O2 leaves
// them rolled, and then keeps the per-row accumulators and pointers on the stack (a store and a
// reload per block; the Q8_0 prefill tiles ran at 60% of the unrolled speed for it).
#include <immintrin.h>

#include <cstring>

#include "engine/cpu/matmul_internal.h"
#include "engine/cpu/kernel_common.h"

namespace ponder::cpu::detail {
namespace {

// ---- F32 / F16 / BF16: widen 8 weights at a time, float FMAs ----

// Eight 16-bit values (F16 or BF16) widened to float.
template <GgmlType Ty>
inline __m256 widen8(__m128i h) {
  if constexpr (Ty == GgmlType::f16)
    return _mm256_cvtph_ps(h);
  else
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <GgmlType Ty>
inline __m256 load8(const unsigned char* row, std::size_t k) {
  if constexpr (Ty == GgmlType::f32)
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  else
    return widen8<Ty>(load128(row + 2 * k));
}

// The vector path of the float drivers in kernel_common.h: 8 lanes.
struct Avx2 {
  using Vec = __m256;
  static constexpr std::size_t kLanes = 8;
  static constexpr int kDecodeRows = 2;  // 4 rows' 16 accumulators would fill the 16 registers
  static constexpr bool kDecodePrefetch = true;
  static constexpr bool kDecodePrefetchL2 = false;  // kPrefetchL2Ahead: also used on AMD CPUs
  static constexpr int kPackedRows = 6;  // packed_tile
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec loadx(const float* x) { return _mm256_loadu_ps(x); }
  template <GgmlType Ty>
  static Vec loadw(const unsigned char* row, std::size_t k) { return load8<Ty>(row, k); }
  static Vec fma(Vec w, Vec x, Vec acc) { return _mm256_fmadd_ps(w, x, acc); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static float hsum(Vec v) { return detail::hsum(v); }
  // Decode, 32 elements of a row into its four accumulators.
  template <GgmlType Ty>
  static void gemv_step(const unsigned char* w, const float* x, std::size_t k, Vec* acc) {
    if constexpr (Ty == GgmlType::f32) {
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) acc[u] = fma(load8<Ty>(w, k + 8 * u), loadx(x + k + 8 * u), acc[u]);
    } else {
      // Two 32-byte loads per line, each widened half by half: from DRAM this read 5-15% faster
      // than four 16-byte loads on rows of 8960 (fewer loads waiting on each missed line).
      const __m256i v0 = load256(w + 2 * k), v1 = load256(w + 2 * k + 32);
      acc[0] = fma(widen8<Ty>(_mm256_castsi256_si128(v0)), loadx(x + k), acc[0]);
      acc[1] = fma(widen8<Ty>(_mm256_extracti128_si256(v0, 1)), loadx(x + k + 8), acc[1]);
      acc[2] = fma(widen8<Ty>(_mm256_castsi256_si128(v1)), loadx(x + k + 16), acc[2]);
      acc[3] = fma(widen8<Ty>(_mm256_extracti128_si256(v1, 1)), loadx(x + k + 24), acc[3]);
    }
  }
};

// ---- Block types: one weight row x C quantized activation rows, integer dot products ----

// dw (broadcast once per weight block) times an activation block's scale, in every lane: the
// same float product as dw * d broadcast, but the scale is broadcast from memory (a load) and
// multiplied in the vector unit, where `_mm256_set1_ps(dw * d)` took a scalar multiply and a
// register broadcast (a shuffle) per block and activation row.
inline __m256 scale(__m256 dw, const float& d) { return _mm256_mul_ps(dw, _mm256_broadcast_ss(&d)); }

// Q8_0 and Q4_0 take one block of 32 at a time (run_blocks32 below);
// `Tile::step<C>(w, b, x, acc)` adds block b of the weight row at `w` times the activation
// blocks x[c][b] into acc[c]. Decode keeps four accumulators per output (two gave a compute
// ceiling of ~15 GB/s per core, four ~25, both on weights in L2); every prefill tile keeps two
// (four per activation row would not fit the 16 registers with 4 rows).
struct Q8_0 {
  static constexpr std::size_t kBytes = 34;
  template <int C>
  static void step(const unsigned char* w, std::size_t b, const BlockQ8x32* const* x, __m256* acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256 dw = _mm256_set1_ps(half(w));
    const __m256i qw = load256(w + 2);
    const __m256i aw = _mm256_sign_epi8(qw, qw);  // |w| as unsigned bytes (-128 -> 128)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      // |w| * (x with w's sign): pairs at most 2 * 128 * 127 < 32767, no saturation.
      const __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(load256(x[c][b].qs), qw));
      const __m256i p32 = _mm256_madd_epi16(p16, ones);
      acc[c] = _mm256_fmadd_ps(scale(dw, x[c][b].d), _mm256_cvtepi32_ps(p32), acc[c]);
    }
  }
};

struct Q4_0 {
  static constexpr std::size_t kBytes = 18;
  template <int C>
  static void step(const unsigned char* w, std::size_t b, const BlockQ8x32* const* x, __m256* acc) {
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F);
    const __m256 dw = _mm256_set1_ps(half(w));
    const __m128i q = load128(w + 2);
    // Nibbles 0..15 unsigned: low nibbles are weights 0..15, high nibbles 16..31.
    const __m256i qw = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m256i p16 = _mm256_maddubs_epi16(qw, load256(x[c][b].qs));
      // sum (q - 8) x = sum q x - 8 sum x: the offset goes into lane 0.
      const __m256i p32 = _mm256_sub_epi32(_mm256_madd_epi16(p16, ones),
                                           _mm256_zextsi128_si256(_mm_cvtsi32_si128(8 * x[c][b].sum)));
      acc[c] = _mm256_fmadd_ps(scale(dw, x[c][b].d), _mm256_cvtepi32_ps(p32), acc[c]);
    }
  }
};

// Q8_0 / Q4_0: weight rows n[0..P) x activation rows [t, t + C), one block per step
// (Tile::step<C>(w, b, x, acc[C]) adds block b of the row at w). A accumulators per output, block
// j into accumulator j % A: one chain would be bound by the FMA latency rather than by memory.
// The loop is unrolled by A so that the accumulators stay in registers (indexed at run time they
// were kept on the stack, and every block waited for a store and a reload). P = 2 (decode only)
// reads two rows side by side: two sequential streams per thread instead of one (a GEMV of Q8_0
// rows from DRAM read ~6% more per second on two threads, ~10% on one). Each row goes through
// the same instructions whatever P is, so its result does not depend on the pairing.
template <class Tile, int P, int C, int A>
void run_blocks32(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
  constexpr std::size_t kBytes = Tile::kBytes;
  const TileRows<BlockQ8x32, P, C> tr(a, n, t);
  const unsigned char* const* w = tr.w;
  const BlockQ8x32* const* x = tr.x;
  __m256 acc[P][A][C];
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int u = 0; u < A; ++u)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[p][u][c] = _mm256_setzero_ps();
  const std::size_t nb = a.K / 32;
  std::size_t b = 0;
  for (; b + A <= nb; b += A) {
    if constexpr (C == 1) {  // decode streams the rows: a line ahead per 64 bytes read
#pragma GCC unroll 4
      for (std::size_t off = 0; off < A * kBytes; off += 64)
#pragma GCC unroll 2
        for (int p = 0; p < P; ++p)
          _mm_prefetch(reinterpret_cast<const char*>(w[p] + b * kBytes + off) + kPrefetchAhead, _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int u = 0; u < A; ++u)
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p) Tile::template step<C>(w[p] + (b + u) * kBytes, b + u, x, acc[p][u]);
  }
  // Fewer than A blocks left: to the accumulators in turn.
#pragma GCC unroll 4
  for (int u = 0; u < A; ++u)
    if (b < nb) {
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p) Tile::template step<C>(w[p] + b * kBytes, b, x, acc[p][u]);
      ++b;
    }
#pragma GCC unroll 2
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      __m256 s = acc[p][0][c];
      if constexpr (A >= 2) s = _mm256_add_ps(s, acc[p][1][c]);
      if constexpr (A == 4) s = _mm256_add_ps(s, _mm256_add_ps(acc[p][2][c], acc[p][3][c]));
      a.y[(t + c) * a.N + n[p]] = hsum(s);
    }
}

// Q8_0 / Q4_0 as a row kernel for int8_block: DecodeA accumulators per output in decode (T = 1),
// PrefillA in every prefill tile, one-row tiles included (a prefill's result must not depend on
// its tile shape).
template <class Tile, int DecodeA, int PrefillA>
struct Blocks32 {
  template <int P, int C>
  static void rows(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
    if constexpr (C == 1) {
      if (a.T == 1) {
        run_blocks32<Tile, P, 1, DecodeA>(a, n, t);
        return;
      }
    }
    run_blocks32<Tile, P, C, PrefillA>(a, n, t);
  }
};

// An empty asm that takes and returns v in a register: the integer sums of the K-quant tiles
// are added in source order instead of being reassociated by g++ into one chain at the end of
// the block, which kept every product of the block alive at once (with C = 4 rows, spilled to
// the stack: a store and a reload per product).
inline void keep_in_order(__m256i& v) { asm("" : "+x"(v)); }

// Shuffle control for _mm256_shuffle_epi8 that copies 16-bit word i (of each 128-bit lane) to
// every word of a lane; pair_broadcast(i): word 2i in the low lane, word 2i+1 in the high lane.
inline __m256i word_broadcast(int i) { return _mm256_set1_epi16(static_cast<short>(((2 * i + 1) << 8) | (2 * i))); }
inline __m256i pair_broadcast(int i) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(((4 * i + 3) << 8) | (4 * i + 2))),
                          _mm_set1_epi16(static_cast<short>(((4 * i + 1) << 8) | (4 * i))));
}

// Q6_K: per 128 weights, 64 bytes of low nibbles and 32 of 2-bit highs; a signed 8-bit scale
// per 16 weights; value d * sc * (q - 32), q in 0..63.
struct Q6K {
  // Weight rows n[0..P) x activation rows [t, t + C).
  template <int P, int C>
  static void rows(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
    const TileRows<BlockQ8x256, P, C> tr(a, n, t);
    const unsigned char* const* wrow = tr.w;
    const BlockQ8x256* const* x = tr.x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256 acc[P][C];
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[p][c] = _mm256_setzero_ps();
    const std::size_t nb = a.K / 256;
    for (std::size_t b = 0; b < nb; ++b) {
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p) {
        const unsigned char* w = wrow[p] + b * 210;
        prefetch_block<C>(w, 210);
        const auto* sc = reinterpret_cast<const std::int8_t*>(w + 192);
        const float d = half(w + 208);
        const __m256i sc16 = _mm256_cvtepi8_epi16(load128(sc));
        __m256i isum[C];
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
#pragma GCC unroll 2  // as the Q4_K loop below: constant shuffle controls
        for (int h = 0; h < 2; ++h) {
          const __m256i ql0 = load256(w + 64 * h), ql1 = load256(w + 64 * h + 32);
          const __m256i qh = load256(w + 128 + 32 * h);
          const __m256i q0 = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                             _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
          const __m256i q1 = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
          const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
          const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
          // Scales sc[8h .. 8h+7] as words in both lanes; s_i: sc[8h+2i] in the low lane (weights
          // 0..15 of the 32), sc[8h+2i+1] in the high lane (16..31).
          const __m256i sch = _mm256_broadcastsi128_si256(
              _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8 * h))));
          const __m256i s0 = _mm256_shuffle_epi8(sch, pair_broadcast(0));
          const __m256i s1 = _mm256_shuffle_epi8(sch, pair_broadcast(1));
          const __m256i s2 = _mm256_shuffle_epi8(sch, pair_broadcast(2));
          const __m256i s3 = _mm256_shuffle_epi8(sch, pair_broadcast(3));
#pragma GCC unroll 4
          for (int c = 0; c < C; ++c) {
            const std::int8_t* xq = x[c][b].qs + 128 * h;
            // q <= 63, |x| <= 127: pairs <= 16002; times |scale| <= 128 and summed over the
            // block: below 2^29.
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, load256(xq)), s0);
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q1, load256(xq + 32)), s1);
            const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(q2, load256(xq + 64)), s2);
            const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(q3, load256(xq + 96)), s3);
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3)));
            keep_in_order(isum[c]);
          }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
          const BlockQ8x256& xb = x[c][b];
          // The -32 offset: 32 * sum over the 16-blocks of sc[g] * (sum of their activations).
          const __m256i off = _mm256_madd_epi16(sc16, load256(xb.bsums));
          isum[c] = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(off, 5));
          acc[p][c] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(isum[c]), acc[p][c]);
        }
      }
    }
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) a.y[(t + c) * a.N + n[p]] = hsum(acc[p][c]);
  }
};

// ---- Activation quantization (matmul.h): d = max|x| / 127, q = nearest-even(x / d) ----
// The same operations as written out in the tests: |x| max, one float division, one float
// reciprocal, a multiply and a round per element.

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline int hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline float abs_max(const float* x, std::size_t n) {  // n a multiple of 32
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_setzero_ps();
  for (std::size_t j = 0; j < n; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
  return hmax(m);
}

// 32 values times `id`, rounded and clamped to [-127, 127]: the bytes to qs, the four int32
// vectors (values 0-7, 8-15, 16-23, 24-31) to `i`.
inline void quant32(const float* x, __m256 id, std::int8_t* qs, __m256i i[4]) {
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  for (int k = 0; k < 4; ++k) {
    __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    i[k] = _mm256_cvtps_epi32(v);
  }
  // packs work per 128-bit lane; the permutation puts the 4-byte groups back in order.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// One block of 32 values of X: its bytes to qs, its scale to *d, the sum of its bytes to *sum.
inline void quant_block(const float* x, std::int8_t* qs, float* d, std::int32_t* sum) {
  const float scale = abs_max(x, 32) / 127.0f;
  const float id = scale != 0.0f ? 1.0f / scale : 0.0f;
  __m256i i[4];
  quant32(x, _mm256_set1_ps(id), qs, i);
  *d = scale;
  *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3])));
}

}  // namespace

void quantize_row_q8x32(const float* x, std::size_t K, BlockQ8x32* out) {
  for (std::size_t b = 0; b < K / 32; ++b, x += 32) quant_block(x, out[b].qs, &out[b].d, &out[b].sum);
}

void quantize_row_groups(GgmlType type, const float* x, std::size_t K, GroupQ8x512* out) {
  const std::size_t blocks = K / 32;
  const std::int32_t offset = type == GgmlType::q8_0 ? -128 : -8;
  // Each group made in L1, then written out with streaming stores: the buffer's lines were read
  // by the other threads in the call before, and plain stores waited for each line's ownership
  // to come back from them.
  alignas(64) GroupQ8x512 g;
  for (std::size_t first = 0; first < blocks; first += 16) {
    for (std::size_t i = 0; i < 16; ++i) {
      if (first + i < blocks) {
        std::int32_t sum;
        quant_block(x + 32 * (first + i), g.qs + 32 * i, &g.d[i], &sum);
        g.start[i] = offset * sum;
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(g.qs + 32 * i), _mm256_setzero_si256());
        g.start[i] = 0;
        g.d[i] = 0.0f;
      }
    }
    const auto* from = reinterpret_cast<const __m256i*>(&g);
    auto* to = reinterpret_cast<__m256i*>(out + first / 16);
    for (std::size_t k = 0; k < sizeof g / sizeof(__m256i); ++k)
      _mm256_stream_si256(to + k, _mm256_load_si256(from + k));
  }
  _mm_sfence();  // the streamed lines visible before whatever publishes them
}

void stream_copy(const float* src, float* dst, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
  _mm_sfence();
}

void super_row_q8x256(const BlockQ8x256* x, std::size_t K, SuperQuadQ8* out) {
  const std::size_t supers = K / 256;
  for (std::size_t g = 0; g < (supers + 3) / 4; ++g) {
    SuperQuadQ8& q = out[g];
    for (std::size_t i = 0; i < 4; ++i) {
      const std::size_t b = 4 * g + i;
      if (b >= supers) {  // padding: no values, no sums, scale 0
        std::memset(q.qs[i], 0, sizeof q.qs[i]);
        std::memset(q.sums + 8 * i, 0, 8 * sizeof q.sums[0]);
        q.d[i] = 0.0f;
        continue;
      }
      for (int h = 0; h < 2; ++h)               // 128 values
        for (int part = 0; part < 4; ++part) {  // 0-31, 64-95, 32-63, 96-127 of them
          const int from = 128 * h + 32 * ((part % 2) * 2 + part / 2);
          _mm256_store_si256(reinterpret_cast<__m256i*>(q.qs[i] + 128 * h + 32 * part),
                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs + from)));
        }
      for (int j = 0; j < 8; ++j)
        q.sums[8 * i + j] = static_cast<std::int16_t>(x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
      q.d[i] = x[b].d;
    }
  }
}

void quantize_row_q8x256(const float* x, std::size_t K, BlockQ8x256* out) {
  for (std::size_t b = 0; b < K / 256; ++b, x += 256) {
    const float d = abs_max(x, 256) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    for (int g = 0; g < 8; ++g) {
      __m256i i[4];
      quant32(x + 32 * g, vid, out[b].qs + 32 * g, i);
      out[b].bsums[2 * g] = static_cast<std::int16_t>(hsum_epi32(_mm256_add_epi32(i[0], i[1])));
      out[b].bsums[2 * g + 1] = static_cast<std::int16_t>(hsum_epi32(_mm256_add_epi32(i[2], i[3])));
    }
    out[b].d = d;
  }
}

namespace {

// Q4_K and Q5_K: per 64 weights, 32 bytes of low nibbles (weights j..j+31) and high nibbles
// (j+32..j+63), each 32 with its own 6-bit scale; Q5_K adds a fifth bit from qh.
template <bool Five>
struct QK45 {
  // Weight rows n[0..P) x activation rows [t, t + C).
  template <int P, int C>
  static void rows(const MatmulArgs& a, const std::size_t* n, std::size_t t) {
    const TileRows<BlockQ8x256, P, C> tr(a, n, t);
    const unsigned char* const* wrow = tr.w;
    const BlockQ8x256* const* x = tr.x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit0 = _mm256_set1_epi8(1), bit1 = _mm256_set1_epi8(2);
    __m256 acc[P][C];
    __m128 mins[P][C];  // dmin * m[j] * (sum of the activations of 32-block j), four lanes
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        acc[p][c] = _mm256_setzero_ps();
        mins[p][c] = _mm_setzero_ps();
      }
    const std::size_t nb = a.K / 256;
    constexpr std::size_t block_bytes = Five ? 176 : 144;
    for (std::size_t b = 0; b < nb; ++b) {
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p) {
        const unsigned char* w = wrow[p] + b * block_bytes;
        prefetch_block<C>(w, static_cast<int>(block_bytes));
        // d and dmin widened together (lanes 0 and 1).
        std::uint32_t dd_bits;
        std::memcpy(&dd_bits, w, 4);
        const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(dd_bits)));
        const __m128i sm = unpack_scales_k4(w + 4);
        // The eight scales as 16-bit words, in both 128-bit lanes (for in-lane shuffles).
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
        const unsigned char* qs = w + (Five ? 48 : 16);
        __m256i hb = Five ? load256(w + 16) : _mm256_setzero_si256();
        __m256i isum[C];
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
        // Unrolled, so that the shuffle controls below are constants (as a loop, each was built
        // from j with a move and a broadcast: Q4_K decode ran at 8 GB/cpu-s for it).
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          const __m256i q = load256(qs + 32 * j);
          __m256i qlo = _mm256_and_si256(q, m4);
          __m256i qhi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
          if constexpr (Five) {
            // After j shifts by 2, bits 0 and 1 of each byte are its bits 2j and 2j+1.
            qlo = _mm256_or_si256(qlo, _mm256_slli_epi16(_mm256_and_si256(hb, bit0), 4));
            qhi = _mm256_or_si256(qhi, _mm256_slli_epi16(_mm256_and_si256(hb, bit1), 3));
            hb = _mm256_srli_epi16(hb, 2);
          }
          const __m256i slo = _mm256_shuffle_epi8(sc16, word_broadcast(2 * j));
          const __m256i shi = _mm256_shuffle_epi8(sc16, word_broadcast(2 * j + 1));
#pragma GCC unroll 4
          for (int c = 0; c < C; ++c) {
            const std::int8_t* xq = x[c][b].qs + 64 * j;
            // q <= 31, |x| <= 127: pairs <= 7874; times scale <= 63, summed: far from overflow.
            const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(qlo, load256(xq)), slo);
            const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(qhi, load256(xq + 32)), shi);
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(plo, phi));
            keep_in_order(isum[c]);
          }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
          const BlockQ8x256& xb = x[c][b];
          const __m128 scale = _mm_mul_ps(dd, _mm_set1_ps(xb.d));  // d * xd, dmin * xd
          acc[p][c] = _mm256_fmadd_ps(_mm256_broadcastss_ps(scale), _mm256_cvtepi32_ps(isum[c]), acc[p][c]);
          mins[p][c] = add_mins_k4(mins[p][c], scale, m16, xb.bsums);
        }
      }
    }
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) a.y[(t + c) * a.N + n[p]] = hsum(acc[p][c]) - hsum128(mins[p][c]);
  }
};

}  // namespace

void block_avx2(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  if (a.xt != nullptr) {  // packed prefill (packed_takes)
    switch (a.type) {
      case GgmlType::f32: packed_block<Avx2, GgmlType::f32>(a, n0, n1, t0, t1); return;
      case GgmlType::f16: packed_block<Avx2, GgmlType::f16>(a, n0, n1, t0, t1); return;
      case GgmlType::bf16: packed_block<Avx2, GgmlType::bf16>(a, n0, n1, t0, t1); return;
      case GgmlType::q8_0: packed_block<Avx2, GgmlType::q8_0>(a, n0, n1, t0, t1); return;
      case GgmlType::q4_0: packed_block<Avx2, GgmlType::q4_0>(a, n0, n1, t0, t1); return;
      default: break;
    }
  }
  // The float types' prefill is always packed here (packed_takes): what comes here is decode.
  switch (a.type) {
    case GgmlType::f32: float_decode<Avx2, GgmlType::f32>(a, n0, n1); break;
    case GgmlType::f16: float_decode<Avx2, GgmlType::f16>(a, n0, n1); break;
    case GgmlType::bf16: float_decode<Avx2, GgmlType::bf16>(a, n0, n1); break;
    case GgmlType::q8_0: int8_block<Blocks32<Q8_0, 4, 2>>(a, n0, n1, t0, t1); break;
    case GgmlType::q4_0: int8_block<Blocks32<Q4_0, 4, 2>>(a, n0, n1, t0, t1); break;
    case GgmlType::q4_k: int8_block<QK45<false>>(a, n0, n1, t0, t1); break;
    case GgmlType::q5_k: int8_block<QK45<true>>(a, n0, n1, t0, t1); break;
    case GgmlType::q6_k: int8_block<Q6K>(a, n0, n1, t0, t1); break;
    default: break;
  }
}

}  // namespace ponder::cpu::detail
