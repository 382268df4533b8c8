// kernels/gemv.cu's addressing without a GPU: the kernel's own index and per-lane functions
// (kernels/gemv_tile.h) run lane by lane on the host, in the kernel's order (per block and warp:
// stage a tile for all 32 lanes, then every lane's groups), and the result is compared with a
// float64 product of ponder::dequantize's weights. Checks the staging (misaligned rows, the
// chunk past the weight's end), the tiles and their tails, rows past N, and T rows of x. What it
// cannot check: the CUDA-only code (16-byte loads, shuffles, the barrier), which test_cuda does.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/quant.h"
#include "kernels/gemv_tile.h"

using ponder::GgmlType;
namespace gemv = ponder::gemv;

namespace {

// Bytes at a 16-byte aligned address (as cudaMalloc gives), with a guard band of 0xCD after the
// weight that the staging must never copy.
struct Aligned {
  explicit Aligned(const std::vector<unsigned char>& bytes) : storage(bytes.size() + 64, 0xCD) {
    const auto p = reinterpret_cast<std::uintptr_t>(storage.data());
    offset = (16 - p % 16) % 16;
    std::memcpy(storage.data() + offset, bytes.data(), bytes.size());
  }
  const unsigned char* get() const { return storage.data() + offset; }
  std::vector<unsigned char> storage;
  std::size_t offset = 0;
};

// The kernel, emulated: y [T][N].
template <GgmlType kType, int kT>
std::vector<float> emulate(const unsigned char* w, std::size_t N, std::size_t K, const float* x,
                           bool x_vec) {
  using Tr = ponder::blocks::Traits<kType>;
  using Sh = gemv::Tile<kType>;
  const std::size_t row_bytes = ponder::row_bytes(kType, K);
  const unsigned char* w_end = w + N * row_bytes;
  std::vector<float> y(kT * N, NAN);
  const int blocks = static_cast<int>((N + gemv::kRows - 1) / gemv::kRows);
  alignas(16) unsigned char stage[gemv::kRows * Sh::kRowStage];
  for (int b = 0; b < blocks; ++b) {
    const int row0 = b * gemv::kRows;
    const int rows = std::min(gemv::kRows, static_cast<int>(N) - row0);
    const unsigned char* first_row = w + static_cast<std::size_t>(row0) * row_bytes;
    double block_sum[gemv::kRows][kT] = {};
    for (int warp = 0; warp < gemv::kWarps; ++warp) {
      float acc[32][gemv::kRows][kT] = {};
      const int tiles = static_cast<int>((K + Sh::kElements - 1) / Sh::kElements);
      for (int tile = warp; tile < tiles; tile += gemv::kWarps) {
        const int e0 = tile * Sh::kElements;
        const int len = std::min(Sh::kElements, static_cast<int>(K) - e0);
        const std::size_t tile_off = static_cast<std::size_t>(e0 / Tr::kElements) * Tr::kBytes;
        const int tile_bytes = len / Tr::kElements * Tr::kBytes;
        std::memset(stage, 0xEE, sizeof stage);  // what the kernel does not overwrite shows
        std::vector<int> written(gemv::kRows * Sh::kChunks, 0);
        for (int lane = 0; lane < 32; ++lane)
          for (int i = 0; i < Sh::kLoads; ++i) {
            int dst;
            const unsigned char* src;
            if (!gemv::stage_slot<kType>(lane, i, rows, first_row, row_bytes, tile_off, tile_bytes, &dst, &src))
              continue;
            REQUIRE(dst % 16 == 0);
            REQUIRE(dst + 16 <= static_cast<int>(sizeof stage));
            ++written[dst / 16];
            unsigned char chunk[16] = {};
            if (src) {
              REQUIRE(reinterpret_cast<std::uintptr_t>(src) % 16 == 0);
              REQUIRE(src >= w);
              REQUIRE(src < w_end);
              const int n = gemv::chunk_bytes(src, w_end);
              REQUIRE(n >= 1);
              REQUIRE(n <= 16);
              REQUIRE(src + n <= w_end);  // never a byte past the weight
              std::memcpy(chunk, src, n);
            }
            std::memcpy(stage + dst, chunk, 16);
          }
        for (int count : written) REQUIRE(count == 1);  // every chunk of the staging, once
        const unsigned char* staged[gemv::kRows];
        for (int r = 0; r < gemv::kRows; ++r) {
          staged[r] = gemv::staged_row<kType>(stage, r, first_row, row_bytes, tile_off);
          // The staged tile is the row's bytes.
          if (r < rows)
            REQUIRE(std::memcmp(staged[r], first_row + r * row_bytes + tile_off, tile_bytes) == 0);
        }
        for (int lane = 0; lane < 32; ++lane)
          for (int pass = 0; pass < Sh::kElements / gemv::kPass; ++pass) {
            const int e = (lane + 32 * pass) * ponder::blocks::kGroup;
            if (e >= len) break;
            gemv::multiply_group<kType, kT>(staged, e, len, x + e0 + e, static_cast<int>(K), x_vec, acc[lane]);
          }
      }
      for (int lane = 0; lane < 32; ++lane)
        for (int r = 0; r < gemv::kRows; ++r)
          for (int t = 0; t < kT; ++t) block_sum[r][t] += acc[lane][r][t];
    }
    for (int r = 0; r < rows; ++r)
      for (int t = 0; t < kT; ++t) y[t * N + row0 + r] = static_cast<float>(block_sum[r][t]);
  }
  return y;
}

template <GgmlType kType, int kT>
void check(std::size_t N, std::size_t K, std::mt19937_64& rng) {
  const auto* info = ponder::ggml_type_info(static_cast<std::uint32_t>(kType));
  INFO(info->name << " N " << N << " K " << K << " T " << kT);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> src(N * K), x(kT * K);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = 0.05f * normal(rng);
  for (float& v : x) v = normal(rng);
  std::vector<unsigned char> bytes(ponder::row_bytes(kType, K) * N);
  std::string error;
  REQUIRE(ponder::quantize(kType, src.data(), bytes.data(), N * K, &error));
  std::vector<float> wf(N * K);
  REQUIRE(ponder::dequantize(kType, bytes.data(), wf.data(), N * K, &error));
  const Aligned w(bytes);

  // x at a 16-byte aligned address too; x_vec as the launcher decides it.
  const Aligned xa(std::vector<unsigned char>(reinterpret_cast<const unsigned char*>(x.data()),
                                              reinterpret_cast<const unsigned char*>(x.data() + x.size())));
  const auto* xp = reinterpret_cast<const float*>(xa.get());
  const std::vector<float> got = emulate<kType, kT>(w.get(), N, K, xp, K % 4 == 0);

  double num = 0, den = 0;
  std::size_t not_finite = 0;
  for (int t = 0; t < kT; ++t)
    for (std::size_t n = 0; n < N; ++n) {
      double want = 0, scale = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const double p = double(wf[n * K + k]) * double(x[t * K + k]);
        want += p;
        scale += std::fabs(p);
      }
      const float g = got[t * N + n];
      if (!std::isfinite(g)) ++not_finite;
      num += (g - want) * (g - want);
      den += scale * scale;
    }
  REQUIRE(not_finite == 0);
  // Relative to Σ|w x| (a single output may cancel to near 0): float rounding, a chain of at
  // most K/256 + 20 roundings, is far below 1e-5 of it.
  const double rel = std::sqrt(num / den);
  INFO("relative error " << rel);
  CHECK(rel <= 1e-5);
}

