// The quantizers: half / bfloat16 conversion, and the block quantizers against llama.cpp's known
// answers and against their own dequantizers.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
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

namespace {
struct RoundTrip {
  std::vector<float> y;
  double rms_error = 0, rms = 0, max_error = 0;
};

// dequantize(quantize(x)) and its error against x.
RoundTrip round_trip(GgmlType type, const std::vector<float>& x) {
  RoundTrip r;
  std::string error;
  std::vector<unsigned char> q(row_bytes(type, x.size()));
  r.y.resize(x.size());
  REQUIRE(quantize(type, x.data(), q.data(), x.size(), &error));
  REQUIRE(dequantize(type, q.data(), r.y.data(), x.size(), &error));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(r.y[i]) - x[i];
    r.rms_error += e * e;
    r.rms += static_cast<double>(x[i]) * x[i];
    r.max_error = std::max(r.max_error, std::fabs(e));
  }
  r.rms_error = std::sqrt(r.rms_error / x.size());
  r.rms = std::sqrt(r.rms / x.size());
  return r;
}

constexpr GgmlType kQuantTypes[] = {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0,
                                    GgmlType::q4_0, GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k};
}  // namespace

namespace {
// Per-element error bound of a block type, as a fraction of the largest |x| of the block (the
// 256-weight super-block for K-types), for scales in f16's normal range. Q8_0 and Q4_0 follow
// from the format: half a step (amax / 127) or, for Q4_0, a whole step (amax / 8: the side
// opposite the largest weight reaches only +7), plus the f16 rounding of d (2^-11 of the top
// level). The K-types' bounds are a little over one step of their levels (2/15, 2/31 and 1/32 of
// amax), the worst seen over 16,000 random rows being 0.107, 0.064 and 0.022: the 6-bit sub-block
// scales can leave a sub-block's weights up to a step off.
double block_error_bound(GgmlType type) {
  switch (type) {
    case GgmlType::q8_0: return 0.5 / 127 + 0x1p-11;
    case GgmlType::q4_0: return 1.0 / 8 + 0x1p-10;
    case GgmlType::q4_k: return 0.14;
    case GgmlType::q5_k: return 0.075;
    case GgmlType::q6_k: return 0.032;
    default: return 0;
  }
}

std::string type_name(GgmlType type) {
  return std::string(ggml_type_info(static_cast<std::uint32_t>(type))->name);
}

// Checks every element of y against x: within the type's relative rounding for F32/F16/BF16,
// within block_error_bound() of each block's largest |x| for the block types.
void check_elementwise(GgmlType type, const std::vector<float>& x, const std::vector<float>& y) {
  const std::size_t block = type == GgmlType::q4_k || type == GgmlType::q5_k || type == GgmlType::q6_k
                                ? 256
                                : ggml_type_info(static_cast<std::uint32_t>(type))->block_elements;
  std::size_t bad = 0;
  for (std::size_t b = 0; b < x.size(); b += block) {
    float amax = 0;
    for (std::size_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(x[i]));
    for (std::size_t i = b; i < b + block; ++i) {
      const double err = std::fabs(static_cast<double>(y[i]) - x[i]);
      double bound;
      switch (type) {
        case GgmlType::f32: bound = 0; break;
        case GgmlType::f16: bound = std::max(std::fabs(x[i]) * 0x1p-11, 0x1p-25); break;
        case GgmlType::bf16: bound = std::fabs(x[i]) * 0x1p-8; break;
        default: bound = amax * block_error_bound(type); break;
      }
      if (!(err <= bound) && bad++ < 5)
        FAIL_CHECK(type_name(type) << " weight " << i << ": " << x[i] << " came back as " << y[i]
                                   << " (error " << err << ", bound " << bound << ")");
    }
  }
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE("quantize then dequantize: error on random rows", "[quant]") {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  // Relative RMS error on Gaussian rows (llama.cpp's quantizers give about the same: Q4_0 0.088,
  // Q4_K 0.073, Q5_K 0.036, Q6_K 0.018, Q8_0 0.0054).
  const std::pair<GgmlType, double> rms_bounds[] = {
      {GgmlType::f32, 0.0},     {GgmlType::f16, 3e-4},   {GgmlType::bf16, 2.5e-3},
      {GgmlType::q8_0, 0.0065}, {GgmlType::q4_0, 0.10},  {GgmlType::q4_k, 0.085},
      {GgmlType::q5_k, 0.042},  {GgmlType::q6_k, 0.021},
  };
  std::vector<float> gaussian(4096);
  for (float& v : gaussian) v = 0.05f * normal(rng);
  for (const auto& [type, bound] : rms_bounds) {
    INFO(type_name(type));
    const RoundTrip r = round_trip(type, gaussian);
    CHECK(r.rms_error / r.rms <= bound);
    check_elementwise(type, gaussian, r.y);
  }
  // Element by element on rows of other shapes and scales (Gaussian, heavy-tailed, uniform,
  // sparse), all with block scales in f16's normal range.
  for (int rep = 0; rep < 200; ++rep) {
    const float scale = std::exp(std::uniform_real_distribution<float>(-2.0f, 6.0f)(rng));
    std::vector<float> x(1024);
    for (float& v : x) {
      switch (rep % 4) {
        case 0: v = scale * normal(rng); break;
        case 1: v = scale * normal(rng) * normal(rng) * normal(rng); break;
        case 2: v = scale * uniform(rng); break;
        default: v = uniform(rng) > 0.8f ? scale * normal(rng) : 0.0f; break;
      }
    }
    for (GgmlType type : kQuantTypes) {
      INFO(type_name(type) << ", row " << rep);
      check_elementwise(type, x, round_trip(type, x).y);
    }
  }
}

TEST_CASE("quantize then dequantize: constant rows and zeros", "[quant]") {
  for (GgmlType type : kQuantTypes) {
    INFO(type_name(type));
    // Constant rows come back within the f16 rounding of the block scale (bf16: its own).
    for (float c : {0.37f, -2.5f, 1000.0f, -0.031f}) {
      INFO(c);
      const RoundTrip r = round_trip(type, std::vector<float>(512, c));
      CHECK(r.max_error <= std::fabs(c) * (type == GgmlType::bf16 ? 0x1p-8 : 0x1p-10));
    }
    // All zeros: exactly zeros.
    const RoundTrip zeros = round_trip(type, std::vector<float>(512, 0.0f));
    CHECK(zeros.max_error == 0.0);
    // Tiny rows push the scales into f16's subnormals, or below: precision is lost (Q6_K of a row
    // of 3e-5 gives zeros, as llama.cpp's does), but nothing blows up.
    for (float c : {1e-3f, -3e-5f, 1e-9f}) {
      INFO(c);
      const RoundTrip r = round_trip(type, std::vector<float>(512, c));
      CHECK(r.max_error <= std::fabs(c));
    }
  }
  // The f16 scale's limits, as documented in quant.h.
  const RoundTrip flushed = round_trip(GgmlType::q6_k, std::vector<float>(256, -3e-5f));
  CHECK(std::all_of(flushed.y.begin(), flushed.y.end(), [](float v) { return v == 0.0f; }));
  const RoundTrip overflowed = round_trip(GgmlType::q8_0, std::vector<float>(32, 1e7f));
  CHECK_FALSE(std::isfinite(overflowed.y[0]));
}

TEST_CASE("quantize then dequantize: a row with one huge outlier", "[quant]") {
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(1024);
  for (float& v : x) v = 0.05f * normal(rng);
  for (float outlier : {-1000.0f, 3000.0f}) {
    std::vector<float> with = x;
    with[300] = outlier;
    for (GgmlType type : kQuantTypes) {
      INFO(type_name(type) << ", outlier " << outlier);
      const RoundTrip plain = round_trip(type, x);
      const RoundTrip r = round_trip(type, with);
      // The outlier itself comes back close (it sets the block's top level).
      CHECK(std::fabs(r.y[300] - outlier) <= std::fabs(outlier) * (type == GgmlType::bf16 ? 0x1p-8 : 0x1p-10));
      // Its block is coarse but within the bound; blocks are independent, so every block
      // without the outlier comes back exactly as it does without it.
      check_elementwise(type, with, r.y);
      const std::size_t block = ggml_type_info(static_cast<std::uint32_t>(type))->block_elements;
      const std::size_t first = 300 / block * block, last = first + block;
      std::size_t changed = 0;
      for (std::size_t i = 0; i < x.size(); ++i)
        if ((i < first || i >= last) && r.y[i] != plain.y[i]) ++changed;
      CHECK(changed == 0);
    }
  }
}

TEST_CASE("quantize refuses a partial block", "[quant]") {
  std::vector<float> x(300, 1.0f);
  std::vector<unsigned char> out(1024);
  std::string error;
  CHECK_FALSE(quantize(GgmlType::q4_k, x.data(), out.data(), 300, &error));
  CHECK(error == "300 weights is not a whole number of q4_K blocks of 256");
  CHECK_FALSE(quantize(GgmlType::q5_k, x.data(), out.data(), 100, &error));
  CHECK(error == "100 weights is not a whole number of q5_K blocks of 256");
  CHECK_FALSE(quantize(GgmlType::q6_k, x.data(), out.data(), 257, &error));
  CHECK(error == "257 weights is not a whole number of q6_K blocks of 256");
  CHECK_FALSE(quantize(GgmlType::q8_0, x.data(), out.data(), 33, &error));
  CHECK(error == "33 weights is not a whole number of q8_0 blocks of 32");
  CHECK_FALSE(quantize(GgmlType::q4_0, x.data(), out.data(), 31, &error));
  CHECK(error == "31 weights is not a whole number of q4_0 blocks of 32");
  CHECK_FALSE(quantize(GgmlType::q4_0, x.data(), out.data(), 1, nullptr));  // no error wanted
  // Nothing was written, and whole blocks (or none) work.
  CHECK(std::all_of(out.begin(), out.end(), [](unsigned char c) { return c == 0; }));
  CHECK(quantize(GgmlType::q4_k, x.data(), out.data(), 0, &error));
  CHECK(quantize(GgmlType::f16, x.data(), out.data(), 300, &error));
}
