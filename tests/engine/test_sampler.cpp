// The sampler against an independent float64 model of the same pipeline (penalties, top-k,
// temperature, softmax, top-p, min-p), by exact cases and by the frequencies of many draws.
#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "engine/model.h"
#include "engine/sampler.h"

using ponder::Sampler;
using ponder::SamplingParams;

// Counts the allocations of the whole test program (for "no allocation per call").
namespace {
std::atomic<std::size_t> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// GCC takes the free() of a pointer from a replaced operator new for a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams params(float temperature, float top_p = 1.0f, std::uint32_t top_k = 0,
                      float min_p = 0.0f, std::uint64_t seed = 12345) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_p = top_p;
  p.top_k = top_k;
  p.min_p = min_p;
  p.seed = seed;
  return p;
}

// The distribution the sampler should draw from, in double, written from the definitions:
// penalties on the distinct tokens of the window; order by (logit desc, id asc); the first
// top_k; softmax of logit / T; the shortest prefix with mass >= top_p; p >= min_p * p_max;
// renormalised. Rows >= n_tokens and non-finite logits get 0.
std::vector<double> reference(std::vector<float> logits, std::size_t n_tokens,
                              const SamplingParams& p, const std::vector<std::int32_t>& history = {}) {
  const std::size_t n = std::min(logits.size(), n_tokens);
  std::set<std::int32_t> seen;
  const std::size_t start =
      p.penalty_window == 0 || history.size() <= p.penalty_window ? 0 : history.size() - p.penalty_window;
  for (std::size_t h = start; h < history.size(); ++h) {
    const std::int32_t id = history[h];
    if (id < 0 || std::size_t(id) >= n || !seen.insert(id).second) continue;
    float& l = logits[std::size_t(id)];
    if (!std::isfinite(l)) continue;
    if (p.repetition_penalty != 1.0f) l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    l -= p.presence_penalty;
  }
  std::vector<std::int32_t> order;
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(logits[i])) order.push_back(std::int32_t(i));
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  if (p.top_k > 0 && order.size() > p.top_k) order.resize(p.top_k);
  std::vector<double> prob(logits.size(), 0.0);
  const double m = logits[order[0]];
  double z = 0;
  for (auto id : order) z += std::exp((double(logits[id]) - m) / p.temperature);
  std::vector<double> q;
  for (auto id : order) q.push_back(std::exp((double(logits[id]) - m) / p.temperature) / z);
  std::size_t keep = order.size();
  if (p.top_p < 1.0f) {
    double cum = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
      cum += q[i];
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p.min_p > 0.0f)
    while (keep > 1 && q[keep - 1] < p.min_p * q[0]) --keep;
  double kept = 0;
  for (std::size_t i = 0; i < keep; ++i) kept += q[i];
  for (std::size_t i = 0; i < keep; ++i) prob[std::size_t(order[i])] = q[i] / kept;
  return prob;
}

std::vector<std::size_t> draw(Sampler& s, const std::vector<float>& logits, int n,
                              const std::vector<std::int32_t>& history = {}) {
  std::vector<std::size_t> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    const std::int32_t id = s.sample(logits.data(), logits.size(), history.data(), history.size());
    if (id < 0 || std::size_t(id) >= logits.size()) FAIL("id " << id << " out of range");
    ++counts[std::size_t(id)];
  }
  return counts;
}

// Every empirical frequency within 5 standard errors (+1e-4) of its probability, and no token of
// probability 0 ever drawn.
void check_frequencies(const std::vector<std::size_t>& counts, const std::vector<double>& prob,
                       int n) {
  for (std::size_t i = 0; i < prob.size(); ++i) {
    const double f = double(counts[i]) / n;
    INFO("token " << i << ": frequency " << f << ", probability " << prob[i]);
    if (prob[i] == 0.0) {
      CHECK(counts[i] == 0);
    } else {
      CHECK(std::fabs(f - prob[i]) <= 5.0 * std::sqrt(prob[i] * (1 - prob[i]) / n) + 1e-4);
    }
  }
}

std::vector<float> gaussian_logits(std::size_t n, float sigma, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> l(n);
  for (auto& x : l) x = d(gen);
  return l;
}

std::vector<float> log_probs(std::initializer_list<double> p) {
  std::vector<float> l;
  for (double x : p) l.push_back(float(std::log(x)));
  return l;
}
}  // namespace

