#pragma once
// LSP positions (line, character) <-> byte offsets in a UTF-8 text. `character` counts UTF-16
// code units by default, or bytes when the client and server agreed on utf-8. Lines end at
// "\n" (a "\r" before it is part of the line ending). Bytes that are not valid UTF-8 count as
// one unit each, so any text has well-defined positions.
#include <cstdint>
#include <string_view>

namespace ponder::lsp {

enum class Encoding { utf16, utf8 };

struct Position {
  std::uint32_t line = 0;
  std::uint32_t character = 0;
  friend bool operator==(const Position&, const Position&) = default;
};

/// The byte offset of `p`. A character past the end of its line means the end of the line (the
/// spec's rule); a line past the last one means the end of the text; a position inside a
/// UTF-16 surrogate pair means the character's start.
std::uint32_t offset_at(std::string_view text, Position p, Encoding e);

/// The position of byte `offset` (clamped to the text; inside a multi-byte character: its start).
Position position_at(std::string_view text, std::uint32_t offset, Encoding e);

}  // namespace ponder::lsp
