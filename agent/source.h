#pragma once
// Where the index reads files from: a folder on disk, or a git tree at a revision (the review
// command indexes the reviewed revision, not the working tree).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::agent {

struct SourceFile {
  std::string path;          // relative to the root, '/'-separated
  std::uint64_t size = 0;    // bytes
  std::uint64_t stamp = 0;   // changes whenever the content may have: mtime (ns) on disk,
                             // the blob id's first 8 bytes in git
};

/// Why a file was left out of the index; reported by list() and by the index's read step.
struct Skipped {
  std::string path;
  std::string reason;
};

struct ListOptions {
  std::uint64_t max_file_bytes = 2u << 20;  // larger files are skipped (generated code, data)
  bool use_ignore_files = true;             // .gitignore and .ponderignore
};

/// A tree of source files. list() is called from one thread; read() is thread-safe.
class Source {
 public:
  virtual ~Source() = default;
  /// Identity of this source for caches and messages ("/abs/path", or "/abs/repo/@git" for
  /// every tree and the index of a repository: their stamps are blob ids).
  virtual std::string identity() const = 0;
  /// The files in a language ponder understands, in a stable order, minus ignored ones (built-in
  /// list, .gitignore, .ponderignore) and ones over the size limit; what it leaves out for a
  /// reason a user may want to know (too large, unreadable, symlink loops) goes to `skipped`.
  virtual std::vector<SourceFile> list(const ListOptions& options,
                                       std::vector<Skipped>* skipped) = 0;
  /// Reads one file listed by list(). False with `error` set when it cannot be read.
  virtual bool read(std::string_view path, std::string* out, std::string* error) const = 0;
};

/// A folder on disk. Does not follow symlinked folders (as git does not); symlinked files are
/// read through the link. Returns null with `error` set when `root` is not a readable folder.
std::unique_ptr<Source> open_directory(const std::string& root, std::string* error);

/// The tree of `revision` (anything `git rev-parse` accepts: "HEAD", "main~2", a sha) in the
/// repository containing `repo_path`. Returns null with `error` set when either is not found.
std::unique_ptr<Source> open_git_tree(const std::string& repo_path, const std::string& revision,
                                      std::string* error);

/// The files of the index (the staging area) of the repository containing `repo_path`, as they
/// are staged: its stage-0 entries (conflicted files are left out), with open_git_tree's
/// filters. The index is read once, here. Null with `error` set when there is no repository.
std::unique_ptr<Source> open_git_index(const std::string& repo_path, std::string* error);

}  // namespace ponder::agent
