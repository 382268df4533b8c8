// Commit review: the changes read with libgit2 from repositories the tests make with the git CLI
// (hunks checked against `git diff`'s own), the context read at the reviewed revision, the plan
// within a token budget (golden prompts), merged findings, and the plan run through the Engine.
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "agent/index.h"
#include "agent/review.h"
#include "support/git_repo.h"
#include "support/golden.h"
#include "support/task_engine.h"
#include "support/temp_dir.h"

using namespace ponder;
using namespace ponder::agent;
using ponder::test::git;
using ponder::test::git_output;
using ponder::test::TempDir;

namespace {

ChangeSet changes_of(const ReviewSpec& spec) {
  ChangeSet c;
  std::string error;
  if (!read_changes(spec, &c, &error)) FAIL(error);
  return c;
}

ReviewSpec spec_for(const TempDir& dir, const std::string& revision = "") {
  ReviewSpec s;
  s.repo = dir.str();
  s.revision = revision;
  return s;
}

const ChangedFile& file_named(const ChangeSet& c, const std::string& path) {
  for (const ChangedFile& f : c.files)
    if (f.path == path) return f;
  FAIL("no change to " << path);
  throw;
}

// "@@ -a,b +c,d @@" of each hunk, ours and as `git diff ARGS` writes them.
std::vector<std::string> our_ranges(const ChangedFile& f) {
  std::vector<std::string> out;
  for (const DiffHunk& h : f.hunks) out.push_back(h.header.substr(0, h.header.find("@@", 2) + 2));
  return out;
}
std::vector<std::string> git_ranges(const TempDir& dir, const std::string& args) {
  std::vector<std::string> out;
  std::istringstream in(git_output(dir, "diff --no-color -U3 " + args));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("@@ ", 0) == 0) out.push_back(line.substr(0, line.find("@@", 2) + 2));
  return out;
}

std::unique_ptr<Index> index_of(const ChangeSet& c) {
  IndexOptions io;
  io.threads = 1;
  return Index::build(c.new_side, io);
}

// The plan of `c` with a budget large enough for everything; its one prompt.
std::string whole_prompt(const ChangeSet& c, const Index* index) {
  ReviewPlanOptions po;
  po.budget_tokens = 100000;
  ReviewPlan plan;
  std::string error;
  REQUIRE(plan_review(c, index, po, &plan, &error));
  REQUIRE(plan.parts.size() == 1);
  return plan.parts[0].prompt;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void copy_workspace(const TempDir& dir) {
  std::filesystem::copy(std::filesystem::path(PONDER_FIXTURES) / "workspace", dir.path(),
                        std::filesystem::copy_options::recursive);
}

// Replaces the first `from` in `path` (relative to dir) by `to`.
void edit(const TempDir& dir, const std::string& path, const std::string& from, const std::string& to) {
  std::string text = ponder::test::read_file(dir.path() / path);
  const std::size_t at = text.find(from);
  INFO(path << ": " << from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  dir.write(path, text);
}

// The fixture commit of the golden tests: the fixture workspace, then a change in three languages.
void fixture_commit(const TempDir& dir) {
  copy_workspace(dir);
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {}, "The fixture workspace");
  edit(dir, "src/buffer.cpp", "    std::size_t grown = b->capacity * 2;\n    char* data",
       "    std::size_t grown = b->capacity ? b->capacity * 2 : 16;\n    while (grown < b->size + n) grown *= 2;\n"
       "    char* data");
  edit(dir, "inventory/store.py", "        left = self.items.get(name, 0) - count\n",
       "        if name not in self.items:\n            raise KeyError(name)\n        left = self.items[name] - "
       "count\n");
  edit(dir, "web/api.ts", "  const body = await response.json();\n",
       "  if (!response.ok) {\n    throw new Error(`items: HTTP ${response.status}`);\n  }\n  const body = await "
       "response.json();\n");
  git(dir,
      "commit -q -am 'Grow buffers enough; refuse unknown items; check HTTP status' -m 'buffer_append grows to fit "
      "any n, Store.remove raises KeyError for an item it does not hold, and fetchItems fails on an HTTP error.'");
}

}  // namespace

