#include "agent/tags.h"

#include <array>
#include <cstring>

namespace ponder::agent {
namespace {
constexpr std::array<std::pair<std::string_view, std::string_view>, kTagKindCount> kNames = {{
    {"function", "definition.function"},   {"method", "definition.method"},
    {"class", "definition.class"},         {"interface", "definition.interface"},
    {"module", "definition.module"},       {"type", "definition.type"},
    {"macro", "definition.macro"},         {"constant", "definition.constant"},
    {"implementation", "definition.implementation"},
    {"call", "reference.call"},            {"type-ref", "reference.type"},
    {"class-ref", "reference.class"},      {"implementation-ref", "reference.implementation"},
}};
}  // namespace

std::string_view tag_kind_name(TagKind k) { return kNames[static_cast<std::size_t>(k)].first; }

bool tag_kind_from_capture(std::string_view capture, TagKind* out) {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i].second == capture) {
      *out = static_cast<TagKind>(i);
      return true;
    }
  return false;
}

std::uint64_t hash_content(std::string_view bytes) {
  // 64-bit multiply-mix over 8-byte words (wyhash-like); fast enough to hash a whole tree at
  // memory speed, and stable across runs and machines of the same endianness.
  constexpr std::uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull;
  auto mix = [](std::uint64_t a, std::uint64_t b) {
    __uint128_t r = static_cast<__uint128_t>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
  };
  std::uint64_t h = k0 ^ bytes.size();
  const char* p = bytes.data();
  std::size_t n = bytes.size();
  while (n >= 16) {
    std::uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    h = mix(a ^ k1 ^ h, b ^ k0);
    p += 16;
    n -= 16;
  }
  std::uint64_t a = 0, b = 0;
  std::memcpy(&a, p, n < 8 ? n : 8);
  if (n > 8) std::memcpy(&b, p + 8, n - 8);
  h = mix(a ^ k1 ^ h, b ^ k0 ^ n);
  return mix(h ^ k0, k1);
}

}  // namespace ponder::agent
