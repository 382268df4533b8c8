#pragma once
// Git repositories made by tests with the git CLI: a fixed identity, no signing, no hooks.
#include <catch2/catch.hpp>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "support/temp_dir.h"

namespace ponder::test {

/// Runs `git ARGS` in `dir` (quietly) and requires it to succeed.
inline void git(const TempDir& dir, const std::string& args) {
  const std::string cmd = "git -C '" + dir.str() +
                          "' -c user.name=t -c user.email=t@e -c commit.gpgsign=false -c core.hooksPath=/dev/null "
                          "-c protocol.file.allow=always " +
                          args + " >/dev/null 2>&1";
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
}

/// Writes each (path, content) of `files` in `dir`, then commits everything (`git add -A`) with
/// `message` (no single quotes in it).
inline void commit_files(const TempDir& dir, std::initializer_list<std::pair<std::string, std::string>> files,
                         const std::string& message) {
  for (const auto& [path, content] : files) dir.write(path, content);
  git(dir, "add -A");
  git(dir, "commit -q -m '" + message + "'");
}

/// What `git ARGS` prints in `dir`, without the last newline.
inline std::string git_output(const TempDir& dir, const std::string& args) {
  const std::string cmd = "git -C '" + dir.str() + "' " + args + " 2>/dev/null";
  std::string out;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace ponder::test
