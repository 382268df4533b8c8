#include "agent/parser.h"

#include <tree_sitter/api.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "agent/tag_query.h"
#include "engine/log.h"

namespace ponder::agent {

void TreeDeleter::operator()(TSTree* tree) const { ts_tree_delete(tree); }

namespace {

Range to_range(TSNode node) {
  TSPoint s = ts_node_start_point(node), e = ts_node_end_point(node);
  return Range{ts_node_start_byte(node), ts_node_end_byte(node), {s.row, s.column},
               {e.row, e.column}};
}

bool ends_with(const char* s, std::string_view suffix) {
  std::size_t n = std::strlen(s);
  return n >= suffix.size() && std::memcmp(s + n - suffix.size(), suffix.data(), suffix.size()) == 0;
}

// C and C++ tag queries capture a function's *declarator* (`f(int x)`); the definition is the
// enclosing function_definition / declaration (and its template_declaration), which is what
// "the symbol's range" and "the symbol enclosing a position" need.
TSNode widen_definition(TSNode node) {
  while (ends_with(ts_node_type(node), "declarator")) {
    TSNode parent = ts_node_parent(node);
    if (ts_node_is_null(parent)) break;
    node = parent;
  }
  const char* type = ts_node_type(node);
  if (std::strcmp(type, "function_definition") == 0 || std::strcmp(type, "declaration") == 0 ||
      std::strcmp(type, "field_declaration") == 0 || std::strcmp(type, "class_specifier") == 0 ||
      std::strcmp(type, "struct_specifier") == 0 || std::strcmp(type, "alias_declaration") == 0) {
    TSNode parent = ts_node_parent(node);
    if (!ts_node_is_null(parent) && std::strcmp(ts_node_type(parent), "template_declaration") == 0)
      node = parent;
  }
  return node;
}

// The source line holding byte `at`, trimmed, cut to ~200 bytes at a UTF-8 boundary.
std::string signature_line(std::string_view text, uint32_t at) {
  if (at > text.size()) return {};
  std::size_t begin = 0;
  if (at > 0) {
    std::size_t nl = text.rfind('\n', at - 1);
    begin = nl == std::string_view::npos ? 0 : nl + 1;
  }
  std::size_t end = text.find('\n', at);
  if (end == std::string_view::npos) end = text.size();
  std::string_view line = text.substr(begin, end - begin);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
    line.remove_suffix(1);
  constexpr std::size_t kMax = 200;
  if (line.size() > kMax) {
    std::size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    return std::string(line.substr(0, cut)) + "…";
  }
  return std::string(line);
}

// The scope a definition names outside its enclosing nodes: C++ `void Outer::Inner::method()`
// (every qualifier, outermost first; `Box<T>::` counts as `Box`) and Go
// `func (s *Server) Serve()` (the receiver's type).
std::string name_qualifier(TSNode name, std::string_view text) {
  TSNode parent = ts_node_parent(name);
  if (ts_node_is_null(parent)) return {};
  if (std::strcmp(ts_node_type(parent), "qualified_identifier") == 0) {
    std::vector<std::string_view> parts;  // innermost first
    for (TSNode q = parent; !ts_node_is_null(q) && std::strcmp(ts_node_type(q), "qualified_identifier") == 0;
         q = ts_node_parent(q)) {
      TSNode scope = ts_node_child_by_field_name(q, "scope", 5);
      if (ts_node_is_null(scope)) continue;
      if (std::strcmp(ts_node_type(scope), "template_type") == 0) {
        TSNode n = ts_node_child_by_field_name(scope, "name", 4);
        if (!ts_node_is_null(n)) scope = n;
      }
      parts.push_back(node_text(scope, text));
    }
    std::string out;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (!out.empty()) out += "::";
      out += *it;
    }
    return out;
  }
  if (std::strcmp(ts_node_type(parent), "method_declaration") == 0) {
    TSNode receiver = ts_node_child_by_field_name(parent, "receiver", 8);
    if (ts_node_is_null(receiver)) return {};
    // Depth-first search for the receiver's type name.
    TSTreeCursor cursor = ts_tree_cursor_new(receiver);
    std::string found;
    for (bool more = true; more;) {
      TSNode node = ts_tree_cursor_current_node(&cursor);
      if (std::strcmp(ts_node_type(node), "type_identifier") == 0) {
        found = node_text(node, text);
        break;
      }
      if (ts_tree_cursor_goto_first_child(&cursor)) continue;
      while (!ts_tree_cursor_goto_next_sibling(&cursor))
        if (!ts_tree_cursor_goto_parent(&cursor)) { more = false; break; }
    }
    ts_tree_cursor_delete(&cursor);
    return found;
  }
  return {};
}

struct Candidate {
  Tag tag;
  uint32_t pattern;
  std::string qualifier;
};

bool parse_timed_out(TSParseState* state) {
  auto deadline = *static_cast<std::chrono::steady_clock::time_point*>(state->payload);
  return std::chrono::steady_clock::now() > deadline;  // true cancels the parse
}

}  // namespace

