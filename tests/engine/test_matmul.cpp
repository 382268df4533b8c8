// CPU matmul kernels against the scalar reference, and the thread pool.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/cpu/attention.h"
#include "engine/cpu/attention_internal.h"
#include "engine/cpu/bandwidth.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/matmul_internal.h"
#include "engine/cpu/thread_pool.h"
#include "engine/quant.h"
#include "support/cpu_isas.h"

using ponder::GgmlType;
using ponder::Weight;
namespace cpu = ponder::cpu;

namespace {

// A weight matrix held in memory as it would be in a mapping.
struct TestWeight {
  std::vector<unsigned char> bytes;
  std::vector<float> dequantized;  // the reference dequantizer's output, N x K
  Weight w;
};

std::uint32_t block_of(GgmlType type) {
  return ponder::ggml_type_info(static_cast<std::uint32_t>(type))->block_elements;
}

// Quantized from random floats (rows of varied scale) by the reference quantizers.
TestWeight make_weight(GgmlType type, std::size_t N, std::size_t K, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> src(N * K);
  for (std::size_t n = 0; n < N; ++n) {
    const float scale = 0.02f * std::exp2(static_cast<float>(n % 5) - 2.0f);
    for (std::size_t k = 0; k < K; ++k) src[n * K + k] = scale * normal(rng);
  }
  TestWeight t;
  t.bytes.resize(ponder::row_bytes(type, K) * N);
  std::string error;
  REQUIRE(ponder::quantize(type, src.data(), t.bytes.data(), N * K, &error));
  return t;
}

// Random bytes in every block field, with sane f16 scales: covers the whole range of the quant
// values and of the sub-block scales (Q8_0 -128, Q6_K scale -128, 6-bit scales of 63...).
TestWeight make_raw_weight(GgmlType type, std::size_t N, std::size_t K, std::mt19937& rng) {
  TestWeight t;
  t.bytes.resize(ponder::row_bytes(type, K) * N);
  for (auto& b : t.bytes) b = static_cast<unsigned char>(rng());
  const auto* info = ponder::ggml_type_info(static_cast<std::uint32_t>(type));
  std::vector<std::size_t> f16_fields;
  switch (type) {
    case GgmlType::q8_0: case GgmlType::q4_0: f16_fields = {0}; break;
    case GgmlType::q4_k: case GgmlType::q5_k: f16_fields = {0, 2}; break;
    case GgmlType::q6_k: f16_fields = {208}; break;
    default: FAIL("not a block type");
  }
  std::uniform_real_distribution<float> scale(2e-4f, 2e-3f);
  for (std::size_t off = 0; off < t.bytes.size(); off += info->block_bytes)
    for (std::size_t f : f16_fields) {
      const std::uint16_t h = ponder::f32_to_f16(scale(rng));
      t.bytes[off + f] = static_cast<unsigned char>(h & 0xFF);
      t.bytes[off + f + 1] = static_cast<unsigned char>(h >> 8);
    }
  return t;
}

void finish(TestWeight& t, GgmlType type, std::size_t N, std::size_t K) {
  t.dequantized.resize(N * K);
  std::string error;
  REQUIRE(ponder::dequantize(type, t.bytes.data(), t.dequantized.data(), N * K, &error));
  t.w.type = type;
  t.w.n_dims = 2;
  t.w.ne[0] = K;
  t.w.ne[1] = N;
  t.w.data = t.bytes.data();
  t.w.bytes = t.bytes.size();
  t.w.source = "test";
}

std::vector<float> make_x(std::size_t T, std::size_t K, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(T * K);
  for (std::size_t t = 0; t < T; ++t) {
    const float scale = std::exp2(static_cast<float>(t % 7) - 3.0f);
    for (std::size_t k = 0; k < K; ++k) x[t * K + k] = scale * normal(rng);
    x[t * K + (t * 13) % K] *= 8.0f;  // an outlier per row, as activations have
  }
  return x;
}

// The packed prefill (kernel_common.h): widened weights times the activations as they are, one
// FMA chain over k per output. F32 on every vector path, F16 on avx2, avx512 and amx, BF16 on
// avx2 and avx512 (amx has its own kernel for it), Q8_0 / Q4_0 on avx2.
bool packed_path(GgmlType type, cpu::Isa isa, std::size_t T) {
  if (T <= 1 || isa == cpu::Isa::portable) return false;
  if (type == GgmlType::f32) return true;
  if (type == GgmlType::f16) return true;
  if (type == GgmlType::bf16) return isa != cpu::Isa::amx;
  return isa == cpu::Isa::avx2 && (type == GgmlType::q8_0 || type == GgmlType::q4_0);
}

bool int8_path(GgmlType type, cpu::Isa isa, std::size_t T) {
  return isa != cpu::Isa::portable && block_of(type) != 1 && !packed_path(type, isa, T);
}

// The activation quantization the int8 paths apply (matmul.h), written out independently:
// per block of 32 (Q8_0, Q4_0) or 256 (K-quants) d = max|x| / 127, q = nearest-even(x / d).
// Returns x̂ = q * d and, per element, the bound d/2 on |x̂ - x|.
void emulate_activations(GgmlType type, const std::vector<float>& x, std::vector<double>* xhat,
                         std::vector<double>* bound) {
  xhat->assign(x.begin(), x.end());
  bound->assign(x.size(), 0.0);
  if (block_of(type) == 1) return;  // float weights: X is used as it is
  const std::size_t block = (type == GgmlType::q8_0 || type == GgmlType::q4_0) ? 32 : 256;
  for (std::size_t b = 0; b < x.size(); b += block) {
    float amax = 0.0f;
    for (std::size_t j = b; j < b + block; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (std::size_t j = b; j < b + block; ++j) {
      const float q = std::clamp(std::nearbyint(x[j] * id), -127.0f, 127.0f);
      (*xhat)[j] = double(q) * double(d);
      (*bound)[j] = 0.5 * double(d) * 1.001;  // |x*id - x/d| adds a hair to the half step
    }
  }
}

struct Worst {
  double ratio = 0;  // largest error / tolerance seen
  std::string where;
  void see(double err, double tol, const std::string& at) {
    const double r = tol > 0 ? err / tol : (err > 0 ? 1e30 : 0);
    if (r > ratio) {
      ratio = r;
      where = at + " err " + std::to_string(err) + " tol " + std::to_string(tol);
    }
  }
};

std::vector<cpu::Isa> isas() { return ponder::test::cpu_isas(); }

// Runs every ISA path, thread count and T on one weight, checks against the references, and
// that 1, 2 and 3 threads give bit-identical results.
void check_weight(TestWeight& tw, GgmlType type, std::size_t N, std::size_t K, std::mt19937& rng,
                  cpu::ThreadPool* pools[3], Worst* tight, Worst* loose,
                  std::initializer_list<std::size_t> Ts = {1, 2, 5, 9, 33}) {
  for (std::size_t T : Ts) {
    const std::vector<float> x = make_x(T, K, rng);
    std::vector<double> xhat, xbound;
    emulate_activations(type, x, &xhat, &xbound);
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      REQUIRE(cpu::active_isa() == isa);
      const bool int8 = int8_path(type, isa, T);
      std::vector<float> y[3];
      for (int p = 0; p < 3; ++p) {
        y[p].assign(T * N, std::nanf(""));
        cpu::matmul(tw.w, x.data(), T, y[p].data(), pools[p]);
      }
      const std::string at = std::string(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name) +
                             " " + cpu::isa_name(isa) + " N=" + std::to_string(N) + " K=" +
                             std::to_string(K) + " T=" + std::to_string(T);
      INFO(at);
      CHECK(std::memcmp(y[0].data(), y[1].data(), y[0].size() * 4) == 0);
      CHECK(std::memcmp(y[0].data(), y[2].data(), y[0].size() * 4) == 0);
      if (T == 1) {
        // Decode's guided split (the default) leaves a product this small in one take whatever
        // the threads; in shares of 2 and 3 threads the rows fall elsewhere in and past the
        // kernels' runs, which their bits must not notice.
        cpu::detail::set_decode_split(cpu::detail::DecodeSplit::shares);
        for (int p = 1; p < 3; ++p) {
          std::vector<float> shares(N, std::nanf(""));
          cpu::matmul(tw.w, x.data(), T, shares.data(), pools[p]);
          CHECK(std::memcmp(y[0].data(), shares.data(), shares.size() * 4) == 0);
        }
        cpu::detail::set_decode_split(cpu::detail::DecodeSplit::guided);
      }
      // Float rounding of a K-long dot product computed in float: at most K/8 + 8 rounded
      // operations on the path of any one product (8-lane chains of K/8 steps, the lane sum, the
      // tail, and for the block types one rounding each for the block scale product, the int32
      // to float conversion and the reference dequantizer's own float steps), each a relative
      // error of at most 2^-24 of the running magnitude, which is at most sum |w x|. Doubled
      // for margin.
      const double u = std::ldexp(1.0, -24);
      // The AMX kernel of BF16 weights (prefill, whole groups of 16 rows) sums the exact
      // products of the weights and X's 3 bf16 parts: a product goes through one of TDPBF16PS's
      // two chains of 16 (at most 16 roundings, of partial sums of its chunk), the sum of the two
      // chains (1) and the addition to the tile (1), then the 3 ceil(K / 32) additions to the
      // tile of the products after it: at most 18 + 3 ceil(K / 32) roundings on its path.
      // (Whether no part is left out is the one-hot test's.)
      const bool amx_float = isa == cpu::Isa::amx && T > 1 && type == GgmlType::bf16;
      // The AVX2 packed prefill: one chain of K FMAs per output, plus the dequantizer's steps.
      const double ops = amx_float                       ? 18.0 + 3.0 * double((K + 31) / 32) + 8.0
                         : packed_path(type, isa, T) ? double(K) + 8.0
                                                         : double(K) / 8.0 + 8.0;
      const double fk = 2.0 * ops * u;
      // The packed path's outputs are, bit for bit, one float FMA chain over k in order.
      std::size_t chain_mismatches = 0;
      std::string first_mismatch;
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t n = 0; n < N; ++n) {
          const float* wd = &tw.dequantized[n * K];
          if (packed_path(type, isa, T)) {
            float chain = 0.0f;
            for (std::size_t k = 0; k < K; ++k) chain = std::fma(wd[k], x[t * K + k], chain);
            const float got = y[0][t * N + n];
            if (!(got == chain || (std::isnan(got) && std::isnan(chain))) && chain_mismatches++ == 0)
              first_mismatch = "t=" + std::to_string(t) + " n=" + std::to_string(n) + " got " +
                               std::to_string(got) + " chain " + std::to_string(chain);
          }
          double exact = 0, exact_abs = 0, emu = 0, emu_abs = 0, qerr = 0;
          for (std::size_t k = 0; k < K; ++k) {
            const double wv = wd[k], xv = x[t * K + k], hv = xhat[t * K + k];
            exact += wv * xv;
            exact_abs += std::fabs(wv * xv);
            emu += wv * hv;
            emu_abs += std::fabs(wv * hv);
            qerr += std::fabs(wv) * xbound[t * K + k];
          }
          const double got = y[0][t * N + n];
          const std::string pos = at + " t=" + std::to_string(t) + " n=" + std::to_string(n);
          if (!int8) {
            tight->see(std::fabs(got - exact), fk * exact_abs + 1e-30, pos);
          } else {
            // Tight: against the same activation quantization done in double.
            tight->see(std::fabs(got - emu), fk * emu_abs + 1e-30, pos);
            // Loose: against the exact product, the activation quantization error is at most
            // sum_k |w_k| d_k / 2 (d_k the step of x_k's block), plus the float rounding.
            loose->see(std::fabs(got - exact), qerr + fk * (exact_abs + emu_abs) + 1e-30, pos);
          }
        }
      INFO("first output off the FMA chain: " << first_mismatch);
      CHECK(chain_mismatches == 0);
    }
  }
  cpu::force_isa(cpu::detect_isa());
}

