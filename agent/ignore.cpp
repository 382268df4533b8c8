#include "agent/ignore.h"

namespace ponder::agent {
namespace {

// Matches one bracket class at p[0] == '['; advances `p` past it. Returns -1 when the class is
// malformed (then '[' is literal), else 1 for a match and 0 for none.
int match_class(std::string_view& p, char c) {
  std::size_t i = 1;
  bool negate = i < p.size() && (p[i] == '!' || p[i] == '^');
  if (negate) ++i;
  bool matched = false;
  bool first = true;
  for (; i < p.size() && (first || p[i] != ']'); ++i, first = false) {
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      i += 2;
    }
    if (lo <= c && c <= hi) matched = true;
  }
  if (i >= p.size()) return -1;
  p.remove_prefix(i + 1);
  return matched != negate ? 1 : 0;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    char pc = p.front();
    if (pc == '*') {
      bool double_star = p.size() >= 2 && p[1] == '*';
      if (double_star) {
        p.remove_prefix(2);
        // "**/" matches zero or more folders; a trailing "**" matches everything.
        if (!p.empty() && p.front() == '/') {
          p.remove_prefix(1);
          for (std::size_t i = 0;; ) {
            if (glob_match(p, s.substr(i))) return true;
            std::size_t slash = s.find('/', i);
            if (slash == std::string_view::npos) return false;
            i = slash + 1;
          }
        }
        if (p.empty()) return true;
        for (std::size_t i = 0; i <= s.size(); ++i)
          if (glob_match(p, s.substr(i))) return true;
        return false;
      }
      p.remove_prefix(1);
      for (std::size_t i = 0; i <= s.size(); ++i) {
        if (glob_match(p, s.substr(i))) return true;
        if (i < s.size() && s[i] == '/') return false;
      }
      return false;
    }
    if (s.empty()) return false;
    if (pc == '?') {
      if (s.front() == '/') return false;
      p.remove_prefix(1);
    } else if (pc == '[') {
      std::string_view before = p;
      int r = s.front() == '/' ? 0 : match_class(p, s.front());
      if (r == 0) return false;
      if (r < 0) {  // literal '['
        p = before.substr(1);
        if (s.front() != '[') return false;
      }
    } else {
      if (pc == '\\' && p.size() > 1) {
        p.remove_prefix(1);
        pc = p.front();
      }
      if (pc != s.front()) return false;
      p.remove_prefix(1);
    }
    s.remove_prefix(1);
  }
  return s.empty();
}

IgnoreFile::IgnoreFile(std::string base, std::string_view content) : base_(std::move(base)) {
  while (!content.empty()) {
    std::size_t nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content.remove_prefix(nl == std::string_view::npos ? content.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Trailing spaces are ignored unless escaped.
    while (!line.empty() && line.back() == ' ' &&
           !(line.size() >= 2 && line[line.size() - 2] == '\\'))
      line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    Pattern pat;
    if (line.front() == '!') {
      pat.negate = true;
      line.remove_prefix(1);
    } else if (line.size() >= 2 && line[0] == '\\' && (line[1] == '#' || line[1] == '!')) {
      line.remove_prefix(1);
    }
    if (!line.empty() && line.back() == '/') {
      pat.dir_only = true;
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    if (line.find('/') != std::string_view::npos) pat.anchored = true;
    if (line.front() == '/') line.remove_prefix(1);
    pat.glob = std::string(line);
    patterns_.push_back(std::move(pat));
  }
}

IgnoreFile::Verdict IgnoreFile::match(std::string_view path, bool is_dir) const {
  std::string_view rel = path;
  if (!base_.empty()) {
    if (path.size() <= base_.size() || path.compare(0, base_.size(), base_) != 0 ||
        path[base_.size()] != '/')
      return Verdict::none;
    rel = path.substr(base_.size() + 1);
  }
  std::size_t slash = rel.find_last_of('/');
  std::string_view name = slash == std::string_view::npos ? rel : rel.substr(slash + 1);
  for (auto it = patterns_.rbegin(); it != patterns_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    bool hit = it->anchored ? glob_match(it->glob, rel) : glob_match(it->glob, name);
    if (hit) return it->negate ? Verdict::keep : Verdict::ignore;
  }
  return Verdict::none;
}

bool IgnoreStack::ignored(std::string_view path, bool is_dir) const {
  for (auto it = files_.rbegin(); it != files_.rend(); ++it) {
    auto v = it->match(path, is_dir);
    if (v != IgnoreFile::Verdict::none) return v == IgnoreFile::Verdict::ignore;
  }
  return false;
}

bool builtin_ignored_dir(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox",
      ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache", ".gradle", ".idea",
      "build", "dist", "target", ".next", ".nuxt", "coverage", "CMakeFiles",
  };
  for (auto n : kNames)
    if (name == n) return true;
  return name.starts_with("cmake-build-") || name.starts_with("build-") ||
         name.starts_with("bazel-");
}

}  // namespace ponder::agent
