#pragma once
// Parsing a file with tree-sitter and extracting its tags with the language's tag query.
//
// A Parser owns a TSParser and a TSQueryCursor: use one per thread (it is not thread-safe);
// the grammars and compiled queries it uses are shared and immutable.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/tags.h"

struct TSParser;
struct TSQueryCursor;
struct TSTree;
struct TSInputEdit;

namespace ponder::agent {

/// Owns a TSTree (ts_tree_delete on destruction).
struct TreeDeleter {
  void operator()(TSTree* tree) const;
};
using TreePtr = std::unique_ptr<TSTree, TreeDeleter>;

class Parser {
 public:
  Parser();
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  /// Parses `text` as `lang`, reusing `old_tree` (already edited with ts_tree_edit) when given.
  /// Returns null with `error` set if the language is unknown or the parse ran past
  /// `timeout_ms` (pathological input); tree-sitter itself accepts any bytes, including
  /// invalid UTF-8, and marks what it cannot parse with ERROR nodes.
  TreePtr parse(Language lang, std::string_view text, const TSTree* old_tree, std::string* error,
                std::uint32_t timeout_ms = 10000);

  /// Runs the tag query of `lang` over `tree` (parsed from `text`): definitions and references
  /// with ranges, enclosing scopes and signature lines, sorted by position.
  std::vector<Tag> extract_tags(Language lang, const TSTree* tree, std::string_view text);

  /// The tags of `new_tree` — the reparse of `text` after `edit` — computed from `old_tags`,
  /// the tags before the edit: tags outside the region that changed are moved, the region is
  /// queried again. `old_tree` is the tree before the reparse, already passed through
  /// ts_tree_edit. Gives exactly what extract_tags(new_tree) gives, in a fraction of the time
  /// for small edits in large files.
  std::vector<Tag> update_tags(Language lang, const TSTree* old_tree, const TSTree* new_tree,
                               const TSInputEdit& edit, std::string_view text,
                               std::vector<Tag> old_tags);

  /// How update_tags went so far: regions re-queried vs whole files re-extracted (a test and
  /// benchmark hook).
  struct UpdateCounts {
    std::size_t partial = 0;
    std::size_t whole = 0;
  };
  const UpdateCounts& update_counts() const { return update_counts_; }

  /// parse + extract_tags, filling everything in FileTags but `path`. Returns false with
  /// `error` set when the file could not be parsed.
  bool index(Language lang, std::string_view text, FileTags* out, std::string* error);

 private:
  TSParser* parser_;
  TSQueryCursor* cursor_;
  UpdateCounts update_counts_;
};

/// Number of lines in `text` (a final line without '\n' counts; "" has 0 lines).
std::uint32_t count_lines(std::string_view text);

}  // namespace ponder::agent