TEST_CASE("greedy is the argmax, ties to the lowest id", "[sampler]") {
  auto logits = gaussian_logits(1000, 3.0f, 1);
  Sampler s(params(0.0f), 1000);
  const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
  CHECK(s.sample(logits.data(), logits.size(), nullptr, 0) == best);
  logits[997] = logits[best];
  logits[3] = logits[best];
  CHECK(s.sample(logits.data(), logits.size(), nullptr, 0) == 3);
  // Rows past n_rows are not read; n_rows past n_tokens are padding.
  CHECK(s.sample(logits.data(), 3, nullptr, 0) ==
        std::max_element(logits.begin(), logits.begin() + 3) - logits.begin());
}

TEST_CASE("padding rows are never sampled, whatever their logits", "[sampler]") {
  std::vector<float> logits(32, 0.0f);
  for (std::size_t i = 20; i < 32; ++i) logits[i] = 1e30f;  // padding: huge
  logits[7] = 1.0f;
  Sampler greedy(params(0.0f), 20);
  CHECK(greedy.sample(logits.data(), logits.size(), nullptr, 0) == 7);
  Sampler s(params(5.0f, 1.0f), 20);
  const auto counts = draw(s, logits, 20000);
  for (std::size_t i = 20; i < 32; ++i) CHECK(counts[i] == 0);
  // The real vocabulary of a Qwen distill inside its 151936 rows.
  std::vector<float> big = gaussian_logits(151936, 1.0f, 2);
  for (std::size_t i = 151665; i < big.size(); ++i) big[i] = 100.0f;
  Sampler q(params(1.0f, 0.95f), 151665);
  for (int i = 0; i < 200; ++i) CHECK(q.sample(big.data(), big.size(), nullptr, 0) < 151665);
  Sampler qg(params(0.0f), 151665);
  CHECK(qg.sample(big.data(), big.size(), nullptr, 0) ==
        std::max_element(big.begin(), big.begin() + 151665) - big.begin());
}

TEST_CASE("top-k 1 is greedy", "[sampler]") {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    auto logits = gaussian_logits(5000, 2.0f, seed);
    if (seed % 2 == 0) {  // ties at the top
      const float top = *std::max_element(logits.begin(), logits.end());
      logits[4000] = top;
      logits[17] = top;
    }
    Sampler g(params(0.0f), 5000);
    Sampler k1(params(1.5f, 0.9f, 1, 0.0f, seed), 5000);
    const auto want = g.sample(logits.data(), logits.size(), nullptr, 0);
    for (int i = 0; i < 5; ++i) CHECK(k1.sample(logits.data(), logits.size(), nullptr, 0) == want);
  }
}

TEST_CASE("a seed gives one sequence, another seed another, seed 0 picks one", "[sampler]") {
  const auto logits = gaussian_logits(64, 0.5f, 3);
  auto run = [&](std::uint64_t seed) {
    Sampler s(params(1.0f, 1.0f, 0, 0.0f, seed), 64);
    std::vector<std::int32_t> out;
    for (int i = 0; i < 300; ++i) out.push_back(s.sample(logits.data(), logits.size(), nullptr, 0));
    return out;
  };
  CHECK(run(42) == run(42));
  CHECK(run(42) != run(43));
  Sampler a(params(1.0f, 1.0f, 0, 0.0f, 0), 64), b(params(1.0f, 1.0f, 0, 0.0f, 0), 64);
  CHECK(a.seed() != 0);
  CHECK(a.seed() != b.seed());
  Sampler c(params(1.0f, 1.0f, 0, 0.0f, 77), 64);
  CHECK(c.seed() == 77);
  // The same on every platform: the first draws of seed 2026 on these logits.
  Sampler d(params(0.8f, 0.95f, 0, 0.0f, 2026), 64);
  std::vector<std::int32_t> got;
  for (int i = 0; i < 12; ++i) got.push_back(d.sample(logits.data(), logits.size(), nullptr, 0));
  const std::vector<std::int32_t> golden = {36, 13, 51, 57, 51, 50, 54, 52, 56, 12, 60, 20};
  CHECK(got == golden);
}

