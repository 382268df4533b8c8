#include "engine/bench_run.h"

#include <algorithm>
#include <chrono>

namespace ponder {

std::vector<std::int32_t> bench_tokens(std::size_t n, std::uint32_t real, std::size_t salt) {
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>((i * 7919 + 13 + salt * 104729) % real);
  return ids;
}

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// n decode steps from token `id` at the cache's end, into out->decode_s and out->window_s.
bool decode_steps(Backend& backend, std::int32_t id, std::size_t n, std::uint32_t real, std::vector<float>& logits,
                  BenchTimes* out, std::string* error, std::size_t window, const std::function<void()>& between) {
  if (window == 0) window = n;
  out->decode_s = 0;
  out->window_s.clear();
  for (std::size_t done = 0; done < n;) {
    if (between) between();
    const std::size_t steps = std::min(window, n - done);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) {
      if (!backend.eval(&id, 1, logits.data(), 1, error)) return false;
      id = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.begin() + real) - logits.begin());
    }
    out->window_s.push_back(since(t0));
    out->decode_s += out->window_s.back();
    done += steps;
  }
  if (between) between();
  return true;
}

}  // namespace

bool time_prefill_decode(Backend& backend, const std::vector<std::int32_t>& prompt, std::size_t n,
                         std::uint32_t n_vocab, std::uint32_t real, BenchTimes* out, std::string* error,
                         std::size_t window, const std::function<void()>& between) {
  std::vector<float> logits(n_vocab);
  if (prompt.empty() || !backend.eval(prompt.data(), 1, logits.data(), 1, error)) return false;
  backend.truncate(0);
  const auto t0 = Clock::now();
  if (!backend.eval(prompt.data(), prompt.size(), logits.data(), 1, error)) return false;
  out->prefill_s = since(t0);
  return decode_steps(backend, prompt.back(), n, real, logits, out, error, window, between);
}

bool time_decode(Backend& backend, std::int32_t first, std::size_t n, std::uint32_t n_vocab, std::uint32_t real,
                 BenchTimes* out, std::string* error, std::size_t window, const std::function<void()>& between) {
  std::vector<float> logits(n_vocab);
  backend.truncate(0);
  out->prefill_s = 0;
  return decode_steps(backend, first, n, real, logits, out, error, window, between);
}

}  // namespace ponder
