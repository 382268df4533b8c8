// bench_limit: how `ponder bench`'s decode limit scores what it measures. Windows of 8 decode
// steps and windows of plain reads of the same bytes (every weight decode reads, read by
// cpu::read_spans, as the readings read their 512 MiB of them) alternate in one process, with a
// reading of the bandwidth before each window and after the last, as `ponder bench` takes them.
// Each window's GB/s (bytes read over its time) is divided by the reading that stands for its
// minutes: the mean of the two around it (what `ponder bench` uses, window_bandwidth in
// engine/bench_run.h) and the higher of the two (its choice before). A limit that is right
// scores the plain reads at 1.00: they are the reading's own loop over the same memory.
//
//   bench_limit --model M.gguf [-w WINDOWS (40)] [-t THREADS (all)]
//
// Prints, for each kind of window, the median ratio against each reading over all windows and
// over the faster and slower half of the minutes (windows whose two readings average above or
// below the median of those averages).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "bench/cpu/decode_windows.h"
#include "engine/bench_run.h"
#include "engine/cpu/bandwidth.h"
#include "engine/cpu/thread_pool.h"
#include "engine/model.h"
#include "engine/quant.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct Window {
  double gb_per_s, before, after;
};

void report(const char* kind, const std::vector<Window>& windows, double split) {
  std::vector<double> mean_all, higher_all, mean_fast, higher_fast, mean_slow, higher_slow;
  for (const Window& w : windows) {
    const double mean = 0.5 * (w.before + w.after), higher = std::max(w.before, w.after);
    mean_all.push_back(w.gb_per_s / mean);
    higher_all.push_back(w.gb_per_s / higher);
    (mean > split ? mean_fast : mean_slow).push_back(w.gb_per_s / mean);
    (mean > split ? higher_fast : higher_slow).push_back(w.gb_per_s / higher);
  }
  std::printf("| %s | %.3f | %.3f | %zu: %.3f | %.3f | %zu: %.3f | %.3f |\n", kind, median(mean_all),
              median(higher_all), mean_fast.size(), median(mean_fast), median(higher_fast), mean_slow.size(),
              median(mean_slow), median(higher_slow));
}

}  // namespace

int main(int argc, char** argv) {
  using ponder::bench::DecodeWindows;
  DecodeWindows d;
  if (!d.open(argc, argv, "bench_limit")) return 1;
  const ponder::Model& model = d.model();
  ponder::cpu::ThreadPool read_pool(d.options().threads);
  const std::vector<ponder::cpu::ReadSpan> readings_spans = ponder::decode_read_spans(model, std::size_t{512} << 20);
  const std::vector<ponder::cpu::ReadSpan> all_spans = ponder::decode_read_spans(model, ~std::size_t{0});
  if (readings_spans.empty()) {
    std::fprintf(stderr, "bench_limit: decode reads under 256 MiB of this model; ponder bench reads no limit beside it\n");
    return 1;
  }
  auto reading = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // as ponder bench: the backend's threads stop spinning
    return ponder::cpu::read_spans(read_pool, readings_spans.data(), readings_spans.size());
  };
  double span_bytes = 0;
  for (const auto& s : all_spans) span_bytes += static_cast<double>(s.bytes / 128 * 128);
  // A decode step's bytes as ponder bench counts them: the weights, and K and V rows of every
  // position so far (positions kPrompt .. kPrompt + kSteps - 1 here).
  constexpr int kSteps = DecodeWindows::kSteps, kPrompt = DecodeWindows::kPrompt;
  const ponder::ModelConfig& c = model.config();
  const double kv_row = static_cast<double>(
      ponder::row_bytes(ponder::kv_ggml_type(d.options().kv), std::size_t{c.n_head_kv} * c.head_dim));
  const double step_bytes = static_cast<double>(model.decode_weight_bytes()) +
                            2.0 * c.n_layer * kv_row * (kPrompt + (kSteps + 1) / 2.0);
  const long windows = d.windows();
  std::vector<Window> decode, reads;
  std::vector<double> means;
  double before = reading();
  for (long w = 0; w < windows; ++w) {
    // A decode window, then a window of plain reads about as long (the weights read as many
    // times as the window decoded steps).
    double dt = d.window();
    if (dt < 0) return 1;
    double after = reading();
    decode.push_back({kSteps * step_bytes / dt / 1e9, before, after});
    means.push_back(0.5 * (before + after));
    before = after;
    const auto t0 = Clock::now();
    for (int s = 0; s < kSteps; ++s) ponder::cpu::read_spans(read_pool, all_spans.data(), all_spans.size());
    dt = std::chrono::duration<double>(Clock::now() - t0).count();
    after = reading();
    reads.push_back({kSteps * span_bytes / dt / 1e9, before, after});
    means.push_back(0.5 * (before + after));
    before = after;
  }
  const double split = median(means);
  std::printf("%ld windows of each kind, %u threads; readings: 512 MiB of the weights decode reads; faster half: "
              "readings averaging above %.1f GB/s\n\n",
              windows, read_pool.size(), split);
  std::printf("| windows | ÷ mean | ÷ higher | faster: n, ÷ mean | ÷ higher | slower: n, ÷ mean | ÷ higher |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  report("plain reads of the decode's bytes", reads, split);
  report("decode steps", decode, split);
  return 0;
}
