// Applying and checking a model's edits.
#include "agent/edit_check.h"

#include <tree_sitter/api.h>

#include <algorithm>

#include "agent/parser.h"

namespace ponder::agent {
namespace {

// The path the model wrote, normalised and relative to the workspace root; "" (with `why`) when
// it is absolute or climbs out of the root.
std::string inside(std::string written, std::string* why) {
  std::replace(written.begin(), written.end(), '\\', '/');
  const std::filesystem::path p(written);
  if (written.empty() || p.is_absolute()) {
    *why = "the path " + written + " is not relative to the workspace";
    return {};
  }
  const std::filesystem::path normal = p.lexically_normal();
  if (normal.empty() || *normal.begin() == ".." || normal == ".") {
    *why = "the path " + written + " leaves the workspace";
    return {};
  }
  return normal.generic_string();
}

}  // namespace

std::size_t syntax_errors(Language lang, std::string_view text) {
  if (lang == Language::unknown) return 0;
  Parser parser;
  std::string error;
  TreePtr tree = parser.parse(lang, text, nullptr, &error);
  if (!tree) return 0;
  TSNode root = ts_tree_root_node(tree.get());
  if (!ts_node_has_error(root)) return 0;
  // Walk only the subtrees that contain errors.
  std::size_t count = 0;
  TSTreeCursor cursor = ts_tree_cursor_new(root);
  for (;;) {
    const TSNode node = ts_tree_cursor_current_node(&cursor);
    if (ts_node_is_error(node) || ts_node_is_missing(node)) ++count;
    if (ts_node_has_error(node) && !ts_node_is_missing(node) && ts_tree_cursor_goto_first_child(&cursor)) continue;
    while (!ts_tree_cursor_goto_next_sibling(&cursor))
      if (!ts_tree_cursor_goto_parent(&cursor)) {
        ts_tree_cursor_delete(&cursor);
        return count;
      }
  }
}

CheckedEdits check_edits(const std::vector<EditBlock>& edits, const std::filesystem::path& root,
                         const ReadText& read) {
  CheckedEdits out;
  // Files in the order the answer names them; each file's edits in order.
  std::vector<std::pair<std::string, std::vector<const EditBlock*>>> by_file;
  for (const EditBlock& e : edits) {
    std::string why;
    const std::string rel = inside(e.path, &why);
    if (rel.empty()) {
      out.rejected.push_back({e, why});
      continue;
    }
    auto it = std::find_if(by_file.begin(), by_file.end(), [&](const auto& f) { return f.first == rel; });
    if (it == by_file.end()) it = by_file.insert(by_file.end(), {rel, {}});
    it->second.push_back(&e);
  }
  for (const auto& [rel, file_edits] : by_file) {
    FileChange change;
    change.path = rel;
    change.absolute = root / std::filesystem::path(rel);
    const std::optional<std::string> text = read(change.absolute);
    change.new_file = !text;
    change.before = text.value_or("");
    std::string current = change.before;
    for (const EditBlock* e : file_edits) {
      if (change.new_file && !e->search.empty() && current.empty()) {
        out.rejected.push_back({*e, rel + " does not exist"});
        continue;
      }
      AppliedEdit applied = apply_edit(current, *e);
      if (!applied.ok) {
        out.rejected.push_back({*e, applied.error});
        continue;
      }
      current = std::move(applied.text);
      change.normalised = change.normalised || applied.normalised;
      change.edits.push_back(*e);
    }
    if (change.edits.empty()) continue;
    if (current == change.before) {  // later edits undid earlier ones
      for (const EditBlock& e : change.edits) out.rejected.push_back({e, "the edits change nothing in " + rel});
      continue;
    }
    const Language lang = detect_language(rel, std::string_view(current).substr(0, 256));
    const std::size_t was = syntax_errors(lang, change.before), now = syntax_errors(lang, current);
    if (now > was) {
      const std::string why = "the edited " + rel + " does not parse: " + std::to_string(now - was) +
                              " new syntax error" + (now - was == 1 ? "" : "s");
      for (const EditBlock& e : change.edits) out.rejected.push_back({e, why});
      continue;
    }
    change.after = std::move(current);
    out.files.push_back(std::move(change));
  }
  return out;
}

}  // namespace ponder::agent
