// cpu::attention: each ISA path against a float64 evaluation of the formula, the tiled AVX2 path
// against the portable one, and independence from the thread count.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "engine/cpu/attention.h"
#include "engine/cpu/attention_internal.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/rms_norm.h"
#include "engine/quant.h"
#include "support/cpu_isas.h"

using namespace ponder;

namespace {

struct Shape {
  std::uint32_t n_head, n_head_kv, head_dim;
};

// A cache of `positions` rows of random K and V, stored in `type`, and T random queries.
struct Case {
  Shape s;
  GgmlType type;
  std::uint32_t positions;
  std::size_t T;
  std::vector<float> q;
  std::vector<unsigned char> k, v;

  Case(Shape shape, GgmlType kv_type, std::uint32_t first_pos, std::size_t n_queries, std::mt19937& rng)
      : s(shape), type(kv_type), positions(first_pos + static_cast<std::uint32_t>(n_queries)), T(n_queries) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const std::size_t kv_dim = std::size_t{s.n_head_kv} * s.head_dim;
    q.resize(T * s.n_head * s.head_dim);
    // Queries scaled up so that the softmax is peaked somewhere and flat elsewhere.
    for (float& x : q) x = 2.5f * normal(rng);
    std::vector<float> row(kv_dim);
    k.resize(positions * row_bytes(type, kv_dim));
    v.resize(k.size());
    for (std::uint32_t p = 0; p < positions; ++p)
      for (auto* cache : {&k, &v}) {
        for (float& x : row) x = normal(rng);
        REQUIRE(quantize(type, row.data(), cache->data() + p * row_bytes(type, kv_dim), kv_dim, nullptr));
      }
  }

  cpu::AttentionArgs args(float* out) const {
    cpu::AttentionArgs a;
    a.q = q.data();
    a.out = out;
    a.k = k.data();
    a.v = v.data();
    a.row_bytes = row_bytes(type, std::size_t{s.n_head_kv} * s.head_dim);
    a.kv_type = type;
    a.n_head = s.n_head;
    a.n_head_kv = s.n_head_kv;
    a.head_dim = s.head_dim;
    a.first_pos = positions - static_cast<std::uint32_t>(T);
    a.T = T;
    return a;
  }

  std::vector<float> run(cpu::ThreadPool* pool) const {
    std::vector<float> out(q.size(), std::nanf(""));
    std::vector<float> workspace;
    cpu::attention(args(out.data()), pool, &workspace);
    return out;
  }

  // run() with the 8-lane kernels where the path has a choice (AMD CPUs' default).
  std::vector<float> run_narrow(cpu::ThreadPool* pool) const {
    cpu::detail::set_wide_attention_everywhere(false);
    std::vector<float> out = run(pool);
    cpu::detail::set_wide_attention_everywhere(true);
    return out;
  }

  // The formula in float64 over the cache's stored values.
  std::vector<double> reference() const {
    const std::size_t D = s.head_dim, kv_dim = std::size_t{s.n_head_kv} * D;
    const std::size_t stride = row_bytes(type, kv_dim);
    std::vector<float> kf(positions * kv_dim), vf(kf.size());
    for (std::uint32_t p = 0; p < positions; ++p) {
      REQUIRE(dequantize(type, k.data() + p * stride, kf.data() + p * kv_dim, kv_dim, nullptr));
      REQUIRE(dequantize(type, v.data() + p * stride, vf.data() + p * kv_dim, kv_dim, nullptr));
    }
    std::vector<double> out(q.size(), 0.0);
    const std::uint32_t first_pos = positions - static_cast<std::uint32_t>(T);
    for (std::size_t t = 0; t < T; ++t)
      for (std::uint32_t h = 0; h < s.n_head; ++h) {
        const std::size_t g = h / (s.n_head / s.n_head_kv), n_keys = first_pos + t + 1;
        const float* qh = q.data() + (t * s.n_head + h) * D;
        std::vector<double> w(n_keys);
        double max = -INFINITY, sum = 0;
        for (std::size_t j = 0; j < n_keys; ++j) {
          double dot = 0;
          for (std::size_t i = 0; i < D; ++i) dot += double(qh[i]) * kf[j * kv_dim + g * D + i];
          w[j] = dot / std::sqrt(double(D));
          max = std::max(max, w[j]);
        }
        for (double& x : w) sum += x = std::exp(x - max);
        double* o = out.data() + (t * s.n_head + h) * D;
        for (std::size_t j = 0; j < n_keys; ++j)
          for (std::size_t i = 0; i < D; ++i) o[i] += w[j] / sum * vf[j * kv_dim + g * D + i];
      }
    return out;
  }
};

