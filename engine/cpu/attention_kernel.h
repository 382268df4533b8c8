#pragma once
// The attention kernels, written once for every vector width: templates over the vector path of
// the file that includes them (attention_avx2.cpp: 8 lanes; attention_avx512.cpp: 16 lanes, and
// the 8-lane ones again with AVX-512's 32 registers) and over NQ, the query rows of one register
// block (3 with 16 registers, 6 with 32). Include after the intrinsics header. In an unnamed
// namespace on purpose, as kernel_common.h: each kernel file, compiled with its own ISA flags,
// gets its own copy.
//
// The tile (attention_tile): R = queries × heads rows sharing one KV head. For each block of
// keys: the block's K rows are widened to float once, with the keys in the lanes (kt[d][j],
// turned 8 x 8 in registers), every row's scores are computed against them (NQ rows × NV vectors
// of keys, the query's value broadcast: no lane sums), the online softmax updates each row's max
// m, sum l and accumulator, then the block's V rows are widened once and added in with the
// probabilities. Each row's numbers go through the same instructions in the same order whatever
// its neighbours in the tile and whatever NQ, so a row's result does not depend on the tiling.
// (The keys in the lanes: bench_attention, a 512-token prefill after 3,584 on 1 thread, 144.4-145.0
// -> 136.0-136.6 ms a layer; the avx2 path 174-175 -> 161-163.)
// Decode over a long context (attention_chunk, attention_merge): the same steps over a chunk of
// the keys for every head, reading the cache rows straight (4 keys' rows against NQ query rows at
// a time, lanes summed: with only the group's query rows to share it, turning a block of keys
// would cost as much as its scores), then the chunks' partial results merged in order.
//
// The vector path V provides: Vec, kLanes; zero(), load(const float*), store(float*, Vec),
// set1(float), fmadd(a, b, c), fnmadd(a, b, c) (c - a b), mul, add, sub, max; round(Vec) (to the
// nearest integer), pow2(n) (2^n for integer-valued n in [-126, 127]), zero_below(x, y, limit)
// (y, with 0 in the lanes where x < limit); widen_f16(p) and widen_i8(p) (kLanes F16 values /
// int8 at p as floats); fold(Vec) (an __m256 whose lanes add up to the same sum, in a fixed
// order; the identity for 8 lanes); fold_max(Vec) (an __m256 with the same largest lane);
// visible(p, j, seen) (p with 0 in lanes j + i >= seen); Lanes8 (the 8-lane path, V itself where
// kLanes is 8: the tile turns its keys 8 x 8).
#include <cstring>

#include "engine/cpu/attention_internal.h"

