#include "agent/parser.h"

#include <tree_sitter/api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <mutex>
#include <regex>
#include <unordered_map>

#include "engine/log.h"

namespace ponder::agent {

void TreeDeleter::operator()(TSTree* tree) const { ts_tree_delete(tree); }

namespace {

// ---------------------------------------------------------------------------------------------
// The tag query of a language with what we precompute about it: the role of each capture and
// the text predicates of each pattern (#eq?, #not-eq?, #match?, #not-match?, #any-of?).
// Directives such as #strip! and #select-adjacent! only shape doc comments, which we do not use.

enum class Role : std::int8_t { other, name, kind };

struct Predicate {
  enum class Op { eq, not_eq_, match, not_match, any_of, not_any_of } op;
  std::uint32_t capture = 0;            // the capture tested
  bool against_capture = false;         // #eq? @a @b
  std::uint32_t other_capture = 0;
  std::vector<std::string> strings;     // literal(s)
  std::shared_ptr<std::regex> regex;    // for match / not_match
};

struct CompiledTagQuery {
  const TSQuery* query = nullptr;
  std::vector<Role> roles;                      // per capture id
  std::vector<TagKind> kinds;                   // per capture id (valid when role == kind)
  std::vector<std::vector<Predicate>> predicates;  // per pattern
};

void compile_predicates(CompiledTagQuery& q) {
  const TSQuery* query = q.query;
  uint32_t patterns = ts_query_pattern_count(query);
  q.predicates.resize(patterns);
  for (uint32_t p = 0; p < patterns; ++p) {
    uint32_t steps = 0;
    const TSQueryPredicateStep* s = ts_query_predicates_for_pattern(query, p, &steps);
    for (uint32_t i = 0; i < steps;) {
      // One predicate: a string (its name), arguments, then a Done step.
      uint32_t end = i;
      while (end < steps && s[end].type != TSQueryPredicateStepTypeDone) ++end;
      if (end > i && s[i].type == TSQueryPredicateStepTypeString) {
        uint32_t len = 0;
        const char* op_text = ts_query_string_value_for_id(query, s[i].value_id, &len);
        std::string_view op(op_text, len);
        Predicate pred{};
        bool known = true;
        if (op == "eq?") pred.op = Predicate::Op::eq;
        else if (op == "not-eq?") pred.op = Predicate::Op::not_eq_;
        else if (op == "match?") pred.op = Predicate::Op::match;
        else if (op == "not-match?") pred.op = Predicate::Op::not_match;
        else if (op == "any-of?") pred.op = Predicate::Op::any_of;
        else if (op == "not-any-of?") pred.op = Predicate::Op::not_any_of;
        else known = false;  // directives (strip!, set-adjacent!, ...) and unknown predicates
        if (known && end - i >= 3 && s[i + 1].type == TSQueryPredicateStepTypeCapture) {
          pred.capture = s[i + 1].value_id;
          for (uint32_t a = i + 2; a < end; ++a) {
            if (s[a].type == TSQueryPredicateStepTypeCapture) {
              pred.against_capture = true;
              pred.other_capture = s[a].value_id;
            } else {
              uint32_t n = 0;
              const char* str = ts_query_string_value_for_id(query, s[a].value_id, &n);
              pred.strings.emplace_back(str, n);
            }
          }
          if ((pred.op == Predicate::Op::match || pred.op == Predicate::Op::not_match) &&
              !pred.strings.empty())
            pred.regex = std::make_shared<std::regex>(pred.strings[0], std::regex::ECMAScript |
                                                                         std::regex::optimize);
          q.predicates[p].push_back(std::move(pred));
        }
      }
      i = end + 1;
    }
  }
}

const CompiledTagQuery* compiled_query(Language lang) {
  static std::array<std::once_flag, kLanguageCount> once;
  static std::array<CompiledTagQuery, kLanguageCount> compiled;
  auto index = static_cast<std::size_t>(lang);
  if (index >= compiled.size()) return nullptr;
  std::call_once(once[index], [&] {
    CompiledTagQuery& q = compiled[index];
    q.query = tag_query(lang);
    if (!q.query) return;
    uint32_t captures = ts_query_capture_count(q.query);
    q.roles.assign(captures, Role::other);
    q.kinds.assign(captures, TagKind::function);
    for (uint32_t c = 0; c < captures; ++c) {
      uint32_t len = 0;
      const char* text = ts_query_capture_name_for_id(q.query, c, &len);
      std::string_view name(text, len);
      if (name == "name") q.roles[c] = Role::name;
      else if (tag_kind_from_capture(name, &q.kinds[c])) q.roles[c] = Role::kind;
    }
    compile_predicates(q);
  });
  return compiled[index].query ? &compiled[index] : nullptr;
}

std::string_view node_text(TSNode node, std::string_view text) {
  uint32_t s = ts_node_start_byte(node), e = ts_node_end_byte(node);
  if (s > text.size() || e > text.size() || s > e) return {};
  return text.substr(s, e - s);
}

const TSNode* capture_node(const TSQueryMatch& m, uint32_t id) {
  for (uint16_t i = 0; i < m.capture_count; ++i)
    if (m.captures[i].index == id) return &m.captures[i].node;
  return nullptr;
}

bool predicates_hold(const CompiledTagQuery& q, const TSQueryMatch& m, std::string_view text) {
  for (const Predicate& p : q.predicates[m.pattern_index]) {
    const TSNode* node = capture_node(m, p.capture);
    if (!node) continue;  // an optional capture that did not match: nothing to test
    std::string_view value = node_text(*node, text);
    bool ok = true;
    switch (p.op) {
      case Predicate::Op::eq:
      case Predicate::Op::not_eq_: {
        bool equal;
        if (p.against_capture) {
          const TSNode* other = capture_node(m, p.other_capture);
          equal = other && node_text(*other, text) == value;
        } else {
          equal = !p.strings.empty() && p.strings[0] == value;
        }
        ok = (p.op == Predicate::Op::eq) == equal;
        break;
      }
      case Predicate::Op::match:
      case Predicate::Op::not_match: {
        bool found = p.regex && std::regex_search(value.begin(), value.end(), *p.regex);
        ok = (p.op == Predicate::Op::match) == found;
        break;
      }
      case Predicate::Op::any_of:
      case Predicate::Op::not_any_of: {
        bool found = std::find(p.strings.begin(), p.strings.end(), value) != p.strings.end();
        ok = (p.op == Predicate::Op::any_of) == found;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

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

std::vector<Tag> Parser::extract_tags(Language lang, const TSTree* tree, std::string_view text) {
  std::vector<Tag> out;
  const CompiledTagQuery* q = compiled_query(lang);
  if (!q || !tree) return out;
  std::vector<Candidate> found;
  ts_query_cursor_exec(cursor_, q->query, ts_tree_root_node(tree));
  TSQueryMatch m;
  while (ts_query_cursor_next_match(cursor_, &m)) {
    const TSNode* name = nullptr;
    const TSNode* def = nullptr;
    TagKind kind{};
    for (uint16_t i = 0; i < m.capture_count; ++i) {
      uint32_t id = m.captures[i].index;
      if (q->roles[id] == Role::name && !name) name = &m.captures[i].node;
      else if (q->roles[id] == Role::kind && !def) {
        def = &m.captures[i].node;
        kind = q->kinds[id];
      }
    }
    if (!name || !def) continue;  // e.g. Go's package/import patterns capture only @name
    std::string_view name_text = node_text(*name, text);
    if (name_text.empty() || name_text.size() > 256) continue;
    if (!q->predicates[m.pattern_index].empty() && !predicates_hold(*q, m, text)) continue;
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
    if (is_definition(kind)) c.tag.signature = signature_line(text, c.tag.name_range.start_byte);
    c.pattern = m.pattern_index;
    if (is_definition(kind)) c.qualifier = name_qualifier(*name, text);
    found.push_back(std::move(c));
  }

  // One tag per name: a definition beats a reference, then the earlier pattern (ours come
  // first in the query, so they refine the grammar's own) wins.
  std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
    if (a.tag.name_range.start_byte != b.tag.name_range.start_byte)
      return a.tag.name_range.start_byte < b.tag.name_range.start_byte;
    bool ad = is_definition(a.tag.kind), bd = is_definition(b.tag.kind);
    if (ad != bd) return ad;
    return a.pattern < b.pattern;
  });
  std::vector<std::string> qualifiers;
  out.reserve(found.size());
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (i > 0 && found[i].tag.name_range.start_byte == found[i - 1].tag.name_range.start_byte)
      continue;
    out.push_back(std::move(found[i].tag));
    qualifiers.push_back(std::move(found[i].qualifier));
  }

  // Scopes: sweep in document order with a stack of the open definitions.
  std::vector<std::size_t> order(out.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto by_position = [&](std::size_t a, std::size_t b) {
    if (out[a].range.start_byte != out[b].range.start_byte)
      return out[a].range.start_byte < out[b].range.start_byte;
    if (out[a].range.end_byte != out[b].range.end_byte)
      return out[a].range.end_byte > out[b].range.end_byte;
    return is_definition(out[a].kind) && !is_definition(out[b].kind);
  };
  std::sort(order.begin(), order.end(), by_position);
  const std::string_view sep = scope_separator(lang);
  std::vector<std::pair<std::size_t, std::string>> open;  // (tag index, its qualified name)
  for (std::size_t i : order) {
    Tag& t = out[i];
    while (!open.empty()) {
      const Range& r = out[open.back().first].range;
      // An equal range nests a reference (e.g. Rust's `impl Trait for T` tags the whole impl),
      // not another definition.
      if (r.contains(t.range) && (r != t.range || !is_definition(t.kind))) break;
      open.pop_back();
    }
    std::string scope = open.empty() ? std::string() : open.back().second;
    if (!qualifiers[i].empty()) {
      if (!scope.empty()) scope += sep;
      scope += qualifiers[i];
    }
    t.scope = scope;
    if (is_definition(t.kind)) {
      std::string qualified = scope.empty() ? t.name : scope + std::string(sep) + t.name;
      open.emplace_back(i, std::move(qualified));
    }
  }
  std::vector<Tag> sorted;
  sorted.reserve(out.size());
  for (std::size_t i : order) sorted.push_back(std::move(out[i]));
  return sorted;
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