std::vector<std::size_t> k_sizes(GgmlType type) {
  const std::size_t b = block_of(type);
  if (b == 1) return {5, 33, 256 * 3 + 7};
  // The AVX-512 decode's groups of 16 blocks: 5 blocks (two pairs, an odd one after them), 24
  // (a group, then 8), 39 (two groups, then three pairs and an odd one), 22 (a group, then 6).
  if (b == 32) return {32, 32 * 5, 256 * 3, 32 * 39, 32 * 22};
  // The AVX-512 decode of Q4_K / Q5_K takes super-blocks by fours: 1 and 3 (a four cut short),
  // 6 (a four, then 2), 9 (two fours, then 1).
  return {256, 256 * 3, 256 * 6, 256 * 9};
}

void check_type(GgmlType type, bool raw) {
  std::mt19937 rng(1234 + static_cast<unsigned>(type) * 7 + raw);
  cpu::ThreadPool p1(1), p2(2), p3(3);
  cpu::ThreadPool* pools[3] = {&p1, &p2, &p3};
  Worst tight, loose;
  // N = 23: decode_rows's runs of 4 with 3 rows left over (1 and 2 left over come from 17 and
  // 257 in shares of 2 and 3 threads).
  for (std::size_t N : {1, 3, 17, 23, 257})
    for (std::size_t K : k_sizes(type)) {
      TestWeight tw = raw ? make_raw_weight(type, N, K, rng) : make_weight(type, N, K, rng);
      finish(tw, type, N, K);
      check_weight(tw, type, N, K, rng, pools, &tight, &loose);
    }
  INFO("worst (tight): " << tight.where);
  CHECK(tight.ratio <= 1.0);
  INFO("worst (loose): " << loose.where);
  CHECK(loose.ratio <= 1.0);
}

}  // namespace

