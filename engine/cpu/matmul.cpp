#include "engine/cpu/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/attention.h"
#include "engine/cpu/attention_internal.h"
#include "engine/cpu/matmul_internal.h"
#include "engine/log.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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
bool is_float_type(GgmlType t) { return t == GgmlType::f32 || t == GgmlType::f16 || t == GgmlType::bf16; }
bool is_q8x256_type(GgmlType t) {
  return t == GgmlType::q4_k || t == GgmlType::q5_k || t == GgmlType::q6_k;
}

[[noreturn]] void fail(const char* what, const Weight& w) {
  std::fprintf(stderr, "ponder::cpu::matmul: %s (weight %.*s, type %u, %llu x %llu)\n", what,
               static_cast<int>(w.source.size()), w.source.data(), static_cast<unsigned>(w.type),
               static_cast<unsigned long long>(w.rows()), static_cast<unsigned long long>(w.ne[0]));
  std::abort();
}

// AMX tile data is off until the process asks Linux for it (once; then for every thread).
bool amx_permitted() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

// The best path the CPU has, up to `cap`; AMX's leave is asked for only when `cap` allows amx
// (once given, the process's signal frames grow).
Isa detect_cpu(Isa cap) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (cap < Isa::avx2) return Isa::portable;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    if (cap >= Isa::avx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni")) {
      if (cap >= Isa::amx && __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") &&
          amx_permitted())
        return Isa::amx;
      return Isa::avx512;
    }
    return Isa::avx2;
  }
#endif
  (void)cap;
  return Isa::portable;
}

// What the CPU has, capped by PONDER_CPU_ISA (portable, avx2, avx512 or amx) when it is set: a
// way around a kernel path without rebuilding. An unknown value is reported and ignored.
Isa detect() {
  const char* cap = std::getenv("PONDER_CPU_ISA");
  if (cap == nullptr || *cap == '\0') return detect_cpu(Isa::amx);
  for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512, Isa::amx})
    if (std::strcmp(cap, isa_name(isa)) == 0) return detect_cpu(isa);
  std::fprintf(stderr, "ponder: PONDER_CPU_ISA=%s is not one of portable, avx2, avx512, amx; ignored\n", cap);
  return detect_cpu(Isa::amx);
}

std::atomic<int> g_forced{-1};
// verify_kernels_once's cap on every later force_isa (-1: none).
std::atomic<int> g_capped{-1};
// Tests: the emulated kernels of the paths this CPU lacks (emulate_isa), by Isa.
std::atomic<BlockKernel> g_emulated[4] = {};
std::atomic<PackBf16> g_emulated_pack{nullptr};
std::atomic<AttentionTileFn> g_emulated_attention[4] = {};

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
    case Isa::amx: return "amx";
  }
  return "?";
}

namespace detail {

void emulate_isa(Isa isa, const EmulatedPath& path) {
  if (isa <= Isa::avx2 || detect_isa() < Isa::avx2 || isa <= detect_isa()) return;
  if (path.block == nullptr || path.attention == nullptr || (isa == Isa::amx && path.pack_bf16 == nullptr)) std::abort();
  const int i = static_cast<int>(isa);
  if (isa == Isa::amx) g_emulated_pack.store(path.pack_bf16, std::memory_order_relaxed);
  g_emulated_attention[i].store(path.attention, std::memory_order_relaxed);
  g_emulated[i].store(path.block, std::memory_order_relaxed);
}

// Every path up to the one returned runs here, natively or emulated.
Isa usable_isa() {
  Isa best = detect_isa();
  for (Isa isa : {Isa::avx512, Isa::amx}) {
    if (isa <= best) continue;
    if (best < Isa::avx2 || g_emulated[static_cast<int>(isa)].load(std::memory_order_relaxed) == nullptr) break;
    best = isa;
  }
  return best;
}

// The kernel of a path force_isa allowed: its own where the CPU has it, else the emulated one.
BlockKernel kernel_for(Isa isa) {
  switch (isa) {
    case Isa::portable: return block_portable;
#if defined(__x86_64__)
    case Isa::avx2: return block_avx2;
    case Isa::avx512:
    case Isa::amx: {
      if (detect_isa() >= isa) return isa == Isa::amx ? block_amx : block_avx512;
      const BlockKernel emulated = g_emulated[static_cast<int>(isa)].load(std::memory_order_relaxed);
      if (emulated == nullptr) std::abort();  // force_isa allows only usable paths
      return emulated;
    }
#else
    default: break;
#endif
  }
  return block_portable;
}

AttentionTileFn attention_kernel_for(Isa isa) {
#if defined(__x86_64__)
  if (isa <= Isa::avx2) return attention_tile_avx2;
  if (detect_isa() >= isa) return attention_tile_avx512;  // amx: avx512's
#endif
  const AttentionTileFn emulated = g_emulated_attention[static_cast<int>(isa)].load(std::memory_order_relaxed);
  if (emulated == nullptr) std::abort();  // force_isa allows only usable paths
  return emulated;
}

// The packer of the BF16 AMX activations of the amx path: native or emulated as its kernel.
PackBf16 packer_for_amx() {
#if defined(__x86_64__)
  if (detect_isa() >= Isa::amx) return pack_amx_bf16;
#endif
  const PackBf16 emulated = g_emulated_pack.load(std::memory_order_relaxed);
  if (emulated == nullptr) std::abort();  // only called on a usable amx path
  return emulated;
}

}  // namespace detail

