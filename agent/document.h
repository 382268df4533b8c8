#pragma once
// An open document: its text, its syntax tree and its tags, kept up to date edit by edit with
// tree-sitter's incremental protocol (ts_tree_edit, then reparse with the old tree).
//
// Not thread-safe; one Document per open file, owned by whoever owns the workspace.
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/parser.h"
#include "agent/tags.h"

namespace ponder::agent {

class Document {
 public:
  /// Parses `text` as `lang`. Check ok() / error(): a file that cannot be parsed (unknown
  /// language, parse timeout) keeps its text and has no tags.
  Document(std::string path, Language lang, std::string text);

  /// Replaces bytes [start, old_end) with `replacement` and reparses incrementally.
  /// Returns false with `error` set (and changes nothing) when the range is outside the text.
  bool edit(std::uint32_t start, std::uint32_t old_end, std::string_view replacement,
            std::string* error);

  bool ok() const { return tree_ != nullptr; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  Language language() const { return lang_; }
  const std::string& text() const { return text_; }
  const TSTree* tree() const { return tree_.get(); }
  const std::vector<Tag>& tags() const { return tags_.tags; }
  /// The document's tags as the index stores them (for Index::set_file).
  const FileTags& file_tags() const { return tags_; }
  /// How many edits updated tags for the changed region only, and how many for the whole file.
  const Parser::UpdateCounts& update_counts() const { return parser_.update_counts(); }

 private:
  void reindex();             // tags from scratch
  void refresh_file_facts();  // hash, size, lines, syntax errors

  std::string path_;
  Language lang_;
  std::string text_;
  Parser parser_;
  TreePtr tree_;
  FileTags tags_;
  std::string error_;
};

/// The (line, byte column) of byte `offset` in `text`.
Point point_at(std::string_view text, std::uint32_t offset);

}  // namespace ponder::agent
