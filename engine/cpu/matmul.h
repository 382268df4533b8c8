#pragma once
// Matrix products on the CPU with the weight read in place, in its stored type.
//
//   Y[t, n] = sum_k W[n, k] * X[t, k]      t < T, n < N, k < K
//
// W: a model weight (`Weight`: ne[0] = K elements per row, rows() = N rows, row-major, in the
// mapping) of type F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K. X: T x K floats (row stride
// K); Y: T x N floats (row stride N). T = 1 is decode (a matrix-vector product, memory-bound);
// T > 1 is prefill, where each weight row is used for several activation rows at once.
//
// Numerics per path:
// - F32 / F16 / BF16 weights, decode (and the amx path's BF16 rows past its tiles): the
//   weights are widened to float and multiplied with X in float, fused multiply-adds in 8 lanes
//   (16 on the avx512 path), then the lanes summed. Error: float rounding only.
// - Prefill (T > 1) of F32 / F16 / BF16 on the avx2 and avx512 paths (F32, F16 on amx), and of
//   Q8_0 / Q4_0 on the avx2 path: the weights widened to float (the reference dequantizer's
//   values, exactly), then one chain of fused multiply-adds over k in order per output, with X
//   as it is (no 8-bit activations); the same bits on both paths. Error: float rounding of a
//   K-long chain.
// - BF16 prefill on the amx path (AMX-BF16 tiles): X is split into three bf16 parts that add up
//   to it exactly; the 3 products of the parts with the weights are exact and summed in float.
//   Error: float rounding of a longer sum, as the float paths' in practice.
// - Q8_0 / Q4_0 (AVX2 decode, AVX-512, on AMX CPUs too): each row of X is quantized once per
//   call to 8-bit blocks of 32 (d = max|x| / 127, q = round-to-nearest-even(x / d)), and the
//   block dot products are integer (exact) before one float scale per block. (The decode kernels keep a
//   block's sum in 8 integer lanes, scaled in float and added there. On AVX-512, VPDPBUSD reads
//   the weights as unsigned bytes, w + 128 (Q8_0) or w + 8 (Q4_0), and lanes 0 and 8 start at
//   minus that offset times the block's sum of X: the offsets cancel in the float sum, whose
//   terms are then up to ~128 x |the block's sum of X| for Q8_0. Their rounding, 2^-24 of each
//   such term, stays far under the error of the 8-bit quantization of X, up to d / 2 a value.)
// - Q4_K / Q5_K / Q6_K (AVX2, AVX-512, on AMX CPUs too): X rows are quantized to 8-bit blocks
//   of 256 the same way (llama.cpp's q8_K idea: one float scale, plus sums of each 16 values for
//   the offsets); integer dot products per super-block, one float scale (two for Q4_K/Q5_K: d and dmin). The
//   AVX-512 prefill instead converts each sub-block's integer sum to float and adds it times
//   d * sc (less dmin * m times the sub-block's activation sum), and applies X's scale once per
//   super-block.
// - portable: every type is dequantized row by row with the reference dequantizer and
//   multiplied in float (no activation quantization).
// Every output element is computed by the same sequence of operations whichever thread computes
// it and however the work is split, so results do not depend on the thread count.
#include <cstddef>
#include <string>
#include <type_traits>

#include "engine/model.h"
#include "engine/cpu/thread_pool.h"

