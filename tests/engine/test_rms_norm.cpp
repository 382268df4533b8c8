#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/rms_norm.h"
#include "kernels/cuda.h"

namespace {
// Independent float64 reference of RMSNorm.
std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w,
                              std::size_t rows, std::size_t n, double eps) {
  std::vector<double> y(rows * n);
  for (std::size_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (std::size_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
    double inv = 1.0 / std::sqrt(ss / double(n) + eps);
    for (std::size_t i = 0; i < n; ++i) y[r * n + i] = x[r * n + i] * inv * w[i];
  }
  return y;
}

// Normalised error: ||a - b|| / ||b||.
double nmse(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

void random_fill(std::vector<float>& v, std::mt19937& rng, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  for (float& x : v) x = d(rng);
}
}  // namespace

TEST_CASE("CPU RMSNorm matches a float64 reference", "[rms_norm]") {
  std::mt19937 rng(1234);
  for (std::size_t n : {1u, 7u, 1536u, 3584u}) {
    const std::size_t rows = 5;
    std::vector<float> x(rows * n), w(n), y(rows * n);
    random_fill(x, rng, 3.0f);
    random_fill(w, rng, 1.0f);
    ponder::cpu::rms_norm(x.data(), w.data(), y.data(), rows, n, 1e-6f);
    CHECK(nmse(y, reference(x, w, rows, n, 1e-6)) < 1e-6);
  }
}

TEST_CASE("CPU RMSNorm works in place", "[rms_norm]") {
  std::vector<float> x = {3, 4}, w = {1, 2};
  ponder::cpu::rms_norm(x.data(), w.data(), x.data(), 1, 2, 0.0f);
  // rms = sqrt((9 + 16) / 2) = 3.5355...
  CHECK(x[0] == Approx(3 / std::sqrt(12.5)));
  CHECK(x[1] == Approx(8 / std::sqrt(12.5)));
}

TEST_CASE("CUDA RMSNorm matches the CPU backend", "[rms_norm][cuda]") {
  std::string why;
  if (!ponder::cuda::available(&why)) {
    WARN("skipped: " << why);
    // Without a GPU the entry point must fail cleanly with a reason, not crash.
    std::vector<float> x(4, 1.0f), w(4, 1.0f), y(4);
    std::string error;
    CHECK_FALSE(ponder::cuda::rms_norm_host(x.data(), w.data(), y.data(), 1, 4, 1e-6f, &error));
    CHECK_FALSE(error.empty());
    return;
  }
  std::mt19937 rng(99);
  for (std::size_t n : {1u, 33u, 1536u, 8192u}) {
    const std::size_t rows = 17;
    std::vector<float> x(rows * n), w(n), cpu(rows * n), gpu(rows * n);
    random_fill(x, rng, 2.0f);
    random_fill(w, rng, 1.0f);
    ponder::cpu::rms_norm(x.data(), w.data(), cpu.data(), rows, n, 1e-6f);
    std::string error;
    REQUIRE(ponder::cuda::rms_norm_host(x.data(), w.data(), gpu.data(), rows, n, 1e-6f, &error));
    std::vector<double> ref(cpu.begin(), cpu.end());
    CHECK(nmse(gpu, ref) < 1e-5);
  }
}
