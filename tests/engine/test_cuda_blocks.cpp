// kernels/blocks.h, the CUDA kernels' block decoders, compiled for the host: every element of
// random blocks of every type must decode bit for bit as ponder::dequantize does (through the
// group form, decode8 and decode1). Runs without a GPU, so this is where the bit layouts that
// gemv, dequantize and embed rely on are checked.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "kernels/blocks.h"

using ponder::GgmlType;
namespace blocks = ponder::blocks;

namespace {

const std::string kTestdata = std::string(PONDER_SHARED_DIR) + "/testdata/";

std::uint32_t bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

std::size_t block_elements(GgmlType type) {
  return ponder::ggml_type_info(static_cast<std::uint32_t>(type))->block_elements;
}

void put_half(unsigned char* p, float v) {
  const std::uint16_t h = ponder::f32_to_f16(v);
  p[0] = static_cast<unsigned char>(h & 0xFF);
  p[1] = static_cast<unsigned char>(h >> 8);
}

// Random bytes in every field, with sane f16 scales (random exponents, both signs for d):
// every quant value, every 6-bit scale and min, every int8 scale (-128 included) shows up.
std::vector<unsigned char> random_blocks(GgmlType type, std::size_t n, std::mt19937_64& rng) {
  std::vector<unsigned char> bytes(ponder::row_bytes(type, n));
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  const auto* info = ponder::ggml_type_info(static_cast<std::uint32_t>(type));
  std::vector<std::size_t> fields;
  switch (type) {
    case GgmlType::q8_0: case GgmlType::q4_0: fields = {0}; break;
    case GgmlType::q4_k: case GgmlType::q5_k: fields = {0, 2}; break;
    case GgmlType::q6_k: fields = {208}; break;
    default: return bytes;  // F32 / F16 / BF16: every bit pattern (NaN, inf, subnormals)
  }
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::uniform_int_distribution<int> exponent(-24, 8);
  for (std::size_t off = 0; off < bytes.size(); off += info->block_bytes)
    for (std::size_t f : fields) {
      const float sign = rng() & 1 ? -1.0f : 1.0f;
      put_half(&bytes[off + f], sign * std::ldexp(mantissa(rng), exponent(rng)));
    }
  return bytes;
}

// Quantized by the reference quantizer from normal floats of varied scale (for F32/F16/BF16,
// the floats rounded to the type).
std::vector<unsigned char> quantized_blocks(GgmlType type, std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> src(n);
  const std::size_t be = block_elements(type) > 1 ? block_elements(type) : 64;
  for (std::size_t i = 0; i < n; ++i) src[i] = std::exp2(float(i / be % 9) - 6.0f) * normal(rng);
  std::vector<unsigned char> bytes(ponder::row_bytes(type, n));
  std::string error;
  REQUIRE(ponder::quantize(type, src.data(), bytes.data(), n, &error));
  return bytes;
}

// Decodes every element of `bytes` (n elements of kType) through blocks.h and compares the bits
// with ponder::dequantize: decode8 per group, the group form value = scale*q - min per element
// (the same rounding steps as the reference), decode1 per element. `shift` offsets the data in
// the buffer so that the host path is also seen to work at odd addresses.
template <GgmlType kType>
void check_exact(const std::vector<unsigned char>& bytes, std::size_t n, std::size_t shift) {
  std::vector<float> want(n);
  std::string error;
  REQUIRE(ponder::dequantize(kType, bytes.data(), want.data(), n, &error));
  std::vector<unsigned char> moved(bytes.size() + shift);
  std::memcpy(moved.data() + shift, bytes.data(), bytes.size());
  const unsigned char* base = moved.data() + shift;

  std::size_t wrong8 = 0, wrong_group = 0, wrong1 = 0, bad_form = 0, first_bad = n;
  const std::size_t groups = n / blocks::kGroup;
  for (std::size_t g = 0; g < groups; ++g) {
    const std::size_t e = g * blocks::kGroup;
    float v[blocks::kGroup];
    blocks::decode8<kType>(base, e, v);
    blocks::Group grp;
    blocks::load_group<kType>(base, e, grp);
    for (int i = 0; i < blocks::kGroup; ++i) {
      const std::uint32_t w = bits(want[e + i]);
      if (bits(v[i]) != w) {
        ++wrong8;
        if (first_bad == n) first_bad = e + i;
      }
      float from_group;
      if constexpr (blocks::Traits<kType>::kFloat) {
        from_group = grp.q[i];
        if (grp.scale != 1.0f || grp.min != 0.0f) ++bad_form;
      } else {
        // q is a small integer, exactly; the symmetric types have no min.
        if (grp.q[i] != std::nearbyint(grp.q[i]) || std::fabs(grp.q[i]) > 128.0f) ++bad_form;
        if (!blocks::Traits<kType>::kHasMin && grp.min != 0.0f) ++bad_form;
        const float p = grp.scale * grp.q[i];
        from_group = blocks::Traits<kType>::kHasMin ? p - grp.min : p;
      }
      if (bits(from_group) != w) ++wrong_group;
    }
  }
  for (std::size_t e = 0; e < n; ++e)
    if (bits(blocks::decode1<kType>(base, e)) != bits(want[e])) ++wrong1;
  INFO("n " << n << ", shift " << shift << ", first wrong element " << first_bad);
  CHECK(wrong8 == 0);
  CHECK(wrong_group == 0);
  CHECK(wrong1 == 0);
  CHECK(bad_form == 0);
}

template <GgmlType kType>
void check_type(std::mt19937_64& rng) {
  const std::size_t be = block_elements(kType);
  // Whole groups for decode8 (the F types' tails are decode1's: the kernels' tail path).
  const std::size_t n = be == 1 ? 8 * 4096 : be * (be == 32 ? 2048 : 256);
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    check_exact<kType>(random_blocks(kType, n, rng), n, round);
    if constexpr (kType != GgmlType::f32) check_exact<kType>(quantized_blocks(kType, n, rng), n, 0);
  }
}

}  // namespace

