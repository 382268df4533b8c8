// The small ops of the CUDA backend against float64 references on fresh random inputs, outputs
// poisoned before each launch: RMSNorm (plain and fused with the residual add), the element-wise
// ops, the conversions for cuBLAS, cuBLAS's products, the sampler, and the random weights.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "engine/quant.h"
#include "kernels/blas.h"
#include "kernels/cuda.h"
#include "kernels/ops.h"

using namespace ponder;
using namespace ponder::test;

namespace {

std::vector<float> rms_ref(const std::vector<float>& x, const std::vector<float>& w, std::size_t rows, std::size_t n,
                           double eps) {
  std::vector<float> y(rows * n);
  for (std::size_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (std::size_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (std::size_t i = 0; i < n; ++i) y[r * n + i] = static_cast<float>(x[r * n + i] * inv * w[i]);
  }
  return y;
}

}  // namespace

TEST_CASE("cuda ops: RMSNorm, fused add + RMSNorm, add, SwiGLU", "[cuda][ops]") {
  for (std::size_t n : {1u, 7u, 256u, 1536u, 3584u, 5000u}) {
    const std::size_t rows = 5;
    INFO("n = " << n);
    auto x = random_floats(rows * n, 3.0f), d = random_floats(rows * n, 1.0f), w = random_floats(n, 1.0f);
    DeviceBuffer<float> dx(x), dd(d), dw(w), dy(rows * n);
    dy.poison();
    CUDA_OK(cuda::rms_norm_device(dx.get(), dw.get(), dy.get(), rows, n, 1e-6f, nullptr, &cuda_ok_error_));
    CHECK(rel_error(dy.download(), rms_ref(x, w, rows, n, 1e-6)) < 1e-6);
    // In place.
    CUDA_OK(cuda::rms_norm_device(dx.get(), dw.get(), dx.get(), rows, n, 1e-6f, nullptr, &cuda_ok_error_));
    CHECK(rel_error(dx.download(), rms_ref(x, w, rows, n, 1e-6)) < 1e-6);
    dx.upload(x);
    dy.poison();
    CUDA_OK(cuda::add_rms_norm(dx.get(), dd.get(), dw.get(), dy.get(), rows, n, 1e-5f, nullptr, &cuda_ok_error_));
    std::vector<float> sum(rows * n);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = x[i] + d[i];
    CHECK(rel_error(dx.download(), sum) == 0);
    CHECK(rel_error(dy.download(), rms_ref(sum, w, rows, n, 1e-5)) < 1e-6);

    dx.upload(x);
    CUDA_OK(cuda::add(dx.get(), dd.get(), rows * n, nullptr, &cuda_ok_error_));
    CHECK(rel_error(dx.download(), sum) == 0);
    dx.upload(x);
    CUDA_OK(cuda::swiglu(dx.get(), dd.get(), rows * n, nullptr, &cuda_ok_error_));
    std::vector<float> want(rows * n);
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = static_cast<float>(x[i] / (1 + std::exp(-double(x[i]))) * d[i]);
    CHECK(rel_error(dx.download(), want) < 1e-6);
  }
}

TEST_CASE("cuda ops: conversions to F16 and BF16 round to nearest even", "[cuda][ops]") {
  const std::size_t n = 100003;
  auto x = random_floats(n, 10.0f);
  x[0] = 65504.0f, x[1] = 1e-8f, x[2] = -0.0f, x[3] = 1.0f + 0x1.0p-11f;  // max, subnormal, -0, a tie
  DeviceBuffer<float> dx(x);
  DeviceBuffer<std::uint16_t> h(n), b(n);
  h.poison();
  b.poison();
  CUDA_OK(cuda::to_f16(dx.get(), reinterpret_cast<__half*>(h.get()), n, nullptr, &cuda_ok_error_));
  CUDA_OK(cuda::to_bf16(dx.get(), b.get(), n, nullptr, &cuda_ok_error_));
  const auto hh = h.download(), bb = b.download();
  std::size_t bad_h = 0, bad_b = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bad_h += hh[i] != f32_to_f16(x[i]);
    bad_b += bb[i] != f32_to_bf16(x[i]);
  }
  CHECK(bad_h == 0);
  CHECK(bad_b == 0);
}