TEST_CASE("review changes: a commit touching several languages, with context at that revision", "[agent][review]") {
  TempDir dir;
  copy_workspace(dir);
  dir.write(
      "go/server.go",
      "package server\n\nfunc Handle(n int) int {\n\treturn n + 1\n}\n\nfunc Serve() int {\n\treturn Handle(1)\n}\n");
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {}, "one");
  edit(dir, "src/buffer.cpp", "    b->data = data;\n", "    if (!data) return false;\n    b->data = data;\n");
  edit(dir, "inventory/store.py", "        del self.items[name]\n",
       "        self.items.pop(name, None)\n        price_of(name)\n");
  edit(dir, "web/api.ts", "  return body.items as Item[];\n", "  return (body.items ?? []) as Item[];\n");
  edit(dir, "go/server.go", "\treturn n + 1\n", "\treturn n + 2\n");
  git(dir, "commit -q -am 'Several languages' -m 'Body of the message.'");
  // Uncommitted work must not leak into the review of HEAD.
  edit(dir, "src/buffer.cpp", "bool buffer_append(", "bool buffer_append_in_the_work_tree(");

  const ChangeSet c = changes_of(spec_for(dir));
  CHECK(c.message == "Several languages\n\nBody of the message.");
  CHECK(c.description.rfind("commit ", 0) == 0);
  CHECK(c.base == git_output(dir, "rev-parse HEAD~1"));
  CHECK(c.head == git_output(dir, "rev-parse HEAD"));
  REQUIRE(c.files.size() == 4);
  const char* paths[] = {"go/server.go", "inventory/store.py", "src/buffer.cpp", "web/api.ts"};
  for (std::size_t i = 0; i < 4; ++i) {
    INFO(paths[i]);
    CHECK(c.files[i].path == paths[i]);
    CHECK(c.files[i].kind == ChangeKind::modified);
    CHECK(our_ranges(c.files[i]) == git_ranges(dir, "HEAD~1 HEAD -- " + std::string(paths[i])));
  }
  const ChangedFile& cpp = file_named(c, "src/buffer.cpp");
  REQUIRE(cpp.hunks.size() == 1);
  CHECK(cpp.hunks[0].added == std::vector<std::uint32_t>{15});
  CHECK(has(cpp.hunks[0].lines, "+    if (!data) return false;\n"));
  CHECK(has(unified_diff(cpp), "--- a/src/buffer.cpp\n+++ b/src/buffer.cpp\n@@ -12,6 +12,7 @@"));
  CHECK(file_named(c, "inventory/store.py").hunks[0].added == std::vector<std::uint32_t>{21, 22});

  // Context, at HEAD: the enclosing definitions, what the added lines use, who uses what changed.
  auto index = index_of(c);
  const std::string prompt = whole_prompt(c, index.get());
  CHECK(has(prompt, "src/buffer.cpp\n```cpp\n11  bool buffer_append(Buffer* b, const char* bytes, std::size_t n) {\n"));
  CHECK(!has(prompt, "buffer_append_in_the_work_tree"));
  CHECK(has(prompt, "- `buffer_append` at src/main.cpp:7, in `int main() {`"));
  CHECK(has(prompt, "- `remove` at inventory/report.py:15, in `def main():`"));
  CHECK(has(prompt, "    def remove(self, name, count=1):\n"));                   // the enclosing method
  CHECK(has(prompt, "inventory/store.py\n```python\n6  def price_of(name):\n"));  // used by an added line
  CHECK(has(prompt, "- `Handle` at go/server.go:8, in `func Serve() int {`"));
  CHECK(has(prompt, "Commit message:\nSeveral languages\n\nBody of the message.\n"));
  CHECK(!has(prompt, "{{"));
}

