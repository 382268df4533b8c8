#pragma once
// Shared by matmul.cpp and the per-ISA kernel files: the quantized activation blocks and the
// kernel entry points. Kernel files compiled with ISA flags must use nothing from the standard
// library that could be instantiated (inline templates would be merged with the portable
// translation units' copies by the linker); plain C++ and intrinsics only.
#include <cstddef>
#include <cstdint>

#include "engine/quant.h"

namespace ponder::cpu {
enum class Isa;  // matmul.h
}

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

/// Everything a kernel needs for one call.
struct MatmulArgs {
  GgmlType type;
  const unsigned char* w;  // row n at w + n * w_row_bytes
  std::size_t w_row_bytes;
  std::size_t K, N, T;
  const float* x;  // T x K
  const void* xq;  // T rows of quantized X (BlockQ8x32 or BlockQ8x256), row stride xq_row_bytes
  std::size_t xq_row_bytes;
  float* y;  // T x N
};

/// Computes Y[t, n] for n in [n0, n1), t in [t0, t1).
using BlockKernel = void (*)(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0,
                             std::size_t t1);

/// matmul_avx2.cpp (compiled with -mavx2 -mfma -mf16c): the activation quantizers of the int8
/// paths (d = max|x| / 127, q = nearest-even(x / d), as matmul.h says) and the kernels.
void quantize_row_q8x32(const float* x, std::size_t K, BlockQ8x32* out);
void quantize_row_q8x256(const float* x, std::size_t K, BlockQ8x256* out);
void block_avx2(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1);

/// matmul_avx512.cpp (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
/// -mfma -mf16c): the AVX-512 kernels; the activations are quantized as for AVX2.
void block_avx512(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0, std::size_t t1);

/// The same source compiled against SIMDe's portable AVX-512 (library ponder_avx512_emulated,
/// tests only): runs on any CPU with AVX2, slowly.
void block_avx512_emulated(const MatmulArgs& a, std::size_t n0, std::size_t n1, std::size_t t0,
                           std::size_t t1);

/// Tests: makes Isa::avx512 usable on a CPU with AVX2 but without AVX-512, running `kernel`
/// (block_avx512_emulated) for it; force_isa(Isa::avx512) then selects it. No effect where the
/// CPU has AVX-512 (the real kernels run) or lacks AVX2.
void emulate_avx512(BlockKernel kernel);
/// The best path force_isa accepts: detect_isa(), or avx512 after emulate_avx512.
Isa usable_isa();

}  // namespace ponder::cpu::detail
