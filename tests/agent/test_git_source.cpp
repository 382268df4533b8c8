// The index reads a git tree at a revision, not the working tree.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "agent/index.h"
#include "support/git_repo.h"
#include "support/temp_dir.h"

using namespace ponder::agent;
using ponder::test::git;
using ponder::test::TempDir;


TEST_CASE("a git tree at a revision is indexed as committed", "[index][git]") {
  TempDir dir;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir,
                             {{"app.py", "def version_one():\n    pass\n"},
                              {"lib/util.go", "package lib\n\nfunc Helper() {}\n"},
                              {".gitignore", "ignored.py\n"}},
                             "one");
  dir.write("app.py", "def version_two():\n    pass\n");
  git(dir, "commit -q -am two");
  // Uncommitted work and untracked files are not part of any revision.
  dir.write("app.py", "def working_tree():\n    pass\n");
  dir.write("untracked.py", "def untracked():\n    pass\n");

  std::string error;
  std::shared_ptr<Source> head = open_git_tree(dir.str(), "HEAD", &error);
  REQUIRE(head);
  IndexStats stats;
  auto index = Index::build(head, {}, &stats);
  CHECK(index->files().size() == 2);
  CHECK(index->definitions("version_two").size() == 1);
  CHECK(index->definitions("working_tree").empty());
  CHECK(index->definitions("untracked").empty());
  CHECK(index->definitions("Helper").size() == 1);
  auto text = index->symbol_text("app.py", *index->definitions("version_two")[0].tag, &error);
  REQUIRE(text);
  CHECK(text->rfind("def version_two", 0) == 0);

  auto previous = Index::build(open_git_tree(dir.str() + "/lib", "HEAD~1", &error), {});
  REQUIRE(previous);
  CHECK(previous->definitions("version_one").size() == 1);
  CHECK(previous->definitions("version_two").empty());
}

TEST_CASE("git sources report bad repositories and revisions", "[index][git]") {
  TempDir dir;
  std::string error;
  CHECK_FALSE(open_git_tree(dir.str(), "HEAD", &error));
  CHECK(error.find("not a git repository") != std::string::npos);
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {{"a.py", "x = 1\n"}}, "one");
  CHECK_FALSE(open_git_tree(dir.str(), "no-such-branch", &error));
  CHECK(error.find("unknown revision 'no-such-branch'") != std::string::npos);
}

TEST_CASE("the tag cache works for git trees too", "[index][git][cache]") {
  TempDir dir, cache;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {{"a.py", "def a():\n    pass\n"}}, "one");
  IndexOptions options;
  options.cache_dir = cache.str();
  std::string error;
  IndexStats cold, warm;
  Index::build(open_git_tree(dir.str(), "HEAD", &error), options, &cold);
  Index::build(open_git_tree(dir.str(), "HEAD", &error), options, &warm);
  CHECK(cold.parsed == 1);
  CHECK(warm.parsed == 0);
  CHECK(warm.from_cache == 1);
}