TEST_CASE("review changes: a rename with edits, a deleted file, a binary file, a mode change", "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  std::string body;
  for (int i = 1; i <= 30; ++i) body += "def f" + std::to_string(i) + "():\n    return " + std::to_string(i) + "\n\n";
  ponder::test::commit_files(dir,
                             {{"old_name.py", body},
                              {"gone.c", "int gone(void) { return 1; }\n"},
                              {"logo.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16)},
                              {"run.sh", "echo hi\n"}},
                             "one");
  git(dir, "mv old_name.py new_name.py");
  edit(dir, "new_name.py", "    return 7\n", "    return 70\n");
  git(dir, "rm -q gone.c");
  dir.write("logo.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\x01\x02", 18));
  std::filesystem::permissions(dir.path() / "run.sh", std::filesystem::perms::owner_exec,
                               std::filesystem::perm_options::add);
  git(dir, "commit -q -am two");

  const ChangeSet c = changes_of(spec_for(dir, "HEAD"));
  REQUIRE(c.files.size() == 4);
  const ChangedFile& renamed = file_named(c, "new_name.py");
  CHECK(renamed.kind == ChangeKind::renamed);
  CHECK(renamed.old_path == "old_name.py");
  CHECK(renamed.similarity > 90);
  REQUIRE(renamed.hunks.size() == 1);
  CHECK(renamed.hunks[0].added == std::vector<std::uint32_t>{20});
  CHECK(has(unified_diff(renamed), "--- a/old_name.py\n+++ b/new_name.py\n@@ -17,7 +17,7 @@"));
  const ChangedFile& deleted = file_named(c, "gone.c");
  CHECK(deleted.kind == ChangeKind::deleted);
  REQUIRE(deleted.hunks.size() == 1);
  CHECK(deleted.hunks[0].lines == "-int gone(void) { return 1; }\n");
  CHECK(has(unified_diff(deleted), "--- a/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@"));
  const ChangedFile& binary = file_named(c, "logo.png");
  CHECK(binary.binary);
  CHECK(binary.hunks.empty());
  CHECK(binary.note == "binary file");
  const ChangedFile& mode = file_named(c, "run.sh");
  CHECK(mode.hunks.empty());
  CHECK(mode.note == "mode 100644 -> 100755");

  // The plan shows the rename's and the deletion's diffs, and lists the rest with the reason.
  ReviewPlan plan;
  std::string error;
  REQUIRE(plan_review(c, nullptr, {}, &plan, &error));
  REQUIRE(plan.parts.size() == 1);
  CHECK(plan.parts[0].files == std::vector<std::string>{"gone.c", "new_name.py"});
  REQUIRE(plan.not_reviewed.size() == 2);
  CHECK(plan.not_reviewed[0].path == "logo.png");
  CHECK(plan.not_reviewed[0].reason == "binary file");
  CHECK(plan.not_reviewed[1].path == "run.sh");
  CHECK(plan.not_reviewed[1].reason == "mode 100644 -> 100755");
}

TEST_CASE("review context: uses of a definition the change removes, or renames, are listed", "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir,
                             {{"lib.py", "def keep():\n    return 1\n\n\ndef old_name():\n    return 2\n"},
                              {"util.go", "package util\n\nfunc Gone() int {\n\treturn 1\n}\n"},
                              {"app.py", "from lib import old_name\n\n\ndef run():\n    return old_name()\n"},
                              {"main.go", "package util\n\nfunc Main() int {\n\treturn Gone()\n}\n"}},
                             "one");
  edit(dir, "lib.py", "def old_name():", "def new_name():");  // renamed, but app.py still calls it
  git(dir, "rm -q util.go");                                   // deleted, but main.go still calls it
  git(dir, "commit -q -am two");
  const ChangeSet c = changes_of(spec_for(dir));
  REQUIRE(c.old_side);
  CHECK(file_named(c, "lib.py").hunks[0].removed == std::vector<std::uint32_t>{5});
  auto index = index_of(c);
  const std::string prompt = whole_prompt(c, index.get());
  CHECK(has(prompt, "- `old_name`, which this change removes, at app.py:5, in `def run():`"));
  CHECK(has(prompt, "- `Gone`, which this change removes, at main.go:4, in `func Main() int {`"));
  CHECK(!has(prompt, "`keep`, which this change removes"));
}