TEST_CASE("cuda ops: cuBLAS products in F32, F16 and BF16", "[cuda][ops]") {
  std::string error;
  auto blas = cuda::Blas::open(nullptr, &error);
  REQUIRE_OK(blas != nullptr, error);
  struct Size {
    std::size_t N, K, T;
  };
  for (const Size& s : {Size{7, 32, 9}, Size{1000, 256, 33}, Size{1536, 1536, 64}, Size{8960, 1536, 130}}) {
    INFO(s.N << " x " << s.K << " by " << s.T);
    auto w = random_floats(s.N * s.K, 0.05f), x = random_floats(s.T * s.K, 1.0f);
    // float64 reference on the values each type holds.
    auto product = [&](const std::vector<float>& wv, const std::vector<float>& xv) {
      std::vector<float> y(s.T * s.N);
      for (std::size_t t = 0; t < s.T; ++t)
        for (std::size_t n = 0; n < s.N; ++n) {
          double acc = 0;
          for (std::size_t k = 0; k < s.K; ++k) acc += double(wv[n * s.K + k]) * xv[t * s.K + k];
          y[t * s.N + n] = static_cast<float>(acc);
        }
      return y;
    };
    DeviceBuffer<float> dw(w), dx(x), dy(s.T * s.N);
    dy.poison();
    REQUIRE_OK(blas->gemm(dw.get(), dx.get(), CUDA_R_32F, s.N, s.K, s.T, dy.get(), &error), error);
    CHECK(rel_error(dy.download(), product(w, x)) < 1e-5);
    for (bool bf : {false, true}) {
      std::vector<std::uint16_t> wh(w.size()), xh(x.size());
      std::vector<float> wr(w.size()), xr(x.size());
      for (std::size_t i = 0; i < w.size(); ++i) {
        wh[i] = bf ? f32_to_bf16(w[i]) : f32_to_f16(w[i]);
        wr[i] = bf ? bf16_to_f32(wh[i]) : f16_to_f32(wh[i]);
      }
      for (std::size_t i = 0; i < x.size(); ++i) {
        xh[i] = bf ? f32_to_bf16(x[i]) : f32_to_f16(x[i]);
        xr[i] = bf ? bf16_to_f32(xh[i]) : f16_to_f32(xh[i]);
      }
      DeviceBuffer<std::uint16_t> dwh(wh), dxh(xh);
      dy.poison();
      REQUIRE_OK(blas->gemm(dwh.get(), dxh.get(), bf ? CUDA_R_16BF : CUDA_R_16F, s.N, s.K, s.T, dy.get(), &error), error);
      INFO((bf ? "bf16" : "f16"));
      CHECK(rel_error(dy.download(), product(wr, xr)) < 1e-5);  // F32 accumulation of exact products
    }
  }
}

