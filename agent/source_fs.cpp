// A folder on disk as a Source.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>

#include "agent/ignore.h"
#include "agent/language.h"
#include "agent/source.h"
#include "engine/log.h"

namespace ponder::agent {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

// Reads a whole file. Refuses anything that is not a regular file (fifos would block).
bool read_file(const std::string& full, std::string* out, std::string* error) {
  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (error) *error = errno_text(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (error) *error = "not a regular file";
    ::close(fd);
    return false;
  }
  out->resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out->size()) {
    ssize_t n = ::read(fd, out->data() + got, out->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (error) *error = errno_text(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;  // the file shrank while we read it
    got += static_cast<std::size_t>(n);
  }
  out->resize(got);
  ::close(fd);
  return true;
}

std::string read_head(const std::string& full, std::size_t n) {
  std::string head;
  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return head;
  head.resize(n);
  ssize_t got = ::read(fd, head.data(), n);
  head.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  ::close(fd);
  return head;
}

class DirectorySource final : public Source {
 public:
  explicit DirectorySource(std::string root) : root_(std::move(root)) {}

  std::string identity() const override { return root_; }

  std::vector<SourceFile> list(const ListOptions& options, std::vector<Skipped>* skipped) override {
    std::vector<SourceFile> files;
    IgnoreStack ignores;
    walk("", options, ignores, files, skipped);
    std::sort(files.begin(), files.end(),
              [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
    return files;
  }

  bool read(std::string_view path, std::string* out, std::string* error) const override {
    return read_file(full_path(path), out, error);
  }

 private:
  std::string full_path(std::string_view rel) const {
    std::string full = root_;
    if (!rel.empty()) {
      if (full.empty() || full.back() != '/') full += '/';
      full += rel;
    }
    return full;
  }

  void skip(std::vector<Skipped>* skipped, std::string path, std::string reason) {
    log::info("index: skipped ", path, ": ", reason);
    if (skipped) skipped->push_back({std::move(path), std::move(reason)});
  }

  void walk(const std::string& rel_dir, const ListOptions& options, IgnoreStack& ignores,
            std::vector<SourceFile>& files, std::vector<Skipped>* skipped) {
    const std::string dir = full_path(rel_dir);
    std::size_t pushed = 0;
    if (options.use_ignore_files) {
      for (const char* name : {".gitignore", ".ponderignore"}) {
        std::string content, error;
        std::string file = dir + (dir.back() == '/' ? "" : "/") + name;
        struct stat st {};
        if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            read_file(file, &content, &error)) {
          IgnoreFile ig(rel_dir, content);
          if (!ig.empty()) {
            ignores.push(std::move(ig));
            ++pushed;
          }
        }
      }
    }
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
      skip(skipped, rel_dir.empty() ? "." : rel_dir, "cannot open folder: " + errno_text(errno));
      for (; pushed > 0; --pushed) ignores.pop();
      return;
    }
    int dfd = ::dirfd(d);
    std::vector<std::pair<std::string, bool>> subdirs;
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string rel = rel_dir.empty() ? std::string(name) : rel_dir + "/" + std::string(name);
      unsigned char type = e->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st {};
        if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK
                                              : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
      }
      if (type == DT_DIR) {
        if (builtin_ignored_dir(name) || ignores.ignored(rel, true)) continue;
        subdirs.emplace_back(std::move(rel), true);
        continue;
      }
      if (type != DT_REG && type != DT_LNK) continue;  // sockets, fifos, devices
      if (ignores.ignored(rel, false)) continue;
      struct stat st {};
      if (::fstatat(dfd, e->d_name, &st, 0) != 0) {  // follows symlinks
        int err = errno;
        if (type == DT_LNK && err == ELOOP) skip(skipped, rel, "symlink loop");
        else if (type == DT_LNK && err == ENOENT) skip(skipped, rel, "dangling symlink");
        else skip(skipped, rel, "cannot stat: " + errno_text(err));
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        log::debug("index: not following symlinked folder ", rel);
        continue;
      }
      if (!S_ISREG(st.st_mode)) continue;
      Language lang = detect_language(name);
      if (lang == Language::unknown && name.find('.') == std::string_view::npos &&
          st.st_size > 2) {
        lang = detect_language(name, read_head(dir + "/" + std::string(name), 128));
      }
      if (lang == Language::unknown) continue;
      if (static_cast<std::uint64_t>(st.st_size) > options.max_file_bytes) {
        skip(skipped, rel, "too large (" + std::to_string(st.st_size) + " bytes, limit " +
                               std::to_string(options.max_file_bytes) + ")");
        continue;
      }
      if (::faccessat(dfd, e->d_name, R_OK, 0) != 0) {
        skip(skipped, rel, "unreadable: " + errno_text(errno));
        continue;
      }
      std::uint64_t stamp = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                            static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
      stamp ^= static_cast<std::uint64_t>(st.st_ino) << 1;  // a replaced file changes too
      files.push_back({std::move(rel), static_cast<std::uint64_t>(st.st_size), stamp});
    }
    ::closedir(d);
    for (auto& [sub, _] : subdirs) walk(sub, options, ignores, files, skipped);
    for (; pushed > 0; --pushed) ignores.pop();
  }

  std::string root_;
};

}  // namespace

std::unique_ptr<Source> open_directory(const std::string& root, std::string* error) {
  char resolved[PATH_MAX];
  if (!::realpath(root.c_str(), resolved)) {
    if (error) *error = root + ": " + errno_text(errno);
    return nullptr;
  }
  struct stat st {};
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    if (error) *error = root + ": not a folder";
    return nullptr;
  }
  return std::make_unique<DirectorySource>(resolved);
}

}  // namespace ponder::agent
