// The changes a review looks at, read with libgit2.
#include "agent/review_changes.h"

#include <git2.h>

#include <algorithm>
#include <filesystem>

#include "agent/git_changes.h"

namespace ponder::agent {
namespace {

// Owners of libgit2 objects.
template <typename T, void (*Free)(T*)>
struct Owned {
  T* p = nullptr;
  Owned() = default;
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() {
    if (p) Free(p);
  }
  T** out() {
    if (p) Free(p);
    p = nullptr;
    return &p;
  }
  T* get() const { return p; }
  T* release() {
    T* q = p;
    p = nullptr;
    return q;
  }
};
using Repo = Owned<git_repository, git_repository_free>;
using Object = Owned<git_object, git_object_free>;
using Commit = Owned<git_commit, git_commit_free>;
using Tree = Owned<git_tree, git_tree_free>;
using Diff = Owned<git_diff, git_diff_free>;
using Patch = Owned<git_patch, git_patch_free>;
using Walk = Owned<git_revwalk, git_revwalk_free>;

std::string short_id(const git_oid* oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, oid);
  return std::string(hex).substr(0, 8);
}

std::string full_id(const git_oid* oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, oid);
  return hex;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

// `revision` as a commit; `what` names it in the error.
bool lookup_commit(git_repository* repo, const git_object* object, const std::string& what, Commit* out,
                   std::string* error) {
  Object peeled;
  if (git_object_peel(peeled.out(), object, GIT_OBJECT_COMMIT) != 0) {
    *error = "'" + what + "' is not a commit: " + git_error_text();
    return false;
  }
  return git_commit_lookup(out->out(), repo, git_object_id(peeled.get())) == 0 || (*error = git_error_text(), false);
}

bool resolve_commit(git_repository* repo, const std::string& revision, Commit* out, std::string* error) {
  Object object;
  if (git_revparse_single(object.out(), repo, revision.c_str()) != 0) {
    *error = "unknown revision '" + revision + "' (" + git_error_text() + ")";
    return false;
  }
  return lookup_commit(repo, object.get(), revision, out, error);
}

bool merge_base_of(git_repository* repo, const git_oid* a, const git_oid* b, git_oid* out, std::string* error) {
  if (git_merge_base(out, repo, a, b) == 0) return true;
  *error = "no merge base between " + short_id(a) + " and " + short_id(b) + " (" + git_error_text() + ")";
  return false;
}

// The message of one commit, or of a range's commits (oldest first, each after its id).
std::string range_message(git_repository* repo, const git_oid* from, const git_oid* to, std::size_t* count) {
  Walk walk;
  *count = 0;
  if (git_revwalk_new(walk.out(), repo) != 0) return {};
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  if (git_revwalk_push(walk.get(), to) != 0) return {};
  if (from) git_revwalk_hide(walk.get(), from);
  std::vector<std::pair<std::string, std::string>> commits;  // id, message
  git_oid oid;
  while (git_revwalk_next(&oid, walk.get()) == 0) {
    Commit c;
    if (git_commit_lookup(c.out(), repo, &oid) != 0) continue;
    const char* m = git_commit_message(c.get());
    commits.emplace_back(short_id(&oid), trimmed(m ? m : ""));
  }
  *count = commits.size();
  if (commits.size() == 1) return commits[0].second;
  constexpr std::size_t kMaxCommits = 50;  // then only the count of the rest
  std::string text;
  for (std::size_t i = 0; i < commits.size() && i < kMaxCommits; ++i)
    text += (i ? "\n\n" : "") + ("commit " + commits[i].first + ":\n") + commits[i].second;
  if (commits.size() > kMaxCommits)
    text += "\n\n(and " + std::to_string(commits.size() - kMaxCommits) + " more commits)";
  return text;
}

ChangeKind kind_of(git_delta_t status) {
  switch (status) {
    case GIT_DELTA_ADDED:
      return ChangeKind::added;
    case GIT_DELTA_DELETED:
      return ChangeKind::deleted;
    case GIT_DELTA_RENAMED:
      return ChangeKind::renamed;
    case GIT_DELTA_COPIED:
      return ChangeKind::copied;
    case GIT_DELTA_TYPECHANGE:
      return ChangeKind::type_changed;
    default:
      return ChangeKind::modified;
  }
}

std::string mode_text(std::uint16_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06o", static_cast<unsigned>(mode));
  return buf;
}

// One delta of `diff` as a ChangedFile; false with `error` when libgit2 fails.
bool read_delta(git_diff* diff, std::size_t i, ChangedFile* f, std::string* error) {
  Patch patch;
  if (git_patch_from_diff(patch.out(), diff, i) != 0) {
    *error = "diff: " + git_error_text();
    return false;
  }
  const git_diff_delta* d = patch.get() ? git_patch_get_delta(patch.get()) : git_diff_get_delta(diff, i);
  f->kind = kind_of(d->status);
  f->path = d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path;
  if (d->status != GIT_DELTA_ADDED) f->old_path = d->old_file.path;
  f->similarity = d->status == GIT_DELTA_RENAMED || d->status == GIT_DELTA_COPIED ? d->similarity : 0;
  f->submodule = d->old_file.mode == GIT_FILEMODE_COMMIT || d->new_file.mode == GIT_FILEMODE_COMMIT;
  f->binary = !f->submodule && (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
  if (f->submodule) {
    const std::string from = d->old_file.mode == GIT_FILEMODE_COMMIT ? short_id(&d->old_file.id) : "(none)";
    const std::string to = d->new_file.mode == GIT_FILEMODE_COMMIT ? short_id(&d->new_file.id) : "(none)";
    f->note = from == to ? "submodule with changes inside it (not reviewed here)" : "submodule " + from + " -> " + to;
    return true;
  }
  if (f->binary) {
    f->note = "binary file";
    return true;
  }
  const std::size_t hunks = patch.get() ? git_patch_num_hunks(patch.get()) : 0;
  for (std::size_t h = 0; h < hunks; ++h) {
    const git_diff_hunk* gh = nullptr;
    std::size_t lines = 0;
    if (git_patch_get_hunk(&gh, &lines, patch.get(), h) != 0) {
      *error = "diff: " + git_error_text();
      return false;
    }
    DiffHunk hunk;
    hunk.old_start = static_cast<std::uint32_t>(gh->old_start);
    hunk.old_lines = static_cast<std::uint32_t>(gh->old_lines);
    hunk.new_start = static_cast<std::uint32_t>(gh->new_start);
    hunk.new_lines = static_cast<std::uint32_t>(gh->new_lines);
    hunk.header = trimmed(std::string(gh->header, gh->header_len));
    for (std::size_t l = 0; l < lines; ++l) {
      const git_diff_line* line = nullptr;
      if (git_patch_get_line_in_hunk(&line, patch.get(), h, l) != 0) continue;
      switch (line->origin) {
        case GIT_DIFF_LINE_CONTEXT:
        case GIT_DIFF_LINE_ADDITION:
        case GIT_DIFF_LINE_DELETION:
          hunk.lines += line->origin;
          hunk.lines.append(line->content, line->content_len);
          if (line->content_len == 0 || line->content[line->content_len - 1] != '\n') hunk.lines += '\n';
          if (line->origin == GIT_DIFF_LINE_ADDITION)
            hunk.added.push_back(static_cast<std::uint32_t>(line->new_lineno));
          if (line->origin == GIT_DIFF_LINE_DELETION)
            hunk.removed.push_back(static_cast<std::uint32_t>(line->old_lineno));
          break;
        case GIT_DIFF_LINE_CONTEXT_EOFNL:
        case GIT_DIFF_LINE_ADD_EOFNL:
        case GIT_DIFF_LINE_DEL_EOFNL:
          hunk.lines += "\\ No newline at end of file\n";
          break;
        default:
          break;
      }
    }
    f->hunks.push_back(std::move(hunk));
  }
  if (f->hunks.empty()) {
    if (d->old_file.mode != d->new_file.mode && d->old_file.mode != 0 && d->new_file.mode != 0)
      f->note = "mode " + mode_text(d->old_file.mode) + " -> " + mode_text(d->new_file.mode);
    else if (f->kind == ChangeKind::renamed || f->kind == ChangeKind::copied)
      f->note = std::string(change_kind_name(f->kind)) + " without changes";
    else
      f->note = "empty file";
  }
  return true;
}

}  // namespace

std::string_view change_kind_name(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::added:
      return "added";
    case ChangeKind::deleted:
      return "deleted";
    case ChangeKind::modified:
      return "modified";
    case ChangeKind::renamed:
      return "renamed";
    case ChangeKind::copied:
      return "copied";
    case ChangeKind::type_changed:
      return "type changed";
  }
  return "?";
}

