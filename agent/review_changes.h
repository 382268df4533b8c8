#pragma once
// What a review looks at: the changes of a commit, a range, the index or the work tree, read with
// libgit2 — files with their hunks (line numbers of both revisions), renames detected, binary
// files and submodules noted instead of diffed — and the reviewed revision's files as a Source,
// so that the context of each change is read at that revision (not from the working tree).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/source.h"

namespace ponder::agent {

/// What to review.
///
///   revision "REV"     REV against its first parent (a root commit against the empty tree);
///                      with merge_base, a merge commit against the merge base of its parents
///                      (everything its branches changed since they forked).
///   revision "A..B"    B's tree against A's; with merge_base, as "A...B".
///   revision "A...B"   B against the merge base of A and B (what B's branch did).
///   staged             the index against HEAD (or `revision`; with merge_base, against the
///                      merge base of it and HEAD): what `git commit` would record.
///   worktree           the work tree (tracked files, staged or not) against HEAD (or
///                      `revision`, as for staged). Untracked files are listed in notes, not
///                      reviewed (`git add -N FILE` brings one in).
struct ReviewSpec {
  std::string repo = ".";          // any folder inside the repository
  std::string revision;            // "" = HEAD
  enum class Mode { revision, staged, worktree } mode = Mode::revision;
  bool merge_base = false;
  /// Only changes under these paths (files or folders, relative to `repo` as git takes paths
  /// relative to the current folder; "" or "." for all of `repo`).
  std::vector<std::string> paths;
  std::uint32_t context_lines = 3;  // unchanged lines around each hunk
};

enum class ChangeKind { added, deleted, modified, renamed, copied, type_changed };
std::string_view change_kind_name(ChangeKind kind);

struct DiffHunk {
  /// "@@ -old_start,old_lines +new_start,new_lines @@" (1-based; a side with no lines has the
  /// line before the hunk as its start, 0 at the top of the file, as git writes it).
  std::uint32_t old_start = 0, old_lines = 0, new_start = 0, new_lines = 0;
  std::string header;  // the "@@ ... @@" line with the function git found, no newline
  std::string lines;   // its lines, each '\n'-ended and starting with ' ', '+' or '-' (or '\'
                       // for "\ No newline at end of file")
  std::vector<std::uint32_t> added;    // new-revision numbers of the '+' lines, ascending
  std::vector<std::uint32_t> removed;  // old-revision numbers of the '-' lines, ascending
};

struct ChangedFile {
  ChangeKind kind = ChangeKind::modified;
  std::string path;      // in the new revision (for a deleted file: where it was), '/'-separated
  std::string old_path;  // in the old revision ("" for an added file)
  std::uint32_t similarity = 0;  // renamed or copied: how alike the two are, in percent
  bool binary = false;
  bool submodule = false;
  /// Why the file has no hunks to review ("binary file", "submodule 1a2b3c4 -> 5d6e7f8", "mode
  /// 100644 -> 100755", "renamed without changes"); "" when it has hunks.
  std::string note;
  std::vector<DiffHunk> hunks;
};

/// The file's unified diff: "--- a/OLD" / "+++ b/NEW" ("/dev/null" for a side that does not
/// exist) and its hunks. Empty when it has no hunks.
std::string unified_diff(const ChangedFile& file);

struct ChangeSet {
  std::string root;         // the work tree, absolute, '/'-ended
  std::string description;  // what was compared, for people: "commit 1a2b3c4d against its first parent"
  std::string base;         // the old side's commit id ("" for the empty tree)
  std::string head;         // the new side's commit id ("" for the index and the work tree)
  std::string message;      // the commit's message; a range's commits (oldest first); "" for
                            // the index and the work tree
  std::vector<ChangedFile> files;    // in path order
  std::vector<std::string> notes;    // what a reader should know ("merge commit: ...", untracked files)
  std::shared_ptr<Source> new_side;  // the reviewed revision's files: the new commit's tree, the
                                     // index, or the work tree
  std::shared_ptr<Source> old_side;  // the old side's tree (null for the empty tree)
};

/// Reads the changes `spec` names. False with `error` (a message for the user) when `repo` is
/// in no git repository, a revision is unknown, a path is outside the repository, the
/// repository is bare and the work tree or index was asked for, or libgit2 fails.
bool read_changes(const ReviewSpec& spec, ChangeSet* out, std::string* error);

}  // namespace ponder::agent