TEST_CASE("matmul: the ISA this machine has", "[matmul]") {
  const cpu::Isa isa = cpu::detect_isa();
  const std::vector<cpu::Isa> tested = isas();
  WARN("matmul paths here: up to " << cpu::isa_name(isa) << "; tested up to "
       << cpu::isa_name(tested.back()) << (tested.back() > isa ? " (emulated)" : ""));
#if defined(PONDER_HAVE_AVX512_EMU) && defined(__x86_64__)
  // Every x86-64 machine that builds the tests checks the AVX-512 and AMX kernels, natively or not.
  if (isa >= cpu::Isa::avx2) CHECK(tested.back() == cpu::Isa::amx);
#endif
  cpu::force_isa(cpu::Isa::amx);
  CHECK(cpu::active_isa() == tested.back());  // clamped to what can run here
  cpu::force_isa(cpu::Isa::portable);
  CHECK(cpu::active_isa() == cpu::Isa::portable);
  cpu::force_isa(isa);
  CHECK(cpu::active_isa() == isa);
}

#if defined(PONDER_HAVE_AVX512_EMU)
// The emulated AVX-512 attention kernel with its output 1e-4 off.
void attention_off_kernel(const ponder::cpu::AttentionArgs& a, const cpu::detail::AttentionTile& tile, float* ws) {
  cpu::detail::attention_tile_avx512_emulated(a, tile, ws);
  const std::size_t D = a.head_dim;
  for (std::size_t t = tile.t0; t < tile.t1; ++t)
    for (std::size_t h = 0; h < tile.n_heads; ++h)
      for (std::size_t i = 0; i < D; ++i) a.out[(t * a.n_head + tile.head0 + h) * D + i] *= 1.0001f;
}

// The emulated AVX-512 kernels with Q4_K's results 1% off: what check_kernels must catch.
void q4k_off_kernel(const cpu::detail::MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1) {
  cpu::detail::block_avx512_emulated(a, n0, n1, t0, t1);
  if (a.type == GgmlType::q4_k)
    for (std::size_t t = t0; t < t1; ++t)
      for (std::size_t n = n0; n < n1; ++n) a.y[t * a.N + n] *= 1.01f;
}
#endif