TEST_CASE("review changes: the root commit is compared with the empty tree", "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {{"a.py", "def a():\n    return 1\n"}, {"b/c.rs", "fn c() -> i32 { 2 }\n"}}, "root");
  const ChangeSet c = changes_of(spec_for(dir));
  CHECK(c.base.empty());
  CHECK(c.description.rfind("root commit ", 0) == 0);
  CHECK(has(c.description, "against the empty tree"));
  REQUIRE(c.files.size() == 2);
  for (const ChangedFile& f : c.files) {
    CHECK(f.kind == ChangeKind::added);
    CHECK(f.old_path.empty());
    REQUIRE(f.hunks.size() == 1);
    CHECK(f.hunks[0].old_start == 0);
    CHECK(f.hunks[0].new_start == 1);
  }
  CHECK(file_named(c, "a.py").hunks[0].added == std::vector<std::uint32_t>{1, 2});
  CHECK(has(unified_diff(file_named(c, "a.py")), "--- /dev/null\n+++ b/a.py\n@@ -0,0 +1,2 @@\n+def a():\n"));
}

TEST_CASE("review changes: a merge commit against its first parent, or the merge base of its parents",
          "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {{"main.py", "x = 1\n"}, {"side.py", "y = 1\n"}}, "base");
  git(dir, "checkout -q -b side");
  dir.write("side.py", "y = 2\n");
  git(dir, "commit -q -am side");
  git(dir, "checkout -q main");
  dir.write("main.py", "x = 2\n");
  git(dir, "commit -q -am main");
  git(dir, "merge -q --no-ff side -m 'Merge side'");

  const ChangeSet first = changes_of(spec_for(dir, "HEAD"));
  CHECK(has(first.description, "merge commit"));
  CHECK(first.base == git_output(dir, "rev-parse HEAD^1"));
  REQUIRE(first.files.size() == 1);  // what the side branch brought in
  CHECK(first.files[0].path == "side.py");
  REQUIRE(!first.notes.empty());
  CHECK(has(first.notes[0], "first parent"));

  ReviewSpec s = spec_for(dir, "HEAD");
  s.merge_base = true;
  const ChangeSet both = changes_of(s);
  CHECK(both.base == git_output(dir, "merge-base HEAD^1 HEAD^2"));
  REQUIRE(both.files.size() == 2);  // both branches' changes since they forked
  CHECK(both.files[0].path == "main.py");
  CHECK(both.files[1].path == "side.py");
}

TEST_CASE("review changes: ranges A..B and A...B, with the messages of their commits", "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {{"a.py", "a = 0\n"}}, "zero");
  git(dir, "branch fork");
  dir.write("a.py", "a = 1\n");
  git(dir, "commit -q -am one");
  ponder::test::commit_files(dir, {{"b.py", "b = 2\n"}}, "two");
  git(dir, "checkout -q fork");
  ponder::test::commit_files(dir, {{"c.py", "c = 3\n"}}, "three");

  const ChangeSet range = changes_of(spec_for(dir, "main~2..main"));
  CHECK(has(range.description, "(2 commits)"));
  CHECK(range.base == git_output(dir, "rev-parse main~2"));
  REQUIRE(range.files.size() == 2);
  CHECK(range.files[0].path == "a.py");
  CHECK(range.files[1].path == "b.py");
  CHECK(has(range.message, ":\none\n\ncommit "));
  CHECK(has(range.message, ":\ntwo"));
  CHECK(range.message.find("one") < range.message.find("two"));  // oldest first

  // fork..main: main's tree against fork's (c.py deleted on this side); fork...main: what main did.
  const ChangeSet two_dots = changes_of(spec_for(dir, "fork..main"));
  CHECK(two_dots.files.size() == 3);
  const ChangeSet three_dots = changes_of(spec_for(dir, "fork...main"));
  CHECK(three_dots.base == git_output(dir, "merge-base fork main"));
  CHECK(three_dots.files.size() == 2);
  ReviewSpec mb = spec_for(dir, "fork..main");
  mb.merge_base = true;
  CHECK(changes_of(mb).files.size() == 2);
  // One commit in a range: its whole message.
  CHECK(changes_of(spec_for(dir, "main~1..main")).message == "two");
}

