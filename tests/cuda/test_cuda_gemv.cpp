// gemv (decode), dequantize_f16/f32 (prefill) and embed (kernels/gemv.cu, dequantize.cu,
// embedding.cu) against the CPU: every weight type, awkward sizes, T = 1..8, fresh random inputs
// on every run, outputs poisoned before every launch.
//
// Bounds. Errors are measured as ‖y − ref‖ / ‖a‖ where a[t, n] = Σ_k |W[n, k] x[t, k]| (the
// scale of the products: a relative error in ‖y‖ alone blows up on a single output that happens
// to cancel to near 0). gemv accumulates in float the exact dequantized weights through a chain
// of at most K/256 + 20 roundings, so against a float64 product of ponder::dequantize's weights
// it is within 1e-5 for every type. Against ponder::cpu::matmul: 3e-5 for F32/F16/BF16 (float
// on both sides, the CPU's chains are K/8 long); the CPU's Q8_0 / Q4_0 / K-quant paths quantize
// x to int8 (each x off by at most max|x of its block| / 254), so there 2e-2.
// dequantize_f32 and embed are bit-exact; dequantize_f16 equals f32_to_f16 of the exact value.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "engine/cpu/matmul.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "kernels/ops.h"

using ponder::GgmlType;
using namespace ponder::test;

namespace {

const GgmlType kTypes[] = {GgmlType::f32,  GgmlType::f16,  GgmlType::bf16, GgmlType::q8_0,
                           GgmlType::q4_0, GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k};

std::size_t block_of(GgmlType type) {
  return ponder::ggml_type_info(static_cast<std::uint32_t>(type))->block_elements;
}
const char* name_of(GgmlType type) {
  return ponder::ggml_type_info(static_cast<std::uint32_t>(type))->name.data();
}

// N rows of K weights of `type`: random normal floats (rows of varied scale) through the
// reference quantizer, or for the block types half the time random bytes with sane f16 scales
// (every quant value and sub-block scale shows up). Never all zero.
std::vector<unsigned char> random_weight(GgmlType type, std::size_t N, std::size_t K, std::mt19937_64& rng) {
  const std::size_t bytes = ponder::row_bytes(type, K) * N;
  std::vector<unsigned char> w(bytes);
  const bool raw = block_of(type) > 1 && (rng() & 1);
  if (!raw) {
    std::vector<float> src = random_floats(N * K, 1.0f, rng);
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t k = 0; k < K; ++k) src[n * K + k] *= 0.02f * std::exp2(float(n % 5) - 2.0f);
    std::string error;
    REQUIRE(ponder::quantize(type, src.data(), w.data(), N * K, &error));
    return w;
  }
  for (auto& b : w) b = static_cast<unsigned char>(rng());
  const auto* info = ponder::ggml_type_info(static_cast<std::uint32_t>(type));
  std::vector<std::size_t> fields;
  switch (type) {
    case GgmlType::q8_0: case GgmlType::q4_0: fields = {0}; break;
    case GgmlType::q4_k: case GgmlType::q5_k: fields = {0, 2}; break;
    case GgmlType::q6_k: fields = {208}; break;
    default: FAIL("not a block type");
  }
  std::uniform_real_distribution<float> scale(2e-4f, 2e-3f);
  for (std::size_t off = 0; off < w.size(); off += info->block_bytes)
    for (std::size_t f : fields) {
      const std::uint16_t h = ponder::f32_to_f16(scale(rng));
      w[off + f] = static_cast<unsigned char>(h & 0xFF);
      w[off + f + 1] = static_cast<unsigned char>(h >> 8);
    }
  return w;
}

std::vector<float> dequantized(GgmlType type, const std::vector<unsigned char>& w, std::size_t n) {
  std::vector<float> out(n);
  std::string error;
  INFO(error);
  REQUIRE(ponder::dequantize(type, w.data(), out.data(), n, &error));
  return out;
}

