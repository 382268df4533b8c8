#pragma once
// Ignore rules: .gitignore / .ponderignore patterns (gitignore syntax) and the built-in list of
// folders that never hold the user's source (.git, node_modules, build outputs, caches).
#include <string>
#include <string_view>
#include <vector>

namespace ponder::agent {

/// Matches a gitignore-style glob against a '/'-separated path: `*` and `?` stop at '/',
/// `**` crosses folders, `[a-z]` / `[!a-z]` are classes, `\x` escapes.
bool glob_match(std::string_view pattern, std::string_view path);

/// The patterns of one ignore file, relative to the folder that holds it.
class IgnoreFile {
 public:
  /// `base`: the folder holding the file, relative to the root ("" for the root), no trailing '/'.
  IgnoreFile(std::string base, std::string_view content);

  enum class Verdict { none, ignore, keep };
  /// The verdict of the last matching pattern for `path` (relative to the root).
  Verdict match(std::string_view path, bool is_dir) const;
  bool empty() const { return patterns_.empty(); }

 private:
  struct Pattern {
    std::string glob;
    bool negate = false;
    bool dir_only = false;
    bool anchored = false;  // contains a '/' other than a trailing one: matched from `base`
  };
  std::string base_;
  std::vector<Pattern> patterns_;
};

/// The ignore files in force for one folder during a walk: the root's, then each sub-folder's,
/// deeper files overriding shallower ones (as git does).
class IgnoreStack {
 public:
  void push(IgnoreFile file) { files_.push_back(std::move(file)); }
  void pop() { files_.pop_back(); }
  std::size_t depth() const { return files_.size(); }
  bool ignored(std::string_view path, bool is_dir) const;

 private:
  std::vector<IgnoreFile> files_;
};

/// True for folder names that are never indexed (.git, node_modules, __pycache__, build
/// outputs such as build/, dist/, target/, cmake-build-*/).
bool builtin_ignored_dir(std::string_view name);

}  // namespace ponder::agent