TEST_CASE("blocks.h decodes every type bit for bit as ponder::dequantize", "[cuda_blocks]") {
  std::mt19937_64 rng(std::random_device{}());
  const auto seed = rng();
  INFO("seed " << seed);
  rng.seed(seed);
  SECTION("f32") { check_type<GgmlType::f32>(rng); }
  SECTION("f16") { check_type<GgmlType::f16>(rng); }
  SECTION("bf16") { check_type<GgmlType::bf16>(rng); }
  SECTION("q8_0") { check_type<GgmlType::q8_0>(rng); }
  SECTION("q4_0") { check_type<GgmlType::q4_0>(rng); }
  SECTION("q4_k") { check_type<GgmlType::q4_k>(rng); }
  SECTION("q5_k") { check_type<GgmlType::q5_k>(rng); }
  SECTION("q6_k") { check_type<GgmlType::q6_k>(rng); }
}

TEST_CASE("blocks.h half_to_float matches f16_to_f32 for all 65536 halves", "[cuda_blocks]") {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    INFO("half 0x" << std::hex << h);
    REQUIRE(bits(blocks::half_to_float(h)) == bits(ponder::f16_to_f32(static_cast<std::uint16_t>(h))));
    REQUIRE(bits(blocks::bf16_to_float(h)) == bits(ponder::bf16_to_f32(static_cast<std::uint16_t>(h))));
  }
}

TEST_CASE("blocks.h scale_min_k4 unpacks all 8 sub-blocks of every byte pattern", "[cuda_blocks]") {
  // Each of the 12 bytes set to every value in turn, the rest random: the unpacked 6-bit values
  // against the layout written out longhand (as quant.cpp's quant_k_head packs it).
  std::mt19937_64 rng(12345);
  for (int byte = 0; byte < 12; ++byte)
    for (int value = 0; value < 256; ++value) {
      unsigned char q[12];
      for (auto& b : q) b = static_cast<unsigned char>(rng());
      q[byte] = static_cast<unsigned char>(value);
      for (int j = 0; j < 8; ++j) {
        std::uint32_t sc, m;
        blocks::scale_min_k4(j, q, &sc, &m);
        const std::uint32_t want_sc = j < 4 ? q[j] & 63u : (q[j + 4] & 15u) | ((q[j - 4] >> 6) << 4);
        const std::uint32_t want_m = j < 4 ? q[j + 4] & 63u : (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        REQUIRE(sc == want_sc);
        REQUIRE(m == want_m);
        REQUIRE(sc < 64);
        REQUIRE(m < 64);
      }
    }
}

TEST_CASE("blocks.h decodes llama.cpp's known-answer blocks exactly", "[cuda_blocks]") {
  std::string error;
  auto file = ponder::gguf::File::open(kTestdata + "quant_known_answers.gguf", &error);
  INFO(error);  // the test data comes from ../shared/testdata (PONDER_SHARED_DIR)
  REQUIRE(file);
  for (const char* name : {"Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K"}) {
    INFO(name);
    const auto* raw = file->tensor(std::string(name) + ".raw");
    const auto* expected = file->tensor(std::string(name) + ".expected");
    REQUIRE(raw);
    REQUIRE(expected);
    REQUIRE(expected->type == GgmlType::f32);
    REQUIRE(raw->elements == expected->elements);
    const std::size_t n = raw->elements;
    std::vector<float> want(n), got(n);
    std::memcpy(want.data(), expected->data, n * 4);
    const auto* base = static_cast<const unsigned char*>(raw->data);
    for (std::size_t e = 0; e < n; e += blocks::kGroup) {
      switch (raw->type) {
        case GgmlType::q4_0: blocks::decode8<GgmlType::q4_0>(base, e, &got[e]); break;
        case GgmlType::q8_0: blocks::decode8<GgmlType::q8_0>(base, e, &got[e]); break;
        case GgmlType::q4_k: blocks::decode8<GgmlType::q4_k>(base, e, &got[e]); break;
        case GgmlType::q5_k: blocks::decode8<GgmlType::q5_k>(base, e, &got[e]); break;
        case GgmlType::q6_k: blocks::decode8<GgmlType::q6_k>(base, e, &got[e]); break;
        default: FAIL("unexpected type");
      }
    }
    std::size_t same = 0;
    for (std::size_t i = 0; i < n; ++i) same += bits(got[i]) == bits(want[i]);
    INFO("same " << same << " of " << n);
    CHECK(same == n);
  }
}
