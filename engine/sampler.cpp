#include "engine/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/model.h"

// The passes over the vocabulary use GCC/Clang vector extensions (4 floats: SSE2 on x86-64, NEON
// on arm64; casts between them reinterpret the bits), with the same operations in the same order
// on every target and no fused multiply-adds (C++20 in ISO mode does not contract), so results
// do not depend on the machine.

namespace ponder {
namespace {

using f4 = float __attribute__((vector_size(16)));
using i4 = std::int32_t __attribute__((vector_size(16)));
using u4 = std::uint32_t __attribute__((vector_size(16)));
using Pair = Sampler::Pair;

constexpr float kInf = std::numeric_limits<float>::infinity();
// Weights below e^kLogFloor relative to the largest are dropped (see sampler.h).
constexpr float kLogFloor = -30.0f;
// Histogram key: the top 13 bits of a positive float (exponent, 4 mantissa bits), from 2^-44.
constexpr int kKeyBase = (127 - 44) * 16;
static_assert(kLogFloor > -44 * 0.6931472f, "the smallest weight must have a bucket");

inline f4 splat(float x) { return f4{x, x, x, x}; }
inline i4 splat_i(std::int32_t x) { return i4{x, x, x, x}; }
inline i4 lane_ids(std::size_t group) {
  const auto base = static_cast<std::int32_t>(4 * group);
  return i4{base, base + 1, base + 2, base + 3};
}

// Four floats p[i..i+4), with `fill` for the lanes at or past n.
inline f4 load4(const float* p, std::size_t i, std::size_t n, float fill) {
  f4 v;
  if (i + 4 <= n) {
    std::memcpy(&v, p + i, sizeof v);
    return v;
  }
  v = splat(fill);
  for (std::size_t k = 0; i + k < n; ++k) v[k] = p[i + k];
  return v;
}
inline f4 load4(const float* p) {
  f4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, f4 v) { std::memcpy(p, &v, sizeof v); }
#if defined(__SSE2__)
inline bool any(i4 m) { return _mm_movemask_ps(__m128(m)) != 0; }
#else
inline bool any(i4 m) { return (m[0] | m[1] | m[2] | m[3]) != 0; }
#endif
inline i4 is_finite(f4 v) { return (v - v) == splat(0.0f); }  // inf - inf and NaN give NaN

// e^x for x in [-87, 0]: Cephes' expf (range reduction by ln 2 in two parts, degree-5
// polynomial), relative error ~1e-7; e^0 is exactly 1. Constants as vectors so that they are
// memory operands rather than splatted in the loop.
#define PONDER_F4(x) f4{x, x, x, x}
constexpr f4 kMagic = PONDER_F4(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
constexpr f4 kLog2e = PONDER_F4(1.44269504088896341f);
constexpr f4 kLn2Hi = PONDER_F4(0.693359375f), kLn2Lo = PONDER_F4(-2.12194440e-4f);
constexpr f4 kP0 = PONDER_F4(1.9875691500e-4f), kP1 = PONDER_F4(1.3981999507e-3f),
             kP2 = PONDER_F4(8.3334519073e-3f), kP3 = PONDER_F4(4.1665795894e-2f),
             kP4 = PONDER_F4(1.6666665459e-1f), kP5 = PONDER_F4(5.0000001201e-1f),
             kOne = PONDER_F4(1.0f);
#undef PONDER_F4
inline f4 exp_neg(f4 x) {
  const f4 t = x * kLog2e + kMagic;
  const f4 kf = t - kMagic;
  const i4 ki = (i4)t - (i4)kMagic;
  f4 r = x - kf * kLn2Hi;
  r = r - kf * kLn2Lo;
  f4 y = kP0 * r + kP1;
  y = y * r + kP2;
  y = y * r + kP3;
  y = y * r + kP4;
  y = y * r + kP5;
  y = y * (r * r) + r + kOne;
  const u4 pow2 = ((u4)ki + 127u) << 23;
  return y * (f4)pow2;
}

inline int bucket_of(float w) {
  std::uint32_t bits;
  std::memcpy(&bits, &w, sizeof bits);
  return static_cast<int>(bits >> 19) - kKeyBase;  // < 0 for w == 0
}

// Order of the truncations: larger value first, then lower id.
inline bool before(const Pair& a, const Pair& b) {
  return a.v > b.v || (a.v == b.v && a.id < b.id);
}

// The element of p[0..count) at which the running weight, in `before` order, first reaches
// `need` (weight: the value, or 1 for each element when !weighted). Expected O(count): a
// quickselect that keeps the side holding the answer. Falls back to the last element when
// rounding leaves `need` unreached. count must be > 0.
Pair select_cut(Pair* p, std::size_t count, double need, bool weighted) {
  auto weight = [weighted](const Pair& x) { return weighted ? double(x.v) : 1.0; };
  std::size_t lo = 0, hi = count;
  if (!(need > 0.0)) return *std::min_element(p, p + count, before);
  while (true) {
    if (hi - lo <= 32) {
      std::sort(p + lo, p + hi, before);
      for (std::size_t i = lo; i < hi; ++i) {
        need -= weight(p[i]);
        if (need <= 0.0) return p[i];
      }
      return p[hi - 1];
    }
    // Median of three as the pivot.
    Pair a = p[lo], b = p[lo + (hi - lo) / 2], c = p[hi - 1];
    if (before(b, a)) std::swap(a, b);
    if (before(c, b)) std::swap(b, c);
    if (before(b, a)) std::swap(a, b);
    const Pair pivot = b;
    Pair* mid = std::partition(p + lo, p + hi, [&](const Pair& x) { return before(x, pivot); });
    const auto m = static_cast<std::size_t>(mid - p);
    double above = 0.0;
    for (std::size_t i = lo; i < m; ++i) above += weight(p[i]);
    if (above >= need) {
      hi = m;  // the pivot is in [m, hi), so this shrinks
      continue;
    }
    need -= above;
    if (weight(pivot) >= need) return pivot;
    need -= weight(pivot);
    // Everything before the pivot and the pivot are in; go on after it.
    Pair* at = std::find_if(p + m, p + hi, [&](const Pair& x) { return x.id == pivot.id; });
    std::swap(*at, p[m]);
    lo = m + 1;
    if (lo == hi) return pivot;  // rounding: nothing after the pivot
  }
}

// The largest finite value of src[0..n), -inf when there is none.
float max_finite(const float* src, std::size_t n) {
  f4 m0 = splat(-kInf), m1 = m0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f4 a = load4(src + i), b = load4(src + i + 4);
    a = is_finite(a) ? a : splat(-kInf);
    b = is_finite(b) ? b : splat(-kInf);
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  for (; i < n; i += 4) {
    f4 a = load4(src, i, n, -kInf);
    a = is_finite(a) ? a : splat(-kInf);
    m0 = a > m0 ? a : m0;
  }
  m0 = m1 > m0 ? m1 : m0;
  return std::max(std::max(m0[0], m0[1]), std::max(m0[2], m0[3]));
}

// The lowest i with src[i] == m (m is one of the values).
std::int32_t first_equal(const float* src, std::size_t n, float m) {
  const f4 vm = splat(m);
  for (std::size_t i = 0; i < n; i += 4) {
    if (!any(load4(src, i, n, -kInf) == vm)) continue;
    for (std::size_t k = i; k < n; ++k)
      if (src[k] == m) return static_cast<std::int32_t>(k);
  }
  return 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define PONDER_SAMPLER_AVX2 1
// The weights pass with 8 lanes (AVX2, no FMA): the same operations per lane as exp_neg's, so
// the same bits. Returns the number of live 4-lane groups appended to `live`, from group 0 up to
// (n / 8) * 2; the caller does the rest.
using f8 = float __attribute__((vector_size(32)));
using i8 = std::int32_t __attribute__((vector_size(32)));
using u8 = std::uint32_t __attribute__((vector_size(32)));
#define PONDER_F8(x) f8{x, x, x, x, x, x, x, x}
__attribute__((target("avx2"))) std::size_t weights_avx2(const float* src, std::size_t n, float m,
                                                         float inv_t, float* w_out,
                                                         std::uint32_t* live) {
  const f8 vm = PONDER_F8(m), vinv = PONDER_F8(inv_t), vfloor = PONDER_F8(kLogFloor);
  const f8 zero = PONDER_F8(0.0f), magic = PONDER_F8(12582912.0f);
  std::size_t n_live = 0;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    f8 v;
    std::memcpy(&v, src + i, sizeof v);
    f8 x = (v - vm) * vinv;
    const i8 alive = ((v - v) == zero) & (x >= vfloor);
    const bool lo = (alive[0] | alive[1] | alive[2] | alive[3]) != 0;
    const bool hi = (alive[4] | alive[5] | alive[6] | alive[7]) != 0;
    if (!lo && !hi) continue;
    x = alive ? x : zero;
    const f8 t = x * PONDER_F8(1.44269504088896341f) + magic;
    const f8 kf = t - magic;
    const i8 ki = (i8)t - (i8)magic;
    f8 r = x - kf * PONDER_F8(0.693359375f);
    r = r - kf * PONDER_F8(-2.12194440e-4f);
    f8 y = PONDER_F8(1.9875691500e-4f) * r + PONDER_F8(1.3981999507e-3f);
    y = y * r + PONDER_F8(8.3334519073e-3f);
    y = y * r + PONDER_F8(4.1665795894e-2f);
    y = y * r + PONDER_F8(1.6666665459e-1f);
    y = y * r + PONDER_F8(5.0000001201e-1f);
    y = y * (r * r) + r + PONDER_F8(1.0f);
    const u8 pow2 = ((u8)ki + 127u) << 23;
    const f8 w = alive ? y * (f8)pow2 : zero;
    if (lo) {
      std::memcpy(w_out + i, &w, 16);
      live[n_live++] = static_cast<std::uint32_t>(i / 4);
    }
    if (hi) {
      std::memcpy(w_out + i + 4, reinterpret_cast<const float*>(&w) + 4, 16);
      live[n_live++] = static_cast<std::uint32_t>(i / 4 + 1);
    }
  }
  return n_live;
}
#undef PONDER_F8
bool detect_avx2() {
  __builtin_cpu_init();  // may run before libgcc's own constructor
  return __builtin_cpu_supports("avx2");
}
bool g_avx2 = detect_avx2();
#endif

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

SamplingParams SamplingParams::from_defaults(const GenerationDefaults& d) {
  SamplingParams p;
  p.temperature = static_cast<float>(d.temperature);
  p.top_p = static_cast<float>(d.top_p);
  p.top_k = d.top_k;
  return p;
}

std::string SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0f)
    return "temperature must be a finite number >= 0 (0 = greedy)";
  if (!(top_p > 0.0f && top_p <= 1.0f)) return "top_p must be in (0, 1] (1 = off)";
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return "min_p must be in [0, 1] (0 = off)";
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0.0f)
    return "repetition_penalty must be a finite number > 0 (1 = off)";
  if (!std::isfinite(presence_penalty)) return "presence_penalty must be finite (0 = off)";
  return {};
}

