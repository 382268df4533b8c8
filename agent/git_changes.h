#pragma once
// What changed in a file since the last commit: the hunks of a diff between the file as HEAD
// has it and its current text (the editor's), for the prompt's "recent changes" section.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::agent {

/// The unified-diff hunks ("@@ -a,b +c,d @@" and their lines, 3 lines of context) between
/// HEAD's version of `path` (relative to `root`, which is in a git work tree) and `text`. Empty
/// when nothing changed. False with `error` when `root` is in no repository, the repository
/// has no commit, or HEAD has no such file (a new file: all of it is new).
bool changes_since_head(const std::filesystem::path& root, std::string_view path, std::string_view text,
                        std::vector<std::string>* hunks, std::string* error);

/// Initialises libgit2 once per process (kept for the program's lifetime), and the text of its
/// last error.
void ensure_libgit2();
std::string git_error_text();

}  // namespace ponder::agent
