// bench_decode_split: decode steps with products split the default way (guided: the threads
// take the remaining rows / threads at a time from a counter per product) against one contiguous
// share of rows per thread (the split before), in alternating windows of 8 steps in one process,
// so that both see the same minutes of a machine whose memory bandwidth moves from minute to
// minute (the 2-core VM of bench/RESULTS.md: 34-62 GB/s). Prints each split's mean tokens/s and
// in how many windows the default was the faster of the pair.
//
// With --l1 KIB, the same windows compare the decode's L1 budget instead (decode_l1_bytes(),
// which decides how many long rows the kernels read side by side): this CPU's default against
// KIB KiB, both with the guided split. With --prefetch LEVEL, decode's software prefetch
// (stream_prefetch()): this CPU's default against LEVEL (0 none, 1 into L1, 2 into L1 and L2).
//
//   bench_decode_split --model M.gguf [-w WINDOWS (40)] [-t THREADS (all)] [--l1 KIB | --prefetch LEVEL]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/cpu/decode_windows.h"
#include "engine/cpu/matmul.h"
#include "engine/cpu/matmul_internal.h"

int main(int argc, char** argv) {
  using ponder::bench::DecodeWindows;
  // --l1 KIB, --prefetch LEVEL (taken out of the arguments before DecodeWindows reads them).
  std::size_t l1_other = 0;
  int prefetch_other = -1;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--l1") == 0 && i + 1 < argc) {
      const long kib = std::atol(argv[++i]);
      if (kib <= 0) {
        std::fprintf(stderr, "bench_decode_split: --l1 takes a size in KiB\n");
        return 2;
      }
      l1_other = static_cast<std::size_t>(kib) << 10;
    } else if (std::strcmp(argv[i], "--prefetch") == 0 && i + 1 < argc) {
      const char* level = argv[++i];
      prefetch_other = level[0] - '0';
      if (prefetch_other < 0 || prefetch_other > 2 || level[1] != 0) {
        std::fprintf(stderr, "bench_decode_split: --prefetch takes 0 (none), 1 (into L1) or 2 (into L1 and L2)\n");
        return 2;
      }
    } else {
      args.push_back(argv[i]);
    }
  }
  if (l1_other > 0 && prefetch_other >= 0) {
    std::fprintf(stderr, "bench_decode_split: --l1 or --prefetch, not both\n");
    return 2;
  }
  DecodeWindows d;
  if (!d.open(static_cast<int>(args.size()), args.data(), "bench_decode_split")) return 1;
  const std::size_t l1_default = ponder::cpu::detail::decode_l1_bytes();
  const int prefetch_default = static_cast<int>(ponder::cpu::stream_prefetch());
  const long windows = d.windows();
  // rate[0]: guided (the default), rate[1]: shares; window w of each side by side.
  std::vector<double> rate[2];
  double seconds[2] = {0, 0};
  for (long w = 0; w < windows; ++w)
    for (int split = 0; split < 2; ++split) {
      if (l1_other > 0)
        ponder::cpu::detail::set_decode_l1_bytes(split == 1 ? l1_other : 0);
      else if (prefetch_other >= 0)
        ponder::cpu::detail::set_stream_prefetch(split == 1 ? prefetch_other : -1);
      else
        ponder::cpu::detail::set_decode_split(split == 1 ? ponder::cpu::detail::DecodeSplit::shares
                                                         : ponder::cpu::detail::DecodeSplit::guided);
      const double dt = d.window();
      if (dt < 0) return 1;
      seconds[split] += dt;
      rate[split].push_back(DecodeWindows::kSteps / dt);
    }
  ponder::cpu::detail::set_decode_split(ponder::cpu::detail::DecodeSplit::guided);
  ponder::cpu::detail::set_decode_l1_bytes(0);
  ponder::cpu::detail::set_stream_prefetch(-1);
  long wins = 0;
  for (long w = 0; w < windows; ++w) wins += rate[0][w] > rate[1][w];
  if (l1_other > 0) {
    std::printf("decode t/s, mean of %ld windows of %d steps: L1 budget %zu KiB (this CPU's) %.2f, %zu KiB %.2f "
                "(%+.1f%%); the default faster in %ld of %ld\n",
                windows, DecodeWindows::kSteps, l1_default >> 10, windows * DecodeWindows::kSteps / seconds[0],
                l1_other >> 10, windows * DecodeWindows::kSteps / seconds[1],
                100.0 * (seconds[1] / seconds[0] - 1.0), wins, windows);
    return 0;
  }
  if (prefetch_other >= 0) {
    static const char* const kLevel[] = {"none", "into L1", "into L1 and L2"};
    std::printf("decode t/s, mean of %ld windows of %d steps: prefetch %s (this CPU's) %.2f, %s %.2f (%+.1f%%); "
                "the default faster in %ld of %ld\n",
                windows, DecodeWindows::kSteps, kLevel[prefetch_default], windows * DecodeWindows::kSteps / seconds[0],
                kLevel[prefetch_other], windows * DecodeWindows::kSteps / seconds[1],
                100.0 * (seconds[1] / seconds[0] - 1.0), wins, windows);
    return 0;
  }
  std::printf("decode t/s, mean of %ld windows of %d steps: guided %.2f, shares %.2f (%+.1f%%); guided faster in "
              "%ld of %ld\n",
              windows, DecodeWindows::kSteps, windows * DecodeWindows::kSteps / seconds[0],
              windows * DecodeWindows::kSteps / seconds[1], 100.0 * (seconds[1] / seconds[0] - 1.0), wins, windows);
  return 0;
}