Sampler::Sampler(const SamplingParams& p, std::uint32_t n_tokens) : p_(p), n_tokens_(n_tokens) {
  if (std::string e = p.validate(); !e.empty()) throw std::invalid_argument("sampling: " + e);
  inv_temperature_ = p.temperature > 0.0f ? 1.0f / p.temperature : 0.0f;
  greedy_ = p.temperature <= 0.0f || !std::isfinite(inv_temperature_);

  seed_ = p.seed;
  if (seed_ == 0) {
    std::random_device rd;
    std::uint64_t s = (std::uint64_t(rd()) << 32) ^ rd() ^
                      std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    seed_ = splitmix64(s);
    if (seed_ == 0) seed_ = 1;
  }
  std::uint64_t s = seed_;
  for (auto& r : rng_) r = splitmix64(s);

  const std::size_t groups = (std::size_t(n_tokens) + 3) / 4;
  if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f) {
    penalised_.resize(n_tokens);
    stamp_.assign(n_tokens, 0u);
  }
  if (!greedy_) {
    w_.assign(groups * 4, 0.0f);
    live_.resize(groups);
    pairs_.resize(n_tokens);
    group_sums_.resize((groups + 15) / 16);
  }
}

double Sampler::next_double() {  // xoshiro256**, top 53 bits
  const std::uint64_t result = rotl(rng_[1] * 5, 7) * 9;
  const std::uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return double(result >> 11) * 0x1.0p-53;
}