void force_isa(Isa isa) {
  Isa best = detail::usable_isa();
  const int capped = detail::g_capped.load(std::memory_order_relaxed);
  if (capped >= 0) best = std::min(best, static_cast<Isa>(capped));
  detail::g_forced.store(static_cast<int>(std::min(isa, best)), std::memory_order_relaxed);
}

Isa active_isa() {
  const int forced = detail::g_forced.load(std::memory_order_relaxed);
  return forced < 0 ? detect_isa() : static_cast<Isa>(forced);
}

namespace {
std::atomic<int> g_stream_prefetch{-1};  // detail::set_stream_prefetch
}  // namespace

StreamPrefetch stream_prefetch() {
  const int forced = g_stream_prefetch.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<StreamPrefetch>(forced);
#if defined(__x86_64__)
  static const bool amd = __builtin_cpu_is("amd");
  return amd ? StreamPrefetch::none : StreamPrefetch::l1_l2;
#else
  return StreamPrefetch::none;
#endif
}

// Every type the reference dequantizer reads has a kernel (the portable path is built on it).
bool matmul_supports(GgmlType type) { return can_dequantize(type); }

namespace detail {
namespace {

// One product of a shared call: its kernel arguments and how its work is cut into tasks.
struct Job {
  MatmulArgs a;
  std::size_t rows_per_task, t_per_task, row_tasks, tasks;
};

// Work split. Every output is computed the same way wherever it lands, so these sizes only
// decide speed. Decode: the guided split (decode_guided), whose first takes are long runs of
// rows (longer runs are longer sequential streams: on two threads of an earlier session's VM,
// runs of 128 KiB read ~10% faster than 32 KiB, 256 KiB another 10-15% (medians of five runs),
// 512 KiB no more; the read test itself 25-27 GB/s on 32 KiB runs and 29-31 on 1 MiB ones).
// Prefill: tasks of (rows x activation rows), the kernels sweeping the task's weight rows over
// each few activation rows in turn (kernel_common.h). A task's activation rows: for the int8
// tiles of AVX2 up to ~448 KiB and 48 rows; the packed float prefill and the AVX-512 VNNI one
// have their own sizes below. A matrix's weights are read from memory once per task of
// activation rows: with 128 KiB, the K = 8960 products took 3 F16 rows (T / 3 passes over
// 27.5 MB); 448 KiB gives 12.
// (What fits a cache is not the model here: at K = 8960 the activation rows and a task's 32
// weight rows together exceed Zen 3's 512 KiB L2; fewer passes over DRAM is what was measured.)
// bench_matmul, 2 threads, T = 512, F16 at K = 8960: 104 -> 140 GFLOP/s; Q4_K 170-183 -> 190;
// Q8_0 113 -> 124; at K = 1536 (tasks of 48 rows, 42-64 before) within the noise.
std::atomic<DecodeSplit> g_decode_split{DecodeSplit::guided};  // set_decode_split

// Decode's guided split: the least a thread takes from a product at a time (whole runs of 4 rows
// of at least this many bytes): only the last takes of a product are this short.
constexpr std::size_t kDecodeMinTake = 128u << 10;
// ... and the most (whole runs of 4 rows of at most this many bytes, never below the least). A
// product's first takes were half its rows: one thread reading a few percent slower than the
// other then ended the output matrix (248 MB in the 1.5B shape's Q8_0) 190-320 µs after it,
// alone. In alternating windows of 8 decode steps on the 2-core Zen 4 VM's fast minutes (reads
// of ~63 GB/s), against no cap: 4 MiB +1.2% and +1.5% (Q8_0, 99 and 100 windows), +1.4% (F16,
// 60); 2, 3, 8 and 32 MiB +0.7 to +0.9%; Q4_K_M the same within the noise (-0.2%, 59).
constexpr std::size_t kDecodeMaxTake = 4u << 20;

// The activations the AVX-512 decode kernels take prepared (MatmulArgs::xgroups, xsupers): for
// Q8_0 / Q4_0 groups of 16 blocks, for Q4_K / Q5_K super-blocks by fours in register order.
enum class DecodePrep { none, groups_q8_0, groups_q4_0, supers };
DecodePrep decode_prep(Isa isa, GgmlType type, std::size_t T) {
  if (T != 1 || isa < Isa::avx512) return DecodePrep::none;
  switch (type) {
    case GgmlType::q8_0: return DecodePrep::groups_q8_0;
    case GgmlType::q4_0: return DecodePrep::groups_q4_0;
    case GgmlType::q4_k: case GgmlType::q5_k: return DecodePrep::supers;
    default: return DecodePrep::none;
  }
}

void split(Job& j, std::size_t x_row_bytes, unsigned threads, bool amx, bool packed, bool vnni, bool wide) {
  const std::size_t T = j.a.T, N = j.a.N;
  std::size_t rows_per_task, t_per_task;
  if (packed) {
    // The packed prefill (kernel_common.h): groups of 16 activation rows, weight rows 6 (AVX2)
    // or 12 (AVX-512) at a time, widened once per task and used for each of its tiles. Tasks of
    // 36 weight rows, fewer where that leaves fewer than 4 tasks per thread, and up to 48
    // activation rows on AVX2 (three groups); on AVX-512 up to 256 (8 tiles of 32), K in blocks
    // where that X outgrows half the L2 (packed_k_block). Against tasks of 64 to 128 rows, as
    // many as kept the task's X (all of K) in half the L2, each weight row is widened (and read
    // from memory) half as often: the F16 products of a pp512 layer of the 1.5B shape went
    // ~10% faster on a 2 MiB-L2 Xeon VM (paired passes, bench/RESULTS.md). 512 was no faster.
    t_per_task = std::min<std::size_t>(wide ? 256 : 48, (T + 15) / 16 * 16);
    const std::size_t t_tasks = (T + t_per_task - 1) / t_per_task;
    const std::size_t want_row_tasks = (4 * threads + t_tasks - 1) / t_tasks;
    const std::size_t group = wide ? 12 : 6;
    rows_per_task = std::clamp<std::size_t>((N + want_row_tasks - 1) / want_row_tasks / group * group, group, 36);
    j.rows_per_task = rows_per_task;
    j.t_per_task = t_per_task;
    j.row_tasks = (N + rows_per_task - 1) / rows_per_task;
    j.tasks = j.row_tasks * t_tasks;
    return;
  }
  if (amx) {
    // The BF16 AMX kernel's tiles: 16 weight rows x 16 activation rows; every task starts on a
    // tile (the rows past the last whole 16 go to the AVX-512 kernels inside the last task). It
    // works on two groups of 16 activation rows at a time, and re-reads its 16 weight rows for
    // each: its tasks take up to ~1 MiB of split activations (6 bytes a value), so that a
    // matrix's rows come from DRAM fewer times (T / 32 times with tasks of 32). Sizes chosen by
    // reasoning; not tuned on an AMX machine.
    t_per_task = std::clamp<std::size_t>((1u << 20) / (6 * j.a.K), 32, 128) / 32 * 32;
    const std::size_t t_tasks = (T + t_per_task - 1) / t_per_task;
    const std::size_t want_row_tasks = (4 * threads + t_tasks - 1) / t_tasks;
    rows_per_task = std::max<std::size_t>(16, std::min<std::size_t>(64, (N + want_row_tasks - 1) / want_row_tasks) / 16 * 16);
    j.rows_per_task = rows_per_task;
    j.t_per_task = t_per_task;
    j.row_tasks = (N + rows_per_task - 1) / rows_per_task;
    j.tasks = j.row_tasks * t_tasks;
    return;
  }
  if (T == 1) {
    // Decode: one task per thread, a contiguous share of the rows each (read in 1 to 8 streams by
    // the kernels). The default guided split (decode_guided) does not use these tasks; they are
    // the shares of DecodeSplit::shares and of a call without a pool. Against tasks of 256 KiB
    // of rows handed to whichever thread came free, shares made whole decode steps faster (1.5B
    // shape, 2 threads, alternating windows): Q8_0 +1.2 to +5%, F16 +1.8 to +4%, Q4_K_M +1.3 to
    // +2%; a decode step had ~6,000 tasks, each a shared counter's cache line moved between cores
    // and two streams started cold.
    t_per_task = 1;
    rows_per_task = (N + threads - 1) / threads;
  } else {
    // A whole number of the kernels' tiles: 3 activation rows for the float types, 4 for the
    // block types (matmul_avx2.cpp).
    const std::size_t tile = is_q8x32_type(j.a.type) || is_q8x256_type(j.a.type) ? 4 : 3;
    t_per_task = std::clamp<std::size_t>((448u << 10) / x_row_bytes, tile, 48) / tile * tile;
    // The AVX-512 prefill of Q8_0, Q4_0 and the K-quants repacks its task's weight rows first:
    // more activation rows per task (up to 4 MiB of them, 516: a 512-token chunk in one task)
    // share that work; whole tiles of kVnniRows.
    if (vnni)
      t_per_task = std::clamp<std::size_t>((4u << 20) / x_row_bytes, kVnniRows, 516) / kVnniRows * kVnniRows;
    t_per_task = std::min(t_per_task, T);
    rows_per_task = 32;
  }
  if (vnni) {
    // The VNNI kernels pack and multiply whole groups of 16 weight rows: tasks of 16 or 32 rows;
    // where that leaves fewer than 4 tasks per thread, fewer activation rows per task instead.
    rows_per_task = N >= 32 * 4 * threads ? 32 : 16;
    const std::size_t row_tasks = (N + rows_per_task - 1) / rows_per_task;
    const std::size_t want_t_tasks = (4 * threads + row_tasks - 1) / row_tasks;
    const std::size_t even = (T + want_t_tasks - 1) / want_t_tasks;  // rounded up to whole tiles
    t_per_task = std::max(kVnniRows, std::min(t_per_task, (even + kVnniRows - 1) / kVnniRows * kVnniRows));
    j.rows_per_task = rows_per_task;
    j.t_per_task = t_per_task;
    j.row_tasks = row_tasks;
    j.tasks = row_tasks * ((T + t_per_task - 1) / t_per_task);
    return;
  }
  const std::size_t t_tasks = (T + t_per_task - 1) / t_per_task;
  const std::size_t want_row_tasks = (4 * threads + t_tasks - 1) / t_tasks;
  rows_per_task = std::min(rows_per_task, (N + want_row_tasks - 1) / want_row_tasks);
  if (rows_per_task > 4) rows_per_task &= ~std::size_t{3};
  j.rows_per_task = std::max<std::size_t>(rows_per_task, 1);
  j.t_per_task = t_per_task;
  j.row_tasks = (N + j.rows_per_task - 1) / j.rows_per_task;
  j.tasks = j.row_tasks * t_tasks;
}

struct alignas(64) DecodeCounter {
  std::atomic<std::size_t> value{0};
};

// One thread's part of decode_guided: its takes of each product in turn, `after(p, n0, n1)`
// called after each (rows [n0, n1) of product p computed).
template <class After>
void guided_takes(const Job* jobs, std::size_t n_outs, BlockKernel kernel, DecodeCounter* next, std::size_t threads,
                  After&& after) {
  for (std::size_t p = 0; p < n_outs; ++p) {
    const MatmulArgs& a = jobs[p].a;
    const std::size_t least = ((kDecodeMinTake + a.w_row_bytes - 1) / a.w_row_bytes + 3) / 4 * 4;
    const std::size_t most = std::max(least, kDecodeMaxTake / a.w_row_bytes / 4 * 4);
    std::size_t n0 = next[p].value.load(std::memory_order_relaxed), take = 0;
    for (;;) {
      do {
        if (n0 >= a.N) break;
        take = std::clamp(((a.N - n0 + threads - 1) / threads + 3) / 4 * 4, least, most);
        take = std::min(take, a.N - n0);
      } while (!next[p].value.compare_exchange_weak(n0, n0 + take, std::memory_order_relaxed));
      if (n0 >= a.N) break;
      kernel(a, n0, n0 + take, 0, 1);
      after(p, n0, n0 + take);
      n0 = next[p].value.load(std::memory_order_relaxed);
    }
  }
}

// Decode's default split (DecodeSplit::guided): every thread goes through the products in order
// and takes rows from a product's counter until none are left, each time the remaining rows /
// threads (rounded up to whole runs of 4, at least kDecodeMinTake and at most kDecodeMaxTake
// bytes of them), so that the first takes are long sequential runs (as the shares were) and the
// last ones short enough that the threads finish a product together. Each row goes through the
// same instructions whichever thread takes it and wherever its take begins or ends
// (decode_rows), so the outputs do not depend on the split or the thread count. In alternating
// windows on the 2-core Zen 4 VM (1.5B shape, 2 threads), against one share per thread: whole
// decode steps +2.0 to +3.1% (Q8_0) and
// +1.8 to +3.0% (F16) in its fast minutes (~58 GB/s), +0.3 to +0.6% in its slow ones. With
// shares, the two threads ended a product apart by 40 µs (gate + up) to 490 µs (the output
// matrix) in the fast minutes: a core that reads a little slower left the other idle.
void decode_guided(const Job* jobs, std::size_t n_outs, BlockKernel kernel, ThreadPool& pool) {
  DecodeCounter next[kMaxShared];
  const std::size_t threads = pool.size();
  pool.parallel_for(threads, [&](std::size_t, unsigned) {
    guided_takes(jobs, n_outs, kernel, next, threads, [](std::size_t, std::size_t, std::size_t) {});
  });
}

// matmul_swiglu's decode: decode_guided's takes of gate's rows, then of up's (jobs[0], jobs[1], as
// many rows), each take of up followed by its rows' SwiGLU into gate's output once all of gate's
// rows are done (a counter of them, released after each take); a take of up that ends before
// the last of gate's does (the other thread still on its last take of gate) has its SwiGLU done
// at the end of the thread's takes. The rows go through the same instructions as in
// decode_guided, and SwiGLU through the same per value, so the bits are the same. In
// alternating windows (1.5B shape, Q8_0, 2 threads), gate + up + SwiGLU 632 -> 629 µs a layer.
// (Taking the two products' rows in pairs, each take reading both matrices, made them 643 µs
// and whole decode steps 0.9-3% slower: twice the streams, half as long.)
std::atomic<bool> g_defer_swiglu{false};  // set_defer_swiglu

void decode_guided_swiglu(const Job* jobs, BlockKernel kernel, ThreadPool& pool) {
  DecodeCounter next[2], gate_done;
  const std::size_t threads = pool.size();
  const MatmulArgs &g = jobs[0].a, &u = jobs[1].a;
  auto swiglu_rows = [&](std::size_t n0, std::size_t n1) { swiglu(g.y + n0, u.y + n0, n1 - n0); };
  auto gate_complete = [&] { return gate_done.value.load(std::memory_order_acquire) == g.N; };
  pool.parallel_for(threads, [&](std::size_t, unsigned) {
    // Takes of up whose SwiGLU waits for gate: 8 at most (2 when the tests force it for all).
    const bool defer_all = g_defer_swiglu.load(std::memory_order_relaxed);
    std::size_t deferred[8][2], n_deferred = 0;
    auto flush = [&] {
      while (!gate_complete()) cpu_relax();  // the other threads' last takes of gate
      for (std::size_t i = 0; i < n_deferred; ++i) swiglu_rows(deferred[i][0], deferred[i][1]);
      n_deferred = 0;
    };
    guided_takes(jobs, 2, kernel, next, threads, [&](std::size_t p, std::size_t n0, std::size_t n1) {
      if (p == 0) {
        gate_done.value.fetch_add(n1 - n0, std::memory_order_release);
      } else if (gate_complete() && !defer_all) {
        swiglu_rows(n0, n1);
      } else {
        if (n_deferred == (defer_all ? 2 : 8)) flush();
        deferred[n_deferred][0] = n0, deferred[n_deferred][1] = n1, ++n_deferred;
      }
    });
    if (n_deferred > 0) flush();
  });
}

}  // namespace

// What the AMX path takes from the AVX-512 one: the prefill of BF16 weights. Measured on a Xeon
// with AMX (an H200 machine's host, 2026-11-30, 2 threads, bench/RESULTS.md), AMX against the
// AVX-512 kernels end to end (bench_cpu pp512 of the 1.5B shape, alternated pairs; two runs of
// the same kernels differed by up to 8% there): BF16 1.23x, 1.31x and 0.99x (bench_matmul
// 1.0-1.5x); F16 0.87x, 0.90x and 0.93x (its weights split into two bf16 parts: six tile products
// a chunk); Q8_0 0.98x, 0.88x and 0.89x. In bench_matmul Q4_0 ran at 0.5-0.7x and the K-quants at
// 0.3-0.8x of the VNNI tiles. The AMX kernels of all but BF16 were removed.
bool amx_takes(GgmlType type, std::size_t T) { return T > 1 && type == GgmlType::bf16; }

bool packed_takes(Isa isa, GgmlType type, std::size_t T, bool int8_prefill) {
  if (T <= 1 || isa == Isa::portable) return false;
  if (type == GgmlType::f32) return true;
  if (type == GgmlType::f16 || type == GgmlType::bf16) return !(isa == Isa::amx && amx_takes(type, T));
  return isa == Isa::avx2 && !int8_prefill && is_q8x32_type(type);
}

float* packed_weight_buffer(std::size_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

float* packed_sum_buffer(std::size_t floats) {
  struct alignas(64) Line {
    float v[16];
  };
  thread_local std::vector<Line> buffer;
  if (buffer.size() * 16 < floats) buffer.resize((floats + 15) / 16);
  return buffer.data()->v;
}

std::size_t l2_cache_bytes() {
  static const std::size_t bytes = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 >= (256 << 10) ? static_cast<std::size_t>(l2) : std::size_t{1} << 20;
  }();
  return bytes;
}

std::size_t l1d_cache_bytes() {
  static const std::size_t bytes = [] {
    const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    return l1 >= (16 << 10) && l1 <= (1 << 20) ? static_cast<std::size_t>(l1) : std::size_t{32} << 10;
  }();
  return bytes;
}

namespace {
std::atomic<std::size_t> g_packed_k_block{0};  // set_packed_k_block
std::atomic<std::size_t> g_decode_l1_bytes{0};  // set_decode_l1_bytes
}  // namespace

std::size_t decode_l1_bytes() {
  const std::size_t forced = g_decode_l1_bytes.load(std::memory_order_relaxed);
  return forced > 0 ? forced : l1d_cache_bytes() / 16 * 13;
}

void set_decode_l1_bytes(std::size_t n) { g_decode_l1_bytes.store(n, std::memory_order_relaxed); }

void set_packed_k_block(std::size_t n) { g_packed_k_block.store(n, std::memory_order_relaxed); }

void set_stream_prefetch(int level) {
  g_stream_prefetch.store(level < 0 ? -1 : std::min(level, static_cast<int>(StreamPrefetch::l1_l2)),
                          std::memory_order_relaxed);
}

std::size_t packed_k_block(std::size_t K, std::size_t t_rows) {
  const std::size_t forced = g_packed_k_block.load(std::memory_order_relaxed);
  if (forced > 0) return std::min(K, forced);
  return t_rows * K * sizeof(float) <= l2_cache_bytes() / 2 ? K : std::min<std::size_t>(K, 512);
}

}  // namespace detail