Parser::Parser() : parser_(ts_parser_new()), cursor_(ts_query_cursor_new()) {}

Parser::~Parser() {
  ts_query_cursor_delete(cursor_);
  ts_parser_delete(parser_);
}

TreePtr Parser::parse(Language lang, std::string_view text, const TSTree* old_tree,
                      std::string* error, std::uint32_t timeout_ms) {
  const TSLanguage* g = grammar(lang);
  if (!g) {
    if (error) *error = "no grammar for this file type";
    return nullptr;
  }
  if (text.size() > UINT32_MAX) {
    if (error) *error = "file too large for the parser (over 4 GiB)";
    return nullptr;
  }
  if (!ts_parser_set_language(parser_, g)) {
    if (error) *error = "grammar ABI not supported by the tree-sitter runtime";
    return nullptr;
  }
  struct Input {
    std::string_view text;
    static const char* read(void* payload, uint32_t byte, TSPoint, uint32_t* bytes_read) {
      auto* self = static_cast<Input*>(payload);
      if (byte >= self->text.size()) {
        *bytes_read = 0;
        return "";
      }
      *bytes_read = static_cast<uint32_t>(self->text.size() - byte);
      return self->text.data() + byte;
    }
  } input{text};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  TSParseOptions options{&deadline, parse_timed_out};
  TSInput ts_input{&input, &Input::read, TSInputEncodingUTF8, nullptr};
  TSTree* tree = ts_parser_parse_with_options(parser_, old_tree, ts_input, options);
  if (!tree) {
    ts_parser_reset(parser_);
    if (error) *error = "parse cancelled after " + std::to_string(timeout_ms) + " ms";
  }
  return TreePtr(tree);
}

namespace {

// Runs the tag query over `root`, restricted to matches whose root node intersects
// [from, to), and keeps one tag per name: a definition beats a reference, then the earlier
// pattern (ours come first in the query, so they refine the grammar's own) wins.
std::vector<Candidate> collect(TSQueryCursor* cursor, const CompiledTagQuery& q, TSNode root,
                               std::string_view text, uint32_t from, uint32_t to) {
  std::vector<Candidate> found;
  ts_query_cursor_set_byte_range(cursor, from, to);
  ts_query_cursor_exec(cursor, q.query, root);
  TSQueryMatch m;
  while (ts_query_cursor_next_match(cursor, &m)) {
    const TSNode* name = nullptr;
    const TSNode* def = nullptr;
    TagKind kind{};
    for (uint16_t i = 0; i < m.capture_count; ++i) {
      uint32_t id = m.captures[i].index;
      if (q.roles[id] == CaptureRole::name && !name) name = &m.captures[i].node;
      else if (q.roles[id] == CaptureRole::kind && !def) {
        def = &m.captures[i].node;
        kind = q.kinds[id];
      }
    }
    if (!name || !def) continue;  // e.g. Go's package/import patterns capture only @name
    std::string_view name_text = node_text(*name, text);
    if (name_text.empty() || name_text.size() > 256) continue;
    if (!q.predicates[m.pattern_index].empty() && !predicates_hold(q, m, text)) continue;
    Candidate c;
    c.tag.name = std::string(name_text);
    c.tag.kind = kind;
    c.tag.name_range = to_range(*name);
    c.tag.range = to_range(is_definition(kind) ? widen_definition(*def) : *def);
    // A reference may be captured on a sibling of its name (JavaScript's method calls capture
    // the argument list): make the range cover the name too.
    if (!c.tag.range.contains(c.tag.name_range)) {
      if (c.tag.name_range.start_byte < c.tag.range.start_byte) {
        c.tag.range.start_byte = c.tag.name_range.start_byte;
        c.tag.range.start = c.tag.name_range.start;
      }
      if (c.tag.name_range.end_byte > c.tag.range.end_byte) {
        c.tag.range.end_byte = c.tag.name_range.end_byte;
        c.tag.range.end = c.tag.name_range.end;
      }
    }
    if (is_definition(kind)) {
      c.tag.signature = signature_line(text, c.tag.name_range.start_byte);
      c.qualifier = name_qualifier(*name, text);
    }
    c.pattern = m.pattern_index;
    found.push_back(std::move(c));
  }
  ts_query_cursor_set_byte_range(cursor, 0, UINT32_MAX);

  std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
    if (a.tag.name_range.start_byte != b.tag.name_range.start_byte)
      return a.tag.name_range.start_byte < b.tag.name_range.start_byte;
    bool ad = is_definition(a.tag.kind), bd = is_definition(b.tag.kind);
    if (ad != bd) return ad;
    return a.pattern < b.pattern;
  });
  std::size_t kept = 0;
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (kept > 0 && found[i].tag.name_range.start_byte == found[kept - 1].tag.name_range.start_byte)
      continue;
    if (kept != i) found[kept] = std::move(found[i]);
    ++kept;
  }
  found.resize(kept);
  return found;
}

