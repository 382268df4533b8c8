#pragma once
// Shared by matmul.cpp and the per-ISA kernel files: the quantized activation blocks and the
// kernel entry points. Kernel files compiled with ISA flags must use nothing from the standard
// library that could be instantiated (inline templates would be merged with the portable
// translation units' copies by the linker); plain C++ and intrinsics only.
#include <cstddef>
#include <cstdint>

#include "engine/cpu/matmul.h"
#include "engine/quant.h"

namespace ponder::cpu {
enum class Isa;  // matmul.h
struct MatmulOut;
class ThreadPool;
struct AttentionArgs;  // attention.h
namespace detail {
struct AttentionTile;  // attention_internal.h
}
}  // namespace ponder::cpu

namespace ponder::cpu::detail {

/// One row of X quantized to 8-bit blocks of 32 (for Q8_0 and Q4_0 weights):
/// x[j] ~ d * qs[j], |qs| <= 127; sum = sum of qs.
struct BlockQ8x32 {
  float d;
  std::int32_t sum;
  std::int8_t qs[32];
};

/// One row of X quantized to 8-bit blocks of 256 (for the K-quants): x[j] ~ d * qs[j];
/// bsums[i] = sum of qs[16 i .. 16 i + 15].
struct BlockQ8x256 {
  float d;
  std::int16_t bsums[16];
  std::int8_t qs[256];
};

/// Decode activations of the AVX-512 Q8_0 / Q4_0 kernels: a BlockQ8x32 row by groups of 16 blocks
/// (past the row's last block: zeros), as those kernels read them. Block i of the group: its
/// values at qs[32 i ..], its scale d[i], and start[i], where VPDPBUSD starts the block's lane 0
/// (the weights are multiplied as unsigned bytes): -128 x the block's sum for Q8_0 (read as
/// w + 128), -8 x the sum for Q4_0 (its nibbles, w + 8).
struct alignas(64) GroupQ8x512 {
  std::int8_t qs[512];
  std::int32_t start[16];
  float d[16];
};

/// Decode activations of the AVX-512 Q4_K / Q5_K kernels, by four BlockQ8x256 super-blocks (a
/// row's last four padded with zeros), as those kernels read them (the scales and mins of four
/// weight super-blocks at a time): super-block i's values at qs[i], in the order of the kernels'
/// registers, per 128 values: 0-31 and 64-95, then 32-63 and 96-127 (the weights of the low, then
/// of the high nibbles of two groups of 64); the sum of each 32 of its values at sums[8 i ..];
/// its scale d[i].
struct alignas(64) SuperQuadQ8 {
  std::int8_t qs[4][256];
  std::int16_t sums[32];
  float d[4];
};

/// Activations for the AMX kernel of BF16 weights: 32 values (one chunk of K) of 16 rows of
/// X in the layout of TDPBF16PS's B operand, each value split exactly into three bf16 parts,
/// x = hi + mid + lo (hi: x's top 8 significant bits, mid: the next 8 of what is left, lo: the
/// rest, at most 8 bits; exact down to |x| of about 2^-103, where mid and lo become float
/// denormals; Inf and NaN: hi alone): v[p][r][2 j + i] = part p of value 32 c + 2 r + i of row
/// 16 g + j, as bf16 bits; values past K and rows past T are zeros. Group g, chunk c at
/// g * ceil(K / 32) + c.
struct AmxBf16Chunk {
  std::uint16_t v[3][16][32];
};

/// Everything a kernel needs for one call.
struct MatmulArgs {
  GgmlType type;
  const unsigned char* w;  // row n at w + n * w_row_bytes
  std::size_t w_row_bytes;
  std::size_t K, N, T;
  const float* x;  // T x K
  const void* xq;  // T rows of quantized X (BlockQ8x32 or BlockQ8x256), row stride xq_row_bytes
  std::size_t xq_row_bytes;
  const AmxBf16Chunk* xbf16;  // the AMX kernel's activations (prefill on Isa::amx, amx_takes), else null
  // X packed by 16 rows for the packed float prefill (set when packed_takes): group g (rows
  // 16 g .. 16 g + 15, rows past T zeros) at xt + 16 g K, value k of row 16 g + i at [16 k + i].
  // Else null.
  const float* xt;
  // Decode (T = 1) of Q8_0 / Q4_0 on the avx512 and amx paths: X by groups of 16 blocks for the
  // weight type (GroupQ8x512). Else null.
  const GroupQ8x512* xgroups;
  // Decode (T = 1) of Q4_K / Q5_K on the avx512 and amx paths: X's K / 256 super-blocks by
  // fours (SuperQuadQ8). Else null.
  const SuperQuadQ8* xsupers;
  // Decode: how the kernels that can prefetch ahead of their rows do (stream_prefetch()).
  StreamPrefetch prefetch;
  // Decode: the L1 bytes a pass over P rows and X may take (decode_l1_bytes()).
  std::size_t l1_budget;
  float* y;  // T x N
};

/// Computes Y[t, n] for n in [n0, n1), t in [t0, t1).
using BlockKernel = void (*)(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0,
                             std::size_t t1);

/// matmul_avx2.cpp (compiled with -mavx2 -mfma -mf16c): the activation quantizers of the int8
/// paths (d = max|x| / 127, q = nearest-even(x / d), as matmul.h says) and the kernels.
void quantize_row_q8x32(const float* x, std::size_t K, BlockQ8x32* out);
void quantize_row_q8x256(const float* x, std::size_t K, BlockQ8x256* out);
/// A row of K values quantized as quantize_row_q8x32 does (the same bits), into the groups of
/// the AVX-512 decode of `type` (Q8_0 or Q4_0): (K / 32 + 15) / 16 of them at out, in one pass
/// (a BlockQ8x32 row, then a copy, before). The copy was a string of stores to lines the other
/// threads had read (X is read by every thread of the product): on the 2-core Zen 4 VM, decode's
/// preparation of X at K = 8960 took 5.7 µs in its slow minutes and 13-14 in its fast ones, 9 of
/// them in the copy; in one pass, 4.1-4.3 and 9-19 (the stores still wait on those lines there).
/// Now each group is made in L1 and streamed out (non-temporal stores, then SFENCE): in
/// alternating windows of whole decode steps (1.5B shape, Q8_0, 2 threads), +1.5% and +2.9% in
/// the fast minutes (112 and 20 windows), +1.2% and -0.3% in the slow ones (88 and 100).
void quantize_row_groups(GgmlType type, const float* x, std::size_t K, GroupQ8x512* out);
/// dst[0, n) = src[0, n) with streaming stores (dst 32-byte aligned), then SFENCE: decode's copy
/// of X for the float types (matmul.cpp).
void stream_copy(const float* src, float* dst, std::size_t n);
/// A BlockQ8x256 row of K values as the activations of the AVX-512 decode of Q4_K / Q5_K:
/// (K / 256 + 3) / 4 SuperQuadQ8 at out.
void super_row_q8x256(const BlockQ8x256* x, std::size_t K, SuperQuadQ8* out);
void block_avx2(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1);
/// True when the path `isa` takes this product as packed float prefill (packed_block in
/// kernel_common.h, a.xt set): T > 1 and F32, F16 or BF16 (on amx: F32 and F16; its AMX kernel
/// takes BF16), and on avx2 also Q8_0 / Q4_0 unless `int8_prefill` (check_kernels' reference for
/// the AVX-512 and AMX paths, which multiply those with 8-bit activations). Then split() gives
/// tasks that start on whole groups of 16 activation rows.
bool packed_takes(Isa isa, GgmlType type, std::size_t T, bool int8_prefill);
/// The packed prefill's buffer for widened weight rows: at least `floats` floats, the calling
/// thread's own, kept between calls (matmul.cpp).
float* packed_weight_buffer(std::size_t floats);
/// ... and for its tiles' running sums where it goes over K in blocks (packed_k_block).
float* packed_sum_buffer(std::size_t floats);
/// The bytes of this CPU's L2 cache (per core; 1 MiB where the system does not say).
std::size_t l2_cache_bytes();
/// How much of K the packed prefill takes at a time for tasks of `t_rows` activation rows: all
/// of it where the task's X (t_rows x K floats) fits in half the L2, else blocks of 512 (a
/// multiple of 256, so that block types start on a block). Tests: set_packed_k_block(n > 0) makes
/// every task take blocks of n (a multiple of 256), 0 restores the default.
std::size_t packed_k_block(std::size_t K, std::size_t t_rows);
void set_packed_k_block(std::size_t n);
// Decode streams the weights: the kernels that prefetch do it this far ahead of their loads
// (past the end of a row is the next row, or harmlessly nothing), and so does the read test
// (bandwidth.cpp). The AVX-512 decode of the float
// types and Q8_0 prefetches only where stream_prefetch() (matmul.h) says, not on AMD CPUs: in
// alternating windows on the 2-core Zen 4 VM (1.5B shape, 2 threads, 4 rows side by side), whole
// decode steps without it were faster by 4-7% in its slow minutes (~34 GB/s) and 12% (Q8_0) to
// 17% (F16) in its fast ones (~58 GB/s); the K = 8960 product (ffn_down) by 7% and 15% (Q8_0).
// On a 2-core Xeon VM (Sapphire Rapids family, 2 MiB L2; bench_limit, 30 windows a run, two runs
// each, alternated) whole steps with it scored 0.880 -> 0.949-0.951 (Q8_0) and 1.016-1.028 ->
// 1.103-1.163 (F16) of the reading taken without it. The compute-bound kernels (Q4_0, the
// K-quants) were the same either way or slower without it; the AVX2 ones were the same on the
// Zen 4 VM and faster with it on a Zen 3.
constexpr std::size_t kPrefetchAhead = 2048;

// Where decode prefetches under stream_prefetch() (the AVX-512 decode of the float types and of
// Q8_0) and it says StreamPrefetch::l1_l2 (its default wherever it prefetches), each line is also
// prefetched into L2 this far ahead (PREFETCHT1): more of the requests that wait for memory are
// then in flight than L1's few fill buffers hold. On the 2-core Xeon VM (48 KiB L1d, 2 MiB L2;
// 1.5B shape, 2 threads, alternated windows of 8 decode steps, 30 pairs a run), whole steps
// against the L1 prefetch alone: +4.0% (Q8_0, faster in 24 of 30 windows) and +4.7% (F16, 22 of
// 30) at 8 KiB; +3.0% and +5.5% at 4 KiB; +4.8% and +4.3% at 16 KiB. 8 KiB against 16: +0.2% and
// +5.0%; 16 against 32: +1.4% and +4.5%. Also prefetching a take's first 4 or 16 KiB into L2 when
// it starts: no better, or 3-4% worse. `bench_decode_split --prefetch 1`, which compares the two
// levels: +6.0% (Q8_0, 27 of 30) and +7.3% (F16, 25 of 30). Q4_K_M's kernels (prefetch_block)
// with it: +0.1%, and +1.0% (16 of 30) once 76d4cac had made them faster, so they do without,
// as do the AVX2 kernels, whose prefetch runs on AMD CPUs too. The read test (bandwidth.cpp)
// does the same as decode, since the limit must be the best plain read: it reads 5-10% faster
// with it (bench_matmul prints its levels).
constexpr std::size_t kPrefetchL2Ahead = 8192;

/// Tests and benchmarks: 0, 1 or 2 forces stream_prefetch() to none, l1 or l1_l2; -1 restores
/// the CPU's choice.
void set_stream_prefetch(int level);
/// The bytes of this CPU's L1 data cache (per core; 32 KiB where the system does not say).
std::size_t l1d_cache_bytes();
/// How many bytes of L1 decode lets P weight rows and X take in one pass
/// (decode_rows_fitting, below): 13/16 of the L1 data cache, so 26 KiB of a Zen 4's
/// 32 and 39 of a Sapphire Rapids' 48. Tests and benchmarks: set_decode_l1_bytes(n > 0) forces
/// n, 0 restores the CPU's.
std::size_t decode_l1_bytes();
void set_decode_l1_bytes(std::size_t n);
/// How many rows decode reads side by side where rows are long (float_decode in
/// kernel_common.h, the Q8_0 decode in matmul_avx512.cpp): the most of `most`, `most` / 2, ..., 1
/// whose bytes with X's take at most `budget` (MatmulArgs::l1_budget: decode_l1_bytes()), so
/// that X stays in L1 from one pass to the next (a pass streams P rows through L1 beside X);
/// where not even one row fits beside X, `most` (X then comes from L2 whatever P is, and more
/// rows per pass read it fewer times).
/// - Q8_0's ffn_down of the 1.5B shape (K = 8960: rows of 9,520 bytes, X 11.5 KB) on the 2-core
///   Zen 4 VM (32 KiB L1, budget 26 KiB: one row at a time) read at 42-46 GB/s with 4 rows side
///   by side (49 KB a pass) and 2 (30 KB), 46.6 one row at a time (21 KB) in its fast minutes
///   (read test ~55), 35.7 against 34.8 in its slow ones; the same bytes viewed as rows of
///   K = 4480 (4 rows and X: 24.8 KB) read at 53.0 and of K = 1536 at 54.5.
/// - On the 2-core Sapphire Rapids VM (48 KiB L1, budget 39 KiB: 2 rows), bench_matmul, 2
///   threads: 1 row at a time 21-22 GB/s (0.70-0.72 of the read test; 19-24 GB per CPU-second on
///   rows in L2), 2 rows 25-28 (0.94-0.97; 26), 4 rows 23 (0.84; 19). Whole decode steps, the
///   two budgets alternated window by window in one process (`bench_decode_split --l1 26`, 6
///   runs of 40-50 windows of 8 steps): Q8_0 +4.8, +3.3, -0.1, +2.5, +0.1, +2.5% (39 KiB faster
///   in 188 of 290 windows); F16 (the same P under both) +0.1%. (An earlier session had tried
///   39 KiB here in separate runs, 5 pairs, and seen no gain in their noise.)
constexpr bool fits_beside_x(int p, std::size_t row_bytes, std::size_t x_bytes, std::size_t budget) {
  return p * row_bytes + x_bytes <= budget;
}
constexpr int decode_rows_fitting(std::size_t row_bytes, std::size_t x_bytes, int most, std::size_t budget) {
  if (!fits_beside_x(1, row_bytes, x_bytes, budget)) return most;
  int p = most;
  while (p > 1 && !fits_beside_x(p, row_bytes, x_bytes, budget)) p /= 2;
  return p;
}

/// matmul_avx512.cpp (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
/// -mamx-tile -mamx-bf16 -mfma -mf16c): the AVX-512 kernels, and the AMX one (the
/// prefill of BF16 weights on whole groups of 16 weight rows; the rest goes to block_avx512).
/// The activations are quantized as for AVX2, or split into bf16 parts for the AMX kernel
/// (AmxBf16Chunk).
void block_avx512(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1);
/// Activation rows of one tile of the AVX-512 VNNI prefill (Q8_0, Q4_0, K-quants; matmul_avx512.cpp
/// says why 6); split() gives those kernels tasks of whole tiles.
constexpr std::size_t kVnniRows = 6;
void block_amx(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1);
/// True when the AMX kernel takes this product (matmul.cpp): BF16 weights, T > 1. Then split()
/// gives it tasks that start on whole groups of 16 weight rows and of 16 activation rows, and
/// a.xbf16 is set.
bool amx_takes(GgmlType type, std::size_t T);
/// The BF16 weights' AMX activations: group g (rows 16 g .. 16 g + 15) of the T x K rows of
/// X, as ceil(K / 32) chunks at out (AmxBf16Chunk). In matmul_avx512.cpp (and its emulated copy:
/// pack_amx_bf16_emulated).
void pack_amx_bf16(const float* x, std::size_t K, std::size_t T, std::size_t g, AmxBf16Chunk* out);
void pack_amx_bf16_emulated(const float* x, std::size_t K, std::size_t T, std::size_t g, AmxBf16Chunk* out);
using PackBf16 = void (*)(const float* x, std::size_t K, std::size_t T, std::size_t g, AmxBf16Chunk* out);

/// The same source compiled against emulations of the instructions (tests/engine/
/// avx512_emulated.cpp; tests only): runs on any CPU with AVX2, slowly.
void block_avx512_emulated(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0,
                           std::size_t t1);
void block_amx_emulated(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1);

/// How decode (T = 1) splits a product's rows between the threads of a pool (matmul.cpp):
/// `guided` (the default): the threads take from a counter per product, each time the remaining
/// rows / threads (whole runs of 4, at least 128 KiB and at most 4 MiB of rows), product after
/// product; `shares`:
/// one contiguous share per thread (as from 28fb4c5 to ccc8512). Process-wide; for
/// bench/cpu/bench_decode_split and the tests.
enum class DecodeSplit { guided, shares };
void set_decode_split(DecodeSplit split);
/// Tests: true makes matmul_swiglu's decode put off every take's SwiGLU to the end of its thread's
/// takes, as it does for a take of up that ends before gate's last take (matmul.cpp).
void set_defer_swiglu(bool on);

/// matmul_shared on the path `isa` (one that usable_isa allows), whatever active_isa() says.
/// `int8_prefill`: on the avx2 path, Q8_0 / Q4_0 prefill with 8-bit activations (packed_takes).
/// `swiglu_pair`: outs[0] and outs[1] are matmul_swiglu's gate and up (as many rows): after the
/// products, outs[0].y = silu(outs[0].y) * outs[1].y; decode on a pool with the guided split does
/// it take by take of up's rows (matmul.cpp, decode_guided_swiglu).
void matmul_on(Isa isa, const MatmulOut* outs, std::size_t n_outs, const float* x, std::size_t T,
               ThreadPool* pool, bool int8_prefill = false, bool swiglu_pair = false);

/// The kernels of a path that tests hand to emulate_isa: the matmul kernel, for amx the packer of
/// the BF16 AMX activations, and the attention tile kernel (heads of a multiple of 16).
using AttentionTileFn = void (*)(const AttentionArgs& a, const AttentionTile& tile, float* workspace);
struct EmulatedPath {
  BlockKernel block = nullptr;
  PackBf16 pack_bf16 = nullptr;
  AttentionTileFn attention = nullptr;
};

/// Tests: makes `isa` (avx512 or amx) usable on a CPU with AVX2 that lacks it, running the
/// emulated kernels of `path` (all of them needed) for it; force_isa then selects it. No effect
/// where the CPU has it.
void emulate_isa(Isa isa, const EmulatedPath& path);
/// The attention tile kernel of a path that force_isa allowed, past avx2 (native or emulated).
AttentionTileFn attention_kernel_for(Isa isa);
/// The best path force_isa accepts: detect_isa(), or the best emulated one.
Isa usable_isa();

}  // namespace ponder::cpu::detail