template <GgmlType kType>
void check_type(std::mt19937_64& rng) {
  const std::size_t be = ponder::ggml_type_info(static_cast<std::uint32_t>(kType))->block_elements;
  std::vector<std::size_t> Ks = {be, 3 * be, 1536, 2560 + be, 8960};
  if (be == 1) Ks.insert(Ks.end(), {1, 7, 9, 33, 255, 257, 1001});
  for (std::size_t N : {1, 2, 5, 7, 33})
    for (std::size_t K : Ks) {
      check<kType, 1>(N, K, rng);
      check<kType, 3>(N, K, rng);
    }
  check<kType, 8>(9, 1536, rng);
  check<kType, 2>(6, 3 * be, rng);
}

}  // namespace

TEST_CASE("gemv's tiles and staging, emulated on the host, against float64", "[cuda_blocks][gemv_host]") {
  std::mt19937_64 rng(std::random_device{}());
  SECTION("f32") { check_type<GgmlType::f32>(rng); }
  SECTION("f16") { check_type<GgmlType::f16>(rng); }
  SECTION("bf16") { check_type<GgmlType::bf16>(rng); }
  SECTION("q8_0") { check_type<GgmlType::q8_0>(rng); }
  SECTION("q4_0") { check_type<GgmlType::q4_0>(rng); }
  SECTION("q4_k") { check_type<GgmlType::q4_k>(rng); }
  SECTION("q5_k") { check_type<GgmlType::q5_k>(rng); }
  SECTION("q6_k") { check_type<GgmlType::q6_k>(rng); }
}
