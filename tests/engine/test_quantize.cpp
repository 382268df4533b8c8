// The quantizers: half / bfloat16 conversion, and the block quantizers against llama.cpp's known
// answers and against their own dequantizers.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/quant.h"

using namespace ponder;

namespace {
const std::string kTestdata = std::string(PONDER_SHARED_DIR) + "/testdata/";

float from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::vector<float> as_floats(const gguf::TensorInfo& t) {
  std::vector<float> v(t.elements);
  std::memcpy(v.data(), t.data, t.bytes);
  return v;
}
}  // namespace

TEST_CASE("f32_to_f16 inverts f16_to_f32 for all 65536 halves", "[quant]") {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<std::uint16_t>(h));
    const std::uint16_t back = f32_to_f16(f);
    if (std::isnan(f)) {
      CHECK(std::isnan(f16_to_f32(back)));
      CHECK((back & 0x8000) == (h & 0x8000));
    }
    if (back != h) FAIL_CHECK("half " << h << " came back as " << back);
  }
}

TEST_CASE("f32_to_bf16 inverts bf16_to_f32 for all 65536 bfloat16s", "[quant]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_f32(static_cast<std::uint16_t>(b));
    const std::uint16_t back = f32_to_bf16(f);
    if (std::isnan(f)) CHECK(std::isnan(bf16_to_f32(back)));
    if (back != b) FAIL_CHECK("bfloat16 " << b << " came back as " << back);
  }
}