TEST_CASE("review changes: staged and unstaged changes, untracked files noted, context from the index",
          "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir,
                             {{"lib.py", "def helper():\n    return 1\n\n\ndef other():\n    return 2\n"},
                              {"app.py", "from lib import helper\n\n\ndef run():\n    return helper()\n"}},
                             "one");
  edit(dir, "lib.py", "    return 1\n", "    return 10\n");
  git(dir, "add lib.py");
  edit(dir, "lib.py", "    return 2\n", "    return 20\n");                   // unstaged, on top
  edit(dir, "app.py", "    return helper()\n", "    return helper() + 1\n");  // unstaged
  dir.write("notes.py", "x = 1\n");                                           // untracked

  ReviewSpec staged = spec_for(dir);
  staged.mode = ReviewSpec::Mode::staged;
  const ChangeSet s = changes_of(staged);
  CHECK(has(s.description, "the index against HEAD"));
  REQUIRE(s.files.size() == 1);
  CHECK(s.files[0].path == "lib.py");
  REQUIRE(s.files[0].hunks.size() == 1);
  CHECK(has(s.files[0].hunks[0].lines, "+    return 10\n"));
  CHECK(!has(s.files[0].hunks[0].lines, "return 20"));
  CHECK(s.message.empty());
  // The context of the staged change is the index's version of the file, and its users.
  auto index = index_of(s);
  const std::string prompt = whole_prompt(s, index.get());
  CHECK(has(prompt, "- `helper` at app.py:5, in `def run():`"));
  std::string staged_text;
  REQUIRE(s.new_side->read("lib.py", &staged_text, nullptr));
  CHECK(has(staged_text, "return 10"));
  CHECK(!has(staged_text, "return 20"));

  ReviewSpec worktree = spec_for(dir);
  worktree.mode = ReviewSpec::Mode::worktree;
  const ChangeSet w = changes_of(worktree);
  CHECK(has(w.description, "the work tree against HEAD"));
  REQUIRE(w.files.size() == 2);
  CHECK(w.files[0].path == "app.py");
  CHECK(w.files[1].path == "lib.py");
  CHECK(w.files[1].hunks.size() == 1);
  CHECK(has(w.files[1].hunks[0].lines, "+    return 10\n"));
  CHECK(has(w.files[1].hunks[0].lines, "+    return 20\n"));
  REQUIRE(w.notes.size() == 1);
  CHECK(w.notes[0] == "1 untracked file not reviewed (`git add -N FILE` includes one): notes.py");
  CHECK(our_ranges(w.files[1]) == git_ranges(dir, "HEAD -- lib.py"));

  // Against another revision, and before the first commit.
  ReviewSpec range = staged;
  range.revision = "HEAD..HEAD";
  std::string error;
  ChangeSet out;
  CHECK(!read_changes(range, &out, &error));
  CHECK(has(error, "one revision, not a range"));
  TempDir fresh;
  git(fresh, "init -q -b main");
  fresh.write("first.py", "x = 1\n");
  git(fresh, "add first.py");
  ReviewSpec unborn = spec_for(fresh);
  unborn.mode = ReviewSpec::Mode::staged;
  const ChangeSet u = changes_of(unborn);
  CHECK(has(u.description, "the empty tree"));
  REQUIRE(u.files.size() == 1);
  CHECK(u.files[0].kind == ChangeKind::added);
}

TEST_CASE("review changes: a path filter, a path outside the repository is an error", "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir,
                             {{"src/a.cpp", "int a() { return 1; }\n"},
                              {"src/deep/b.cpp", "int b() { return 1; }\n"},
                              {"docs/c.py", "c = 1\n"}},
                             "one");
  dir.write("src/a.cpp", "int a() { return 2; }\n");
  dir.write("src/deep/b.cpp", "int b() { return 2; }\n");
  dir.write("docs/c.py", "c = 2\n");
  git(dir, "commit -q -am two");

  ReviewSpec s = spec_for(dir);
  s.paths = {"src/deep", "docs/c.py"};
  ChangeSet c = changes_of(s);
  REQUIRE(c.files.size() == 2);
  CHECK(c.files[0].path == "docs/c.py");
  CHECK(c.files[1].path == "src/deep/b.cpp");
  // Paths are relative to the folder the review runs in, as git takes them.
  s.repo = (dir.path() / "src").string();
  s.paths = {"a.cpp"};
  c = changes_of(s);
  REQUIRE(c.files.size() == 1);
  CHECK(c.files[0].path == "src/a.cpp");
  s.paths = {"../../elsewhere"};
  std::string error;
  CHECK(!read_changes(s, &c, &error));
  CHECK(has(error, "is outside the repository"));
}

