// A git tree at a revision as a Source (libgit2). Tracked files only: .gitignore does not apply
// to what is committed, the built-in ignore list and the size limit do.
#include <git2.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "agent/git_changes.h"
#include "agent/ignore.h"
#include "agent/language.h"
#include "agent/source.h"
#include "engine/log.h"

namespace ponder::agent {
namespace {

// Adds the blob at `path` to a listing when ponder reads it (a language it knows, under the size
// limit; symlinks and submodules are left out), or says why it was skipped.
void list_blob(std::string path, git_filemode_t mode, const git_oid* oid, std::uint64_t size,
               const ListOptions& options, std::vector<SourceFile>* files, std::vector<Skipped>* skipped) {
  if (mode == GIT_FILEMODE_LINK) {
    log::debug("index: not following symlink ", path, " in git");
    return;
  }
  if (mode == GIT_FILEMODE_COMMIT) return;  // a submodule
  const std::size_t slash = path.rfind('/');
  if (detect_language(slash == std::string::npos ? path : path.substr(slash + 1)) == Language::unknown) return;
  if (size > options.max_file_bytes) {
    std::string reason = "too large (" + std::to_string(size) + " bytes, limit " +
                         std::to_string(options.max_file_bytes) + ")";
    log::info("index: skipped ", path, ": ", reason);
    if (skipped) skipped->push_back({path, reason});
    return;
  }
  std::uint64_t stamp = 0;
  std::memcpy(&stamp, oid->id, sizeof stamp);
  files->push_back({std::move(path), size, stamp});
}

// The bytes of blob `oid`.
bool read_blob(git_repository* repo, const git_oid* oid, std::string* out, std::string* error) {
  git_blob* blob = nullptr;
  if (git_blob_lookup(&blob, repo, oid) != 0) {
    if (error) *error = git_error_text();
    return false;
  }
  const char* data = static_cast<const char*>(git_blob_rawcontent(blob));
  out->assign(data, static_cast<std::size_t>(git_blob_rawsize(blob)));
  git_blob_free(blob);
  return true;
}

// The identity of a repository's git sources: blob ids are their stamps, so the trees of every
// revision and the index share one tag cache.
std::string git_identity(git_repository* repo) {
  const char* workdir = git_repository_workdir(repo);
  return std::string(workdir ? workdir : git_repository_path(repo)) + "@git";
}

class GitTreeSource final : public Source {
 public:
  GitTreeSource(git_repository* repo, git_tree* tree, std::string identity)
      : repo_(repo), tree_(tree), identity_(std::move(identity)) {}
  ~GitTreeSource() override {
    git_tree_free(tree_);
    git_repository_free(repo_);
  }

  std::string identity() const override { return identity_; }

  std::vector<SourceFile> list(const ListOptions& options, std::vector<Skipped>* skipped) override {
    std::vector<SourceFile> files;
    struct Walk {
      GitTreeSource* self;
      const ListOptions* options;
      std::vector<SourceFile>* files;
      std::vector<Skipped>* skipped;
      git_odb* odb;  // the object database, opened once for the walk
    } walk{this, &options, &files, skipped, nullptr};
    if (git_repository_odb(&walk.odb, repo_) != 0) walk.odb = nullptr;
    auto callback = [](const char* root, const git_tree_entry* entry, void* payload) -> int {
      auto* w = static_cast<Walk*>(payload);
      const char* name = git_tree_entry_name(entry);
      git_object_t type = git_tree_entry_type(entry);
      if (type == GIT_OBJECT_TREE) return builtin_ignored_dir(name) ? 1 : 0;  // 1 = skip it
      if (type != GIT_OBJECT_BLOB) return 0;  // submodules
      const git_oid* oid = git_tree_entry_id(entry);
      std::size_t size = 0;
      git_object_t blob_type{};
      if (!w->odb || git_odb_read_header(&size, &blob_type, w->odb, oid) != 0) size = 0;
      list_blob(std::string(root) + name, git_tree_entry_filemode(entry), oid, size, *w->options, w->files,
                w->skipped);
      return 0;
    };
    if (git_tree_walk(tree_, GIT_TREEWALK_PRE, callback, &walk) != 0)
      log::warn("index: walking ", identity_, " failed: ", git_error_text());
    git_odb_free(walk.odb);
    return files;
  }

