// bench_cpu: prefill and decode tokens/s of a GGUF model on the CPU backend, the measurement of
// `ponder bench` (engine/bench_run.h) without the CLI, so that engine-only builds (the GPU
// machines, whose host CPUs have AVX-512 and AMX) can run it: bench/gpu-check.sh times the
// R1-Distill-Qwen-1.5B shape there on each kernel path (PONDER_CPU_ISA caps the path).
//
//   bench_cpu --model M.gguf [-p 512] [-n 16] [-t THREADS]
//
// Prints one line: path, type, threads, pp, tg (from an empty cache, as llama-bench's tg) and
// tg@d (the same steps after the prompt) tokens/s.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/bench_run.h"
#include "engine/cpu/matmul.h"
#include "engine/model.h"

int main(int argc, char** argv) {
  std::string path;
  long p = 512, n = 16, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--model") == 0 && has_value) path = argv[++i];
    else if (std::strcmp(argv[i], "-p") == 0 && has_value) p = std::atol(argv[++i]);
    else if (std::strcmp(argv[i], "-n") == 0 && has_value) n = std::atol(argv[++i]);
    else if (std::strcmp(argv[i], "-t") == 0 && has_value) threads = std::atol(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_cpu --model M.gguf [-p 512] [-n 16] [-t THREADS]\n");
      return 2;
    }
  }
  if (path.empty() || p < 1 || n < 0 || threads < 0) {
    std::fprintf(stderr, "usage: bench_cpu --model M.gguf [-p 512] [-n 16] [-t THREADS]\n");
    return 2;
  }
  std::string error;
  auto model = ponder::Model::open(path, &error);
  if (!model) {
    std::fprintf(stderr, "bench_cpu: %s\n", error.c_str());
    return 1;
  }
  ponder::BackendOptions opt;
  opt.context = static_cast<std::uint32_t>(p + n);
  opt.threads = static_cast<unsigned>(threads);
  auto backend = ponder::make_cpu_backend(*model, opt, &error);
  if (!backend) {
    std::fprintf(stderr, "bench_cpu: %s\n", error.c_str());
    return 1;
  }
  const std::uint32_t real = model->tokens().n_tokens;
  const std::vector<std::int32_t> prompt = ponder::bench_tokens(static_cast<std::size_t>(p), real, 0);
  ponder::BenchTimes depth, empty;
  if (!ponder::time_prefill_decode(*backend, prompt, static_cast<std::size_t>(n), model->config().n_vocab, real, &depth,
                                   &error) ||
      !ponder::time_decode(*backend, prompt.front(), static_cast<std::size_t>(n), model->config().n_vocab, real, &empty,
                           &error)) {
    std::fprintf(stderr, "bench_cpu: %s\n", error.c_str());
    return 1;
  }
  const unsigned used = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  auto rate = [&](const ponder::BenchTimes& t) { return n > 0 ? static_cast<double>(n) / t.decode_s : 0.0; };
  std::printf("cpu %-8s %-7s threads %u  pp%ld %8.2f t/s  tg%ld %7.2f t/s  tg%ld@d%ld %7.2f t/s\n",
              ponder::cpu::isa_name(ponder::cpu::active_isa()), model->file_type().c_str(), used, p,
              static_cast<double>(p) / depth.prefill_s, n, rate(empty), n, p, rate(depth));
  return 0;
}
