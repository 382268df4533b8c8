// A git tree at a revision as a Source (libgit2). Tracked files only: .gitignore does not apply
// to what is committed, the built-in ignore list and the size limit do.
#include <git2.h>

#include <cstring>
#include <mutex>

#include "agent/git_changes.h"
#include "agent/ignore.h"
#include "agent/language.h"
#include "agent/source.h"
#include "engine/log.h"

namespace ponder::agent {
namespace {


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
      git_filemode_t mode = git_tree_entry_filemode(entry);
      std::string path = std::string(root) + name;
      if (mode == GIT_FILEMODE_LINK) {
        log::debug("index: not following symlink ", path, " in git tree");
        return 0;
      }
      if (detect_language(name) == Language::unknown) return 0;
      const git_oid* oid = git_tree_entry_id(entry);
      std::size_t size = 0;
      git_object_t blob_type{};
      if (!w->odb || git_odb_read_header(&size, &blob_type, w->odb, oid) != 0) size = 0;
      if (size > w->options->max_file_bytes) {
        std::string reason = "too large (" + std::to_string(size) + " bytes, limit " +
                             std::to_string(w->options->max_file_bytes) + ")";
        log::info("index: skipped ", path, ": ", reason);
        if (w->skipped) w->skipped->push_back({path, reason});
        return 0;
      }
      std::uint64_t stamp = 0;
      std::memcpy(&stamp, oid->id, sizeof stamp);
      w->files->push_back({std::move(path), size, stamp});
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
    git_blob* blob = nullptr;
    int rc = git_blob_lookup(&blob, repo_, git_tree_entry_id(entry));
    git_tree_entry_free(entry);
    if (rc != 0) {
      if (error) *error = git_error_text();
      return false;
    }
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob));
    out->assign(data, static_cast<std::size_t>(git_blob_rawsize(blob)));
    git_blob_free(blob);
    return true;
  }

 private:
  git_repository* repo_;
  git_tree* tree_;
  std::string identity_;
  mutable std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Source> open_git_tree(const std::string& repo_path, const std::string& revision,
                                      std::string* error) {
  ensure_libgit2();
  git_repository* repo = nullptr;
  if (git_repository_open_ext(&repo, repo_path.c_str(), 0, nullptr) != 0) {
    if (error) *error = repo_path + ": not a git repository (" + git_error_text() + ")";
    return nullptr;
  }
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
  char sha[GIT_OID_HEXSZ + 1];
  git_oid_tostr(sha, sizeof sha, git_tree_id(tree));
  const char* workdir = git_repository_workdir(repo);
  std::string identity = std::string(workdir ? workdir : git_repository_path(repo)) + "@tree:" + sha;
  return std::make_unique<GitTreeSource>(repo, tree, std::move(identity));
}

}  // namespace ponder::agent