TEST_CASE("the AVX2 and portable weight passes draw the same tokens", "[sampler]") {
  for (unsigned seed : {8u, 9u}) {
    auto logits = gaussian_logits(151936, seed == 8 ? 1.0f : 2.0f, seed);
    logits[77] = kNaN;
    logits[151660] = kInf;
    auto run = [&](bool avx2) {
      const bool was = Sampler::use_avx2(avx2);
      Sampler s(params(0.6f, 0.95f, 0, 0.0f, seed), 151663);  // not a multiple of 8
      std::vector<std::int32_t> out;
      for (int i = 0; i < 200; ++i) out.push_back(s.sample(logits.data(), logits.size(), nullptr, 0));
      Sampler::use_avx2(was);
      return out;
    };
    CHECK(run(true) == run(false));
  }
}

TEST_CASE("frequencies match the truncated softmax", "[sampler]") {
  // 24 real tokens and 8 padding rows with large logits.
  auto logits = gaussian_logits(32, 1.2f, 4);
  for (std::size_t i = 24; i < 32; ++i) logits[i] = 9.0f;
  const SamplingParams cases[] = {
      params(1.0f),                         // plain softmax
      params(0.7f),                         // temperature
      params(1.3f, 1.0f, 6),                // top-k
      params(0.6f, 0.9f),                   // top-p
      params(1.0f, 1.0f, 0, 0.1f),          // min-p
      params(0.8f, 0.85f, 8, 0.05f, 99),    // all three
      params(2.0f, 0.5f, 12, 0.0f, 7),
  };
  const int n = 100000;
  for (const auto& p : cases) {
    INFO("T " << p.temperature << " top_p " << p.top_p << " top_k " << p.top_k << " min_p " << p.min_p);
    Sampler s(p, 24);
    check_frequencies(draw(s, logits, n), reference(logits, 24, p), n);
  }
}

TEST_CASE("frequencies on a full Qwen-sized vocabulary", "[sampler]") {
  // Peaked like a model's logits: a few high ones over a broad bulk.
  auto logits = gaussian_logits(151936, 2.0f, 5);
  const float top[] = {14.0f, 13.5f, 13.2f, 12.0f, 11.0f, 10.5f};
  for (std::size_t i = 0; i < 6; ++i) logits[1000 + 20000 * i] = top[i];
  const SamplingParams cases[] = {params(0.6f, 0.95f), params(1.0f, 0.9f, 40),
                                  params(1.0f, 1.0f, 0, 0.05f)};
  const int n = 3000;
  for (const auto& p : cases) {
    INFO("T " << p.temperature << " top_p " << p.top_p << " top_k " << p.top_k << " min_p " << p.min_p);
    Sampler s(p, 151665);
    check_frequencies(draw(s, logits, n), reference(logits, 151665, p), n);
  }
}

TEST_CASE("top-p keeps the right set", "[sampler]") {
  const auto l = log_probs({0.5, 0.25, 0.15, 0.1});
  auto support = [&](const std::vector<float>& logits, float top_p, float min_p = 0.0f) {
    Sampler s(params(1.0f, top_p, 0, min_p), std::uint32_t(logits.size()));
    const auto counts = draw(s, logits, 4000);
    std::vector<std::int32_t> ids;
    for (std::size_t i = 0; i < counts.size(); ++i)
      if (counts[i] > 0) ids.push_back(std::int32_t(i));
    return ids;
  };
  CHECK(support(l, 0.4f) == std::vector<std::int32_t>{0});           // 0.5 >= 0.4
  CHECK(support(l, 0.7f) == std::vector<std::int32_t>{0, 1});        // 0.5 < 0.7 <= 0.75
  CHECK(support(l, 0.8f) == std::vector<std::int32_t>{0, 1, 2});     // 0.75 < 0.8 <= 0.9
  CHECK(support(l, 0.95f) == std::vector<std::int32_t>{0, 1, 2, 3});
  CHECK(support(l, 1.0f) == std::vector<std::int32_t>{0, 1, 2, 3});
  // Min-p after top-p: p >= min_p * 0.5.
  CHECK(support(l, 1.0f, 0.4f) == std::vector<std::int32_t>{0, 1});     // >= 0.2
  CHECK(support(l, 1.0f, 0.25f) == std::vector<std::int32_t>{0, 1, 2}); // >= 0.125
  CHECK(support(l, 0.7f, 0.25f) == std::vector<std::int32_t>{0, 1});    // the stricter wins
  // Ties in probability go to the lower id: 0.3 at ids 2 and 3, 0.2 at ids 0 and 1.
  const auto t = log_probs({0.2, 0.2, 0.3, 0.3});
  CHECK(support(t, 0.5f) == std::vector<std::int32_t>{2, 3});
  CHECK(support(t, 0.7f) == std::vector<std::int32_t>{0, 2, 3});
  // Renormalised: 2/3 and 1/3.
  Sampler s(params(1.0f, 0.7f), 4);
  const int n = 60000;
  check_frequencies(draw(s, l, n), {2.0 / 3, 1.0 / 3, 0, 0}, n);
  // Temperature before top-p: at T = 0.5 the probabilities are squared and renormalised
  // (0.725, 0.181, 0.065, 0.029), so top-p 0.8 keeps two (at T = 1 it keeps three).
  Sampler cold(params(0.5f, 0.8f), 4);
  const auto counts = draw(cold, l, 4000);
  CHECK(counts[0] > 0);
  CHECK(counts[1] > 0);
  CHECK(counts[2] + counts[3] == 0);
}