TEST_CASE("review changes: clear errors for a non-repository, an unknown revision, a bare repository",
          "[agent][review]") {
  TempDir dir;
  ChangeSet c;
  std::string error;
  CHECK(!read_changes(spec_for(dir), &c, &error));
  CHECK(error == dir.str() + " is not in a git repository");
  git(dir, "init -q -b main");
  CHECK(!read_changes(spec_for(dir), &c, &error));
  CHECK(error == "the repository has no commit yet (--staged reviews what is staged for the first one)");
  ponder::test::commit_files(dir, {{"a.py", "x = 1\n"}}, "one");
  CHECK(!read_changes(spec_for(dir, "no-such-branch"), &c, &error));
  CHECK(has(error, "unknown revision 'no-such-branch'"));
  CHECK(!read_changes(spec_for(dir, "HEAD..no-such-branch"), &c, &error));
  CHECK(has(error, "unknown revision 'HEAD..no-such-branch'"));
  CHECK(!read_changes(spec_for(dir, "HEAD^{tree}"), &c, &error));
  CHECK(has(error, "is not a commit"));
  TempDir bare;
  git(bare, "clone -q --bare '" + dir.str() + "' .");
  ReviewSpec s = spec_for(bare);
  CHECK(read_changes(s, &c, &error));  // a commit of a bare repository is fine
  CHECK(c.files.size() == 1);
  s.mode = ReviewSpec::Mode::worktree;
  CHECK(!read_changes(s, &c, &error));
  CHECK(has(error, "is bare"));
}

TEST_CASE("review changes: a submodule is noted, not diffed", "[agent][review]") {
  TempDir sub, dir;
  git(sub, "init -q -b main");
  ponder::test::commit_files(sub, {{"s.py", "s = 1\n"}}, "s1");
  git(dir, "init -q -b main");
  ponder::test::commit_files(dir, {{"a.py", "a = 1\n"}}, "one");
  git(dir, "submodule add -q '" + sub.str() + "' mod");
  git(dir, "commit -q -m 'add mod'");
  const ChangeSet added = changes_of(spec_for(dir));
  const ChangedFile& m = file_named(added, "mod");
  CHECK(m.submodule);
  CHECK(m.hunks.empty());
  CHECK(has(m.note, "submodule (none) -> "));
  CHECK(file_named(added, ".gitmodules").hunks.size() == 1);
  sub.write("s.py", "s = 2\n");
  git(sub, "commit -q -am s2");
  git(dir, "-C mod pull -q");
  git(dir, "commit -q -am 'bump mod'");
  const ChangeSet bumped = changes_of(spec_for(dir));
  REQUIRE(bumped.files.size() == 1);
  CHECK(bumped.files[0].note == "submodule " + git_output(sub, "rev-parse HEAD~1").substr(0, 8) + " -> " +
                                    git_output(sub, "rev-parse HEAD").substr(0, 8));
  ReviewPlan plan;
  std::string error;
  REQUIRE(plan_review(bumped, nullptr, {}, &plan, &error));
  CHECK(plan.parts.empty());
  REQUIRE(plan.not_reviewed.size() == 1);
  CHECK(plan.not_reviewed[0].path == "mod");
}