void matmul(const Weight& w, const float* x, std::size_t T, float* y, ThreadPool* pool) {
  const MatmulOut out{&w, y};
  matmul_shared(&out, 1, x, T, pool);
}

void matmul_shared(const MatmulOut* outs, std::size_t n_outs, const float* x, std::size_t T, ThreadPool* pool) {
  detail::matmul_on(active_isa(), outs, n_outs, x, T, pool);
}

void matmul_swiglu(const Weight& gate, const Weight& up, const float* x, std::size_t T, float* g, float* u,
                   ThreadPool* pool) {
  const MatmulOut outs[2] = {{&gate, g}, {&up, u}};
  detail::matmul_on(active_isa(), outs, 2, x, T, pool, false, true);
}

void detail::set_defer_swiglu(bool on) { g_defer_swiglu.store(on, std::memory_order_relaxed); }

void detail::set_decode_split(DecodeSplit split) { g_decode_split.store(split, std::memory_order_relaxed); }

void detail::matmul_on(Isa isa, const MatmulOut* outs, std::size_t n_outs, const float* x, std::size_t T,
                       ThreadPool* pool, bool int8_prefill, bool swiglu_pair) {
  using namespace detail;
  if (n_outs == 0) return;
  if (swiglu_pair && (n_outs != 2 || outs[0].w->rows() != outs[1].w->rows()))
    fail("SwiGLU pairs two products of as many rows", *outs[0].w);
  if (n_outs > kMaxShared) fail("more products than matmul_shared takes", *outs[0].w);
  const BlockKernel kernel = kernel_for(isa);
#if defined(__x86_64__)
  const bool int8 = isa != Isa::portable;
#else
  const bool int8 = false;
#endif
  const unsigned threads = pool ? pool->size() : 1;
  const std::size_t K = outs[0].w->ne[0];

  // Per call, the same for every product.
  const StreamPrefetch prefetch = T == 1 ? stream_prefetch() : StreamPrefetch::none;
  const std::size_t l1_budget = decode_l1_bytes();
  Job jobs[kMaxShared];
  bool packed_float[kMaxShared] = {};
  bool want32 = false, want256 = false, want_bf16 = false, want_xt = false;
  bool want_prep[4] = {};  // by DecodePrep
  for (std::size_t i = 0; i < n_outs; ++i) {
    const Weight& w = *outs[i].w;
    if (!matmul_supports(w.type)) fail("unsupported weight type", w);
    const GgmlTypeInfo* info = ggml_type_info(static_cast<std::uint32_t>(w.type));
    if (w.ne[0] != K) fail("rows of another length than the first product's", w);
    if (K == 0 || K % info->block_elements != 0) fail("rows are not whole blocks", w);
    MatmulArgs& a = jobs[i].a;
    a = MatmulArgs{};
    a.type = w.type;
    a.w = w.data;
    a.w_row_bytes = row_bytes(w.type, K);
    a.K = K;
    a.N = w.rows();
    a.T = T;
    a.x = x;
    a.y = outs[i].y;
    a.prefetch = prefetch;
    a.l1_budget = l1_budget;
#if defined(__x86_64__)
    packed_float[i] = packed_takes(isa, w.type, T, int8_prefill);
#endif
    want_xt |= packed_float[i];
    const DecodePrep prep = decode_prep(isa, w.type, T);
    // (Not where decode takes X in groups: those are quantized straight from X, below.)
    want32 |= int8 && is_q8x32_type(w.type) && !packed_float[i] && prep == DecodePrep::none;
    want_prep[static_cast<int>(prep)] = true;
    want256 |= int8 && is_q8x256_type(w.type);
    want_bf16 |= isa == Isa::amx && amx_takes(w.type, T);
  }
  if (T == 0) return;  // after the checks: a bad weight is reported whatever T is

  // Quantized activations: once per call and format, in buffers that grow and are kept (per
  // calling thread).
  const std::size_t row32 = K % 32 == 0 ? K / 32 * sizeof(BlockQ8x32) : 0;
  const std::size_t row256 = K % 256 == 0 ? K / 256 * sizeof(BlockQ8x256) : 0;
  thread_local std::vector<unsigned char> xq32, xq256;
  thread_local std::vector<GroupQ8x512> xgroups[2];
  thread_local std::vector<SuperQuadQ8> xsupers;
#if defined(__x86_64__)
  if (want32 || want256) {
    if (want32 && xq32.size() < T * row32) xq32.resize(T * row32);
    if (want256 && xq256.size() < T * row256) xq256.resize(T * row256);
    unsigned char *base32 = xq32.data(), *base256 = xq256.data();
    auto quantize_row = [&](std::size_t t, unsigned) {
      if (want32) quantize_row_q8x32(x + t * K, K, reinterpret_cast<BlockQ8x32*>(base32 + t * row32));
      if (want256) quantize_row_q8x256(x + t * K, K, reinterpret_cast<BlockQ8x256*>(base256 + t * row256));
    };
    if (pool && T >= 8)
      pool->parallel_for(T, quantize_row);
    else
      for (std::size_t t = 0; t < T; ++t) quantize_row(t, 0);
  }
  // The AVX-512 decode's activations: by groups of 16 blocks (MatmulArgs::xgroups), per weight
  // type, and the Q4_K / Q5_K super-blocks (MatmulArgs::xsupers).
  for (int f = 0; f < 2; ++f)
    if (want_prep[static_cast<int>(f ? DecodePrep::groups_q4_0 : DecodePrep::groups_q8_0)]) {
      if (xgroups[f].size() < (K / 32 + 15) / 16) xgroups[f].resize((K / 32 + 15) / 16);
      quantize_row_groups(f ? GgmlType::q4_0 : GgmlType::q8_0, x, K, xgroups[f].data());
    }
  if (want_prep[static_cast<int>(DecodePrep::supers)]) {
    if (xsupers.size() < (K / 256 + 3) / 4) xsupers.resize((K / 256 + 3) / 4);
    super_row_q8x256(reinterpret_cast<const BlockQ8x256*>(xq256.data()), K, xsupers.data());
  }
#endif
  // The BF16 AMX kernel's activations: X split into bf16 parts, by 16 rows of X.
  thread_local std::vector<AmxBf16Chunk> xbf16;
  if (want_bf16) {
    const std::size_t groups = (T + 15) / 16, chunks = (K + 31) / 32;
    if (xbf16.size() < groups * chunks) xbf16.resize(groups * chunks);
    AmxBf16Chunk* packed = xbf16.data();
    const PackBf16 pack = packer_for_amx();
    auto pack_group = [&](std::size_t g, unsigned) { pack(x, K, T, g, packed + g * chunks); };
    if (pool && groups > 1)
      pool->parallel_for(groups, pack_group);
    else
      for (std::size_t g = 0; g < groups; ++g) pack_group(g, 0);
  }
  // The packed float prefill's activations: X by groups of 16 rows, k-major (MatmulArgs::xt).
  thread_local std::vector<float> xt;
  if (want_xt) {
    const std::size_t groups = (T + 15) / 16;
    if (xt.size() < groups * 16 * K) xt.resize(groups * 16 * K);
    float* packed_x = xt.data();
    // By 64 columns at a time, so that the 64 lines written stay in L1 while the 16 rows fill
    // them (over all of K at once, each row's pass went through K lines: 2.5% of an F16 pp512).
    auto pack_group = [&](std::size_t g, unsigned) {
      float* out = packed_x + g * 16 * K;
      const std::size_t rows = std::min<std::size_t>(16, T - 16 * g);
      for (std::size_t k0 = 0; k0 < K; k0 += 64) {
        const std::size_t k1 = std::min(K, k0 + 64);
        for (std::size_t i = 0; i < rows; ++i) {
          const float* row = x + (16 * g + i) * K;
          for (std::size_t k = k0; k < k1; ++k) out[16 * k + i] = row[k];
        }
        for (std::size_t i = rows; i < 16; ++i)
          for (std::size_t k = k0; k < k1; ++k) out[16 * k + i] = 0.0f;
      }
    };
    if (pool && groups > 1)
      pool->parallel_for(groups, pack_group);
    else
      for (std::size_t g = 0; g < groups; ++g) pack_group(g, 0);
  }
  // Decode of the float types on a pool: X copied with streaming stores into a buffer of this
  // thread's, which the kernels read instead. Else the other threads read X itself, and the
  // caller's next norm or SwiGLU writing it waited for those lines' ownership; the streaming
  // stores do not wait (as quantize_row_groups). F16, alternating windows of whole decode steps
  // on the 2-core Zen 4 VM: +1.5% and +0.5% in its fast minutes (54 and 60 windows), -0.05% in
  // its slow ones (46).
  struct alignas(64) Line {
    float v[16];
  };
  thread_local std::vector<Line> xs;
  const float* x_streamed = nullptr;
#if defined(__x86_64__)
  bool float_x = false;
  for (std::size_t i = 0; i < n_outs; ++i) float_x |= is_float_type(jobs[i].a.type);
  if (float_x && T == 1 && threads > 1 && int8) {
    if (xs.size() < (K + 15) / 16) xs.resize((K + 15) / 16);
    float* copy = reinterpret_cast<float*>(xs.data());
    stream_copy(x, copy, K);
    x_streamed = copy;
  }
#endif
  std::size_t total = 0;
  for (std::size_t i = 0; i < n_outs; ++i) {
    MatmulArgs& a = jobs[i].a;
    if (x_streamed && is_float_type(a.type)) a.x = x_streamed;
    std::size_t x_row_bytes = K * sizeof(float);  // what one activation row takes in the kernel
    if (packed_float[i]) {
      a.xt = xt.data();
    } else if (int8 && is_q8x32_type(a.type)) {
      a.xq = decode_prep(isa, a.type, T) == DecodePrep::none ? xq32.data() : nullptr;  // else a.xgroups
      a.xq_row_bytes = x_row_bytes = row32;
    } else if (int8 && is_q8x256_type(a.type)) {
      a.xq = xq256.data();
      a.xq_row_bytes = x_row_bytes = row256;
    }
    switch (decode_prep(isa, a.type, T)) {
      case DecodePrep::groups_q8_0: a.xgroups = xgroups[0].data(); break;
      case DecodePrep::groups_q4_0: a.xgroups = xgroups[1].data(); break;
      case DecodePrep::supers: a.xsupers = xsupers.data(); break;
      case DecodePrep::none: break;
    }
    const bool amx = isa == Isa::amx && amx_takes(a.type, T);
    if (amx) a.xbf16 = xbf16.data();
    // (Q8_0, Q4_0 and the K-quants take the VNNI tiles on Isa::amx too: amx_takes.)
    const bool vnni = isa >= Isa::avx512 && !amx && (is_q8x32_type(a.type) || is_q8x256_type(a.type)) && T > 1;
    split(jobs[i], x_row_bytes, threads, amx, packed_float[i], vnni, isa >= Isa::avx512);
    total += jobs[i].tasks;
  }

  // The tasks of every product in one run of the pool, product after product.
  auto task = [&](std::size_t i, unsigned) {
    const Job* j = jobs;
    while (i >= j->tasks) i -= j->tasks, ++j;
    const std::size_t rt = i % j->row_tasks, tt = i / j->row_tasks;
    const std::size_t n0 = rt * j->rows_per_task, t0 = tt * j->t_per_task;
    kernel(j->a, n0, std::min(j->a.N, n0 + j->rows_per_task), t0, std::min(T, t0 + j->t_per_task));
  };
  if (T == 1 && pool && threads > 1 && g_decode_split.load(std::memory_order_relaxed) == DecodeSplit::guided) {
    if (swiglu_pair)
      return decode_guided_swiglu(jobs, kernel, *pool);
    decode_guided(jobs, n_outs, kernel, *pool);
  } else if (pool) {
    pool->parallel_for(total, task);
  } else {
    for (std::size_t i = 0; i < total; ++i) task(i, 0);
  }
  if (swiglu_pair) {  // row by row (T N exponentials: with std::exp on one thread, ~7% of a prefill)
    const std::size_t N = jobs[0].a.N;
    auto row = [&](std::size_t t, unsigned) { swiglu(outs[0].y + t * N, outs[1].y + t * N, N); };
    if (pool)
      pool->parallel_for(T, row);
    else
      for (std::size_t t = 0; t < T; ++t) row(t, 0);
  }
}

