// The prompt builder on a fixture workspace in three languages: golden prompts at several
// budgets, counted exactly by the R1-Qwen tokenizer. To accept new output after a deliberate
// change: PONDER_UPDATE_GOLDEN=1 build/test_index "[prompt]" (then review the diff in git).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/git_changes.h"
#include "agent/prompt_builder.h"
#include "engine/model.h"
#include "support/git_repo.h"
#include "support/golden.h"
#include "support/temp_dir.h"

using namespace ponder;
using namespace ponder::agent;
using ponder::test::check_golden;
using ponder::test::r1_tokenizer;

namespace {

const std::filesystem::path kWorkspace = std::filesystem::path(PONDER_FIXTURES) / "workspace";

std::unique_ptr<Index> workspace_index() {
  std::string error;
  auto source = open_directory(kWorkspace.string(), &error);
  INFO(error);
  REQUIRE(source);
  IndexOptions opt;
  opt.threads = 1;
  return Index::build(std::shared_ptr<Source>(std::move(source)), opt);
}

// The golden file's text: the token count, the sections, then the prompt.
std::string describe(const BuiltPrompt& p) {
  std::ostringstream s;
  s << "tokens: " << p.tokens << "\n";
  for (const SectionReport& r : p.sections)
    s << "section " << r.name << ": " << r.items << " in, " << r.left_out << " left out, " << r.tokens << " tokens\n";
  s << "----\n" << p.text;
  return s.str();
}

struct Case {
  const char* name;
  TaskKind kind;
  const char* path;
  std::uint32_t first, last;
  const char* symbol;
  const char* diagnostic;
};

}  // namespace

TEST_CASE("prompt builder: golden prompts for three languages at three budgets", "[agent][prompt]") {
  auto index = workspace_index();
  REQUIRE(index->files().size() == 7);
  const TokenizerCounter counter(r1_tokenizer());
  const Case cases[] = {
      {"refactor-python", TaskKind::refactor, "inventory/report.py", 4, 9, "summarize", ""},
      {"fix-cpp", TaskKind::fix, "src/buffer.cpp", 11, 21, "buffer_append",
       "src/buffer.cpp:14:11: warning: the result of realloc is not checked for NULL before use"},
      {"explain-typescript", TaskKind::explain, "web/api.ts", 7, 11, "fetchItems", ""},
      {"refactor-python-method-body", TaskKind::refactor, "inventory/store.py", 19, 23, "", ""},
  };
  for (const Case& c : cases)
    for (std::size_t budget : {320, 500, 4000}) {
      const std::string name = std::string(c.name) + "-" + std::to_string(budget);
      INFO(name);
      TaskRequest r;
      r.kind = c.kind;
      r.target = {c.path, ponder::test::read_file(kWorkspace / c.path), c.first, c.last, c.symbol};
      r.diagnostic = c.diagnostic;
      PromptOptions opt;
      opt.budget_tokens = budget;
      opt.counter = &counter;
      BuiltPrompt p;
      std::string error;
      REQUIRE(build_prompt(r, index.get(), opt, &p, &error));
      CHECK(p.tokens <= budget);
      CHECK(p.tokens == counter.count(p.text));  // the count is exact
      check_golden(name, describe(p));
    }
}

