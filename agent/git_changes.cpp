// Changes of a file since HEAD, with libgit2.
#include "agent/git_changes.h"

#include <git2.h>

#include <memory>
#include <mutex>

namespace ponder::agent {

std::string git_error_text() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

void ensure_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

bool changes_since_head(const std::filesystem::path& root, std::string_view path, std::string_view text,
                        std::vector<std::string>* hunks, std::string* error) {
  ensure_libgit2();
  hunks->clear();
  git_repository* repo_raw = nullptr;
  if (git_repository_open_ext(&repo_raw, root.string().c_str(), 0, nullptr) != 0) {
    *error = root.string() + " is not in a git repository";
    return false;
  }
  std::unique_ptr<git_repository, decltype(&git_repository_free)> repo(repo_raw, git_repository_free);
  const char* workdir = git_repository_workdir(repo.get());
  if (!workdir) {
    *error = "the repository of " + root.string() + " has no work tree";
    return false;
  }
  // The path as the repository names it.
  const std::filesystem::path in_repo =
      (std::filesystem::weakly_canonical(root) / std::filesystem::path(path))
          .lexically_normal()
          .lexically_relative(std::filesystem::weakly_canonical(workdir));
  git_object* tree_raw = nullptr;
  if (git_revparse_single(&tree_raw, repo.get(), "HEAD^{tree}") != 0) {
    *error = "no commit yet: " + git_error_text();
    return false;
  }
  std::unique_ptr<git_object, decltype(&git_object_free)> tree(tree_raw, git_object_free);
  git_tree_entry* entry_raw = nullptr;
  if (git_tree_entry_bypath(&entry_raw, reinterpret_cast<git_tree*>(tree.get()), in_repo.generic_string().c_str()) != 0) {
    *error = std::string(path) + " is not in HEAD";
    return false;
  }
  std::unique_ptr<git_tree_entry, decltype(&git_tree_entry_free)> entry(entry_raw, git_tree_entry_free);
  git_blob* blob_raw = nullptr;
  if (git_blob_lookup(&blob_raw, repo.get(), git_tree_entry_id(entry.get())) != 0) {
    *error = std::string(path) + " in HEAD: " + git_error_text();
    return false;
  }
  std::unique_ptr<git_blob, decltype(&git_blob_free)> blob(blob_raw, git_blob_free);

  git_diff_options options;
  git_diff_options_init(&options, GIT_DIFF_OPTIONS_VERSION);
  options.context_lines = 3;
  auto on_hunk = [](const git_diff_delta*, const git_diff_hunk* hunk, void* payload) -> int {
    static_cast<std::vector<std::string>*>(payload)->emplace_back(hunk->header, hunk->header_len);
    return 0;
  };
  auto on_line = [](const git_diff_delta*, const git_diff_hunk*, const git_diff_line* line, void* payload) -> int {
    auto* out = static_cast<std::vector<std::string>*>(payload);
    if (out->empty()) return 0;
    if (line->origin == ' ' || line->origin == '+' || line->origin == '-') out->back() += line->origin;
    out->back().append(line->content, line->content_len);
    if (line->content_len == 0 || line->content[line->content_len - 1] != '\n') out->back() += '\n';
    return 0;
  };
  const std::string name = in_repo.generic_string();
  if (git_diff_blob_to_buffer(blob.get(), name.c_str(), text.data(), text.size(), name.c_str(), &options, nullptr,
                              nullptr, on_hunk, on_line, hunks) != 0) {
    *error = "diff of " + std::string(path) + ": " + git_error_text();
    return false;
  }
  for (std::string& h : *hunks)
    while (!h.empty() && h.back() == '\n') h.pop_back();
  return true;
}

}  // namespace ponder::agent
