// bench_scores_layout: a design probe for decode attention at depth. The scores of one KV head's
// query rows (6: the 1.5B shape's 12 query heads over 2 KV heads, heads of 128) against n keys of
// an F16 cache, on one thread, in two layouts of the keys:
//   - rows (the cache's layout today): a key's 128 values side by side, a row of both KV heads
//     every 512 bytes; 4 keys x 6 query rows in 24 accumulators of 8 lanes, then the lanes summed
//     8 accumulators at a time, as attention_kernel.h's scores_x4 does;
//   - keys in the lanes: blocks of 16 keys stored dimension by dimension (for each of the 128
//     dimensions, the 16 keys' values side by side); per dimension, 16 keys widened once and one
//     fused multiply-add per query row with the query's value broadcast: 6 accumulators of 16
//     lanes that end as the 16 keys' scores, with no lane sums.
// Prints the best GFLOP/s of 20 rounds each (2 x 6 x 128 flops a key) and the largest
// difference of either from a float64 reference. Needs AVX-512 (F, VL); says so and exits 0
// where the CPU has none.
//
//   bench_scores_layout [KEYS ...]   (default 512 2048 8192 32768)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

constexpr int kD = 128, kRows = 6, kStride = 256;  // values per head, query rows, values per cache row

#define PONDER_PROBE_TARGET __attribute__((target("avx512f,avx512vl,fma,f16c")))

PONDER_PROBE_TARGET void scores_rows(const float* q, const std::uint16_t* k, std::size_t n, float* s) {
  for (std::size_t j = 0; j < n; j += 4) {
    __m256 a[kRows][4];
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) a[r][i] = _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int d = 0; d < kD; d += 8) {
      __m256 kv[4];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i)
        kv[i] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + (j + i) * kStride + d)));
#pragma GCC unroll 6
      for (int r = 0; r < kRows; ++r) {
        const __m256 x = _mm256_loadu_ps(q + r * kD + d);
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) a[r][i] = _mm256_fmadd_ps(x, kv[i], a[r][i]);
      }
    }
#pragma GCC unroll 3
    for (int r = 0; r < kRows; r += 2) {  // 8 accumulators' lanes summed together
      const __m256 x = _mm256_hadd_ps(_mm256_hadd_ps(a[r][0], a[r][1]), _mm256_hadd_ps(a[r][2], a[r][3]));
      const __m256 y = _mm256_hadd_ps(_mm256_hadd_ps(a[r + 1][0], a[r + 1][1]), _mm256_hadd_ps(a[r + 1][2], a[r + 1][3]));
      const __m256 t = _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31));
      _mm_storeu_ps(s + r * n + j, _mm256_castps256_ps128(t));
      _mm_storeu_ps(s + (r + 1) * n + j, _mm256_extractf128_ps(t, 1));
    }
  }
}

PONDER_PROBE_TARGET void scores_lanes(const float* q, const std::uint16_t* kt, std::size_t n, float* s) {
  for (std::size_t b = 0; b < n / 16; ++b) {
    const std::uint16_t* block = kt + b * kD * 16;
    __m512 a[kRows];
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) a[r] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int d = 0; d < kD; ++d) {
      const __m512 kv = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + d * 16)));
#pragma GCC unroll 6
      for (int r = 0; r < kRows; ++r) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * kD + d]), kv, a[r]);
    }
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) _mm512_storeu_ps(s + r * n + b * 16, a[r]);
  }
}

PONDER_PROBE_TARGET std::uint16_t to_f16(float v) { return _cvtss_sh(v, 0); }
PONDER_PROBE_TARGET float from_f16(std::uint16_t h) { return _cvtsh_ss(h); }

template <class F>
double best_gflops(std::size_t n, const F& f) {
  double best = 0;
  for (int round = 0; round < 20; ++round) {
    long calls = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double seconds = 0;
    do {
      f();
      ++calls;
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (seconds < 0.02);
    best = std::max(best, 2.0 * kRows * kD * double(n) * double(calls) / seconds / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("f16c")) {
    std::printf("bench_scores_layout: this CPU has no AVX-512 (F, VL); nothing measured\n");
    return 0;
  }
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoul(argv[i], nullptr, 10) / 16 * 16);
  if (sizes.empty()) sizes = {512, 2048, 8192, 32768};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::printf("| keys | rows: 4 keys x 6 rows, lane sums | keys in the lanes, 16 a block | largest difference from float64 |\n");
  std::printf("|---|---|---|---|\n");
  for (std::size_t n : sizes) {
    if (n == 0) continue;
    std::vector<float> q(kRows * kD);
    for (auto& v : q) v = uniform(rng);
    std::vector<std::uint16_t> k(n * kStride), kt(n * kD);
    for (std::size_t j = 0; j < n; ++j)
      for (int d = 0; d < kD; ++d) {
        const std::uint16_t h = to_f16(uniform(rng));
        k[j * kStride + d] = h;
        kt[(j / 16) * kD * 16 + d * 16 + j % 16] = h;
      }
    std::vector<float> s_rows(kRows * n), s_lanes(kRows * n);
    const double rows = best_gflops(n, [&] { scores_rows(q.data(), k.data(), n, s_rows.data()); });
    const double lanes = best_gflops(n, [&] { scores_lanes(q.data(), kt.data(), n, s_lanes.data()); });
    double worst = 0;
    for (int r = 0; r < kRows; ++r)
      for (std::size_t j = 0; j < n; ++j) {
        double want = 0;
        for (int d = 0; d < kD; ++d) want += double(q[r * kD + d]) * from_f16(k[j * kStride + d]);
        worst = std::max({worst, std::fabs(s_rows[r * n + j] - want), std::fabs(s_lanes[r * n + j] - want)});
      }
    std::printf("| %zu | %.1f GFLOP/s | %.1f GFLOP/s | %.2g |\n", n, rows, lanes, worst);
  }
  return 0;
}