TEST_CASE("top-p and top-k on equal logits over a whole vocabulary", "[sampler]") {
  // All 151665 real tokens equal: the order is by id, so top-p 0.5 keeps ids 0..75832 (75833
  // tokens: 75832.5 is the mass needed) and top-k 1000 keeps ids 0..999.
  std::vector<float> logits(151936, 0.0f);
  std::fill(logits.begin() + 151665, logits.end(), 50.0f);
  {
    Sampler s(params(1.0f, 0.5f), 151665);
    std::int32_t hi = 0;
    for (int i = 0; i < 1500; ++i) hi = std::max(hi, s.sample(logits.data(), logits.size(), nullptr, 0));
    CHECK(hi <= 75832);
    CHECK(hi >= 75000);  // P(no draw in the top 833) = (1 - 833/75833)^1500 < 1e-7
  }
  {
    Sampler s(params(1.0f, 1.0f, 1000), 151665);
    std::int32_t hi = 0;
    for (int i = 0; i < 1500; ++i) hi = std::max(hi, s.sample(logits.data(), logits.size(), nullptr, 0));
    CHECK(hi <= 999);
    CHECK(hi >= 990);  // (1 - 10/1000)^1500 < 1e-6
  }
  {  // top-k then top-p: 1000 kept, then the first 500 of them.
    Sampler s(params(1.0f, 0.4999f, 1000), 151665);
    std::int32_t hi = 0;
    for (int i = 0; i < 1500; ++i) hi = std::max(hi, s.sample(logits.data(), logits.size(), nullptr, 0));
    CHECK(hi <= 499);
    CHECK(hi >= 490);
  }
}