TEST_CASE("review plan: golden prompts for a fixture commit, whole and in parts", "[agent][review][prompt]") {
  TempDir dir;
  fixture_commit(dir);
  const ChangeSet c = changes_of(spec_for(dir));
  auto index = index_of(c);
  const TokenizerCounter counter(ponder::test::r1_tokenizer());
  for (std::size_t budget : {4000, 650, 500}) {
    INFO("budget " << budget);
    ReviewPlanOptions po;
    po.counter = &counter;
    po.budget_tokens = budget;
    ReviewPlan plan;
    std::string error;
    REQUIRE(plan_review(c, index.get(), po, &plan, &error));
    std::ostringstream s;
    s << "parts: " << plan.parts.size() << "\n";
    std::set<std::string> covered;
    for (const ReviewPart& p : plan.parts) {
      CHECK(p.tokens <= budget);
      CHECK(p.tokens == counter.count(p.prompt));  // exact
      s << "part " << p.request.part << " of " << p.request.parts << ": " << p.tokens << " tokens, diff "
        << p.diff_tokens << ", context " << p.context_items << " in, " << p.context_left_out << " left out:";
      for (const std::string& f : p.files) s << " " << f, covered.insert(f);
      s << "\n";
    }
    CHECK(covered.size() == 3);  // every changed file is in some part
    for (const NotReviewed& n : plan.not_reviewed) s << "not reviewed: " << n.path << ": " << n.reason << "\n";
    for (const ReviewPart& p : plan.parts) s << "==== part " << p.request.part << "\n" << p.prompt;
    if (budget == 4000) CHECK(plan.parts.size() == 1);
    if (budget == 650) CHECK((plan.parts.size() == 1 && plan.parts[0].context_left_out > 0));
    if (budget == 500) CHECK(plan.parts.size() > 1);
    ponder::test::check_golden("review-fixture-" + std::to_string(budget), s.str());
  }
}

TEST_CASE("review plan: a large change in parts, with nothing dropped silently", "[agent][review]") {
  TempDir dir;
  git(dir, "init -q -b main");
  std::string big;
  for (int i = 0; i < 400; ++i) big += "value_" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  dir.write("big.py", big);
  std::string many;  // a file with many small hunks far apart
  for (int i = 0; i < 200; ++i) many += "def g" + std::to_string(i) + "():\n    return " + std::to_string(i) + "\n\n";
  ponder::test::commit_files(dir, {{"many.py", many}, {"small.py", "s = 1\n"}}, "one");
  std::string bigger;  // one hunk of 400 changed lines
  for (int i = 0; i < 400; ++i) bigger += "value_" + std::to_string(i) + " = " + std::to_string(i * 2) + "\n";
  dir.write("big.py", bigger);
  for (int i = 0; i < 200; i += 10)
    edit(dir, "many.py", "    return " + std::to_string(i) + "\n", "    return -" + std::to_string(i) + "\n");
  ponder::test::commit_files(dir, {{"small.py", "s = 2\n"}, {".env", "TOKEN=abc\n"}}, "two");
  const ChangeSet c = changes_of(spec_for(dir));
  REQUIRE(file_named(c, "many.py").hunks.size() == 20);
  ReviewPlanOptions po;
  po.budget_tokens = 700;  // estimated: ~2,500 bytes a prompt
  ReviewPlan plan;
  std::string error;
  REQUIRE(plan_review(c, nullptr, po, &plan, &error));
  REQUIRE(plan.parts.size() >= 2);
  // many.py is cut between its hunks: every hunk is in exactly one part.
  std::size_t hunks_seen = 0;
  for (const ReviewPart& p : plan.parts) {
    CHECK(p.tokens <= po.budget_tokens);
    CHECK(p.request.parts == plan.parts.size());
    CHECK(has(p.prompt, "this is part " + std::to_string(p.request.part) + " of " + std::to_string(plan.parts.size())));
    for (std::size_t at = 0; (at = p.request.diff.find("\n@@ -", at)) != std::string::npos; ++at) ++hunks_seen;
  }
  CHECK(hunks_seen == 20 + 1);  // many.py's and small.py's
  // big.py's one hunk is larger than a prompt; .env holds secrets: both listed.
  REQUIRE(plan.not_reviewed.size() == 2);
  CHECK(plan.not_reviewed[0].path == ".env");
  CHECK(plan.not_reviewed[0].reason == "holds secrets by its name: not sent to the model");
  CHECK(plan.not_reviewed[1].path == "big.py");
  CHECK(std::regex_search(
      plan.not_reviewed[1].reason,
      std::regex(R"(^hunk @@ -1,400 \+1,400 @@ is \d+ tokens, more than the \d+ a prompt has for the diff$)")));
  for (const ReviewPart& p : plan.parts) CHECK(!has(p.prompt, "TOKEN=abc"));
  // A budget too small for the instructions: a clear error.
  po.budget_tokens = 100;
  CHECK(!plan_review(c, nullptr, po, &plan, &error));
  CHECK(has(error, "more than the budget of 100"));
}

