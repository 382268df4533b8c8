#include "engine/cpu/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/cpu/matmul_internal.h"

namespace ponder::cpu {
namespace detail {
namespace {

// The portable path: each weight row widened to float by the reference dequantizer, then float
// dot products with 8 partial sums combined in a fixed order.
float dot_portable(const float* w, const float* x, std::size_t K) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t k = 0;
  for (; k + 8 <= K; k += 8)
    for (int l = 0; l < 8; ++l) s[l] += w[k + l] * x[k + l];
  for (int l = 0; k < K; ++k, ++l) s[l] += w[k] * x[k];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void block_portable(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0,
                    std::size_t t1) {
  thread_local std::vector<float> row;
  if (row.size() < a.K) row.resize(a.K);
  for (std::size_t n = n0; n < n1; ++n) {
    const unsigned char* wr = a.w + n * a.w_row_bytes;
    const float* wf;
    if (a.type == GgmlType::f32) {
      wf = reinterpret_cast<const float*>(wr);
    } else {
      dequantize(a.type, wr, row.data(), a.K, nullptr);
      wf = row.data();
    }
    for (std::size_t t = t0; t < t1; ++t) a.y[t * a.N + n] = dot_portable(wf, a.x + t * a.K, a.K);
  }
}

bool is_q8x32_type(GgmlType t) { return t == GgmlType::q8_0 || t == GgmlType::q4_0; }
bool is_q8x256_type(GgmlType t) {
  return t == GgmlType::q4_k || t == GgmlType::q5_k || t == GgmlType::q6_k;
}

[[noreturn]] void fail(const char* what, const Weight& w) {
  std::fprintf(stderr, "ponder::cpu::matmul: %s (weight %.*s, type %u, %llu x %llu)\n", what,
               static_cast<int>(w.source.size()), w.source.data(), static_cast<unsigned>(w.type),
               static_cast<unsigned long long>(w.rows()), static_cast<unsigned long long>(w.ne[0]));
  std::abort();
}

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
      return Isa::avx512;
    return Isa::avx2;
  }
#endif
  return Isa::portable;
}

std::atomic<int> g_forced{-1};

}  // namespace
}  // namespace detail

Isa detect_isa() {
  static const Isa isa = detail::detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::portable: return "portable";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

void force_isa(Isa isa) {
  const Isa best = detect_isa();
  detail::g_forced.store(static_cast<int>(std::min(isa, best)), std::memory_order_relaxed);
}

Isa active_isa() {
  const int forced = detail::g_forced.load(std::memory_order_relaxed);
  return forced < 0 ? detect_isa() : static_cast<Isa>(forced);
}

// Every type the reference dequantizer reads has a kernel (the portable path is built on it).
bool matmul_supports(GgmlType type) { return can_dequantize(type); }

void matmul(const Weight& w, const float* x, std::size_t T, float* y, ThreadPool* pool) {
  using namespace detail;
  if (!matmul_supports(w.type)) fail("unsupported weight type", w);
  const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(w.type));
  const std::size_t K = w.ne[0], N = w.rows();
  if (K == 0 || K % info->block_elements != 0) fail("rows are not whole blocks", w);
  if (T == 0 || N == 0) return;

  MatmulArgs a{};
  a.type = w.type;
  a.w = w.data;
  a.w_row_bytes = row_bytes(w.type, K);
  a.K = K;
  a.N = N;
  a.T = T;
  a.x = x;
  a.y = y;

  const Isa isa = active_isa();
#if defined(__x86_64__)
  const BlockKernel kernel = isa == Isa::portable ? block_portable : block_avx2;
#else
  const BlockKernel kernel = block_portable;
#endif
  const unsigned threads = pool ? pool->size() : 1;

  // Quantized activations: once per call, in a buffer that grows and is kept (per calling thread).
  std::size_t x_row_bytes = K * sizeof(float);  // what one activation row takes in the kernel
#if defined(__x86_64__)
  if (isa != Isa::portable && (is_q8x32_type(w.type) || is_q8x256_type(w.type))) {
    thread_local std::vector<unsigned char> xq;
    const bool small = is_q8x32_type(w.type);
    a.xq_row_bytes = small ? K / 32 * sizeof(BlockQ8x32) : K / 256 * sizeof(BlockQ8x256);
    if (xq.size() < T * a.xq_row_bytes) xq.resize(T * a.xq_row_bytes);
    unsigned char* base = xq.data();
    auto quantize_row = [&](std::size_t t, unsigned) {
      if (small)
        quantize_row_q8x32(x + t * K, K, reinterpret_cast<BlockQ8x32*>(base + t * a.xq_row_bytes));
      else
        quantize_row_q8x256(x + t * K, K, reinterpret_cast<BlockQ8x256*>(base + t * a.xq_row_bytes));
    };
    if (pool && T >= 8)
      pool->parallel_for(T, quantize_row);
    else
      for (std::size_t t = 0; t < T; ++t) quantize_row(t, 0);
    a.xq = base;
    x_row_bytes = a.xq_row_bytes;
  }
#endif

  // Work split. Every output is computed the same way wherever it lands, so these sizes only
  // decide speed. Decode: runs of rows of about 128 KiB of weights, at least 4 runs per thread
  // (longer runs are longer sequential streams: 128 KiB read ~10% faster than 32 KiB on two
  // threads here, the read test itself 25-27 GB/s on 32 KiB runs and 29-31 on 1 MiB ones).
  // Prefill: tiles of (rows x activation rows), the activation rows of a tile kept in L2
  // (about 128 KiB) while each weight row of the tile is read once and used for all of them.
  std::size_t rows_per_task, t_per_task;
  if (T == 1) {
    t_per_task = 1;
    rows_per_task = std::max<std::size_t>(1, (128u << 10) / a.w_row_bytes);
  } else {
    t_per_task = std::clamp<std::size_t>((128u << 10) / x_row_bytes, 4, 64) & ~std::size_t{3};
    t_per_task = std::min(t_per_task, T);
    rows_per_task = 32;
  }
  const std::size_t t_tasks = (T + t_per_task - 1) / t_per_task;
  const std::size_t want_row_tasks = (4 * threads + t_tasks - 1) / t_tasks;
  rows_per_task = std::min(rows_per_task, (N + want_row_tasks - 1) / want_row_tasks);
  if (rows_per_task > 4) rows_per_task &= ~std::size_t{3};
  rows_per_task = std::max<std::size_t>(rows_per_task, 1);
  const std::size_t row_tasks = (N + rows_per_task - 1) / rows_per_task;

  auto task = [&](std::size_t i, unsigned) {
    const std::size_t rt = i % row_tasks, tt = i / row_tasks;
    const std::size_t n0 = rt * rows_per_task, t0 = tt * t_per_task;
    kernel(a, n0, std::min(N, n0 + rows_per_task), t0, std::min(T, t0 + t_per_task));
  };
  if (pool)
    pool->parallel_for(row_tasks * t_tasks, task);
  else
    for (std::size_t i = 0; i < row_tasks * t_tasks; ++i) task(i, 0);
}

}  // namespace ponder::cpu
