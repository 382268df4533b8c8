#include "lsp/positions.h"

#include <algorithm>

namespace ponder::lsp {
namespace {

// Length in bytes of the UTF-8 sequence starting at s[i] (1 for an invalid one) and its
// length in UTF-16 units.
void char_at(std::string_view s, std::size_t i, std::size_t* bytes, std::uint32_t* units) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) n = 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) n = 0;
  if (n == 0) {
    *bytes = 1;
    *units = 1;
    return;
  }
  *bytes = n;
  *units = n == 4 ? 2 : 1;
}

// Byte offsets of the start of `line` and of its end (before "\r\n" or "\n").
bool line_bounds(std::string_view text, std::uint32_t line, std::size_t* begin, std::size_t* end) {
  std::size_t at = 0;
  for (std::uint32_t l = 0; l < line; ++l) {
    const std::size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) return false;
    at = nl + 1;
  }
  std::size_t e = text.find('\n', at);
  if (e == std::string_view::npos) e = text.size();
  else if (e > at && text[e - 1] == '\r') --e;
  *begin = at;
  *end = e;
  return true;
}

}  // namespace

std::uint32_t offset_at(std::string_view text, Position p, Encoding e) {
  std::size_t begin = 0, end = 0;
  if (!line_bounds(text, p.line, &begin, &end)) return static_cast<std::uint32_t>(text.size());
  if (e == Encoding::utf8) {
    std::size_t at = std::min<std::size_t>(begin + p.character, end);
    while (at > begin && at < end && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
    return static_cast<std::uint32_t>(at);
  }
  std::size_t at = begin;
  std::uint32_t units = 0;
  while (at < end) {
    std::size_t n;
    std::uint32_t u;
    char_at(text, at, &n, &u);
    if (units + u > p.character) break;
    units += u;
    at += n;
  }
  return static_cast<std::uint32_t>(at);
}

Position position_at(std::string_view text, std::uint32_t offset, Encoding e) {
  const std::size_t off = std::min<std::size_t>(offset, text.size());
  Position p;
  std::size_t line_start = 0;
  for (std::size_t nl = text.find('\n'); nl != std::string_view::npos && nl < off; nl = text.find('\n', nl + 1)) {
    ++p.line;
    line_start = nl + 1;
  }
  if (e == Encoding::utf8) {
    std::size_t at = off;
    while (at > line_start && at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
    p.character = static_cast<std::uint32_t>(at - line_start);
    return p;
  }
  std::size_t at = line_start;
  while (at < off) {
    std::size_t n;
    std::uint32_t u;
    char_at(text, at, &n, &u);
    if (at + n > off) break;
    p.character += u;
    at += n;
  }
  return p;
}

}  // namespace ponder::lsp
