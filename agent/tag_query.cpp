#include "agent/tag_query.h"

#include <algorithm>
#include <array>
#include <mutex>

#include "engine/log.h"

namespace ponder::agent {
namespace {

// True when `regex` is `^word$` or `^(word|word...)$` with plain words; `words` gets them.
bool literal_alternatives(const std::string& regex, std::vector<std::string>* words) {
  std::string_view r = regex;
  if (r.size() < 3 || r.front() != '^' || r.back() != '$') return false;
  r = r.substr(1, r.size() - 2);
  if (r.size() >= 2 && r.front() == '(' && r.back() == ')') r = r.substr(1, r.size() - 2);
  std::vector<std::string> out(1);
  for (char c : r) {
    if (c == '|') {
      out.emplace_back();
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
      out.back() += c;
    } else {
      return false;
    }
  }
  for (const auto& w : out)
    if (w.empty()) return false;
  *words = std::move(out);
  return true;
}

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
        TagPredicate pred{};
        bool known = true;
        if (op == "eq?") pred.op = TagPredicate::Op::eq;
        else if (op == "not-eq?") pred.op = TagPredicate::Op::not_eq_;
        else if (op == "match?") pred.op = TagPredicate::Op::match;
        else if (op == "not-match?") pred.op = TagPredicate::Op::not_match;
        else if (op == "any-of?") pred.op = TagPredicate::Op::any_of;
        else if (op == "not-any-of?") pred.op = TagPredicate::Op::not_any_of;
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
          if ((pred.op == TagPredicate::Op::match || pred.op == TagPredicate::Op::not_match) &&
              !pred.strings.empty() && literal_alternatives(pred.strings[0], &pred.strings)) {
            // `^(require|exports)$` is a set of words: compare strings, no regex engine.
            pred.op = pred.op == TagPredicate::Op::match ? TagPredicate::Op::any_of
                                                         : TagPredicate::Op::not_any_of;
          } else if ((pred.op == TagPredicate::Op::match || pred.op == TagPredicate::Op::not_match) &&
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

}  // namespace

const CompiledTagQuery* compiled_tag_query(Language lang) {
  static std::array<std::once_flag, kLanguageCount> once;
  static std::array<CompiledTagQuery, kLanguageCount> compiled;
  auto index = static_cast<std::size_t>(lang);
  if (index >= compiled.size()) return nullptr;
  std::call_once(once[index], [&] {
    CompiledTagQuery& q = compiled[index];
    q.query = tag_query(lang);
    if (!q.query) return;
    uint32_t captures = ts_query_capture_count(q.query);
    q.roles.assign(captures, CaptureRole::other);
    q.kinds.assign(captures, TagKind::function);
    for (uint32_t c = 0; c < captures; ++c) {
      uint32_t len = 0;
      const char* text = ts_query_capture_name_for_id(q.query, c, &len);
      std::string_view name(text, len);
      if (name == "name") q.roles[c] = CaptureRole::name;
      else if (tag_kind_from_capture(name, &q.kinds[c])) q.roles[c] = CaptureRole::kind;
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

namespace {
const TSNode* capture_node(const TSQueryMatch& m, uint32_t id) {
  for (uint16_t i = 0; i < m.capture_count; ++i)
    if (m.captures[i].index == id) return &m.captures[i].node;
  return nullptr;
}

}  // namespace

bool predicates_hold(const CompiledTagQuery& q, const TSQueryMatch& m, std::string_view text) {
  for (const TagPredicate& p : q.predicates[m.pattern_index]) {
    const TSNode* node = capture_node(m, p.capture);
    if (!node) continue;  // an optional capture that did not match: nothing to test
    std::string_view value = node_text(*node, text);
    bool ok = true;
    switch (p.op) {
      case TagPredicate::Op::eq:
      case TagPredicate::Op::not_eq_: {
        bool equal;
        if (p.against_capture) {
          const TSNode* other = capture_node(m, p.other_capture);
          equal = other && node_text(*other, text) == value;
        } else {
          equal = !p.strings.empty() && p.strings[0] == value;
        }
        ok = (p.op == TagPredicate::Op::eq) == equal;
        break;
      }
      case TagPredicate::Op::match:
      case TagPredicate::Op::not_match: {
        bool found = p.regex && std::regex_search(value.begin(), value.end(), *p.regex);
        ok = (p.op == TagPredicate::Op::match) == found;
        break;
      }
      case TagPredicate::Op::any_of:
      case TagPredicate::Op::not_any_of: {
        bool found = std::find(p.strings.begin(), p.strings.end(), value) != p.strings.end();
        ok = (p.op == TagPredicate::Op::any_of) == found;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace ponder::agent
