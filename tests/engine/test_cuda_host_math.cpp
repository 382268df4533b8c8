// The pure arithmetic the CUDA kernels share with the host (kernels/attention_math.h), checked
// without a GPU: the Q8_0 rounding of the KV store against engine/quant's quantize bit for bit,
// the decode split ranges, the RoPE pairs and the attention row mapping.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "engine/quant.h"
#include "kernels/attention_math.h"

using namespace ponder;
namespace math = ponder::cuda::math;

namespace {

// One Q8_0 block written the way kernels/rope.cu's store does (amax, the helpers, the f16 scale).
std::vector<unsigned char> q8_0_block(const float* x) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const math::Q8Scale s = math::q8_0_scale(amax);
  std::vector<unsigned char> b(34);
  const std::uint16_t d = f32_to_f16(s.d);
  std::memcpy(b.data(), &d, 2);
  for (int j = 0; j < 32; ++j) {
    const std::int8_t q = math::q8_0_level(x[j], s.id);
    std::memcpy(b.data() + 2 + j, &q, 1);
  }
  return b;
}

}  // namespace

TEST_CASE("cuda host math: Q8_0 store rounding equals quantize bit for bit", "[cuda_host_math]") {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-6.0f, 4.0f);
  std::vector<float> x(32);
  std::vector<unsigned char> ref(34);
  int checked = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const float scale = std::pow(10.0f, log_scale(rng));
    for (float& v : x) v = normal(rng) * scale;
    switch (trial % 5) {
      case 1: x[trial % 32] = 0; break;                    // zeros mixed in
      case 2: for (float& v : x) v = std::round(v * 4) / 4; break;  // many ties of x / d at .5
      case 3: std::fill(x.begin(), x.end(), 0.0f), x[trial % 32] = scale; break;  // one non-zero
      case 4: if (trial % 20 == 4) std::fill(x.begin(), x.end(), 0.0f); break;  // all zero
      default: break;
    }
    REQUIRE(quantize(GgmlType::q8_0, x.data(), ref.data(), 32, nullptr));
    const std::vector<unsigned char> got = q8_0_block(x.data());
    INFO("trial " << trial << " scale " << scale);
    REQUIRE(std::memcmp(got.data(), ref.data(), 34) == 0);
    ++checked;
  }
  CHECK(checked == 20000);
}

TEST_CASE("cuda host math: decode splits cover every position below the length once, in whole tiles", "[cuda_host_math]") {
  for (std::uint32_t splits : {1u, 7u, 32u, 64u, 128u}) {
    for (std::uint32_t length : {1u, 2u, 31u, 32u, 33u, 63u, 64u, 1000u, 1024u, 5000u, 131072u, 131071u}) {
      INFO("splits " << splits << " length " << length);
      std::uint32_t next = 0, non_empty = 0;
      for (std::uint32_t s = 0; s < splits; ++s) {
        const math::KeyRange r = math::decode_split(length, splits, s);
        REQUIRE(r.begin <= r.end);
        REQUIRE(r.end <= length);
        if (r.begin == r.end) continue;  // empty: a neutral partial
        ++non_empty;
        REQUIRE(r.begin == next);  // contiguous, in order, no overlap
        REQUIRE(r.begin % math::kTileKeys == 0);
        next = r.end;
      }
      REQUIRE(next == length);
      REQUIRE(non_empty >= 1);
      // Balanced: no split has more than one tile above the even share.
      const std::uint32_t tiles = (length + math::kTileKeys - 1) / math::kTileKeys;
      for (std::uint32_t s = 0; s < splits; ++s) {
        const math::KeyRange r = math::decode_split(length, splits, s);
        REQUIRE(r.end - r.begin <= ((tiles + splits - 1) / splits) * math::kTileKeys);
      }
    }
  }
}

TEST_CASE("cuda host math: decode uses more splits for fewer KV heads, within bounds", "[cuda_host_math]") {
  std::uint32_t previous = math::kMaxDecodeSplits;
  for (std::uint32_t blocks = 1; blocks <= 1024; ++blocks) {
    const std::uint32_t s = math::decode_splits(blocks);
    INFO("blocks per split " << blocks << ": " << s << " splits");
    REQUIRE(s >= math::kMinDecodeSplits);
    REQUIRE(s <= math::kMaxDecodeSplits);
    REQUIRE((s & (s - 1)) == 0);
    REQUIRE(s <= previous);  // never more splits for a larger grid
    REQUIRE((blocks * s >= math::kDecodeTargetBlocks || s == math::kMaxDecodeSplits));
    if (s > math::kMinDecodeSplits) REQUIRE(blocks * (s / 2) < math::kDecodeTargetBlocks);  // no more than needed
    previous = s;
  }
  CHECK(math::decode_splits(2) == 128);  // 1.5B: 2 KV heads, one row tile
  CHECK(math::decode_splits(4) == 64);   // 7B: 4 KV heads
  CHECK(math::decode_splits(8) == 32);   // 8B Llama: 8 KV heads
}

TEST_CASE("cuda host math: RoPE pairs partition the head as the CPU's rope pairs them", "[cuda_host_math]") {
  for (std::uint32_t D : {32u, 64u, 128u, 96u, 256u}) {
    for (bool adjacent : {false, true}) {
      std::set<std::uint32_t> seen;
      for (std::uint32_t i = 0; i < D / 2; ++i) {
        const math::RopePair p = math::rope_pair(i, D, adjacent);
        // engine/cpu/cpu_backend.cpp: half pairs (i, i + D/2), adjacent pairs (2i, 2i + 1).
        CHECK(p.a == (adjacent ? 2 * i : i));
        CHECK(p.b == (adjacent ? 2 * i + 1 : i + D / 2));
        seen.insert(p.a);
        seen.insert(p.b);
      }
      CHECK(seen.size() == D);
      CHECK(*seen.rbegin() == D - 1);
    }
  }
}

TEST_CASE("cuda host math: attention rows flatten (query, head of group)", "[cuda_host_math]") {
  for (std::uint32_t group : {1u, 6u, 7u}) {
    for (std::uint32_t t = 0; t < 5; ++t)
      for (std::uint32_t j = 0; j < group; ++j) {
        const math::QueryRow r = math::query_row(t * group + j, group);
        CHECK(r.t == t);
        CHECK(r.head_in_group == j);
      }
  }
}
