// bench_decode_split: decode steps with products split the default way (guided: the threads
// take the remaining rows / threads at a time from a counter per product) against one contiguous
// share of rows per thread (the split before), in alternating windows of 8 steps in one process,
// so that both see the same minutes of a machine whose memory bandwidth moves from minute to
// minute (the 2-core VM of bench/RESULTS.md: 34-62 GB/s). Prints each split's mean tokens/s and
// in how many windows the default was the faster of the pair.
//
//   bench_decode_split --model M.gguf [-w WINDOWS (40)] [-t THREADS (all)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/bench_run.h"
#include "engine/cpu/matmul_internal.h"
#include "engine/model.h"

int main(int argc, char** argv) {
  std::string path;
  long windows = 40, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--model") == 0 && has_value) path = argv[++i];
    else if (std::strcmp(argv[i], "-w") == 0 && has_value) windows = std::atol(argv[++i]);
    else if (std::strcmp(argv[i], "-t") == 0 && has_value) threads = std::atol(argv[++i]);
    else path.clear(), i = argc;
  }
  if (path.empty() || windows < 1 || threads < 0) {
    std::fprintf(stderr, "usage: bench_decode_split --model M.gguf [-w WINDOWS] [-t THREADS]\n");
    return 2;
  }
  std::string error;
  auto model = ponder::Model::open(path, &error);
  if (!model) {
    std::fprintf(stderr, "bench_decode_split: %s\n", error.c_str());
    return 1;
  }
  constexpr int kSteps = 8, kPrompt = 16;
  ponder::BackendOptions opt;
  opt.context = kPrompt + kSteps;
  opt.threads = static_cast<unsigned>(threads);
  auto backend = ponder::make_cpu_backend(*model, opt, &error);
  if (!backend) {
    std::fprintf(stderr, "bench_decode_split: %s\n", error.c_str());
    return 1;
  }
  const std::uint32_t real = model->tokens().n_tokens;
  std::vector<float> logits(model->config().n_vocab);
  const std::vector<std::int32_t> prompt = ponder::bench_tokens(kPrompt, real, 0);
  if (!backend->eval(prompt.data(), prompt.size(), logits.data(), 1, &error)) {
    std::fprintf(stderr, "bench_decode_split: %s\n", error.c_str());
    return 1;
  }
  // rate[0]: guided (the default), rate[1]: shares; window w of each side by side.
  std::vector<double> rate[2];
  double seconds[2] = {0, 0};
  for (long w = 0; w < windows; ++w)
    for (int split = 0; split < 2; ++split) {
      ponder::cpu::detail::set_decode_split(split == 1 ? ponder::cpu::detail::DecodeSplit::shares
                                                       : ponder::cpu::detail::DecodeSplit::guided);
      backend->truncate(kPrompt);
      std::int32_t id = prompt.back();
      const auto t0 = std::chrono::steady_clock::now();
      for (int s = 0; s < kSteps; ++s) {
        if (!backend->eval(&id, 1, logits.data(), 1, &error)) {
          std::fprintf(stderr, "bench_decode_split: %s\n", error.c_str());
          return 1;
        }
        id = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.begin() + real) - logits.begin());
      }
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      seconds[split] += dt;
      rate[split].push_back(kSteps / dt);
    }
  ponder::cpu::detail::set_decode_split(ponder::cpu::detail::DecodeSplit::guided);
  long wins = 0;
  for (long w = 0; w < windows; ++w) wins += rate[0][w] > rate[1][w];
  std::printf("decode t/s, mean of %ld windows of %d steps: guided %.2f, shares %.2f (%+.1f%%); guided faster in "
              "%ld of %ld\n",
              windows, kSteps, windows * kSteps / seconds[0], windows * kSteps / seconds[1],
              100.0 * (seconds[1] / seconds[0] - 1.0), wins, windows);
  return 0;
}