TEST_CASE("check_kernels: the paths past AVX2 agree with it, a wrong kernel is named", "[matmul][attention]") {
  for (cpu::Isa isa : isas()) {
    std::string report;
    const bool ok = cpu::check_kernels(isa, &report);
    INFO(cpu::isa_name(isa) << ": " << report);
    CHECK(ok);
    CHECK(report.empty());
  }
#if defined(PONDER_HAVE_AVX512_EMU)
  if (cpu::detect_isa() == cpu::Isa::avx2) {
    cpu::detail::emulate_isa(cpu::Isa::avx512, {q4k_off_kernel, nullptr, cpu::detail::attention_tile_avx512_emulated});
    std::string report;
    const bool ok = cpu::check_kernels(cpu::Isa::avx512, &report);
    INFO(report);
    CHECK_FALSE(ok);
    CHECK(report.find("q4_K T=1: relative difference") != std::string::npos);
    CHECK(report.find("q4_K T=21: relative difference") != std::string::npos);
    CHECK(report.find("q8_0") == std::string::npos);
    CHECK(report.find("attention") == std::string::npos);
    // and an attention kernel 1e-4 off, named for both cache types
    cpu::detail::emulate_isa(cpu::Isa::avx512, {cpu::detail::block_avx512_emulated, nullptr, attention_off_kernel});
    report.clear();
    CHECK_FALSE(cpu::check_kernels(cpu::Isa::avx512, &report));
    INFO(report);
    CHECK(report.find("attention, f16 cache: relative difference") != std::string::npos);
    CHECK(report.find("attention, q8_0 cache: relative difference") != std::string::npos);
    CHECK(report.find("q4_K") == std::string::npos);
    cpu::detail::emulate_isa(cpu::Isa::avx512, {cpu::detail::block_avx512_emulated, nullptr,
                                                 cpu::detail::attention_tile_avx512_emulated});
  }
#endif
  // Here (no AVX-512 in hardware, or kernels that agree) the path in use stays the best one.
  CHECK(cpu::verify_kernels_once() == cpu::active_isa());
}

TEST_CASE("matmul: float weights with one value per row give that one product on every path", "[matmul]") {
  // Each output is then w_k x_k alone: every path must return the product to within a few
  // roundings (the FMA paths round once; the AMX path sums the exact products of the bf16 parts,
  // 3, rounding the running sum each time after the first: 2 u at most). A part of X left out
  // (X's lo part is up to 2^-15 of x) would show here, where the reference test's worst-case
  // bound is too wide to see it. N = 19: an AMX group of 16 rows and 3 more;
  // K = 775: a partial last chunk of 32 (columns 768-774); T = 37: two groups of 16 at once,
  // then a partial one; the one value of row n at column (37 n + 11) % K, but for rows 5 (in the
  // AMX group) and 17 (not), at K - 1 and K - 2: in the last chunk.
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  cpu::ThreadPool pool(2);
  const std::size_t N = 19, K = 775, T = 37;
  const double u = std::ldexp(1.0, -24);
  auto column = [&](std::size_t n) { return n == 5 ? K - 1 : n == 17 ? K - 2 : (37 * n + 11) % K; };
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16}) {
    std::vector<float> src(N * K, 0.0f);
    for (std::size_t n = 0; n < N; ++n) src[n * K + column(n)] = normal(rng) * std::exp2(float(n % 7) - 3.0f);
    TestWeight tw;
    tw.bytes.resize(ponder::row_bytes(type, K) * N);
    std::string error;
    REQUIRE(ponder::quantize(type, src.data(), tw.bytes.data(), N * K, &error));
    finish(tw, type, N, K);
    const std::vector<float> x = make_x(T, K, rng);
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      std::vector<float> y(T * N, std::nanf(""));
      cpu::matmul(tw.w, x.data(), T, y.data(), &pool);
      Worst worst;
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t n = 0; n < N; ++n) {
          const std::size_t k = column(n);
          const double exact = double(tw.dequantized[n * K + k]) * double(x[t * K + k]);
          worst.see(std::fabs(double(y[t * N + n]) - exact), 6.0 * u * std::fabs(exact) + 1e-30,
                    "t=" + std::to_string(t) + " n=" + std::to_string(n));
        }
      INFO(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name << " " << cpu::isa_name(isa) << ": " << worst.where);
      CHECK(worst.ratio <= 1.0);
    }
  }
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("matmul: Inf and NaN in X come out as Inf and NaN on every float path", "[matmul]") {
  // (The AMX kernel splits X into bf16 parts: an Inf must not become Inf - Inf = NaN there, nor a
  // NaN become Inf by truncation.) Row 3 of X has +Inf at column 10, row 4 -Inf at 10, row 5 a NaN
  // whose set mantissa bits are all below the 16 that bf16 keeps; the outputs of those rows are
  // ±Inf (or NaN) as on the portable path, and the other rows stay finite.
  std::mt19937 rng(17);
  cpu::ThreadPool pool(2);
  const std::size_t N = 17, K = 64, T = 20;
  for (GgmlType type : {GgmlType::f16, GgmlType::bf16}) {
    TestWeight tw = make_weight(type, N, K, rng);
    finish(tw, type, N, K);
    std::vector<float> x = make_x(T, K, rng);
    x[3 * K + 10] = INFINITY;
    x[4 * K + 10] = -INFINITY;
    std::uint32_t low_nan = 0x7F800001u;
    std::memcpy(&x[5 * K + 20], &low_nan, 4);
    std::vector<float> want(T * N);
    cpu::force_isa(cpu::Isa::portable);
    cpu::matmul(tw.w, x.data(), T, want.data(), &pool);
    REQUIRE(std::isinf(want[3 * N]));  // the rows are the cases meant
    REQUIRE(std::isnan(want[5 * N]));
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      std::vector<float> y(T * N, 0.0f);
      cpu::matmul(tw.w, x.data(), T, y.data(), &pool);
      int wrong = 0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        const bool same = std::isnan(want[i]) ? std::isnan(y[i])
                          : std::isinf(want[i]) ? y[i] == want[i]
                                                : std::isfinite(y[i]);
        wrong += !same;
      }
      INFO(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name << " " << cpu::isa_name(isa));
      CHECK(wrong == 0);
    }
  }
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("matmul: every weight type against the scalar reference", "[matmul]") {
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0,
                        GgmlType::q4_0, GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k}) {
    DYNAMIC_SECTION(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name) {
      check_type(type, false);
    }
  }
}