TEST_CASE("prompt builder: priorities, stable prefixes, and a target too big for the budget", "[agent][prompt]") {
  auto index = workspace_index();
  const TokenizerCounter counter(r1_tokenizer());
  TaskRequest r;
  r.target = {"inventory/report.py", ponder::test::read_file(kWorkspace / "inventory/report.py"), 4, 9, "summarize"};
  PromptOptions opt;
  opt.counter = &counter;
  BuiltPrompt small, large;
  std::string error;
  opt.budget_tokens = 300;
  REQUIRE(build_prompt(r, index.get(), opt, &small, &error));
  opt.budget_tokens = 4000;
  REQUIRE(build_prompt(r, index.get(), opt, &large, &error));
  auto section = [](const BuiltPrompt& p, const std::string& name) {
    for (const SectionReport& s : p.sections)
      if (s.name == name) return s;
    return SectionReport{};
  };
  // With room, every section is in; the definitions of what summarize uses are shown whole.
  CHECK(section(large, "definitions").items >= 2);
  CHECK(section(large, "definitions").left_out == 0);
  CHECK(large.text.find("def price_of(name):") != std::string::npos);
  CHECK(large.text.find("class Store:") != std::string::npos);
  CHECK(section(large, "uses").items == 1);  // main() calls it
  CHECK(large.text.find("- inventory/report.py:16 in `def main():`") != std::string::npos);
  // Short: the less important sections go first, and what went is reported.
  CHECK(section(small, "task").items == 1);
  std::size_t left_out = 0;
  for (const SectionReport& s : small.sections) left_out += s.left_out;
  CHECK(left_out > 0);
  // The task comes last: two tasks on the same target share everything before it.
  TaskRequest e = r;
  e.kind = TaskKind::explain;
  BuiltPrompt explained;
  REQUIRE(build_prompt(e, index.get(), opt, &explained, &error));
  const std::size_t task_at = large.text.find("Review the code below");
  REQUIRE(task_at != std::string::npos);
  CHECK(explained.text.substr(0, task_at) == large.text.substr(0, task_at));
  // A budget smaller than the task itself: a clear error.
  opt.budget_tokens = 50;
  CHECK(!build_prompt(r, index.get(), opt, &small, &error));
  CHECK(error.find("more than the budget of 50") != std::string::npos);
  // Without an index: the task alone.
  opt.budget_tokens = 4000;
  REQUIRE(build_prompt(r, nullptr, opt, &small, &error));
  CHECK(small.sections.size() == 1);
}

TEST_CASE("prompt builder: secrets stay out of the prompt", "[agent][prompt][privacy]") {
  ponder::test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "app");
  std::ofstream(dir.path() / "app" / "config.py") << "API_KEY = \"sk-proj-abcdefghijklmnopqrstuvwx\"\n\n\ndef key():\n    return API_KEY\n";
  std::ofstream(dir.path() / "app" / "client.py") << "from app.config import key\n\n\ndef connect():\n    return key()\n";
  std::ofstream(dir.path() / ".env") << "TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB\n";
  std::string error;
  auto source = open_directory(dir.str(), &error);
  REQUIRE(source);
  IndexOptions io;
  io.threads = 1;
  auto index = Index::build(std::shared_ptr<Source>(std::move(source)), io);
  const TokenizerCounter counter(r1_tokenizer());
  TaskRequest r;
  r.target = {"app/client.py", ponder::test::read_file(dir.path() / "app/client.py"), 4, 5, "connect"};
  PromptOptions opt;
  opt.counter = &counter;
  opt.budget_tokens = 4000;
  BuiltPrompt p;
  REQUIRE(build_prompt(r, index.get(), opt, &p, &error));
  CHECK(p.text.find("def key():") != std::string::npos);  // the definition it uses is there
  CHECK(p.text.find("sk-proj-") == std::string::npos);     // its secret is not
  CHECK(p.text.find("API_KEY = \"[secret masked]\"") != std::string::npos);
  CHECK(p.text.find("ghp_") == std::string::npos);
  r.target = {".env", ponder::test::read_file(dir.path() / ".env"), 1, 1, ""};
  CHECK(!build_prompt(r, index.get(), opt, &p, &error));
  CHECK(error == ".env holds secrets by its name: ponder does not send it to the model");
}

