// bench_sampler: time of Sampler::sample() on one row of 151936 logits (a Qwen distill's output
// rows, 151665 of them real), one core.
//
//   bench_sampler [--iters N] [--seed S] [--logits sharp|peaked|flat|equal] [--portable]
//
// --portable: the 4-lane weights pass even where the CPU has AVX2.
// Logit rows (seeded, fixed, synthetic): "sharp" (a N(0, 2.5) bulk under six tokens at 17-24: a
// model fairly sure of its next token, where the bulk falls below the e^-30 floor at T 0.6);
// "peaked" (a N(0, 2) bulk under six tokens at 10.5-14: most of the bulk stays above the floor);
// "flat" (N(0, 1): every token carries weight, the worst realistic case); "equal" (every logit
// 0: the top-p cut falls among 151665 equal weights, the pathological case). Settings: greedy
// (temperature 0); the R1 defaults (0.6 / top-p 0.95); the
// defaults with top-k 40; the defaults with min-p 0.05 and a repetition penalty 1.1 over a
// 64-token history. Prints the median, mean and best microseconds per sample() call (on a shared
// machine the median and best say more than the mean).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace {
int usage() {
  std::fprintf(stderr, "usage: bench_sampler [--iters N] [--seed S] [--logits sharp|peaked|flat|equal] [--portable]\n");
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  int iters = 2000;
  std::uint64_t seed = 1;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc) iters = std::max(1, std::atoi(argv[++i]));
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--logits" && i + 1 < argc) only = argv[++i];
    else if (a == "--portable") ponder::Sampler::use_avx2(false);
    else return usage();
  }
  constexpr std::size_t kRows = 151936;
  constexpr std::uint32_t kTokens = 151665;

  struct Row {
    const char* name;
    std::vector<float> logits;
  };
  std::vector<Row> rows;
  {
    std::mt19937 gen(7);
    std::normal_distribution<float> bulk(0.0f, 2.0f), unit(0.0f, 1.0f);
    std::normal_distribution<float> bulk25(0.0f, 2.5f);
    std::vector<float> sharp(kRows), peaked(kRows), flat(kRows), equal(kRows, 0.0f);
    for (auto& x : sharp) x = bulk25(gen);
    const float high[] = {24.0f, 23.0f, 22.0f, 20.0f, 18.0f, 17.0f};
    for (std::size_t i = 0; i < 6; ++i) sharp[500 + 25000 * i] = high[i];
    for (auto& x : peaked) x = bulk(gen);
    const float top[] = {14.0f, 13.5f, 13.2f, 12.0f, 11.0f, 10.5f};
    for (std::size_t i = 0; i < 6; ++i) peaked[1000 + 20000 * i] = top[i];
    for (auto& x : flat) x = unit(gen);
    rows.push_back({"sharp", sharp});
    rows.push_back({"peaked", peaked});
    rows.push_back({"flat", flat});
    rows.push_back({"equal", equal});
  }
  std::vector<std::int32_t> history(64);
  for (std::size_t i = 0; i < history.size(); ++i) history[i] = std::int32_t((i * 2371) % kTokens);

  struct Setting {
    const char* name;
    ponder::SamplingParams p;
    bool history;
  };
  std::vector<Setting> settings;
  {
    ponder::SamplingParams p;
    p.seed = seed;
    ponder::SamplingParams g = p;
    g.temperature = 0.0f;
    settings.push_back({"greedy", g, false});
    settings.push_back({"T 0.6, top-p 0.95", p, false});
    ponder::SamplingParams k = p;
    k.top_k = 40;
    settings.push_back({"T 0.6, top-p 0.95, top-k 40", k, false});
    ponder::SamplingParams m = p;
    m.min_p = 0.05f;
    m.repetition_penalty = 1.1f;
    settings.push_back({"T 0.6, top-p 0.95, min-p 0.05, rep 1.1", m, true});
  }

  std::printf("%-40s %-8s %10s %10s %10s\n", "settings", "logits", "median us", "mean us", "best us");
  std::vector<double> times(static_cast<std::size_t>(iters));
  for (const auto& s : settings) {
    for (const auto& r : rows) {
      if (!only.empty() && only != r.name) continue;
      ponder::Sampler sampler(s.p, kTokens);
      const std::int32_t* h = s.history ? history.data() : nullptr;
      const std::size_t nh = s.history ? history.size() : 0;
      long long checksum = 0;
      for (int i = 0; i < 20; ++i) checksum += sampler.sample(r.logits.data(), kRows, h, nh);  // warm up
      double best = 1e30;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) {
        const auto a = std::chrono::steady_clock::now();
        checksum += sampler.sample(r.logits.data(), kRows, h, nh);
        const auto b = std::chrono::steady_clock::now();
        times[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::micro>(b - a).count();
        best = std::min(best, times[static_cast<std::size_t>(i)]);
      }
      const double total = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      std::nth_element(times.begin(), times.begin() + iters / 2, times.end());
      std::printf("%-40s %-8s %10.1f %10.1f %10.1f   (checksum %lld)\n", s.name, r.name,
                  times[static_cast<std::size_t>(iters / 2)], total / iters, best, checksum);
    }
  }
  return 0;
}