// Largest |got - want| over the whole output (the values are O(1): averages of N(0, 1) values).
double max_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  return std::isnan(worst) ? INFINITY : worst;
}

}  // namespace

TEST_CASE("attention: every path (tiles, decode chunks) matches the formula and does not depend on threads",
          "[backend][attention]") {
  std::mt19937 rng(7);
  cpu::ThreadPool one(1), three(3);
#if defined(__x86_64__)
  const bool amd = __builtin_cpu_is("amd");
#else
  const bool amd = false;
#endif
  // Every path with its own kernel, also on AMD CPUs (where the avx512 path's attention
  // otherwise takes the 8-lane tiles: checked below, beside the 16-lane ones).
  cpu::detail::set_wide_attention_everywhere(true);
  const Shape shapes[] = {
      {12, 2, 128},  // R1-Distill-Qwen-1.5B: groups of 6
      {4, 4, 64},    // no grouping
      {6, 1, 40},    // one KV head; head_dim not a multiple of 32 (no Q8_0)
      {40, 1, 32},   // a group larger than a tile
      {10, 2, 64},   // groups of 5, 3 and 8: every set of rows left past sets of 3 and of 6
      {6, 2, 32},
      {16, 2, 32},
  };
  // (cached positions, new queries): context not a multiple of the key block (64), decode at a
  // block boundary and one past it, a prefill starting mid-block, a first chunk, and a long one.
  // Decode from 128 keys on takes chunks of the context (attention_chunk_keys): of 64 keys, 2 (the
  // first), 4 with a last one of 9 keys, 8, 9 with a last chunk of one key, 24 with the last one
  // short; of 128, 33 with a last one of 5 keys (in runs of chunks per thread: 8 on 1 thread,
  // 2 + 3 + 3 on 3).
  static_assert(cpu::detail::attention_chunk_keys(127) == 0 && cpu::detail::attention_chunk_keys(128) == 64 &&
                    cpu::detail::attention_chunk_keys(4096) == 64 && cpu::detail::attention_chunk_keys(4097) == 128,
                "the decode spans below assume these chunks");
  const std::pair<std::uint32_t, std::size_t> spans[] = {
      {0, 1},    {63, 1},  {64, 1},  {127, 1}, {200, 1},  {5, 37},   {0, 37},
      {70, 130}, {511, 1}, {512, 1}, {1500, 1}, {4100, 1}};
  for (const Shape& s : shapes)
    for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::q8_0}) {
      if (!cpu::attention_supports(type, s.head_dim)) continue;
      for (auto [first_pos, T] : spans) {
        if (s.n_head == 40 && T > 37) continue;  // keeps the float64 reference quick
        const Case c(s, type, first_pos, T, rng);
        const std::vector<double> want = c.reference();
        std::vector<float> got[4];  // by path
        for (cpu::Isa isa : ponder::test::cpu_isas()) {
          cpu::force_isa(isa);
          INFO(cpu::isa_name(isa) << " " << s.n_head << "/" << s.n_head_kv << " heads of " << s.head_dim << ", "
                                  << ggml_type_info(static_cast<std::uint32_t>(type))->name << " cache, "
                                  << first_pos << " cached + " << T << " queries");
          std::vector<float>& out = got[static_cast<int>(isa)];
          out = c.run(&three);
          // Float rounding over sums of ≤ 4,101 terms of O(1) values (the stored K/V are what
          // both sides read, so the cache type adds no error here).
          CHECK(max_error(out, want) < 2e-5);
          CHECK(c.run(&one) == out);
          CHECK(c.run(nullptr) == out);
          if (isa >= cpu::Isa::avx512 && cpu::detect_isa() >= cpu::Isa::avx512) {
            // The 8-lane kernels with AVX-512's registers (6 rows at a time; on AMD CPUs the
            // tiles too): a row's numbers go through AVX2's instructions, so the same bits.
            const std::vector<float> narrow = c.run_narrow(&three);
            CHECK(max_error(narrow, want) < 2e-5);
            CHECK(c.run_narrow(&one) == narrow);
            const bool chunks = T == 1 && cpu::detail::attention_chunk_keys(first_pos + 1) != 0;
            // (Where the 8-lane tiles are taken: AMD CPUs, or heads not whole vectors of 16.)
            if ((chunks || amd || s.head_dim % 16 != 0) && !got[static_cast<int>(cpu::Isa::avx2)].empty())
              CHECK(narrow == got[static_cast<int>(cpu::Isa::avx2)]);
          }
        }
        for (int p = 1; p < 4; ++p) {  // each tiled path against the portable one
          if (got[p].empty()) continue;
          double worst = 0;
          for (std::size_t i = 0; i < got[0].size(); ++i) worst = std::max(worst, double(std::abs(got[0][i] - got[p][i])));
          INFO(cpu::isa_name(static_cast<cpu::Isa>(p)));
          CHECK(worst < 2e-5);
        }
      }
    }
  cpu::detail::set_wide_attention_everywhere(false);
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("attention: Q8_0 needs heads of whole blocks", "[backend][attention]") {
  CHECK(cpu::attention_supports(GgmlType::q8_0, 128));
  CHECK(!cpu::attention_supports(GgmlType::q8_0, 80));
  CHECK(cpu::attention_supports(GgmlType::f16, 80));
  CHECK(!cpu::attention_supports(GgmlType::q4_k, 128));
}