TEST_CASE("repetition and presence penalties", "[sampler]") {
  auto greedy_with = [](std::vector<float> logits, float rep, float presence,
                        std::vector<std::int32_t> history, std::uint32_t window = 64) {
    SamplingParams p = params(0.0f);
    p.repetition_penalty = rep;
    p.presence_penalty = presence;
    p.penalty_window = window;
    Sampler s(p, std::uint32_t(logits.size()));
    return s.sample(logits.data(), logits.size(), history.data(), history.size());
  };
  // Positive logit divided: 3.0 / 2 = 1.5 < 2.0.
  CHECK(greedy_with({3.0f, 2.0f}, 2.0f, 0.0f, {0}) == 1);
  CHECK(greedy_with({3.0f, 2.0f}, 1.4f, 0.0f, {0}) == 0);  // 2.14 > 2
  // Negative logit multiplied: -1.0 * 2 = -2.0 < -1.5.
  CHECK(greedy_with({-1.0f, -1.5f}, 2.0f, 0.0f, {0}) == 1);
  CHECK(greedy_with({-1.0f, -1.5f}, 1.4f, 0.0f, {0}) == 0);  // -1.4 > -1.5
  // Once per distinct token, however often it appears: 1.0 - 0.1 = 0.9 > 0.8 (not 0.7).
  CHECK(greedy_with({1.0f, 0.8f}, 1.0f, 0.1f, {0, 0, 0}) == 0);
  CHECK(greedy_with({1.0f, 0.8f}, 1.0f, 0.5f, {0, 0, 0}) == 1);
  CHECK(greedy_with({1.0f, 0.8f}, 1.2f, 0.0f, {0, 0, 0, 0, 0}) == 0);   // 0.833 (not 1/1.2^5)
  CHECK(greedy_with({1.0f, 0.85f}, 1.2f, 0.0f, {0, 0, 0, 0, 0}) == 1);  // 0.833 < 0.85
  // The window: only the last 3 tokens count, so token 0 is not penalised.
  CHECK(greedy_with({3.0f, 2.0f, 0.0f}, 2.0f, 0.0f, {0, 2, 2, 2}, 3) == 0);
  CHECK(greedy_with({3.0f, 2.0f, 0.0f}, 2.0f, 0.0f, {0, 2, 2, 2}, 4) == 1);
  CHECK(greedy_with({3.0f, 2.0f, 0.0f}, 2.0f, 0.0f, {0, 2, 2, 2}, 0) == 1);  // 0 = all
  // Ids outside the vocabulary are ignored.
  CHECK(greedy_with({3.0f, 2.0f}, 2.0f, 0.0f, {-1, 2, 1000000}) == 0);
  // Both together, by frequencies: [1/1.5 - 0.2, 0.5, 0, -0.5 * 1.5 - 0.2].
  SamplingParams p = params(1.0f);
  p.repetition_penalty = 1.5f;
  p.presence_penalty = 0.2f;
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f};
  const std::vector<std::int32_t> history = {3, 0, 3};
  const auto want = reference(logits, 4, p, history);
  const double z = std::exp(1 / 1.5 - 0.2) + std::exp(0.5) + 1 + std::exp(-0.95);
  CHECK(want[0] == Approx(std::exp(1 / 1.5 - 0.2) / z).epsilon(1e-6));
  CHECK(want[3] == Approx(std::exp(-0.95) / z).epsilon(1e-6));
  Sampler s(p, 4);
  const int n = 100000;
  check_frequencies(draw(s, logits, n, history), want, n);
  // The caller's logits are left as they were.
  CHECK(logits[0] == 1.0f);
}

TEST_CASE("log_prob is a float64 log-softmax over the real vocabulary", "[sampler]") {
  auto logits = gaussian_logits(1200, 4.0f, 6);
  for (std::size_t i = 1000; i < 1200; ++i) logits[i] = 30.0f;  // padding
  logits[5] = kNaN;
  logits[6] = -kInf;
  logits[7] = kInf;
  double m = -1e300;
  for (std::size_t i = 0; i < 1000; ++i)
    if (std::isfinite(logits[i])) m = std::max(m, double(logits[i]));
  double z = 0;
  for (std::size_t i = 0; i < 1000; ++i)
    if (std::isfinite(logits[i])) z += std::exp(double(logits[i]) - m);
  const double lse = m + std::log(z);
  double total = 0;
  for (std::int32_t id : {0, 1, 4, 8, 500, 999}) {
    const double lp = Sampler::log_prob(logits.data(), logits.size(), 1000, id);
    CHECK(lp == Approx(double(logits[std::size_t(id)]) - lse).margin(1e-12));
  }
  for (std::int32_t id = 0; id < 1000; ++id) {
    const double lp = Sampler::log_prob(logits.data(), logits.size(), 1000, id);
    if (std::isfinite(lp)) total += std::exp(lp);
  }
  CHECK(total == Approx(1.0).margin(1e-12));
  for (std::int32_t id : {5, 6, 7, 1000, 1199, -1, 5000})
    CHECK(Sampler::log_prob(logits.data(), logits.size(), 1000, id) == -std::numeric_limits<double>::infinity());
  // Fewer rows than tokens: only the rows given.
  const float two[] = {0.0f, 0.0f};
  CHECK(Sampler::log_prob(two, 2, 1000, 1) == Approx(std::log(0.5)).margin(1e-15));
}

