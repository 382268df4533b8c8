// bench_matmul: speed of the CPU matmul kernels (engine/cpu/matmul.h) against the machine's limits.
//
//   bench_matmul [--threads 1,2] [--passes N] [--prefill-passes N] [--T 512] [--isa portable|avx2|avx512]
//                [--types f32,f16,...] [--shapes 8960x1536,1536x8960] [--l1 KIB] [--no-prefill]
//
// 1. Read bandwidth: every thread of a ThreadPool streams its share of a 1 GiB buffer (AVX2
//    loads where the CPU has them); the best of N passes, per thread count. This is the physical
//    limit decode runs against. Where the reading prefetches (stream_prefetch()), also the
//    medians of N alternated passes at each of its levels (into L1 and L2, into L1, none).
// 2. Decode (GEMV, T = 1) on the R1-Distill-Qwen-1.5B ffn shapes: N x K = 8960 x 1536 (gate/up)
//    and 1536 x 8960 (down), per weight type (--shapes: others, such as the attention's 1536 x
//    1536 and 256 x 1536 or the output's 151936 x 1536). --l1: decode's L1 budget in KiB
//    instead of this CPU's (decode_l1_bytes(), which decides how many long rows the kernels
//    read side by side). The matrix is copied until the copies exceed
//    256 MiB and the GEMVs cycle through them, so the weights come from DRAM as in a real decode
//    step, not from the L3 cache. GB/s = weight bytes / time per GEMV (best and median of N
//    passes over all copies) and the ratio to the measured bandwidth at the same thread count;
//    GB/cpu-s: bytes per CPU-second of the process (median), which a busy machine disturbs less;
//    L2 GB/cs: the same on rows that stay in L2, one thread — the kernel's compute ceiling
//    (median of N passes, and the best: on the Xeon VM the same kernel's passes ran at two
//    speeds some 25% apart, minute by minute, whatever the code; the best is the nearest to the
//    kernel's own speed).
// 3. Prefill: T = 512 activation rows on one copy; GFLOP/s = 2 N K T / time (best and median).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/bandwidth.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/matmul_internal.h"
#include "engine/cpu/thread_pool.h"
#include "engine/quant.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
// CPU seconds used by the whole process (all threads): on a busy machine, bytes per CPU-second
// shows what the kernel does when it runs, whatever the scheduler took away.
double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    if (comma > pos) out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

struct Stats {
  double best = 0, median = 0;
};
Stats stats(std::vector<double> v) {  // v: rates, higher is better
  std::sort(v.begin(), v.end());
  return {v.back(), v[v.size() / 2]};
}

struct Matrix {
  std::vector<unsigned char> bytes;  // `copies` copies, each `one` bytes
  std::size_t one = 0, copies = 0;
  ponder::Weight weight(std::size_t i, ponder::GgmlType type, std::size_t N, std::size_t K) const {
    ponder::Weight w;
    w.type = type;
    w.n_dims = 2;
    w.ne[0] = K;
    w.ne[1] = N;
    w.data = bytes.data() + i * one;
    w.bytes = one;
    w.source = "bench";
    return w;
  }
};