TEST_CASE("matmul: the packed prefill over K in blocks is still one FMA chain per output", "[matmul]") {
  // Tasks whose X does not fit half the L2 take K in blocks of 512 (packed_k_block), the sums
  // kept between blocks; forced to blocks of 256, K = 775 is three blocks and a tail of 7, and
  // check_weight's chain comparison must still hold bit for bit (Q8_0 / Q4_0: the AVX2 path's
  // packed prefill, blocks starting on a block of 32).
  cpu::detail::set_packed_k_block(256);
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0, GgmlType::q4_0}) {
    DYNAMIC_SECTION(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name) {
      check_type(type, false);
    }
  }
  cpu::detail::set_packed_k_block(0);
}

TEST_CASE("matmul: random block bytes (every quant value and sub-block scale)", "[matmul]") {
  for (GgmlType type : {GgmlType::q8_0, GgmlType::q4_0, GgmlType::q4_k, GgmlType::q5_k,
                        GgmlType::q6_k}) {
    DYNAMIC_SECTION(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name) {
      check_type(type, true);
    }
  }
}

TEST_CASE("matmul: no pool equals a pool, zero rows of X do nothing", "[matmul]") {
  std::mt19937 rng(99);
  const std::size_t N = 37, K = 512, T = 6;
  TestWeight tw = make_weight(GgmlType::q4_k, N, K, rng);
  finish(tw, GgmlType::q4_k, N, K);
  const std::vector<float> x = make_x(T, K, rng);
  cpu::ThreadPool pool(2);
  std::vector<float> a(T * N), b(T * N);
  cpu::matmul(tw.w, x.data(), T, a.data(), nullptr);
  cpu::matmul(tw.w, x.data(), T, b.data(), &pool);
  CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
  std::vector<float> untouched(N, 7.0f);
  cpu::matmul(tw.w, x.data(), 0, untouched.data(), &pool);
  CHECK(std::all_of(untouched.begin(), untouched.end(), [](float v) { return v == 7.0f; }));
}

TEST_CASE("matmul: decode of long rows: Q8_0 4, 2 and 1 rows side by side, the float types 8", "[matmul]") {
  // The AVX-512 decode reads 4 rows side by side where 4 rows and X fit in decode_l1_bytes(),
  // else fewer (decode_rows_fitting); the float types where not even one row fits beside X take
  // 8 (two accumulators each, also for the rows past the runs of 8). Run under the budgets of a
  // 32 KiB L1 (26 KiB) and a 48 KiB one (39 KiB) whatever this CPU's is:
  // - Q8_0 at K = 5120 (rows of 5,440 bytes, X 6.4 KB): 2 rows, then 4; at K = 8960 (9,520
  //   bytes, X 11.5 KB: the 1.5B shape's ffn_down): 1, then 2.
  // - K = 4661 (X 18 KB; F16 rows 9 KB; K % 64 = 53: the vector tail and the scalar one): the
  //   float types 8 rows under 26 KiB, 4 under 39 KiB (a row of F32, 18 KB, fits beside X).
  // N = 25: on one thread runs of 2 (or 4) with one row left, runs of 8 with one left; in shares
  // of 2 threads rows 12 and 8-12 fall past the runs instead (check_weight: bit-identical).
  // The row counts above, as the kernels choose them (Q8_0: X in groups of 16 blocks).
  using cpu::detail::decode_rows_fitting, cpu::detail::fits_beside_x;
  constexpr std::size_t kB26 = std::size_t{26} << 10, kB39 = std::size_t{39} << 10;
  auto q8_x = [](std::size_t K) { return (K / 32 + 15) / 16 * sizeof(cpu::detail::GroupQ8x512); };
  CHECK(decode_rows_fitting(5440, q8_x(5120), 4, kB26) == 2);
  CHECK(decode_rows_fitting(5440, q8_x(5120), 4, kB39) == 4);
  CHECK(decode_rows_fitting(9520, q8_x(8960), 4, kB26) == 1);
  CHECK(decode_rows_fitting(9520, q8_x(8960), 4, kB39) == 2);
  for (const std::size_t row : {std::size_t{2 * 4661}, std::size_t{4 * 4661}}) {  // F16 / BF16, F32
    CHECK_FALSE(fits_beside_x(1, row, 4 * 4661, kB26));  // 8 rows side by side
    CHECK(fits_beside_x(1, row, 4 * 4661, kB39));        // 4
  }
  std::mt19937 rng(8960);
  cpu::ThreadPool p1(1), p2(2), p3(3);
  cpu::ThreadPool* pools[3] = {&p1, &p2, &p3};
  Worst tight, loose;
  const std::pair<GgmlType, std::size_t> cases[] = {{GgmlType::q8_0, 5120}, {GgmlType::q8_0, 8960},
                                                    {GgmlType::f32, 4661},  {GgmlType::f16, 4661},
                                                    {GgmlType::bf16, 4661}};
  for (const std::size_t budget : {kB26, kB39}) {
    cpu::detail::set_decode_l1_bytes(budget);
    REQUIRE(cpu::detail::decode_l1_bytes() == budget);
    for (const auto& [type, K] : cases) {
      TestWeight tw = make_weight(type, 25, K, rng);
      finish(tw, type, 25, K);
      check_weight(tw, type, 25, K, rng, pools, &tight, &loose, {1});
    }
  }
  cpu::detail::set_decode_l1_bytes(0);
  CHECK(cpu::detail::decode_l1_bytes() == cpu::detail::l1d_cache_bytes() / 16 * 13);
  INFO("worst (tight): " << tight.where);
  CHECK(tight.ratio <= 1.0);
  INFO("worst (loose): " << loose.where);
  CHECK(loose.ratio <= 1.0);
}