TEST_CASE("swiglu: every path matches x / (1 + e^-x) * u in float64, tails and extremes included",
          "[backend][attention]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (cpu::Isa isa : ponder::test::cpu_isas()) {
    cpu::force_isa(isa);
    for (std::size_t n : {1, 7, 8, 9, 16, 37, 200}) {
      std::vector<float> g(n), u(n);
      for (std::size_t i = 0; i < n; ++i) g[i] = normal(rng), u[i] = normal(rng);
      // Extremes: large of both signs (e^x's clamp at -87), zero, denormal-sized.
      const float extremes[] = {0.0f, -0.0f, 30.0f, -30.0f, 90.0f, -90.0f, 200.0f, -200.0f, 1e-30f, -1e-30f};
      for (std::size_t i = 0; i < n && i < std::size(extremes); i += 2) g[i] = extremes[(i / 2 + n) % std::size(extremes)];
      std::vector<float> got = g;
      cpu::swiglu(got.data(), u.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        const double x = g[i], want = x / (1.0 + std::exp(-x)) * u[i];
        INFO(cpu::isa_name(isa) << " n=" << n << " i=" << i << " x=" << x << " got " << got[i] << " want " << want);
        CHECK(std::fabs(got[i] - want) <= 2e-6 * std::fabs(want) + 1e-30);
      }
    }
    // Inf and NaN as with the formula: silu(+inf) u = +inf; silu(-inf) = -inf / inf = NaN (the
    // vector paths: -inf * 0); NaN stays NaN.
    std::vector<float> g = {INFINITY, -INFINITY, NAN}, u = {2.0f, 2.0f, 2.0f};
    cpu::swiglu(g.data(), u.data(), 3);
    CHECK(g[0] == INFINITY);
    CHECK(std::isnan(g[1]));
    CHECK(std::isnan(g[2]));
  }
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("rms_norm: every path gives the portable path's bits, within float rounding of float64",
          "[backend][attention]") {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (std::size_t n : {1, 7, 8, 9, 64, 1536, 8961})
    for (std::size_t rows : {1, 3}) {
      std::vector<float> x(rows * n), w(n);
      for (auto& v : x) v = normal(rng);
      for (auto& v : w) v = normal(rng);
      x[n / 2] = 1e-20f;  // a tiny square among the others
      const float eps = 1e-6f;
      cpu::force_isa(cpu::Isa::portable);
      std::vector<float> want(rows * n);
      cpu::rms_norm(x.data(), w.data(), want.data(), rows, n, eps);
      for (std::size_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (std::size_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
        const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
        for (std::size_t i = 0; i < n; ++i) {
          const double ref = x[r * n + i] * inv * w[i];
          INFO("n=" << n << " row " << r << " i=" << i);
          CHECK(std::fabs(want[r * n + i] - ref) <= 3e-7 * std::fabs(ref) + 1e-30);
        }
      }
      for (cpu::Isa isa : ponder::test::cpu_isas()) {
        cpu::force_isa(isa);
        std::vector<float> got(rows * n, -1.0f), in_place = x;
        cpu::rms_norm(x.data(), w.data(), got.data(), rows, n, eps);
        cpu::rms_norm(in_place.data(), w.data(), in_place.data(), rows, n, eps);  // out aliasing x
        INFO(cpu::isa_name(isa) << " n=" << n << " rows=" << rows);
        CHECK(got == want);
        CHECK(in_place == want);
      }
    }
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("rope and add_to: every path gives the portable path's bits, and rope turns each pair as defined",
          "[backend][attention]") {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::uniform_real_distribution<double> angle(-7.0, 7.0);
  for (std::uint32_t d : {2u, 8u, 10u, 64u, 80u, 128u})
    for (std::uint32_t heads : {1u, 3u})
      for (bool adjacent : {false, true}) {
        const std::uint32_t half = d / 2;
        std::vector<float> x(std::size_t{heads} * d), c(half), sn(half);
        for (auto& v : x) v = normal(rng);
        for (std::uint32_t i = 0; i < half; ++i) {
          const double a = angle(rng);
          c[i] = static_cast<float>(std::cos(a));
          sn[i] = static_cast<float>(std::sin(a));
        }
        cpu::force_isa(cpu::Isa::portable);
        std::vector<float> want = x;
        cpu::rope(want.data(), heads, d, c.data(), sn.data(), adjacent);
        for (std::uint32_t h = 0; h < heads; ++h)
          for (std::uint32_t i = 0; i < half; ++i) {
            const std::size_t ia = std::size_t{h} * d + (adjacent ? 2 * i : i), ib = ia + (adjacent ? 1 : half);
            const double a = x[ia], b = x[ib];
            INFO("d=" << d << " head " << h << " pair " << i << (adjacent ? " adjacent" : " half"));
            CHECK(std::fabs(want[ia] - (a * c[i] - b * sn[i])) <= 1e-6 * (std::fabs(a) + std::fabs(b)));
            CHECK(std::fabs(want[ib] - (b * c[i] + a * sn[i])) <= 1e-6 * (std::fabs(a) + std::fabs(b)));
          }
        for (cpu::Isa isa : ponder::test::cpu_isas()) {
          cpu::force_isa(isa);
          std::vector<float> got = x;
          cpu::rope(got.data(), heads, d, c.data(), sn.data(), adjacent);
          INFO(cpu::isa_name(isa) << " d=" << d << " heads=" << heads << (adjacent ? " adjacent" : " half"));
          CHECK(got == want);
        }
      }
  for (std::size_t n : {1, 7, 8, 9, 1536, 8961}) {
    std::vector<float> x(n), y(n);
    for (auto& v : x) v = normal(rng);
    for (auto& v : y) v = normal(rng);
    std::vector<float> want = x;
    for (std::size_t i = 0; i < n; ++i) want[i] = x[i] + y[i];
    for (cpu::Isa isa : ponder::test::cpu_isas()) {
      cpu::force_isa(isa);
      std::vector<float> got = x;
      cpu::add_to(got.data(), y.data(), n);
      INFO(cpu::isa_name(isa) << " n=" << n);
      CHECK(got == want);
    }
  }
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("store_kv_row: every path writes the bits of quantize() (F16 ties, subnormals, overflow, NaN)",
          "[backend][attention]") {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  // Ties of F16's rounding (odd and even), just past them, the largest half, overflow, subnormals
  // of half and of float, zeros, infinities.
  const float special[] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-11f + 0x1p-20f, 65504.0f, 65520.0f,
                           65519.0f, 1e6f, 0x1p-24f, 0x1p-25f, 3 * 0x1p-26f, 0x1p-15f + 0x1p-25f, 1e-40f,
                           -0.0f, 0.0f, INFINITY, -INFINITY, -65520.0f, -0x1p-24f};
  for (cpu::Isa isa : ponder::test::cpu_isas()) {
    cpu::force_isa(isa);
    for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::q8_0})
      for (std::size_t n : {32, 37, 64, 96, 256}) {
        if (type == GgmlType::q8_0 && n % 32 != 0) continue;  // (whole blocks only)
        std::vector<float> x(n);
        for (std::size_t i = 0; i < n; ++i) x[i] = normal(rng);
        if (type != GgmlType::q8_0)  // (Q8_0's blocks scale by their largest value)
          for (std::size_t i = 0; i < std::size(special) && i < n; ++i) x[(5 * i + n) % n] = special[i];
        const std::size_t bytes = row_bytes(type, n);
        std::vector<unsigned char> got(bytes, 0xAB), want(bytes, 0xCD);
        cpu::store_kv_row(type, x.data(), got.data(), n);
        REQUIRE(quantize(type, x.data(), want.data(), n, nullptr));
        INFO(cpu::isa_name(isa) << " " << ggml_type_info(static_cast<std::uint32_t>(type))->name << " n=" << n);
        CHECK(got == want);
      }
    float nan_in[32];
    std::fill(std::begin(nan_in), std::end(nan_in), NAN);
    nan_in[3] = -NAN;
    std::uint16_t out[32];
    cpu::store_kv_row(GgmlType::f16, nan_in, out, 32);
    for (std::uint16_t h : out) CHECK(((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0));
  }
  cpu::force_isa(cpu::detect_isa());
}
