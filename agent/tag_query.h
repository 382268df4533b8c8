#pragma once
// A language's tag query, compiled once, with what extraction needs to know about it: the
// role of each capture and the text predicates of each pattern (#eq?, #not-eq?, #match?,
// #not-match?, #any-of?, #not-any-of?). Directives such as #strip! and #select-adjacent! only
// shape doc comments, which tags do not use. Internal to agent/.
#include <tree_sitter/api.h>

#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/tags.h"

namespace ponder::agent {

enum class CaptureRole : std::int8_t { other, name, kind };

struct TagPredicate {
  enum class Op { eq, not_eq_, match, not_match, any_of, not_any_of } op;
  std::uint32_t capture = 0;            // the capture tested
  bool against_capture = false;         // #eq? @a @b
  std::uint32_t other_capture = 0;
  std::vector<std::string> strings;     // literal(s)
  std::shared_ptr<std::regex> regex;    // for match / not_match
};

struct CompiledTagQuery {
  const TSQuery* query = nullptr;
  std::vector<CaptureRole> roles;                     // per capture id
  std::vector<TagKind> kinds;                         // per capture id (role == kind)
  std::vector<std::vector<TagPredicate>> predicates;  // per pattern
};

/// The compiled tag query of `lang` (thread-safe, built on first use); null for unknown
/// languages or a query that does not compile (logged).
const CompiledTagQuery* compiled_tag_query(Language lang);

/// The text of `node` in `text` (empty when the node lies outside it).
std::string_view node_text(TSNode node, std::string_view text);

/// True when every predicate of the match's pattern holds.
bool predicates_hold(const CompiledTagQuery& q, const TSQueryMatch& m, std::string_view text);

}  // namespace ponder::agent