void Sampler::histogram(std::size_t n_live, bool counts) {
  // One table per lane: consecutive tokens often fall in one bucket, and a single table would
  // chain their updates through memory. Counts (for top-k) only when asked: top-p needs masses.
  std::array<double, kBuckets> mass[3] = {};
  std::array<std::uint32_t, kBuckets> count[3] = {};
  mass_.fill(0.0);
  count_.fill(0);
  const i4 base = splat_i(kKeyBase), top = splat_i(kBuckets - 1);
  for (std::size_t j = 0; j < n_live; ++j) {
    const f4 w = load4(&w_[4 * std::size_t(live_[j])]);
    i4 key = (i4)((u4)w >> 19) - base;
    key = key > top ? top : key;  // negative: w == 0
    if (key[0] >= 0) mass_[key[0]] += w[0];
    if (key[1] >= 0) mass[0][key[1]] += w[1];
    if (key[2] >= 0) mass[1][key[2]] += w[2];
    if (key[3] >= 0) mass[2][key[3]] += w[3];
    if (!counts) continue;
    if (key[0] >= 0) ++count_[key[0]];
    if (key[1] >= 0) ++count[0][key[1]];
    if (key[2] >= 0) ++count[1][key[2]];
    if (key[3] >= 0) ++count[2][key[3]];
  }
  for (int b = 0; b < kBuckets; ++b) {
    mass_[b] += (mass[0][b] + mass[1][b]) + mass[2][b];
    count_[b] += count[0][b] + count[1][b] + count[2][b];
  }
}

