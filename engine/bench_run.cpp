#include "engine/bench_run.h"

#include <algorithm>
#include <chrono>

namespace ponder {

std::vector<std::int32_t> bench_tokens(std::size_t n, std::uint32_t real, std::size_t salt) {
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>((i * 7919 + 13 + salt * 104729) % real);
  return ids;
}

bool time_prefill_decode(Backend& backend, const std::vector<std::int32_t>& prompt, std::size_t n,
                         std::uint32_t n_vocab, std::uint32_t real, BenchTimes* out, std::string* error) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::vector<float> logits(n_vocab);
  if (prompt.empty() || !backend.eval(prompt.data(), 1, logits.data(), 1, error)) return false;
  backend.truncate(0);
  auto t0 = Clock::now();
  if (!backend.eval(prompt.data(), prompt.size(), logits.data(), 1, error)) return false;
  out->prefill_s = since(t0);
  t0 = Clock::now();
  std::int32_t id = prompt.back();
  for (std::size_t i = 0; i < n; ++i) {
    if (!backend.eval(&id, 1, logits.data(), 1, error)) return false;
    id = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.begin() + real) - logits.begin());
  }
  out->decode_s = since(t0);
  return true;
}

}  // namespace ponder