namespace ponder::cpu::detail {
namespace {

constexpr std::uint32_t kB = kAttentionKeyBlock;

inline std::size_t min_size(std::size_t a, std::size_t b) { return a < b ? a : b; }

// Lane i: the sum of the 8 lanes v0..v7 of input i, as ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)).
inline __m256 reduce8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                      __m256 a7) {
  const __m256 t0 = _mm256_hadd_ps(a0, a1), t1 = _mm256_hadd_ps(a2, a3);
  const __m256 t2 = _mm256_hadd_ps(a4, a5), t3 = _mm256_hadd_ps(a6, a7);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Sum of the 8 lanes in the order of reduce8.
inline float reduce_sum(__m256 v) {
  const __m256 z = _mm256_setzero_ps();
  return _mm256_cvtss_f32(reduce8(v, z, z, z, z, z, z, z));
}

// The largest of the 8 lanes.
inline float reduce_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

// e^x per lane for x ≤ 0 (Cephes' expf: x = n ln2 + r, a degree-7 polynomial in r, relative
// error ~2e-7); lanes below -87 (e^x < 2e-38, nothing next to the row's maximum, which is 1) are 0.
template <class V>
inline typename V::Vec exp_lanes(typename V::Vec x) {
  using Vec = typename V::Vec;
  const Vec x0 = x;
  x = V::max(x, V::set1(-87.0f));
  const Vec n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  Vec r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  Vec y = V::set1(1.9875691500e-4f);
  y = V::fmadd(y, r, V::set1(1.3981999507e-3f));
  y = V::fmadd(y, r, V::set1(8.3334519073e-3f));
  y = V::fmadd(y, r, V::set1(4.1665795894e-2f));
  y = V::fmadd(y, r, V::set1(1.6666665459e-1f));
  y = V::fmadd(y, r, V::set1(5.0000001201e-1f));
  y = V::fmadd(y, V::mul(r, r), r);
  y = V::add(y, V::set1(1.0f));
  return V::zero_below(x0, V::mul(y, V::pow2(n)), -87.0f);
}

// SwiGLU's product: g[i] = silu(g[i]) u[i], silu(x) = x s with s = 1 / (1 + z) for x >= 0 and
// z / (1 + z) below, z = e^-|x| (in exp_lanes' range; the same as x / (1 + e^-x) to float
// rounding). The last n % kLanes values through a zero-padded copy, by the same instructions.
// Needs of V also: neg_abs(x) (-|x|), div(a, b), select_nonneg(x, a, b) (a where x >= 0, else b).
template <class V>
void swiglu_lanes(float* g, const float* u, std::size_t n) {
  using Vec = typename V::Vec;
  constexpr std::size_t L = V::kLanes;
  auto product = [](Vec x, Vec up) {
    const Vec one = V::set1(1.0f);
    const Vec z = exp_lanes<V>(V::neg_abs(x));
    return V::mul(V::mul(x, V::div(V::select_nonneg(x, one, z), V::add(one, z))), up);
  };
  std::size_t i = 0;
  for (; i + L <= n; i += L) V::store(g + i, product(V::load(g + i), V::load(u + i)));
  if (i < n) {
    float tg[L] = {}, tu[L] = {};
    std::memcpy(tg, g + i, (n - i) * sizeof(float));
    std::memcpy(tu, u + i, (n - i) * sizeof(float));
    V::store(tg, product(V::load(tg), V::load(tu)));
    std::memcpy(g + i, tg, (n - i) * sizeof(float));
  }
}

// Rows [j0, j0 + nb) of a cache (K or V), the head at `head_offset`, widened to float:
// dst[j * D + i] (exactly the reference dequantizer's values). The same rows of the next block
// (below n_keys) are prefetched into L2 beside them.
template <class V>
void widen_block(const AttentionArgs& a, const unsigned char* cache, std::size_t head_offset, std::size_t j0,
                 std::size_t nb, std::size_t n_keys, float* dst) {
  const std::size_t D = a.head_dim;
  const std::size_t head_bytes = a.kv_type == GgmlType::f16 ? 2 * D : D / 32 * 34;
  for (std::size_t j = 0; j < nb; ++j, dst += D) {
    const unsigned char* row = cache + (j0 + j) * a.row_bytes + head_offset;
    if (j0 + j + kB < n_keys) prefetch_bytes(row + kB * a.row_bytes, head_bytes);
    if (a.kv_type == GgmlType::f16) {
      for (std::size_t i = 0; i < D; i += V::kLanes) V::store(dst + i, V::widen_f16(row + 2 * i));
    } else {  // q8_0: blocks of an F16 scale and 32 int8
      for (std::size_t b = 0; b < D / 32; ++b, row += 34) {
        unsigned short h;
        std::memcpy(&h, row, 2);
        const typename V::Vec d = V::set1(_cvtsh_ss(h));
        for (std::size_t i = 0; i < 32; i += V::kLanes) V::store(dst + 32 * b + i, V::mul(d, V::widen_i8(row + 2 + i)));
      }
    }
  }
}

// The loaders of scores_x4 (Key: key(i, d), 4 keys) and add_values (Value: value(j, d), a
// block's rows): kLanes floats of a row from dimension d, from float rows or straight from the
// F16 or Q8_0 rows of a cache (widened in registers, exactly as widen_block widens them).
template <class V>
struct FloatKeys {
  const float* k[4];
  typename V::Vec operator()(int i, std::size_t d) const { return V::load(k[i] + d); }
};
template <class V>
struct F16Keys {
  const unsigned char* k[4];
  typename V::Vec operator()(int i, std::size_t d) const { return V::widen_f16(k[i] + 2 * d); }
};
template <class V>
struct FloatRows {
  const float* v;
  std::size_t stride;  // floats
  typename V::Vec operator()(std::size_t j, std::size_t d) const { return V::load(v + j * stride + d); }
};
template <class V>
struct F16Rows {
  const unsigned char* v;
  std::size_t stride;  // bytes
  typename V::Vec operator()(std::size_t j, std::size_t d) const { return V::widen_f16(v + j * stride + 2 * d); }
};
// Q8_0 rows (blocks of an F16 scale and 32 int8): the block's scale times the values, as
// widen_block computes them (exactly: 11 by 8 significant bits).
template <class V>
inline typename V::Vec widen_q8_0(const unsigned char* row, std::size_t d) {
  const unsigned char* block = row + d / 32 * 34;
  unsigned short h;
  std::memcpy(&h, block, 2);
  return V::mul(V::set1(_cvtsh_ss(h)), V::widen_i8(block + 2 + d % 32));
}
template <class V>
struct Q8Keys {
  const unsigned char* k[4];
  typename V::Vec operator()(int i, std::size_t d) const { return widen_q8_0<V>(k[i], d); }
};
template <class V>
struct Q8Rows {
  const unsigned char* v;
  std::size_t stride;  // bytes
  typename V::Vec operator()(std::size_t j, std::size_t d) const { return widen_q8_0<V>(v + j * stride, d); }
};

// The 8 x 8 floats r[0..8) transposed in place: r[i][j] <- r[j][i].
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// A block's keys [0, nb) widened to float with the keys in the lanes: kt[d * kB + j] = key j's
// value d, 0 in the columns [nb, kB). `key(j, d)`: key j's 8 values from dimension d, an 8-lane
// loader above (FloatRows, F16Rows or Q8Rows of the 8-lane path: exactly the reference
// dequantizer's values). Blocks of 8 keys x 8 dimensions turned in registers. `first`: key 0's
// head slice of `head_bytes` bytes in the cache, rows `row_bytes` apart; the same slices of the
// next block's first `ahead` keys are prefetched into L2 beside them.
template <class Rows>
inline void widen_keys_transposed(const Rows& key, std::size_t nb, std::size_t D, const unsigned char* first,
                                  std::size_t row_bytes, std::size_t head_bytes, std::size_t ahead, float* kt) {
  for (std::size_t j = 0; j < kB; j += 8) {
    const std::size_t n = j < nb ? min_size(8, nb - j) : 0;
    for (std::size_t i = j; i < j + n && i < ahead; ++i) prefetch_bytes(first + (kB + i) * row_bytes, head_bytes);
    for (std::size_t d = 0; d < D; d += 8) {
      __m256 r[8];
      if (n == 8) {
#pragma GCC unroll 8
        for (std::size_t i = 0; i < 8; ++i) r[i] = key(j + i, d);
      } else {  // the block's last keys, and the columns past them
        for (std::size_t i = 0; i < 8; ++i) r[i] = i < n ? key(j + i, d) : _mm256_setzero_ps();
      }
      transpose8(r);
#pragma GCC unroll 8
      for (std::size_t i = 0; i < 8; ++i) _mm256_storeu_ps(kt + (d + i) * kB + j, r[i]);
    }
  }
}

// Scores of NQ query rows q[0..NQ) against 4 keys (D floats each; key(i, d) gives key i's
// kLanes values from dimension d), scaled: s[r][0..3]. One accumulator per (row, key): 12 chains
// in flight for 3 rows (2 rows, 8 chains, were bound by the FMA latency).
template <class V, int NQ, class Key>
inline void scores_x4(const float* const q[NQ], const Key& key, std::size_t D, float scale, float* const s[NQ]) {
  using Vec = typename V::Vec;
  Vec a[NQ][4];
#pragma GCC unroll 8
  for (int r = 0; r < NQ; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < 4; ++i) a[r][i] = V::zero();
  for (std::size_t d = 0; d < D; d += V::kLanes) {
    Vec kv[4];
#pragma GCC unroll 8
    for (int i = 0; i < 4; ++i) kv[i] = key(i, d);
#pragma GCC unroll 8
    for (int r = 0; r < NQ; ++r) {
      const Vec x = V::load(q[r] + d);
#pragma GCC unroll 8
      for (int i = 0; i < 4; ++i) a[r][i] = V::fmadd(x, kv[i], a[r][i]);
    }
  }
  const __m256 sc = _mm256_set1_ps(scale), z = _mm256_setzero_ps();
  // Unrolled: g++ -O2 left this loop rolled, so it kept the accumulators in an array on the
  // stack, zeroed there and stored for every 4 keys (bench_attention, GFLOP/s: decode after
  // 8,191 keys on 1 thread 73 -> 77; after 575 on 2, 108-110 -> 113-115; a 512-token prefill
  // after 3,584 on 2, 165-166 -> 171-172).
#pragma GCC unroll 8
  for (int r = 0; r < NQ; r += 2) {
    const bool pair = r + 1 < NQ;
    const __m256 v = _mm256_mul_ps(reduce8(V::fold(a[r][0]), V::fold(a[r][1]), V::fold(a[r][2]), V::fold(a[r][3]),
                                           pair ? V::fold(a[r + 1][0]) : z, pair ? V::fold(a[r + 1][1]) : z,
                                           pair ? V::fold(a[r + 1][2]) : z, pair ? V::fold(a[r + 1][3]) : z),
                                   sc);
    _mm_storeu_ps(s[r], _mm256_castps256_ps128(v));
    if (pair) _mm_storeu_ps(s[r + 1], _mm256_extractf128_ps(v, 1));
  }
}

// Calls f.template operator()<n>(r) for sets of rows [r, r + n) covering [0, R): sets of NQ
// rows, then one of the R % NQ left.
template <int NQ, class F>
inline void row_sets(std::size_t R, const F& f) {
  std::size_t r = 0;
  for (; r + NQ <= R; r += NQ) f.template operator()<NQ>(r);
  if constexpr (NQ > 1)
    if (R > r) row_sets<NQ - 1>(R - r, [&]<int N>(std::size_t i) { f.template operator()<N>(r + i); });
}

// The scores of R rows (q[r]) against keys [0, nb) of a block, into S[r * kB + j], NQ rows at a
// time (NQ x 4 accumulators; 3 in AVX2's 16 registers, 6 in AVX-512's 32); `key_at(j)` gives the
// Key loader of scores_x4 for keys j..j + 3 (past the block's end the last key again: its scores
// land in unused columns).
template <class V, int NQ, class KeyAt>
inline void block_scores(const float* const* q, std::size_t R, std::size_t nb, std::size_t D, float scale, float* S,
                         const KeyAt& key_at) {
  for (std::size_t j = 0; j < nb; j += 4) {
    const auto key = key_at(j);
    row_sets<NQ>(R, [&]<int N>(std::size_t r) {
      float* s[N];
      for (int i = 0; i < N; ++i) s[i] = S + (r + i) * kB + j;
      scores_x4<V, N>(q + r, key, D, scale, s);
    });
  }
}

// Scores of NR query rows q[0..NR) against NV x kLanes keys from column k0 of a block held with the
// keys in the lanes (kt[d * kB + j]), scaled: s[r][k0 ..). Each score is one chain of fused
// multiply-adds over d = 0, 1, ..., D - 1, whatever the rows beside it, NR, NV or the vector
// width: the same bits on every vector path. No lane sums.
template <class V, int NR, int NV>
inline void scores_lanes(const float* const q[NR], const float* kt, std::size_t k0, std::size_t D, float scale,
                         float* const s[NR]) {
  using Vec = typename V::Vec;
  Vec acc[NR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (std::size_t d = 0; d < D; ++d) {
    const float* kd = kt + d * kB + k0;
    Vec kv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) kv[v] = V::load(kd + v * V::kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      const Vec x = V::set1(q[r][d]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(x, kv[v], acc[r][v]);
    }
  }
  const Vec sc = V::set1(scale);
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) V::store(s[r] + k0 + v * V::kLanes, V::mul(acc[r][v], sc));
}

// The scores of R rows (q[r]) against keys [0, nb) of a block held with the keys in the lanes
// (widen_keys_transposed), into S[r * kB + j]: NQ rows at a time against NV vectors of keys (NQ x
// NV accumulators), up to the first multiple of NV x kLanes keys that covers nb (columns past nb:
// scores of the zero keys, unused).
template <class V, int NQ, int NV>
inline void block_scores_lanes(const float* const* q, std::size_t R, std::size_t nb, std::size_t D, float scale,
                               float* S, const float* kt) {
  constexpr std::size_t kKeys = NV * V::kLanes;
  static_assert(kB % kKeys == 0, "a key block is whole sets of key vectors");
  for (std::size_t k0 = 0; k0 < nb; k0 += kKeys)
    row_sets<NQ>(R, [&]<int N>(std::size_t r) {
      float* s[N];
      for (int i = 0; i < N; ++i) s[i] = S + (r + i) * kB;
      scores_lanes<V, N, NV>(q + r, kt, k0, D, scale, s);
    });
}

// acc[r][i] += Σ_j p[r][j] · v[j][i] for NR rows, NV vectors of kLanes dimensions from `d`;
// value(j, i) gives the kLanes values of value row j from dimension i.
// The loops over r and i carry `#pragma GCC unroll`: g++ -O2 leaves them rolled and keeps c[][]
// on the stack (a load, an FMA and a store per step: this was most of attention's time).
template <class V, int NR, int NV, class Value>
inline void add_values(float* const acc[NR], const float* const p[NR], const Value& value, std::size_t nb,
                       std::size_t d) {
  using Vec = typename V::Vec;
  Vec c[NR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) c[r][i] = V::load(acc[r] + d + V::kLanes * i);
  for (std::size_t j = 0; j < nb; ++j) {
    Vec pj[NR];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) pj[r] = V::set1(p[r][j]);
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) {
      const Vec vv = value(j, d + V::kLanes * i);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) c[r][i] = V::fmadd(pj[r], vv, c[r][i]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) V::store(acc[r] + d + V::kLanes * i, c[r][i]);
}

template <class V, int NR, class Value>
inline void add_values_rows(float* const acc[NR], const float* const p[NR], const Value& value, std::size_t D,
                            std::size_t nb) {
  std::size_t d = 0;
  for (; d + 4 * V::kLanes <= D; d += 4 * V::kLanes) add_values<V, NR, 4>(acc, p, value, nb, d);
  for (; d < D; d += V::kLanes) add_values<V, NR, 1>(acc, p, value, nb, d);
}

// acc[r] (row r's D accumulators at acc + r * D) += P[r] · the block's values, NQ rows at a time
// (NQ x 4 accumulators).
template <class V, int NQ, class Value>
inline void block_values(float* acc, const float* S, std::size_t R, std::size_t D, std::size_t nb,
                         const Value& value) {
  row_sets<NQ>(R, [&]<int N>(std::size_t r) {
    float* rows[N];
    const float* p[N];
    for (int i = 0; i < N; ++i) rows[i] = acc + (r + i) * D, p[i] = S + (r + i) * kB;
    add_values_rows<V, N>(rows, p, value, D, nb);
  });
}

// The online softmax of one row over a block of nb keys, of which it sees the first `seen`: its
// scores s[0..nb) become p = e^(s - m_new) (0 for the keys it does not see, and for the columns
// past nb that a whole vector reaches); its running maximum m, sum l and D accumulators acc are
// updated (scaled by e^(m_old - m_new)).
template <class V>
inline void softmax_block(float* s, std::size_t nb, std::size_t seen, float& m, float& l, float* acc, std::size_t D) {
  using Vec = typename V::Vec;
  if (seen == 0) {
    for (std::size_t j = 0; j < nb; ++j) s[j] = 0;
    return;
  }
  // The block's largest score: whole vectors, then the rest one by one (a scalar loop over 64
  // scores was ~10% of the attention of a long prefill).
  float block_max = s[0];
  std::size_t jm = 0;
  if (seen >= V::kLanes) {
    Vec vm = V::load(s);
    for (jm = V::kLanes; jm + V::kLanes <= seen; jm += V::kLanes) vm = V::max(vm, V::load(s + jm));
    block_max = reduce_max(V::fold_max(vm));
  }
  for (; jm < seen; ++jm) block_max = s[jm] > block_max ? s[jm] : block_max;
  const float new_max = block_max > m ? block_max : m;
  const float correction = m == -__builtin_inff() ? 0.0f : __builtin_expf(m - new_max);
  const Vec mx = V::set1(new_max);
  Vec sum = V::zero();
  for (std::size_t j = 0; j < nb; j += V::kLanes) {
    const Vec p = V::visible(exp_lanes<V>(V::sub(V::load(s + j), mx)), j, seen);
    V::store(s + j, p);
    sum = V::add(sum, p);
  }
  l = l * correction + reduce_sum(V::fold(sum));
  m = new_max;
  if (correction != 1.0f) {
    const Vec c = V::set1(correction);
    for (std::size_t i = 0; i < D; i += V::kLanes) V::store(acc + i, V::mul(c, V::load(acc + i)));
  }
}

// The tile's output rows (head_dim a multiple of kLanes; `workspace`:
// attention_tile_workspace(head_dim) floats).
template <class V, int NQ, int NV>
void attention_tile(const AttentionArgs& a, const AttentionTile& tile, float* workspace) {
  using Vec = typename V::Vec;
  using V8 = typename V::Lanes8;  // the keys are turned 8 x 8
  // The softmax reads and writes whole vectors of a row's kB scores.
  static_assert(kB % V::kLanes == 0, "a key block is whole vectors");
  const std::size_t D = a.head_dim;
  const std::size_t R = (tile.t1 - tile.t0) * tile.n_heads;
  const float scale = 1.0f / __builtin_sqrtf(static_cast<float>(D));
  float* kf = workspace;             // [D][kB] the block's keys, widened, in the lanes
  float* vf = kf + kB * D;           // [kB][D] its values
  float* S = vf + kB * D;            // [R][kB] scores, then probabilities
  float* acc = S + kAttentionMaxRows * kB;  // [R][D]
  float* m = acc + kAttentionMaxRows * D;   // [R] running maximum score
  float* l = m + kAttentionMaxRows;         // [R] running sum of e^(score - m)

  // Row r: query t0 + r / n_heads, head head0 + r % n_heads, at offset[r] in q and out; it sees
  // keys below limit[r].
  std::size_t offset[kAttentionMaxRows], limit[kAttentionMaxRows];
  const float* q[kAttentionMaxRows];
  for (std::size_t r = 0; r < R; ++r) {
    const std::size_t t = tile.t0 + r / tile.n_heads;
    const std::size_t h = std::size_t{tile.kv_head} * (a.n_head / a.n_head_kv) + tile.head0 + r % tile.n_heads;
    offset[r] = (t * a.n_head + h) * D;
    q[r] = a.q + offset[r];
    limit[r] = a.first_pos + t + 1;
    m[r] = -__builtin_inff();
    l[r] = 0;
  }
  for (std::size_t i = 0; i < R * D; ++i) acc[i] = 0;

  const std::size_t n_keys = a.first_pos + tile.t1;  // the last row's limit
  for (std::size_t j0 = 0; j0 < n_keys; j0 += kB) {
    const std::size_t nb = min_size(kB, n_keys - j0);
    // Scores: the block's keys widened once for all rows, into the lanes.
    const unsigned char* first = a.k + j0 * a.row_bytes + tile.head_offset;
    const std::size_t rb = a.row_bytes, ahead = n_keys > j0 + kB ? n_keys - j0 - kB : 0;
    if (a.kv_type == GgmlType::f16)
      widen_keys_transposed(F16Rows<V8>{first, rb}, nb, D, first, rb, 2 * D, ahead, kf);
    else if (a.kv_type == GgmlType::f32)
      widen_keys_transposed(FloatRows<V8>{reinterpret_cast<const float*>(first), rb / 4}, nb, D, first, rb, 4 * D,
                            ahead, kf);
    else
      widen_keys_transposed(Q8Rows<V8>{first, rb}, nb, D, first, rb, D / 32 * 34, ahead, kf);
    block_scores_lanes<V, NQ, NV>(q, R, nb, D, scale, S, kf);
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t seen = limit[r] > j0 ? min_size(nb, limit[r] - j0) : 0;
      softmax_block<V>(S + r * kB, nb, seen, m[r], l[r], acc + r * D, D);
    }
    // Values: acc += P · V.
    if (a.kv_type == GgmlType::f32) {
      // Rows of an F32 cache are not contiguous per head: copy them together.
      for (std::size_t j = 0; j < nb; ++j)
        std::memcpy(vf + j * D, a.v + (j0 + j) * a.row_bytes + tile.head_offset, D * sizeof(float));
    } else {
      widen_block<V>(a, a.v, tile.head_offset, j0, nb, n_keys, vf);
    }
    block_values<V, NQ>(acc, S, R, D, nb, FloatRows<V>{vf, D});
  }