namespace ponder::cpu {

/// Instruction-set paths, in increasing order.
enum class Isa { portable, avx2, avx512, amx };

/// The best path this CPU supports: amx needs avx512's and AMX-TILE/BF16 with the kernel's
/// leave to use them (Linux arch_prctl ARCH_REQ_XCOMP_PERM), avx512 needs AVX-512
/// F/BW/VL/DQ/VNNI, avx2 needs AVX2, FMA and F16C. The environment variable PONDER_CPU_ISA
/// (portable, avx2, avx512 or amx) caps it. The amx path is the
/// avx512 one with AMX tiles for the prefill of BF16 weights (amx_takes in matmul.cpp says why
/// only those).
Isa detect_isa();
const char* isa_name(Isa isa);
/// Forces the path matmul uses (for tests and benchmarks), clamped to what the CPU supports.
void force_isa(Isa isa);
/// The path matmul uses now (detect_isa() unless forced).
Isa active_isa();

/// Compares the products of `isa` with those of the AVX2 kernels on small random weights of every
/// type (decode and prefill shapes, AMX tiles and their remainders included), and its attention
/// kernel with AVX2's (F16 and Q8_0 caches). True when they agree to float rounding; else false,
/// with what differed in `*report`. No effect on the path in use.
bool check_kernels(Isa isa, std::string* report);

/// Once per process (the CPU backend calls it): where the best path is avx512 or amx, runs
/// check_kernels on it; on a disagreement, logs an error saying so and caps the path at avx2 for
/// the rest of the process (those kernels are checked here in emulation only, so a machine's
/// first run checks them natively). Returns the path in use afterwards.
Isa verify_kernels_once();

/// How decode's AVX-512 kernels of the float types and Q8_0, and the bandwidth reading
/// (bandwidth.h), prefetch ahead of their streams in software: not at all, into L1 (2 KiB
/// ahead), or into L1 and, 8 KiB ahead, into L2 as well.
enum class StreamPrefetch : unsigned char { none, l1, l1_l2 };

/// The CPU's StreamPrefetch: l1_l2 except on AMD CPUs, none there. On a Xeon (2 MiB L2) whole
/// decode steps scored 0.88 -> 0.95 (Q8_0) of the reading with the L1 prefetch, and were 4-7%
/// faster again with L2's; on a Zen 4 they were 4-17% slower with the L1 prefetch
/// (matmul_internal.h, kPrefetchAhead and kPrefetchL2Ahead).
StreamPrefetch stream_prefetch();

/// f(level) with the level as a compile-time constant (std::integral_constant): the kernels and
/// the read test take it as a template argument.
template <class F>
decltype(auto) with_stream_prefetch(StreamPrefetch level, F&& f) {
  switch (level) {
    case StreamPrefetch::l1: return f(std::integral_constant<StreamPrefetch, StreamPrefetch::l1>{});
    case StreamPrefetch::l1_l2: return f(std::integral_constant<StreamPrefetch, StreamPrefetch::l1_l2>{});
    default: return f(std::integral_constant<StreamPrefetch, StreamPrefetch::none>{});
  }
}

/// True when `type` can be multiplied by matmul.
bool matmul_supports(GgmlType type);

/// Y = X · Wᵀ as above. `pool` null runs on the calling thread only. Preconditions (checked,
/// abort with a message): a supported type, K a whole number of blocks.
void matmul(const Weight& w, const float* x, std::size_t T, float* y, ThreadPool* pool);

/// One product of matmul_shared: Y = X · Wᵀ into y.
struct MatmulOut {
  const Weight* w;
  float* y;
};
/// The most products one matmul_shared call takes.
inline constexpr std::size_t kMaxShared = 4;

/// Several products of the same X (a layer's q/k/v, its gate/up) in one run of the pool: X is
/// quantized once per activation format and the tasks of all of them are shared out together,
/// so the threads wait once instead of once per product. Each Y is what matmul gives, bit for
/// bit. Preconditions (checked, abort with a message): as matmul's, every weight's rows as long
/// as the first's, at most kMaxShared products.
void matmul_shared(const MatmulOut* outs, std::size_t n_outs, const float* x, std::size_t T, ThreadPool* pool);

/// The SwiGLU MLP's first half: g = x · W_gateᵀ and u = x · W_upᵀ, each as matmul gives it, then
/// g = silu(g) * u (cpu::swiglu, attention.h), row by row. Decode (T = 1) on a pool ends each take
/// of up's rows with their SwiGLU (once gate is complete), so that the threads share the
/// exponentials (one thread took ~4.4 µs a layer for n_ff = 8960 on the 2-core VM). The same
/// bits either way. `u` is scratch of g's size.
/// Preconditions (checked, abort with a message): as matmul_shared's, and as many rows in both.
void matmul_swiglu(const Weight& gate, const Weight& up, const float* x, std::size_t T, float* g, float* u,
                   ThreadPool* pool);

}  // namespace ponder::cpu