TEST_CASE("matmul: decode's software prefetch changes no bit", "[matmul]") {
  // stream_prefetch() picks decode kernels that prefetch ahead of their rows (not on AMD CPUs),
  // into L1 or into L1 and L2; all three kinds must give the same outputs on every path, for the
  // float types and Q8_0 (K = 8960: one row at a time; 1536: four side by side), and the
  // bandwidth reading must read each way.
  std::mt19937 rng(2026);
  cpu::ThreadPool pool(2);
  const std::pair<GgmlType, std::size_t> cases[] = {{GgmlType::q8_0, 8960}, {GgmlType::q8_0, 1536},
                                                    {GgmlType::f32, 1536},  {GgmlType::f16, 4661},
                                                    {GgmlType::bf16, 1536}};
  for (const auto& [type, K] : cases) {
    const std::size_t N = 41;
    TestWeight tw = make_weight(type, N, K, rng);
    finish(tw, type, N, K);
    const std::vector<float> x = make_x(1, K, rng);
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      std::vector<float> y[3];
      for (int level = 0; level < 3; ++level) {
        cpu::detail::set_stream_prefetch(level);
        CHECK(cpu::stream_prefetch() == static_cast<cpu::StreamPrefetch>(level));
        y[level].assign(N, std::nanf(""));
        cpu::matmul(tw.w, x.data(), 1, y[level].data(), &pool);
      }
      INFO(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name << " K=" << K << " " << cpu::isa_name(isa));
      CHECK(std::memcmp(y[0].data(), y[1].data(), N * 4) == 0);
      CHECK(std::memcmp(y[0].data(), y[2].data(), N * 4) == 0);
      CHECK(std::all_of(y[0].begin(), y[0].end(), [](float v) { return std::isfinite(v); }));
    }
  }
  std::vector<unsigned char> buffer(8u << 20, 1);
  const cpu::ReadSpan span{buffer.data(), buffer.size()};
  for (int level = 0; level < 3; ++level) {
    cpu::detail::set_stream_prefetch(level);
    CHECK(cpu::read_spans(pool, &span, 1) > 0);
  }
  cpu::detail::set_stream_prefetch(-1);
#if defined(__x86_64__)
  CHECK(cpu::stream_prefetch() ==
        (__builtin_cpu_is("amd") ? cpu::StreamPrefetch::none : cpu::StreamPrefetch::l1_l2));