TEST_CASE("recent changes: the target file's hunks since HEAD go into the prompt", "[agent][prompt][git]") {
  ponder::test::TempDir dir;
  auto git = [&](const std::string& args) { ponder::test::git(dir, args); };
  std::vector<std::string> hunks;
  std::string error;
  CHECK(!changes_since_head(dir.path(), "a.py", "x\n", &hunks, &error));  // not a repository
  git("init -q -b main");
  std::string text;
  for (int i = 1; i <= 20; ++i) text += "line" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  dir.write("pkg/a.py", text);
  git("add -A");
  git("commit -q -m one");
  REQUIRE(changes_since_head(dir.path(), "pkg/a.py", text, &hunks, &error));
  CHECK(hunks.empty());
  // The editor's text differs from HEAD in two places far apart: two hunks.
  std::string edited = text;
  edited.replace(edited.find("line2 = 2"), 9, "line2 = 200");
  edited.replace(edited.find("line18 = 18"), 11, "line18 = 1800");
  REQUIRE(changes_since_head(dir.path(), "pkg/a.py", edited, &hunks, &error));
  REQUIRE(hunks.size() == 2);
  CHECK(hunks[0].rfind("@@ -1,5 +1,5 @@", 0) == 0);
  CHECK(hunks[0].find("\n-line2 = 2\n+line2 = 200\n") != std::string::npos);
  CHECK(hunks[1].find("+line18 = 1800") != std::string::npos);
  // From a sub-folder of the work tree as the workspace root.
  REQUIRE(changes_since_head(dir.path() / "pkg", "a.py", edited, &hunks, &error));
  CHECK(hunks.size() == 2);
  CHECK(!changes_since_head(dir.path(), "new.py", "x\n", &hunks, &error));
  CHECK(error == "new.py is not in HEAD");
  // In the prompt: a section after the outline.
  TaskRequest r;
  r.target = {"pkg/a.py", edited, 2, 2, ""};
  PromptOptions opt;
  opt.budget_tokens = 2000;
  REQUIRE(changes_since_head(dir.path(), "pkg/a.py", edited, &opt.recent_changes, &error));
  auto source = open_directory(dir.str(), &error);
  REQUIRE(source);
  IndexOptions io;
  io.threads = 1;
  auto index = Index::build(std::shared_ptr<Source>(std::move(source)), io);
  BuiltPrompt p;
  REQUIRE(build_prompt(r, index.get(), opt, &p, &error));
  CHECK(p.text.find("Changes to pkg/a.py since the last commit:\n\n```diff\n@@ -1,5 +1,5 @@") != std::string::npos);
  bool reported = false;
  for (const SectionReport& s : p.sections) reported = reported || (s.name == "changes" && s.items == 2);
  CHECK(reported);
}

TEST_CASE("prompt builder: with a working set, prompts about one workspace share their repo map", "[agent][prompt]") {
  auto index = workspace_index();
  const TokenizerCounter counter(r1_tokenizer());
  RepoMapCache cache;
  PromptOptions opt;
  opt.counter = &counter;
  opt.budget_tokens = 2000;
  opt.working_files = {"inventory/report.py", "src/buffer.cpp"};
  opt.map_cache = &cache;
  TaskRequest a, b;
  a.target = {"inventory/report.py", ponder::test::read_file(kWorkspace / "inventory/report.py"), 4, 9, "summarize"};
  b.kind = TaskKind::fix;
  b.target = {"src/buffer.cpp", ponder::test::read_file(kWorkspace / "src/buffer.cpp"), 11, 21, "buffer_append"};
  b.diagnostic = "realloc unchecked";
  BuiltPrompt pa, pb;
  std::string error;
  REQUIRE(build_prompt(a, index.get(), opt, &pa, &error));
  REQUIRE(build_prompt(b, index.get(), opt, &pb, &error));
  CHECK(cache.renders() == 1);  // the second prompt reused the map
  // Both start with the same map (two different targets, tasks and budgets left).
  const std::string head = "Map of the repository";
  REQUIRE(pa.text.rfind(head, 0) == 0);
  const std::size_t map_end = pa.text.find("\n\n\n");
  REQUIRE(map_end != std::string::npos);
  CHECK(pb.text.substr(0, map_end) == pa.text.substr(0, map_end));
  CHECK(pa.text.substr(0, map_end).find("inventory/report.py:\n") == std::string::npos);  // the working set is not in it
  CHECK(pa.text.substr(0, map_end).find("web/app.ts:\n") != std::string::npos);
  CHECK(pa.tokens <= 2000);
  CHECK(pb.tokens <= 2000);
  // A file outside the working set changes: the map is rendered again.
  FileTags web = index->files().at("web/app.ts");
  web.content_hash ^= 1;
  index->set_file(std::move(web));
  REQUIRE(build_prompt(a, index.get(), opt, &pa, &error));
  CHECK(cache.renders() == 2);
  // A file inside it changes: not.
  FileTags report = index->files().at("inventory/report.py");
  report.content_hash ^= 1;
  index->set_file(std::move(report));
  REQUIRE(build_prompt(a, index.get(), opt, &pa, &error));
  CHECK(cache.renders() == 2);
}