// Orders tags by position (outer before inner) and gives each its scope: a sweep in document
// order with a stack of the open definitions, plus the qualifier the definition names itself.
std::vector<Tag> finish(Language lang, std::vector<Candidate> found) {
  std::vector<std::size_t> order(found.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Tag& x = found[a].tag;
    const Tag& y = found[b].tag;
    if (x.range.start_byte != y.range.start_byte) return x.range.start_byte < y.range.start_byte;
    if (x.range.end_byte != y.range.end_byte) return x.range.end_byte > y.range.end_byte;
    if (is_definition(x.kind) != is_definition(y.kind)) return is_definition(x.kind);
    return x.name_range.start_byte < y.name_range.start_byte;
  });
  const std::string_view sep = scope_separator(lang);
  std::vector<std::pair<const Tag*, std::string>> open;  // (definition, its qualified name)
  std::vector<Tag> out;
  out.reserve(found.size());
  for (std::size_t i : order) {
    Tag& t = found[i].tag;
    while (!open.empty()) {
      const Range& r = open.back().first->range;
      // An equal range nests a reference (e.g. Rust's `impl Trait for T` tags the whole impl),
      // not another definition.
      if (r.contains(t.range) && (r != t.range || !is_definition(t.kind))) break;
      open.pop_back();
    }
    std::string scope = open.empty() ? std::string() : open.back().second;
    const std::string& qualifier = found[i].qualifier;
    if (!qualifier.empty()) {
      if (!scope.empty()) scope += sep;
      scope += qualifier;
    }
    t.scope = std::move(scope);
    t.qualifier_size = static_cast<std::uint16_t>(std::min<std::size_t>(qualifier.size(), UINT16_MAX));
    out.push_back(std::move(t));
    if (is_definition(out.back().kind)) {
      const Tag& d = out.back();
      open.emplace_back(&d, d.scope.empty() ? d.name : d.scope + std::string(sep) + d.name);
    }
  }
  return out;
}

// Moves a position as tree-sitter's ts_tree_edit moves nodes: positions before the edit stay,
// positions after its old end move with the new end, positions inside collapse to its start.
void shift(std::uint32_t& byte, Point& point, const TSInputEdit& e) {
  if (byte >= e.old_end_byte) {
    byte = byte - e.old_end_byte + e.new_end_byte;
    if (point.line == e.old_end_point.row) {
      point.line = e.new_end_point.row;
      point.column = point.column - e.old_end_point.column + e.new_end_point.column;
    } else {
      point.line = point.line - e.old_end_point.row + e.new_end_point.row;
    }
  } else if (byte > e.start_byte) {
    byte = e.start_byte;
    point = {e.start_point.row, e.start_point.column};
  }
}

void shift(Range& r, const TSInputEdit& e) {
  shift(r.start_byte, r.start, e);
  shift(r.end_byte, r.end, e);
}

