#include <catch2/catch.hpp>
#include <numeric>

#include "agent/repo_map.h"
#include "support/temp_dir.h"

using namespace ponder::agent;
using ponder::test::TempDir;

namespace {

// core.py defines what everyone uses; leaf.py is used by one file only; orphan.py by none.
std::unique_ptr<Index> workspace(const TempDir& dir) {
  dir.write("core.py",
            "def load_configuration(path):\n    return {}\n\n"
            "class RequestHandler:\n    def handle_request(self, req):\n        return req\n");
  dir.write("leaf.py", "def leaf_specific_helper():\n    return 1\n");
  dir.write("orphan.py", "def orphan_never_called():\n    return 2\n");
  for (int i = 0; i < 6; ++i)
    dir.write("user" + std::to_string(i) + ".py",
              "def user_entry_" + std::to_string(i) + "():\n"
              "    cfg = load_configuration('x')\n"
              "    return RequestHandler().handle_request(cfg)\n");
  dir.write("special.py", "def special_entry():\n    return leaf_specific_helper()\n");
  std::string error;
  auto source = open_directory(dir.str(), &error);
  REQUIRE(source);
  return Index::build(std::shared_ptr<Source>(std::move(source)), {});
}

std::size_t index_of(const std::vector<RankedDefinition>& ranked, const std::string& name) {
  for (std::size_t i = 0; i < ranked.size(); ++i)
    if (ranked[i].tag->name == name) return i;
  return ranked.size();
}

}  // namespace

TEST_CASE("PageRank favours what the workspace uses", "[repo-map]") {
  TempDir dir;
  auto index = workspace(dir);
  RepoMapOptions options;
  auto ranks = rank_files(*index, options);
  CHECK(std::accumulate(ranks.begin(), ranks.end(), 0.0) == Approx(1.0));

  auto ranked = rank_definitions(*index, options);
  CHECK(index_of(ranked, "load_configuration") < index_of(ranked, "leaf_specific_helper"));
  CHECK(index_of(ranked, "handle_request") < index_of(ranked, "orphan_never_called"));
  CHECK(index_of(ranked, "leaf_specific_helper") < index_of(ranked, "orphan_never_called"));
}

TEST_CASE("personalisation moves the focus", "[repo-map]") {
  TempDir dir;
  auto index = workspace(dir);
  RepoMapOptions plain, focused;
  focused.focus_files = {"special.py"};
  auto a = rank_definitions(*index, plain);
  auto b = rank_definitions(*index, focused);
  CHECK(index_of(a, "leaf_specific_helper") > index_of(a, "load_configuration"));
  CHECK(index_of(b, "leaf_specific_helper") < index_of(b, "load_configuration"));

  RepoMapOptions by_symbol;
  by_symbol.focus_symbols = {"leaf_specific_helper"};
  auto c = rank_definitions(*index, by_symbol);
  CHECK(index_of(c, "leaf_specific_helper") < index_of(a, "leaf_specific_helper"));

  RepoMapOptions without;
  without.focus_files = {"special.py"};
  without.include_focus_files = false;
  auto d = rank_definitions(*index, without);
  CHECK(index_of(d, "special_entry") == d.size());
}

TEST_CASE("the rendered map fits the budget and grows with it", "[repo-map]") {
  TempDir dir;
  auto index = workspace(dir);
  ByteEstimateCounter counter;
  std::size_t previous = 0;
  for (std::size_t budget : {0u, 20u, 60u, 200u, 4000u}) {
    RepoMapOptions options;
    options.token_budget = budget;
    RepoMap map = render_repo_map(*index, options);
    INFO("budget " << budget << "\n" << map.text);
    CHECK(map.tokens <= budget);
    CHECK(map.tokens == counter.count(map.text));
    CHECK(map.definitions >= previous);
    previous = map.definitions;
  }
  RepoMapOptions small;
  small.token_budget = 40;
  RepoMap map = render_repo_map(*index, small);
  // The most used definition comes first; headers name files; lines carry line numbers.
  CHECK(map.text.rfind("core.py:\n", 0) == 0);
  CHECK(map.text.find("1│ def load_configuration(path):") != std::string::npos);

  RepoMapOptions all;
  all.token_budget = 100000;
  RepoMap full = render_repo_map(*index, all);
  CHECK(full.definitions_left_out == 0);
  CHECK(full.text.find("5│   def handle_request(self, req):") != std::string::npos);  // nested: indented
  CHECK(full.files == 10);
}
