// `ponder review` run as a user and a CI job would: a repository made by the test, a generated
// random-weight model, and the model's output forced to a realistic R1 review (--force-answer) or
// sampled freely. The SARIF output is validated against the SARIF 2.1.0 schema, the JSON output
// against tests/schemas/ponder-review.schema.json, by tests/schemas/validate.js (node, ajv;
// installed by scripts/setup.sh).
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "support/git_repo.h"
#include "support/run_ponder.h"
#include "support/temp_dir.h"
#include "support/test_model.h"

using ponder::test::git;
using ponder::test::git_output;
using ponder::test::Run;
using ponder::test::run_ponder;
using ponder::test::TempDir;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A repository whose last commit grows a buffer without checking realloc.
void buffer_repo(const TempDir& dir) {
  git(dir, "init -q -b main");
  const std::string before =
      "#include <cstdlib>\n#include <cstring>\n\nstruct Buffer {\n  char* data;\n  std::size_t size, capacity;\n};\n\n"
      "bool buffer_append(Buffer* b, const char* bytes, std::size_t n) {\n"
      "  std::memcpy(b->data + b->size, bytes, n);\n  b->size += n;\n  return true;\n}\n";
  dir.write("src/buffer.cpp", before);
  dir.write("src/main.cpp",
            "struct Buffer;\nbool buffer_append(Buffer*, const char*, unsigned long);\n"
            "int main() {\n  buffer_append(nullptr, \"hi\", 2);\n}\n");
  ponder::test::commit_files(dir, {{"assets/logo.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16)}}, "one");
  std::string after = before;
  after.replace(after.find("  std::memcpy"), 0,
                "  if (b->size + n > b->capacity) {\n    std::size_t grown = b->capacity * 2;\n"
                "    char* data = static_cast<char*>(std::realloc(b->data, grown));\n    b->data = data;\n  }\n");
  dir.write("src/buffer.cpp", after);
  dir.write("assets/logo.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\x01", 17));
  git(dir, "commit -q -am 'Grow the buffer when it is full'");
}

const std::string kReasoning =
    "Okay, the change grows the buffer. It doubles the capacity, but n may be larger than the old capacity, "
    "so one doubling is not enough.\n\nAlso realloc can return NULL.\n";

const std::string kBlocker =
    "[blocker] src/buffer.cpp:11-11 doubling may still be too small\n"
    "If n > capacity, grown < size + n and the memcpy overflows.\n\n";

const std::string kWarning =
    "[warning] src/buffer.cpp:12-13 realloc's result is not checked\n"
    "A NULL result loses the buffer.\n\n"
    "src/buffer.cpp\n```cpp\n<<<<<<< SEARCH\n    b->data = data;\n=======\n    if (!data) return false;\n"
    "    b->data = data;\n>>>>>>> REPLACE\n```\n";

struct Fixture {
  TempDir repo, files, home;
  std::string model, answer, warning_only, prefix;
  Fixture() {
    buffer_repo(repo);
    std::string error;
    model = (files.path() / "m.gguf").string();
    REQUIRE(ponder::test::write_gguf(ponder::test::TestModelSpec::like_r1(ponder::Arch::qwen2), ponder::GgmlType::q8_0,
                                     model, &error));
    answer = files.write("answer.txt", kReasoning + "</think>\n\n" + kBlocker + kWarning).string();
    warning_only = files.write("warning.txt", kReasoning + "</think>\n\n" + kWarning).string();
    // No user's model, configuration or cache: only what the test names.
    prefix = "cd '" + repo.str() + "' && HOME='" + home.str() +
             "' PONDER_MODEL= OLLAMA_MODELS= HF_HUB_CACHE= HF_HOME= XDG_CACHE_HOME= NO_COLOR= ";
  }
  Run review(const std::string& args, bool with_stderr = false) const {
    return run_ponder("review --model '" + model + "' " + args, with_stderr, prefix);
  }
};

// Runs a shell command; its status, and stdout and stderr together in `output`.
int shell(const std::string& cmd, std::string* output) {
  output->clear();
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// `node tests/schemas/validate.js KIND FILE` on `text` written to FILE in `dir`: KIND sarif (the
// SARIF 2.1.0 schema) or review (ponder-review.schema.json). True when it is valid; what the
// validator said goes to `output`.
bool valid(const std::string& kind, const std::string& text, const TempDir& dir, std::string* output) {
  const std::string schemas = std::string(PONDER_SOURCE_DIR) + "/tests/schemas";
  INFO("run scripts/setup.sh: it installs the schema validator in tests/schemas/node_modules");
  REQUIRE(std::filesystem::exists(schemas + "/node_modules/ajv"));
  const std::string file = dir.write("output." + kind, text).string();
  return shell("node '" + schemas + "/validate.js' " + kind + " '" + file + "' 2>&1", output) == 0;
}

#define CHECK_VALID(kind, text, dir)             \
  do {                                           \
    std::string said;                            \
    const bool ok = valid(kind, text, dir, &said); \
    INFO(said);                                  \
    CHECK(ok);                                   \
  } while (0)

}  // namespace

TEST_CASE("ponder review: a forced R1 review comes out in every format, anchored to its lines", "[cli][review]") {
  Fixture f;
  const std::string force = "--force-answer '" + f.answer + "' --quiet --no-cache ";

  // JSON: the findings, where they are, the part's reasoning, what was not reviewed.
  Run json = f.review(force + "--format json");
  REQUIRE(json.status == 0);  // no --fail-on: findings do not fail
  const auto j = nlohmann::json::parse(json.out);
  CHECK(j["version"] == 1);
  CHECK(j["review"]["head"] == git_output(f.repo, "rev-parse HEAD"));
  CHECK(j["review"]["base"] == git_output(f.repo, "rev-parse HEAD~1"));
  CHECK(j["review"]["message"] == "Grow the buffer when it is full");
  REQUIRE(j["findings"].size() == 2);
  const auto& blocker = j["findings"][0];
  CHECK(blocker["severity"] == "blocker");
  CHECK(blocker["path"] == "src/buffer.cpp");
  CHECK(blocker["first_line"] == 11);
  CHECK(blocker["last_line"] == 11);
  CHECK(blocker["title"] == "doubling may still be too small");
  CHECK(blocker["explanation"] == "If n > capacity, grown < size + n and the memcpy overflows.");
  const auto& warning = j["findings"][1];
  CHECK(warning["severity"] == "warning");
  CHECK(warning["first_line"] == 12);
  CHECK(warning["last_line"] == 13);
  REQUIRE(warning["suggested_edits"].size() == 1);
  CHECK(warning["suggested_edits"][0]["replace"] == "    if (!data) return false;\n    b->data = data;\n");
  CHECK(j["summary"]["blocker"] == 1);
  CHECK(j["summary"]["warning"] == 1);
  REQUIRE(j["parts"].size() == 1);
  CHECK(j["parts"][0]["stop"] == "end_of_generation");
  CHECK(j["parts"][0]["reasoning"] == kReasoning.substr(0, kReasoning.size() - 1));
  CHECK(j["parts"][0]["files"] == nlohmann::json::array({"src/buffer.cpp"}));
  REQUIRE(j["not_reviewed"].size() == 1);
  CHECK(j["not_reviewed"][0]["path"] == "assets/logo.png");
  CHECK(j["not_reviewed"][0]["reason"] == "binary file");
  CHECK(f.review(force + "--format json").out == json.out);  // stable
  CHECK_VALID("review", json.out, f.files);

  // SARIF 2.1.0: valid against the schema, the same findings at the same lines.
  Run sarif = f.review(force + "--format sarif");
  REQUIRE(sarif.status == 0);
  CHECK_VALID("sarif", sarif.out, f.files);
  const auto s = nlohmann::json::parse(sarif.out);
  CHECK(s["version"] == "2.1.0");
  const auto& results = s["runs"][0]["results"];
  REQUIRE(results.size() == 2);
  CHECK(results[0]["ruleId"] == "review/blocker");
  CHECK(results[0]["level"] == "error");
  CHECK(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/buffer.cpp");
  CHECK(results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 11);
  CHECK(results[0]["locations"][0]["physicalLocation"]["region"]["endLine"] == 11);
  CHECK(results[1]["level"] == "warning");
  CHECK(results[1]["locations"][0]["physicalLocation"]["region"]["startLine"] == 12);
  CHECK(results[1]["locations"][0]["physicalLocation"]["region"]["endLine"] == 13);
  CHECK(has(results[1]["message"]["markdown"].get<std::string>(), "+     if (!data) return false;\n"));
  const auto& notes = s["runs"][0]["invocations"][0]["toolExecutionNotifications"];
  REQUIRE(notes.size() == 1);
  CHECK(notes[0]["message"]["text"] == "assets/logo.png: not reviewed: binary file");
  CHECK(f.review(force + "--format sarif").out == sarif.out);  // stable
  // The validator can fail: a level SARIF does not have.
  auto broken = s;
  broken["runs"][0]["results"][0]["level"] = "fatal";
  std::string validator;
  CHECK(!valid("sarif", broken.dump(), f.files, &validator));
  CHECK(has(validator, "allowed values"));
  auto broken_json = j;  // and for the review's JSON: a severity it does not have
  broken_json["findings"][0]["severity"] = "critical";
  CHECK(!valid("review", broken_json.dump(), f.files, &validator));
  CHECK(has(validator, "allowed values"));

  // Markdown and the terminal report (stdout is not a terminal here: no colour).
  Run markdown = f.review(force + "--format markdown");
  CHECK(has(markdown.out, "### [blocker] `src/buffer.cpp:11` doubling may still be too small\n"));
  CHECK(has(markdown.out, "### [warning] `src/buffer.cpp:12-13` realloc's result is not checked\n"));
  CHECK(has(markdown.out, "- `assets/logo.png`: binary file\n"));
  Run text = f.review(force, true);
  CHECK(text.status == 0);
  CHECK(has(text.out, "blocker   src/buffer.cpp:11  doubling may still be too small\n"));
  CHECK(has(text.out, "warning   src/buffer.cpp:12-13  realloc's result is not checked\n"));
  CHECK(has(text.out, "  assets/logo.png: binary file\n"));
  CHECK(has(text.out, "1 blocker, 1 warning, 0 suggestions, 0 nits\n"));
  CHECK(!has(text.out, "\033["));
  CHECK(!has(text.out, "ponder review: part"));  // stderr is not a terminal: no progress

  // --fail-on: 1 when a finding at or above the severity exists.
  CHECK(f.review(force + "--fail-on blocker").status == 1);
  CHECK(f.review(force + "--fail-on never").status == 0);
  const std::string warning_only = "--force-answer '" + f.warning_only + "' --quiet --no-cache ";
  CHECK(f.review(warning_only + "--fail-on blocker").status == 0);
  CHECK(f.review(warning_only + "--fail-on warning").status == 1);
  CHECK(f.review(warning_only + "--fail-on nit --format sarif").status == 1);

  // --show-thinking streams the reasoning to stderr; a terminal gets progress and colour.
  Run thinking = f.review("--force-answer '" + f.answer + "' --no-cache --show-thinking", true);
  CHECK(has(thinking.out, "[thinking about part 1 of 1]\nOkay, the change grows the buffer."));
  std::string tty;
  CHECK(shell(f.prefix + "script -qe -c \"" + std::string(PONDER_BINARY) + " review --model '" + f.model +
                  "' --force-answer '" + f.answer + "' --no-cache\" /dev/null 2>&1",
              &tty) == 0);
  INFO(tty);
  CHECK(has(tty, "ponder review: part 1/1 · files 0/1 · "));
  CHECK(has(tty, "\033[1;31mblocker"));
}

TEST_CASE("ponder review: free sampling from a random model reports no findings, cleanly", "[cli][review]") {
  Fixture f;
  Run json = f.review("--max-tokens 24 --seed 5 --quiet --no-cache --format json --fail-on nit");
  REQUIRE(json.status == 0);
  const auto j = nlohmann::json::parse(json.out);
  CHECK(j["findings"].empty());
  CHECK(j["parts"][0]["generated_tokens"] == 24);
  const std::string outcome = j["parts"][0]["outcome"];
  CHECK((has(outcome, "no answer") || has(outcome, "no valid findings") || outcome == "no findings"));
  CHECK_VALID("review", json.out, f.files);
  Run text = f.review("--max-tokens 24 --seed 5 --quiet --no-cache");
  CHECK(text.status == 0);
  CHECK(has(text.out, "No findings.\n"));
  Run sarif = f.review("--max-tokens 24 --seed 5 --quiet --no-cache --format sarif");
  REQUIRE(sarif.status == 0);
  CHECK_VALID("sarif", sarif.out, f.files);
  CHECK(nlohmann::json::parse(sarif.out)["runs"][0]["results"].empty());
}

TEST_CASE("ponder review: bad usage, repositories and models are exit status 2 with a clear message", "[cli][review]") {
  Fixture f;
  TempDir plain;
  Run not_repo = run_ponder("review --model '" + f.model + "' -C '" + plain.str() + "'", true);
  CHECK(not_repo.status == 2);
  CHECK(has(not_repo.out, "ponder review: " + plain.str() + " is not in a git repository"));
  Run unknown = f.review("nope", true);
  CHECK(unknown.status == 2);
  CHECK(has(unknown.out, "unknown revision 'nope'"));
  Run missing = run_ponder("review --model '" + f.files.str() + "/none.gguf'", true, f.prefix);
  CHECK(missing.status == 2);
  CHECK(has(missing.out, "none.gguf"));
  // No model on the machine: what to do, and that nothing was reviewed; --plan works without one.
  Run none = run_ponder("review", true, f.prefix);
  CHECK(none.status == 2);
  CHECK(has(none.out, "no model found"));
  CHECK(has(none.out, "ollama pull deepseek-r1"));
  CHECK(has(none.out, "Nothing was reviewed."));
  Run plan = run_ponder("review --plan", true, f.prefix);
  CHECK(plan.status == 0);
  CHECK(has(plan.out, "token counts are estimates"));
  CHECK(has(plan.out, "part 1: "));
  CHECK(has(plan.out, "  src/buffer.cpp\n"));
  CHECK(has(plan.out, "  assets/logo.png: binary file\n"));
  Run plan_json = run_ponder("review --plan --format json", false, f.prefix);
  CHECK(plan_json.status == 0);
  CHECK(has(nlohmann::json::parse(plan_json.out)["parts"][0]["prompt"].get<std::string>(), "+    b->data = data;\n"));
  CHECK_VALID("review", plan_json.out, f.files);
  // Usage.
  for (const char* bad : {"--format yaml", "--fail-on sometimes", "--staged --worktree", "HEAD HEAD~1", "--budget x",
                          "--bogus", "--max-tokens 0"}) {
    INFO(bad);
    Run r = f.review(bad, true);
    CHECK(r.status == 2);
    CHECK(has(r.out, "ponder review: "));
  }
  Run help = run_ponder("review --help");
  CHECK(help.status == 0);
  CHECK(has(help.out, "--fail-on SEVERITY"));
  // Nothing changed: nothing to review, which is not a failure.
  git(f.repo, "commit -q --allow-empty -m empty");
  Run empty = f.review("--quiet --fail-on nit", true);
  CHECK(empty.status == 0);
  CHECK(has(empty.out, "Nothing to review."));
}
