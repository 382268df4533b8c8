// bench_decode_split: decode steps with products split the default way (guided: the threads
// take the remaining rows / threads at a time from a counter per product) against one contiguous
// share of rows per thread (the split before), in alternating windows of 8 steps in one process,
// so that both see the same minutes of a machine whose memory bandwidth moves from minute to
// minute (the 2-core VM of bench/RESULTS.md: 34-62 GB/s). Prints each split's mean tokens/s and
// in how many windows the default was the faster of the pair.
//
//   bench_decode_split --model M.gguf [-w WINDOWS (40)] [-t THREADS (all)]
#include <cstdio>
#include <vector>

#include "bench/cpu/decode_windows.h"
#include "engine/cpu/matmul_internal.h"

int main(int argc, char** argv) {
  using ponder::bench::DecodeWindows;
  DecodeWindows d;
  if (!d.open(argc, argv, "bench_decode_split")) return 1;
  const long windows = d.windows();
  // rate[0]: guided (the default), rate[1]: shares; window w of each side by side.
  std::vector<double> rate[2];
  double seconds[2] = {0, 0};
  for (long w = 0; w < windows; ++w)
    for (int split = 0; split < 2; ++split) {
      ponder::cpu::detail::set_decode_split(split == 1 ? ponder::cpu::detail::DecodeSplit::shares
                                                       : ponder::cpu::detail::DecodeSplit::guided);
      const double dt = d.window();
      if (dt < 0) return 1;
      seconds[split] += dt;
      rate[split].push_back(DecodeWindows::kSteps / dt);
    }
  ponder::cpu::detail::set_decode_split(ponder::cpu::detail::DecodeSplit::guided);
  long wins = 0;
  for (long w = 0; w < windows; ++w) wins += rate[0][w] > rate[1][w];
  std::printf("decode t/s, mean of %ld windows of %d steps: guided %.2f, shares %.2f (%+.1f%%); guided faster in "
              "%ld of %ld\n",
              windows, DecodeWindows::kSteps, windows * DecodeWindows::kSteps / seconds[0],
              windows * DecodeWindows::kSteps / seconds[1], 100.0 * (seconds[1] / seconds[0] - 1.0), wins, windows);
  return 0;
}
