// Tasks end to end through the real Engine on a generated random-weight model: the prompt, the
// R1 template, generation (forced to a realistic answer, or free), the reasoning split, the
// parser and the edit checks.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "agent/index.h"
#include "agent/prompt.h"
#include "agent/task.h"
#include "support/task_engine.h"
#include "support/temp_dir.h"

using namespace ponder;
using namespace ponder::agent;
using ponder::test::forcing;
using ponder::test::tiny_engine;

namespace {

const std::string kLoop =
    "#include <vector>\n"
    "\n"
    "int sum(const std::vector<int>& v, int n) {\n"
    "  int s = 0;\n"
    "  for (int i = 0; i <= n; ++i) {\n"
    "    s += v[i];\n"
    "  }\n"
    "  return s;\n"
    "}\n";

ReadText from_disk() {
  return [](const std::filesystem::path& p) -> std::optional<std::string> {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
}

}  // namespace

TEST_CASE("task prompts: the templates render with the target's numbered lines", "[agent][task]") {
  CHECK(prompt_templates().size() >= 3);
  TaskRequest r;
  r.target = {"src/sum.cpp", kLoop, 3, 9, "sum"};
  std::string prompt, error;
  REQUIRE(task_prompt(r, "", &prompt, &error));
  CHECK(prompt.find("from src/sum.cpp (lines 3-9, `sum`)") != std::string::npos);
  CHECK(prompt.find("```cpp\n3  int sum(const std::vector<int>& v, int n) {\n") != std::string::npos);
  CHECK(prompt.find("5    for (int i = 0; i <= n; ++i) {\n") != std::string::npos);
  CHECK(prompt.find("#include") == std::string::npos);  // line 1 is outside the target
  CHECK(prompt.find("<<<<<<< SEARCH") != std::string::npos);
  CHECK(prompt.find("{{") == std::string::npos);
  r.kind = TaskKind::explain;
  REQUIRE(task_prompt(r, "", &prompt, &error));
  CHECK(prompt.find("<<<<<<< SEARCH") == std::string::npos);
  r.kind = TaskKind::fix;
  CHECK(!task_prompt(r, "", &prompt, &error));
  CHECK(error == "a fix needs the diagnostic to fix");
  r.diagnostic = "warning: loop reads v[n], one past the end";
  REQUIRE(task_prompt(r, "", &prompt, &error));
  CHECK(prompt.find("warning: loop reads v[n]") != std::string::npos);
  r.target.last_line = 99;
  CHECK(!task_prompt(r, "", &prompt, &error));
  CHECK(error == "src/sum.cpp: lines 3-99 are not in the document (9 lines)");
  std::string out;
  CHECK(!render_prompt("nope", {}, &out, &error));
  CHECK(!render_prompt("refactor", {}, &out, &error));
  CHECK(error.find("needs {{") != std::string::npos);
}

TEST_CASE("tasks end to end: a forced R1 answer comes back as checked edits with its reasoning", "[agent][task]") {
  ponder::test::TempDir dir;
  auto engine = tiny_engine(dir.path());
  std::filesystem::create_directories(dir.path() / "ws" / "src");
  const std::filesystem::path root = dir.path() / "ws";
  std::ofstream(root / "src" / "sum.cpp") << "stale disk version\n";  // the editor's text wins
  TaskRequest r;
  r.target = {"src/sum.cpp", kLoop, 3, 9, "sum"};
  const std::string reasoning =
      "Okay, let me look at this function. It sums the first n elements of v.\n\n"
      "The loop runs while i <= n, so it reads v[n], which is one past the end when n == v.size().\n\n"
      "Wait, should it be i < n? Yes: n elements are indices 0 to n - 1.\n";
  const std::string answer =
      "Fix the off-by-one in the loop bound.\n\n"
      "The loop reads `v[n]`, one element past the end.\n\n"
      "src/sum.cpp\n```cpp\n<<<<<<< SEARCH\n  for (int i = 0; i <= n; ++i) {\n=======\n  for (int i = 0; i < n; ++i) {\n>>>>>>> REPLACE\n```\n";
  TaskOptions opt = forcing(*engine, reasoning + "</think>\n\n" + answer);
  TaskResult result;
  std::string error;
  REQUIRE(run_task(*engine, r, root, from_disk(), opt, &result, &error));
  CHECK(result.reason == StopReason::end_of_generation);
  CHECK(result.answer.reasoning == std::string(reasoning.substr(0, reasoning.size() - 1)));  // trimmed
  CHECK(result.answer.summary == "Fix the off-by-one in the loop bound.");
  CHECK(result.answer.problems.empty());
  REQUIRE(result.edits.files.size() == 1);
  CHECK(result.edits.rejected.empty());
  const FileChange& f = result.edits.files[0];
  CHECK(f.path == "src/sum.cpp");
  CHECK(f.before == kLoop);
  std::string want = kLoop;
  want.replace(want.find("i <= n"), 6, "i < n");
  CHECK(f.after == want);
  CHECK(result.stats.reasoning_tokens > 20);
  CHECK(result.stats.prompt_tokens > 100);
  CHECK(!result.cached);

  // The cache: the same task again is answered without generating (its edits checked again).
  TaskCache cache(2);
  opt.cache = &cache;
  REQUIRE(run_task(*engine, r, root, from_disk(), opt, &result, &error));
  CHECK(!result.cached);
  CHECK(cache.size() == 1);
  TaskResult again;
  REQUIRE(run_task(*engine, r, root, from_disk(), opt, &again, &error));
  CHECK(again.cached);
  CHECK(again.answer.summary == result.answer.summary);
  CHECK(again.edits.files.size() == 1);
  TaskRequest changed = r;  // another target text: another prompt, another key
  changed.target.text.replace(changed.target.text.find("int s = 0;"), 10, "int s = 1;");
  REQUIRE(run_task(*engine, changed, root, from_disk(), opt, &again, &error));
  CHECK(!again.cached);
  CHECK(cache.size() == 2);
  // Other settings: another key; the cache keeps its two most recent answers.
  opt.reasoning_budget = 100;
  REQUIRE(run_task(*engine, r, root, from_disk(), opt, &again, &error));
  CHECK(!again.cached);
  CHECK(cache.size() == 2);
}

TEST_CASE("tasks end to end: free sampling from a random model gives no valid edit, cleanly", "[agent][task]") {
  ponder::test::TempDir dir;
  auto engine = tiny_engine(dir.path());
  TaskRequest r;
  r.target = {"src/sum.cpp", kLoop, 3, 9, "sum"};
  TaskOptions opt;
  opt.max_tokens = 48;
  SamplingParams p;
  p.seed = 7;
  opt.sampling = p;
  TaskResult result;
  std::string error;
  REQUIRE(run_task(*engine, r, dir.path(), from_disk(), opt, &result, &error));
  CHECK(result.edits.files.empty());
  CHECK(result.stats.generated_tokens >= 1);
  // Noise has no edit blocks (or only broken ones), and says why when it has none to give.
  CHECK((result.answer.edits.empty() || !result.edits.rejected.empty()));
}

TEST_CASE("tasks end to end: a fix with workspace context from the index", "[agent][task]") {
  ponder::test::TempDir dir;
  auto engine = tiny_engine(dir.path(), 8192);
  const std::filesystem::path root = std::filesystem::path(PONDER_FIXTURES) / "workspace";
  std::string error;
  auto source = open_directory(root.string(), &error);
  REQUIRE(source);
  IndexOptions io;
  io.threads = 1;
  auto index = Index::build(std::shared_ptr<Source>(std::move(source)), io);
  TaskRequest r;
  r.kind = TaskKind::fix;
  std::ifstream in(root / "src" / "buffer.cpp", std::ios::binary);
  r.target = {"src/buffer.cpp", std::string(std::istreambuf_iterator<char>(in), {}), 11, 21, "buffer_append"};
  r.diagnostic = "src/buffer.cpp:14:11: warning: the result of realloc is not checked for NULL before use";
  const std::string answer =
      "realloc can fail and return NULL; then b->data would be lost and the memcpy would write through NULL.\n"
      "</think>\n\nCheck realloc's result before using it.\n\nsrc/buffer.cpp\n```cpp\n<<<<<<< SEARCH\n"
      "    char* data = static_cast<char*>(std::realloc(b->data, grown));\n    b->data = data;\n=======\n"
      "    char* data = static_cast<char*>(std::realloc(b->data, grown));\n    if (!data) return false;\n    b->data = data;\n"
      ">>>>>>> REPLACE\n```\n";
  TaskOptions opt = forcing(*engine, answer);
  opt.index = index.get();
  TaskResult result;
  REQUIRE(run_task(*engine, r, root, from_disk(), opt, &result, &error));
  CHECK(result.left_out.empty());
  CHECK(result.stats.prompt_tokens > result.prompt_tokens);  // the template's tokens around it
  CHECK(result.answer.summary == "Check realloc's result before using it.");
  REQUIRE(result.edits.files.size() == 1);
  CHECK(result.edits.files[0].after.find("    if (!data) return false;\n    b->data = data;\n") != std::string::npos);
  CHECK(result.edits.rejected.empty());
}

TEST_CASE("review end to end: a forced R1 review comes back as findings with their reasoning", "[agent][task][review]") {
  ponder::test::TempDir dir;
  auto engine = tiny_engine(dir.path(), 4096);
  ReviewRequest rq;
  rq.message = "Grow the buffer when it is full";
  rq.diff =
      "--- a/src/buffer.cpp\n+++ b/src/buffer.cpp\n@@ -11,3 +11,8 @@\n bool buffer_append(Buffer* b, const char* bytes, std::size_t n) {\n"
      "+  if (b->size + n > b->capacity) {\n+    std::size_t grown = b->capacity * 2;\n"
      "+    char* data = static_cast<char*>(std::realloc(b->data, grown));\n+    b->data = data;\n+  }\n";
  std::string prompt, error;
  REQUIRE(review_prompt(rq, &prompt, &error));
  CHECK(prompt.find("Commit message:\nGrow the buffer when it is full\n") != std::string::npos);
  CHECK(prompt.find("```diff\n--- a/src/buffer.cpp") != std::string::npos);
  CHECK(prompt.find("[severity] path:FIRST-LAST title") != std::string::npos);
  const std::string reasoning = "The new code doubles the capacity, but n may be larger than the old capacity.\n";
  const std::string answer =
      "[blocker] src/buffer.cpp:13-13 doubling may still be too small\n"
      "If n > capacity, grown < size + n and memcpy overflows.\n\n"
      "[warning] src/buffer.cpp:14-15 realloc's result is not checked\n"
      "A NULL result loses the buffer.\n";
  TaskOptions opt = forcing(*engine, reasoning + "</think>\n\n" + answer);
  ReviewResult r;
  REQUIRE(run_review(*engine, rq, opt, &r, &error));
  CHECK(r.reason == StopReason::end_of_generation);
  REQUIRE(r.findings.size() == 2);
  CHECK(r.findings[0].severity == Severity::blocker);
  CHECK(r.findings[0].title == "doubling may still be too small");
  CHECK(r.findings[1].first_line == 14);
  CHECK(r.findings[1].last_line == 15);
  CHECK(r.findings[1].reasoning == reasoning.substr(0, reasoning.size() - 1));
  CHECK(r.problems.empty());
  rq.diff = "  \n";
  CHECK(!run_review(*engine, rq, opt, &r, &error));
  CHECK(error == "nothing to review: the diff is empty");
}
