// Bad input never crashes the index: each bad file is skipped or parsed, with a reason.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <random>

#include "agent/index.h"
#include "support/temp_dir.h"

using namespace ponder::agent;
using ponder::test::TempDir;

namespace {

const Skipped* find(const std::vector<Skipped>& v, const std::string& path) {
  for (const auto& s : v)
    if (s.path == path) return &s;
  return nullptr;
}

std::shared_ptr<Source> open(const TempDir& dir) {
  std::string error;
  auto s = open_directory(dir.str(), &error);
  REQUIRE(s);
  return s;
}

// A source whose files list fine but cannot be read (a disk error, a file deleted meanwhile).
class FailingSource final : public Source {
 public:
  std::string identity() const override { return "failing"; }
  std::vector<SourceFile> list(const ListOptions&, std::vector<Skipped>*) override {
    return {{"a.py", 10, 1}, {"b.py", 10, 2}};
  }
  bool read(std::string_view path, std::string* out, std::string* error) const override {
    if (path == "a.py") {
      *error = "Input/output error";
      return false;
    }
    *out = "def b():\n    pass\n";
    return true;
  }
};

}  // namespace

TEST_CASE("binary, oversized, invalid UTF-8 and deeply nested files", "[index][bad-input]") {
  TempDir dir;
  std::mt19937 rng(7);
  std::string binary(4096, '\0');
  for (char& c : binary) c = static_cast<char>(rng());
  binary[100] = '\0';
  dir.write("blob.c", binary);
  dir.write("latin1.py", "def caf\xe9():\n    return '\xff\xfe'\n\ndef ok():\n    pass\n");
  dir.write("deep.py", "x = " + std::string(20000, '(') + "1" + std::string(20000, ')') + "\n");
  dir.write("unbalanced.cpp", "class A { void f( { ] } } } template <<< ;;; int g() { return 1; }\n");
  dir.write("empty.go", "");
  dir.write("good.rs", "fn good() {}\n");
  // A 50 MB generated file.
  {
    std::string line = "int generated_function_with_a_long_name(void) { return 12345; }\n";
    std::string big;
    big.reserve(50u << 20);
    while (big.size() < (50u << 20)) big += line;
    dir.write("generated.c", big);
  }

  IndexStats stats;
  auto index = Index::build(open(dir), {}, &stats);

  const Skipped* s = find(stats.skipped, "blob.c");
  REQUIRE(s);
  CHECK(s->reason.find("binary") != std::string::npos);
  s = find(stats.skipped, "generated.c");
  REQUIRE(s);
  CHECK(s->reason.find("too large") != std::string::npos);

  const Skipped* w = find(stats.warnings, "latin1.py");
  REQUIRE(w);
  CHECK(w->reason.find("invalid UTF-8 at byte 7") != std::string::npos);
  CHECK(index->definitions("ok").size() == 1);

  REQUIRE(index->file("deep.py"));
  REQUIRE(index->file("unbalanced.cpp"));
  CHECK(index->file("unbalanced.cpp")->has_syntax_errors);
  CHECK(index->definitions("g").size() == 1);
  REQUIRE(index->file("empty.go"));
  CHECK(index->file("empty.go")->tags.empty());
  CHECK(index->definitions("good").size() == 1);
}

TEST_CASE("symlink loops and odd entries are skipped with a reason", "[index][bad-input]") {
  TempDir dir;
  dir.write("real/code.py", "def real():\n    pass\n");
  namespace fs = std::filesystem;
  fs::create_symlink("loop_b.py", dir.path() / "loop_a.py");
  fs::create_symlink("loop_a.py", dir.path() / "loop_b.py");
  fs::create_symlink("missing.py", dir.path() / "dangling.py");
  fs::create_directory_symlink("..", dir.path() / "real/parent");  // a folder loop
  fs::create_directory_symlink(".", dir.path() / "self");
  fs::create_symlink("real/code.py", dir.path() / "alias.py");
  REQUIRE(::mkfifo((dir.path() / "pipe.py").c_str(), 0600) == 0);

  IndexStats stats;
  auto index = Index::build(open(dir), {}, &stats);
  REQUIRE(find(stats.skipped, "loop_a.py"));
  CHECK(find(stats.skipped, "loop_a.py")->reason == "symlink loop");
  REQUIRE(find(stats.skipped, "dangling.py"));
  CHECK(find(stats.skipped, "dangling.py")->reason == "dangling symlink");
  CHECK(index->file("real/code.py"));
  CHECK(index->file("alias.py"));  // a link to a file is read through the link
  CHECK(index->files().size() == 2);
}

TEST_CASE("unreadable files are skipped with the reason", "[index][bad-input]") {
  IndexStats stats;
  auto index = Index::build(std::make_shared<FailingSource>(), {}, &stats);
  REQUIRE(find(stats.skipped, "a.py"));
  CHECK(find(stats.skipped, "a.py")->reason == "cannot read: Input/output error");
  CHECK(index->definitions("b").size() == 1);

  if (::geteuid() == 0) {
    WARN("running as root: file permissions cannot make a file unreadable");
    return;
  }
  TempDir dir;
  auto secret = dir.write("secret.py", "def s(): pass\n");
  std::filesystem::permissions(secret, std::filesystem::perms::none);
  IndexStats fs_stats;
  Index::build(open(dir), {}, &fs_stats);
  REQUIRE(find(fs_stats.skipped, "secret.py"));
  CHECK(find(fs_stats.skipped, "secret.py")->reason.find("unreadable") != std::string::npos);
}

TEST_CASE("a folder that does not exist is a clear error", "[index][bad-input]") {
  std::string error;
  CHECK_FALSE(open_directory("/no/such/folder/anywhere", &error));
  CHECK(error.find("/no/such/folder/anywhere") != std::string::npos);
  TempDir dir;
  auto file = dir.write("f.py", "x = 1\n");
  CHECK_FALSE(open_directory(file.string(), &error));
  CHECK(error.find("not a folder") != std::string::npos);
}
