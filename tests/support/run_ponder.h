#pragma once
// Runs the ponder executable (PONDER_BINARY) as a user would, capturing what it prints.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace ponder::test {

struct Run {
  int status;       // the exit status; -1 when it did not exit normally
  std::string out;  // stdout (and stderr, if asked)
};

/// Runs `ponder ARGS` capturing stdout (and stderr, if asked). `prefix` goes before the command
/// in the shell line: environment assignments, a `cd DIR &&`.
inline Run run_ponder(const std::string& args, bool with_stderr = false, const std::string& prefix = "") {
  std::string cmd = prefix + PONDER_BINARY + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  Run r{-1, {}};
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace ponder::test