std::size_t Sampler::collect(std::size_t n_live, int bucket, const float* values) {
  const i4 base = splat_i(kKeyBase), top = splat_i(kBuckets - 1), want = splat_i(bucket);
  std::size_t c = 0;
  for (std::size_t j = 0; j < n_live; ++j) {
    const std::size_t g = live_[j];
    const f4 w = load4(&w_[4 * g]);
    i4 key = (i4)((u4)w >> 19) - base;
    key = key > top ? top : key;
    const i4 hit = (key == want) & (w > splat(0.0f));
    if (!any(hit)) continue;
    for (std::size_t k = 0; k < 4; ++k)
      if (hit[k]) pairs_[c++] = Pair{values ? values[4 * g + k] : w[k], static_cast<std::int32_t>(4 * g + k)};
  }
  return c;
}

std::int32_t Sampler::sample(const float* logits, std::size_t n_rows,
                             const std::int32_t* history, std::size_t n_history) {
  const std::size_t n = std::min<std::size_t>(n_rows, n_tokens_);
  if (n == 0 || logits == nullptr) return 0;

  // Penalties, on a copy.
  const float* src = logits;
  if (!penalised_.empty() && history != nullptr && n_history > 0) {
    std::memcpy(penalised_.data(), logits, n * sizeof(float));
    if (++epoch_ == 0) {
      std::fill(stamp_.begin(), stamp_.end(), 0u);
      epoch_ = 1;
    }
    const std::size_t window = p_.penalty_window;
    const std::size_t start = window == 0 || n_history <= window ? 0 : n_history - window;
    for (std::size_t h = start; h < n_history; ++h) {
      const std::int32_t id = history[h];
      if (id < 0 || std::size_t(id) >= n || stamp_[id] == epoch_) continue;
      stamp_[id] = epoch_;
      float& l = penalised_[id];
      if (!std::isfinite(l)) continue;
      if (p_.repetition_penalty != 1.0f)
        l = l > 0.0f ? l / p_.repetition_penalty : l * p_.repetition_penalty;
      l -= p_.presence_penalty;
    }
    src = penalised_.data();
  }

  const float m = max_finite(src, n);
  if (m == -kInf) return 0;  // no finite logit: the first real token
  if (greedy_) return first_equal(src, n, m);

  // Temperature and softmax weights w = e^((l - m) / T), kept only for the 4-lane groups where
  // one is >= e^kLogFloor (the live groups).
  const std::size_t groups = (n + 3) / 4;
  std::size_t n_live = 0;
  {
    const f4 vm = splat(m), vinv = splat(inv_temperature_), vfloor = splat(kLogFloor);
    const f4 zero = splat(0.0f);
    std::size_t g = 0;
#ifdef PONDER_SAMPLER_AVX2
    if (g_avx2) {
      n_live = weights_avx2(src, n, m, inv_temperature_, w_.data(), live_.data());
      g = (n / 8) * 2;
    }
#endif
    // Two groups at a time: two independent polynomial chains.
    for (const std::size_t full = n / 4; g + 2 <= full; g += 2) {
      const f4 v0 = load4(src + 4 * g), v1 = load4(src + 4 * g + 4);
      f4 x0 = (v0 - vm) * vinv, x1 = (v1 - vm) * vinv;
      const i4 a0 = is_finite(v0) & (x0 >= vfloor), a1 = is_finite(v1) & (x1 >= vfloor);
      if (!any(a0 | a1)) continue;
      x0 = a0 ? x0 : zero;
      x1 = a1 ? x1 : zero;
      const f4 w0 = exp_neg(x0), w1 = exp_neg(x1);
      if (any(a0)) {
        store4(&w_[4 * g], a0 ? w0 : zero);
        live_[n_live++] = static_cast<std::uint32_t>(g);
      }
      if (any(a1)) {
        store4(&w_[4 * g + 4], a1 ? w1 : zero);
        live_[n_live++] = static_cast<std::uint32_t>(g + 1);
      }
    }
    for (; g < groups; ++g) {
      const f4 v = load4(src, 4 * g, n, std::numeric_limits<float>::quiet_NaN());
      f4 x = (v - vm) * vinv;
      const i4 alive = is_finite(v) & (x >= vfloor);
      if (!any(alive)) continue;
      x = alive ? x : zero;
      const f4 w = exp_neg(x);
      store4(&w_[4 * g], alive ? w : zero);
      live_[n_live++] = static_cast<std::uint32_t>(g);
    }
  }
  // Top-k (by logit; the weights are monotone in it, so the histogram finds the boundary bucket).
  bool have_histogram = false;
  if (p_.top_k > 0) {
    histogram(n_live, true);
    have_histogram = true;
    std::size_t total = 0;
    for (auto c : count_) total += c;
    if (p_.top_k < total) {
      std::size_t above = 0;
      int bk = kBuckets - 1;
      for (; bk > 0; --bk) {
        if (above + count_[bk] >= p_.top_k) break;
        above += count_[bk];
      }
      const std::size_t c = collect(n_live, bk, src);
      const Pair cut = select_cut(pairs_.data(), c, double(p_.top_k - above), false);
      const f4 vcut = splat(cut.v);
      const i4 vid = splat_i(cut.id);
      std::size_t kept = 0;
      for (std::size_t j = 0; j < n_live; ++j) {
        const std::size_t g = live_[j];
        const f4 v = load4(src, 4 * g, n, -kInf);
        const i4 keep = (v > vcut) | ((v == vcut) & (lane_ids(g) <= vid));
        const f4 w = keep ? load4(&w_[4 * g]) : splat(0.0f);
        store4(&w_[4 * g], w);
        if (any(w > splat(0.0f))) live_[kept++] = static_cast<std::uint32_t>(g);
      }
      n_live = kept;
      histogram(n_live, false);
    }
  }

  // Top-p: the boundary bucket from the histogram, then the exact cut inside it.
  float cut_w = 0.0f;      // keep (w > cut_w) or (w == cut_w and id <= cut_id)
  std::int32_t cut_id = -1;
  if (p_.top_p < 1.0f) {
    if (!have_histogram) histogram(n_live, false);
    double z = 0.0;
    for (double x : mass_) z += x;
    const double target = double(p_.top_p) * z;
    double above = 0.0;
    int bp = kBuckets - 1;
    for (; bp >= 0; --bp) {
      if (mass_[bp] > 0.0 && above + mass_[bp] >= target) break;
      above += mass_[bp];
    }
    if (bp >= 0) {
      const std::size_t c = collect(n_live, bp, nullptr);
      const Pair cut = select_cut(pairs_.data(), c, target - above, true);
      cut_w = cut.v;
      cut_id = cut.id;
    }
  }
  // Min-p: keep w >= min_p (the largest weight is 1); the stricter of the two cuts wins.
  if (p_.min_p > 0.0f && p_.min_p > cut_w) {
    cut_w = p_.min_p;
    cut_id = std::numeric_limits<std::int32_t>::max();
  }

  // Renormalise and draw: the kept mass per live group and per 16 of them, then a walk.
  const f4 vcw = splat(cut_w);
  const i4 vcid = splat_i(cut_id);
  auto kept_weights = [&](std::size_t g) {
    const f4 w = load4(&w_[4 * g]);
    const i4 keep = (w > vcw) | ((w == vcw) & (lane_ids(g) <= vcid));
    return keep ? w : splat(0.0f);
  };
  auto sum4 = [](f4 w) { return double(w[0]) + double(w[1]) + double(w[2]) + double(w[3]); };
  const std::size_t n_groups = (n_live + 15) / 16;
  double total = 0.0;
  for (std::size_t gi = 0; gi < n_groups; ++gi) {
    double s = 0.0;
    const std::size_t end = std::min(n_live, gi * 16 + 16);
    for (std::size_t j = gi * 16; j < end; ++j) s += sum4(kept_weights(live_[j]));
    group_sums_[gi] = s;
    total += s;
  }
  const double r = next_double() * total;

  double acc = 0.0;
  std::size_t gsel = n_groups;
  for (std::size_t gi = 0; gi < n_groups; ++gi) {
    if (!(group_sums_[gi] > 0.0)) continue;
    gsel = gi;
    if (acc + group_sums_[gi] > r) break;
    acc += group_sums_[gi];
  }
  if (gsel == n_groups) return first_equal(src, n, m);  // cannot happen: the top token is kept
  if (!(acc + group_sums_[gsel] > r)) acc -= group_sums_[gsel];  // rounding: fall back to its end
  // Within the group: first the 4-lane group, then the lane; each falls back to its last kept
  // token when rounding keeps the running sum from passing r.
  std::int32_t last = -1;
  const std::size_t end = std::min(n_live, gsel * 16 + 16);
  for (std::size_t j = gsel * 16; j < end; ++j) {
    const std::size_t g = live_[j];
    const f4 w = kept_weights(g);
    const double s = sum4(w);
    if (!(s > 0.0)) continue;
    const bool here = acc + s > r;
    for (int k = 0; k < 4; ++k) {
      if (!(w[k] > 0.0f)) continue;
      last = static_cast<std::int32_t>(4 * g + std::size_t(k));
      if (!here) continue;
      acc += w[k];
      if (acc > r) return last;
    }
    if (here) return last;
    acc += s;
  }
  return last >= 0 ? last : first_equal(src, n, m);
}

bool Sampler::use_avx2(bool on) {
#ifdef PONDER_SAMPLER_AVX2
  const bool was = g_avx2;
  g_avx2 = on && __builtin_cpu_supports("avx2");
  return was;
#else
  (void)on;
  return false;
#endif
}

double Sampler::log_prob(const float* logits, std::size_t n_rows, std::uint32_t n_tokens,
                         std::int32_t id) {
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const std::size_t n = std::min<std::size_t>(n_rows, n_tokens);
  if (logits == nullptr || id < 0 || std::size_t(id) >= n || !std::isfinite(logits[id]))
    return neg_inf;
  const double m = max_finite(logits, n);
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(logits[i])) s += std::exp(double(logits[i]) - m);
  return (double(logits[id]) - m) - std::log(s);
}

}  // namespace ponder