#endif
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("matmul: decode's guided split computes every row once, as one thread does", "[matmul]") {
  // Decode (T = 1) with a pool: the threads take the remaining rows / threads at a time from a
  // counter per product, at least 128 KiB of rows (DecodeSplit::guided). N = 4099 rows of K = 256
  // make 4 (Q4_K) to 32 (F32) of those least takes, and a last take 3 rows past a run of 4;
  // two products in one call (as Q, K and V are) share the threads product after product. Every
  // output (NaN before) must equal, bit for bit, the call without a pool, on 2, 3 and 5 threads,
  // guided and in shares, on every path this machine has.
  std::mt19937 rng(4099);
  const std::size_t N = 4099, N2 = 517, K = 256;
  cpu::ThreadPool p2(2), p3(3), p5(5);
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::q8_0, GgmlType::q4_0, GgmlType::q4_k}) {
    TestWeight tw = make_weight(type, N, K, rng), tw2 = make_weight(type, N2, K, rng);
    finish(tw, type, N, K);
    finish(tw2, type, N2, K);
    const std::vector<float> x = make_x(1, K, rng);
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      std::vector<float> want(N + N2);
      const cpu::MatmulOut serial[2] = {{&tw.w, want.data()}, {&tw2.w, want.data() + N}};
      cpu::matmul_shared(serial, 2, x.data(), 1, nullptr);
      for (auto split : {cpu::detail::DecodeSplit::guided, cpu::detail::DecodeSplit::shares})
        for (cpu::ThreadPool* pool : {&p2, &p3, &p5}) {
          cpu::detail::set_decode_split(split);
          std::vector<float> got(N + N2, std::nanf(""));
          const cpu::MatmulOut outs[2] = {{&tw.w, got.data()}, {&tw2.w, got.data() + N}};
          cpu::matmul_shared(outs, 2, x.data(), 1, pool);
          INFO(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name
               << " " << cpu::isa_name(isa) << " threads " << pool->size()
               << (split == cpu::detail::DecodeSplit::guided ? " guided" : " shares"));
          CHECK(std::memcmp(got.data(), want.data(), want.size() * 4) == 0);
        }
    }
  }
  // Takes of at most 4 MiB of rows: F32 rows of K = 1024 (4 KiB), N = 2601 (10.2 MiB): on 2
  // threads the first takes (1304 rows) are capped at 1024, then shorten down to the least (32
  // rows); on 3 and 5 threads they start below the cap. (A mutation that drops 4 rows from the
  // capped takes failed 4 checks.)
  {
    cpu::detail::set_decode_split(cpu::detail::DecodeSplit::guided);
    const std::size_t N3 = 2601, K3 = 1024;
    TestWeight tw = make_weight(GgmlType::f32, N3, K3, rng);
    finish(tw, GgmlType::f32, N3, K3);
    const std::vector<float> x = make_x(1, K3, rng);
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      std::vector<float> want(N3);
      cpu::matmul(tw.w, x.data(), 1, want.data(), nullptr);
      for (cpu::ThreadPool* pool : {&p2, &p3, &p5}) {
        std::vector<float> got(N3, std::nanf(""));
        cpu::matmul(tw.w, x.data(), 1, got.data(), pool);
        INFO("F32, N = 2601, K = 1024 " << cpu::isa_name(isa) << " threads " << pool->size());
        CHECK(std::memcmp(got.data(), want.data(), want.size() * 4) == 0);
      }
    }
  }
  cpu::detail::set_decode_split(cpu::detail::DecodeSplit::guided);
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("matmul: a prefill row's result does not depend on the rows prefilled with it", "[matmul]") {
  // Prefill (T > 1) puts activation rows in tiles of 1 to 6 (AMX: 16) by where they fall; every
  // tile shape must give the same bits (as prefix reuse prefills a suffix alone). K = 224 is 7
  // blocks of 32, an odd tail for the block accumulators; N = 19 is one AMX tile of 16 weight
  // rows and 3 rows for the other kernels; T = 300 is more than one task's activation rows on
  // every path (48 for the AVX2 tiles, 256 for AVX-512's packed float prefill; the VNNI prefill
  // cuts T into tasks of 78 here, 13 tiles of 6, having only two groups of weight rows for 2
  // threads). Every start s up to 40, then every 5th (each is a product of T - s rows).
  std::mt19937 rng(11);
  cpu::ThreadPool pool(2);
  const std::size_t T = 300;
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0, GgmlType::q4_0, GgmlType::q4_k,
                        GgmlType::q5_k, GgmlType::q6_k}) {
    const std::size_t K = block_of(type) == 256 ? 512 : 224, N = 19;
    TestWeight tw = make_weight(type, N, K, rng);
    finish(tw, type, N, K);
    const std::vector<float> x = make_x(T, K, rng);
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      std::vector<float> all(T * N);
      cpu::matmul(tw.w, x.data(), T, all.data(), &pool);
      for (std::size_t s = 1; s + 2 <= T; s += s < 40 ? 1 : 5) {
        INFO(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name << " " << cpu::isa_name(isa) << " rows from " << s);
        std::vector<float> part((T - s) * N, std::nanf(""));
        cpu::matmul(tw.w, x.data() + s * K, T - s, part.data(), &pool);
        CHECK(std::memcmp(part.data(), all.data() + s * N, part.size() * 4) == 0);
      }
    }
  }
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("matmul_shared: several products of one X equal separate matmuls, bit for bit", "[matmul]") {
  // Mixed formats in one call (Q8_0 takes X in blocks of 32, the K-quants in blocks of 256, F16
  // as floats), rows of differing counts, decode and prefill, every path this machine has.
  std::mt19937 rng(7);
  const std::size_t K = 512;
  const GgmlType types[] = {GgmlType::q8_0, GgmlType::q4_k, GgmlType::f16, GgmlType::q6_k};
  const std::size_t rows[] = {67, 5, 130, 33};
  std::vector<TestWeight> ws(4);
  for (int i = 0; i < 4; ++i) {
    ws[i] = make_weight(types[i], rows[i], K, rng);
    finish(ws[i], types[i], rows[i], K);
  }
  cpu::ThreadPool pool(2);
  for (cpu::Isa isa : isas()) {
    cpu::force_isa(isa);
    for (std::size_t T : {1, 9}) {
      INFO(cpu::isa_name(isa) << " T=" << T);
      const std::vector<float> x = make_x(T, K, rng);
      std::vector<float> separate[4], shared[4];
      cpu::MatmulOut outs[4];
      for (int i = 0; i < 4; ++i) {
        separate[i].assign(T * rows[i], std::nanf(""));
        shared[i].assign(T * rows[i], std::nanf(""));
        cpu::matmul(ws[i].w, x.data(), T, separate[i].data(), &pool);
        outs[i] = {&ws[i].w, shared[i].data()};
      }
      cpu::matmul_shared(outs, 4, x.data(), T, &pool);
      for (int i = 0; i < 4; ++i) CHECK(std::memcmp(separate[i].data(), shared[i].data(), separate[i].size() * 4) == 0);
      // The same on the calling thread alone.
      for (int i = 0; i < 4; ++i) shared[i].assign(T * rows[i], std::nanf(""));
      cpu::matmul_shared(outs, 4, x.data(), T, nullptr);
      for (int i = 0; i < 4; ++i) CHECK(std::memcmp(separate[i].data(), shared[i].data(), separate[i].size() * 4) == 0);
    }
  }
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("matmul_swiglu: equals matmul_shared then swiglu, bit for bit, on every split and thread count",
          "[matmul]") {
  // Decode on a pool with the guided split does each take of up's rows' SwiGLU after it, or, where
  // gate is not done yet, at the end of the thread's takes (forced here for every take, with room
  // for 2: F32's rows of 1 KiB make takes of 516, 260, 128... rows, 3 or more a thread on 2
  // threads, so the full list is flushed too); everything else runs the products, then SwiGLU
  // row by row. N = 1029 rows of K = 256: the last take 1 row past a run of 4 (and past SwiGLU's
  // 8 lanes); T = 3 for prefill.
  std::mt19937 rng(1029);
  const std::size_t N = 1029, K = 256;
  cpu::ThreadPool p2(2), p3(3);
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::q8_0, GgmlType::q4_k}) {
    TestWeight gate = make_weight(type, N, K, rng), up = make_weight(type, N, K, rng);
    finish(gate, type, N, K);
    finish(up, type, N, K);
    for (cpu::Isa isa : isas()) {
      cpu::force_isa(isa);
      for (std::size_t T : {1, 3}) {
        const std::vector<float> x = make_x(T, K, rng);
        std::vector<float> want(T * N), want_u(T * N);
        const cpu::MatmulOut outs[2] = {{&gate.w, want.data()}, {&up.w, want_u.data()}};
        cpu::matmul_shared(outs, 2, x.data(), T, nullptr);
        for (std::size_t t = 0; t < T; ++t) cpu::swiglu(want.data() + t * N, want_u.data() + t * N, N);
        for (auto split : {cpu::detail::DecodeSplit::guided, cpu::detail::DecodeSplit::shares})
          for (cpu::ThreadPool* pool : {static_cast<cpu::ThreadPool*>(nullptr), &p2, &p3})
            for (bool defer : {false, true}) {
              cpu::detail::set_decode_split(split);
              cpu::detail::set_defer_swiglu(defer);
              std::vector<float> got(T * N, std::nanf("")), u(T * N, std::nanf(""));
              cpu::matmul_swiglu(gate.w, up.w, x.data(), T, got.data(), u.data(), pool);
              INFO(ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name
                   << " " << cpu::isa_name(isa) << " T=" << T << " threads " << (pool ? pool->size() : 1)
                   << (split == cpu::detail::DecodeSplit::guided ? " guided" : " shares")
                   << (defer ? ", every SwiGLU put off" : ""));
              CHECK(std::memcmp(got.data(), want.data(), want.size() * 4) == 0);
            }
      }
    }
  }
  cpu::detail::set_defer_swiglu(false);
  cpu::detail::set_decode_split(cpu::detail::DecodeSplit::guided);
  cpu::force_isa(cpu::detect_isa());
}