namespace {
// |got - want| / |want| over all elements (NaN where they are not finite).
double relative_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(err / norm);
}
}  // namespace

bool check_kernels(Isa isa, std::string* report) {
  if (isa <= Isa::avx2 || detail::usable_isa() < isa) return true;  // nothing to compare / cannot run
  std::mt19937 rng(20261129);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  bool ok = true;
  // N = 37: two AMX tiles and 5 rows for the other kernels; K = 512: two super-blocks, 16
  // blocks of 32 (520 for the float types: a partial chunk of 32 for their AMX kernel); T = 1
  // (decode), 21 (prefill: a whole and a partial group of 16) and 37 (two groups, then a partial
  // one alone).
  const std::size_t N = 37;
  for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0, GgmlType::q4_0,
                        GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k}) {
    const bool is_float = ggml_type_info(static_cast<std::uint32_t>(type))->block_elements == 1;
    const std::size_t K = is_float ? 520 : 512;
    std::vector<float> src(N * K);
    for (float& v : src) v = 0.05f * normal(rng);
    std::vector<unsigned char> bytes(row_bytes(type, K) * N);
    std::string error;
    if (!quantize(type, src.data(), bytes.data(), N * K, &error)) {
      *report += std::string("cannot make a test weight: ") + error + "\n";
      ok = false;
      continue;
    }
    Weight w;
    w.type = type;
    w.n_dims = 2;
    w.ne[0] = K;
    w.ne[1] = N;
    w.data = bytes.data();
    w.bytes = bytes.size();
    w.source = "check_kernels";
    for (std::size_t T : {std::size_t{1}, std::size_t{21}, std::size_t{37}}) {
      std::vector<float> x(T * K), want(T * N), got(T * N);
      for (float& v : x) v = normal(rng);
      const MatmulOut want_out{&w, want.data()}, got_out{&w, got.data()};
      detail::matmul_on(Isa::avx2, &want_out, 1, x.data(), T, nullptr, /*int8_prefill=*/true);
      detail::matmul_on(isa, &got_out, 1, x.data(), T, nullptr);
      // Both paths quantize X the same way; what is left is float rounding (~1e-7 relative).
      const double rel = relative_l2(got, want);
      if (!(rel < 1e-4)) {
        *report += std::string(ggml_type_info(static_cast<std::uint32_t>(type))->name) + " T=" + std::to_string(T) +
                   ": relative difference " + std::to_string(rel) + " from the avx2 kernels\n";
        ok = false;
      }
    }
  }
