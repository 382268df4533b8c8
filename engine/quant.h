#pragma once
// ggml tensor types: sizes, and the scalar dequantizers — the reference that fast kernels are
// tested against. Block layouts as in MODEL_FACTS.md and ggml's sources.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ponder {

/// ggml type ids as stored in GGUF tensor infos.
enum class GgmlType : std::uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
  q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
  i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;        // "q4_K", "f16", ...
  std::uint32_t block_elements;  // weights per block
  std::uint32_t block_bytes;     // bytes per block
};

/// The layout of a type id; null for ids ponder does not know (the caller reports them).
const GgmlTypeInfo* ggml_type_info(std::uint32_t id);

/// True when dequantize() handles `type`: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
bool can_dequantize(GgmlType type);

/// Converts `n` weights of `type` at `src` (whole blocks: n is a multiple of the block size)
/// to F32. Returns false with `error` set for a type it cannot convert or a partial block.
bool dequantize(GgmlType type, const void* src, float* dst, std::size_t n, std::string* error);

/// True when quantize() writes `type`: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
bool can_quantize(GgmlType type);

/// Converts `n` floats (whole blocks) to `type`, block by block as llama.cpp's reference
/// quantizers (quantize_row_*_ref) do, so that known answers reproduce. Returns false with
/// `error` set for a type it cannot write or a partial block. The block types need finite
/// inputs, and as in llama.cpp their scales are f16: tiny rows lose precision (Q6_K flushes
/// rows below about 1e-4 to zero), huge ones overflow (Q8_0 beyond about 8e6 gives inf/NaN).
bool quantize(GgmlType type, const float* src, void* dst, std::size_t n, std::string* error);

/// Bytes of `n` elements of `type` (n a multiple of the block size).
std::size_t row_bytes(GgmlType type, std::size_t n);

/// Float to IEEE half / bfloat16, rounding to nearest even (NaN stays NaN).
std::uint16_t f32_to_f16(float f);
std::uint16_t f32_to_bf16(float f);

/// IEEE half and bfloat16 to float, bit-exact (subnormals, infinities, NaN).
float f16_to_f32(std::uint16_t h);
inline float bf16_to_f32(std::uint16_t b) {
  std::uint32_t bits = std::uint32_t{b} << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

}  // namespace ponder