TEST_CASE("ThreadPool: every task runs exactly once, on a valid thread", "[matmul][thread_pool]") {
  for (unsigned threads : {1u, 2u, 3u, 5u}) {
    cpu::ThreadPool pool(threads);
    REQUIRE(pool.size() == threads);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
      std::vector<std::atomic<int>> runs(n);
      std::atomic<bool> bad_thread{false};
      for (int rep = 0; rep < 20; ++rep) {
        pool.parallel_for(n, [&](std::size_t task, unsigned thread) {
          runs[task].fetch_add(1);
          if (thread >= threads) bad_thread = true;
        });
      }
      bool all_twenty = true;
      for (auto& r : runs) all_twenty = all_twenty && r.load() == 20;
      INFO("threads " << threads << " tasks " << n);
      CHECK(all_twenty);
      CHECK(!bad_thread);
    }
  }
  CHECK(cpu::ThreadPool(0).size() == std::max(1u, std::thread::hardware_concurrency()));
}

TEST_CASE("ThreadPool: nested calls run inline, concurrent callers take turns", "[matmul][thread_pool]") {
  cpu::ThreadPool pool(3);
  std::vector<std::atomic<int>> runs(16 * 16);
  std::atomic<bool> moved{false};  // (Catch2's CHECK is not for worker threads)
  pool.parallel_for(16, [&](std::size_t outer, unsigned thread) {
    pool.parallel_for(16, [&](std::size_t inner, unsigned inner_thread) {
      if (inner_thread != thread) moved = true;  // the nested call stays on the calling thread
      runs[outer * 16 + inner].fetch_add(1);
    });
  });
  bool once = true;
  for (auto& r : runs) once = once && r.load() == 1;
  CHECK(once);
  CHECK(!moved);

  std::atomic<long> total{0};
  auto caller = [&] {
    for (int i = 0; i < 200; ++i)
      pool.parallel_for(10, [&](std::size_t task, unsigned) { total += static_cast<long>(task); });
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  CHECK(total.load() == 2 * 200 * 45);
}
