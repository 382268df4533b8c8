#include <catch2/catch.hpp>

#include "agent/ignore.h"

using namespace ponder::agent;

TEST_CASE("glob_match follows gitignore wildcards", "[ignore]") {
  CHECK(glob_match("*.o", "main.o"));
  CHECK_FALSE(glob_match("*.o", "main.c"));
  CHECK_FALSE(glob_match("*.o", "dir/main.o"));  // '*' does not cross '/'
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "a/c"));
  CHECK(glob_match("**/gen", "gen"));
  CHECK(glob_match("**/gen", "a/b/gen"));
  CHECK(glob_match("src/**", "src/a/b.c"));
  CHECK(glob_match("a/**/b", "a/b"));
  CHECK(glob_match("a/**/b", "a/x/y/b"));
  CHECK_FALSE(glob_match("a/**/b", "a/x/y/c"));
  CHECK(glob_match("[abc].py", "b.py"));
  CHECK_FALSE(glob_match("[!abc].py", "b.py"));
  CHECK(glob_match("[a-z]1", "q1"));
  CHECK(glob_match("\\*lit", "*lit"));
  CHECK_FALSE(glob_match("\\*lit", "xlit"));
  CHECK(glob_match("[unclosed", "[unclosed"));
}

TEST_CASE("an ignore file's last matching pattern decides", "[ignore]") {
  IgnoreFile f("", "# comment\n*.log\n!keep.log\nbuild/\n/rooted.c\ndocs/*.md\n\n  \n");
  using V = IgnoreFile::Verdict;
  CHECK(f.match("x.log", false) == V::ignore);
  CHECK(f.match("sub/x.log", false) == V::ignore);
  CHECK(f.match("keep.log", false) == V::keep);
  CHECK(f.match("build", true) == V::ignore);
  CHECK(f.match("build", false) == V::none);  // dir-only pattern
  CHECK(f.match("rooted.c", false) == V::ignore);
  CHECK(f.match("sub/rooted.c", false) == V::none);
  CHECK(f.match("docs/a.md", false) == V::ignore);
  CHECK(f.match("x/docs/a.md", false) == V::none);
  CHECK(f.match("main.c", false) == V::none);
}

TEST_CASE("nested ignore files apply below their folder and override", "[ignore]") {
  IgnoreStack stack;
  stack.push(IgnoreFile("", "*.gen.c\n"));
  stack.push(IgnoreFile("lib", "!special.gen.c\nlocal.c\n"));
  CHECK(stack.ignored("a.gen.c", false));
  CHECK(stack.ignored("lib/a.gen.c", false));
  CHECK_FALSE(stack.ignored("lib/special.gen.c", false));
  CHECK(stack.ignored("lib/local.c", false));
  CHECK_FALSE(stack.ignored("local.c", false));  // lib's rules do not reach the root
  CHECK_FALSE(stack.ignored("library/local.c", false));
}

TEST_CASE("built-in ignored folders", "[ignore]") {
  for (const char* d : {".git", "node_modules", "__pycache__", "build", "cmake-build-debug", "target"})
    CHECK(builtin_ignored_dir(d));
  for (const char* d : {"src", "lib", "builder", "include"}) CHECK_FALSE(builtin_ignored_dir(d));
}
