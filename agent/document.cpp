#include "agent/document.h"

#include <tree_sitter/api.h>

#include <cstring>

namespace ponder::agent {

Point point_at(std::string_view text, std::uint32_t offset) {
  Point p;
  const char* s = text.data();
  const char* end = s + std::min<std::size_t>(offset, text.size());
  const char* line_start = s;
  while (const void* nl = std::memchr(line_start, '\n', static_cast<std::size_t>(end - line_start))) {
    ++p.line;
    line_start = static_cast<const char*>(nl) + 1;
  }
  p.column = static_cast<std::uint32_t>(end - line_start);
  return p;
}

namespace {
// The point reached after `text`, starting from `from`.
Point advance(Point from, std::string_view text) {
  Point last = point_at(text, static_cast<std::uint32_t>(text.size()));
  if (last.line == 0) return {from.line, from.column + last.column};
  return {from.line + last.line, last.column};
}
}  // namespace

Document::Document(std::string path, Language lang, std::string text)
    : path_(std::move(path)), lang_(lang), text_(std::move(text)) {
  tree_ = parser_.parse(lang_, text_, nullptr, &error_);
  reindex();
}

bool Document::edit(std::uint32_t start, std::uint32_t old_end, std::string_view replacement,
                    std::string* error) {
  if (start > old_end || old_end > text_.size()) {
    if (error)
      *error = path_ + ": edit range [" + std::to_string(start) + ", " + std::to_string(old_end) +
               ") is outside the document (" + std::to_string(text_.size()) + " bytes)";
    return false;
  }
  if (text_.size() - (old_end - start) + replacement.size() > UINT32_MAX) {
    if (error) *error = path_ + ": document would exceed 4 GiB";
    return false;
  }
  TSInputEdit e{};
  e.start_byte = start;
  e.old_end_byte = old_end;
  e.new_end_byte = start + static_cast<std::uint32_t>(replacement.size());
  Point sp = point_at(text_, start);
  Point op = advance(sp, std::string_view(text_).substr(start, old_end - start));
  Point np = advance(sp, replacement);
  e.start_point = {sp.line, sp.column};
  e.old_end_point = {op.line, op.column};
  e.new_end_point = {np.line, np.column};
  text_.replace(start, old_end - start, replacement);
  if (tree_) ts_tree_edit(tree_.get(), &e);
  error_.clear();
  TreePtr fresh = parser_.parse(lang_, text_, tree_.get(), &error_);
  if (tree_ && fresh) {
    tags_.tags = parser_.update_tags(lang_, tree_.get(), fresh.get(), e, text_, std::move(tags_.tags));
    tree_ = std::move(fresh);
    refresh_file_facts();
  } else {
    tree_ = std::move(fresh);
    reindex();
  }
  return true;
}

void Document::reindex() {
  refresh_file_facts();
  tags_.tags = tree_ ? parser_.extract_tags(lang_, tree_.get(), text_) : std::vector<Tag>{};
}

void Document::refresh_file_facts() {
  tags_.path = path_;
  tags_.language = lang_;
  tags_.content_hash = hash_content(text_);
  tags_.bytes = text_.size();
  tags_.lines = count_lines(text_);
  tags_.has_syntax_errors = tree_ && ts_node_has_error(ts_tree_root_node(tree_.get()));
}

}  // namespace ponder::agent
