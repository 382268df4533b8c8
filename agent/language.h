#pragma once
// The languages the workspace index understands: detection from a path (and a shebang line),
// the tree-sitter grammar, and the compiled tag query.
#include <cstdint>
#include <string_view>

struct TSLanguage;
struct TSQuery;

namespace ponder::agent {

enum class Language : std::uint8_t {
  unknown = 0, c, cpp, python, javascript, typescript, tsx, rust, go, java,
};
inline constexpr int kLanguageCount = 10;  // including unknown

/// "c", "cpp", "python", ... ("unknown" for Language::unknown).
std::string_view language_name(Language lang);
/// Inverse of language_name; Language::unknown when the name is not one of ours.
Language language_from_name(std::string_view name);

/// Detects the language from the file name's extension, else from a `#!` line in `head` (the
/// first bytes of the file; may be empty). `.h` counts as C++ (a superset that parses C headers).
Language detect_language(std::string_view path, std::string_view head = {});

/// The grammar for `lang`; nullptr for Language::unknown. Static storage: never freed.
const TSLanguage* grammar(Language lang);

/// The tag query for `lang`, compiled once on first use (thread-safe) and shared by all threads
/// (a TSQuery is immutable; each thread uses its own TSQueryCursor). nullptr for unknown. A query
/// that fails to compile is a build defect: the error is logged and nullptr returned.
const TSQuery* tag_query(Language lang);

/// The text of the tag query for `lang` (ours, then the grammar's tags.scm); empty for unknown.
std::string_view tag_query_source(Language lang);

/// The separator that joins scope names in this language ("::" for C++ and Rust, else ".").
std::string_view scope_separator(Language lang);

}  // namespace ponder::agent
