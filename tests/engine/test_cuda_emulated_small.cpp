// The small kernels of the CUDA backend run on the host under tests/engine/cuda_emu.h: RMSNorm
// (plain, in place, fused with the residual add), the embedding lookup and the dequantization
// for cuBLAS, for every weight type, against float64 and ponder::dequantize.
#include "cuda_emu.h"  // first: defines the CUDA built-ins the kernel headers use

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/quant.h"
#include "kernels/dequantize_kernels.cuh"
#include "kernels/embedding_kernels.cuh"
#include "kernels/rms_norm_kernels.cuh"

using namespace ponder;

#if defined(__SANITIZE_ADDRESS__)
TEST_CASE("cuda emulated: small kernels not run under AddressSanitizer", "[cuda_emulated]") { WARN("skipped: fibers under ASan"); }
#else
namespace {

std::vector<float> normals(std::size_t n, float scale, std::mt19937_64& rng) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

double rel(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

template <GgmlType kType>
void check_tables(std::mt19937_64& rng, std::size_t row) {
  INFO(ggml_type_info(static_cast<std::uint32_t>(kType))->name << " rows of " << row);
  const std::size_t rows = 5, n = rows * row;
  const std::vector<float> values = normals(n, 0.05f, rng);
  std::vector<unsigned char> w(row_bytes(kType, n));
  REQUIRE(quantize(kType, values.data(), w.data(), n, nullptr));
  std::vector<float> want(n);
  REQUIRE(dequantize(kType, w.data(), want.data(), n, nullptr));
  // Dequantize to F32 and F16: exact, and exactly rounded.
  std::vector<float> out(n, NAN);
  emu::launch(dim3(2), dim3(cuda::dequantize_detail::kBlock), 0,
              cuda::dequantize_detail::dequantize_kernel<kType, float>, w.data(), n, out.data(), true);
  CHECK(out == want);
  std::vector<__half> half(n, __half{0x7e00});
  emu::launch(dim3(3), dim3(cuda::dequantize_detail::kBlock), 0,
              cuda::dequantize_detail::dequantize_kernel<kType, __half>, w.data(), n, half.data(), true);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += half[i].bits != f32_to_f16(want[i]);
  CHECK(wrong == 0);
  // Embedding rows 3, 0, 4, 3 (a token twice).
  const std::vector<std::int32_t> tokens = {3, 0, 4, 3};
  std::vector<float> emb(tokens.size() * row, NAN);
  emu::launch(dim3(2, 2), dim3(cuda::embedding_detail::kBlock), 0, cuda::embedding_detail::embed_kernel<kType>,
              w.data(), row_bytes(kType, row), row, tokens.data(), tokens.size(), emb.data(), row % 4 == 0);
  for (std::size_t t = 0; t < tokens.size(); ++t)
    CHECK(std::vector<float>(emb.begin() + t * row, emb.begin() + (t + 1) * row) ==
          std::vector<float>(want.begin() + tokens[t] * row, want.begin() + (tokens[t] + 1) * row));
}

}  // namespace

TEST_CASE("cuda emulated: RMSNorm, in place, and fused with the residual add", "[cuda_emulated]") {
  std::mt19937_64 rng(std::random_device{}());
  using namespace cuda::rms_norm_detail;
  for (int n : {7, 256, 1536, 3584}) {
    INFO("n " << n);
    const int rows = 3;
    const std::vector<float> x = normals(std::size_t(rows) * n, 3.0f, rng), d = normals(x.size(), 1.0f, rng),
                             w = normals(std::size_t(n), 1.0f, rng);
    auto reference = [&](const std::vector<float>& in, double eps) {
      std::vector<double> y(in.size());
      for (int r = 0; r < rows; ++r) {
        double ss = 0;
        for (int i = 0; i < n; ++i) ss += double(in[r * n + i]) * in[r * n + i];
        const double inv = 1 / std::sqrt(ss / n + eps);
        for (int i = 0; i < n; ++i) y[r * n + i] = in[r * n + i] * inv * w[i];
      }
      return y;
    };
    std::vector<float> y(x.size(), NAN);
    emu::launch(dim3(rows), dim3(kBlock), 0, rms_norm_f32, x.data(), w.data(), y.data(), n, 1e-6f);
    CHECK(rel(y, reference(x, 1e-6)) < 1e-6);
    std::vector<float> inplace = x;
    emu::launch(dim3(rows), dim3(kBlock), 0, rms_norm_f32, static_cast<const float*>(inplace.data()), w.data(),
                inplace.data(), n, 1e-6f);
    CHECK(inplace == y);
    std::vector<float> sum(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + d[i];
    std::vector<float> residual = x, normed(x.size(), NAN);
    emu::launch(dim3(rows), dim3(kBlock), 0, add_rms_norm_f32, residual.data(), d.data(), w.data(), normed.data(), n,
                1e-5f);
    CHECK(residual == sum);
    CHECK(rel(normed, reference(sum, 1e-5)) < 1e-6);
  }
}

TEST_CASE("cuda emulated: dequantization and embedding rows for every weight type", "[cuda_emulated]") {
  std::mt19937_64 rng(std::random_device{}());
  check_tables<GgmlType::f32>(rng, 1000);  // not a multiple of 8: the element tail
  check_tables<GgmlType::f16>(rng, 1003);
  check_tables<GgmlType::bf16>(rng, 256);
  check_tables<GgmlType::q8_0>(rng, 96);
  check_tables<GgmlType::q4_0>(rng, 1536);
  check_tables<GgmlType::q4_k>(rng, 256);
  check_tables<GgmlType::q5_k>(rng, 512);
  check_tables<GgmlType::q6_k>(rng, 1536);
}
#endif