std::string unified_diff(const ChangedFile& file) {
  if (file.hunks.empty()) return {};
  const bool added = file.kind == ChangeKind::added, deleted = file.kind == ChangeKind::deleted;
  std::string out = "--- " + (added ? std::string("/dev/null") : "a/" + file.old_path) + "\n+++ " +
                    (deleted ? std::string("/dev/null") : "b/" + file.path) + "\n";
  for (const DiffHunk& h : file.hunks) out += h.header + "\n" + h.lines;
  return out;
}

bool read_changes(const ReviewSpec& spec, ChangeSet* out, std::string* error) {
  namespace fs = std::filesystem;
  ensure_libgit2();
  *out = ChangeSet{};
  Repo repo;
  if (git_repository_open_ext(repo.out(), spec.repo.c_str(), 0, nullptr) != 0) {
    std::error_code ec;
    const fs::path where = fs::weakly_canonical(fs::absolute(spec.repo), ec);
    *error = (ec ? spec.repo : where.string()) + " is not in a git repository";
    return false;
  }
  const char* workdir = git_repository_workdir(repo.get());
  const bool bare = workdir == nullptr;
  out->root = bare ? git_repository_path(repo.get()) : workdir;
  if (bare && spec.mode != ReviewSpec::Mode::revision) {
    *error = "the repository " + out->root + " is bare: it has no index or work tree to review";
    return false;
  }

  // The paths as the repository names them.
  std::vector<std::string> pathspecs;
  for (const std::string& p : spec.paths) {
    if (bare) {
      pathspecs.push_back(p);
      continue;
    }
    std::error_code ec;
    const fs::path base = fs::weakly_canonical(fs::absolute(spec.repo), ec);
    const fs::path rel = fs::weakly_canonical(base / p, ec).lexically_relative(fs::weakly_canonical(workdir, ec));
    const std::string r = rel.generic_string();
    if (rel.empty() || r == ".." || r.rfind("../", 0) == 0) {
      *error = "the path '" + p + "' is outside the repository " + out->root;
      return false;
    }
    if (r != ".") pathspecs.push_back(r);
  }
  std::vector<char*> pathspec_ptrs;
  for (std::string& p : pathspecs) pathspec_ptrs.push_back(p.data());

  git_diff_options options;
  git_diff_options_init(&options, GIT_DIFF_OPTIONS_VERSION);
  options.context_lines = spec.context_lines;
  options.flags = GIT_DIFF_INCLUDE_TYPECHANGE;
  options.pathspec = {pathspec_ptrs.data(), pathspec_ptrs.size()};

  const std::string revision = spec.revision.empty() ? "HEAD" : spec.revision;
  Diff diff;
  Tree old_tree;
  if (spec.mode == ReviewSpec::Mode::revision) {
    if (spec.revision.empty() && git_repository_head_unborn(repo.get()) == 1) {
      *error = "the repository has no commit yet (--staged reviews what is staged for the first one)";
      return false;
    }
    git_revspec range;
    if (git_revparse(&range, repo.get(), revision.c_str()) != 0) {
      *error = "unknown revision '" + revision + "' (" + git_error_text() + ")";
      return false;
    }
    Object from_object, to_object;
    from_object.p = range.from;
    to_object.p = range.to;
    Commit from, to;
    Tree new_tree;
    if (range.flags & GIT_REVSPEC_SINGLE) {
      if (!lookup_commit(repo.get(), from_object.get(), revision, &to, error)) return false;
      const unsigned parents = git_commit_parentcount(to.get());
      const std::string id = short_id(git_commit_id(to.get()));
      if (parents == 0) {
        out->description = "root commit " + id + " against the empty tree";
      } else if (parents > 1 && spec.merge_base) {
        std::vector<git_oid> ids;
        for (unsigned i = 0; i < parents; ++i) ids.push_back(*git_commit_parent_id(to.get(), i));
        git_oid base;
        if (git_merge_base_many(&base, repo.get(), ids.size(), ids.data()) != 0) {
          *error = "the parents of merge commit " + id + " have no merge base (" + git_error_text() + ")";
          return false;
        }
        if (git_commit_lookup(from.out(), repo.get(), &base) != 0) return *error = git_error_text(), false;
        out->description = "merge commit " + id + " against the merge base " + short_id(&base) + " of its parents";
      } else {
        if (git_commit_parent(from.out(), to.get(), 0) != 0) return *error = git_error_text(), false;
        out->description = (parents > 1 ? "merge commit " : "commit ") + id + " against its " +
                           (parents > 1 ? "first parent " : "parent ") + short_id(git_commit_id(from.get()));
        if (parents > 1)
          out->notes.push_back(
              "merge commit: compared with its first parent (--merge-base compares it with the "
              "merge base of its parents)");
      }
      const char* m = git_commit_message(to.get());
      out->message = trimmed(m ? m : "");
    } else {
      const std::string a = revision.substr(0, revision.find(".."));
      if (!from_object.get()) {
        if (!resolve_commit(repo.get(), "HEAD", &from, error)) return false;
      } else if (!lookup_commit(repo.get(), from_object.get(), a, &from, error)) {
        return false;
      }
      if (!lookup_commit(repo.get(), to_object.get(), revision, &to, error)) return false;
      const bool three_dots = (range.flags & GIT_REVSPEC_MERGE_BASE) != 0 || spec.merge_base;
      if (three_dots) {
        git_oid base;
        if (!merge_base_of(repo.get(), git_commit_id(from.get()), git_commit_id(to.get()), &base, error)) return false;
        Commit b;
        if (git_commit_lookup(b.out(), repo.get(), &base) != 0) return *error = git_error_text(), false;
        out->description = short_id(git_commit_id(to.get())) + " against the merge base " + short_id(&base) + " of " +
                           short_id(git_commit_id(from.get())) + " and " + short_id(git_commit_id(to.get()));
        git_commit_free(from.release());
        from.p = b.release();
      } else {
        out->description = "range " + short_id(git_commit_id(from.get())) + ".." + short_id(git_commit_id(to.get()));
      }
      std::size_t count = 0;
      out->message = range_message(repo.get(), git_commit_id(from.get()), git_commit_id(to.get()), &count);
      out->description += " (" + std::to_string(count) + (count == 1 ? " commit)" : " commits)");
    }
    if (from.get() && git_commit_tree(old_tree.out(), from.get()) != 0) return *error = git_error_text(), false;
    if (git_commit_tree(new_tree.out(), to.get()) != 0) return *error = git_error_text(), false;
    if (from.get()) out->base = full_id(git_commit_id(from.get()));
    out->head = full_id(git_commit_id(to.get()));
    if (git_diff_tree_to_tree(diff.out(), repo.get(), old_tree.get(), new_tree.get(), &options) != 0) {
      *error = "diff: " + git_error_text();
      return false;
    }
    out->new_side = open_git_tree(out->root, out->head, error);
    if (!out->new_side) return false;
  } else {
    if (revision.find("..") != std::string::npos) {
      *error = "the index and the work tree are compared with one revision, not a range ('" + revision + "')";
      return false;
    }
    // The base: HEAD or the revision given (or its merge base with HEAD); none before the first commit.
    Commit base;
    std::string base_name = revision;
    const bool unborn = git_repository_head_unborn(repo.get()) == 1;
    if (!(unborn && spec.revision.empty())) {
      if (!resolve_commit(repo.get(), revision, &base, error)) return false;
      if (spec.merge_base && !spec.revision.empty()) {
        Commit head;
        if (!resolve_commit(repo.get(), "HEAD", &head, error)) return false;
        git_oid mb;
        if (!merge_base_of(repo.get(), git_commit_id(base.get()), git_commit_id(head.get()), &mb, error)) return false;
        base_name = "the merge base of " + revision + " and HEAD";
        if (git_commit_lookup(base.out(), repo.get(), &mb) != 0) return *error = git_error_text(), false;
      }
      if (git_commit_tree(old_tree.out(), base.get()) != 0) return *error = git_error_text(), false;
      out->base = full_id(git_commit_id(base.get()));
      base_name += " (" + short_id(git_commit_id(base.get())) + ")";
    } else {
      base_name = "the empty tree (no commit yet)";
    }
    if (spec.mode == ReviewSpec::Mode::staged) {
      out->description = "the index against " + base_name;
      if (git_diff_tree_to_index(diff.out(), repo.get(), old_tree.get(), nullptr, &options) != 0) {
        *error = "diff: " + git_error_text();
        return false;
      }
      out->new_side = open_git_index(out->root, error);
    } else {
      out->description = "the work tree against " + base_name;
      options.flags |= GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS;
      if (git_diff_tree_to_workdir_with_index(diff.out(), repo.get(), old_tree.get(), &options) != 0) {
        *error = "diff: " + git_error_text();
        return false;
      }
      out->new_side = open_directory(out->root, error);
    }
    if (!out->new_side) return false;
  }
  if (!out->base.empty() && !(out->old_side = open_git_tree(out->root, out->base, error))) return false;

  git_diff_find_options find;
  git_diff_find_options_init(&find, GIT_DIFF_FIND_OPTIONS_VERSION);
  find.flags = GIT_DIFF_FIND_RENAMES;
  if (git_diff_find_similar(diff.get(), &find) != 0) {
    *error = "rename detection: " + git_error_text();
    return false;
  }
  std::vector<std::string> untracked;
  for (std::size_t i = 0, n = git_diff_num_deltas(diff.get()); i < n; ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    if (d->status == GIT_DELTA_UNTRACKED) {
      untracked.push_back(d->new_file.path);
      continue;
    }
    if (d->status == GIT_DELTA_UNMODIFIED || d->status == GIT_DELTA_IGNORED) continue;
    ChangedFile f;
    if (!read_delta(diff.get(), i, &f, error)) return false;
    out->files.push_back(std::move(f));
  }
  std::stable_sort(out->files.begin(), out->files.end(),
                   [](const ChangedFile& a, const ChangedFile& b) { return a.path < b.path; });
  if (!untracked.empty()) {
    std::string list;
    for (std::size_t i = 0; i < untracked.size() && i < 10; ++i) list += (i ? ", " : "") + untracked[i];
    if (untracked.size() > 10) list += ", ...";
    out->notes.push_back(std::to_string(untracked.size()) + " untracked file" + (untracked.size() == 1 ? "" : "s") +
                         " not reviewed (`git add -N FILE` includes one): " + list);
  }
  return true;
}

}  // namespace ponder::agent