TEST_CASE("merge_findings: the same finding from two parts is kept once, at the higher severity", "[agent][review]") {
  auto finding = [](Severity s, const char* path, std::uint32_t a, std::uint32_t b, const char* title) {
    Finding f;
    f.severity = s;
    f.path = path;
    f.first_line = a;
    f.last_line = b;
    f.title = title;
    return f;
  };
  std::size_t duplicates = 0;
  const auto merged = merge_findings(
      {
          finding(Severity::warning, "a.cpp", 10, 12, "realloc result is not checked"),
          finding(Severity::nit, "b.py", 3, 3, "name is unclear"),
          finding(Severity::blocker, "a.cpp", 12, 13, "The realloc result is never checked"),  // same, higher
          finding(Severity::warning, "a.cpp", 40, 41, "realloc result is not checked"),        // elsewhere
          finding(Severity::suggestion, "a.cpp", 11, 11, "use a vector instead"),              // another point
      },
      &duplicates);
  CHECK(duplicates == 1);
  REQUIRE(merged.size() == 4);
  CHECK(merged[0].severity == Severity::blocker);
  CHECK(merged[0].title == "realloc result is not checked");  // the first one's words
  CHECK(merged[0].first_line == 10);
  CHECK(merged[1].severity == Severity::warning);
  CHECK(merged[1].first_line == 40);
  CHECK(merged[2].severity == Severity::suggestion);
  CHECK(merged[3].path == "b.py");
}

TEST_CASE("review end to end: a plan in parts through the Engine, forced R1 reviews merged", "[agent][review][task]") {
  TempDir dir;
  fixture_commit(dir);
  const ChangeSet c = changes_of(spec_for(dir));
  auto index = index_of(c);
  auto engine = ponder::test::tiny_engine(dir.path(), 4096);
  const TokenizerCounter counter(engine->tokenizer());
  ReviewPlanOptions po;
  po.counter = &counter;
  po.budget_tokens = 1200;  // reduced vocabulary: about a byte a token
  ReviewPlan plan;
  std::string error;
  REQUIRE(plan_review(c, index.get(), po, &plan, &error));
  REQUIRE(plan.parts.size() >= 2);
  const std::string reasoning = "The growth loop can overflow when n is huge.\n";
  const std::string output = reasoning +
                             "</think>\n\n[warning] src/buffer.cpp:13-14 the growth loop can overflow\n"
                             "grown *= 2 wraps around for a huge n.\n\n"
                             "[nit] web/api.ts:9-9 message\nSay which page failed.\n";
  TaskOptions opt = ponder::test::forcing(*engine, output);
  std::vector<std::size_t> events(plan.parts.size());
  ReviewRun run;
  REQUIRE(run_review_plan(
      *engine, plan, opt, [&](std::size_t part, const GenerateEvent&) { ++events.at(part); }, &run, &error));
  REQUIRE(run.parts.size() == plan.parts.size());
  for (std::size_t i = 0; i < plan.parts.size(); ++i) {
    CHECK(events[i] > 10);  // the observer saw each part's tokens
    CHECK(run.parts[i].result.findings.size() == 2);
    CHECK(run.parts[i].result.reason == StopReason::end_of_generation);
  }
  // Every part answered the same: two findings, merged from all the parts.
  REQUIRE(run.findings.size() == 2);
  CHECK(run.duplicates == 2 * (plan.parts.size() - 1));
  CHECK(run.findings[0].severity == Severity::warning);
  CHECK(run.findings[0].path == "src/buffer.cpp");
  CHECK(run.findings[0].first_line == 13);
  CHECK(run.findings[0].last_line == 14);
  CHECK(run.findings[0].reasoning == reasoning.substr(0, reasoning.size() - 1));
  CHECK(run.findings[1].severity == Severity::nit);

  // Free sampling: noise, reported as no findings, never an error.
  TaskOptions noise;
  noise.max_tokens = 24;
  SamplingParams sp;
  sp.seed = 11;
  noise.sampling = sp;
  REQUIRE(run_review_plan(*engine, plan, noise, {}, &run, &error));
  CHECK(run.parts.size() == plan.parts.size());
  for (const ReviewRun::Part& p : run.parts) CHECK(p.result.stats.generated_tokens >= 1);
}