// y = W x in float64 from the dequantized weights, and a = Σ_k |W x| (see the top).
struct Reference {
  std::vector<float> y;
  std::vector<double> abs;
};
Reference reference(const std::vector<float>& wf, const std::vector<float>& x, std::size_t N,
                    std::size_t K, std::size_t T) {
  Reference r{std::vector<float>(T * N), std::vector<double>(T * N)};
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t n = 0; n < N; ++n) {
      double s = 0, a = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const double p = double(wf[n * K + k]) * double(x[t * K + k]);
        s += p;
        a += std::fabs(p);
      }
      r.y[t * N + n] = static_cast<float>(s);
      r.abs[t * N + n] = a;
    }
  return r;
}

// ‖got − want‖ / ‖abs‖; infinity when got holds a NaN or an infinity.
double scaled_error(const std::vector<float>& got, const std::vector<float>& want,
                    const std::vector<double>& abs) {
  REQUIRE(got.size() == want.size());
  REQUIRE(got.size() == abs.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += abs[i] * abs[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

bool all_finite(const std::vector<float>& v) {
  for (float f : v)
    if (!std::isfinite(f)) return false;
  return true;
}

std::uint32_t bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// One gemv check: W (N x K of type; wf its dequantized values), T fresh rows of x, against
// float64 and the CPU's matmul.
void check_gemv(GgmlType type, const std::vector<unsigned char>& w, const std::vector<float>& wf, std::size_t N,
                std::size_t K, std::size_t T, std::mt19937_64& rng) {
  INFO(name_of(type) << " N " << N << " K " << K << " T " << T);
  const std::vector<float> x = random_floats(T * K, 1.0f, rng);

  const Reference want = reference(wf, x, N, K, T);
  ponder::Weight weight;
  weight.type = type;
  weight.n_dims = 2;
  weight.ne[0] = K;
  weight.ne[1] = N;
  weight.data = w.data();
  weight.bytes = w.size();
  std::vector<float> cpu(T * N);
  ponder::cpu::matmul(weight, x.data(), T, cpu.data(), nullptr);

  DeviceBuffer<unsigned char> dw(w);
  DeviceBuffer<float> dx(x);
  DeviceBuffer<float> dy(T * N);
  dy.poison();
  CUDA_OK(ponder::cuda::gemv(dw.get(), type, N, K, dx.get(), T, dy.get(), nullptr, &cuda_ok_error_));
  const std::vector<float> got = dy.download();
  REQUIRE(all_finite(got));
  const double err = scaled_error(got, want.y, want.abs);
  const double err_cpu = scaled_error(got, cpu, want.abs);
  INFO("vs float64 " << err << ", vs cpu::matmul " << err_cpu);
  CHECK(err <= 1e-5);
  CHECK(err_cpu <= (block_of(type) == 1 ? 3e-5 : 2e-2));
}

}  // namespace

TEST_CASE("gemv: every type, awkward sizes, T = 1..8, against float64 and cpu::matmul", "[cuda][gemv]") {
  auto& rng = fresh_rng();
  for (GgmlType type : kTypes) {
    REQUIRE(ponder::cuda::supports(type));
    const std::size_t be = block_of(type);
    std::vector<std::size_t> Ks = {be, 3 * be, 1536, 8960};
    if (be == 1) Ks.insert(Ks.end(), {7, 33, 260, 1001});  // tails of the F types
    for (std::size_t N : {1, 7, 33, 1000, 4864})
      for (std::size_t K : Ks) {
        // One weight per size, made (quantized) once for every T: the reference quantizer was
        // most of this test's time when each T made its own (the test took 67-100 s on an H200
        // machine; its host side 122 s on a 2-core VM, 41 s with one weight per size). The big
        // products at a few T only (the float64 reference is on the host).
        const std::vector<unsigned char> w = random_weight(type, N, K, rng);
        const std::vector<float> wf = dequantized(type, w, N * K);
        const bool big = N * K > 2'000'000;
        for (std::size_t T = 1; T <= ponder::cuda::kGemvMaxRows; ++T)
          if (!big || T == 1 || T == 3 || T == 8) check_gemv(type, w, wf, N, K, T, rng);
      }
  }
}

TEST_CASE("gemv: the output is exactly the same on a second launch and with other T", "[cuda][gemv]") {
  // Same inputs twice: no races (a moving result). And row t of a T-row product equals the
  // one-row product of x[t] (no cross-talk between rows of x).
  auto& rng = fresh_rng();
  for (GgmlType type : kTypes) {
    INFO(name_of(type));
    const std::size_t N = 1000, K = block_of(type) == 256 ? 2304 : 1536, T = 5;
    const std::vector<unsigned char> w = random_weight(type, N, K, rng);
    const std::vector<float> x = random_floats(T * K, 1.0f, rng);
    DeviceBuffer<unsigned char> dw(w);
    DeviceBuffer<float> dx(x);
    DeviceBuffer<float> dy(T * N);
    dy.poison();
    CUDA_OK(ponder::cuda::gemv(dw.get(), type, N, K, dx.get(), T, dy.get(), nullptr, &cuda_ok_error_));
    const std::vector<float> first = dy.download();
    dy.poison();
    CUDA_OK(ponder::cuda::gemv(dw.get(), type, N, K, dx.get(), T, dy.get(), nullptr, &cuda_ok_error_));
    const std::vector<float> second = dy.download();
    REQUIRE(all_finite(first));
    for (std::size_t i = 0; i < first.size(); ++i) REQUIRE(bits(first[i]) == bits(second[i]));
    for (std::size_t t = 0; t < T; ++t) {
      DeviceBuffer<float> dx1(std::vector<float>(x.begin() + t * K, x.begin() + (t + 1) * K));
      DeviceBuffer<float> dy1(N);
      dy1.poison();
      CUDA_OK(ponder::cuda::gemv(dw.get(), type, N, K, dx1.get(), 1, dy1.get(), nullptr, &cuda_ok_error_));
      const std::vector<float> one = dy1.download();
      for (std::size_t n = 0; n < N; ++n) REQUIRE(bits(one[n]) == bits(first[t * N + n]));
    }
  }
}

TEST_CASE("gemv: x and y not 16-byte aligned (the scalar x loads)", "[cuda][gemv]") {
  auto& rng = fresh_rng();
  for (GgmlType type : kTypes) {
    INFO(name_of(type));
    const std::size_t N = 37, K = block_of(type) == 256 ? 768 : 96, T = 3;
    const std::vector<unsigned char> w = random_weight(type, N, K, rng);
    const std::vector<float> wf = dequantized(type, w, N * K);
    const std::vector<float> x = random_floats(T * K, 1.0f, rng);
    const Reference want = reference(wf, x, N, K, T);
    std::vector<float> x1(T * K + 1, 0.0f);  // x at element 1: 4-byte aligned only
    std::copy(x.begin(), x.end(), x1.begin() + 1);
    DeviceBuffer<unsigned char> dw(w);
    DeviceBuffer<float> dx(x1);
    DeviceBuffer<float> dy(T * N + 1);
    dy.poison();
    CUDA_OK(ponder::cuda::gemv(dw.get(), type, N, K, dx.get() + 1, T, dy.get() + 1, nullptr, &cuda_ok_error_));
    const std::vector<float> all = dy.download();
    const std::vector<float> got(all.begin() + 1, all.end());
    REQUIRE(all_finite(got));
    CHECK(std::isnan(all[0]));  // nothing written before y
    CHECK(scaled_error(got, want.y, want.abs) <= 1e-5);
  }
}

TEST_CASE("gemv refuses what it cannot do", "[cuda][gemv]") {
  DeviceBuffer<float> buf(4096);
  std::string error;
  CHECK_FALSE(ponder::cuda::supports(GgmlType::q4_1));
  CHECK_FALSE(ponder::cuda::gemv(buf.get(), GgmlType::q4_1, 4, 32, buf.get(), 1, buf.get(), nullptr, &error));
  CHECK_FALSE(error.empty());
  error.clear();
  CHECK_FALSE(ponder::cuda::gemv(buf.get(), GgmlType::q8_0, 4, 48, buf.get(), 1, buf.get(), nullptr, &error));
  CHECK_FALSE(error.empty());
  error.clear();
  CHECK_FALSE(ponder::cuda::gemv(buf.get(), GgmlType::f32, 4, 8, buf.get(), 9, buf.get(), nullptr, &error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("dequantize_f32 / dequantize_f16: every type, exact", "[cuda][dequantize]") {
  auto& rng = fresh_rng();
  for (GgmlType type : kTypes) {
    const std::size_t be = block_of(type);
    std::vector<std::size_t> sizes = {be, 3 * be, 1536 * 7 / be * be + be, 4864 * 1536};
    if (be == 1) sizes.insert(sizes.end(), {7, 13, 1001});
    for (std::size_t n : sizes) {
      INFO(name_of(type) << " n " << n);
      const std::vector<unsigned char> w = random_weight(type, 1, n, rng);
      const std::vector<float> want = dequantized(type, w, n);
      DeviceBuffer<unsigned char> dw(w);
      DeviceBuffer<float> out32(n);
      out32.poison();
      CUDA_OK(ponder::cuda::dequantize_f32(dw.get(), type, n, out32.get(), nullptr, &cuda_ok_error_));
      const std::vector<float> got32 = out32.download();
      REQUIRE(all_finite(got32));
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < n; ++i) wrong += bits(got32[i]) != bits(want[i]);
      CHECK(wrong == 0);

      DeviceBuffer<std::uint16_t> out16(n);
      out16.poison();  // 0xFFFF: a half NaN
      CUDA_OK(ponder::cuda::dequantize_f16(dw.get(), type, n, reinterpret_cast<__half*>(out16.get()),
                                           nullptr, &cuda_ok_error_));
      const std::vector<std::uint16_t> got16 = out16.download();
      wrong = 0;
      for (std::size_t i = 0; i < n; ++i) wrong += got16[i] != ponder::f32_to_f16(want[i]);
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("embed: rows of every type, exact", "[cuda][embed]") {
  auto& rng = fresh_rng();
  for (GgmlType type : kTypes) {
    const std::size_t be = block_of(type);
    for (std::size_t n_embd : {be * 6, std::size_t{1536}, std::size_t{4096}, be == 1 ? std::size_t{1001} : be * 5}) {
      const std::size_t vocab = 97;
      INFO(name_of(type) << " n_embd " << n_embd);
      const std::vector<unsigned char> table = random_weight(type, vocab, n_embd, rng);
      const std::vector<float> rows = dequantized(type, table, vocab * n_embd);
      for (std::size_t T : {1, 3, 8, 200}) {
        std::vector<std::int32_t> tokens(T);
        for (auto& t : tokens) t = static_cast<std::int32_t>(rng() % vocab);
        tokens.back() = static_cast<std::int32_t>(vocab - 1);  // the last row
        DeviceBuffer<unsigned char> dt(table);
        DeviceBuffer<std::int32_t> dtok(tokens);
        DeviceBuffer<float> out(T * n_embd);
        out.poison();
        CUDA_OK(ponder::cuda::embed(dt.get(), type, n_embd, dtok.get(), T, out.get(), nullptr, &cuda_ok_error_));
        const std::vector<float> got = out.download();
        REQUIRE(all_finite(got));
        std::size_t wrong = 0;
        for (std::size_t t = 0; t < T; ++t)
          for (std::size_t i = 0; i < n_embd; ++i)
            wrong += bits(got[t * n_embd + i]) != bits(rows[tokens[t] * n_embd + i]);
        CHECK(wrong == 0);
      }
    }
  }
}
