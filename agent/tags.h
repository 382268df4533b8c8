#pragma once
// Tags: the definitions and references that the workspace index extracts from a parsed file.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/language.h"

namespace ponder::agent {

/// What a tag is. Definitions first, then references (is_definition relies on the order).
enum class TagKind : std::uint8_t {
  // definitions
  function, method, class_, interface, module, type, macro, constant, implementation,
  // references
  call, type_ref, class_ref, implementation_ref,
};
inline constexpr int kTagKindCount = 13;

inline bool is_definition(TagKind k) { return k <= TagKind::implementation; }
/// "function", "method", "class", ..., "call", "type-ref", ...
std::string_view tag_kind_name(TagKind k);
/// Maps a query capture name ("definition.function", "reference.call") to a kind. Returns
/// false for captures that are not tag kinds (@name, @doc, ...).
bool tag_kind_from_capture(std::string_view capture, TagKind* out);

/// A position in a file. Lines and columns are 0-based; columns count bytes (UTF-8), not
/// UTF-16 code units: the LSP layer converts at its edge.
struct Point {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  friend bool operator==(const Point&, const Point&) = default;
  friend auto operator<=>(const Point&, const Point&) = default;
};

/// A half-open byte range [start_byte, end_byte) with the matching points.
struct Range {
  std::uint32_t start_byte = 0;
  std::uint32_t end_byte = 0;
  Point start;
  Point end;
  friend bool operator==(const Range&, const Range&) = default;
  bool contains(const Range& o) const { return start_byte <= o.start_byte && o.end_byte <= end_byte; }
};

struct Tag {
  std::string name;       // the identifier ("parse", "Index")
  TagKind kind;
  Range range;            // the whole definition (body included) or the whole reference
  Range name_range;       // just the identifier
  std::string scope;      // enclosing definitions, outermost first ("Outer::Inner"); may be empty
  std::string signature;  // definitions: the trimmed source line that names it (at most ~200 bytes)
  std::uint16_t qualifier_size = 0;  // bytes at the end of `scope` that the definition names
                                     // itself (C++ `void Outer::f()`, Go receivers), not its
                                     // enclosing definitions
  friend bool operator==(const Tag&, const Tag&) = default;
};

/// Everything the index knows about one file.
struct FileTags {
  std::string path;             // relative to the workspace root, '/'-separated
  Language language = Language::unknown;
  std::uint64_t content_hash = 0;  // hash_content() of the bytes that were parsed
  std::uint64_t bytes = 0;
  std::uint32_t lines = 0;
  bool has_syntax_errors = false;
  std::vector<Tag> tags;        // sorted by (range.start_byte, -range.end_byte)
};

/// 64-bit content hash (XXH3-style quality is not needed: used for cache keys, not security).
std::uint64_t hash_content(std::string_view bytes);

}  // namespace ponder::agent