TEST_CASE("cuda ops: the sampler", "[cuda][ops][sample]") {
  const std::uint32_t rows = 151936, real = 151665;
  auto logits = random_floats(rows, 3.0f);
  // Padding rows hold the largest logits and a NaN sits among the real ones: neither may win.
  for (std::uint32_t i = real; i < rows; ++i) logits[i] = 100.0f;
  logits[17] = NAN;
  logits[18] = INFINITY;
  DeviceBuffer<float> dl(logits);
  DeviceBuffer<cuda::SampleParams> dp(1);
  DeviceBuffer<std::int32_t> out(1);
  auto draw = [&](const cuda::SampleParams& p) {
    dp.upload({p});
    out.poison();
    cuda::SampleArgs a;
    a.logits = dl.get();
    a.n_valid = real;
    a.d_params = dp.get();
    a.out = out.get();
    CUDA_OK(cuda::sample(a, nullptr, nullptr, &cuda_ok_error_));
    return out.download()[0];
  };
  // Greedy: the largest finite real logit, ties to the lowest id.
  std::vector<float> finite(logits.begin(), logits.begin() + real);
  finite[17] = finite[18] = -INFINITY;
  const std::int32_t best = static_cast<std::int32_t>(std::max_element(finite.begin(), finite.end()) - finite.begin());
  cuda::SampleParams p;
  CHECK(draw(p) == best);
  p.temperature = 1.0f, p.top_k = 1;
  CHECK(draw(p) == best);

  // top-k 20, temperature 0.7, top-p about 0.8 (moved inside its last kept token's step below),
  // min-p 0.05: 4,000 draws, every one inside the kept set, and frequencies that follow the
  // renormalised distribution (a χ² test over the kept tokens).
  p.top_k = 20, p.temperature = 0.7f, p.top_p = 0.8f, p.min_p = 0.05f, p.seed = 1234;
  std::vector<std::int32_t> order(real);
  for (std::uint32_t i = 0; i < real; ++i) order[i] = static_cast<std::int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return finite[a] > finite[b] || (finite[a] == finite[b] && a < b); });
  // top-k keeps the 20 largest; their probabilities at temperature 0.7; top-p keeps the shortest
  // prefix holding 0.8; min-p the tokens at least 0.05 of the best: both prefixes, so the shorter.
  std::vector<double> q(20);
  double z = 0;
  for (int i = 0; i < 20; ++i) z += q[i] = std::exp((finite[order[i]] - finite[order[0]]) / 0.7);
  for (double& v : q) v /= z;
  std::size_t keep_p = 0, keep_m = 0;
  double before_last = 0;
  for (double cum = 0; keep_p < 20 && cum < 0.8;) before_last = cum, cum += q[keep_p++];
  // top-p in the middle of the last kept token's step, so float sums on the device keep the same set
  p.top_p = static_cast<float>(before_last + q[keep_p - 1] / 2);
  while (keep_m < 20 && q[keep_m] >= 0.05 * q[0]) ++keep_m;
  const std::vector<double> prob(q.begin(), q.begin() + static_cast<long>(std::min(keep_p, keep_m)));
  double kept = 0;
  for (double v : prob) kept += v;
  std::map<std::int32_t, int> counts;
  const int draws = 4000;
  for (int i = 0; i < draws; ++i) {
    p.step = static_cast<std::uint64_t>(i);
    counts[draw(p)]++;
  }
  double chi2 = 0;
  int outside = 0;
  for (const auto& [id, count] : counts) {
    const auto at = std::find(order.begin(), order.begin() + static_cast<long>(prob.size()), id) - order.begin();
    if (at >= static_cast<long>(prob.size())) outside += count;
  }
  for (std::size_t i = 0; i < prob.size(); ++i) {
    const double expected = draws * prob[i] / kept;
    const double d = counts[order[i]] - expected;
    chi2 += d * d / expected;
  }
  INFO("kept " << prob.size() << " tokens, chi2 " << chi2);
  CHECK(outside == 0);
  // χ² with (kept - 1) degrees of freedom: far beyond 3× that is a broken sampler (p < 1e-6).
  CHECK(chi2 < 3.0 * static_cast<double>(prob.size()) + 30);
  // The same seed and step draw the same token.
  p.step = 5;
  CHECK(draw(p) == draw(p));
}

TEST_CASE("cuda ops: random weights are finite and of a weight's size in every type", "[cuda][ops]") {
  for (GgmlType t : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0, GgmlType::q4_0, GgmlType::q4_k,
                     GgmlType::q5_k, GgmlType::q6_k}) {
    const std::size_t n = 256 * 1024;
    const std::size_t bytes = row_bytes(t, n);
    DeviceBuffer<unsigned char> d(bytes);
    d.poison();
    CUDA_OK(cuda::fill_random(d.get(), t, n, 42, nullptr, &cuda_ok_error_));
    const auto host = d.download();
    std::vector<float> v(n);
    REQUIRE(dequantize(t, host.data(), v.data(), n, nullptr));
    double ss = 0;
    bool finite = true;
    for (float x : v) finite = finite && std::isfinite(x), ss += double(x) * x;
    const double rms = std::sqrt(ss / n);
    INFO(ggml_type_info(static_cast<std::uint32_t>(t))->name << ": rms " << rms);
    CHECK(finite);
    CHECK(rms > 1e-3);
    CHECK(rms < 0.5);
  }
  std::string error;
  CHECK(cuda::copy_bandwidth(&error) > 100);  // GB/s: any GPU of this decade
}