TEST_CASE("NaN and infinite logits are never chosen", "[sampler]") {
  std::vector<float> logits = {kNaN, 1.0f, kInf, -kInf, 2.0f, kNaN, 0.5f, kInf};
  Sampler g(params(0.0f), 8);
  CHECK(g.sample(logits.data(), logits.size(), nullptr, 0) == 4);
  Sampler s(params(1.0f), 8);
  const auto counts = draw(s, logits, 20000);
  for (std::size_t i : {0, 2, 3, 5, 7}) CHECK(counts[i] == 0);
  CHECK(counts[1] > 0);
  CHECK(counts[4] > 0);
  CHECK(counts[6] > 0);
  check_frequencies(counts, reference(logits, 8, params(1.0f)), 20000);
  // No finite logit at all: the first real token.
  const std::vector<float> none = {kNaN, kInf, -kInf, kNaN};
  CHECK(g.sample(none.data(), none.size(), nullptr, 0) == 0);
  CHECK(s.sample(none.data(), none.size(), nullptr, 0) == 0);
  // A penalty does not revive a NaN.
  SamplingParams p = params(1.0f);
  p.repetition_penalty = 1.3f;
  p.presence_penalty = 0.5f;
  Sampler ps(p, 8);
  const std::vector<std::int32_t> history = {0, 2, 5};
  const auto pc = draw(ps, logits, 5000, history);
  for (std::size_t i : {0, 2, 3, 5, 7}) CHECK(pc[i] == 0);
  // An extreme but finite spread: only the top token is left above the floor.
  std::vector<float> wide = {-3e38f, 3e38f, 0.0f, -1e30f};
  Sampler w(params(1.0f, 0.95f, 0, 0.0f, 3), 4);
  for (int i = 0; i < 50; ++i) CHECK(w.sample(wide.data(), wide.size(), nullptr, 0) == 1);
}

TEST_CASE("sample() does not allocate", "[sampler]") {
  auto logits = gaussian_logits(151936, 1.0f, 10);
  const std::vector<std::int32_t> history = {1, 2, 3, 151000, 5};
  std::vector<SamplingParams> settings = {params(0.0f), params(0.6f, 0.95f), params(1.0f, 0.9f, 40, 0.05f)};
  SamplingParams pen = params(0.7f, 0.95f);
  pen.repetition_penalty = 1.2f;
  pen.presence_penalty = 0.3f;
  settings.push_back(pen);
  for (const auto& p : settings) {
    Sampler s(p, 151665);
    const std::size_t before = g_allocations.load();
    std::int64_t sum = 0;
    for (int i = 0; i < 20; ++i) sum += s.sample(logits.data(), logits.size(), history.data(), history.size());
    const std::size_t after = g_allocations.load();
    CHECK(after == before);
    CHECK(sum >= 0);
  }
}

TEST_CASE("defaults come from the model, bad settings are refused", "[sampler]") {
  ponder::GenerationDefaults d;  // DeepSeek's advice when the files say nothing
  SamplingParams p = SamplingParams::from_defaults(d);
  CHECK(p.temperature == 0.6f);
  CHECK(p.top_p == 0.95f);
  CHECK(p.top_k == 0);
  CHECK(p.min_p == 0.0f);
  CHECK(p.repetition_penalty == 1.0f);
  d.temperature = 0.7;
  d.top_p = 0.8;
  d.top_k = 20;
  p = SamplingParams::from_defaults(d);
  CHECK(p.temperature == 0.7f);
  CHECK(p.top_p == 0.8f);
  CHECK(p.top_k == 20);
  CHECK(p.validate().empty());

  auto bad = [](auto edit) {
    SamplingParams q;
    edit(q);
    return q.validate();
  };
  CHECK_FALSE(bad([](SamplingParams& q) { q.temperature = -1; }).empty());
  CHECK_FALSE(bad([](SamplingParams& q) { q.temperature = kNaN; }).empty());
  CHECK_FALSE(bad([](SamplingParams& q) { q.top_p = 0; }).empty());
  CHECK_FALSE(bad([](SamplingParams& q) { q.top_p = 1.5f; }).empty());
  CHECK_FALSE(bad([](SamplingParams& q) { q.min_p = -0.1f; }).empty());
  CHECK_FALSE(bad([](SamplingParams& q) { q.repetition_penalty = 0; }).empty());
  CHECK_FALSE(bad([](SamplingParams& q) { q.presence_penalty = kInf; }).empty());
  SamplingParams q;
  q.top_p = 2.0f;
  CHECK_THROWS_AS(Sampler(q, 10), std::invalid_argument);
}
