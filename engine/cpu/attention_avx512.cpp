// AVX-512 attention kernel (compiled with the flags of matmul_avx512.cpp; called only when the CPU
// has them, and heads of a multiple of 16): attention_kernel.h's tile over 16-lane vectors. See
// attention.h for what it computes and attention_internal.h for the rules of this file.
//
// The same source is compiled a second time with PONDER_SIMD_EMU defined, against SIMDe's
// portable AVX-512 (tests/engine/attention_avx512_emulated.cpp), as
// `attention_tile_avx512_emulated`: the tests run that copy where the CPU lacks AVX-512.
#if !defined(PONDER_SIMD_EMU)
#include <immintrin.h>
#endif

#include "engine/cpu/attention_kernel.h"
#include "engine/cpu/attention_lanes8.h"
#include "engine/cpu/avx512_common.h"

namespace ponder::cpu::detail {
namespace {

struct AttentionAvx512 {
  using Vec = __m512;
  using Lanes8 = AttentionAvx2;
  static constexpr std::size_t kLanes = 16;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec set1(float f) { return _mm512_set1_ps(f); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec fnmadd(Vec a, Vec b, Vec c) { return _mm512_fnmadd_ps(a, b, c); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static Vec round(Vec v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Vec pow2(Vec n) { return _mm512_scalef_ps(_mm512_set1_ps(1.0f), n); }  // exact for integer n
  static Vec zero_below(Vec x, Vec y, float limit) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(limit), _CMP_NLT_UQ), y);
  }
  static Vec widen_f16(const unsigned char* p) { return widen16_f16(p); }
  static Vec widen_i8(const unsigned char* p) { return widen16_i8(p); }
  static __m256 fold(Vec v) { return fold256(v); }
  static __m256 fold_max(Vec v) {
    return _mm256_max_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
  static Vec visible(Vec p, std::size_t j, std::size_t seen) {
    const std::size_t left = seen > j ? seen - j : 0;
    return _mm512_maskz_mov_ps(left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1), p);
  }
};

}  // namespace

#if defined(PONDER_SIMD_EMU)
#define PONDER_ATTENTION_AVX512_ENTRY attention_tile_avx512_emulated
#else
#define PONDER_ATTENTION_AVX512_ENTRY attention_tile_avx512
#endif

// 6 query rows x 4 vectors of 16 keys (24 accumulators of the 32 registers; in the values, 6 rows
// x 64 dimensions). With AVX2's 3 rows (12 accumulators) a 512-token prefill's attention after
// 3,584 keys ran at 92-111 GFLOP/s on 2 Intel Xeon threads; 6 rows 170-217 (4 rows 202-206, 5
// 211-215; bench_attention, alternated).
void PONDER_ATTENTION_AVX512_ENTRY(const AttentionArgs& a, const AttentionTile& tile, float* workspace) {
  attention_tile<AttentionAvx512, 6, 4>(a, tile, workspace);
}

#if !defined(PONDER_SIMD_EMU)
// The 8-lane kernels with 32 registers: 6 query rows at a time (24 accumulators), against 4
// vectors of 8 keys in the tile and 4 keys in decode's chunks. With AVX2's 16 the twelfth
// accumulator of 3 rows x 4 keys went through the stack: a load, FMA and store chain on every
// step, ~25% of decode attention's samples on Zen 4.
void attention_tile_lanes8_avx512(const AttentionArgs& a, const AttentionTile& tile, float* workspace) {
  attention_tile<AttentionAvx2, 6, 4>(a, tile, workspace);
}

void attention_chunk_lanes8_avx512(const AttentionArgs& a, std::size_t j_begin, std::size_t j_end,
                                   std::size_t prefetch_end, float* partial, float* workspace) {
  attention_chunk<AttentionAvx2, 6>(a, j_begin, j_end, prefetch_end, partial, workspace);
}

void attention_merge_lanes8_avx512(const AttentionArgs& a, const float* partials, std::size_t chunks) {
  attention_merge<AttentionAvx2>(a, partials, chunks);
}
#endif

}  // namespace ponder::cpu::detail