  for (std::size_t r = 0; r < R; ++r) {
    float* out = a.out + offset[r];
    const Vec inv = V::set1(1.0f / l[r]);
    for (std::size_t i = 0; i < D; i += V::kLanes) V::store(out + i, V::mul(inv, V::load(acc + r * D + i)));
  }
}

// Decode over a long context (attention.cpp): the one query (T = 1) of every head against keys
// [j_begin, j_end) of the cache, a chunk, as an online softmax of its own. The chunk's rows are
// read in order, every KV head of a block of rows in turn, straight from the cache (F16 and Q8_0
// widened in registers, as widen_block widens them), the rows a block ahead (below
// prefetch_end: past the chunk where the same thread goes on with the next one) prefetched into
// L2 beside the scores. `workspace`: attention_tile_workspace floats (n_head <= kAttentionMaxRows).
// `partial` (attention_chunk_floats): the heads' D accumulators, then their running maxima m, then
// their sums l. A head's numbers do not depend on the other heads or on the thread.
template <class V, int NQ>
void attention_chunk(const AttentionArgs& a, std::size_t j_begin, std::size_t j_end, std::size_t prefetch_end,
                     float* partial, float* workspace) {
  const std::size_t D = a.head_dim, H = a.n_head, group = a.n_head / a.n_head_kv, rb = a.row_bytes;
  const float scale = 1.0f / __builtin_sqrtf(static_cast<float>(D));
  const std::size_t head_bytes = a.kv_type == GgmlType::f32 ? 4 * D : a.kv_type == GgmlType::f16 ? 2 * D : D / 32 * 34;
  float* S = workspace;      // [H][kB] scores, then probabilities
  float* acc = partial;      // [H][D]
  float* m = acc + H * D;    // [H]
  float* l = m + H;          // [H]
  const float* q[kAttentionMaxRows];
  for (std::size_t h = 0; h < H; ++h) {
    q[h] = a.q + h * D;
    m[h] = -__builtin_inff();
    l[h] = 0;
  }
  for (std::size_t i = 0; i < H * D; ++i) acc[i] = 0;

  for (std::size_t j0 = j_begin; j0 < j_end; j0 += kB) {
    const std::size_t nb = min_size(kB, j_end - j0);
    // Past the block's end, the last key again (its scores land in unused columns).
    auto at = [&](std::size_t j) { return min_size(j, nb - 1); };
    for (std::size_t g = 0; g < a.n_head_kv; ++g) {
      const unsigned char* k = a.k + j0 * rb + g * head_bytes;
      const float* const* qg = q + g * group;
      float* Sg = S + g * group * kB;
      // The next block's rows of this head, K and V, 4 at a time beside the scores of 4 keys.
      auto ahead = [&](std::size_t j) {
        for (std::size_t i = j; i < j + 4 && j0 + kB + i < prefetch_end; ++i) {
          prefetch_bytes(k + (kB + i) * rb, head_bytes);
          prefetch_bytes(a.v + (j0 + kB + i) * rb + g * head_bytes, head_bytes);
        }
      };
      if (a.kv_type == GgmlType::f16) {
        block_scores<V, NQ>(qg, group, nb, D, scale, Sg, [&](std::size_t j) {
          ahead(j);
          return F16Keys<V>{{k + at(j) * rb, k + at(j + 1) * rb, k + at(j + 2) * rb, k + at(j + 3) * rb}};
        });
      } else if (a.kv_type == GgmlType::q8_0) {
        block_scores<V, NQ>(qg, group, nb, D, scale, Sg, [&](std::size_t j) {
          ahead(j);
          return Q8Keys<V>{{k + at(j) * rb, k + at(j + 1) * rb, k + at(j + 2) * rb, k + at(j + 3) * rb}};
        });
      } else {
        const float* keys = reinterpret_cast<const float*>(k);
        const std::size_t stride = rb / sizeof(float);
        block_scores<V, NQ>(qg, group, nb, D, scale, Sg, [&](std::size_t j) {
          ahead(j);
          return FloatKeys<V>{{keys + at(j) * stride, keys + at(j + 1) * stride, keys + at(j + 2) * stride,
                               keys + at(j + 3) * stride}};
        });
      }
    }
    for (std::size_t h = 0; h < H; ++h) softmax_block<V>(S + h * kB, nb, nb, m[h], l[h], acc + h * D, D);
    for (std::size_t g = 0; g < a.n_head_kv; ++g) {
      const unsigned char* v = a.v + j0 * rb + g * head_bytes;
      float* acc_g = acc + g * group * D;
      const float* Sg = S + g * group * kB;
      if (a.kv_type == GgmlType::f16) {
        block_values<V, NQ>(acc_g, Sg, group, D, nb, F16Rows<V>{v, rb});
      } else if (a.kv_type == GgmlType::f32) {
        block_values<V, NQ>(acc_g, Sg, group, D, nb, FloatRows<V>{reinterpret_cast<const float*>(v), rb / sizeof(float)});
      } else {
        block_values<V, NQ>(acc_g, Sg, group, D, nb, Q8Rows<V>{v, rb});
      }
    }
  }
}