#if defined(__x86_64__)
  // The attention tile kernel of the path against AVX2's: 6 query heads of 128 over one KV head,
  // 5 new queries after 70 cached positions (a partial block of keys), an F16 and a Q8_0 cache.
  for (GgmlType kv : {GgmlType::f16, GgmlType::q8_0}) {
    const std::uint32_t D = 128, H = 6;
    const std::size_t T = 5, positions = 75, rb = row_bytes(kv, D);
    std::vector<float> q(T * H * D), src(positions * D), want(q.size()), got(q.size());
    std::vector<unsigned char> k(positions * rb), v(positions * rb);
    for (float& f : q) f = normal(rng);
    std::string error;
    bool made = true;
    for (auto* cache : {&k, &v}) {
      for (float& f : src) f = normal(rng);
      made = made && quantize(kv, src.data(), cache->data(), src.size(), &error);
    }
    if (!made) {
      *report += "cannot make a test cache: " + error + "\n";
      ok = false;
      continue;
    }
    AttentionArgs a;
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    a.row_bytes = rb;
    a.kv_type = kv;
    a.n_head = H;
    a.n_head_kv = 1;
    a.head_dim = D;
    a.first_pos = static_cast<std::uint32_t>(positions - T);
    a.T = T;
    const detail::AttentionTile tile{0, 0, H, 0, T, 0};
    std::vector<float> workspace(detail::attention_tile_workspace(D));
    a.out = want.data();
    detail::attention_tile_avx2(a, tile, workspace.data());
    auto compare = [&](const char* what) {
      const double rel = relative_l2(got, want);
      if (!(rel < 1e-5)) {
        *report += std::string(what) + ", " + std::string(ggml_type_info(static_cast<std::uint32_t>(kv))->name) +
                   " cache: relative difference " + std::to_string(rel) + " from the avx2 kernel\n";
        ok = false;
      }
    };
    a.out = got.data();
    detail::attention_kernel_for(isa)(a, tile, workspace.data());
    compare("attention");
    if (detect_isa() >= Isa::avx512) {
      // The 8-lane kernels with AVX-512's registers (AMD's tiles, every decode chunk): the tile,
      // then the last query's row as one decode chunk and its merge.
      detail::attention_tile_lanes8_avx512(a, tile, workspace.data());
      compare("attention, 8 lanes");
      std::vector<float> partial(detail::attention_chunk_floats(H, D));
      a.q = q.data() + (T - 1) * H * D;
      a.first_pos = static_cast<std::uint32_t>(positions - 1);
      a.T = 1;
      a.out = want.data();
      detail::attention_chunk_avx2(a, 0, positions, positions, partial.data(), workspace.data());
      detail::attention_merge_avx2(a, partial.data(), 1);
      a.out = got.data();
      detail::attention_chunk_lanes8_avx512(a, 0, positions, positions, partial.data(), workspace.data());
      detail::attention_merge_lanes8_avx512(a, partial.data(), 1);
      compare("attention, decode chunk");
    }
  }
#endif
  return ok;
}

Isa verify_kernels_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const Isa best = detect_isa();
    std::string report;
    if (best > Isa::avx2 && !check_kernels(best, &report)) {
      log::error("cpu: the ", isa_name(best), " kernels disagree with the avx2 ones on this CPU; using avx2 (please report this):\n",
                 report);
      detail::g_capped.store(static_cast<int>(Isa::avx2), std::memory_order_relaxed);
      force_isa(Isa::avx2);
    }
  });
  return active_isa();
}

}  // namespace ponder::cpu