TEST_CASE("f32_to_f16 rounds to nearest even, overflows to infinity, keeps subnormals", "[quant]") {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
  CHECK(f32_to_f16(1.0f + 0x1p-11f) == 0x3C00);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  CHECK(f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3C02);
  // Just above / below a tie.
  CHECK(f32_to_f16(std::nextafter(1.0f + 0x1p-11f, 2.0f)) == 0x3C01);
  CHECK(f32_to_f16(std::nextafter(1.0f + 3 * 0x1p-11f, 0.0f)) == 0x3C01);
  // A carry out of the mantissa moves into the exponent.
  CHECK(f32_to_f16(2.0f - 0x1p-12f) == 0x4000);
  CHECK(f32_to_f16(-1.5f) == 0xBE00);
  CHECK(f32_to_f16(0.0f) == 0x0000);
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  // Largest finite half is 65504; 65520 is the tie with 65536 (even) and so overflows.
  CHECK(f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(f32_to_f16(65519.996f) == 0x7BFF);
  CHECK(f32_to_f16(65520.0f) == 0x7C00);
  CHECK(f32_to_f16(-1e10f) == 0xFC00);
  CHECK(f32_to_f16(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK(f32_to_f16(std::numeric_limits<float>::max()) == 0x7C00);
  CHECK(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(f16_to_f32(f32_to_f16(from_bits(0x7F800001u)))));  // payload only in low bits
  CHECK(std::isnan(f16_to_f32(f32_to_f16(from_bits(0xFF800001u)))));
  // Subnormals: smallest 2^-24, largest (1023 * 2^-24), smallest normal 2^-14.
  CHECK(f32_to_f16(0x1p-24f) == 0x0001);
  CHECK(f32_to_f16(1023 * 0x1p-24f) == 0x03FF);
  CHECK(f32_to_f16(0x1p-14f) == 0x0400);
  CHECK(f32_to_f16(-3 * 0x1p-24f) == 0x8003);
  // 2^-25 is the tie between 0 and 2^-24 (odd): goes to 0; anything above goes to 2^-24.
  CHECK(f32_to_f16(0x1p-25f) == 0x0000);
  CHECK(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)) == 0x0001);
  CHECK(f32_to_f16(-0x1p-26f) == 0x8000);
  // 1.5 * 2^-24 ties between 1 (odd) and 2 (even); 2.5 * 2^-24 ties between 2 and 3.
  CHECK(f32_to_f16(1.5f * 0x1p-24f) == 0x0002);
  CHECK(f32_to_f16(2.5f * 0x1p-24f) == 0x0002);
  // The largest subnormal plus half a unit rounds up into the smallest normal.
  CHECK(f32_to_f16(1023.5f * 0x1p-24f) == 0x0400);
  CHECK(f32_to_f16(from_bits(0x00000001u)) == 0x0000);  // float subnormals are far below
}

TEST_CASE("f32_to_bf16 rounds to nearest even and overflows to infinity", "[quant]") {
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(f32_to_bf16(from_bits(0x3F808000u)) == 0x3F80);  // tie, even stays
  CHECK(f32_to_bf16(from_bits(0x3F818000u)) == 0x3F82);  // tie, odd rounds up
  CHECK(f32_to_bf16(from_bits(0x3F808001u)) == 0x3F81);
  CHECK(f32_to_bf16(from_bits(0x3F817FFFu)) == 0x3F81);
  CHECK(f32_to_bf16(from_bits(0x3FFF8000u)) == 0x4000);  // carry into the exponent
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);
  CHECK(f32_to_bf16(from_bits(0x7F7F7FFFu)) == 0x7F7F);
  CHECK(f32_to_bf16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(f32_to_bf16(from_bits(0x00008000u)) == 0x0000);  // subnormal tie to even 0
  CHECK(f32_to_bf16(from_bits(0x00018000u)) == 0x0002);
  CHECK(f32_to_bf16(from_bits(0x80010000u)) == 0x8001);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7F800001u)))));
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0xFFFFFFFFu)))));
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("row_bytes and can_quantize", "[quant]") {
  CHECK(row_bytes(GgmlType::f32, 10) == 40);
  CHECK(row_bytes(GgmlType::f16, 10) == 20);
  CHECK(row_bytes(GgmlType::bf16, 10) == 20);
  CHECK(row_bytes(GgmlType::q8_0, 64) == 68);
  CHECK(row_bytes(GgmlType::q4_0, 1536) == 48 * 18);
  CHECK(row_bytes(GgmlType::q4_k, 512) == 288);
  CHECK(row_bytes(GgmlType::q5_k, 256) == 176);
  CHECK(row_bytes(GgmlType::q6_k, 1536) == 6 * 210);
  for (GgmlType t : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0, GgmlType::q4_0,
                     GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k})
    CHECK(can_quantize(t));
  for (GgmlType t : {GgmlType::q4_1, GgmlType::q5_0, GgmlType::q2_k, GgmlType::q8_k, GgmlType::i8})
    CHECK_FALSE(can_quantize(t));
  std::string error;
  float x[32] = {};
  unsigned char out[64];
  CHECK_FALSE(quantize(GgmlType::q4_1, x, out, 32, &error));
  CHECK(error == "cannot quantize to type q4_1");
  CHECK_FALSE(quantize(static_cast<GgmlType>(99), x, out, 32, &error));
  CHECK(error == "cannot quantize to type 99");
}

TEST_CASE("quantizers reproduce llama.cpp's blocks", "[quant]") {
  std::string error;
  auto file = gguf::File::open(kTestdata + "quant_known_answers.gguf", &error);
  INFO(error);  // the test data comes from ../shared/testdata (PONDER_SHARED_DIR)
  REQUIRE(file);
  for (const char* type : {"Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K"}) {
    INFO(type);
    const gguf::TensorInfo* raw = file->tensor(std::string(type) + ".raw");
    const gguf::TensorInfo* source = file->tensor(std::string(type) + ".source");
    REQUIRE(raw);
    REQUIRE(source);
    REQUIRE(source->type == GgmlType::f32);
    REQUIRE(raw->elements == source->elements);
    std::vector<unsigned char> got(row_bytes(raw->type, raw->elements));
    REQUIRE(got.size() == raw->bytes);
    std::vector<float> src = as_floats(*source);
    REQUIRE(quantize(raw->type, src.data(), got.data(), src.size(), &error));
    const auto* want = static_cast<const unsigned char*>(raw->data);
    std::size_t same = 0;
    for (std::size_t i = 0; i < got.size(); ++i) same += got[i] == want[i];
    INFO("same bytes " << same << " of " << got.size());
    CHECK(same == got.size());
  }
}
