// Answers as R1 distills write them: reasoning, then a summary and search/replace blocks.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "agent/answer.h"
#include "agent/edit_check.h"
#include "support/temp_dir.h"

using namespace ponder::agent;

namespace {

// One answer of the corpus and what the parser must make of it.
struct Shape {
  const char* name;
  std::string output;
  std::string default_path;
  std::string reasoning_starts;  // a prefix of the reasoning ("" = no reasoning)
  std::string summary;
  std::vector<EditBlock> edits;  // path, search, replace (line not compared)
  std::size_t problems = 0;
};

const std::string kBlock = R"(<<<<<<< SEARCH
    if (i <= n) {
=======
    if (i < n) {
>>>>>>> REPLACE)";

std::vector<Shape> corpus() {
  const EditBlock off_by_one{"src/loop.cpp", "    if (i <= n) {\n", "    if (i < n) {\n", 0};
  return {
      {"the usual shape: reasoning, </think>, summary, fenced block with its path",
       "Okay, so the user wants me to look at this loop. Let me see... the condition is `i <= n`, which "
       "reads one past the end.\n\nWait, the buffer has n elements, so index n is out of bounds.\n</think>\n\n"
       "Fix the off-by-one in the loop bound.\n\nsrc/loop.cpp\n```cpp\n" + kBlock + "\n```\n",
       "", "Okay, so the user", "Fix the off-by-one in the loop bound.", {off_by_one}},
      {"an explicit <think> at the start",
       "<think>\nThe loop reads past the end.\n</think>\n\nFix the loop bound.\n\nsrc/loop.cpp\n```cpp\n" + kBlock + "\n```",
       "", "The loop reads", "Fix the loop bound.", {off_by_one}},
      {"a lone </think> and nothing before it",
       "</think>\n\nFix the loop bound.\n\nsrc/loop.cpp\n```\n" + kBlock + "\n```\n", "", "", "Fix the loop bound.", {off_by_one}},
      {"no tags at all", "Fix the loop bound.\n\nsrc/loop.cpp\n" + kBlock + "\n", "", "", "Fix the loop bound.", {off_by_one}},
      {"CRLF line ends everywhere",
       "The bound is wrong.\r\n</think>\r\n\r\nFix the loop bound.\r\n\r\nsrc/loop.cpp\r\n```cpp\r\n<<<<<<< SEARCH\r\n    if (i <= n) {\r\n=======\r\n    if (i < n) {\r\n>>>>>>> REPLACE\r\n```\r\n",
       "", "The bound is wrong.", "Fix the loop bound.", {off_by_one}},
      {"trailing whitespace on the markers",
       "x\n</think>\nFix it.\nsrc/loop.cpp\n<<<<<<< SEARCH   \n    if (i <= n) {\n=======  \n    if (i < n) {\n>>>>>>> REPLACE \t\n",
       "", "x", "Fix it.", {off_by_one}},
      {"reasoning with example code blocks (not edits) and a marker-like example",
       "Maybe I could write it as\n```cpp\nfor (int i = 0; i < n; ++i) {}\n```\nor with a block like\n" + kBlock +
           "\nbut that is only a thought.\n</think>\n\nUse `<` in the loop.\n\nsrc/loop.cpp\n```cpp\n" + kBlock + "\n```",
       "", "Maybe I could", "Use `<` in the loop.", {off_by_one}},
      {"the path in bold", "r\n</think>\nFix.\n\n**src/loop.cpp**\n```cpp\n" + kBlock + "\n```", "", "r", "Fix.", {off_by_one}},
      {"the path in backticks with a colon", "r\n</think>\nFix.\n\n`src/loop.cpp`:\n```cpp\n" + kBlock + "\n```", "", "r", "Fix.", {off_by_one}},
      {"File: prefix", "r\n</think>\nFix.\n\nFile: src/loop.cpp\n```cpp\n" + kBlock + "\n```", "", "r", "Fix.", {off_by_one}},
      {"a markdown heading as the path", "r\n</think>\nFix.\n\n### src/loop.cpp\n```cpp\n" + kBlock + "\n```", "", "r", "Fix.", {off_by_one}},
      {"the path on the fence line", "r\n</think>\nFix.\n\n```src/loop.cpp\n" + kBlock + "\n```", "", "r", "Fix.", {off_by_one}},
      {"no path: the task's file", "r\n</think>\nFix.\n\n```cpp\n" + kBlock + "\n```", "src/loop.cpp", "r", "Fix.", {off_by_one}},
      {"no path and no default: a problem", "r\n</think>\nFix.\n\n```cpp\n" + kBlock + "\n```", "", "r", "Fix.", {}, 1},
      {"a summary in markup", "r\n</think>\n**Summary:** Fix the loop bound.\n\nsrc/loop.cpp\n" + kBlock, "", "r",
       "Fix the loop bound.", {off_by_one}},
      {"a heading as the summary", "r\n</think>\n## Fix the loop bound\n\nsrc/loop.cpp\n" + kBlock, "", "r", "Fix the loop bound",
       {off_by_one}},
      {"two edits to one file, the second right after the first",
       "r\n</think>\nTwo fixes.\n\nsrc/loop.cpp\n```cpp\n" + kBlock +
           "\n<<<<<<< SEARCH\nreturn -1;\n=======\nreturn std::nullopt;\n>>>>>>> REPLACE\n```",
       "", "r", "Two fixes.",
       {off_by_one, {"src/loop.cpp", "return -1;\n", "return std::nullopt;\n", 0}}},
      {"two edits to one file in two fences",
       "r\n</think>\nTwo fixes.\n\nsrc/loop.cpp\n```cpp\n" + kBlock + "\n```\n\nsrc/loop.cpp\n```cpp\n<<<<<<< SEARCH\nreturn -1;\n=======\nreturn std::nullopt;\n>>>>>>> REPLACE\n```",
       "", "r", "Two fixes.", {off_by_one, {"src/loop.cpp", "return -1;\n", "return std::nullopt;\n", 0}}},
      {"edits to two files",
       "r\n</think>\nRename.\n\na/x.py\n```python\n<<<<<<< SEARCH\ndef f():\n=======\ndef g():\n>>>>>>> REPLACE\n```\n\nb/y.py\n```python\n<<<<<<< SEARCH\nf()\n=======\ng()\n>>>>>>> REPLACE\n```",
       "", "r", "Rename.",
       {{"a/x.py", "def f():\n", "def g():\n", 0}, {"b/y.py", "f()\n", "g()\n", 0}}},
      {"an unfinished block (cut by the token limit)", "r\n</think>\nFix.\n\nsrc/loop.cpp\n<<<<<<< SEARCH\n    if (i <= n) {\n=======\n    if (i",
       "", "r", "Fix.", {}, 1},
      {"a block with no divider", "r\n</think>\nFix.\n\nsrc/loop.cpp\n<<<<<<< SEARCH\n    if (i <= n) {\n>>>>>>> REPLACE\n", "", "r", "Fix.", {}, 1},
      {"reasoning that never ends", "<think>\nLet me think about the loop. Hmm, the bound", "", "Let me think", "", {}, 1},
      {"an answer with no edits: explanation only", "r\n</think>\n\nThis function sums the first n elements.\n\nIt assumes n <= size.", "", "r",
       "This function sums the first n elements.", {}},
      {"a new file: empty SEARCH", "r\n</think>\nAdd a test.\n\ntests/t.py\n```python\n<<<<<<< SEARCH\n=======\ndef test():\n    pass\n>>>>>>> REPLACE\n```",
       "", "r", "Add a test.", {{"tests/t.py", "", "def test():\n    pass\n", 0}}},
      {"a deletion: empty REPLACE", "r\n</think>\nRemove the debug print.\n\nm.py\n<<<<<<< SEARCH\nprint(x)\n=======\n>>>>>>> REPLACE",
       "", "r", "Remove the debug print.", {{"m.py", "print(x)\n", "", 0}}},
      {"more than seven marker characters", "r\n</think>\nFix.\nsrc/loop.cpp\n<<<<<<<<< SEARCH\n    if (i <= n) {\n=========\n    if (i < n) {\n>>>>>>>>> REPLACE",
       "", "r", "Fix.", {off_by_one}},
      {"a tilde fence", "r\n</think>\nFix.\n\nsrc/loop.cpp\n~~~cpp\n" + kBlock + "\n~~~", "", "r", "Fix.", {off_by_one}},
      {"a URL is not a path", "r\n</think>\nFix, see the docs.\n\nhttps://example.com/a.html\n```cpp\n" + kBlock + "\n```", "", "r",
       "Fix, see the docs.", {}, 1},
      {"a long reasoning with several </think>-free paragraphs and a code block in the answer's prose",
       "First, the function `parse` takes a string.\n\nSecond, it returns -1 on error.\n\nThird, callers ignore that.\n</think>\n\n"
       "Return an optional instead of -1.\n\nCallers must check it:\n```cpp\nif (auto v = parse(s)) use(*v);\n```\n\nsrc/loop.cpp\n```cpp\n"
       "<<<<<<< SEARCH\nreturn -1;\n=======\nreturn std::nullopt;\n>>>>>>> REPLACE\n```",
       "", "First, the function", "Return an optional instead of -1.", {{"src/loop.cpp", "return -1;\n", "return std::nullopt;\n", 0}}},
      {"Windows path separators are kept as written", "r\n</think>\nFix.\n\nsrc\\loop.cpp\n" + kBlock, "", "r", "Fix.",
       {{"src\\loop.cpp", "    if (i <= n) {\n", "    if (i < n) {\n", 0}}},
  };
}

}  // namespace

TEST_CASE("answer parser: a corpus of R1-shaped answers", "[agent][answer]") {
  const auto shapes = corpus();
  CHECK(shapes.size() >= 30);
  for (const Shape& s : shapes) {
    INFO(s.name);
    const ParsedAnswer a = parse_answer(s.output, s.default_path);
    if (s.reasoning_starts.empty()) CHECK(a.reasoning.empty());
    else CHECK(a.reasoning.rfind(s.reasoning_starts, 0) == 0);
    CHECK(a.summary == s.summary);
    CHECK(a.problems.size() == s.problems);
    for (const auto& p : a.problems) UNSCOPED_INFO(p);
    REQUIRE(a.edits.size() == s.edits.size());
    for (std::size_t i = 0; i < a.edits.size(); ++i) {
      CHECK(a.edits[i].path == s.edits[i].path);
      CHECK(a.edits[i].search == s.edits[i].search);
      CHECK(a.edits[i].replace == s.edits[i].replace);
      CHECK(a.edits[i].line > 0);
    }
    CHECK(a.answer.find('\r') == std::string::npos);
  }
}

TEST_CASE("answer parser: reasoning and answer are split at </think>", "[agent][answer]") {
  const ParsedAnswer a = parse_answer("  Thinking here.\n</think>\n\nThe answer.\n");
  CHECK(a.reasoning_closed);
  CHECK(a.reasoning == "Thinking here.");
  CHECK(a.answer == "The answer.");
  const ParsedAnswer b = parse_answer("Just an answer.");
  CHECK(!b.reasoning_closed);
  CHECK(b.reasoning.empty());
  CHECK(b.answer == "Just an answer.");
}

TEST_CASE("apply_edit: exact, normalised (unique only), mismatch, no-op, new file, line ends", "[agent][answer]") {
  const std::string doc = "int sum(int* a, int n) {\n  int s = 0;\n  for (int i = 0; i <= n; ++i) {\n    s += a[i];\n  }\n  return s;\n}\n";
  EditBlock e{"sum.c", "  for (int i = 0; i <= n; ++i) {\n", "  for (int i = 0; i < n; ++i) {\n", 1};
  AppliedEdit r = apply_edit(doc, e);
  REQUIRE(r.ok);
  CHECK(!r.normalised);
  CHECK(r.text == "int sum(int* a, int n) {\n  int s = 0;\n  for (int i = 0; i < n; ++i) {\n    s += a[i];\n  }\n  return s;\n}\n");
  // The model's block lost the indentation and added trailing spaces: matched after
  // normalisation, and the replacement takes the document's indentation.
  e.search = "for (int i = 0;  i <= n; ++i) {   \ns += a[i];\n";
  e.replace = "for (int i = 0; i < n; ++i) {\n  s += a[i];\n";
  r = apply_edit(doc, e);
  REQUIRE(r.ok);
  CHECK(r.normalised);
  CHECK(r.text == "int sum(int* a, int n) {\n  int s = 0;\n  for (int i = 0; i < n; ++i) {\n    s += a[i];\n  }\n  return s;\n}\n");
  // Over-indented in the block: the extra indentation is removed.
  e.search = "      for (int i = 0; i <= n; ++i) {\n";
  e.replace = "      for (int i = 0; i < n; ++i) {\n";
  r = apply_edit(doc, e);
  REQUIRE(r.ok);
  CHECK(r.text.find("\n  for (int i = 0; i < n; ++i) {\n") != std::string::npos);
  // Not there: reported, not guessed.
  e.search = "for (int j = 0; j < m; ++j) {\n";
  r = apply_edit(doc, e);
  CHECK(!r.ok);
  CHECK(r.error == "the SEARCH text is not in sum.c");
  // Matches twice: ambiguous.
  e.search = "  }\n";
  e.replace = "  } // end\n";
  r = apply_edit("  {\n  }\n  {\n  }\n", e);
  CHECK(!r.ok);
  CHECK(r.error == "the SEARCH text matches 2 places in sum.c");
  // Changes nothing.
  e.search = e.replace = "  int s = 0;\n";
  r = apply_edit(doc, e);
  CHECK(!r.ok);
  CHECK(r.error == "the edit changes nothing in sum.c");
  // A new file; an empty SEARCH on a file with content is refused.
  e.search = "";
  e.replace = "x = 1\n";
  r = apply_edit("", e);
  REQUIRE(r.ok);
  CHECK(r.text == "x = 1\n");
  CHECK(!apply_edit(doc, e).ok);
  // CRLF documents keep CRLF; a document without a final newline keeps that.
  e.search = "b\n";
  e.replace = "B\n";
  r = apply_edit("a\r\nb\r\nc\r\n", e);
  REQUIRE(r.ok);
  CHECK(r.text == "a\r\nB\r\nc\r\n");
  r = apply_edit("a\nb", e);
  REQUIRE(r.ok);
  CHECK(r.text == "a\nB");
  // A deletion.
  e.replace = "";
  r = apply_edit("a\nb\nc\n", e);
  REQUIRE(r.ok);
  CHECK(r.text == "a\nc\n");
}

TEST_CASE("check_edits: applies, mismatches, syntax breaks, escapes and no-ops, each with its reason", "[agent][answer]") {
  ponder::test::TempDir dir;
  const std::filesystem::path root = dir.path();
  auto write = [&](const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((root / rel).parent_path());
    std::ofstream(root / rel, std::ios::binary) << text;
  };
  write("a.py", "def f(x):\n    return x + 1\n");
  write("src/b.cpp", "int g(int n) {\n  return n <= 0 ? 0 : n;\n}\n");
  write("c.go", "package c\n\nfunc H() int { return 1 }\n");
  // The editor has a newer version of a.py open than the disk's: edits apply to that one.
  const std::string open_a = "def f(x):\n    return x + 2\n";
  ReadText read = [&](const std::filesystem::path& p) -> std::optional<std::string> {
    if (p == root / "a.py") return open_a;
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::vector<EditBlock> edits = {
      {"a.py", "    return x + 2\n", "    return x + 3\n", 1},              // applies (the open version)
      {"a.py", "    return x * 2\n", "    return 0\n", 2},                  // no match
      {"src/b.cpp", "  return n <= 0 ? 0 : n;\n", "  return n < 0 ? 0 : n;\n", 3},  // applies
      {"c.go", "func H() int { return 1 }\n", "func H() int { return (1 }\n", 4},  // breaks the syntax
      {"../outside.py", "", "x = 1\n", 5},                                  // leaves the root
      {"/etc/passwd", "root\n", "", 6},                                     // absolute
      {"src/../a.py", "def f(x):\n", "def f(x):\n", 7},                     // changes nothing
      {"new/d.py", "", "def d():\n    pass\n", 8},                          // a new file
      {"missing.py", "x\n", "y\n", 9},                                      // no such file
  };
  const CheckedEdits c = check_edits(edits, root, read);
  REQUIRE(c.files.size() == 3);
  CHECK(c.files[0].path == "a.py");
  CHECK(c.files[0].before == open_a);
  CHECK(c.files[0].after == "def f(x):\n    return x + 3\n");
  CHECK(c.files[0].edits.size() == 1);
  CHECK(c.files[1].path == "src/b.cpp");
  CHECK(c.files[1].after == "int g(int n) {\n  return n < 0 ? 0 : n;\n}\n");
  CHECK(c.files[2].path == "new/d.py");
  CHECK(c.files[2].new_file);
  CHECK(c.files[2].absolute == root / "new" / "d.py");
  std::map<std::size_t, std::string> why;
  for (const RejectedEdit& r : c.rejected) why[r.edit.line] = r.reason;
  CHECK(why.size() == 6);
  CHECK(why[2] == "the SEARCH text is not in a.py");
  CHECK(why[4] == "the edited c.go does not parse: 1 new syntax error");
  CHECK(why[5] == "the path ../outside.py leaves the workspace");
  CHECK(why[6] == "the path /etc/passwd is not relative to the workspace");
  CHECK(why[7] == "the edit changes nothing in src/../a.py");
  CHECK(why[9] == "missing.py does not exist");
}

TEST_CASE("syntax_errors counts ERROR and MISSING nodes", "[agent][answer]") {
  CHECK(syntax_errors(Language::python, "def f(x):\n    return x\n") == 0);
  CHECK(syntax_errors(Language::python, "def f(x:\n    return x\n") >= 1);
  CHECK(syntax_errors(Language::cpp, "int f() { return 1; }\n") == 0);
  CHECK(syntax_errors(Language::cpp, "int f() { return 1 }\n") == 1);  // a MISSING ";"
  CHECK(syntax_errors(Language::unknown, "((((") == 0);
}

TEST_CASE("review findings: headers in the shapes models write, explanations, suggested edits", "[agent][answer][review]") {
  const std::string output =
      "Let me go through the diff. The realloc result is unchecked... and the loop bound.\n</think>\n\n"
      "Two problems and a nit.\n\n"
      "[blocker] src/buffer.cpp:14-15 realloc's result is used unchecked\n"
      "If realloc fails it returns NULL and the old block leaks; memcpy then writes through NULL.\n\n"
      "src/buffer.cpp\n```cpp\n<<<<<<< SEARCH\n    b->data = data;\n=======\n    if (!data) return false;\n    b->data = data;\n>>>>>>> REPLACE\n```\n\n"
      "- **[Warning]** `src/loop.cpp:5` — off-by-one: `i <= n` reads v[n]\n"
      "  The loop runs n + 1 times.\n\n"
      "3. [nit] web/app.ts:8: `names` could reuse `totalPrice`'s fetch\n"
      "[serious] a.py:1 not a severity we know\n"
      "[warning] no location here\n";
  const ParsedAnswer a = parse_answer(output);
  std::vector<std::string> problems;
  const std::vector<Finding> f = parse_findings(a, &problems);
  REQUIRE(f.size() == 3);
  CHECK(f[0].severity == Severity::blocker);
  CHECK(f[0].path == "src/buffer.cpp");
  CHECK(f[0].first_line == 14);
  CHECK(f[0].last_line == 15);
  CHECK(f[0].title == "realloc's result is used unchecked");
  CHECK(f[0].explanation == "If realloc fails it returns NULL and the old block leaks; memcpy then writes through NULL.");
  REQUIRE(f[0].edits.size() == 1);
  CHECK(f[0].edits[0].replace == "    if (!data) return false;\n    b->data = data;\n");
  CHECK(f[0].reasoning.rfind("Let me go through the diff.", 0) == 0);
  CHECK(f[1].severity == Severity::warning);
  CHECK(f[1].path == "src/loop.cpp");
  CHECK(f[1].first_line == 5);
  CHECK(f[1].last_line == 5);
  CHECK(f[1].title == "off-by-one: `i <= n` reads v[n]");
  CHECK(f[1].explanation == "The loop runs n + 1 times.");
  CHECK(f[1].edits.empty());
  CHECK(f[2].severity == Severity::nit);
  CHECK(f[2].path == "web/app.ts");
  CHECK(f[2].title == "`names` could reuse `totalPrice`'s fetch");
  REQUIRE(problems.size() == 1);  // the unknown severity is not a finding header at all
  CHECK(problems[0].find("[warning] no location here") != std::string::npos);
  // No findings: an empty list, no problems.
  problems.clear();
  CHECK(parse_findings(parse_answer("ok\n</think>\nNo problems found."), &problems).empty());
  CHECK(problems.empty());
  Severity s;
  CHECK(parse_severity("CRITICAL", &s));
  CHECK(s == Severity::blocker);
  CHECK(!parse_severity("meh", &s));
  CHECK(severity_name(Severity::suggestion) == "suggestion");
}
