// The decode GEMV kernel (kernels/gemv_kernel.cuh) run on the host under tests/engine/cuda_emu.h
// (128 threads a block as fibers, warp shuffles and barriers emulated): staging, decoding, the
// per-lane products and both reductions of the real kernel body, for every weight type, against a
// float64 product of the dequantized weights. (The blocks.h decoders and gemv_tile.h's index
// arithmetic run here on their host paths; test_cuda runs the whole thing on a GPU.)
#include "cuda_emu.h"  // first: defines the CUDA built-ins the kernel headers use

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/quant.h"
#include "kernels/gemv_kernel.cuh"

using namespace ponder;

#if defined(__SANITIZE_ADDRESS__)
TEST_CASE("cuda emulated: gemv not run under AddressSanitizer", "[cuda_emulated]") { WARN("skipped: fibers under ASan"); }
#else
namespace {

template <GgmlType kType, int kT>
void run(const std::vector<unsigned char>& w, int N, int K, const std::vector<float>& x, std::vector<float>* y) {
  const std::size_t rb = row_bytes(kType, static_cast<std::size_t>(K));
  const dim3 grid(static_cast<unsigned>((N + gemv::kRows - 1) / gemv::kRows));
  emu::launch(grid, dim3(gemv::kThreads), 0, cuda::gemv_detail::gemv_kernel<kType, kT>, w.data(), rb,
              w.data() + static_cast<std::size_t>(N) * rb, N, K, x.data(), K % 4 == 0, y->data());
}

template <GgmlType kType>
void check_type(std::mt19937_64& rng, int block) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int N : {1, 5, 9}) {
    for (int K : {block, 3 * block, 1536}) {
      if (K % block) continue;
      for (int T : {1, 3, 8}) {
        INFO(ggml_type_info(static_cast<std::uint32_t>(kType))->name << " N " << N << " K " << K << " T " << T);
        std::vector<float> wf(static_cast<std::size_t>(N) * K), x(static_cast<std::size_t>(T) * K);
        for (float& v : wf) v = 0.05f * normal(rng);
        for (float& v : x) v = normal(rng);
        // The weight's bytes in a buffer that starts 16-byte aligned (vector's allocation), as on the device.
        std::vector<unsigned char> w(row_bytes(kType, wf.size()));
        REQUIRE(quantize(kType, wf.data(), w.data(), wf.size(), nullptr));
        std::vector<float> deq(wf.size());
        REQUIRE(dequantize(kType, w.data(), deq.data(), deq.size(), nullptr));
        std::vector<float> y(static_cast<std::size_t>(T) * N, NAN);
        switch (T) {
          case 1: run<kType, 1>(w, N, K, x, &y); break;
          case 3: run<kType, 3>(w, N, K, x, &y); break;
          default: run<kType, 8>(w, N, K, x, &y); break;
        }
        double err = 0, scale = 0;
        for (int t = 0; t < T; ++t)
          for (int n = 0; n < N; ++n) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; ++k) {
              const double p = double(deq[std::size_t(n) * K + k]) * x[std::size_t(t) * K + k];
              ref += p, mag += std::abs(p);
            }
            const double got = y[std::size_t(t) * N + n];
            REQUIRE(std::isfinite(got));
            err += (got - ref) * (got - ref);
            scale += mag * mag;
          }
        CHECK(std::sqrt(err / scale) < 1e-6);
      }
    }
  }
}

}  // namespace

TEST_CASE("cuda emulated: the gemv kernel for every weight type against float64", "[cuda_emulated]") {
  std::mt19937_64 rng(std::random_device{}());
  check_type<GgmlType::f32>(rng, 8);
  check_type<GgmlType::f16>(rng, 8);
  check_type<GgmlType::bf16>(rng, 8);
  check_type<GgmlType::q8_0>(rng, 32);
  check_type<GgmlType::q4_0>(rng, 32);
  check_type<GgmlType::q4_k>(rng, 256);
  check_type<GgmlType::q5_k>(rng, 256);
  check_type<GgmlType::q6_k>(rng, 256);
}
#endif
