// bench_attention: the CPU attention of one prefill chunk, the R1-Distill-Qwen-1.5B shape (12
// query heads, 2 KV heads, heads of 128): T new queries after `first` cached positions, random
// values, an F16 (or Q8_0) cache. Prints the best of 5 calls and GFLOP/s (4 H D flops per query
// and key it sees: the scores and the weighted values). `--layers L`: L layers' caches, each call
// one layer after the other, as a forward pass makes them (28 layers of 8,192 positions are 470 MB,
// read from memory rather than from the last-level cache); for decode (-T 1) also the GB/s at
// which the cache is read. The caches are allocated as the CPU backend allocates its KV cache (a
// PageBuffer: 2 MiB pages where the kernel allows), or with `--pages small` in a std::vector
// (4 KiB pages where transparent huge pages are "madvise" or "never").
//
//   bench_attention [--first 3584] [-T 512] [-t THREADS (all)] [--kv f16|q8_0] [--layers 1]
//                   [--pages huge|small]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/attention.h"
#include "engine/cpu/matmul.h"
#include "engine/mapped_file.h"
#include "engine/quant.h"

int main(int argc, char** argv) {
  long first = 3584, T = 512, threads = 0, layers = 1;
  bool huge = true;
  ponder::GgmlType kv = ponder::GgmlType::f16;
  bool ok = true;
  for (int i = 1; i < argc && ok; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--first") == 0 && has_value) first = std::atol(argv[++i]);
    else if (std::strcmp(argv[i], "-T") == 0 && has_value) T = std::atol(argv[++i]);
    else if (std::strcmp(argv[i], "-t") == 0 && has_value) threads = std::atol(argv[++i]);
    else if (std::strcmp(argv[i], "--layers") == 0 && has_value) layers = std::atol(argv[++i]);
    else if (std::strcmp(argv[i], "--pages") == 0 && has_value) {
      const std::string v = argv[++i];
      ok &= v == "huge" || v == "small";
      huge = v == "huge";
    }
    else if (std::strcmp(argv[i], "--kv") == 0 && has_value) {
      const std::string v = argv[++i];
      ok = v == "f16" || v == "q8_0";
      kv = v == "q8_0" ? ponder::GgmlType::q8_0 : ponder::GgmlType::f16;
    } else {
      ok = false;
    }
  }
  if (!ok || first < 0 || T < 1 || threads < 0 || layers < 1) {
    std::fprintf(stderr, "usage: bench_attention [--first 3584] [-T 512] [-t THREADS] [--kv f16|q8_0] [--layers 1] "
                 "[--pages huge|small]\n");
    return 2;
  }
  constexpr std::uint32_t H = 12, Hkv = 2, D = 128;
  const std::size_t positions = static_cast<std::size_t>(first + T), rb = ponder::row_bytes(kv, Hkv * D);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> src(positions * Hkv * D), q(static_cast<std::size_t>(T) * H * D), out(q.size());
  // Layer l's K and V caches at l * 2 * cache_bytes and after it.
  const std::size_t cache_bytes = positions * rb;
  const std::size_t all_bytes = static_cast<std::size_t>(layers) * 2 * cache_bytes;
  std::vector<unsigned char> small;
  ponder::PageBuffer pages;
  unsigned char* caches = nullptr;
  if (huge) {
    pages = ponder::PageBuffer(all_bytes);
    caches = pages.data();
  } else {
    small.resize(all_bytes);
    caches = small.data();
  }
  if (!caches) {
    std::fprintf(stderr, "bench_attention: no memory for %zu bytes of caches\n", all_bytes);
    return 1;
  }
  std::string error;
  for (std::size_t c = 0; c < static_cast<std::size_t>(layers) * 2; ++c) {
    for (float& f : src) f = normal(rng);
    if (!ponder::quantize(kv, src.data(), caches + c * cache_bytes, src.size(), &error)) {
      std::fprintf(stderr, "bench_attention: %s\n", error.c_str());
      return 1;
    }
  }
  for (float& f : q) f = normal(rng);
  ponder::cpu::AttentionArgs a{.q = q.data(),
                               .out = out.data(),
                               .row_bytes = rb,
                               .kv_type = kv,
                               .n_head = H,
                               .n_head_kv = Hkv,
                               .head_dim = D,
                               .first_pos = static_cast<std::uint32_t>(first),
                               .T = static_cast<std::size_t>(T)};
  ponder::cpu::ThreadPool pool(static_cast<unsigned>(threads));
  std::vector<float> workspace;
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long l = 0; l < layers; ++l) {
      a.k = caches + static_cast<std::size_t>(l) * 2 * cache_bytes;
      a.v = a.k + cache_bytes;
      ponder::cpu::attention(a, &pool, &workspace);
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / layers);
  }
  double flops = 0;
  for (long t = 0; t < T; ++t) flops += 4.0 * H * D * static_cast<double>(first + t + 1);
  std::printf("attention %s, %s cache in %s pages, %u threads, %ld queries after %ld, %ld layer%s: %.3f ms a layer, %.1f GFLOP/s",
              ponder::cpu::isa_name(ponder::cpu::active_isa()), kv == ponder::GgmlType::f16 ? "F16" : "Q8_0",
              huge ? "huge" : "small",
              pool.size(), T, first, layers, layers == 1 ? "" : "s", best * 1e3, flops / best / 1e9);
  if (layers > 1 && T == 1) std::printf(", cache read at %.1f GB/s", 2.0 * cache_bytes / best / 1e9);
  std::printf("\n");
  return 0;
}