// The chunks' partial results (attention_chunk, `chunks` of them, attention_chunk_floats apart)
// merged into a.out, chunk after chunk: out = Σ_c e^(m_c - M) acc_c / Σ_c e^(m_c - M) l_c, M the
// largest m_c.
template <class V>
void attention_merge(const AttentionArgs& a, const float* partials, std::size_t chunks) {
  using Vec = typename V::Vec;
  const std::size_t D = a.head_dim, H = a.n_head, stride = attention_chunk_floats(H, D);
  for (std::size_t h = 0; h < H; ++h) {
    float M = -__builtin_inff();
    for (std::size_t c = 0; c < chunks; ++c) {
      const float mc = partials[c * stride + H * D + h];
      M = mc > M ? mc : M;
    }
    float L = 0;
    float* out = a.out + h * D;
    for (std::size_t c = 0; c < chunks; ++c) {
      const float* p = partials + c * stride;
      const float w = __builtin_expf(p[H * D + h] - M);
      L += w * p[H * D + H + h];
      const Vec wv = V::set1(w);
      for (std::size_t i = 0; i < D; i += V::kLanes)
        V::store(out + i, c == 0 ? V::mul(wv, V::load(p + h * D + i)) : V::fmadd(wv, V::load(p + h * D + i), V::load(out + i)));
    }
    const Vec inv = V::set1(1.0f / L);
    for (std::size_t i = 0; i < D; i += V::kLanes) V::store(out + i, V::mul(inv, V::load(out + i)));
  }
}

}  // namespace
}  // namespace ponder::cpu::detail
