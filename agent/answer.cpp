// Parsing R1 answers into edits, and applying an edit to a document.
#include "agent/answer.h"

#include <algorithm>
#include <cctype>

namespace ponder::agent {
namespace {

constexpr std::string_view kClose = "</think>", kOpen = "<think>";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// `text` with every CRLF turned into LF.
std::string lf_only(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out += text[i];
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      if (start < text.size()) lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// A marker line: at least five of `c`, then (for SEARCH and REPLACE) the word.
bool marker(std::string_view line, char c, std::string_view word) {
  line = trim(line);
  std::size_t n = 0;
  while (n < line.size() && line[n] == c) ++n;
  if (n < 5) return false;
  return trim(line.substr(n)) == word;
}
bool search_marker(std::string_view l) { return marker(l, '<', "SEARCH"); }
bool divider(std::string_view l) { return marker(l, '=', ""); }
bool replace_marker(std::string_view l) { return marker(l, '>', "REPLACE"); }
bool fence(std::string_view l) { return starts_with(trim(l), "```") || starts_with(trim(l), "~~~"); }

// The file a line names, or "": `path`, **path**, File: path, ### path, path: — one word that
// looks like a path (has a dot or a slash).
std::string path_in(std::string_view line) {
  std::string_view s = trim(line);
  while (!s.empty() && s.front() == '#') s.remove_prefix(1);
  s = trim(s);
  for (std::string_view prefix : {"File:", "file:", "Path:", "path:", "Filename:", "filename:"})
    if (starts_with(s, prefix)) s = trim(s.substr(prefix.size()));
  auto strip = [&](char c) {
    while (!s.empty() && s.front() == c) s.remove_prefix(1);
    while (!s.empty() && s.back() == c) s.remove_suffix(1);
  };
  strip('*');
  strip('`');
  if (!s.empty() && s.back() == ':') s.remove_suffix(1);
  strip('`');
  if (s.empty() || s.find_first_of(" \t") != std::string_view::npos) return {};
  if (s.find("://") != std::string_view::npos) return {};
  // A folder separator, or a name with an extension ("m.py"; not "Fix." or "e.g.,").
  const std::size_t dot = s.rfind('.');
  const bool extension = dot != std::string_view::npos && dot > 0 && dot + 1 < s.size() &&
                         std::all_of(s.begin() + static_cast<std::ptrdiff_t>(dot) + 1, s.end(),
                                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
  if (s.find_first_of("/\\") == std::string_view::npos && !extension) return {};
  return std::string(s);
}

// The path of a fence opener's info string when it is one (```src/a.py), else "".
std::string path_on_fence(std::string_view line) {
  std::string_view s = trim(line);
  while (!s.empty() && (s.front() == '`' || s.front() == '~')) s.remove_prefix(1);
  return path_in(s);
}

std::string join(const std::vector<std::string_view>& lines, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) {
    out += lines[i];
    out += '\n';
  }
  return out;
}

// Line with every run of whitespace collapsed to one space, trimmed.
std::string normalised(std::string_view line) {
  std::string out;
  bool space = false;
  for (char c : trim(line)) {
    if (is_space(c)) {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string_view indent_of(std::string_view line) {
  std::size_t n = 0;
  while (n < line.size() && (line[n] == ' ' || line[n] == '\t')) ++n;
  return line.substr(0, n);
}

}  // namespace

std::string answer_prose(const ParsedAnswer& parsed) {
  const std::vector<std::string_view> lines = split_lines(parsed.answer);
  std::string out;
  bool in_fence = false, in_block = false, summary_skipped = parsed.summary.empty();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (!in_block && fence(line)) {
      in_fence = !in_fence;
      continue;
    }
    if (search_marker(line)) in_block = true;
    if (in_block) {
      if (replace_marker(line)) in_block = false;
      continue;
    }
    if (in_fence) continue;
    const std::string_view t = trim(line);
    // A path line: one word, followed (after blank lines) by a fence or a SEARCH marker.
    if (!t.empty() && t.find(' ') == std::string_view::npos) {
      std::size_t next = i + 1;
      while (next < lines.size() && trim(lines[next]).empty()) ++next;
      if (next < lines.size() && (fence(lines[next]) || search_marker(lines[next]))) continue;
    }
    if (!summary_skipped && !t.empty() && t.find(parsed.summary) != std::string_view::npos) {
      summary_skipped = true;
      continue;
    }
    out.append(line).push_back('\n');
  }
  return std::string(trim(out));
}

ParsedAnswer parse_answer(std::string_view output, std::string_view default_path) {
  ParsedAnswer out;
  const std::string text = lf_only(output);

  std::string_view all = text;
  const std::size_t close = all.find(kClose);
  std::string_view answer;
  if (close != std::string_view::npos) {
    out.reasoning_closed = true;
    std::string_view reasoning = trim(all.substr(0, close));
    if (starts_with(reasoning, kOpen)) reasoning = trim(reasoning.substr(kOpen.size()));
    out.reasoning = std::string(reasoning);
    answer = all.substr(close + kClose.size());
  } else if (starts_with(trim(all), kOpen)) {
    out.reasoning = std::string(trim(trim(all).substr(kOpen.size())));
    out.problems.push_back("the reasoning never ended (no </think>): there is no answer");
  } else {
    answer = all;  // no tags: the model answered without (or with untagged) reasoning
  }
  // Whitespace around the answer is not part of it; neither is a stray second tag.
  answer = trim(answer);
  if (starts_with(answer, kClose)) answer = trim(answer.substr(kClose.size()));
  out.answer = std::string(answer);

  const std::vector<std::string_view> lines = split_lines(out.answer);
  std::string last_path;  // of the previous block, for a block that follows it directly
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (out.summary.empty() && !trim(line).empty() && !fence(line) && !search_marker(line) && path_in(line).empty()) {
      std::string_view s = trim(line);
      while (!s.empty() && (s.front() == '#' || s.front() == '*' || s.front() == '>')) s.remove_prefix(1);
      s = trim(s);
      for (std::string_view prefix : {"Summary:", "summary:", "Summary**:", "**Summary:**"})
        if (starts_with(s, prefix)) s = trim(s.substr(prefix.size()));
      while (!s.empty() && s.front() == '*') s.remove_prefix(1);
      while (!s.empty() && s.back() == '*') s.remove_suffix(1);
      out.summary = std::string(trim(s));
    }
    if (!search_marker(line)) continue;
    EditBlock block;
    block.line = i + 1;
    // The path: walking up over blank lines and a fence opener, a line naming a file, the
    // fence's own info string, or (right after another block) that block's path.
    for (std::size_t j = i; j-- > 0;) {
      const std::string_view up = lines[j];
      if (trim(up).empty()) continue;
      if (fence(up)) {
        if (std::string p = path_on_fence(up); !p.empty()) {
          block.path = p;
          break;
        }
        continue;
      }
      if (replace_marker(up)) {
        block.path = last_path;
        break;
      }
      block.path = path_in(up);
      break;
    }
    if (block.path.empty()) block.path = std::string(default_path);
    std::size_t mid = i + 1;
    while (mid < lines.size() && !divider(lines[mid]) && !search_marker(lines[mid])) ++mid;
    std::size_t end = mid + 1;
    while (end < lines.size() && !replace_marker(lines[end]) && !search_marker(lines[end])) ++end;
    if (mid >= lines.size() || !divider(lines[mid]) || end >= lines.size() || !replace_marker(lines[end])) {
      out.problems.push_back("line " + std::to_string(i + 1) + ": a SEARCH block that does not end with ======= and >>>>>>> REPLACE");
      continue;
    }
    block.search = join(lines, i + 1, mid);
    block.replace = join(lines, mid + 1, end);
    i = end;
    if (block.path.empty()) {
      out.problems.push_back("line " + std::to_string(block.line) + ": a SEARCH block without a file path");
      continue;
    }
    last_path = block.path;
    out.edits.push_back(std::move(block));
  }
  return out;
}

AppliedEdit apply_edit(std::string_view document, const EditBlock& edit) {
  AppliedEdit out;
  const bool crlf = document.find("\r\n") != std::string_view::npos;
  std::string doc = lf_only(document);

  if (edit.search.empty()) {
    if (!trim(doc).empty()) {
      out.error = "the SEARCH text is empty, but " + edit.path + " is not";
      return out;
    }
    doc = edit.replace;
  } else {
    const bool final_newline = !doc.empty() && doc.back() == '\n';
    std::vector<std::string_view> dl = split_lines(doc);
    const std::vector<std::string_view> sl = split_lines(edit.search), rl = split_lines(edit.replace);
    auto find = [&](auto&& same) {
      std::vector<std::size_t> at;
      for (std::size_t s = 0; s + sl.size() <= dl.size(); ++s) {
        std::size_t k = 0;
        while (k < sl.size() && same(dl[s + k], sl[k])) ++k;
        if (k == sl.size()) at.push_back(s);
      }
      return at;
    };
    std::vector<std::size_t> at = find([](std::string_view a, std::string_view b) { return a == b; });
    if (at.empty()) {
      at = find([](std::string_view a, std::string_view b) { return normalised(a) == normalised(b); });
      out.normalised = !at.empty();
    }
    if (at.size() != 1) {
      out.error = at.empty() ? "the SEARCH text is not in " + edit.path
                             : "the SEARCH text matches " + std::to_string(at.size()) + " places in " + edit.path;
      return out;
    }
    const std::size_t s = at[0];
    std::vector<std::string> replacement(rl.begin(), rl.end());
    if (out.normalised) {
      // Re-indent by the difference between the document's indentation and the block's, taken
      // at the first line that has text.
      std::size_t k = 0;
      while (k < sl.size() && trim(sl[k]).empty()) ++k;
      if (k < sl.size()) {
        const std::string_view have = indent_of(dl[s + k]), wrote = indent_of(sl[k]);
        for (std::string& r : replacement) {
          if (trim(r).empty()) continue;
          if (starts_with(have, wrote)) {
            r.insert(0, have.substr(wrote.size()));
          } else if (starts_with(wrote, have) && indent_of(r).size() >= wrote.size() - have.size()) {
            r.erase(0, wrote.size() - have.size());
          }
        }
      }
    }
    std::string result;
    for (std::size_t i = 0; i < s; ++i) result.append(dl[i]).push_back('\n');
    for (const std::string& r : replacement) result.append(r).push_back('\n');
    for (std::size_t i = s + sl.size(); i < dl.size(); ++i) result.append(dl[i]).push_back('\n');
    if (!final_newline && !result.empty()) result.pop_back();
    doc = std::move(result);
  }
  if (crlf) {
    std::string back;
    back.reserve(doc.size() + doc.size() / 16);
    for (char c : doc) {
      if (c == '\n') back += '\r';
      back += c;
    }
    doc = std::move(back);
  }
  if (doc == document) {
    out.error = "the edit changes nothing in " + edit.path;
    return out;
  }
  out.ok = true;
  out.text = std::move(doc);
  return out;
}

}  // namespace ponder::agent

namespace ponder::agent {
namespace {

// Strips list markers ("-", "*", "1.", "1)"), bold and backticks from the front of a line.
std::string_view unmark(std::string_view s) {
  s = trim(s);
  if (!s.empty() && (s.front() == '-' || s.front() == '*' || s.front() == '+') && s.size() > 1 && s[1] == ' ')
    s = trim(s.substr(1));
  std::size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits > 0 && digits < s.size() && (s[digits] == '.' || s[digits] == ')')) s = trim(s.substr(digits + 1));
  while (!s.empty() && (s.front() == '*' || s.front() == '_')) s.remove_prefix(1);
  return s;
}

// A finding's header line, or false.
bool finding_header(std::string_view line, Finding* f) {
  std::string_view s = unmark(line);
  if (s.empty() || s.front() != '[') return false;
  const std::size_t close = s.find(']');
  if (close == std::string_view::npos || !parse_severity(s.substr(1, close - 1), &f->severity)) return false;
  s = s.substr(close + 1);
  while (!s.empty() && (s.front() == '*' || s.front() == '_' || s.front() == ' ' || s.front() == '`')) s.remove_prefix(1);
  // path:LINE[-LINE]
  const std::size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  f->path = std::string(s.substr(0, colon));
  std::size_t i = colon + 1;
  auto number = [&](std::uint32_t* out) {
    std::size_t start = i;
    std::uint64_t v = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && v < 1000000000) v = v * 10 + static_cast<unsigned>(s[i++] - '0');
    *out = static_cast<std::uint32_t>(v);
    return i > start && v > 0;
  };
  if (!number(&f->first_line)) return false;
  f->last_line = f->first_line;
  if (i < s.size() && (s[i] == '-' || s[i] == ',')) {
    ++i;
    if (!number(&f->last_line) || f->last_line < f->first_line) return false;
  }
  s = s.substr(i);
  // The title: after the closing backtick/colon/dash.
  if (!s.empty() && s.front() == '`') s.remove_prefix(1);  // the one closing `path:LINE`
  while (!s.empty() && (s.front() == ':' || s.front() == '*' || s.front() == ' ')) s.remove_prefix(1);
  for (std::string_view dash : {"— ", "– ", "- "})
    if (starts_with(s, dash)) s = trim(s.substr(dash.size()));
  while (!s.empty() && (s.back() == '*' || s.back() == ' ')) s.remove_suffix(1);
  f->title = std::string(s);
  return !f->title.empty();
}

}  // namespace

std::string_view severity_name(Severity s) {
  switch (s) {
    case Severity::blocker: return "blocker";
    case Severity::warning: return "warning";
    case Severity::suggestion: return "suggestion";
    case Severity::nit: return "nit";
  }
  return "?";
}

bool parse_severity(std::string_view text, Severity* out) {
  std::string low;
  for (char c : trim(text)) low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (low == "blocker" || low == "error" || low == "critical") *out = Severity::blocker;
  else if (low == "warning") *out = Severity::warning;
  else if (low == "suggestion") *out = Severity::suggestion;
  else if (low == "nit" || low == "info" || low == "style") *out = Severity::nit;
  else return false;
  return true;
}

std::vector<Finding> parse_findings(const ParsedAnswer& answer, std::vector<std::string>* problems) {
  std::vector<Finding> out;
  const std::vector<std::string_view> lines = split_lines(answer.answer);
  bool in_block = false;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (search_marker(line)) {
      in_block = true;
      // The block's edit (parsed by parse_answer, known by its marker line) belongs to the
      // finding before it.
      for (const EditBlock& e : answer.edits)
        if (e.line == i + 1 && !out.empty()) out.back().edits.push_back(e);
    }
    if (in_block) {
      if (replace_marker(line)) in_block = false;
      continue;
    }
    Finding f;
    if (finding_header(line, &f)) {
      f.reasoning = answer.reasoning;
      out.push_back(std::move(f));
      continue;
    }
    if (starts_with(unmark(line), "[") && unmark(line).find(']') != std::string_view::npos && problems) {
      Severity ignored;
      const std::string_view u = unmark(line);
      if (parse_severity(u.substr(1, u.find(']') - 1), &ignored))
        problems->push_back("line " + std::to_string(i + 1) + ": a finding without path:LINE and a title: " +
                            std::string(trim(line)));
    }
    if (out.empty() || fence(line)) continue;
    // Explanation: the lines after the header, except a path line that only introduces a block.
    if (!path_in(line).empty() && i + 1 < lines.size() && (fence(lines[i + 1]) || search_marker(lines[i + 1]))) continue;
    std::string& e = out.back().explanation;
    std::string_view text = line;
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    if (!e.empty() || !text.empty()) e.append(text).push_back('\n');
  }
  for (Finding& f : out) {
    while (!f.explanation.empty() && is_space(f.explanation.back())) f.explanation.pop_back();
    // Continuation lines of a list item are indented: remove the indentation they share.
    std::size_t common = std::string::npos;
    for (std::string_view l : split_lines(f.explanation))
      if (!trim(l).empty()) common = std::min(common, indent_of(l).size());
    if (common == 0 || common == std::string::npos) continue;
    std::string dedented;
    for (std::string_view l : split_lines(f.explanation))
      dedented.append(l.substr(std::min(common, l.size()))).push_back('\n');
    dedented.pop_back();
    f.explanation = std::move(dedented);
  }
  return out;
}

}  // namespace ponder::agent