bool overlaps(const Range& r, uint32_t from, uint32_t to) {
  return r.start_byte < to && from < r.end_byte;
}

}  // namespace

std::vector<Tag> Parser::extract_tags(Language lang, const TSTree* tree, std::string_view text) {
  const CompiledTagQuery* q = compiled_tag_query(lang);
  if (!q || !tree) return {};
  return finish(lang, collect(cursor_, *q, ts_tree_root_node(tree), text, 0, UINT32_MAX));
}

std::vector<Tag> Parser::update_tags(Language lang, const TSTree* old_tree, const TSTree* new_tree,
                                     const TSInputEdit& edit, std::string_view text,
                                     std::vector<Tag> old_tags) {
  const CompiledTagQuery* q = compiled_tag_query(lang);
  if (!q || !new_tree) return {};
  TSNode root = ts_tree_root_node(new_tree);
  auto whole = [&] {
    ++update_counts_.whole;
    return extract_tags(lang, new_tree, text);
  };
  if (!old_tree) return whole();

  // The region to query again: what tree-sitter says changed plus the edited text, widened to
  // whole lines (so that the signature lines of tags outside it are unchanged). Every match
  // whose root node intersects the region is found again, wherever its other nodes lie.
  uint32_t from = edit.start_byte, to = edit.new_end_byte;
  uint32_t count = 0;
  TSRange* changed = ts_tree_get_changed_ranges(old_tree, new_tree, &count);
  for (uint32_t i = 0; i < count; ++i) {
    from = std::min(from, changed[i].start_byte);
    to = std::max(to, changed[i].end_byte);
  }
  std::free(changed);
  to = std::min<uint32_t>(to, static_cast<uint32_t>(text.size()));
  from = std::min(from, to);
  while (from > 0 && text[from - 1] != '\n') --from;
  while (to < text.size() && text[to] != '\n') ++to;  // through the line `to` is on
  if (to < text.size()) ++to;
  if (to - from > text.size() / 2) return whole();  // no gain

  std::vector<Candidate> merged = collect(cursor_, *q, root, text, from, to);
  merged.erase(std::remove_if(merged.begin(), merged.end(),
                              [&](const Candidate& c) {
                                return c.tag.name_range.start_byte < from ||
                                       c.tag.name_range.start_byte >= to;
                              }),
               merged.end());
  merged.reserve(merged.size() + old_tags.size());
  for (Tag& t : old_tags) {
    shift(t.range, edit);
    shift(t.name_range, edit);
    if (t.name_range.start_byte >= from && t.name_range.start_byte < to) continue;  // re-queried
    if (overlaps(t.range, from, to)) {
      // A tag around the changed region (a class whose body was edited): its extent may have
      // changed. Query again at its name, which finds the match that holds it.
      std::vector<Candidate> probe =
          collect(cursor_, *q, root, text, t.name_range.start_byte, t.name_range.end_byte);
      auto it = std::find_if(probe.begin(), probe.end(), [&](const Candidate& c) {
        return c.tag.name_range.start_byte == t.name_range.start_byte;
      });
      if (it == probe.end()) return whole();  // the edit changed what it is: start over
      merged.push_back(std::move(*it));
      continue;
    }
    std::size_t q_size = std::min<std::size_t>(t.qualifier_size, t.scope.size());
    Candidate c;
    c.qualifier = t.scope.substr(t.scope.size() - q_size);
    c.tag = std::move(t);
    merged.push_back(std::move(c));
  }
  ++update_counts_.partial;
  return finish(lang, std::move(merged));
}

bool Parser::index(Language lang, std::string_view text, FileTags* out, std::string* error) {
  TreePtr tree = parse(lang, text, nullptr, error);
  if (!tree) return false;
  out->language = lang;
  out->content_hash = hash_content(text);
  out->bytes = text.size();
  out->lines = count_lines(text);
  out->has_syntax_errors = ts_node_has_error(ts_tree_root_node(tree.get()));
  out->tags = extract_tags(lang, tree.get(), text);
  return true;
}

std::uint32_t count_lines(std::string_view text) {
  std::uint32_t n = 0;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    if (!nl) {
      ++n;
      break;
    }
    ++n;
    p = static_cast<const char*>(nl) + 1;
  }
  return n;
}

}  // namespace ponder::agent
