#include "engine/bench_run.h"

#include <algorithm>
#include <chrono>

#include "engine/model.h"

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

std::vector<cpu::ReadSpan> decode_read_spans(const Model& model, std::size_t budget) {
  std::vector<cpu::ReadSpan> all;
  const Weight& embd = model.weights().tok_embd;
  for (const auto& [name, w] : model.named_weights())
    if (w->present() && w != &embd) all.push_back({w->data, static_cast<std::size_t>(w->bytes)});
  std::sort(all.begin(), all.end(), [](const cpu::ReadSpan& a, const cpu::ReadSpan& b) { return a.data < b.data; });
  std::vector<cpu::ReadSpan> spans;
  std::size_t total = 0;
  for (const cpu::ReadSpan& s : all) {
    if (total >= budget) break;
    const std::size_t take = std::min(s.bytes, budget - total);
    if (!spans.empty() && spans.back().data + spans.back().bytes == s.data) spans.back().bytes += take;
    else spans.push_back({s.data, take});
    total += take;
  }
  if (total < (std::size_t{256} << 20)) spans.clear();
  return spans;
}

double window_bandwidth(const std::vector<double>& window_s, const std::vector<double>& readings, WindowReading how) {
  if (window_s.empty() || readings.size() != window_s.size() + 1) return 0;  // one before each, one after the last
  double weighted = 0, seconds = 0;
  for (std::size_t w = 0; w < window_s.size(); ++w) {
    const double r = how == WindowReading::mean ? 0.5 * (readings[w] + readings[w + 1])
                                                : std::max(readings[w], readings[w + 1]);
    weighted += window_s[w] * r;
    seconds += window_s[w];
  }
  return seconds > 0 ? weighted / seconds : 0;
}

}  // namespace ponder