Matrix make_matrix(ponder::GgmlType type, std::size_t N, std::size_t K, std::size_t min_total) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> src(N * K);
  for (auto& v : src) v = normal(rng);
  Matrix m;
  m.one = ponder::row_bytes(type, K) * N;
  m.copies = std::max<std::size_t>(2, (min_total + m.one - 1) / m.one);
  m.bytes.resize(m.one * m.copies);
  std::string error;
  if (!ponder::quantize(type, src.data(), m.bytes.data(), N * K, &error)) {
    std::fprintf(stderr, "quantize: %s\n", error.c_str());
    std::exit(1);
  }
  for (std::size_t i = 1; i < m.copies; ++i) std::memcpy(m.bytes.data() + i * m.one, m.bytes.data(), m.one);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<unsigned> threads = {1, 2};
  int passes = 7, prefill_passes = 3;
  std::size_t T = 512;
  bool prefill = true;
  std::vector<std::string> type_names = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_K", "q5_K", "q6_K"};
  struct Shape {
    std::size_t N, K;
  };
  std::vector<Shape> shapes = {{8960, 1536}, {1536, 8960}};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") {
      threads.clear();
      for (const auto& s : split(next())) threads.push_back(static_cast<unsigned>(std::atoi(s.c_str())));
    } else if (a == "--passes") {
      passes = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--prefill-passes") {
      prefill_passes = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--T") {
      T = static_cast<std::size_t>(std::max(2, std::atoi(next().c_str())));
    } else if (a == "--types") {
      type_names = split(next());
    } else if (a == "--shapes") {
      shapes.clear();
      for (const auto& v : split(next())) {
        const std::size_t x = v.find('x');
        const long n = std::atol(v.c_str()), k = x == std::string::npos ? 0 : std::atol(v.c_str() + x + 1);
        if (n <= 0 || k <= 0 || k % 256 != 0) {
          std::fprintf(stderr, "--shapes: %s is not NxK with K a multiple of 256\n", v.c_str());
          return 2;
        }
        shapes.push_back({static_cast<std::size_t>(n), static_cast<std::size_t>(k)});
      }
    } else if (a == "--l1") {
      const long kib = std::atol(next().c_str());
      if (kib <= 0) {
        std::fprintf(stderr, "--l1 takes a size in KiB\n");
        return 2;
      }
      ponder::cpu::detail::set_decode_l1_bytes(static_cast<std::size_t>(kib) << 10);
    } else if (a == "--no-prefill") {
      prefill = false;
    } else if (a == "--isa") {
      const std::string v = next();
      ponder::cpu::force_isa(v == "portable" ? ponder::cpu::Isa::portable
                             : v == "avx2"   ? ponder::cpu::Isa::avx2
                             : v == "avx512" ? ponder::cpu::Isa::avx512
                                             : ponder::cpu::Isa::amx);
    } else {
      std::fprintf(stderr,
                   "usage: bench_matmul [--threads 1,2] [--passes N] [--prefill-passes N] [--T 512] "
                   "[--isa portable|avx2|avx512|amx] [--types f32,f16,...] [--shapes NxK,...] [--l1 KIB] "
                   "[--no-prefill]\n");
      return 2;
    }
  }
  std::printf("isa: %s (detected %s)\n", ponder::cpu::isa_name(ponder::cpu::active_isa()),
              ponder::cpu::isa_name(ponder::cpu::detect_isa()));
  std::printf("decode L1 budget: %zu KiB (this CPU's L1 data cache: %zu KiB)\n",
              ponder::cpu::detail::decode_l1_bytes() >> 10, ponder::cpu::detail::l1d_cache_bytes() >> 10);

  std::vector<double> bandwidth;
  for (unsigned th : threads) {
    ponder::cpu::ThreadPool pool(th);
    bandwidth.push_back(ponder::cpu::read_bandwidth(pool, passes));
    std::printf("read bandwidth, %u thread%s: %.1f GB/s (best of %d)\n", th, th == 1 ? "" : "s",
                bandwidth.back(), passes);
  }
  // What the reading's software prefetch gives (stream_prefetch(), as decode's): passes over
  // read_bandwidth's 1 GiB buffer at each level in turn, their medians, the last thread count's
  // pool.
  if (ponder::cpu::stream_prefetch() != ponder::cpu::StreamPrefetch::none) {
    ponder::cpu::ThreadPool pool(threads.back());
    const ponder::cpu::ReadBuffer buffer(std::size_t{1} << 30);
    const ponder::cpu::ReadSpan span = buffer.span();
    std::vector<double> by_level[3];
    for (int p = 0; p < passes; ++p)
      for (int level = 2; level >= 0; --level) {
        ponder::cpu::detail::set_stream_prefetch(level);
        by_level[level].push_back(ponder::cpu::read_spans(pool, &span, 1));
      }
    ponder::cpu::detail::set_stream_prefetch(-1);
    std::printf("read bandwidth by the reading's prefetch, %u threads, medians of %d alternated passes: into L1 and L2 "
                "%.1f GB/s, into L1 %.1f, none %.1f\n",
                pool.size(), passes, stats(by_level[2]).median, stats(by_level[1]).median, stats(by_level[0]).median);
  }

  std::printf("\n%-6s %-11s %3s %9s %9s %6s %8s %8s %8s", "type", "N x K", "thr", "GEMV GB/s", "(median)", "ratio",
              "GB/cpu-s", "L2 GB/cs", "(best)");
  if (prefill) std::printf(" %12s %9s", "pp GFLOP/s", "(median)");
  std::printf("\n");
  for (const auto& name : type_names) {
    const ponder::GgmlTypeInfo* info = nullptr;
    for (std::uint32_t id = 0; id < 40 && !info; ++id) {
      const auto* i = ponder::ggml_type_info(id);
      if (i && i->name == name) info = i;
    }
    if (!info || !ponder::cpu::matmul_supports(info->type)) {
      std::fprintf(stderr, "unknown or unsupported type %s\n", name.c_str());
      return 2;
    }
    for (const Shape& s : shapes) {
      const Matrix m = make_matrix(info->type, s.N, s.K, std::size_t{256} << 20);
      std::mt19937 rng(3);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> x(T * s.K), y(T * s.N);
      for (auto& v : x) v = normal(rng);
      Stats hot_rate;
      for (std::size_t ti = 0; ti < threads.size(); ++ti) {
        ponder::cpu::ThreadPool pool(threads[ti]);
        // Warm-up: touch every copy once.
        for (std::size_t c = 0; c < m.copies; ++c)
          ponder::cpu::matmul(m.weight(c, info->type, s.N, s.K), x.data(), 1, y.data(), &pool);
        std::vector<double> gbs, cpu_gbs;
        for (int p = 0; p < passes; ++p) {
          const auto t0 = Clock::now();
          const double c0 = process_cpu_seconds();
          for (std::size_t c = 0; c < m.copies; ++c)
            ponder::cpu::matmul(m.weight(c, info->type, s.N, s.K), x.data(), 1, y.data(), &pool);
          gbs.push_back(double(m.one * m.copies) / seconds_since(t0) / 1e9);
          cpu_gbs.push_back(double(m.one * m.copies) / (process_cpu_seconds() - c0) / 1e9);
        }
        // The kernel's own ceiling: GEMV on the first rows of one copy (at most 512 KiB, so they
        // stay in L2), one thread, bytes per CPU-second (median of the passes). Below the read
        // bandwidth means the GEMV is compute-bound.
        if (ti == 0) {
          const std::size_t rows = std::max<std::size_t>(8, std::min(s.N, (std::size_t{512} << 10) / (m.one / s.N)));
          ponder::Weight hot = m.weight(0, info->type, s.N, s.K);
          hot.ne[1] = rows;
          std::vector<double> rates;
          for (int p = 0; p < passes; ++p) {
            const double c0 = process_cpu_seconds();
            int reps = 0;
            do {
              ponder::cpu::matmul(hot, x.data(), 1, y.data(), nullptr);
              ++reps;
            } while (process_cpu_seconds() - c0 < 0.05);
            rates.push_back(double(m.one / s.N * rows) * reps / (process_cpu_seconds() - c0) / 1e9);
          }
          hot_rate = stats(rates);
        }
        const Stats g = stats(gbs), gc = stats(cpu_gbs);
        std::printf("%-6s %5zux%-5zu %3u %9.2f %9.2f %6.2f %8.2f %8.2f %8.2f", name.c_str(), s.N, s.K, threads[ti],
                    g.best, g.median, g.best / bandwidth[ti], gc.median, hot_rate.median, hot_rate.best);
        if (prefill) {
          std::vector<double> gf;
          const double flops = 2.0 * double(s.N) * double(s.K) * double(T);
          for (int p = 0; p < prefill_passes; ++p) {
            const auto t0 = Clock::now();
            ponder::cpu::matmul(m.weight(0, info->type, s.N, s.K), x.data(), T, y.data(), &pool);
            gf.push_back(flops / seconds_since(t0) / 1e9);
          }
          const Stats f = stats(gf);
          std::printf(" %12.1f %9.1f", f.best, f.median);
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