  bool read(std::string_view path, std::string* out, std::string* error) const override {
    std::lock_guard lock(mutex_);  // a git_repository is not safe to share between threads
    git_tree_entry* entry = nullptr;
    std::string p(path);
    if (git_tree_entry_bypath(&entry, tree_, p.c_str()) != 0) {
      if (error) *error = "not in the tree: " + git_error_text();
      return false;
    }
    const bool ok = read_blob(repo_, git_tree_entry_id(entry), out, error);
    git_tree_entry_free(entry);
    return ok;
  }

 private:
  git_repository* repo_;
  git_tree* tree_;
  std::string identity_;
  mutable std::mutex mutex_;
};

// The index (staging area): its stage-0 entries as they were when it was opened.
class GitIndexSource final : public Source {
 public:
  struct Entry {
    std::string path;
    git_filemode_t mode;
    git_oid oid;
    std::uint64_t size;
  };
  GitIndexSource(git_repository* repo, std::vector<Entry> entries)
      : repo_(repo), entries_(std::move(entries)), identity_(git_identity(repo)) {}
  ~GitIndexSource() override { git_repository_free(repo_); }

  std::string identity() const override { return identity_; }

  std::vector<SourceFile> list(const ListOptions& options, std::vector<Skipped>* skipped) override {
    std::vector<SourceFile> files;
    for (const Entry& e : entries_) {
      bool ignored = false;  // in a folder ponder never enters
      for (std::size_t at = 0, slash; !ignored && (slash = e.path.find('/', at)) != std::string::npos; at = slash + 1)
        ignored = builtin_ignored_dir(std::string_view(e.path).substr(at, slash - at));
      if (!ignored) list_blob(e.path, e.mode, &e.oid, e.size, options, &files, skipped);
    }
    return files;
  }

  bool read(std::string_view path, std::string* out, std::string* error) const override {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), path,
                               [](const Entry& e, std::string_view p) { return e.path < p; });
    if (it == entries_.end() || it->path != path) {
      if (error) *error = "not in the index";
      return false;
    }
    std::lock_guard lock(mutex_);  // a git_repository is not safe to share between threads
    return read_blob(repo_, &it->oid, out, error);
  }

 private:
  git_repository* repo_;
  std::vector<Entry> entries_;  // sorted by path
  std::string identity_;
  mutable std::mutex mutex_;
};

}  // namespace

// The repository containing `repo_path` (the caller frees it); null with `error` set.
static git_repository* open_repository(const std::string& repo_path, std::string* error) {
  ensure_libgit2();
  git_repository* repo = nullptr;
  if (git_repository_open_ext(&repo, repo_path.c_str(), 0, nullptr) == 0) return repo;
  if (error) *error = repo_path + ": not a git repository (" + git_error_text() + ")";
  return nullptr;
}

std::unique_ptr<Source> open_git_index(const std::string& repo_path, std::string* error) {
  git_repository* repo = open_repository(repo_path, error);
  if (!repo) return nullptr;
  git_index* index = nullptr;
  if (git_repository_index(&index, repo) != 0) {
    if (error) *error = "cannot read the index: " + git_error_text();
    git_repository_free(repo);
    return nullptr;
  }
  std::vector<GitIndexSource::Entry> entries;
  for (std::size_t i = 0, n = git_index_entrycount(index); i < n; ++i) {
    const git_index_entry* e = git_index_get_byindex(index, i);
    if (!e || GIT_INDEX_ENTRY_STAGE(e) != 0) continue;
    entries.push_back({e->path, static_cast<git_filemode_t>(e->mode), e->id, e->file_size});
  }
  git_index_free(index);
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return std::make_unique<GitIndexSource>(repo, std::move(entries));
}

std::unique_ptr<Source> open_git_tree(const std::string& repo_path, const std::string& revision,
                                      std::string* error) {
  git_repository* repo = open_repository(repo_path, error);
  if (!repo) return nullptr;
  git_object* object = nullptr;
  if (git_revparse_single(&object, repo, revision.c_str()) != 0) {
    if (error) *error = "unknown revision '" + revision + "': " + git_error_text();
    git_repository_free(repo);
    return nullptr;
  }
  git_object* peeled = nullptr;
  int rc = git_object_peel(&peeled, object, GIT_OBJECT_TREE);
  git_object_free(object);
  if (rc != 0) {
    if (error) *error = "revision '" + revision + "' has no tree: " + git_error_text();
    git_repository_free(repo);
    return nullptr;
  }
  git_tree* tree = reinterpret_cast<git_tree*>(peeled);
  return std::make_unique<GitTreeSource>(repo, tree, git_identity(repo));
}

}  // namespace ponder::agent
