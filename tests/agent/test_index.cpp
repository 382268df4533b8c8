#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/index.h"
#include "agent/tag_cache.h"
#include "support/temp_dir.h"

using namespace ponder::agent;
using ponder::test::TempDir;

namespace {

void write_workspace(const TempDir& dir) {
  dir.write("src/store.py",
            "class Store:\n"
            "    def add(self, key):\n"
            "        return helper(key)\n"
            "\n"
            "    def size(self):\n"
            "        return 0\n");
  dir.write("src/util.py", "def helper(key):\n    return key.strip()\n");
  dir.write("src/main.py", "from store import Store\n\ndef main():\n    Store().add('k')\n    helper('x')\n");
  dir.write("src/gen/big.py", "def generated():\n    pass\n");
  dir.write("lib/core.c", "int square(int x) { return x * x; }\nint cube(int x) { return square(x) * x; }\n");
  dir.write("node_modules/pkg/index.js", "function ignored() {}\n");
  dir.write("build/out.c", "int also_ignored(void) { return 0; }\n");
  dir.write(".gitignore", "src/gen/\n*.tmp.py\n");
  dir.write("scratch.tmp.py", "def scratch(): pass\n");
  dir.write("notes.md", "# not code\n");
  dir.write("tools/run", "#!/usr/bin/env python3\ndef run():\n    main()\n");
}

std::shared_ptr<Source> open(const TempDir& dir) {
  std::string error;
  auto s = open_directory(dir.str(), &error);
  REQUIRE(s);
  return s;
}

std::vector<std::string> paths(const Index& index) {
  std::vector<std::string> out;
  for (const auto& [p, _] : index.files()) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("the index lists code files and respects ignore rules", "[index]") {
  TempDir dir;
  write_workspace(dir);
  IndexStats stats;
  auto index = Index::build(open(dir), {}, &stats);
  CHECK(paths(*index) ==
        std::vector<std::string>{"lib/core.c", "src/main.py", "src/store.py", "src/util.py", "tools/run"});
  CHECK(stats.files == 5);
  CHECK(stats.parsed == 5);
  CHECK(stats.from_cache == 0);
  CHECK(stats.tags == index->tag_count());
}

TEST_CASE("definitions, references, enclosing symbol, outline and text", "[index]") {
  TempDir dir;
  write_workspace(dir);
  auto index = Index::build(open(dir), {});

  auto defs = index->definitions("helper");
  REQUIRE(defs.size() == 1);
  CHECK(defs[0].file->path == "src/util.py");
  CHECK(defs[0].tag->kind == TagKind::function);
  CHECK(defs[0].tag->signature == "def helper(key):");

  auto refs = index->references("helper");
  REQUIRE(refs.size() == 2);
  CHECK(refs[0].file->path == "src/main.py");
  CHECK(refs[1].file->path == "src/store.py");
  CHECK(refs[1].tag->kind == TagKind::call);
  CHECK(refs[1].tag->scope == "Store.add");
  CHECK(index->references("square").size() == 1);
  CHECK(index->definitions("nothing_like_this").empty());

  // Line 3 (0-based 2) of store.py is inside Store.add.
  const Tag* inner = index->enclosing_symbol("src/store.py", {2, 10});
  REQUIRE(inner);
  CHECK(inner->name == "add");
  CHECK(inner->kind == TagKind::method);
  CHECK(inner->scope == "Store");
  const Tag* blank = index->enclosing_symbol("src/store.py", {3, 0});
  REQUIRE(blank);
  CHECK(blank->name == "Store");
  CHECK(index->enclosing_symbol("src/util.py", {5, 0}) == nullptr);
  CHECK(index->enclosing_symbol("no/such/file.py", {0, 0}) == nullptr);

  auto outline = index->outline("src/store.py");
  REQUIRE(outline.size() == 3);
  CHECK(outline[0]->name == "Store");
  CHECK(outline[1]->name == "add");
  CHECK(outline[2]->name == "size");

  std::string error;
  auto text = index->symbol_text("lib/core.c", *index->definitions("cube")[0].tag, &error);
  REQUIRE(text);
  CHECK(*text == "int cube(int x) { return square(x) * x; }");

  // A file that changed under the index is reported, not read out of bounds.
  dir.write("lib/core.c", "int x;\n");
  CHECK_FALSE(index->symbol_text("lib/core.c", *index->definitions("cube")[0].tag, &error));
  CHECK(error.find("changed since") != std::string::npos);
}

TEST_CASE("one thread and many threads build the same index", "[index]") {
  TempDir dir;
  for (int i = 0; i < 40; ++i)
    dir.write("m" + std::to_string(i) + ".py",
              "def f" + std::to_string(i) + "():\n    return f" + std::to_string((i + 1) % 40) + "()\n");
  IndexOptions one, many;
  one.threads = 1;
  many.threads = 4;
  auto a = Index::build(open(dir), one);
  auto b = Index::build(open(dir), many);
  REQUIRE(a->files().size() == 40);
  REQUIRE(paths(*a) == paths(*b));
  for (const auto& [p, f] : a->files()) CHECK(f.tags == b->file(p)->tags);
}

TEST_CASE("set_file and remove_file keep the name tables right", "[index]") {
  TempDir dir;
  write_workspace(dir);
  auto index = Index::build(open(dir), {});
  // Name tables are built on the first lookup; exercise updates of built tables.
  REQUIRE(index->definitions("helper").size() == 1);
  FileTags replacement = *index->file("src/util.py");
  replacement.tags.clear();
  index->set_file(replacement);
  CHECK(index->definitions("helper").empty());
  CHECK(index->references("helper").size() == 2);
  CHECK(index->remove_file("src/main.py"));
  CHECK_FALSE(index->remove_file("src/main.py"));
  CHECK(index->references("helper").size() == 1);
  CHECK(index->file("src/main.py") == nullptr);

  // Updates before the first lookup: the tables are built from the files as they are then.
  auto fresh = Index::build(open(dir), {});
  FileTags extra = *fresh->file("src/util.py");
  extra.path = "src/extra.py";
  fresh->set_file(extra);
  CHECK(fresh->remove_file("src/util.py"));
  auto defs = fresh->definitions("helper");
  REQUIRE(defs.size() == 1);
  CHECK(defs[0].file->path == "src/extra.py");
}

TEST_CASE("the tag cache makes a second run parse nothing", "[index][cache]") {
  TempDir dir, cache;
  write_workspace(dir);
  IndexOptions options;
  options.cache_dir = cache.str();

  IndexStats cold, warm, changed, touched;
  dir.write("blob.c", std::string("\0\1\2 binary", 10));  // skipped every run, never cached
  auto first = Index::build(open(dir), options, &cold);
  CHECK(cold.parsed == 5);
  CHECK(cold.cache_written);
  auto second = Index::build(open(dir), options, &warm);
  CHECK(warm.parsed == 0);
  CHECK(warm.from_cache == 5);
  CHECK_FALSE(warm.cache_written);  // nothing changed: the cache file is left alone
  for (const auto& [p, f] : first->files()) CHECK(f.tags == second->file(p)->tags);

  // A changed file is reparsed, and only it.
  dir.write("src/util.py", "def helper(key):\n    return key\n\ndef extra():\n    pass\n");
  auto third = Index::build(open(dir), options, &changed);
  CHECK(changed.parsed == 1);
  CHECK(changed.from_cache == 4);
  CHECK(third->definitions("extra").size() == 1);

  // Rewritten with the same bytes (new mtime): found by content hash, not reparsed.
  auto saved = ponder::test::read_file(dir.path() / "src/store.py");
  std::filesystem::remove(dir.path() / "src/store.py");
  dir.write("src/store.py", saved);
  Index::build(open(dir), options, &touched);
  CHECK(touched.parsed == 0);
}

TEST_CASE("a corrupt or foreign cache file is ignored", "[index][cache]") {
  TempDir dir, cache;
  write_workspace(dir);
  IndexOptions options;
  options.cache_dir = cache.str();
  auto source = open(dir);
  Index::build(source, options);
  TagCache probe(cache.str(), source->identity());
  REQUIRE(std::filesystem::exists(probe.path()));

  auto bytes = ponder::test::read_file(probe.path());
  for (std::size_t cut : {std::size_t(0), std::size_t(5), std::size_t(30), bytes.size() / 2, bytes.size() - 1}) {
    {
      std::ofstream out(probe.path(), std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(cut));
    }
    IndexStats stats;
    auto index = Index::build(source, options, &stats);
    CHECK(stats.parsed == 5);
    CHECK(index->definitions("helper").size() == 1);
  }
  // A header claiming an absurd number of entries must not allocate for them.
  std::string evil = bytes.substr(0, 16);
  evil += std::string("\xff\xff\xff\xff\xff\xff\xff\x0f", 8);
  {
    std::ofstream out(probe.path(), std::ios::binary | std::ios::trunc);
    out << evil;
  }
  IndexStats stats;
  Index::build(source, options, &stats);
  CHECK(stats.parsed == 5);
}
